/* TPM 2.0 encoding and strict response parsing for TPM2_Startup(SU_CLEAR) and TPM2_PCR_Event
 * (docs/formats.md section 7), big-endian on the wire. Pure: firmware, host tests, fuzzer. */
#ifndef SEVSHIM_TPM2_H
#define SEVSHIM_TPM2_H
#include <stddef.h>
#include <stdint.h>
#include "sevshim/errors.h"
#include "sevshim/verify.h"

#define TPM2_HEADER_SIZE        10u
#define TPM2_ST_NO_SESSIONS     0x8001u
#define TPM2_ST_SESSIONS        0x8002u
#define TPM2_CC_STARTUP         0x00000144u
#define TPM2_CC_PCR_EVENT       0x0000013Cu
#define TPM2_RC_SUCCESS         0x000u
#define TPM2_RC_INITIALIZE      0x100u     /* Startup when the TPM already started */
#define TPM2_RS_PW              0x40000009u
#define TPM2_STARTUP_CMD_SIZE   12u
#define TPM2_PCR_EVENT_CMD_SIZE (TPM2_HEADER_SIZE + 4u + 4u + 9u + 2u + SEVSHIM_TPM_EVENT_SIZE)
#define TPM2_MAX_BANKS          16u        /* HASH_COUNT bound for a hostile count */
#define TPM2_ALG_SHA384         0x000Cu

/* The 216-byte event of docs/formats.md section 7 for an accepted bundle. */
void sevshim_tpm_event(const struct sevshim_result *r, uint8_t out[SEVSHIM_TPM_EVENT_SIZE]);

/* Command encoders; out must hold TPM2_STARTUP_CMD_SIZE / TPM2_PCR_EVENT_CMD_SIZE bytes. */
void tpm2_startup_cmd(uint8_t out[TPM2_STARTUP_CMD_SIZE]);
void tpm2_pcr_event_cmd(uint8_t out[TPM2_PCR_EVENT_CMD_SIZE], uint32_t pcr,
                        const uint8_t event[SEVSHIM_TPM_EVENT_SIZE]);

/* Size field of a response header (0 if len < 10): the caller bounds it before reading. */
uint32_t tpm2_rsp_size(const uint8_t *rsp, size_t len);

/* Startup response: exactly 10 bytes, tag NO_SESSIONS, size 10, rc SUCCESS or INITIALIZE.
 * SEVSHIM_OK or SEVSHIM_E73. */
enum sevshim_error tpm2_startup_rsp(const uint8_t *rsp, size_t len);

/* PCR_Event response (len = the header's size): tag SESSIONS, rc 0, parameterSize, 1..16
 * distinct known algorithms' digests (SHA-384's = sha384_event), the password session's reply
 * (empty nonce, attributes, empty hmac), nothing else. *banks = count. OK or E073. */
enum sevshim_error tpm2_pcr_event_rsp(const uint8_t *rsp, size_t len,
                                      const uint8_t sha384_event[SEVSHIM_SHA384_SIZE],
                                      unsigned *banks);

/* ---- the TPM behind QEMU's tpm-crb (CRB interface, locality 0; firmware only, tpm.c) ---- */
#define TPM_CRB_BASE 0xFED40000u

/* 1 if a CRB TPM (InterfaceType CRB, version 1, registers valid) answers at TPM_CRB_BASE. */
int tpm_present(void);

/* Locality 0, TPM2_Startup(CLEAR) (already started is fine), TPM2_PCR_Event(pcr, event of r),
 * idle, locality released; *banks = banks extended. E071 interface, E072 timeout, E073 reply. */
enum sevshim_error tpm_measure(const struct sevshim_result *r, uint8_t pcr, unsigned *banks);
#endif
