/* The TPM behind QEMU's tpm-crb (CRB interface, locality 0, at 0xFED40000): measure the
 * accepted BIOS with TPM2_PCR_Event (docs/formats.md section 7). */
#ifndef SEVSHIM_TPM_H
#define SEVSHIM_TPM_H
#include "sevshim/errors.h"
#include "sevshim/verify.h"

#define TPM_CRB_BASE 0xFED40000u

/* 1 if a CRB TPM (InterfaceType CRB, version 1, registers valid) answers at TPM_CRB_BASE. */
int tpm_present(void);

/* Locality 0, TPM2_Startup(CLEAR) (an already started TPM is fine), TPM2_PCR_Event(pcr,
 * event of r), back to idle, locality released. *banks = PCR banks the TPM extended.
 * E071 interface, E072 timeout, E073 bad response. */
enum sevshim_error tpm_measure(const struct sevshim_result *r, uint8_t pcr, unsigned *banks);
#endif
