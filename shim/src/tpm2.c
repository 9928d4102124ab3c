/* TPM2_Startup and TPM2_PCR_Event: encoders and strict response parsers. Every response field
 * is read after its bounds were checked; anything unexpected is E073 (the shim never guesses
 * what a TPM meant). */
#include <string.h>
#include "sevshim/tpm2.h"

static void be16(uint8_t *p, uint16_t v) { p[0] = (uint8_t)(v >> 8); p[1] = (uint8_t)v; }
static void be32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24); p[1] = (uint8_t)(v >> 16); p[2] = (uint8_t)(v >> 8); p[3] = (uint8_t)v;
}
static uint16_t rd16(const uint8_t *p) { return (uint16_t)((p[0] << 8) | p[1]); }
static uint32_t rd32(const uint8_t *p)
{
    return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) | p[3];
}
static void le32w(uint8_t *p, uint32_t v) { for (int i = 0; i < 4; i++) p[i] = (uint8_t)(v >> (8 * i)); }
static void le64w(uint8_t *p, uint64_t v) { for (int i = 0; i < 8; i++) p[i] = (uint8_t)(v >> (8 * i)); }

void sevshim_tpm_event(const struct sevshim_result *r, uint8_t out[SEVSHIM_TPM_EVENT_SIZE])
{
    memset(out, 0, SEVSHIM_TPM_EVENT_SIZE);
    memcpy(out, SEVSHIM_TPM_EVENT_MAGIC, 8);
    le32w(out + SEVSHIM_TPM_EVENT_OFF_LAYOUT, r->layout ? r->layout->id : 0);
    le64w(out + SEVSHIM_TPM_EVENT_OFF_VERSION, r->bios_version);
    memcpy(out + SEVSHIM_TPM_EVENT_OFF_KEY_ID, r->key_id, SEVSHIM_SHA384_SIZE);
    memcpy(out + SEVSHIM_TPM_EVENT_OFF_DIGEST, r->image_digest, SEVSHIM_SHA384_SIZE);
    memcpy(out + SEVSHIM_TPM_EVENT_OFF_POLICY, r->policy_digest, SEVSHIM_SHA384_SIZE);
    /* "no var store" is explicit: flag clear and an all-zero digest (docs/formats.md section 7) */
    if (r->vars_present) {
        le32w(out + SEVSHIM_TPM_EVENT_OFF_FLAGS, SEVSHIM_TPM_EVENT_FLAG_VARS);
        memcpy(out + SEVSHIM_TPM_EVENT_OFF_VARS, r->vars_digest, SEVSHIM_SHA384_SIZE);
    }
}

void tpm2_startup_cmd(uint8_t out[TPM2_STARTUP_CMD_SIZE])
{
    be16(out, TPM2_ST_NO_SESSIONS);
    be32(out + 2, TPM2_STARTUP_CMD_SIZE);
    be32(out + 6, TPM2_CC_STARTUP);
    be16(out + 10, 0x0000);                  /* TPM_SU_CLEAR */
}

void tpm2_pcr_event_cmd(uint8_t out[TPM2_PCR_EVENT_CMD_SIZE], uint32_t pcr,
                        const uint8_t event[SEVSHIM_TPM_EVENT_SIZE])
{
    uint8_t *p = out;
    be16(p, TPM2_ST_SESSIONS); p += 2;
    be32(p, TPM2_PCR_EVENT_CMD_SIZE); p += 4;
    be32(p, TPM2_CC_PCR_EVENT); p += 4;
    be32(p, pcr); p += 4;                    /* pcrHandle: PCR n is handle n */
    be32(p, 9); p += 4;                      /* authorizationSize */
    be32(p, TPM2_RS_PW); p += 4;             /* password session, empty password */
    be16(p, 0); p += 2;                      /* nonceCaller */
    *p++ = 0;                                /* sessionAttributes */
    be16(p, 0); p += 2;                      /* hmac (the empty password) */
    be16(p, SEVSHIM_TPM_EVENT_SIZE); p += 2; /* TPM2B_EVENT */
    memcpy(p, event, SEVSHIM_TPM_EVENT_SIZE);
}

uint32_t tpm2_rsp_size(const uint8_t *rsp, size_t len)
{
    return len < TPM2_HEADER_SIZE ? 0 : rd32(rsp + 2);
}

enum sevshim_error tpm2_startup_rsp(const uint8_t *rsp, size_t len)
{
    if (len != TPM2_HEADER_SIZE || rd16(rsp) != TPM2_ST_NO_SESSIONS || rd32(rsp + 2) != TPM2_HEADER_SIZE)
        return SEVSHIM_E73;
    uint32_t rc = rd32(rsp + 6);
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
    if (len < TPM2_HEADER_SIZE || rd32(rsp + 2) != len)
        return SEVSHIM_E73;
    if (rd32(rsp + 6) != TPM2_RC_SUCCESS || rd16(rsp) != TPM2_ST_SESSIONS)
        return SEVSHIM_E73;
    size_t off = TPM2_HEADER_SIZE;
    if (len - off < 4)
        return SEVSHIM_E73;
    uint32_t psize = rd32(rsp + off);
    off += 4;
    if (psize < 4 || psize > len - off)
        return SEVSHIM_E73;
    size_t pend = off + psize;
    uint32_t count = rd32(rsp + off);
    off += 4;
    if (count < 1 || count > TPM2_MAX_BANKS)
        return SEVSHIM_E73;
    uint16_t seen[TPM2_MAX_BANKS];
    for (uint32_t i = 0; i < count; i++) {
        if (pend - off < 2)
            return SEVSHIM_E73;
        uint16_t alg = rd16(rsp + off);
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
    if (len - off != 5 || rd16(rsp + off) != 0 || rd16(rsp + off + 3) != 0)
        return SEVSHIM_E73;
    *banks = count;
    return SEVSHIM_OK;
}
