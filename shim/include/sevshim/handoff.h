/* The end of the shim: refusal (print, wipe, halt) or hand-off (wipe/pass secret, INIT). */
#ifndef SEVSHIM_HANDOFF_H
#define SEVSHIM_HANDOFF_H
#include "sevshim/errors.h"
/* Wipe the secret area, MAC the refusal receipt, wipe the key; "SEVSHIM ERROR E0NN name",
 * "SEVSHIM RECEIPT <hex>|none", "SEVSHIM HALT", cli;hlt forever. */
void shim_refuse(enum sevshim_error e) __attribute__((noreturn));
/* Zero the shim's launch-secret page (footer entry "SEV secret block"). */
void secret_wipe(void);
/* Zero the whole main stack (exception path only: it runs on the IST1 stack). */
void stack_scrub_all(void);
/* Carries out a secret plan (secret.h): COPY puts the table in the BIOS's block (rest zeroed);
 * then the shim's page is zeroed and "SEVSHIM SECRET handed-off|none|wiped" printed. */
struct sevshim_secret_plan;
void secret_handoff(const struct sevshim_secret_plan *plan);
/* The OK receipt (key wiped), secret hand-off, "SEVSHIM RECEIPT <hex>|none",
 * "SEVSHIM HANDOFF", INIT IPI to self. */
void shim_handoff(const struct sevshim_secret_plan *plan) __attribute__((noreturn));
#endif
