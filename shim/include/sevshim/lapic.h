/* Local APIC: NMI wake-up (LINT1 as NMI) and the INIT IPI used for the hand-off. */
#ifndef SEVSHIM_LAPIC_H
#define SEVSHIM_LAPIC_H
void lapic_arm_nmi(void);         /* software-enable the LAPIC, LVT LINT1 = NMI, clear the flag */
void lapic_wait_nmi(void);        /* cli; hlt until the NMI handler set the flag */
void lapic_init_self(void) __attribute__((noreturn)); /* INIT IPI to all including self */
#endif
