/* The end of the shim: refusal (print, wipe, halt) or hand-off (wipe/pass secret, INIT). */
#ifndef SEVSHIM_HANDOFF_H
#define SEVSHIM_HANDOFF_H
#include "sevshim/errors.h"
const char *shim_error_name(enum sevshim_error e);
/* "SEVSHIM ERROR E0NN name", wipe the secret area, "SEVSHIM HALT", cli;hlt forever. */
void shim_refuse(enum sevshim_error e) __attribute__((noreturn));
/* Zero the shim's launch-secret page (footer entry "SEV secret block"). */
void secret_wipe(void);
/* Carries out a secret plan (secret.h): COPY copies the table into the BIOS's block and zeroes
 * the rest of the block; every action then zeroes the shim's page and prints
 * "SEVSHIM SECRET handed-off bytes=N base=0x...", "SEVSHIM SECRET none" or
 * "SEVSHIM SECRET wiped". The secret itself is never printed. */
struct sevshim_secret_plan;
void secret_handoff(const struct sevshim_secret_plan *plan);
/* Secret hand-off, "SEVSHIM HANDOFF", INIT IPI to self. */
void shim_handoff(const struct sevshim_secret_plan *plan) __attribute__((noreturn));
#endif
