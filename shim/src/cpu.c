/* CPU tables in RAM (64-bit TSS with IST stacks, IDT 0..31, FS-base canary block), SEV
 * detection and the final identity page tables. */
#include <stdint.h>
#include "sevshim/bytes.h"
#include "sevshim/cpu.h"
#include "sevshim/console.h"
#include "sevshim/handoff.h"
#include "sevshim/io.h"
#include "sevshim/layout.h"
#include "sevshim/receipt.h"
#include "sevshim/sev.h"

extern uint64_t gdt[5];               /* head.asm: null, code64, data, TSS (2 slots) */
extern const uint64_t isr_table[32];  /* head.asm */

volatile uint8_t nmi_seen;

static uint8_t tss[104] __attribute__((aligned(16)));
static uint8_t ist_exc[8192] __attribute__((aligned(16)));   /* IST1: exceptions */
static uint8_t ist_nmi[4096] __attribute__((aligned(16)));   /* IST2: NMI */
static uint64_t idt[32 * 2] __attribute__((aligned(16)));
/* BearSSL (Debian build, -fstack-protector-strong) reads its canary at %fs:0x28 */
static uint64_t canary_block[8] __attribute__((aligned(64)));

void cpu_init(void)
{
    /* TSS: IST1 at offset 0x24, IST2 at 0x2C; I/O map base past the limit (no bitmap) */
    put_le(&tss[0x24], (uint64_t)(uintptr_t)(ist_exc + sizeof(ist_exc)), 8);
    put_le(&tss[0x2C], (uint64_t)(uintptr_t)(ist_nmi + sizeof(ist_nmi)), 8);
    tss[0x66] = sizeof(tss);
    uint64_t base = (uint64_t)(uintptr_t)tss;
    gdt[3] = (sizeof(tss) - 1) | ((base & 0xFFFFFF) << 16) | (0x89ull << 40) |
             (((base >> 24) & 0xFF) << 56);
    gdt[4] = base >> 32;
    __asm__ volatile("ltr %w0" :: "r"(0x18) : "memory");

    for (int v = 0; v < 32; v++) {
        uint64_t h = isr_table[v];
        uint64_t ist = (v == 2) ? 2 : 1;
        idt[2 * v] = (h & 0xFFFF) | (0x08ull << 16) | (ist << 32) | (0x8Eull << 40) |
                     ((h >> 16) & 0xFFFF) << 48;
        idt[2 * v + 1] = h >> 32;
    }
    struct __attribute__((packed)) { uint16_t limit; uint64_t base; } idtr = {
        sizeof(idt) - 1, (uint64_t)(uintptr_t)idt };
    __asm__ volatile("lidt %0" :: "m"(idtr) : "memory");

    /* canary: not secret in any useful sense (no attacker-controlled stack writes); per boot */
    canary_block[5] = (rdtsc() * 0x9E3779B97F4A7C15ull) | 0xFF;
    wrmsr(0xC0000100, (uint64_t)(uintptr_t)canary_block);
}

void exception_report(uint64_t vector, uint64_t error, uint64_t rip)
{
    secret_wipe();            /* first, as in shim_refuse */
    receipt_wipe();           /* no receipt from a faulting shim: its state cannot be trusted */
    stack_scrub_all();
    con_fmt(SEVSHIM_CON_ERROR, (uintptr_t)"090", (uintptr_t)"cpu-exception");
    con_fmt(SEVSHIM_CON_EXCEPTION, vector, error, rip);
    con_line(SEVSHIM_CON_HALT);
    cpu_halt_forever();
    __builtin_unreachable();
}

/* The final tables: private RAM with the C-bit, the bounce page and the MMIO top shared. */
static uint64_t pagetables[SEVSHIM_PT_ENTRIES] __attribute__((aligned(4096)));

void sev_mem_init(void)
{
    struct sevshim_sev_regs r = { 0 };
    uint32_t b, c, d;
    cpuid(SEVSHIM_CPUID_EXT_MAX, &r.max_ext_leaf, &b, &c, &d);
    if (r.max_ext_leaf >= SEVSHIM_CPUID_ADDR_SIZE)
        cpuid(SEVSHIM_CPUID_ADDR_SIZE, &r.addr_eax, &b, &c, &d);
    if (r.max_ext_leaf >= SEVSHIM_CPUID_SEV)
        cpuid(SEVSHIM_CPUID_SEV, &r.sev_eax, &r.sev_ebx, &c, &d);
    /* SEV_STATUS only where the leaf says SEV exists: elsewhere (e.g. QEMU TCG) it is #GP */
    if (sevshim_sev_msr_needed(r.max_ext_leaf, r.sev_eax))
        r.sev_status = rdmsr(SEVSHIM_MSR_SEV_STATUS);

    struct sevshim_sev_info info;
    enum sevshim_error e = sevshim_sev_decode(&r, &info);
    /* Under SEV-ES/SNP the CPUIDs above raised #VC (head.asm isr_29); if not, terminate the
     * same way: the console would raise #VC. */
    if (e == SEVSHIM_E81)
        sev_terminate(SEVSHIM_GHCB_TERM_ES);
    if (e == SEVSHIM_E82)
        sev_terminate(SEVSHIM_GHCB_TERM_SNP);
    if (e == SEVSHIM_E83)
        shim_refuse(SEVSHIM_E83);
    /* Stage 1 put its own CPUID's C-bit into every entry (image.asm); under plain SEV the host
     * answers CPUID: two different answers are refused. */
    uint64_t stage1 = *(volatile const uint64_t *)(uintptr_t)SHIM_RAM_PAGETABLES;
    if ((stage1 & SEVSHIM_PT_ADDR & ~0xFFFFFFFFull) != info.cmask)
        shim_refuse(SEVSHIM_E83);
    if (sevshim_pt_build(pagetables, (uint64_t)(uintptr_t)pagetables, info.cmask,
                         sevshim_shared_ranges, sevshim_shared_count) != 0)
        shim_refuse(SEVSHIM_E91);
    write_cr3((uint64_t)(uintptr_t)pagetables);
    /* plain SEV: the hand-off programs the flash, which encrypted memory cannot do (no
     * private-copy hand-off is built): refuse before fw_cfg and the flash */
    if (e != SEVSHIM_OK)
        shim_refuse(e);
}
