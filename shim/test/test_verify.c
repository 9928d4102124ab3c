/* Host unit tests of src/verify.c (the firmware's own parser/verifier, compiled hosted).
 *
 *   test_verify VECTORS_DIR [GOLDEN_TSV GOLDEN_DIR]
 *
 * VECTORS_DIR holds shim/test/vectors (made by test/mkvectors with the fixed TEST keys): key1.pub,
 * key2.pub and manifests over the synthetic pattern BIOS (byte i = i*7 + (i >> 12)). Policies are
 * built here. Every error code of the verify path gets at least one crafted input.
 * GOLDEN_TSV is testdata/golden/cases.json flattened by test/golden2tsv.py; its cases are run
 * against the files in GOLDEN_DIR. Last line: "N passed, M failed".
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "bearssl_hash.h"
#include "sevshim/verify.h"

static int passed, failed;

#define CHECK(cond, ...) do {                                   \
        if (cond) passed++;                                     \
        else { failed++; printf("FAIL %s:%d: ", __FILE__, __LINE__); printf(__VA_ARGS__); printf("\n"); } \
    } while (0)

static uint8_t *slurp(const char *dir, const char *name, size_t *len)
{
    char path[4096];
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    FILE *f = fopen(path, "rb");
    if (!f) {
        printf("cannot open %s\n", path);
        exit(2);
    }
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    uint8_t *b = malloc(n ? (size_t)n : 1);
    if (!b || fread(b, 1, (size_t)n, f) != (size_t)n) {
        printf("cannot read %s\n", path);
        exit(2);
    }
    fclose(f);
    *len = (size_t)n;
    return b;
}

static void put16(uint8_t *p, uint16_t v) { p[0] = (uint8_t)v; p[1] = (uint8_t)(v >> 8); }
static void put32(uint8_t *p, uint32_t v) { for (int i = 0; i < 4; i++) p[i] = (uint8_t)(v >> (8 * i)); }
static void put64(uint8_t *p, uint64_t v) { for (int i = 0; i < 8; i++) p[i] = (uint8_t)(v >> (8 * i)); }

static void sha384(const void *p, size_t n, uint8_t *out)
{
    br_sha384_context c;
    br_sha384_init(&c);
    br_sha384_update(&c, p, n);
    br_sha384_out(&c, out);
}

static int all_zero48(const uint8_t *p)
{
    uint8_t acc = 0;
    for (int i = 0; i < 48; i++)
        acc |= p[i];
    return acc == 0;
}

/* ---- policy builder ----------------------------------------------------------------------- */
static const uint8_t *pubkeys[3];  /* [1], [2] */

struct pol {
    int signers[4];  /* key numbers, 0-terminated */
    uint64_t floor[4];
    int ndigests;
    uint8_t digests[4][48];
    int nversions;
    uint64_t versions[4];
    int vars;        /* TV_ANY (0, so older cases keep their meaning), TV_NONE, TV_ALLOW */
    int nallowed;
    uint8_t allowed[4][48];
    int raw_vars_mode;  /* if non-zero: write vars_mode = raw_vars_mode - 1 as is */
};
enum { TV_ANY, TV_NONE, TV_ALLOW };

static void build_policy(uint8_t *region, const struct pol *p)
{
    int ns = 0;
    while (ns < 4 && p->signers[ns])
        ns++;
    uint32_t total = 64 + 160 * ns + 48 * p->ndigests + 8 * p->nversions + 48 * p->nallowed;
    memset(region, 0, SEVSHIM_POLICY_REGION_SIZE);
    memcpy(region, "SEVSHPOL", 8);
    put16(region + 8, SEVSHIM_POLICY_VERSION);
    region[SEVSHIM_POLICY_OFF_VARS_MODE] = p->raw_vars_mode ? (uint8_t)(p->raw_vars_mode - 1) :
        p->vars == TV_NONE ? SEVSHIM_VARS_NONE : p->vars == TV_ALLOW ? SEVSHIM_VARS_ALLOW : SEVSHIM_VARS_ANY;
    put16(region + SEVSHIM_POLICY_OFF_NALLOWED_VARS, (uint16_t)p->nallowed);
    put16(region + 10, 64);
    put32(region + 12, total);
    put32(region + 16, 1);
    put16(region + 0x18, (uint16_t)ns);
    put16(region + 0x1A, (uint16_t)p->ndigests);
    put16(region + 0x1C, (uint16_t)p->nversions);
    uint8_t *s = region + 64;
    for (int i = 0; i < ns; i++, s += 160) {
        memcpy(s + 48, pubkeys[p->signers[i]], 97);
        sha384(s + 48, 97, s);
        put64(s + 152, p->floor[i]);
    }
    for (int i = 0; i < p->ndigests; i++, s += 48)
        memcpy(s, p->digests[i], 48);
    for (int i = 0; i < p->nversions; i++, s += 8)
        put64(s, p->versions[i]);
    for (int i = 0; i < p->nallowed; i++, s += 48)
        memcpy(s, p->allowed[i], 48);
}

/* ---- one verification run ----------------------------------------------------------------- */
static uint8_t region[SEVSHIM_POLICY_REGION_SIZE];
static uint8_t *bios;                  /* pattern BIOS, code_size bytes */
static uint8_t bios_digest[48];
static struct sevshim_result res;

struct run {
    const uint8_t *manifest; int manifest_present; uint64_t manifest_size;
    int bios_present; uint64_t bios_size; const uint8_t *bios_data;
    int vars_present; uint64_t vars_size;
    const uint8_t *vars_data;          /* NULL: an all-zero store */
};
static uint8_t zero_vars[SEVSHIM_OVMF_4M_VARS_SIZE];

/* the buffers are handed over as the firmware hands over its own: at the policy layout's sizes */
static enum sevshim_error run(const struct run *r)
{
    struct sevshim_policy pol;
    const struct sevshim_layout *l =
        sevshim_policy_parse(region, sizeof(region), &pol) == SEVSHIM_OK ? pol.layout : NULL;
    struct sevshim_input in = {
        .policy_region = region, .policy_region_len = sizeof(region),
        .manifest_present = r->manifest_present, .manifest_size = r->manifest_size,
        .manifest = r->manifest_size == SEVSHIM_MANIFEST_SIZE ? r->manifest : NULL,
        .bios_present = r->bios_present, .bios_size = r->bios_size,
        .bios = l && r->bios_size == l->code_size ? r->bios_data : NULL,
        .vars_present = r->vars_present, .vars_size = r->vars_size,
        .vars = l && r->vars_size == l->vars_size ? (r->vars_data ? r->vars_data : zero_vars) : NULL,
    };
    return sevshim_verify(&in, &res);
}

static struct run good_run(const uint8_t *m)
{
    struct run r = { m, 1, SEVSHIM_MANIFEST_SIZE, 1, SEVSHIM_OVMF_4M_CODE_SIZE, bios, 0, 0, NULL };
    return r;
}

#define EXPECT(code, r, what) do { enum sevshim_error e_ = run(r); \
        CHECK(e_ == (code), "%s: got E%03d want E%03d", what, (int)e_, (int)(code)); } while (0)

static void policy_mutation(const char *what, void (*mut)(uint8_t *), const uint8_t *m)
{
    struct pol p = { .signers = { 1 } };
    build_policy(region, &p);
    mut(region);
    struct run r = good_run(m);
    EXPECT(SEVSHIM_E10, &r, what);
}

static void m_magic(uint8_t *r) { r[0] = 'X'; }
static void m_version(uint8_t *r) { put16(r + 8, 3); }
static void m_hdrsize(uint8_t *r) { put16(r + 10, 65); }
static void m_total(uint8_t *r) { put32(r + 12, 64 + 160 + 8); }
static void m_trailing(uint8_t *r) { r[SEVSHIM_POLICY_REGION_SIZE - 1] = 1; }
static void m_after_total(uint8_t *r) { r[64 + 160] = 1; }
static void m_layout0(uint8_t *r) { put32(r + 16, 0); }
static void m_layout2(uint8_t *r) { put32(r + 16, 2); }
static void m_layout3(uint8_t *r) { put32(r + 16, 3); }
static void m_secret2(uint8_t *r) { r[0x14] = 2; }
static void m_tpm3(uint8_t *r) { r[0x15] = 3; }
static void m_pcr24(uint8_t *r) { r[0x15] = 1; r[0x16] = 24; }
static void m_pcr_no_tpm(uint8_t *r) { r[0x16] = 7; }
static void m_res0(uint8_t *r) { r[0x17] = 1; }
static void m_res1(uint8_t *r) { r[0x3F] = 1; }
static void m_ns0(uint8_t *r) { put16(r + 0x18, 0); put32(r + 12, 64); memset(r + 64, 0, 160); }
static void m_ns17(uint8_t *r) { put16(r + 0x18, 17); put32(r + 12, 64 + 17 * 160); }
static void m_nd65(uint8_t *r) { put16(r + 0x1A, 65); put32(r + 12, 64 + 160 + 65 * 48); }
static void m_nv65(uint8_t *r) { put16(r + 0x1C, 65); put32(r + 12, 64 + 160 + 65 * 8); }
static void m_keyid(uint8_t *r) { r[64] ^= 1; }
static void m_prefix(uint8_t *r) { r[64 + 48] = 0x02; }
static void m_offcurve(uint8_t *r) { r[64 + 48 + 96] ^= 1; sha384(r + 64 + 48, 97, r + 64); }
static void m_sres(uint8_t *r) { r[64 + 145] = 1; }

static void crafted(const char *vec)
{
    size_t n;
    pubkeys[1] = slurp(vec, "key1.pub", &n);
    pubkeys[2] = slurp(vec, "key2.pub", &n);
    uint8_t *good = slurp(vec, "good.man", &n);
    uint8_t *layout2 = slurp(vec, "layout2.man", &n);
    uint8_t *imgsize = slurp(vec, "imgsize.man", &n);
    uint8_t *key2 = slurp(vec, "key2.man", &n);
    uint8_t m[SEVSHIM_MANIFEST_SIZE + 1];
    struct run r;
    struct pol p;

    bios = malloc(SEVSHIM_OVMF_4M_CODE_SIZE);
    for (uint32_t i = 0; i < SEVSHIM_OVMF_4M_CODE_SIZE; i++)
        bios[i] = (uint8_t)(i * 7 + (i >> 12));
    sha384(bios, SEVSHIM_OVMF_4M_CODE_SIZE, bios_digest);
    CHECK(memcmp(bios_digest, good + 0x20, 48) == 0, "pattern BIOS digest differs from good.man");

    /* OK paths */
    p = (struct pol){ .signers = { 1 } };
    build_policy(region, &p);
    r = good_run(good);
    EXPECT(SEVSHIM_OK, &r, "good");
    CHECK(res.bios_version == 5 && strcmp(res.version_string, "pattern-bios 5") == 0 &&
          res.signer_index == 0 && res.layout && res.layout->id == 1, "good: result fields");
    CHECK(memcmp(res.image_digest, bios_digest, 48) == 0, "good: image digest");
    uint8_t pd[48];
    sha384(region, 64 + 160, pd);
    CHECK(memcmp(res.policy_digest, pd, 48) == 0, "good: policy digest");
    r.vars_present = 1; r.vars_size = SEVSHIM_OVMF_4M_VARS_SIZE;
    EXPECT(SEVSHIM_OK, &r, "good with vars");
    p = (struct pol){ .signers = { 2, 1 }, .floor = { 0, 5 } };
    build_policy(region, &p);
    r = good_run(good);
    EXPECT(SEVSHIM_OK, &r, "second signer, floor == version");
    CHECK(res.signer_index == 1, "second signer index");
    r = good_run(key2);
    EXPECT(SEVSHIM_OK, &r, "key2 manifest");

    /* E010: every policy rule */
    policy_mutation("policy magic", m_magic, good);
    policy_mutation("policy version", m_version, good);
    policy_mutation("policy header size", m_hdrsize, good);
    policy_mutation("policy total size", m_total, good);
    policy_mutation("policy trailing byte", m_trailing, good);
    policy_mutation("policy byte after total", m_after_total, good);
    policy_mutation("policy layout 0", m_layout0, good);
    policy_mutation("policy layout 3", m_layout3, good);
    {   /* layout 2 (ovmf-2m) parses: the ovmf-4m manifest then no longer matches */
        struct pol p2 = { .signers = { 1 } };
        build_policy(region, &p2);
        m_layout2(region);
        struct run r2 = good_run(good);
        EXPECT(SEVSHIM_E25, &r2, "policy layout 2, manifest layout 1");
    }
    policy_mutation("policy secret mode 2", m_secret2, good);
    policy_mutation("policy tpm mode 3", m_tpm3, good);
    policy_mutation("policy pcr 24", m_pcr24, good);
    policy_mutation("policy pcr without tpm", m_pcr_no_tpm, good);
    policy_mutation("policy reserved 0x17", m_res0, good);
    policy_mutation("policy reserved 0x3f", m_res1, good);
    policy_mutation("policy 0 signers", m_ns0, good);
    policy_mutation("policy 17 signers", m_ns17, good);
    policy_mutation("policy 65 digests", m_nd65, good);
    policy_mutation("policy 65 versions", m_nv65, good);
    policy_mutation("policy key id", m_keyid, good);
    policy_mutation("policy pubkey prefix", m_prefix, good);
    policy_mutation("policy pubkey off curve", m_offcurve, good);
    policy_mutation("policy signer reserved", m_sres, good);
    p = (struct pol){ .signers = { 1, 1 } };
    build_policy(region, &p);
    r = good_run(good);
    EXPECT(SEVSHIM_E10, &r, "duplicate signer");
    p = (struct pol){ .signers = { 1 }, .nversions = 2, .versions = { 9, 9 } };
    build_policy(region, &p);
    EXPECT(SEVSHIM_E10, &r, "duplicate denied version");
    p = (struct pol){ .signers = { 1 }, .ndigests = 2 };
    build_policy(region, &p);
    EXPECT(SEVSHIM_E10, &r, "duplicate denied digest");
    {
        struct sevshim_policy sp;
        CHECK(sevshim_policy_parse(region, 100, &sp) == SEVSHIM_E10, "short region");
        CHECK(sevshim_policy_parse(NULL, SEVSHIM_POLICY_REGION_SIZE, &sp) == SEVSHIM_E10, "NULL region");
    }
    /* E010 wins over everything after it */
    memset(region, 0, sizeof(region));
    r = (struct run){ 0 };
    EXPECT(SEVSHIM_E10, &r, "zero policy, nothing else");

    p = (struct pol){ .signers = { 1 } };
    build_policy(region, &p);

    /* E020, E021 */
    r = good_run(good);
    r.manifest_present = 0;
    EXPECT(SEVSHIM_E20, &r, "manifest missing");
    r = good_run(good);
    r.manifest_size = 351;
    EXPECT(SEVSHIM_E21, &r, "manifest 351");
    r.manifest_size = 353;
    EXPECT(SEVSHIM_E21, &r, "manifest 353");
    r.manifest_size = 0;
    EXPECT(SEVSHIM_E21, &r, "manifest empty");

    /* E022 */
    struct { const char *what; size_t off; uint8_t val; } mal[] = {
        { "magic", 0, 'x' }, { "version", 8, 2 }, { "signed size", 11, 2 },
        { "reserved first", 0xC0, 1 }, { "reserved last", 0xFF, 0x80 },
        { "version string control", 0x80, 0x09 }, { "version string 0x7f", 0x81, 0x7F },
        { "version string high", 0x82, 0xC3 }, { "after NUL", 0x80 + 40, 'x' },
    };
    for (size_t i = 0; i < sizeof(mal) / sizeof(mal[0]); i++) {
        memcpy(m, good, SEVSHIM_MANIFEST_SIZE);
        m[mal[i].off] = mal[i].val;
        r = good_run(m);
        EXPECT(SEVSHIM_E22, &r, mal[i].what);
    }
    memcpy(m, good, SEVSHIM_MANIFEST_SIZE);
    memset(m + 0x80, 'a', 64);
    r = good_run(m);
    EXPECT(SEVSHIM_E22, &r, "version string 64 chars");
    memset(m + 0x80 + 63, 0, 1);
    EXPECT(SEVSHIM_E24, &r, "version string 63 chars is well formed (then bad signature)");

    /* E023 */
    memcpy(m, good, SEVSHIM_MANIFEST_SIZE);
    m[0x50] ^= 1;
    r = good_run(m);
    EXPECT(SEVSHIM_E23, &r, "key id changed");
    p = (struct pol){ .signers = { 2 } };
    build_policy(region, &p);
    r = good_run(good);
    EXPECT(SEVSHIM_E23, &r, "signer not in policy");

    /* E024 */
    p = (struct pol){ .signers = { 1, 2 } };
    build_policy(region, &p);
    memcpy(m, good, SEVSHIM_MANIFEST_SIZE);
    memcpy(m + 0x50, key2 + 0x50, 48);   /* claims key 2, signed by key 1 */
    r = good_run(m);
    EXPECT(SEVSHIM_E24, &r, "wrong key");
    size_t flips[] = { 0x18, 0x20, 0x80, 0x100, 0x12F, 0x130, 0x15F };
    for (size_t i = 0; i < sizeof(flips) / sizeof(flips[0]); i++) {
        memcpy(m, good, SEVSHIM_MANIFEST_SIZE);
        m[flips[i]] ^= (flips[i] == 0x80) ? 0x02 : 0x01;
        r = good_run(m);
        EXPECT(SEVSHIM_E24, &r, "bit flip");
    }
    memcpy(m, good, SEVSHIM_MANIFEST_SIZE);
    memset(m + 0x100, 0, 96);
    EXPECT(SEVSHIM_E24, &r, "zero signature");
    /* signature checked before the BIOS is even looked at */
    r.bios_present = 0;
    EXPECT(SEVSHIM_E24, &r, "bad signature wins over missing BIOS");

    /* E027: (r, n - s) verifies like (r, s) but is not low-s; checked after the signer
     * lookup and before the ECDSA verification */
    {
        static const uint8_t n384[48] = {
            0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
            0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
            0xc7, 0x63, 0x4d, 0x81, 0xf4, 0x37, 0x2d, 0xdf, 0x58, 0x1a, 0x0d, 0xb2,
            0x48, 0xb0, 0xa7, 0x7a, 0xec, 0xec, 0x19, 0x6a, 0xcc, 0xc5, 0x29, 0x73,
        };
        p = (struct pol){ .signers = { 1 } };
        build_policy(region, &p);
        CHECK(good[0x130] < 0x80, "good.man is not low-s (regenerate shim/test/vectors)");
        memcpy(m, good, SEVSHIM_MANIFEST_SIZE);
        unsigned borrow = 0;   /* s := n - s, big-endian */
        for (int i = 47; i >= 0; i--) {
            unsigned d = (unsigned)n384[i] - m[0x130 + i] - borrow;
            m[0x130 + i] = (uint8_t)d;
            borrow = (d >> 8) & 1;
        }
        r = good_run(m);
        EXPECT(SEVSHIM_E27, &r, "high-s twin of a valid signature");
        r.bios_present = 0;
        EXPECT(SEVSHIM_E27, &r, "high-s wins over missing BIOS");
        p = (struct pol){ .signers = { 2 } };
        build_policy(region, &p);
        r = good_run(m);
        EXPECT(SEVSHIM_E23, &r, "unknown signer is checked before high-s");
        p = (struct pol){ .signers = { 1 } };
        build_policy(region, &p);
        /* the boundary: floor(n/2) is low (then not a valid signature), floor(n/2)+1 is high */
        uint8_t half[48];
        unsigned carry = 0;
        for (int i = 0; i < 48; i++) {   /* half = n >> 1 */
            half[i] = (uint8_t)((n384[i] >> 1) | (carry << 7));
            carry = n384[i] & 1;
        }
        memcpy(m, good, SEVSHIM_MANIFEST_SIZE);
        memcpy(m + 0x130, half, 48);
        r = good_run(m);
        EXPECT(SEVSHIM_E24, &r, "s = floor(n/2) is low-s");
        for (int i = 47; i >= 0 && ++m[0x130 + i] == 0; i--)
            ;
        r = good_run(m);
        EXPECT(SEVSHIM_E27, &r, "s = floor(n/2) + 1 is high-s");
    }

    /* E025, E026 */
    p = (struct pol){ .signers = { 1 } };
    build_policy(region, &p);
    r = good_run(layout2);
    EXPECT(SEVSHIM_E25, &r, "layout 2");
    r = good_run(imgsize);
    EXPECT(SEVSHIM_E26, &r, "image size");

    /* E030, E031, E032 */
    r = good_run(good);
    r.bios_present = 0;
    EXPECT(SEVSHIM_E30, &r, "bios missing");
    r = good_run(good);
    r.bios_size = SEVSHIM_OVMF_4M_CODE_SIZE - 1;
    EXPECT(SEVSHIM_E31, &r, "bios truncated");
    r.bios_size = 0;
    EXPECT(SEVSHIM_E31, &r, "bios empty");
    r.bios_size = SEVSHIM_OVMF_4M_CODE_SIZE + 1;
    EXPECT(SEVSHIM_E32, &r, "bios oversized");
    r.bios_size = 1ull << 40;
    EXPECT(SEVSHIM_E32, &r, "bios huge");
    r = good_run(good);
    r.bios_data = NULL;
    EXPECT(SEVSHIM_E91, &r, "size fits but no data (caller bug)");

    /* E033 */
    bios[0x1234] ^= 8;
    r = good_run(good);
    EXPECT(SEVSHIM_E33, &r, "bios bit flip");
    bios[0x1234] ^= 8;
    bios[SEVSHIM_OVMF_4M_CODE_SIZE - 1] ^= 0x80;
    EXPECT(SEVSHIM_E33, &r, "bios last bit flip");
    bios[SEVSHIM_OVMF_4M_CODE_SIZE - 1] ^= 0x80;

    /* E034, E035, E036 */
    p = (struct pol){ .signers = { 1 }, .floor = { 6 } };
    build_policy(region, &p);
    EXPECT(SEVSHIM_E34, &r, "below floor");
    p = (struct pol){ .signers = { 1 }, .floor = { UINT64_MAX } };
    build_policy(region, &p);
    EXPECT(SEVSHIM_E34, &r, "floor max");
    p = (struct pol){ .signers = { 1 }, .ndigests = 2 };
    memset(p.digests[0], 0xAB, 48);
    memcpy(p.digests[1], bios_digest, 48);
    build_policy(region, &p);
    EXPECT(SEVSHIM_E35, &r, "digest denied");
    p.digests[1][47] ^= 1;
    build_policy(region, &p);
    EXPECT(SEVSHIM_OK, &r, "other digest denied");
    p = (struct pol){ .signers = { 1 }, .nversions = 3, .versions = { 1, 5, 9 } };
    build_policy(region, &p);
    EXPECT(SEVSHIM_E36, &r, "version denied");
    p = (struct pol){ .signers = { 1 }, .floor = { 9 }, .nversions = 1, .versions = { 5 } };
    build_policy(region, &p);
    EXPECT(SEVSHIM_E34, &r, "floor before deny list");
    p = (struct pol){ .signers = { 1 }, .ndigests = 1, .nversions = 1, .versions = { 5 } };
    memcpy(p.digests[0], bios_digest, 48);
    build_policy(region, &p);
    EXPECT(SEVSHIM_E35, &r, "digest deny before version deny");
    p = (struct pol){ .signers = { 1 }, .nversions = 2, .versions = { 4, 6 } };
    build_policy(region, &p);
    EXPECT(SEVSHIM_OK, &r, "neighbours of the version denied");

    /* E040 */
    r.vars_present = 1;
    r.vars_size = SEVSHIM_OVMF_4M_VARS_SIZE + 1;
    EXPECT(SEVSHIM_E40, &r, "vars oversized");
    r.vars_size = 0;
    EXPECT(SEVSHIM_E40, &r, "vars empty");
    r.vars_size = SEVSHIM_OVMF_4M_VARS_SIZE - 0x1000;
    EXPECT(SEVSHIM_E40, &r, "vars short");

    /* E041, E042: the var-store mode */
    {
        static uint8_t pat_vars[SEVSHIM_OVMF_4M_VARS_SIZE];
        uint8_t zero_digest[48];
        memset(pat_vars, 0x5A, sizeof(pat_vars));
        sha384(zero_vars, sizeof(zero_vars), zero_digest);
        p = (struct pol){ .signers = { 1 }, .vars = TV_NONE };
        build_policy(region, &p);
        r = good_run(good);
        EXPECT(SEVSHIM_OK, &r, "vars none, no vars file");
        CHECK(res.vars_present == 0 && all_zero48(res.vars_digest), "no vars: flag clear, digest zero");
        r.vars_present = 1; r.vars_size = SEVSHIM_OVMF_4M_VARS_SIZE;
        EXPECT(SEVSHIM_E41, &r, "vars none, vars file");
        r.vars_size = 7;
        EXPECT(SEVSHIM_E41, &r, "vars none is checked before the size");
        r.bios_present = 0;
        EXPECT(SEVSHIM_E30, &r, "bios checks come before vars");

        p = (struct pol){ .signers = { 1 }, .vars = TV_ALLOW, .nallowed = 2 };
        memset(p.allowed[0], 0xEE, 48);
        memcpy(p.allowed[1], zero_digest, 48);
        build_policy(region, &p);
        r = good_run(good);
        r.vars_present = 1; r.vars_size = SEVSHIM_OVMF_4M_VARS_SIZE;
        EXPECT(SEVSHIM_OK, &r, "vars allow, listed digest");
        CHECK(res.vars_present == 1 && memcmp(res.vars_digest, zero_digest, 48) == 0, "vars digest recorded");
        r.vars_data = pat_vars;
        EXPECT(SEVSHIM_E42, &r, "vars allow, other digest");
        r.vars_size = SEVSHIM_OVMF_4M_VARS_SIZE - 1;
        EXPECT(SEVSHIM_E40, &r, "vars allow, size before digest");

        p = (struct pol){ .signers = { 1 }, .vars = TV_ANY };
        build_policy(region, &p);
        r = good_run(good);
        r.vars_present = 1; r.vars_size = SEVSHIM_OVMF_4M_VARS_SIZE; r.vars_data = pat_vars;
        EXPECT(SEVSHIM_OK, &r, "vars any");

        /* parser: mode range, list only with allow, allow only with a list, no duplicates */
        r = good_run(good);
        p = (struct pol){ .signers = { 1 }, .raw_vars_mode = 3 + 1 };
        build_policy(region, &p);
        EXPECT(SEVSHIM_E10, &r, "vars_mode 3");
        p = (struct pol){ .signers = { 1 }, .vars = TV_ALLOW };
        build_policy(region, &p);
        EXPECT(SEVSHIM_E10, &r, "vars allow with an empty list");
        p = (struct pol){ .signers = { 1 }, .vars = TV_ANY, .nallowed = 1 };
        build_policy(region, &p);
        EXPECT(SEVSHIM_E10, &r, "vars any with a list");
        p = (struct pol){ .signers = { 1 }, .vars = TV_NONE, .nallowed = 1 };
        build_policy(region, &p);
        EXPECT(SEVSHIM_E10, &r, "vars none with a list");
        p = (struct pol){ .signers = { 1 }, .vars = TV_ALLOW, .nallowed = 2 };
        build_policy(region, &p);
        EXPECT(SEVSHIM_E10, &r, "duplicate allowed vars digest");
        p = (struct pol){ .signers = { 1 }, .vars = TV_ALLOW, .nallowed = 1 };
        build_policy(region, &p);
        EXPECT(SEVSHIM_OK, &r, "allow with one digest, no vars file");
        put16(region + SEVSHIM_POLICY_OFF_NALLOWED_VARS, 17);
        put32(region + 12, 64 + 160 + 17 * 48);
        EXPECT(SEVSHIM_E10, &r, "17 allowed vars digests");
        p = (struct pol){ .signers = { 1 } };
        build_policy(region, &p);
        put16(region + 8, 1);
        EXPECT(SEVSHIM_E10, &r, "format_version 1 (no var-store mode) is refused");
        build_policy(region, &p);
        region[SEVSHIM_POLICY_OFF_RESERVED2] = 1;
        EXPECT(SEVSHIM_E10, &r, "reserved byte 0x1f");
    }

    /* names: every code in errors.h has one; unknown codes have none */
#define NAME_CHECK(code, name) CHECK(sevshim_error_name((enum sevshim_error)code) && \
        strcmp(sevshim_error_name((enum sevshim_error)code), name) == 0, "name of %d", code);
    SEVSHIM_ERROR_LIST(NAME_CHECK)
#undef NAME_CHECK
    CHECK(sevshim_error_name((enum sevshim_error)3) == NULL, "no name for E003");
    CHECK(sevshim_layout_find(0) == NULL && sevshim_layout_find(3) == NULL &&
          sevshim_layout_find(1)->code_size == 0x37C000, "layouts");
    /* both layouts of docs/formats.md section 1, as sevshim/layouts.def generates them */
    const struct sevshim_layout *l4 = sevshim_layout_find(1), *l2 = sevshim_layout_find(2);
    CHECK(l4 && strcmp(l4->name, "ovmf-4m") == 0 && l4->code_base == 0xFFC84000u &&
          l4->vars_size == 0x84000 && l4->vars_base == 0xFFC00000u, "layout ovmf-4m");
    CHECK(l2 && strcmp(l2->name, "ovmf-2m") == 0 && l2->code_size == 0x1E0000 &&
          l2->code_base == 0xFFE20000u && l2->vars_size == 0x20000 && l2->vars_base == 0xFFE00000u,
          "layout ovmf-2m");

    free(good); free(layout2); free(imgsize); free(key2);
    free((void *)pubkeys[1]); free((void *)pubkeys[2]);
}

/* ---- golden files (testdata/golden, written by the Go side) -------------------------------- */
static const char *code_str(enum sevshim_error e, char *buf)
{
    if (e == SEVSHIM_OK)
        return "OK";
    sprintf(buf, "E%03d", (int)e);
    return buf;
}

/* policy file -> region as the shim/host tool would see it; returns 0 if it cannot be one */
static int load_policy(const char *g, const char *file, int as_region, uint8_t *reg)
{
    size_t n;
    uint8_t *b = slurp(g, file, &n);
    int ok = 1;
    memset(reg, 0, SEVSHIM_POLICY_REGION_SIZE);
    if (as_region) {
        /* copied to the start of a zeroed region */
        if (n > SEVSHIM_POLICY_REGION_SIZE) ok = 0; else memcpy(reg, b, n);
    } else {
        /* exact block: its length must be its total_size */
        if (n < 16 || n >= SEVSHIM_POLICY_REGION_SIZE ||
            (uint32_t)(b[12] | b[13] << 8 | b[14] << 16 | (uint32_t)b[15] << 24) != n)
            ok = 0;
        else
            memcpy(reg, b, n);
    }
    free(b);
    return ok;
}

static void golden(const char *tsv, const char *g)
{
    FILE *f = fopen(tsv, "r");
    if (!f) {
        printf("cannot open %s\n", tsv);
        exit(2);
    }
    char line[8192], buf[8];
    static uint8_t *bios_cache;
    static char bios_name[512];
    static size_t bios_len;
    while (fgets(line, sizeof(line), f)) {
        line[strcspn(line, "\n")] = 0;
        char *fld[8] = { 0 };
        int nf = 0;
        for (char *t = strtok(line, "\t"); t && nf < 8; t = strtok(NULL, "\t"))
            fld[nf++] = t;
        if (nf == 4 && strcmp(fld[0], "P") == 0) {
            struct sevshim_policy sp;
            for (int mode = 0; mode < 2; mode++) {
                enum sevshim_error e = load_policy(g, fld[1], mode, region)
                    ? sevshim_policy_parse(region, sizeof(region), &sp) : SEVSHIM_E10;
                const char *want = fld[2 + mode];
                CHECK(strcmp(code_str(e, buf), want) == 0, "golden policy %s as %s: got %s want %s",
                      fld[1], mode ? "region" : "block", code_str(e, buf), want);
            }
        } else if (nf == 3 && strcmp(fld[0], "M") == 0) {
            size_t n;
            uint8_t *m = slurp(g, fld[1], &n);
            enum sevshim_error e = n != SEVSHIM_MANIFEST_SIZE ? SEVSHIM_E21 : sevshim_manifest_wellformed(m);
            CHECK(strcmp(code_str(e, buf), fld[2]) == 0, "golden manifest %s: got %s want %s",
                  fld[1], code_str(e, buf), fld[2]);
            free(m);
        } else if (nf == 7 && strcmp(fld[0], "C") == 0) {
            size_t n;
            struct run r = { 0 };
            uint8_t *m = NULL;
            size_t plen;
            uint8_t *pb = slurp(g, fld[2], &plen);
            free(pb);
            int ok = load_policy(g, fld[2], plen == SEVSHIM_POLICY_REGION_SIZE, region);
            if (strcmp(fld[3], "-")) {
                m = slurp(g, fld[3], &n);
                r.manifest = m; r.manifest_present = 1; r.manifest_size = n;
            }
            if (strcmp(fld[4], "-")) {
                if (strcmp(bios_name, fld[4])) {   /* the same images recur: load each once */
                    free(bios_cache);
                    bios_cache = slurp(g, fld[4], &bios_len);
                    snprintf(bios_name, sizeof(bios_name), "%s", fld[4]);
                }
                r.bios_present = 1;
                r.bios_size = bios_len;
                r.bios_data = bios_cache;
            }
            uint8_t *v = NULL;
            if (strcmp(fld[5], "-")) {
                v = slurp(g, fld[5], &n);
                r.vars_present = 1; r.vars_size = n; r.vars_data = v;
            }
            enum sevshim_error e = ok ? run(&r) : SEVSHIM_E10;
            free(v);
            const char *nm = e == SEVSHIM_OK ? NULL : sevshim_error_name(e);
            char got[64];
            snprintf(got, sizeof(got), "%s%s%s", code_str(e, buf), nm ? " " : "", nm ? nm : "");
            CHECK(strcmp(got, fld[6]) == 0, "golden check %s: got %s want %s", fld[1], got, fld[6]);
            free(m);
        }
    }
    free(bios_cache);
    fclose(f);
}

int main(int argc, char **argv)
{
    if (argc != 2 && argc != 4) {
        fprintf(stderr, "usage: test_verify VECTORS_DIR [GOLDEN_TSV GOLDEN_DIR]\n");
        return 2;
    }
    crafted(argv[1]);
    if (argc == 4)
        golden(argv[2], argv[3]);
    free(bios);
    printf("%d passed, %d failed\n", passed, failed);
    return failed != 0;
}
