/* TPM2_Startup and TPM2_PCR_Event encoders and strict response parsers: every field is read
 * after its bounds check; anything unexpected is E073 (never a guess at what a TPM meant). */
#include <string.h>
#include "sevshim/bytes.h"
#include "sevshim/tpm2.h"


void sevshim_tpm_event(const struct sevshim_result *r, uint8_t out[SEVSHIM_TPM_EVENT_SIZE])
{
    memset(out, 0, SEVSHIM_TPM_EVENT_SIZE);
    memcpy(out, SEVSHIM_TPM_EVENT_MAGIC, 8);
    put_le(out + SEVSHIM_TPM_EVENT_OFF_LAYOUT, r->layout ? r->layout->id : 0, 4);
    put_le(out + SEVSHIM_TPM_EVENT_OFF_VERSION, r->bios_version, 8);
    memcpy(out + SEVSHIM_TPM_EVENT_OFF_KEY_ID, r->key_id, SEVSHIM_SHA384_SIZE);
    memcpy(out + SEVSHIM_TPM_EVENT_OFF_DIGEST, r->image_digest, SEVSHIM_SHA384_SIZE);
    memcpy(out + SEVSHIM_TPM_EVENT_OFF_POLICY, r->policy_digest, SEVSHIM_SHA384_SIZE);
    /* "no var store" is explicit: flag clear and an all-zero digest (docs/formats.md section 7) */
    if (r->vars_present) {
        put_le(out + SEVSHIM_TPM_EVENT_OFF_FLAGS, SEVSHIM_TPM_EVENT_FLAG_VARS, 4);
        memcpy(out + SEVSHIM_TPM_EVENT_OFF_VARS, r->vars_digest, SEVSHIM_SHA384_SIZE);
    }
}

void tpm2_startup_cmd(uint8_t out[TPM2_STARTUP_CMD_SIZE])
{
    put_be(out, TPM2_ST_NO_SESSIONS, 2);
    put_be(out + 2, TPM2_STARTUP_CMD_SIZE, 4);
    put_be(out + 6, TPM2_CC_STARTUP, 4);
    put_be(out + 10, 0x0000, 2);              /* TPM_SU_CLEAR */
}

void tpm2_pcr_event_cmd(uint8_t out[TPM2_PCR_EVENT_CMD_SIZE], uint32_t pcr,
                        const uint8_t event[SEVSHIM_TPM_EVENT_SIZE])
{
    uint8_t *p = out;
    put_be(p, TPM2_ST_SESSIONS, 2); p += 2;
    put_be(p, TPM2_PCR_EVENT_CMD_SIZE, 4); p += 4;
    put_be(p, TPM2_CC_PCR_EVENT, 4); p += 4;
    put_be(p, pcr, 4); p += 4;                /* pcrHandle: PCR n is handle n */
    put_be(p, 9, 4); p += 4;                  /* authorizationSize */
    put_be(p, TPM2_RS_PW, 4); p += 4;         /* password session, empty password */
    put_be(p, 0, 2); p += 2;                  /* nonceCaller */
    *p++ = 0;                                 /* sessionAttributes */
    put_be(p, 0, 2); p += 2;                  /* hmac (the empty password) */
    put_be(p, SEVSHIM_TPM_EVENT_SIZE, 2); p += 2; /* TPM2B_EVENT */
    memcpy(p, event, SEVSHIM_TPM_EVENT_SIZE);
}

uint32_t tpm2_rsp_size(const uint8_t *rsp, size_t len)
{
    return len < TPM2_HEADER_SIZE ? 0 : be32(rsp + 2);
}

enum sevshim_error tpm2_startup_rsp(const uint8_t *rsp, size_t len)
{
    if (len != TPM2_HEADER_SIZE || be16(rsp) != TPM2_ST_NO_SESSIONS || be32(rsp + 2) != TPM2_HEADER_SIZE)
        return SEVSHIM_E73;
    uint32_t rc = be32(rsp + 6);
    return (rc == TPM2_RC_SUCCESS || rc == TPM2_RC_INITIALIZE) ? SEVSHIM_OK : SEVSHIM_E73;
}

static unsigned alg_size(uint16_t alg)
{
    switch (alg) {
    case 0x0004: return 20;   /* SHA1 */
    case 0x000B: return 32;   /* SHA256 */
    case 0x000C: return 48;   /* SHA384 */
    case 0x000D: return 64;   /* SHA512 */
    case 0x0012: return 32;   /* SM3_256 */
    default: return 0;
    }
}

enum sevshim_error tpm2_pcr_event_rsp(const uint8_t *rsp, size_t len,
                                      const uint8_t sha384_event[SEVSHIM_SHA384_SIZE],
                                      unsigned *banks)
{
    *banks = 0;
    if (len < TPM2_HEADER_SIZE || be32(rsp + 2) != len)
        return SEVSHIM_E73;
    if (be32(rsp + 6) != TPM2_RC_SUCCESS || be16(rsp) != TPM2_ST_SESSIONS)
        return SEVSHIM_E73;
    size_t off = TPM2_HEADER_SIZE;
    if (len - off < 4)
        return SEVSHIM_E73;
    uint32_t psize = be32(rsp + off);
    off += 4;
    if (psize < 4 || psize > len - off)
        return SEVSHIM_E73;
    size_t pend = off + psize;
    uint32_t count = be32(rsp + off);
    off += 4;
    if (count < 1 || count > TPM2_MAX_BANKS)
        return SEVSHIM_E73;
    uint16_t seen[TPM2_MAX_BANKS];
    for (uint32_t i = 0; i < count; i++) {
        if (pend - off < 2)
            return SEVSHIM_E73;
        uint16_t alg = be16(rsp + off);
        off += 2;
        unsigned n = alg_size(alg);
        if (n == 0 || pend - off < n)
            return SEVSHIM_E73;
        for (uint32_t j = 0; j < i; j++)
            if (seen[j] == alg)
                return SEVSHIM_E73;
        seen[i] = alg;
        if (alg == TPM2_ALG_SHA384 && memcmp(rsp + off, sha384_event, SEVSHIM_SHA384_SIZE) != 0)
            return SEVSHIM_E73;
        off += n;
    }
    if (off != pend)
        return SEVSHIM_E73;
    /* TPMS_AUTH_RESPONSE for the password session: nonceTPM (empty), attributes, hmac (empty) */
    if (len - off != 5 || be16(rsp + off) != 0 || be16(rsp + off + 3) != 0)
        return SEVSHIM_E73;
    *banks = count;
    return SEVSHIM_OK;
}
