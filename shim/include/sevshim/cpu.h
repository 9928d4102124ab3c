/* CPU setup: TSS with IST stacks, IDT (exceptions -> E090, NMI -> wake flag), FS base canary;
 * SEV mode and the final page tables; the local APIC's NMI wake-up and INIT hand-off. */
#ifndef SEVSHIM_CPU_H
#define SEVSHIM_CPU_H
#include <stdint.h>
extern volatile uint8_t nmi_seen;
void cpu_init(void);
/* Detect the SEV mode, load the final page tables (src/sev.c), refuse E080..E083. */
void sev_mem_init(void);
/* GHCB MSR protocol termination request with a sevshim reason code (sev.h), after wiping the
 * secret page (head.asm). SEV-ES/SNP only. */
void sev_terminate(uint32_t code) __attribute__((noreturn));
void exception_report(uint64_t vector, uint64_t error, uint64_t rip) __attribute__((noreturn));
void lapic_arm_nmi(void);         /* software-enable the LAPIC, LVT LINT1 = NMI, clear the flag */
void lapic_wait_nmi(void);        /* cli; hlt until the NMI handler set the flag */
void lapic_init_self(void) __attribute__((noreturn)); /* INIT IPI to all including self */
#endif
