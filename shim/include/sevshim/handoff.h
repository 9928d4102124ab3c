/* The end of the shim: refusal (print, wipe, halt) or hand-off (wipe/pass secret, INIT). */
#ifndef SEVSHIM_HANDOFF_H
#define SEVSHIM_HANDOFF_H
#include "sevshim/errors.h"
const char *shim_error_name(enum sevshim_error e);
/* "SEVSHIM ERROR E0NN name", wipe the secret area, "SEVSHIM HALT", cli;hlt forever. */
void shim_refuse(enum sevshim_error e) __attribute__((noreturn));
/* Zero the shim's launch-secret page (footer entry "SEV secret block"). */
void secret_wipe(void);
/* Secret hook: today it zeroes the shim's launch-secret page. A later issue copies the secret
 * into the accepted BIOS's own secret block here, before the wipe. */
void secret_handoff(void);
/* "SEVSHIM HANDOFF", secret hook, INIT IPI to self. */
void shim_handoff(void) __attribute__((noreturn));
#endif
