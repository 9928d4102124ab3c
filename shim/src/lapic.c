/* Local APIC (xAPIC MMIO at 0xFEE00000): the NMI wake-up and the INIT IPI hand-off. */
#include <stdint.h>
#include "sevshim/cpu.h"
#include "sevshim/io.h"

#define LAPIC_BASE   0xFEE00000u
#define LAPIC_SVR    (LAPIC_BASE + 0x0F0)
#define LAPIC_ICR_LO (LAPIC_BASE + 0x300)
#define LAPIC_ICR_HI (LAPIC_BASE + 0x310)
#define LAPIC_LINT1  (LAPIC_BASE + 0x360)

void lapic_arm_nmi(void)
{
    nmi_seen = 0;
    mmio_write32(LAPIC_SVR, 0x1FF);     /* software enable, spurious vector 0xFF */
    mmio_write32(LAPIC_LINT1, 0x400);   /* LINT1 delivers NMI (QMP inject-nmi arrives here) */
}

void lapic_wait_nmi(void)
{
    /* NMI wakes hlt even with IF=0; the handler (head.asm, IST2) sets the flag. One landing
     * between the test and hlt is seen at the next NMI: the host resends (bounded) until it
     * reads SEVSHIM WAKE (docs/hostctl.md, receive). Later NMIs only set the flag again. */
    while (!nmi_seen)
        __asm__ volatile("cli; hlt" ::: "memory");
}

void lapic_init_self(void)
{
    mmio_write32(LAPIC_ICR_HI, 0);
    /* INIT, level assert, destination shorthand "all including self" */
    mmio_write32(LAPIC_ICR_LO, 0x00084500);
    /* Spin, do not hlt: QEMU 7.2 TCG does not count a pending INIT as work for a halted CPU
     * (x86_cpu_has_work ignores CPU_INTERRUPT_INIT), so `cli; hlt` would sleep forever; a spin
     * takes the INIT at the next translation-block boundary. No INIT ever: halt. */
    for (uint64_t i = 0; i < (1ull << 32); i++)
        __asm__ volatile("pause" ::: "memory");
    cpu_halt_forever();
    __builtin_unreachable();
}
