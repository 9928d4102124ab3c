/* Host unit tests of src/sev.c: the SEV mode decoder (CPUID/MSR values in, mode and C-bit
 * out) and the identity page-table builder (every 2 MiB page of 0..4 GiB walked as the MMU
 * would, for C-bit 0, 47 and 51). ASan + UBSan. Last line: "N passed, M failed". */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "sevshim/layout.h"
#include "sevshim/sev.h"

static int passed, failed;
#define CHECK(cond, ...) do {                                   \
        if (cond) passed++;                                     \
        else { failed++; printf("FAIL %s:%d: ", __FILE__, __LINE__); printf(__VA_ARGS__); printf("\n"); } \
    } while (0)

#define GIB4 0x100000000ull
#define MIB2 0x200000ull

/* ---- decoder ---- */
struct dcase {
    const char *name;
    struct sevshim_sev_regs r;
    enum sevshim_error want;
    enum sevshim_sev_mode mode;
    unsigned cbit;
};
#define LEAF 0x8000001Fu
#define EBX(cbit, red) ((uint32_t)(cbit) | ((uint32_t)(red) << 6))

static const struct dcase dcases[] = {
    { "leaf absent", { 0x80000008u, 48, 0, 0, 0 }, SEVSHIM_OK, SEVSHIM_SEV_NONE, 0 },
    /* the leaf is above the maximum: its (stale) values and the MSR value are ignored */
    { "leaf absent, stale leaf and MSR", { 0x8000001Eu, 48, 0x1B, EBX(51, 1), 7 }, SEVSHIM_OK, SEVSHIM_SEV_NONE, 0 },
    { "leaf present, all zero (QEMU TCG with xlevel 0x8000001F)", { LEAF, 40, 0, 0, 0 }, SEVSHIM_OK, SEVSHIM_SEV_NONE, 0 },
    { "SEV bit clear, MSR would say SEV", { LEAF, 48, 0x1, EBX(51, 1), 1 }, SEVSHIM_OK, SEVSHIM_SEV_NONE, 0 },
    { "SEV bit clear, MSR would say SNP", { LEAF, 48, 0x19, EBX(51, 1), 7 }, SEVSHIM_OK, SEVSHIM_SEV_NONE, 0 },
    { "SEV supported, not active", { LEAF, 48, 0x1B, EBX(51, 1), 0 }, SEVSHIM_OK, SEVSHIM_SEV_NONE, 0 },
    { "SEV supported, MSR reserved bits only", { LEAF, 48, 0x1B, EBX(51, 1), 0xFFFFFFF8ull }, SEVSHIM_OK, SEVSHIM_SEV_NONE, 0 },
    { "SEV, C-bit 51 (Milan/Genoa)", { LEAF, 48, 0x0F, EBX(51, 1), 1 }, SEVSHIM_E80, SEVSHIM_SEV_SEV, 51 },
    { "SEV, C-bit 47, reduction 5 (Naples/Rome)", { LEAF, 48, 0x0F, EBX(47, 5), 1 }, SEVSHIM_E80, SEVSHIM_SEV_SEV, 47 },
    { "SEV, C-bit 51, 52 address bits", { LEAF, 52, 0x0F, EBX(51, 1), 1 }, SEVSHIM_E80, SEVSHIM_SEV_SEV, 51 },
    { "SEV, EBX[15:12] VMPL count ignored", { LEAF, 48, 0x1F, EBX(51, 1) | (4u << 12), 1 }, SEVSHIM_E80, SEVSHIM_SEV_SEV, 51 },
    { "SEV, C-bit 32 (lowest usable)", { LEAF, 33, 0x02, EBX(32, 1), 1 }, SEVSHIM_E80, SEVSHIM_SEV_SEV, 32 },
    { "SEV-ES", { LEAF, 48, 0x0F, EBX(51, 1), 3 }, SEVSHIM_E81, SEVSHIM_SEV_ES, 0 },
    { "SEV-ES bit without SEV bit", { LEAF, 48, 0x0F, EBX(51, 1), 2 }, SEVSHIM_E81, SEVSHIM_SEV_ES, 0 },
    { "SEV-ES with a bad C-bit: still ES", { LEAF, 48, 0x0F, EBX(5, 1), 3 }, SEVSHIM_E81, SEVSHIM_SEV_ES, 0 },
    { "SNP", { LEAF, 48, 0x1F, EBX(51, 1), 7 }, SEVSHIM_E82, SEVSHIM_SEV_SNP, 0 },
    { "SNP bit alone", { LEAF, 48, 0x1F, EBX(51, 1), 4 }, SEVSHIM_E82, SEVSHIM_SEV_SNP, 0 },
    { "SNP, leaf says no SNP (strongest claim wins)", { LEAF, 48, 0x0F, EBX(51, 1), 7 }, SEVSHIM_E82, SEVSHIM_SEV_SNP, 0 },
    { "C-bit 0", { LEAF, 48, 0x0F, EBX(0, 1), 1 }, SEVSHIM_E83, SEVSHIM_SEV_SEV, 0 },
    { "C-bit 31 (inside the mapped 4 GiB)", { LEAF, 48, 0x0F, EBX(31, 1), 1 }, SEVSHIM_E83, SEVSHIM_SEV_SEV, 0 },
    { "C-bit 52", { LEAF, 48, 0x0F, EBX(52, 1), 1 }, SEVSHIM_E83, SEVSHIM_SEV_SEV, 0 },
    { "C-bit 63 (NX)", { LEAF, 48, 0x0F, EBX(63, 1), 1 }, SEVSHIM_E83, SEVSHIM_SEV_SEV, 0 },
    { "C-bit below the reduced address width", { LEAF, 48, 0x0F, EBX(40, 1), 1 }, SEVSHIM_E83, SEVSHIM_SEV_SEV, 0 },
    { "reduction leaves < 32 address bits", { LEAF, 40, 0x0F, EBX(47, 9), 1 }, SEVSHIM_E83, SEVSHIM_SEV_SEV, 0 },
    { "reduction >= address width", { LEAF, 40, 0x0F, EBX(47, 40), 1 }, SEVSHIM_E83, SEVSHIM_SEV_SEV, 0 },
    { "reduction 63", { LEAF, 48, 0x0F, EBX(51, 63), 1 }, SEVSHIM_E83, SEVSHIM_SEV_SEV, 0 },
    { "address width 0", { LEAF, 0, 0x0F, EBX(51, 1), 1 }, SEVSHIM_E83, SEVSHIM_SEV_SEV, 0 },
    { "address width 31", { LEAF, 31, 0x0F, EBX(51, 0), 1 }, SEVSHIM_E83, SEVSHIM_SEV_SEV, 0 },
    { "address width 53", { LEAF, 53, 0x0F, EBX(51, 1), 1 }, SEVSHIM_E83, SEVSHIM_SEV_SEV, 0 },
};

static void test_decode(void)
{
    for (size_t i = 0; i < sizeof(dcases) / sizeof(dcases[0]); i++) {
        const struct dcase *c = &dcases[i];
        struct sevshim_sev_info info = { SEVSHIM_SEV_SNP, 99, 0xDEAD };
        enum sevshim_error e = sevshim_sev_decode(&c->r, &info);
        uint64_t want_mask = c->want == SEVSHIM_E80 ? 1ull << c->cbit : 0;
        CHECK(e == c->want, "%s: got E%03d want E%03d", c->name, (int)e, (int)c->want);
        CHECK(info.mode == c->mode, "%s: mode %d want %d", c->name, (int)info.mode, (int)c->mode);
        CHECK(info.cbit == c->cbit, "%s: cbit %u want %u", c->name, info.cbit, c->cbit);
        CHECK(info.cmask == want_mask, "%s: cmask %#llx", c->name, (unsigned long long)info.cmask);
        CHECK(sevshim_cmask_ok(info.cmask), "%s: decoder mask not buildable", c->name);
    }
    /* when the firmware reads SEV_STATUS at all */
    CHECK(!sevshim_sev_msr_needed(0x80000008u, 0xFFFFFFFFu), "msr: leaf absent");
    CHECK(!sevshim_sev_msr_needed(0x8000001Eu, 0x2), "msr: max one below");
    CHECK(!sevshim_sev_msr_needed(0, 0x2), "msr: no extended leaves");
    CHECK(!sevshim_sev_msr_needed(LEAF, 0x1D), "msr: all but the SEV bit");
    CHECK(sevshim_sev_msr_needed(LEAF, 0x2), "msr: SEV bit");
    CHECK(sevshim_sev_msr_needed(0x80000026u, 0x2), "msr: higher max");
}

/* ---- page tables ---- */
#define PT_PA 0x10000ull   /* as the firmware's stage-1 area; the builder gets it explicitly */

/* Read the 8-byte table entry at physical address pa, which must lie inside the tables. */
static int entry_at(const uint64_t *pt, uint64_t pa, uint64_t *out)
{
    if (pa < PT_PA || pa >= PT_PA + SEVSHIM_PT_PAGES * 0x1000ull || (pa & 7))
        return 0;
    *out = pt[(pa - PT_PA) / 8];
    return 1;
}

/* Shared per an independent list (not sevshim_shared_ranges): bounce page, IOAPIC 0xFEC00000,
 * HPET 0xFED00000, TPM CRB 0xFED40000, LAPIC 0xFEE00000, pflash 0xFFC00000..4 GiB, and the
 * rest of the top 20 MiB (no RAM there on q35). */
static int want_shared(uint64_t a)
{
    return (a >= 0x200000 && a < 0x400000) || a >= 0xFEC00000ull;
}

static void walk_all(const uint64_t *pt, uint64_t cmask, const char *tag)
{
    const uint64_t flags_tbl = SEVSHIM_PT_P | SEVSHIM_PT_RW;
    uint64_t bad = 0;
    /* PML4: only entry 0, pointing at the PDPT, with the C-bit */
    CHECK(pt[0] == ((PT_PA + 0x1000) | cmask | flags_tbl), "%s: PML4[0] %#llx", tag, (unsigned long long)pt[0]);
    for (int i = 1; i < 512; i++)
        if (pt[i]) bad++;
    for (int i = 516; i < 1024; i++)
        if (pt[i]) bad++;
    CHECK(bad == 0, "%s: %llu unexpected PML4/PDPT entries", tag, (unsigned long long)bad);

    unsigned shared = 0, priv = 0;
    bad = 0;
    for (uint64_t va = 0; va < GIB4; va += MIB2) {
        /* the MMU walk: PML4[47:39] -> PDPT[38:30] -> PD[29:21], 2 MiB page */
        uint64_t e4, e3, e2;
        int ok = entry_at(pt, PT_PA + 8 * ((va >> 39) & 511), &e4) &&
                 (e4 & flags_tbl) == flags_tbl && !(e4 & SEVSHIM_PT_PS) &&
                 (e4 & ~SEVSHIM_PT_ADDR) == flags_tbl && (e4 & cmask) == cmask &&
                 entry_at(pt, (e4 & SEVSHIM_PT_ADDR & ~cmask) + 8 * ((va >> 30) & 511), &e3) &&
                 (e3 & ~SEVSHIM_PT_ADDR) == flags_tbl && (e3 & cmask) == cmask &&
                 entry_at(pt, (e3 & SEVSHIM_PT_ADDR & ~cmask) + 8 * ((va >> 21) & 511), &e2);
        if (!ok) {
            bad++;
            continue;
        }
        int sh = want_shared(va);
        uint64_t cbit_now = e2 & cmask;
        uint64_t pa = e2 & SEVSHIM_PT_ADDR & ~cmask & ~(MIB2 - 1);
        uint64_t low = e2 & ~SEVSHIM_PT_ADDR;
        uint64_t other = e2 & SEVSHIM_PT_ADDR & ~cmask & (MIB2 - 1);  /* bits 20:12: reserved in a 2 MiB PDE */
        if (pa != va || low != (SEVSHIM_PT_P | SEVSHIM_PT_RW | SEVSHIM_PT_PS) || other ||
            (cmask && cbit_now != (sh ? 0 : cmask)) || (e2 & ~(cmask | 0xFFFFFFFFull)) != 0) {
            if (bad < 5)
                printf("  %s: va %#llx pde %#llx\n", tag, (unsigned long long)va, (unsigned long long)e2);
            bad++;
        }
        if (sh) shared++; else priv++;
    }
    CHECK(bad == 0, "%s: %llu pages wrong", tag, (unsigned long long)bad);
    CHECK(shared == 1 + 10 && priv == 2048 - 11, "%s: %u shared, %u private", tag, shared, priv);
}

/* The entry that maps one address (4 KiB granularity spot checks). */
static uint64_t pde_of(const uint64_t *pt, uint64_t a) { return pt[1024 + (a >> 21)]; }

static void test_tables(void)
{
    static const uint64_t masks[] = { 0, 1ull << 47, 1ull << 51 };
    uint64_t *pt = malloc(SEVSHIM_PT_ENTRIES * 8);
    for (size_t m = 0; m < 3; m++) {
        char tag[32];
        snprintf(tag, sizeof(tag), "cmask %#llx", (unsigned long long)masks[m]);
        memset(pt, 0xA5, SEVSHIM_PT_ENTRIES * 8);
        CHECK(sevshim_pt_build(pt, PT_PA, masks[m], sevshim_shared_ranges, sevshim_shared_count) == 0, "%s: build", tag);
        walk_all(pt, masks[m], tag);
        uint64_t c = masks[m];
        static const uint64_t priv_addrs[] = { 0, 0x1000, SHIM_RAM_PAGETABLES, SHIM_RAM_SECRET,
            SHIM_RAM_PAYLOAD, SHIM_RAM_PAYLOAD_END - 1, SHIM_RAM_BOUNCE + SHIM_RAM_BOUNCE_SIZE,
            SHIM_RAM_BIOS_BUF, SHIM_RAM_VARS_BUF + 0x83FFF, 0x7FFFFFFF, 0xB0000000, 0xFEBFFFFF };
        static const uint64_t shared_addrs[] = { SHIM_RAM_BOUNCE, SHIM_RAM_BOUNCE + SHIM_RAM_BOUNCE_SIZE - 1,
            0xFEC00000, 0xFED00000, 0xFED40000, 0xFED40FFF, 0xFEE00000, 0xFEE00FFF, 0xFFC00000,
            SHIM_IMAGE_BASE, SHIM_POLICY_GPA, SHIM_STAGE1_GPA, 0xFFFFFFF0, 0xFFFFFFFF };
        for (size_t i = 0; i < sizeof(priv_addrs) / 8; i++)
            CHECK((pde_of(pt, priv_addrs[i]) & c) == c, "%s: %#llx not private", tag, (unsigned long long)priv_addrs[i]);
        for (size_t i = 0; i < sizeof(shared_addrs) / 8; i++)
            CHECK((pde_of(pt, shared_addrs[i]) & ~0xFFFFFFFFull) == 0, "%s: %#llx not shared", tag, (unsigned long long)shared_addrs[i]);
    }

    /* C-bit 0 gives exactly the tables stage 1 builds without SEV (image.asm) */
    sevshim_pt_build(pt, PT_PA, 0, sevshim_shared_ranges, sevshim_shared_count);
    int same = pt[0] == PT_PA + 0x1003;
    for (int j = 0; j < 4; j++)
        same &= pt[512 + j] == PT_PA + 0x2003 + 0x1000ull * j;
    for (int p = 0; p < 2048; p++)
        same &= pt[1024 + p] == (((uint64_t)p << 21) | 0x83);
    CHECK(same, "cmask 0 differs from the stage-1 tables");

    /* the firmware's shared list is the documented one */
    CHECK(sevshim_shared_count == 2 &&
          sevshim_shared_ranges[0].base == 0x200000 && sevshim_shared_ranges[0].size == 0x200000 &&
          sevshim_shared_ranges[1].base == 0xFEC00000 && sevshim_shared_ranges[1].size == 0x1400000,
          "shared ranges changed: update docs/shim.md and this test");

    /* refusals leave the buffer untouched */
    struct { const char *name; uint64_t pa, cmask; struct sevshim_pt_range r; } bad[] = {
        { "cmask bit 31", PT_PA, 1ull << 31, { 0x200000, 0x200000 } },
        { "cmask bit 52", PT_PA, 1ull << 52, { 0x200000, 0x200000 } },
        { "cmask bit 63", PT_PA, 1ull << 63, { 0x200000, 0x200000 } },
        { "cmask two bits", PT_PA, (1ull << 47) | (1ull << 51), { 0x200000, 0x200000 } },
        { "cmask low bits", PT_PA, 0x3, { 0x200000, 0x200000 } },
        { "pt_pa unaligned", PT_PA + 8, 0, { 0x200000, 0x200000 } },
        { "pt_pa near 4 GiB", GIB4 - 0x5000, 0, { 0x200000, 0x200000 } },
        { "pt_pa above 4 GiB", GIB4, 0, { 0x200000, 0x200000 } },
        { "range empty", PT_PA, 0, { 0x200000, 0 } },
        { "range base unaligned", PT_PA, 0, { 0x201000, 0x200000 } },
        { "range size unaligned", PT_PA, 0, { 0x200000, 0x1000 } },
        { "range above 4 GiB", PT_PA, 0, { GIB4, 0x200000 } },
        { "range crossing 4 GiB", PT_PA, 0, { GIB4 - MIB2, 2 * MIB2 } },
        { "range size wraps", PT_PA, 0, { 0x200000, 0xFFFFFFFFFFE00000ull } },
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        memset(pt, 0xA5, SEVSHIM_PT_ENTRIES * 8);
        int rc = sevshim_pt_build(pt, bad[i].pa, bad[i].cmask, &bad[i].r, 1);
        int untouched = 1;
        for (int k = 0; k < SEVSHIM_PT_ENTRIES; k++)
            untouched &= pt[k] == 0xA5A5A5A5A5A5A5A5ull;
        CHECK(rc == -1 && untouched, "%s: rc %d untouched %d", bad[i].name, rc, untouched);
    }
    /* boundary accepted: the highest table base, and no shared range at all */
    CHECK(sevshim_pt_build(pt, GIB4 - 0x6000, 1ull << 51, NULL, 0) == 0 &&
          pt[0] == ((GIB4 - 0x5000) | (1ull << 51) | 3) && pt[1024 + 2047] == (0xFFE00000ull | (1ull << 51) | 0x83),
          "highest tables / no shared range");
    free(pt);
}

int main(void)
{
    test_decode();
    test_tables();
    printf("%d passed, %d failed\n", passed, failed);
    return failed ? 1 : 0;
}
