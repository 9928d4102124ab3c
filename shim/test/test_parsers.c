/* Host unit tests of the parsers of untrusted bytes: the footer-table walk
 * (src/footer.c), the EFI secret table and the hand-off decision (src/secret.c), and the TPM
 * command encoders / response parsers (src/tpm2.c). Compiled with ASan + UBSan; every buffer
 * is its own heap allocation so a read past its end is caught.
 *
 *   test_parsers [SHIM_FD]     SHIM_FD: the built shim template (its own footer table is read)
 * Last line: "N passed, M failed".
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "bearssl_hash.h"
#include "sevshim/footer.h"
#include "sevshim/secret.h"
#include "sevshim/tpm2.h"

static int passed, failed;
#define CHECK(cond, ...) do {                                   \
        if (cond) passed++;                                     \
        else { failed++; printf("FAIL %s:%d: ", __FILE__, __LINE__); printf(__VA_ARGS__); printf("\n"); } \
    } while (0)

static void put16(uint8_t *p, uint16_t v) { p[0] = (uint8_t)v; p[1] = (uint8_t)(v >> 8); }
static void put32(uint8_t *p, uint32_t v) { for (int i = 0; i < 4; i++) p[i] = (uint8_t)(v >> (8 * i)); }
static void be16(uint8_t *p, uint16_t v) { p[0] = (uint8_t)(v >> 8); p[1] = (uint8_t)v; }
static void be32(uint8_t *p, uint32_t v) { p[0] = (uint8_t)(v >> 24); p[1] = (uint8_t)(v >> 16); p[2] = (uint8_t)(v >> 8); p[3] = (uint8_t)v; }

static const uint8_t G_FOOTER[16] = SEVSHIM_GUID_FOOTER_TABLE;
static const uint8_t G_SECRET[16] = SEVSHIM_GUID_SEV_SECRET;
static const uint8_t G_RESET[16] = SEVSHIM_GUID_SEV_ES_RESET;
static const uint8_t G_INFO[16] = SEVSHIM_GUID_INFO;
static const uint8_t G_POLICY[16] = SEVSHIM_GUID_POLICY;
static const uint8_t G_TABLE[16] = SEVSHIM_GUID_EFI_SECRET_TABLE;
static const uint8_t G_OTHER[16] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16};

#define IMG 0x1000u

/* An image of IMG bytes (0xFF) with a footer table of the given entries, nearest first. */
struct ent { const uint8_t *guid; const uint8_t *data; size_t len; };
static uint8_t *mkimg(const struct ent *e, int n)
{
    uint8_t *img = malloc(IMG);
    memset(img, 0xFF, IMG);
    memcpy(img + IMG - 0x30, G_FOOTER, 16);
    size_t p = IMG - 0x32, total = 18;
    for (int i = 0; i < n; i++) {
        memcpy(img + p - 16, e[i].guid, 16);
        put16(img + p - 18, (uint16_t)(e[i].len + 18));
        memcpy(img + p - 18 - e[i].len, e[i].data, e[i].len);
        p -= e[i].len + 18;
        total += e[i].len + 18;
    }
    put16(img + IMG - 0x32, (uint16_t)total);
    return img;
}

static void test_footer(void)
{
    const uint8_t *d;
    size_t dl;
    uint8_t blk[8], rv[4] = {1, 2, 3, 4};
    put32(blk, 0x80C000);
    put32(blk + 4, 0xC00);
    struct ent two[] = { { G_RESET, rv, 4 }, { G_SECRET, blk, 8 } };
    uint8_t *img = mkimg(two, 2);
    CHECK(sevshim_footer_find(img, IMG, G_SECRET, &d, &dl) == SEVSHIM_OK && d && dl == 8 &&
          memcmp(d, blk, 8) == 0, "footer: find the secret entry");
    CHECK(sevshim_footer_find(img, IMG, G_RESET, &d, &dl) == SEVSHIM_OK && d && dl == 4, "footer: first entry");
    CHECK(sevshim_footer_find(img, IMG, G_OTHER, &d, &dl) == SEVSHIM_OK && !d && dl == 0, "footer: absent");
    /* every single-byte corruption of the length fields is refused or still in bounds */
    uint8_t *c = malloc(IMG);
    memcpy(c, img, IMG); put16(c + IMG - 0x32, 17);
    CHECK(sevshim_footer_find(c, IMG, G_SECRET, &d, &dl) == SEVSHIM_E61 && !d, "footer: total 17");
    memcpy(c, img, IMG); put16(c + IMG - 0x32, 0xFFFF);
    CHECK(sevshim_footer_find(c, IMG, G_SECRET, &d, &dl) == SEVSHIM_E61, "footer: total past the image");
    memcpy(c, img, IMG); put16(c + IMG - 0x32, 18 + 22 + 26 + 5);
    CHECK(sevshim_footer_find(c, IMG, G_SECRET, &d, &dl) == SEVSHIM_E61, "footer: stray bytes");
    memcpy(c, img, IMG); put16(c + IMG - 0x32, 18 + 22 + 26 + 30);
    CHECK(sevshim_footer_find(c, IMG, G_SECRET, &d, &dl) == SEVSHIM_E61, "footer: total beyond entries (0xFF garbage)");
    memcpy(c, img, IMG); put16(c + IMG - 0x32 - 18, 17);
    CHECK(sevshim_footer_find(c, IMG, G_SECRET, &d, &dl) == SEVSHIM_E61, "footer: entry length 17");
    memcpy(c, img, IMG); put16(c + IMG - 0x32 - 18, 200);
    CHECK(sevshim_footer_find(c, IMG, G_SECRET, &d, &dl) == SEVSHIM_E61, "footer: entry past the table start");
    memcpy(c, img, IMG); c[IMG - 0x30] ^= 1;
    CHECK(sevshim_footer_find(c, IMG, G_SECRET, &d, &dl) == SEVSHIM_OK && !d, "footer: no footer GUID = no table");
    CHECK(sevshim_footer_find(img, 0x31, G_SECRET, &d, &dl) == SEVSHIM_OK && !d, "footer: tiny image");
    CHECK(sevshim_footer_find(NULL, 0, G_SECRET, &d, &dl) == SEVSHIM_OK && !d, "footer: NULL");
    /* a table that fills the image exactly (start = 0) */
    uint8_t *t = malloc(0x40);
    memset(t, 0xFF, 0x40);
    memcpy(t + 0x10, G_FOOTER, 16);
    put16(t + 0x0E, 0x20);               /* total 0x20: 14 bytes before the length, too few for an entry */
    CHECK(sevshim_footer_find(t, 0x40, G_OTHER, &d, &dl) == SEVSHIM_E61, "footer: entry before image start");
    free(t);
    struct ent dup[] = { { G_SECRET, blk, 8 }, { G_SECRET, blk, 8 } };
    uint8_t *di = mkimg(dup, 2);
    CHECK(sevshim_footer_find(di, IMG, G_SECRET, &d, &dl) == SEVSHIM_E61 && !d, "footer: duplicate GUID");
    free(di);
    free(c);
    free(img);
}

static uint8_t *mktable(size_t area, uint32_t n_entries, uint32_t data_len, uint32_t *total)
{
    uint8_t *a = calloc(1, area);
    memcpy(a, G_TABLE, 16);
    uint32_t off = 20;
    for (uint32_t i = 0; i < n_entries; i++) {
        memcpy(a + off, G_OTHER, 16);
        put32(a + off + 16, 20 + data_len);
        for (uint32_t j = 0; j < data_len; j++)
            a[off + 20 + j] = (uint8_t)(0xA5 ^ j ^ i);
        off += 20 + data_len;
    }
    put32(a + 16, off);
    *total = off;
    return a;
}

static const struct sevshim_range avoid[] = { { 0, 0x1000 }, { 0x80000, 0x1000 }, { 0xA0000, 0x60000 }, { 0x100000, 0x100000 } };
#define NAV ((unsigned)(sizeof(avoid) / sizeof(avoid[0])))

static void test_secret(void)
{
    uint32_t t, tt;
    uint8_t *a = mktable(0x1000, 2, 18, &t);
    CHECK(sevshim_secret_table_check(a, 0x1000, &tt) == SEVSHIM_OK && tt == t && t == 20 + 2 * 38, "table: valid");
    CHECK(sevshim_secret_table_check(a, t, &tt) == SEVSHIM_OK && tt == t, "table: area exactly total");
    CHECK(sevshim_secret_table_check(a, t - 1, &tt) == SEVSHIM_E64, "table: total > area");
    put32(a + 16, 19);
    CHECK(sevshim_secret_table_check(a, 0x1000, &tt) == SEVSHIM_E64 && tt == 0, "table: total 19");
    put32(a + 16, 20);
    CHECK(sevshim_secret_table_check(a, 0x1000, &tt) == SEVSHIM_OK && tt == 20, "table: header only");
    put32(a + 16, t + 10);
    CHECK(sevshim_secret_table_check(a, 0x1000, &tt) == SEVSHIM_E64, "table: 10 stray bytes after the entries");
    put32(a + 16, t + 20);
    CHECK(sevshim_secret_table_check(a, 0x1000, &tt) == SEVSHIM_E64, "table: zero entry (length 0) after the entries");
    put32(a + 16, t);
    put32(a + 20 + 16, 19);
    CHECK(sevshim_secret_table_check(a, 0x1000, &tt) == SEVSHIM_E64, "table: entry length 19");
    put32(a + 20 + 16, t);
    CHECK(sevshim_secret_table_check(a, 0x1000, &tt) == SEVSHIM_E64, "table: entry past total");
    put32(a + 20 + 16, 38);
    a[3] ^= 0x10;
    CHECK(sevshim_secret_table_check(a, 0x1000, &tt) == SEVSHIM_OK && tt == 0, "table: other GUID = no table");
    a[3] ^= 0x10;
    CHECK(sevshim_secret_table_check(a, 10, &tt) == SEVSHIM_OK && tt == 0, "table: area shorter than a GUID");
    CHECK(sevshim_secret_table_check(a, 18, &tt) == SEVSHIM_E64, "table: GUID but no length");

    /* plans */
    struct sevshim_secret_plan p;
    uint8_t blk[8], rv[4] = {0};
    put32(blk, 0x80C000);
    put32(blk + 4, 0xC00);
    struct ent with[] = { { G_RESET, rv, 4 }, { G_SECRET, blk, 8 } };
    uint8_t *bios = mkimg(with, 2);
    uint8_t *none = mkimg(with, 1);
    uint8_t *empty = calloc(1, 0x1000);    /* no secret at all */
    uint64_t top = 0x10000000;
    CHECK(sevshim_secret_plan(bios, IMG, 0, a, 0x1000, top, avoid, NAV, &p) == SEVSHIM_OK &&
          p.action == SEVSHIM_SECRET_COPY && p.block_base == 0x80C000 && p.block_size == 0xC00 &&
          p.table_len == t, "plan: copy");
    CHECK(sevshim_secret_plan(bios, IMG, 1, a, 0x1000, top, avoid, NAV, &p) == SEVSHIM_OK &&
          p.action == SEVSHIM_SECRET_COPY, "plan: copy (require)");
    CHECK(sevshim_secret_plan(bios, IMG, 1, empty, 0x1000, top, avoid, NAV, &p) == SEVSHIM_OK &&
          p.action == SEVSHIM_SECRET_NONE, "plan: block, no secret");
    CHECK(sevshim_secret_plan(none, IMG, 0, a, 0x1000, top, avoid, NAV, &p) == SEVSHIM_OK &&
          p.action == SEVSHIM_SECRET_WIPE && p.table_len == t, "plan: no block, optional: wipe");
    CHECK(sevshim_secret_plan(none, IMG, 0, empty, 0x1000, top, avoid, NAV, &p) == SEVSHIM_OK &&
          p.action == SEVSHIM_SECRET_NONE, "plan: no block, no secret");
    CHECK(sevshim_secret_plan(none, IMG, 1, a, 0x1000, top, avoid, NAV, &p) == SEVSHIM_E60, "plan: require, no block");
    CHECK(sevshim_secret_plan(none, IMG, 1, empty, 0x1000, top, avoid, NAV, &p) == SEVSHIM_E60, "plan: require, no block, no secret");
    put32(blk, 0); put32(blk + 4, 0);      /* Debian OVMF style: entry present, zeros */
    uint8_t *zero = mkimg(with, 2);
    CHECK(sevshim_secret_plan(zero, IMG, 0, a, 0x1000, top, avoid, NAV, &p) == SEVSHIM_OK &&
          p.action == SEVSHIM_SECRET_WIPE, "plan: zero block = none");
    CHECK(sevshim_secret_plan(zero, IMG, 1, a, 0x1000, top, avoid, NAV, &p) == SEVSHIM_E60, "plan: zero block, require");
    free(zero);
    struct { uint32_t base, size; enum sevshim_error want; const char *what; } cases[] = {
        { 0x1000, 0, SEVSHIM_E61, "size 0, base not 0" },
        { 0x80800, 0x1000, SEVSHIM_E62, "overlaps the shim's secret page" },
        { 0xFFFFF000u, 0x2000, SEVSHIM_E62, "beyond RAM, wraps 32 bits" },
        { 0x0FFFF000, 0x2000, SEVSHIM_E62, "crosses the RAM top" },
        { 0x0FFFF000, 0x1000, SEVSHIM_OK, "ends at the RAM top" },
        { 0xB0000, 0x100, SEVSHIM_E62, "legacy hole" },
        { 0x1FF000, 0x1000, SEVSHIM_E62, "payload end" },
        { 0x200000, 0x1000, SEVSHIM_OK, "just after the payload" },
        { 0x0, 0x1000, SEVSHIM_E62, "null page" },
        { 0x800000, 0x40, SEVSHIM_E63, "block smaller than the table" },
    };
    for (unsigned i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        put32(blk, cases[i].base); put32(blk + 4, cases[i].size);
        uint8_t *b = mkimg(with, 2);
        enum sevshim_error e = sevshim_secret_plan(b, IMG, 0, a, 0x1000, top, avoid, NAV, &p);
        CHECK(e == cases[i].want, "plan: %s: got E%03d want E%03d", cases[i].what, (int)e, (int)cases[i].want);
        free(b);
    }
    /* wrong entry size */
    struct ent bad[] = { { G_SECRET, blk, 4 } };
    uint8_t *b4 = mkimg(bad, 1);
    CHECK(sevshim_secret_plan(b4, IMG, 0, a, 0x1000, top, avoid, NAV, &p) == SEVSHIM_E61, "plan: 4-byte secret entry");
    free(b4);
    /* malformed table with a good block */
    put32(a + 20 + 16, 5);
    CHECK(sevshim_secret_plan(bios, IMG, 0, a, 0x1000, top, avoid, NAV, &p) == SEVSHIM_E64, "plan: malformed table");
    free(a); free(bios); free(none); free(empty);
}

static void sha384(const void *p, size_t n, uint8_t *out)
{
    br_sha384_context c;
    br_sha384_init(&c);
    br_sha384_update(&c, p, n);
    br_sha384_out(&c, out);
}

/* A PCR_Event response with the given banks; sha384 bank gets `d384`. Returns its length. */
static size_t mkrsp(uint8_t *r, const uint16_t *algs, const unsigned *sizes, int n, const uint8_t *d384)
{
    size_t off = 14 + 4;
    for (int i = 0; i < n; i++) {
        be16(r + off, algs[i]);
        off += 2;
        if (algs[i] == 0x000C)
            memcpy(r + off, d384, 48);
        else
            memset(r + off, 0x11 * (i + 1), sizes[i]);
        off += sizes[i];
    }
    be32(r + 14, (uint32_t)n);
    be32(r + 10, (uint32_t)(off - 14));
    be16(r + off, 0); r[off + 2] = 1; be16(r + off + 3, 0);
    off += 5;
    be16(r, 0x8002);
    be32(r + 2, (uint32_t)off);
    be32(r + 6, 0);
    return off;
}

static void test_tpm2(void)
{
    uint8_t s[TPM2_STARTUP_CMD_SIZE];
    static const uint8_t want_s[12] = {0x80, 0x01, 0, 0, 0, 12, 0, 0, 0x01, 0x44, 0, 0};
    tpm2_startup_cmd(s);
    CHECK(memcmp(s, want_s, 12) == 0, "startup command bytes");

    struct sevshim_layout lay = { 1, "ovmf-4m", 0, 0, 0, 0 };
    struct sevshim_result res;
    memset(&res, 0, sizeof(res));
    res.layout = &lay;
    res.bios_version = 0x0102030405060708ull;
    memset(res.key_id, 0xAA, 48);
    memset(res.image_digest, 0xBB, 48);
    memset(res.policy_digest, 0xCC, 48);
    uint8_t ev[SEVSHIM_TPM_EVENT_SIZE];
    sevshim_tpm_event(&res, ev);
    CHECK(memcmp(ev, "SEVSHEV2", 8) == 0 && ev[8] == 1 && ev[9] == 0 && ev[12] == 0 && ev[0x10] == 8 &&
          ev[0x17] == 1 && ev[0x18] == 0xAA && ev[0x47] == 0xAA && ev[0x48] == 0xBB && ev[0x77] == 0xBB &&
          ev[0x78] == 0xCC && ev[0xA7] == 0xCC, "event layout (formats.md section 7)");
    {
        uint8_t acc = 0;
        for (unsigned i = 0x0C; i < 0x10; i++)
            acc |= ev[i];
        for (unsigned i = 0xA8; i < SEVSHIM_TPM_EVENT_SIZE; i++)
            acc |= ev[i];
        CHECK(acc == 0, "no var store: flags 0 and an all-zero vars digest");
        struct sevshim_result rv = res;
        uint8_t evv[SEVSHIM_TPM_EVENT_SIZE];
        rv.vars_present = 1;
        memset(rv.vars_digest, 0xDD, 48);
        sevshim_tpm_event(&rv, evv);
        CHECK(evv[0x0C] == 1 && evv[0x0D] == 0 && evv[0xA8] == 0xDD && evv[0xD7] == 0xDD &&
              memcmp(evv, ev, 0x0C) == 0 && memcmp(evv + 0x10, ev + 0x10, 0x98) == 0,
              "var store: flag bit 0 and its digest at 0xa8");
    }

    uint8_t c[TPM2_PCR_EVENT_CMD_SIZE];
    tpm2_pcr_event_cmd(c, 15, ev);
    static const uint8_t want_c[29] = {0x80, 0x02, 0, 0, 0, 245, 0, 0, 0x01, 0x3C, 0, 0, 0, 15,
                                       0, 0, 0, 9, 0x40, 0, 0, 0x09, 0, 0, 0, 0, 0, 0, 216};
    CHECK(TPM2_PCR_EVENT_CMD_SIZE == 245 && memcmp(c, want_c, 29) == 0 && memcmp(c + 29, ev, 216) == 0,
          "PCR_Event command bytes");

    uint8_t r[10] = {0x80, 0x01, 0, 0, 0, 10, 0, 0, 0, 0};
    CHECK(tpm2_startup_rsp(r, 10) == SEVSHIM_OK, "startup rsp success");
    r[8] = 1;
    CHECK(tpm2_startup_rsp(r, 10) == SEVSHIM_OK, "startup rsp TPM_RC_INITIALIZE");
    r[9] = 1;
    CHECK(tpm2_startup_rsp(r, 10) == SEVSHIM_E73, "startup rsp other rc");
    r[8] = 0; r[9] = 0; r[1] = 2;
    CHECK(tpm2_startup_rsp(r, 10) == SEVSHIM_E73, "startup rsp tag");
    r[1] = 1;
    CHECK(tpm2_startup_rsp(r, 9) == SEVSHIM_E73, "startup rsp short");
    CHECK(tpm2_rsp_size(r, 9) == 0 && tpm2_rsp_size(r, 10) == 10, "rsp size");

    uint8_t d384[48];
    sha384(ev, sizeof(ev), d384);
    uint16_t algs[3] = {0x000B, 0x000C, 0x0004};
    unsigned sizes[3] = {32, 48, 20};
    uint8_t *b = malloc(512);
    unsigned banks;
    size_t n = mkrsp(b, algs, sizes, 2, d384);
    uint8_t *x = malloc(n);
    memcpy(x, b, n);
    CHECK(tpm2_pcr_event_rsp(x, n, d384, &banks) == SEVSHIM_OK && banks == 2, "PCR_Event rsp sha256+sha384");
    CHECK(tpm2_pcr_event_rsp(x, n - 1, d384, &banks) == SEVSHIM_E73 && banks == 0, "PCR_Event rsp size != len");
    x[14 + 4 + 2 + 32 + 2 + 5] ^= 1;
    CHECK(tpm2_pcr_event_rsp(x, n, d384, &banks) == SEVSHIM_E73, "PCR_Event rsp wrong SHA-384 of the event");
    free(x);
    n = mkrsp(b, algs, sizes, 3, d384);
    CHECK(tpm2_pcr_event_rsp(b, n, d384, &banks) == SEVSHIM_OK && banks == 3, "three banks");
    be32(b + 14, 4);
    CHECK(tpm2_pcr_event_rsp(b, n, d384, &banks) == SEVSHIM_E73, "count larger than the digests");
    be32(b + 14, 0);
    CHECK(tpm2_pcr_event_rsp(b, n, d384, &banks) == SEVSHIM_E73, "count 0");
    be32(b + 14, 17);
    CHECK(tpm2_pcr_event_rsp(b, n, d384, &banks) == SEVSHIM_E73, "count 17");
    be32(b + 14, 3);
    be32(b + 10, 0xFFFFFFF0u);
    CHECK(tpm2_pcr_event_rsp(b, n, d384, &banks) == SEVSHIM_E73, "parameterSize huge");
    uint16_t dup[2] = {0x000B, 0x000B};
    unsigned dsz[2] = {32, 32};
    n = mkrsp(b, dup, dsz, 2, d384);
    CHECK(tpm2_pcr_event_rsp(b, n, d384, &banks) == SEVSHIM_E73, "duplicate bank");
    uint16_t unk[1] = {0x0099};
    unsigned usz[1] = {32};
    n = mkrsp(b, unk, usz, 1, d384);
    CHECK(tpm2_pcr_event_rsp(b, n, d384, &banks) == SEVSHIM_E73, "unknown algorithm");
    n = mkrsp(b, algs, sizes, 1, d384);
    b[n - 2] = 1;                            /* hmac size 0x0100 */
    CHECK(tpm2_pcr_event_rsp(b, n, d384, &banks) == SEVSHIM_E73, "non-empty hmac");
    n = mkrsp(b, algs, sizes, 1, d384);
    be32(b + 6, 0x184);                      /* an error code with a full body */
    CHECK(tpm2_pcr_event_rsp(b, n, d384, &banks) == SEVSHIM_E73, "rc != 0");
    uint8_t err[10] = {0x80, 0x01, 0, 0, 0, 10, 0, 0, 0x09, 0x22};
    CHECK(tpm2_pcr_event_rsp(err, 10, d384, &banks) == SEVSHIM_E73, "error response");
    n = mkrsp(b, algs, sizes, 1, d384);
    b[0] = 0x80; b[1] = 0x01;
    CHECK(tpm2_pcr_event_rsp(b, n, d384, &banks) == SEVSHIM_E73, "tag NO_SESSIONS");
    free(b);
}

/* A template of either layout (sevshim/layouts.def): the size of one, its info entry naming that
 * layout, the policy region at end-0x30000 and the secret entry every layout shares. */
static void test_shim_image(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        printf("cannot open %s\n", path);
        failed++;
        return;
    }
    uint8_t *img = malloc(SEVSHIM_OVMF_4M_CODE_SIZE + 1);
    size_t n = fread(img, 1, SEVSHIM_OVMF_4M_CODE_SIZE + 1, f);
    fclose(f);
    uint32_t want_layout = n == SEVSHIM_OVMF_4M_CODE_SIZE ? SEVSHIM_LAYOUT_OVMF_4M :
                           n == SEVSHIM_OVMF_2M_CODE_SIZE ? SEVSHIM_LAYOUT_OVMF_2M : 0;
    CHECK(want_layout != 0, "%s: %zu bytes is no layout's code size", path, n);
    const uint8_t *d;
    size_t dl;
    CHECK(want_layout && sevshim_footer_find(img, n, G_SECRET, &d, &dl) == SEVSHIM_OK &&
          d && dl == 8 && d[0] == 0 && d[1] == 0 && d[2] == 0x08 && d[4] == 0 && d[5] == 0x10,
          "shim image: secret entry 0x80000/0x1000");
    CHECK(want_layout && sevshim_footer_find(img, n, G_INFO, &d, &dl) == SEVSHIM_OK && d && dl == 8 &&
          d[0] == 1 && d[4] == want_layout && d[5] == 0 && d[6] == 0 && d[7] == 0,
          "%s: info entry format 1, layout %u", path, (unsigned)want_layout);
    CHECK(want_layout && sevshim_footer_find(img, n, G_POLICY, &d, &dl) == SEVSHIM_OK && d && dl == 8 &&
          d[0] == 0 && d[1] == 0 && d[2] == 0xFD && d[3] == 0xFF && d[4] == 0 && d[5] == 0x40,
          "%s: policy entry 0xFFFD0000/0x4000", path);
    free(img);
}

int main(int argc, char **argv)
{
    test_footer();
    test_secret();
    test_tpm2();
    for (int i = 1; i < argc; i++)
        test_shim_image(argv[i]);
    printf("%d passed, %d failed\n", passed, failed);
    return failed != 0;
}
