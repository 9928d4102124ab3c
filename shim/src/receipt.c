/* The receipt (docs/formats.md section 9): encoder, HMAC-SHA-384, receipt-key extraction from
 * the EFI secret table, and the one live receipt of this boot. No hardware access. */
#include <string.h>
#include "bearssl_hash.h"
#include "bearssl_hmac.h"
#include "sevshim/bytes.h"
#include "sevshim/receipt.h"
#include "sevshim/secret.h"
#include "sevshim/verify.h"

static const uint8_t receipt_key_guid[16] = SEVSHIM_GUID_RECEIPT_KEY;

void sevshim_receipt_encode(const struct sevshim_receipt *r, uint8_t out[SEVSHIM_RECEIPT_SIZE])
{
    uint16_t f = r->flags & SEVSHIM_RECEIPT_F_ALL;
    memset(out, 0, SEVSHIM_RECEIPT_SIZE);
    memcpy(out + SEVSHIM_RECEIPT_OFF_MAGIC, SEVSHIM_RECEIPT_MAGIC, 8);
    put_le(out + SEVSHIM_RECEIPT_OFF_VERSION, SEVSHIM_RECEIPT_VERSION, 2);
    put_le(out + SEVSHIM_RECEIPT_OFF_SHIM_FORMAT, SEVSHIM_INFO_FORMAT_VERSION, 2);
    put_le(out + SEVSHIM_RECEIPT_OFF_VERDICT, r->verdict, 2);
    put_le(out + SEVSHIM_RECEIPT_OFF_FLAGS, f, 2);
    if (f & SEVSHIM_RECEIPT_F_NONCE)
        memcpy(out + SEVSHIM_RECEIPT_OFF_NONCE, r->nonce, SEVSHIM_NONCE_SIZE);
    if (f & SEVSHIM_RECEIPT_F_MANIFEST) {
        put_le(out + SEVSHIM_RECEIPT_OFF_BIOS_VER, r->bios_version, 8);
        memcpy(out + SEVSHIM_RECEIPT_OFF_MANIFEST, r->manifest_digest, SEVSHIM_SHA384_SIZE);
        memcpy(out + SEVSHIM_RECEIPT_OFF_KEY_ID, r->signer_key_id, SEVSHIM_SHA384_SIZE);
    }
    if (f & SEVSHIM_RECEIPT_F_IMAGE)
        memcpy(out + SEVSHIM_RECEIPT_OFF_IMAGE, r->image_digest, SEVSHIM_SHA384_SIZE);
    if (f & SEVSHIM_RECEIPT_F_VARS)
        memcpy(out + SEVSHIM_RECEIPT_OFF_VARS, r->vars_digest, SEVSHIM_SHA384_SIZE);
    if (f & SEVSHIM_RECEIPT_F_POLICY)
        memcpy(out + SEVSHIM_RECEIPT_OFF_POLICY, r->policy_digest, SEVSHIM_SHA384_SIZE);
}

void sevshim_receipt_mac(const uint8_t *key, size_t key_len, const uint8_t *msg, size_t len,
                         uint8_t out[SEVSHIM_RECEIPT_MAC_SIZE])
{
    /* RFC 2104 HMAC with SHA-384 (FIPS 180-4); the contexts hold the key's inner and outer
     * hash states, which forge as well as the key itself: wiped before return */
    br_hmac_key_context kc;
    br_hmac_context hc;
    br_hmac_key_init(&kc, &br_sha384_vtable, key, key_len);
    br_hmac_init(&hc, &kc, 0);
    br_hmac_update(&hc, msg, len);
    br_hmac_out(&hc, out);
    sevshim_wipe(&hc, sizeof(hc));
    sevshim_wipe(&kc, sizeof(kc));
}

enum sevshim_error sevshim_receipt_key_take(volatile uint8_t *area, size_t area_len,
                                            uint8_t key[SEVSHIM_RECEIPT_KEY_SIZE], int *found)
{
    uint32_t total;
    *found = 0;
    sevshim_wipe(key, SEVSHIM_RECEIPT_KEY_SIZE);
    if (sevshim_secret_table_check(area, area_len, &total) != SEVSHIM_OK || total == 0)
        return SEVSHIM_OK;      /* malformed: the secret hand-off refuses it (E064) in order */

    /* the check above proved that the entries tile [20, total) */
    uint32_t at = 0, at_len = 0;
    for (uint32_t off = SEVSHIM_EFI_SECRET_HEADER_SIZE; off < total;) {
        uint32_t el = vle32(area + off + 16);
        int match = 1;
        for (unsigned i = 0; i < 16; i++)
            if (area[off + i] != receipt_key_guid[i])
                match = 0;
        if (match) {
            if (at != 0 || el != SEVSHIM_EFI_SECRET_ENTRY_HDR_SIZE + SEVSHIM_RECEIPT_KEY_SIZE)
                return SEVSHIM_E65;
            at = off;
            at_len = el;
        }
        off += el;
    }
    if (at == 0)
        return SEVSHIM_OK;

    for (unsigned i = 0; i < SEVSHIM_RECEIPT_KEY_SIZE; i++)
        key[i] = area[at + SEVSHIM_EFI_SECRET_ENTRY_HDR_SIZE + i];
    uint32_t nt = total - at_len;
    if (nt == SEVSHIM_EFI_SECRET_HEADER_SIZE) {
        sevshim_wipe(area, total);   /* the key was the only entry: nothing is left to hand on */
    } else {
        for (uint32_t i = at; i < nt; i++)
            area[i] = area[i + at_len];
        sevshim_wipe(area + nt, total - nt);
        put_le(area + 16, nt, 4);
    }
    *found = 1;
    return SEVSHIM_OK;
}

/* ---- the one receipt of this boot ------------------------------------------------------- */

static struct {
    int have_key, done;
    uint8_t key[SEVSHIM_RECEIPT_KEY_SIZE];
    struct sevshim_receipt r;
} st;

enum sevshim_error receipt_begin(volatile uint8_t *area, size_t area_len)
{
    int found;
    receipt_wipe();
    st.done = 0;
    enum sevshim_error e = sevshim_receipt_key_take(area, area_len, st.key, &found);
    st.have_key = e == SEVSHIM_OK && found;
    return e;
}

int receipt_have_key(void) { return st.have_key; }

void receipt_set_nonce(const uint8_t nonce[SEVSHIM_NONCE_SIZE])
{
    memcpy(st.r.nonce, nonce, SEVSHIM_NONCE_SIZE);
    st.r.flags |= SEVSHIM_RECEIPT_F_NONCE;
}

void receipt_set_manifest(const uint8_t *m)
{
    sevshim_sha384(m, SEVSHIM_MANIFEST_SIZE, st.r.manifest_digest);
    st.r.bios_version = le64(m + SEVSHIM_MANIFEST_OFF_BIOS_VER);
    memcpy(st.r.signer_key_id, m + SEVSHIM_MANIFEST_OFF_KEY_ID, SEVSHIM_SHA384_SIZE);
    st.r.flags |= SEVSHIM_RECEIPT_F_MANIFEST;
}

void receipt_set_digest(uint16_t flag, const uint8_t d[SEVSHIM_SHA384_SIZE])
{
    uint8_t *f = flag == SEVSHIM_RECEIPT_F_IMAGE ? st.r.image_digest :
                 flag == SEVSHIM_RECEIPT_F_VARS ? st.r.vars_digest :
                 flag == SEVSHIM_RECEIPT_F_POLICY ? st.r.policy_digest : NULL;
    if (f != NULL) {
        memcpy(f, d, SEVSHIM_SHA384_SIZE);
        st.r.flags |= flag;
    }
}

int receipt_finish(uint16_t verdict, uint8_t out[SEVSHIM_RECEIPT_SIZE + SEVSHIM_RECEIPT_MAC_SIZE])
{
    int ok = st.have_key && !st.done;
    if (ok) {
        st.r.verdict = verdict;
        sevshim_receipt_encode(&st.r, out);
        sevshim_receipt_mac(st.key, sizeof(st.key), out, SEVSHIM_RECEIPT_SIZE,
                            out + SEVSHIM_RECEIPT_SIZE);
    }
    receipt_wipe();
    st.done = 1;
    return ok;
}

void receipt_wipe(void)
{
    sevshim_wipe(st.key, sizeof(st.key));
    sevshim_wipe(&st.r, sizeof(st.r));
    st.have_key = 0;
}
