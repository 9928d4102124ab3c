/* The two ways the shim ends: refusal (halt) or hand-off (INIT IPI into the new flash). */
#include <string.h>
#include "sevshim/handoff.h"
#include "sevshim/console.h"
#include "sevshim/io.h"
#include "sevshim/lapic.h"
#include "sevshim/layout.h"
#include "sevshim/verify.h"

void secret_wipe(void)
{
    volatile uint8_t *p = (volatile uint8_t *)(uintptr_t)SHIM_RAM_SECRET;
    for (uint32_t i = 0; i < SHIM_RAM_SECRET_SIZE; i++)
        p[i] = 0;
    barrier();
}

void secret_handoff(void)
{
    /* Hook for the secret hand-off (later issue): copy the EFI secret table into the accepted
     * BIOS's own SEV secret block here, or refuse per policy secret_mode. Today the shim
     * passes nothing on, so the only safe action is to wipe its copy. */
    secret_wipe();
}

void shim_refuse(enum sevshim_error e)
{
    const char *name = sevshim_error_name(e);
    unsigned code = (unsigned)e;
    char num[4] = { (char)('0' + code / 100 % 10), (char)('0' + code / 10 % 10),
                    (char)('0' + code % 10), 0 };
    if (name == NULL) {       /* never print a code that errors.h does not define */
        name = "internal";
        num[0] = '0'; num[1] = '9'; num[2] = '1';
    }
    con_str("SEVSHIM ERROR E");
    con_str(num);
    con_str(" ");
    con_line(name);
    secret_wipe();
    con_line("SEVSHIM HALT");
    cpu_halt_forever();
    __builtin_unreachable();
}

void shim_handoff(void)
{
    con_line("SEVSHIM HANDOFF");
    secret_handoff();
    lapic_init_self();
}
