/* CPU setup: TSS with IST stacks, IDT (exceptions -> E090, NMI -> wake flag), FS base canary. */
#ifndef SEVSHIM_CPU_H
#define SEVSHIM_CPU_H
#include <stdint.h>
extern volatile uint8_t nmi_seen;
void cpu_init(void);
void exception_report(uint64_t vector, uint64_t error, uint64_t rip) __attribute__((noreturn));
#endif
