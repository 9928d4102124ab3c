/* libFuzzer target: sevshim_verify (src/verify.c) on inputs that carry a VALID signature.
 *
 * fuzz_verify.c mutates raw bytes, so nearly every input stops at the signature check (E024)
 * and steps 5..9 of docs/formats.md section 6 are only reached by the committed seeds. Here
 * the harness builds the inputs from fuzzed fields and signs them itself:
 *   - the policy block (section 2): header fields, 1..16 signers (signer 0..n-1 are fixed test
 *     keys; one of them, chosen by the input, is the signing key), each signer's min_version,
 *     the deny lists;
 *   - the BIOS: a zero image of the layout's code size with fuzzed bytes in its last 64 KiB;
 *   - the vars: a zero var store of the layout's vars size with fuzzed bytes, and its size;
 *   - the manifest (section 3): layout, image_size, bios_version, version string, and on
 *     request raw magic/version/signed_size, reserved bytes, key id, digest or signature;
 *     image_digest = SHA-384 of the fuzzed BIOS, then signed with the chosen P-384 test key
 *     (ECDSA over SHA-384, BearSSL br_ecdsa_i31_sign_raw: RFC 6979 deterministic nonces).
 * Oracles: every refusal is a code of errors.h; an accepted input has a result that matches
 * what was signed; and a small model of the check order (expect(), written from
 * docs/formats.md section 6, not from verify.c) predicts the exact code for every input.
 *
 * Input: 3 flag bytes (struct fz_flags), then the fields in the order fz_*() reads them; an
 * exhausted input reads as zeros, so an empty tail is the valid, accepted case.
 *
 * Policy v2's var-store rule (mode, allow-list) is read from the END of the input
 * (build_vars_rule), so the other fields keep their meaning; the model (expect()) has the
 * low-s rule (E027) and the var-store rules (E041, E040, E042) in the shim's order.
 * Throughput: `make fuzz` prints execs/s (70..90/s measured on a shared 2-core machine). The
 * layout fixes the BIOS at 3.5 MiB, and sevshim_verify hashes all of it on every run; the
 * harness only hashes the fuzzed 64 KiB window (the zero prefix's SHA-384 state is computed
 * once), and signs once. A mutant verify.c without the floor check (E034), or with the
 * denied-version compare off by one (E036), aborts within two minutes without their seeds.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "bearssl_ec.h"
#include "bearssl_hash.h"
#include "sevshim/verify.h"

#define CODE_SIZE SEVSHIM_OVMF_4M_CODE_SIZE
#define VARS_SIZE SEVSHIM_OVMF_4M_VARS_SIZE
#define BIOS_WINDOW 0x10000u          /* fuzzed part: the last 64 KiB of the image */
#define VARS_WINDOW 0x1000u
#define NKEYS SEVSHIM_MAX_SIGNERS

/* ---- input cursor ----------------------------------------------------------------------- */
struct fz {
    const uint8_t *p;
    size_t n;
};

static uint8_t fz_u8(struct fz *f)
{
    if (f->n == 0)
        return 0;
    f->n--;
    return *f->p++;
}

static void fz_bytes(struct fz *f, uint8_t *out, size_t len)
{
    size_t k = len < f->n ? len : f->n;
    memcpy(out, f->p, k);
    memset(out + k, 0, len - k);
    f->p += k;
    f->n -= k;
}

static uint64_t fz_u64(struct fz *f)
{
    uint8_t b[8];
    fz_bytes(f, b, 8);
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--)
        v = (v << 8) | b[i];
    return v;
}

static uint32_t fz_u32(struct fz *f) { return (uint32_t)fz_u64(f); }

static void put16(uint8_t *p, uint16_t v) { p[0] = (uint8_t)v; p[1] = (uint8_t)(v >> 8); }
static void put32(uint8_t *p, uint32_t v) { put16(p, (uint16_t)v); put16(p + 2, (uint16_t)(v >> 16)); }
static void put64(uint8_t *p, uint64_t v) { put32(p, (uint32_t)v); put32(p + 4, (uint32_t)(v >> 32)); }
static uint64_t get64(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--)
        v = (v << 8) | p[i];
    return v;
}

static int all_zero(const uint8_t *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (p[i])
            return 0;
    return 1;
}

static void sha384(const uint8_t *p, size_t n, uint8_t out[48])
{
    br_sha384_context c;
    br_sha384_init(&c);
    br_sha384_update(&c, p, n);
    br_sha384_out(&c, out);
}

/* ---- flags: a set bit leaves the valid path ------------------------------------------------ */
enum {
    /* a */
    F_NO_MANIFEST = 1 << 0,   /* E020 */
    F_MAN_SIZE = 1 << 1,      /* manifest size != 352: E021 */
    F_NO_BIOS = 1 << 2,       /* E030 */
    F_BIOS_SIZE = 1 << 3,     /* BIOS one byte short (E031) or, with F_BIOS_LONG, long (E032) */
    F_BIOS_LONG = 1 << 4,
    F_VARS = 1 << 5,          /* vars present (valid size unless F_VARS_SIZE) */
    F_VARS_SIZE = 1 << 6,     /* E040 */
    F_RAW_VERSTR = 1 << 7,    /* version string bytes as given (else mapped to printable) */
    /* b */
    F_RAW_HEAD = 1 << 0,      /* manifest magic/version/signed_size from the input */
    F_RAW_RESERVED = 1 << 1,  /* manifest reserved bytes from the input */
    F_RAW_KEYID = 1 << 2,     /* manifest key id from the input */
    F_RAW_DIGEST = 1 << 3,    /* manifest image_digest from the input */
    F_FLIP_BIOS = 1 << 4,     /* one BIOS byte changed after signing */
    F_RAW_SIG = 1 << 5,       /* signature from the input */
    F_POL_RESERVED = 1 << 6,  /* policy reserved bytes from the input */
    F_DENY_DIGEST = 1 << 7,   /* the BIOS digest is denied */
    /* c */
    F_DENY_VERSION = 1 << 0,  /* the manifest's version is denied */
    F_MANY_SIGNERS = 1 << 1,  /* 1..16 signers (else 1..4: each costs an on-curve check) */
    F_POL_LAYOUT = 1 << 2,    /* policy layout id from the input */
    F_MAN_LAYOUT = 1 << 3,    /* manifest layout id from the input */
    F_IMAGE_SIZE = 1 << 4,    /* manifest image_size from the input */
    F_RAW_MODES = 1 << 5,     /* secret/tpm mode and pcr bytes as given */
    F_DUP_DENY = 1 << 6,      /* repeat a denied entry */
    F_HIGH_S = 1 << 7,        /* sign with (r, n - s) instead of (r, s) */
};

struct fz_flags {
    uint8_t a, b, c;
};

/* ---- fixed test keys (scalars 0x11.., never used for anything real) ---------------------- */
static uint8_t key_x[NKEYS][48];
static br_ec_private_key key_sk[NKEYS];
static uint8_t key_pub[NKEYS][SEVSHIM_P384_PUBKEY_SIZE];
static uint8_t key_id[NKEYS][48];

/* the order n of P-384 (FIPS 186-4, D.1.2.4), big-endian */
static const uint8_t p384_n[48] = {
    0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
    0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xc7, 0x63, 0x4d, 0x81, 0xf4, 0x37, 0x2d, 0xdf,
    0x58, 0x1a, 0x0d, 0xb2, 0x48, 0xb0, 0xa7, 0x7a, 0xec, 0xec, 0x19, 0x6a, 0xcc, 0xc5, 0x29, 0x73,
};

/* s := n - s (48-byte big-endian), the other valid s of the same signature */
static void negate_s(uint8_t s[48])
{
    int borrow = 0;
    for (int i = 47; i >= 0; i--) {
        int d = (int)p384_n[i] - s[i] - borrow;
        borrow = d < 0;
        s[i] = (uint8_t)(d + (borrow ? 256 : 0));
    }
}

static uint8_t *bios, *vars;
static br_sha384_context bios_prefix;  /* SHA-384 state after the zero part of the BIOS */

static void init_once(void)
{
    for (unsigned k = 0; k < NKEYS; k++) {
        memset(key_x[k], 0x11 * (k + 1) & 0x7f, 48);   /* < n: the top byte is below 0xff */
        key_x[k][47] ^= (uint8_t)k;
        key_sk[k] = (br_ec_private_key){ .curve = BR_EC_secp384r1, .x = key_x[k], .xlen = 48 };
        br_ec_public_key pk;
        if (br_ec_compute_pub(&br_ec_prime_i31, &pk, key_pub[k], &key_sk[k]) != SEVSHIM_P384_PUBKEY_SIZE)
            abort();
        sha384(key_pub[k], SEVSHIM_P384_PUBKEY_SIZE, key_id[k]);
    }
    bios = calloc(1, CODE_SIZE + 1);   /* +1: the one-byte-long case */
    vars = calloc(1, VARS_SIZE);
    if (!bios || !vars)
        abort();
    br_sha384_init(&bios_prefix);
    br_sha384_update(&bios_prefix, bios, CODE_SIZE - BIOS_WINDOW);
}

/* ---- what the harness built (for the model) ------------------------------------------------ */
struct built {
    struct fz_flags fl;
    uint8_t region[SEVSHIM_POLICY_REGION_SIZE];
    uint32_t total;
    unsigned ns, signer;             /* number of signers, index of the signing key */
    uint64_t min_version[NKEYS];
    unsigned nd, nv;
    const uint8_t *digests, *versions;
    int policy_ok;
    uint8_t manifest[SEVSHIM_MANIFEST_SIZE];
    uint8_t good_sig[SEVSHIM_P384_SIG_SIZE];   /* (r, s) as signed; F_HIGH_S uses (r, n - s) */
    uint8_t digest[48];              /* SHA-384 of the BIOS as handed to the shim */
    uint64_t man_size, bios_size, vars_size;
    int man_present, bios_present, vars_present;
    /* var-store rule (policy v2): read last from the input, patched into the region */
    uint8_t vars_mode;
    unsigned na;                     /* allowed var-store digests */
    const uint8_t *allowed;
    uint8_t vars_digest[48];         /* SHA-384 of the var store as handed to the shim */
};

/* code (vars = 0) or vars size of a layout id as docs/formats.md section 1 lists them (the rows
 * of sevshim/layouts.def); 0 for an unknown id. The buffers are the ovmf-4m sizes, so a fuzzed
 * layout 2 ends at E026/E031/E032/E040 exactly where the shim's order puts it. */
static uint64_t layout_size(uint32_t id, int vars)
{
#define SEVSHIM_LAYOUT_ROW(lid, sym, name, code, vsize, code_file, vars_file) \
    if (id == lid) return vars ? vsize : code;
#include "sevshim/layouts.def"
#undef SEVSHIM_LAYOUT_ROW
    return 0;
}

static int policy_valid(const struct built *b)
{
    const uint8_t *r = b->region;
    if (r[SEVSHIM_POLICY_OFF_RESERVED0] != 0 || r[SEVSHIM_POLICY_OFF_RESERVED2] != 0 ||
        !all_zero(r + SEVSHIM_POLICY_OFF_RESERVED1, SEVSHIM_POLICY_RESERVED1_LEN))
        return 0;
    /* var-store mode: none, allow (with a non-empty list, no duplicates) or any */
    if (b->vars_mode > SEVSHIM_VARS_ANY || (b->vars_mode == SEVSHIM_VARS_ALLOW) != (b->na != 0))
        return 0;
    for (unsigned i = 0; i < b->na; i++)
        for (unsigned j = 0; j < i; j++)
            if (memcmp(b->allowed + 48 * i, b->allowed + 48 * j, 48) == 0)
                return 0;
    uint32_t layout = (uint32_t)get64(r + SEVSHIM_POLICY_OFF_LAYOUT) & 0xffffffffu;
    if (layout_size(layout, 0) == 0)
        return 0;
    uint8_t sm = r[SEVSHIM_POLICY_OFF_SECRET_MODE], tm = r[SEVSHIM_POLICY_OFF_TPM_MODE],
            pcr = r[SEVSHIM_POLICY_OFF_TPM_PCR];
    if (sm > SEVSHIM_SECRET_REQUIRE || tm > SEVSHIM_TPM_REQUIRED || pcr > SEVSHIM_TPM_MAX_PCR ||
        (tm == SEVSHIM_TPM_OFF && pcr != 0))
        return 0;
    for (unsigned i = 0; i < b->nd; i++)
        for (unsigned j = 0; j < i; j++)
            if (memcmp(b->digests + 48 * i, b->digests + 48 * j, 48) == 0)
                return 0;
    for (unsigned i = 0; i < b->nv; i++)
        for (unsigned j = 0; j < i; j++)
            if (get64(b->versions + 8 * i) == get64(b->versions + 8 * j))
                return 0;
    return 1;
}

static void build_policy(struct fz *f, struct built *b)
{
    uint8_t *r = b->region;
    memset(r, 0, sizeof(b->region));
    uint8_t c = fz_u8(f);
    b->ns = 1 + (b->fl.c & F_MANY_SIGNERS ? c % NKEYS : c % 4);
    b->signer = fz_u8(f) % b->ns;
    uint8_t d = fz_u8(f), v = fz_u8(f);
    b->nd = d % (SEVSHIM_MAX_DENIED_DIGESTS + 1);
    b->nv = v % (SEVSHIM_MAX_DENIED_VERSIONS + 1);
    if (!(d & 0x80))
        b->nd &= 1;                   /* mostly 0 or 1 entries: longer lists of a short input */
    if (!(v & 0x80))                  /* are zeros, i.e. duplicates (E010) */
        b->nv &= 1;
    b->total = SEVSHIM_POLICY_HEADER_SIZE + SEVSHIM_SIGNER_SIZE * b->ns +
               SEVSHIM_DENIED_DIGEST_SIZE * b->nd + SEVSHIM_DENIED_VERSION_SIZE * b->nv;

    memcpy(r + SEVSHIM_POLICY_OFF_MAGIC, SEVSHIM_POLICY_MAGIC, 8);
    put16(r + SEVSHIM_POLICY_OFF_VERSION, SEVSHIM_POLICY_VERSION);
    put16(r + SEVSHIM_POLICY_OFF_HDR_SIZE, SEVSHIM_POLICY_HEADER_SIZE);
    put32(r + SEVSHIM_POLICY_OFF_TOTAL_SIZE, b->total);
    put32(r + SEVSHIM_POLICY_OFF_LAYOUT, b->fl.c & F_POL_LAYOUT ? fz_u32(f) : SEVSHIM_LAYOUT_OVMF_4M);
    uint8_t sm = fz_u8(f), tm = fz_u8(f), pcr = fz_u8(f);
    if (!(b->fl.c & F_RAW_MODES)) {
        sm %= SEVSHIM_SECRET_REQUIRE + 1;
        tm %= SEVSHIM_TPM_REQUIRED + 1;
        pcr = tm == SEVSHIM_TPM_OFF ? 0 : pcr % (SEVSHIM_TPM_MAX_PCR + 1);
    }
    r[SEVSHIM_POLICY_OFF_SECRET_MODE] = sm;
    r[SEVSHIM_POLICY_OFF_TPM_MODE] = tm;
    r[SEVSHIM_POLICY_OFF_TPM_PCR] = pcr;
    put16(r + SEVSHIM_POLICY_OFF_NSIGNERS, (uint16_t)b->ns);
    put16(r + SEVSHIM_POLICY_OFF_NDIGESTS, (uint16_t)b->nd);
    put16(r + SEVSHIM_POLICY_OFF_NVERSIONS, (uint16_t)b->nv);
    if (b->fl.b & F_POL_RESERVED) {
        r[SEVSHIM_POLICY_OFF_RESERVED0] = fz_u8(f);
        fz_bytes(f, r + SEVSHIM_POLICY_OFF_RESERVED1, SEVSHIM_POLICY_RESERVED1_LEN);
        r[SEVSHIM_POLICY_OFF_RESERVED2] = r[SEVSHIM_POLICY_OFF_RESERVED1];
    }

    /* signers: key k at slot k, rotated so the input picks which slot signs */
    uint8_t *s = r + SEVSHIM_POLICY_HEADER_SIZE;
    for (unsigned i = 0; i < b->ns; i++, s += SEVSHIM_SIGNER_SIZE) {
        unsigned k = (i + NKEYS - b->signer) % NKEYS;  /* slot b->signer holds key 0 */
        memcpy(s + SEVSHIM_SIGNER_OFF_KEY_ID, key_id[k], 48);
        memcpy(s + SEVSHIM_SIGNER_OFF_PUBKEY, key_pub[k], SEVSHIM_P384_PUBKEY_SIZE);
        b->min_version[i] = fz_u8(f) & 1 ? fz_u64(f) : fz_u8(f);  /* small floors are common */
        put64(s + SEVSHIM_SIGNER_OFF_MIN_VERSION, b->min_version[i]);
    }
    b->digests = s;
    fz_bytes(f, s, 48 * b->nd);
    s += 48 * b->nd;
    b->versions = s;
    for (unsigned i = 0; i < b->nv; i++)
        put64(s + 8 * i, fz_u8(f) & 1 ? fz_u64(f) : fz_u8(f));
    if (b->fl.c & F_DUP_DENY) {
        if (b->nd >= 2)
            memcpy(s - 48, b->digests, 48);
        if (b->nv >= 2)
            memcpy(s + 8 * (b->nv - 1), s, 8);
    }
    /* F_DENY_DIGEST / F_DENY_VERSION patch an entry once the BIOS and manifest exist */
}

static void build_bios_vars(struct fz *f, struct built *b)
{
    /* the last BIOS_WINDOW bytes: cleared, then up to 255 fuzzed bytes at a fuzzed offset */
    uint8_t *w = bios + CODE_SIZE - BIOS_WINDOW;
    memset(w, 0, BIOS_WINDOW + 1);
    uint32_t off = (uint32_t)(fz_u8(f) | (fz_u8(f) << 8)) % BIOS_WINDOW;
    size_t len = fz_u8(f);
    if (len > BIOS_WINDOW - off)
        len = BIOS_WINDOW - off;
    fz_bytes(f, w + off, len);
    br_sha384_context c = bios_prefix;
    br_sha384_update(&c, w, BIOS_WINDOW);
    br_sha384_out(&c, b->digest);

    memset(vars, 0, VARS_WINDOW);
    size_t vlen = fz_u8(f);
    fz_bytes(f, vars, vlen);
}

static void build_manifest(struct fz *f, struct built *b)
{
    uint8_t *m = b->manifest;
    memset(m, 0, sizeof(b->manifest));
    memcpy(m + SEVSHIM_MANIFEST_OFF_MAGIC, SEVSHIM_MANIFEST_MAGIC, 8);
    put16(m + SEVSHIM_MANIFEST_OFF_VERSION, SEVSHIM_MANIFEST_VERSION);
    put16(m + SEVSHIM_MANIFEST_OFF_SIGNED_SZ, SEVSHIM_MANIFEST_SIGNED_SIZE);
    if (b->fl.b & F_RAW_HEAD)
        fz_bytes(f, m, 12);
    put32(m + SEVSHIM_MANIFEST_OFF_LAYOUT, b->fl.c & F_MAN_LAYOUT ? fz_u32(f) : SEVSHIM_LAYOUT_OVMF_4M);
    put64(m + SEVSHIM_MANIFEST_OFF_IMAGE_SIZE, b->fl.c & F_IMAGE_SIZE ? fz_u64(f) : CODE_SIZE);
    put64(m + SEVSHIM_MANIFEST_OFF_BIOS_VER, fz_u8(f) & 1 ? fz_u64(f) : fz_u8(f));
    memcpy(m + SEVSHIM_MANIFEST_OFF_DIGEST, b->digest, 48);
    if (b->fl.b & F_RAW_DIGEST)
        fz_bytes(f, m + SEVSHIM_MANIFEST_OFF_DIGEST, 48);
    memcpy(m + SEVSHIM_MANIFEST_OFF_KEY_ID, key_id[0], 48);
    if (b->fl.b & F_RAW_KEYID)
        fz_bytes(f, m + SEVSHIM_MANIFEST_OFF_KEY_ID, 48);
    uint8_t *vs = m + SEVSHIM_MANIFEST_OFF_VERSTR;
    if (b->fl.a & F_RAW_VERSTR) {
        fz_bytes(f, vs, SEVSHIM_MANIFEST_VERSTR_LEN);
    } else {
        size_t n = fz_u8(f) % SEVSHIM_MANIFEST_VERSTR_LEN;
        for (size_t i = 0; i < n; i++)
            vs[i] = (uint8_t)(0x20 + fz_u8(f) % 0x5F);
    }
    if (b->fl.b & F_RAW_RESERVED)
        fz_bytes(f, m + SEVSHIM_MANIFEST_OFF_RESERVED, SEVSHIM_MANIFEST_RESERVED_LEN);

    /* deny entries that refer to this BIOS / manifest */
    if ((b->fl.b & F_DENY_DIGEST) && b->nd > 0)
        memcpy((uint8_t *)b->digests + 48 * (fz_u8(f) % b->nd), b->digest, 48);
    if ((b->fl.c & F_DENY_VERSION) && b->nv > 0)
        memcpy((uint8_t *)b->versions + 8 * (fz_u8(f) % b->nv), m + SEVSHIM_MANIFEST_OFF_BIOS_VER, 8);

    uint8_t h[48];
    sha384(m, SEVSHIM_MANIFEST_SIGNED_SIZE, h);
    if (br_ecdsa_i31_sign_raw(&br_ec_prime_i31, &br_sha384_vtable, h, &key_sk[0], b->good_sig) !=
        SEVSHIM_P384_SIG_SIZE)
        abort();
    memcpy(m + SEVSHIM_MANIFEST_OFF_SIGNATURE, b->good_sig, SEVSHIM_P384_SIG_SIZE);
    if (b->fl.c & F_HIGH_S)
        negate_s(m + SEVSHIM_MANIFEST_OFF_SIGNATURE + 48);
    if (b->fl.b & F_RAW_SIG)
        fz_bytes(f, m + SEVSHIM_MANIFEST_OFF_SIGNATURE, SEVSHIM_P384_SIG_SIZE);
}

/* The var-store rule of policy v2 (docs/formats.md section 2), read from the END of the input so
 * the inputs of the other fields keep their meaning: a mode byte (low 2 bits; 3 is invalid),
 * then for allow a count byte and a choice byte (bit 0: the list names this var store). The
 * list follows the denied versions; total_size and the whole region are patched here. */
static void build_vars_rule(struct fz *f, struct built *b)
{
    uint8_t *r = b->region;
    uint8_t m = fz_u8(f);
    b->vars_mode = m & 3;
    b->na = 0;
    if (b->vars_mode == SEVSHIM_VARS_ALLOW || (m & 0x80)) {
        uint8_t c = fz_u8(f), pick = fz_u8(f);
        b->na = c % (SEVSHIM_MAX_ALLOWED_VARS + 1);
        uint8_t *a = r + b->total;
        b->allowed = a;
        for (unsigned i = 0; i < b->na; i++) {
            memset(a + 48 * i, 0, 48);
            a[48 * i] = (uint8_t)(i + 1);     /* distinct, never a real digest */
        }
        if (b->na > 0 && (pick & 1))
            memcpy(a + 48 * ((pick >> 1) % b->na), b->vars_digest, 48);
        if (b->na >= 2 && (pick & 0x80))
            memcpy(a + 48 * (b->na - 1), a, 48);   /* a duplicate: E010 */
        b->total += 48 * b->na;
    }
    r[SEVSHIM_POLICY_OFF_VARS_MODE] = b->vars_mode;
    put16(r + SEVSHIM_POLICY_OFF_NALLOWED_VARS, (uint16_t)b->na);
    put32(r + SEVSHIM_POLICY_OFF_TOTAL_SIZE, b->total);
}

/* ---- the model: docs/formats.md section 6, steps 2..9, first failure wins ----------------- */
static int verstr_valid(const uint8_t *v)
{
    size_t n = 0;
    while (n < SEVSHIM_MANIFEST_VERSTR_LEN && v[n] != 0) {
        if (v[n] < 0x20 || v[n] > 0x7E)
            return 0;
        n++;
    }
    return n < SEVSHIM_MANIFEST_VERSTR_LEN && all_zero(v + n, SEVSHIM_MANIFEST_VERSTR_LEN - n);
}

static enum sevshim_error expect(const struct built *b)
{
    const uint8_t *m = b->manifest;
    if (!b->policy_ok)
        return SEVSHIM_E10;
    if (!b->man_present)
        return SEVSHIM_E20;
    if (b->man_size != SEVSHIM_MANIFEST_SIZE)
        return SEVSHIM_E21;
    if (memcmp(m, SEVSHIM_MANIFEST_MAGIC, 8) != 0 || get64(m + 8) % 0x100000000ull !=
            (SEVSHIM_MANIFEST_VERSION | (SEVSHIM_MANIFEST_SIGNED_SIZE << 16)) ||
        !all_zero(m + SEVSHIM_MANIFEST_OFF_RESERVED, SEVSHIM_MANIFEST_RESERVED_LEN) ||
        !verstr_valid(m + SEVSHIM_MANIFEST_OFF_VERSTR))
        return SEVSHIM_E22;
    int signer = -1;  /* slot whose key id the manifest names */
    for (unsigned i = 0; i < b->ns && signer < 0; i++)
        if (memcmp(b->region + SEVSHIM_POLICY_HEADER_SIZE + SEVSHIM_SIGNER_SIZE * i,
                   m + SEVSHIM_MANIFEST_OFF_KEY_ID, 48) == 0)
            signer = (int)i;
    if (signer < 0)
        return SEVSHIM_E23;
    /* only key 0 (slot b->signer) signed; the signature is good if it is (r, s) or (r, n-s) */
    uint8_t hi[SEVSHIM_P384_SIG_SIZE];
    memcpy(hi, b->good_sig, sizeof(hi));
    negate_s(hi + 48);
    const uint8_t *sig = m + SEVSHIM_MANIFEST_OFF_SIGNATURE;
    /* low-s only (E027 before the ECDSA check): s above floor(n/2) means n - s is below it */
    uint8_t half[48];          /* floor(n / 2): n shifted right by one bit */
    for (int i = 0, carry = 0; i < 48; i++) {
        half[i] = (uint8_t)((p384_n[i] >> 1) | (carry << 7));
        carry = p384_n[i] & 1;
    }
    if (memcmp(sig + 48, half, 48) > 0)
        return SEVSHIM_E27;
    /* the low one of (r, s) and (r, n - s) verifies (BearSSL may have produced either) */
    if ((unsigned)signer != b->signer ||
        (memcmp(sig, b->good_sig, sizeof(hi)) != 0 && memcmp(sig, hi, sizeof(hi)) != 0))
        return SEVSHIM_E24;
    uint32_t layout = (uint32_t)get64(b->region + SEVSHIM_POLICY_OFF_LAYOUT);
    uint64_t code = layout_size(layout, 0);
    if (get64(m + SEVSHIM_MANIFEST_OFF_LAYOUT) % 0x100000000ull != layout)
        return SEVSHIM_E25;
    if (get64(m + SEVSHIM_MANIFEST_OFF_IMAGE_SIZE) != code)
        return SEVSHIM_E26;
    if (!b->bios_present)
        return SEVSHIM_E30;
    if (b->bios_size < code)
        return SEVSHIM_E31;
    if (b->bios_size > code)
        return SEVSHIM_E32;
    if (memcmp(b->digest, m + SEVSHIM_MANIFEST_OFF_DIGEST, 48) != 0)
        return SEVSHIM_E33;
    uint64_t ver = get64(m + SEVSHIM_MANIFEST_OFF_BIOS_VER);
    if (ver < b->min_version[signer])
        return SEVSHIM_E34;
    for (unsigned i = 0; i < b->nd; i++)
        if (memcmp(b->digests + 48 * i, b->digest, 48) == 0)
            return SEVSHIM_E35;
    for (unsigned i = 0; i < b->nv; i++)
        if (get64(b->versions + 8 * i) == ver)
            return SEVSHIM_E36;
    if (b->vars_present) {
        if (b->vars_mode == SEVSHIM_VARS_NONE)
            return SEVSHIM_E41;
        if (b->vars_size != layout_size(layout, 1))
            return SEVSHIM_E40;
        if (b->vars_mode == SEVSHIM_VARS_ALLOW) {
            int listed = 0;
            for (unsigned i = 0; i < b->na; i++)
                listed |= memcmp(b->allowed + 48 * i, b->vars_digest, 48) == 0;
            if (!listed)
                return SEVSHIM_E42;
        }
    }
    return SEVSHIM_OK;
}

static struct built B;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static int ready;
    if (!ready) {
        init_once();
        ready = 1;
    }
    struct fz f = { data, size };
    struct built *b = &B;
    memset(b, 0, sizeof(*b));
    b->fl.a = fz_u8(&f);
    b->fl.b = fz_u8(&f);
    b->fl.c = fz_u8(&f);

    build_policy(&f, b);
    build_bios_vars(&f, b);
    build_manifest(&f, b);
    b->policy_ok = policy_valid(b);
    if (b->fl.b & F_FLIP_BIOS) {
        size_t at = CODE_SIZE - 1 - fz_u8(&f);
        bios[at] ^= 1 | fz_u8(&f);
        sha384(bios, CODE_SIZE, b->digest);   /* what the shim will see */
    }
    b->man_present = !(b->fl.a & F_NO_MANIFEST);
    b->man_size = b->fl.a & F_MAN_SIZE ? (uint64_t)fz_u64(&f) | 1 : SEVSHIM_MANIFEST_SIZE; /* odd: never 352 */
    b->bios_present = !(b->fl.a & F_NO_BIOS);
    b->bios_size = b->fl.a & F_BIOS_SIZE ? (b->fl.a & F_BIOS_LONG ? CODE_SIZE + 1 : CODE_SIZE - 1) : CODE_SIZE;
    b->vars_present = !!(b->fl.a & F_VARS);
    b->vars_size = b->fl.a & F_VARS_SIZE ? VARS_SIZE - 0x1000 : VARS_SIZE;
    sha384(vars, VARS_SIZE, b->vars_digest);
    build_vars_rule(&f, b);
    b->policy_ok = policy_valid(b);

    /* each file in its own allocation, so ASan sees any read past its end */
    uint8_t *man = malloc(SEVSHIM_MANIFEST_SIZE);
    memcpy(man, b->manifest, SEVSHIM_MANIFEST_SIZE);
    struct sevshim_input in = {
        .policy_region = b->region, .policy_region_len = sizeof(b->region),
        .manifest_present = b->man_present, .manifest_size = b->man_size,
        .manifest = b->man_size == SEVSHIM_MANIFEST_SIZE ? man : NULL,
        .bios_present = b->bios_present, .bios_size = b->bios_size,
        .bios = b->bios_size == CODE_SIZE ? bios : NULL,
        .vars_present = b->vars_present, .vars_size = b->vars_size,
        .vars = b->vars_size == VARS_SIZE ? vars : NULL,
    };
    struct sevshim_result res;
    enum sevshim_error e = sevshim_verify(&in, &res);
    if (e != SEVSHIM_OK && sevshim_error_name(e) == NULL)
        abort();   /* every refusal must be a code from errors.h */
#ifdef FUZZ_SIGNED_TRACE
    fprintf(stderr, "fuzz_signed: result %d, model %d\n", (int)e, (int)expect(b));
#endif
    if (e != expect(b))
        abort();   /* the check order of docs/formats.md section 6 */
    if (e == SEVSHIM_OK) {
        uint8_t pd[48];
        sha384(b->region, b->total, pd);
        if (res.layout == NULL || res.layout->id != SEVSHIM_LAYOUT_OVMF_4M ||
            res.bios_version != get64(b->manifest + SEVSHIM_MANIFEST_OFF_BIOS_VER) ||
            res.signer_index != b->signer || memcmp(res.key_id, key_id[0], 48) != 0 ||
            memcmp(res.image_digest, b->digest, 48) != 0 || memcmp(res.policy_digest, pd, 48) != 0 ||
            memcmp(res.version_string, b->manifest + SEVSHIM_MANIFEST_OFF_VERSTR, SEVSHIM_MANIFEST_VERSTR_LEN) != 0 ||
            res.secret_mode != b->region[SEVSHIM_POLICY_OFF_SECRET_MODE] ||
            res.tpm_mode != b->region[SEVSHIM_POLICY_OFF_TPM_MODE] ||
            res.tpm_pcr != b->region[SEVSHIM_POLICY_OFF_TPM_PCR] ||
            res.vars_present != (uint8_t)b->vars_present ||
            (b->vars_present && memcmp(res.vars_digest, b->vars_digest, 48) != 0))
            abort();
    }
    free(man);
    return 0;
}
