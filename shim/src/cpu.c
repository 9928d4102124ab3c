/* CPU tables in RAM: 64-bit TSS with IST stacks, IDT for vectors 0..31, FS base canary block. */
#include <stdint.h>
#include "sevshim/cpu.h"
#include "sevshim/console.h"
#include "sevshim/handoff.h"
#include "sevshim/io.h"

extern uint64_t gdt[5];               /* head.asm: null, code64, data, TSS (2 slots) */
extern const uint64_t isr_table[32];  /* head.asm */

volatile uint8_t nmi_seen;

static uint8_t tss[104] __attribute__((aligned(16)));
static uint8_t ist_exc[8192] __attribute__((aligned(16)));   /* IST1: exceptions */
static uint8_t ist_nmi[4096] __attribute__((aligned(16)));   /* IST2: NMI */
static uint64_t idt[32 * 2] __attribute__((aligned(16)));
/* BearSSL (Debian build, -fstack-protector-strong) reads its canary at %fs:0x28 */
static uint64_t canary_block[8] __attribute__((aligned(64)));

static void put64(uint8_t *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

void cpu_init(void)
{
    /* TSS: IST1 at offset 0x24, IST2 at 0x2C; I/O map base past the limit (no bitmap) */
    put64(&tss[0x24], (uint64_t)(uintptr_t)(ist_exc + sizeof(ist_exc)));
    put64(&tss[0x2C], (uint64_t)(uintptr_t)(ist_nmi + sizeof(ist_nmi)));
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

    /* canary: not secret in any useful sense here (no attacker-controlled stack writes), but
     * vary it per boot anyway */
    canary_block[5] = (rdtsc() * 0x9E3779B97F4A7C15ull) | 0xFF;
    wrmsr(0xC0000100, (uint64_t)(uintptr_t)canary_block);
}

void exception_report(uint64_t vector, uint64_t error, uint64_t rip)
{
    secret_wipe();            /* first, as in shim_refuse */
    con_line("SEVSHIM ERROR E090 cpu-exception");
    con_str("SEVSHIM EXCEPTION vector=");
    con_dec(vector);
    con_str(" error=");
    con_hex64(error);
    con_str(" rip=");
    con_hex64(rip);
    con_end();
    con_line("SEVSHIM HALT");
    cpu_halt_forever();
    __builtin_unreachable();
}
