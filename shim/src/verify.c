/* sevshim policy/manifest parsing and the verification sequence (docs/formats.md 2, 3, 6).
 * Uses only memcmp/memcpy/memset and BearSSL (SHA-384, ECDSA P-384 i31 raw verify); every
 * field is an explicit little-endian load at its documented offset after the length check. */
#include <string.h>
#include "bearssl_hash.h"
#include "bearssl_ec.h"
#include "sevshim/bytes.h"
#include "sevshim/verify.h"

#define SEVSHIM_LAYOUT_ROW(id, sym, name, code, vars, code_file, vars_file) \
    { id, name, code, SEVSHIM_FLASH_TOP - (code), vars, SEVSHIM_FLASH_TOP - (code) - (vars) },
static const struct sevshim_layout layouts[] = {
#include "sevshim/layouts.def"
};
#undef SEVSHIM_LAYOUT_ROW

const struct sevshim_layout *sevshim_layout_find(uint32_t id)
{
    for (size_t i = 0; i < sizeof(layouts) / sizeof(layouts[0]); i++)
        if (layouts[i].id == id)
#ifdef SEVSHIM_LAYOUT      /* the firmware knows only the layout it is built for (layout.h) */
            if (id == SEVSHIM_PICK(SEVSHIM_LAYOUT_, SEVSHIM_LAYOUT, ))
#endif
                return &layouts[i];
    return NULL;
}

const char *sevshim_error_name(enum sevshim_error e)
{
    switch ((int)e) {
#define SEVSHIM_NAME_CASE(code, name) case code: return name;
    SEVSHIM_ERROR_LIST(SEVSHIM_NAME_CASE)
#undef SEVSHIM_NAME_CASE
    default: return NULL;
    }
}

static int all_zero(const uint8_t *p, size_t n)
{
    uint8_t acc = 0;
    for (size_t i = 0; i < n; i++)
        acc |= p[i];
    return acc == 0;
}

/* 1 if two of the n entries at p (stride bytes apart) agree in their first len bytes */
static int any_dup(const uint8_t *p, unsigned n, size_t stride, size_t len)
{
    for (unsigned i = 0; i < n; i++)
        for (unsigned j = 0; j < i; j++)
            if (memcmp(p + (size_t)i * stride, p + (size_t)j * stride, len) == 0)
                return 1;
    return 0;
}

/* Index of the first of the n entries at p (stride bytes apart) starting with d[0..48), or -1 */
static int find48(const uint8_t *p, unsigned n, size_t stride, const uint8_t *d)
{
    for (unsigned i = 0; i < n; i++)
        if (memcmp(p + (size_t)i * stride, d, SEVSHIM_SHA384_SIZE) == 0)
            return (int)i;
    return -1;
}

void sevshim_sha384(const void *p, size_t n, uint8_t out[SEVSHIM_SHA384_SIZE])
{
    br_sha384_context c;
    br_sha384_init(&c);
    br_sha384_update(&c, p, n);
    br_sha384_out(&c, out);
}

/* floor(n / 2) for the P-384 group order n (FIPS 186-4 D.1.2.4 / SEC 2 2.5.1), big-endian. */
static const uint8_t p384_half_n[48] = {
    0x7f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
    0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
    0xe3, 0xb1, 0xa6, 0xc0, 0xfa, 0x1b, 0x96, 0xef, 0xac, 0x0d, 0x06, 0xd9,
    0x24, 0x58, 0x53, 0xbd, 0x76, 0x76, 0x0c, 0xb5, 0x66, 0x62, 0x94, 0xb9,
};

/* 1 if the big-endian 48-byte s is above floor(n/2). (r, s) and (r, n - s) both verify, so
 * only the low-s form is accepted: one signature per manifest (docs/formats.md section 3). */
static int s_is_high(const uint8_t *s)
{
    for (unsigned i = 0; i < sizeof(p384_half_n); i++)
        if (s[i] != p384_half_n[i])
            return s[i] > p384_half_n[i];
    return 0;
}

/* The public key must be a point on P-384: BearSSL's point decoder (inside mul) checks the
 * curve equation and the coordinate range; multiplying by 1 leaves a valid point unchanged. */
static int point_on_curve(const uint8_t *q)
{
    static const uint8_t one = 1;
    uint8_t tmp[SEVSHIM_P384_PUBKEY_SIZE];
    memcpy(tmp, q, sizeof(tmp));
    return br_ec_prime_i31.mul(tmp, sizeof(tmp), &one, 1, BR_EC_secp384r1) == 1;
}

enum sevshim_error sevshim_policy_parse(const uint8_t *r, size_t len, struct sevshim_policy *out)
{
    if (r == NULL || len != SEVSHIM_POLICY_REGION_SIZE)
        return SEVSHIM_E10;
    if (memcmp(r + SEVSHIM_POLICY_OFF_MAGIC, SEVSHIM_POLICY_MAGIC, 8) != 0)
        return SEVSHIM_E10;
    if (le16(r + SEVSHIM_POLICY_OFF_VERSION) != SEVSHIM_POLICY_VERSION)
        return SEVSHIM_E10;
    if (le16(r + SEVSHIM_POLICY_OFF_HDR_SIZE) != SEVSHIM_POLICY_HEADER_SIZE)
        return SEVSHIM_E10;

    /* parsed into p, copied to out only on success */
    struct sevshim_policy p = {
        .block = r,
        .total_size = le32(r + SEVSHIM_POLICY_OFF_TOTAL_SIZE),
        .layout = sevshim_layout_find(le32(r + SEVSHIM_POLICY_OFF_LAYOUT)),
        .secret_mode = r[SEVSHIM_POLICY_OFF_SECRET_MODE],
        .tpm_mode = r[SEVSHIM_POLICY_OFF_TPM_MODE],
        .tpm_pcr = r[SEVSHIM_POLICY_OFF_TPM_PCR],
        .vars_mode = r[SEVSHIM_POLICY_OFF_VARS_MODE],
        .nsigners = le16(r + SEVSHIM_POLICY_OFF_NSIGNERS),
        .ndigests = le16(r + SEVSHIM_POLICY_OFF_NDIGESTS),
        .nversions = le16(r + SEVSHIM_POLICY_OFF_NVERSIONS),
        .nallowed_vars = le16(r + SEVSHIM_POLICY_OFF_NALLOWED_VARS),
    };
    unsigned ns = p.nsigners, nd = p.ndigests, nv = p.nversions, na = p.nallowed_vars;

    if (ns < 1 || ns > SEVSHIM_MAX_SIGNERS || nd > SEVSHIM_MAX_DENIED_DIGESTS ||
        nv > SEVSHIM_MAX_DENIED_VERSIONS || na > SEVSHIM_MAX_ALLOWED_VARS)
        return SEVSHIM_E10;
    /* counts are bounded above, so this cannot overflow */
    uint32_t want = SEVSHIM_POLICY_HEADER_SIZE + SEVSHIM_SIGNER_SIZE * ns +
                    SEVSHIM_DENIED_DIGEST_SIZE * nd + SEVSHIM_DENIED_VERSION_SIZE * nv +
                    SEVSHIM_ALLOWED_VARS_SIZE * na;
    if (p.total_size != want || p.total_size > len)
        return SEVSHIM_E10;
    if (!all_zero(r + p.total_size, len - p.total_size))
        return SEVSHIM_E10;
    if (r[SEVSHIM_POLICY_OFF_RESERVED0] != 0 || r[SEVSHIM_POLICY_OFF_RESERVED2] != 0 ||
        !all_zero(r + SEVSHIM_POLICY_OFF_RESERVED1, SEVSHIM_POLICY_RESERVED1_LEN))
        return SEVSHIM_E10;
    /* a list only with allow, and allow only with a list (an empty allow-list is "none") */
    if (p.vars_mode > SEVSHIM_VARS_ANY || (p.vars_mode == SEVSHIM_VARS_ALLOW) != (na != 0))
        return SEVSHIM_E10;
    if (p.layout == NULL)
        return SEVSHIM_E10;
    if (p.secret_mode > SEVSHIM_SECRET_REQUIRE || p.tpm_mode > SEVSHIM_TPM_REQUIRED)
        return SEVSHIM_E10;
    if (p.tpm_pcr > SEVSHIM_TPM_MAX_PCR || (p.tpm_mode == SEVSHIM_TPM_OFF && p.tpm_pcr != 0))
        return SEVSHIM_E10;

    p.signers = r + SEVSHIM_POLICY_HEADER_SIZE;
    for (unsigned i = 0; i < ns; i++) {
        const uint8_t *s = p.signers + (size_t)i * SEVSHIM_SIGNER_SIZE;
        uint8_t id[SEVSHIM_SHA384_SIZE];
        if (s[SEVSHIM_SIGNER_OFF_PUBKEY] != 0x04)
            return SEVSHIM_E10;
        if (!all_zero(s + SEVSHIM_SIGNER_OFF_RESERVED, 7))
            return SEVSHIM_E10;
        if (!point_on_curve(s + SEVSHIM_SIGNER_OFF_PUBKEY))
            return SEVSHIM_E10;
        sevshim_sha384(s + SEVSHIM_SIGNER_OFF_PUBKEY, SEVSHIM_P384_PUBKEY_SIZE, id);
        if (memcmp(id, s + SEVSHIM_SIGNER_OFF_KEY_ID, SEVSHIM_SHA384_SIZE) != 0)
            return SEVSHIM_E10;
    }

    /* no signer twice, deny lists without duplicates (as the Go encoder and the golden files
     * require) */
    p.digests = p.signers + (size_t)ns * SEVSHIM_SIGNER_SIZE;
    p.versions = p.digests + (size_t)nd * SEVSHIM_DENIED_DIGEST_SIZE;
    p.allowed_vars = p.versions + (size_t)nv * SEVSHIM_DENIED_VERSION_SIZE;
    if (any_dup(p.signers + SEVSHIM_SIGNER_OFF_KEY_ID, ns, SEVSHIM_SIGNER_SIZE,
                SEVSHIM_SHA384_SIZE) ||
        any_dup(p.digests, nd, SEVSHIM_DENIED_DIGEST_SIZE, SEVSHIM_DENIED_DIGEST_SIZE) ||
        any_dup(p.versions, nv, SEVSHIM_DENIED_VERSION_SIZE, SEVSHIM_DENIED_VERSION_SIZE) ||
        any_dup(p.allowed_vars, na, SEVSHIM_ALLOWED_VARS_SIZE, SEVSHIM_ALLOWED_VARS_SIZE))
        return SEVSHIM_E10;
    *out = p;
    return SEVSHIM_OK;
}

enum sevshim_error sevshim_manifest_wellformed(const uint8_t *m)
{
    if (memcmp(m + SEVSHIM_MANIFEST_OFF_MAGIC, SEVSHIM_MANIFEST_MAGIC, 8) != 0)
        return SEVSHIM_E22;
    if (le16(m + SEVSHIM_MANIFEST_OFF_VERSION) != SEVSHIM_MANIFEST_VERSION)
        return SEVSHIM_E22;
    if (le16(m + SEVSHIM_MANIFEST_OFF_SIGNED_SZ) != SEVSHIM_MANIFEST_SIGNED_SIZE)
        return SEVSHIM_E22;
    if (!all_zero(m + SEVSHIM_MANIFEST_OFF_RESERVED, SEVSHIM_MANIFEST_RESERVED_LEN))
        return SEVSHIM_E22;
    /* version string: printable ASCII, NUL-padded, at most 63 characters, zero after the NUL */
    const uint8_t *v = m + SEVSHIM_MANIFEST_OFF_VERSTR;
    size_t n = 0;
    while (n < SEVSHIM_MANIFEST_VERSTR_LEN && v[n] != 0) {
        if (v[n] < 0x20 || v[n] > 0x7E)
            return SEVSHIM_E22;
        n++;
    }
    if (n == SEVSHIM_MANIFEST_VERSTR_LEN)
        return SEVSHIM_E22;
    if (!all_zero(v + n, SEVSHIM_MANIFEST_VERSTR_LEN - n))
        return SEVSHIM_E22;
    return SEVSHIM_OK;
}

enum sevshim_error sevshim_verify(const struct sevshim_input *in, struct sevshim_result *out)
{
    struct sevshim_policy pol;
    enum sevshim_error e;

    memset(out, 0, sizeof(*out));

    /* 2. the embedded policy */
    e = sevshim_policy_parse(in->policy_region, in->policy_region_len, &pol);
    if (e != SEVSHIM_OK)
        return e;
    out->layout = pol.layout;
    out->secret_mode = pol.secret_mode;
    out->tpm_mode = pol.tpm_mode;
    out->tpm_pcr = pol.tpm_pcr;
    sevshim_sha384(pol.block, pol.total_size, out->policy_digest);

    /* 3. manifest present, 352 bytes, well formed */
    if (!in->manifest_present)
        return SEVSHIM_E20;
    if (in->manifest_size != SEVSHIM_MANIFEST_SIZE || in->manifest == NULL)
        return SEVSHIM_E21;
    const uint8_t *m = in->manifest;
    e = sevshim_manifest_wellformed(m);
    if (e != SEVSHIM_OK)
        return e;

    /* 4. signer in the policy, signature */
    int si = find48(pol.signers + SEVSHIM_SIGNER_OFF_KEY_ID, pol.nsigners, SEVSHIM_SIGNER_SIZE,
                    m + SEVSHIM_MANIFEST_OFF_KEY_ID);
    if (si < 0)
        return SEVSHIM_E23;
    const uint8_t *signer = pol.signers + (size_t)si * SEVSHIM_SIGNER_SIZE;
    out->signer_index = (unsigned)si;
    uint8_t hash[SEVSHIM_SHA384_SIZE], q[SEVSHIM_P384_PUBKEY_SIZE], sig[SEVSHIM_P384_SIG_SIZE];
    br_ec_public_key pk = { BR_EC_secp384r1, q, sizeof(q) };
    memcpy(q, signer + SEVSHIM_SIGNER_OFF_PUBKEY, sizeof(q));
    memcpy(sig, m + SEVSHIM_MANIFEST_OFF_SIGNATURE, sizeof(sig));
    if (s_is_high(sig + SEVSHIM_P384_SIG_SIZE / 2))
        return SEVSHIM_E27;
    sevshim_sha384(m, SEVSHIM_MANIFEST_SIGNED_SIZE, hash);
    if (br_ecdsa_i31_vrfy_raw(&br_ec_prime_i31, hash, sizeof(hash), &pk, sig, sizeof(sig)) != 1)
        return SEVSHIM_E24;

    /* 5. layout and image size */
    uint32_t mlayout = le32(m + SEVSHIM_MANIFEST_OFF_LAYOUT);
    uint64_t image_size = le64(m + SEVSHIM_MANIFEST_OFF_IMAGE_SIZE);
    if (mlayout != pol.layout->id)
        return SEVSHIM_E25;
    if (image_size != pol.layout->code_size)
        return SEVSHIM_E26;

    /* 6. BIOS present and of the signed size */
    if (!in->bios_present)
        return SEVSHIM_E30;
    if (in->bios_size < image_size)
        return SEVSHIM_E31;
    if (in->bios_size > image_size)
        return SEVSHIM_E32;
    if (in->bios == NULL)
        return SEVSHIM_E91;  /* caller bug: the size fits but nothing was read */

    /* 7. image digest */
    sevshim_sha384(in->bios, (size_t)image_size, out->image_digest);
    if (memcmp(out->image_digest, m + SEVSHIM_MANIFEST_OFF_DIGEST, SEVSHIM_SHA384_SIZE) != 0)
        return SEVSHIM_E33;

    /* 8. floor, denied digests, denied versions */
    uint64_t version = le64(m + SEVSHIM_MANIFEST_OFF_BIOS_VER);
    if (version < le64(signer + SEVSHIM_SIGNER_OFF_MIN_VERSION))
        return SEVSHIM_E34;
    if (find48(pol.digests, pol.ndigests, SEVSHIM_DENIED_DIGEST_SIZE, out->image_digest) >= 0)
        return SEVSHIM_E35;
    for (unsigned i = 0; i < pol.nversions; i++)
        if (le64(pol.versions + (size_t)i * SEVSHIM_DENIED_VERSION_SIZE) == version)
            return SEVSHIM_E36;

    /* 9. vars: the var store is host data the accepted BIOS trusts (Secure Boot keys, boot
     * order), so the owner's policy decides whether one may be programmed at all */
    if (in->vars_present) {
        if (pol.vars_mode == SEVSHIM_VARS_NONE)
            return SEVSHIM_E41;
        if (in->vars_size != pol.layout->vars_size)
            return SEVSHIM_E40;
        if (in->vars == NULL)
            return SEVSHIM_E91;  /* caller bug: the size fits but nothing was read */
        sevshim_sha384(in->vars, (size_t)pol.layout->vars_size, out->vars_digest);
        if (pol.vars_mode == SEVSHIM_VARS_ALLOW &&
            find48(pol.allowed_vars, pol.nallowed_vars, SEVSHIM_ALLOWED_VARS_SIZE,
                   out->vars_digest) < 0)
            return SEVSHIM_E42;
        out->vars_present = 1;
    }

    out->bios_version = version;
    memcpy(out->key_id, m + SEVSHIM_MANIFEST_OFF_KEY_ID, SEVSHIM_SHA384_SIZE);
    memcpy(out->version_string, m + SEVSHIM_MANIFEST_OFF_VERSTR, SEVSHIM_MANIFEST_VERSTR_LEN);
    out->version_string[SEVSHIM_MANIFEST_VERSTR_LEN - 1] = 0;
    return SEVSHIM_OK;
}
