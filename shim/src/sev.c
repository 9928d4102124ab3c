/* SEV mode decoding and identity page tables: pure functions, see include/sevshim/sev.h. */
#include "sevshim/sev.h"
#include "sevshim/layout.h"

#define GIB4 0x100000000ull
#define MIB2 0x200000ull

const struct sevshim_pt_range sevshim_shared_ranges[] = {
    { SHIM_RAM_BOUNCE, SHIM_RAM_BOUNCE_SIZE },
    { SHIM_MMIO_SHARED_BASE, GIB4 - SHIM_MMIO_SHARED_BASE },
};
const unsigned sevshim_shared_count = sizeof(sevshim_shared_ranges) / sizeof(sevshim_shared_ranges[0]);

int sevshim_sev_msr_needed(uint32_t max_ext_leaf, uint32_t sev_eax)
{
    /* CPUID Fn8000_001F EAX bit 1: SEV supported (AMD64 APM vol 2, 15.34.1) */
    return max_ext_leaf >= SEVSHIM_CPUID_SEV && (sev_eax & (1u << 1)) != 0;
}

enum sevshim_error sevshim_sev_decode(const struct sevshim_sev_regs *r, struct sevshim_sev_info *out)
{
    *out = (struct sevshim_sev_info){ .mode = SEVSHIM_SEV_NONE };
    /* SEV_STATUS is only defined where the leaf says SEV exists; elsewhere it is ignored */
    if (!sevshim_sev_msr_needed(r->max_ext_leaf, r->sev_eax))
        return SEVSHIM_OK;
    /* SEV_STATUS (APM vol 2, 15.34.10): bit 0 SEV, bit 1 SEV-ES, bit 2 SNP. The strongest
     * mode named wins, also if bit 0 is (inconsistently) clear: fail closed. */
    uint64_t st = r->sev_status;
    if (st & (1u << 2)) {
        out->mode = SEVSHIM_SEV_SNP;
        return SEVSHIM_E82;
    }
    if (st & (1u << 1)) {
        out->mode = SEVSHIM_SEV_ES;
        return SEVSHIM_E81;
    }
    if (!(st & 1u))
        return SEVSHIM_OK;
    out->mode = SEVSHIM_SEV_SEV;
    /* EBX[5:0] C-bit position, EBX[11:6] reduction of the physical address width, CPUID
     * Fn8000_0008 EAX[7:0] the width (it exists as Fn8000_001F does). Usable: the C-bit is a
     * PTE address bit above the 4 GiB mapped (32..51), the reduced width covers 4 GiB, and the
     * C-bit is none of the remaining address bits (it would alias RAM). */
    unsigned cbit = r->sev_ebx & 0x3F;
    unsigned red = (r->sev_ebx >> 6) & 0x3F;
    unsigned phys = r->addr_eax & 0xFF;
    if (cbit < 32 || cbit > 51 || phys < 32 || phys > 52 || red >= phys || phys - red < 32 ||
        cbit < phys - red)
        return SEVSHIM_E83;
    out->cbit = cbit;
    out->cmask = 1ull << cbit;
    return SEVSHIM_E80;
}

int sevshim_cmask_ok(uint64_t cmask)
{
    /* 0, or a single bit (no other bit set) in 32..51 */
    return cmask == 0 ||
           ((cmask & (cmask - 1)) == 0 && cmask >= (1ull << 32) && cmask <= (1ull << 51));
}

int sevshim_pt_build(uint64_t *pt, uint64_t pt_pa, uint64_t cmask,
                     const struct sevshim_pt_range *shared, unsigned n_shared)
{
    if (!sevshim_cmask_ok(cmask) || (pt_pa & 0xFFF) ||
        pt_pa > GIB4 - SEVSHIM_PT_PAGES * 0x1000ull)
        return -1;
    for (unsigned i = 0; i < n_shared; i++) {
        uint64_t b = shared[i].base, s = shared[i].size;
        if (s == 0 || ((b | s) & (MIB2 - 1)) || b >= GIB4 || s > GIB4 - b)
            return -1;
    }
    for (unsigned i = 0; i < SEVSHIM_PT_ENTRIES; i++)
        pt[i] = 0;
    /* table pointers carry the C-bit: the tables are in private memory (APM vol 2, 15.34.5) */
    pt[0] = (pt_pa + 0x1000) | cmask | SEVSHIM_PT_P | SEVSHIM_PT_RW;
    for (unsigned j = 0; j < 4; j++)
        pt[512 + j] = (pt_pa + 0x2000 + 0x1000ull * j) | cmask | SEVSHIM_PT_P | SEVSHIM_PT_RW;
    for (unsigned p = 0; p < 2048; p++) {
        uint64_t a = (uint64_t)p << 21, c = cmask;
        for (unsigned i = 0; i < n_shared; i++)
            if (a >= shared[i].base && a - shared[i].base < shared[i].size)
                c = 0;
        pt[1024 + p] = a | c | SEVSHIM_PT_P | SEVSHIM_PT_RW | SEVSHIM_PT_PS;
    }
    return 0;
}
