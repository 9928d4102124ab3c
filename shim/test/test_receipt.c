/* Host unit tests of src/receipt.c (docs/formats.md section 9), compiled with ASan + UBSan:
 *  - HMAC-SHA-384 against RFC 4231 test cases 2 and 6;
 *  - the differential check: every line of testdata/golden/receipt/vectors.tsv (written by the
 *    Go generator tests/golden with package receipt) is rebuilt here through the firmware's
 *    own path (receipt_begin on a secret table holding the key, receipt_set_*, receipt_finish)
 *    and must come out byte for byte as the Go side sealed it;
 *  - the receipt-key extraction: key first, middle, last, only; absent; malformed tables; a key
 *    entry of the wrong length; two key entries; the freed tail and the total length.
 *
 *   test_receipt VECTORS_TSV GOLDEN_DIR
 * Last line: "N passed, M failed".
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "sevshim/receipt.h"
#include "sevshim/secret.h"

static int passed, failed;
#define CHECK(cond, ...) do {                                   \
        if (cond) passed++;                                     \
        else { failed++; printf("FAIL %s:%d: ", __FILE__, __LINE__); printf(__VA_ARGS__); printf("\n"); } \
    } while (0)

static const uint8_t G_TABLE[16] = SEVSHIM_GUID_EFI_SECRET_TABLE;
static const uint8_t G_KEY[16] = SEVSHIM_GUID_RECEIPT_KEY;
static const uint8_t G_A[16] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16};
static const uint8_t G_B[16] = {0xb0, 0xb1, 0xb2, 0xb3, 0xb4, 0xb5, 0xb6, 0xb7, 0xb8, 0xb9, 0xba, 0xbb, 0xbc, 0xbd, 0xbe, 0xbf};

#define AREA 0x1000u

static void put32(uint8_t *p, uint32_t v) { for (int i = 0; i < 4; i++) p[i] = (uint8_t)(v >> (8 * i)); }

static int unhex(const char *s, uint8_t *out, size_t n)
{
    if (strlen(s) != 2 * n)
        return 0;
    for (size_t i = 0; i < n; i++) {
        unsigned v;
        if (sscanf(s + 2 * i, "%2x", &v) != 1)
            return 0;
        out[i] = (uint8_t)v;
    }
    return 1;
}

static uint8_t *read_file(const char *dir, const char *rel, size_t *len)
{
    char p[1024];
    snprintf(p, sizeof(p), "%s/%s", dir, rel);
    FILE *f = fopen(p, "rb");
    if (!f)
        return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    uint8_t *b = malloc(n > 0 ? (size_t)n : 1);
    if (fread(b, 1, (size_t)n, f) != (size_t)n) {
        free(b);
        b = NULL;
    }
    fclose(f);
    *len = (size_t)n;
    return b;
}

/* A table in a fresh AREA-byte heap buffer: entries (guid, data length, fill byte). */
struct ent { const uint8_t *guid; uint32_t len; uint8_t fill; const uint8_t *data; };
static uint8_t *mktable(const struct ent *e, int n, uint32_t *total)
{
    uint8_t *a = calloc(1, AREA);
    memcpy(a, G_TABLE, 16);
    uint32_t off = 20;
    for (int i = 0; i < n; i++) {
        memcpy(a + off, e[i].guid, 16);
        put32(a + off + 16, 20 + e[i].len);
        if (e[i].data)
            memcpy(a + off + 20, e[i].data, e[i].len);
        else
            memset(a + off + 20, e[i].fill, e[i].len);
        off += 20 + e[i].len;
    }
    put32(a + 16, off);
    *total = off;
    return a;
}

static void test_hmac(void)
{
    uint8_t mac[48], want[48];
    sevshim_receipt_mac((const uint8_t *)"Jefe", 4, (const uint8_t *)"what do ya want for nothing?", 28, mac);
    unhex("af45d2e376484031617f78d2b58a6b1b9c7ef464f5a01b47e42ec3736322445e8e2240ca5e69e2c78b3239ecfab21649", want, 48);
    CHECK(memcmp(mac, want, 48) == 0, "RFC 4231 case 2");
    uint8_t key[131];
    memset(key, 0xaa, sizeof(key));
    const char *msg = "Test Using Larger Than Block-Size Key - Hash Key First";
    sevshim_receipt_mac(key, sizeof(key), (const uint8_t *)msg, strlen(msg), mac);
    unhex("4ece084485813e9088d2c63a041bc5b44f9ef1012a2b588f3cd11f05033ac4c60c2ef6ab4030fe8296248df163f44952", want, 48);
    CHECK(memcmp(mac, want, 48) == 0, "RFC 4231 case 6");
}

static void test_encode_flags(void)
{
    /* fields whose flag is clear are zero on the wire whatever the struct holds */
    struct sevshim_receipt r;
    uint8_t b[SEVSHIM_RECEIPT_SIZE], z[48] = {0};
    memset(&r, 0x5a, sizeof(r));
    r.verdict = 34;
    r.flags = 0xFFE0;   /* no defined bit: undefined bits are dropped too */
    sevshim_receipt_encode(&r, b);
    CHECK(memcmp(b, SEVSHIM_RECEIPT_MAGIC, 8) == 0, "magic");
    CHECK(b[8] == 1 && b[9] == 0 && b[10] == SEVSHIM_INFO_FORMAT_VERSION && b[11] == 0, "version, shim format");
    CHECK(b[12] == 34 && b[13] == 0 && b[14] == 0 && b[15] == 0, "verdict, flags");
    int zero = 1;
    for (unsigned i = 16; i < SEVSHIM_RECEIPT_SIZE; i++)
        zero &= b[i] == 0;
    CHECK(zero, "unflagged fields are zero");
    r.flags = SEVSHIM_RECEIPT_F_POLICY;
    sevshim_receipt_encode(&r, b);
    CHECK(b[SEVSHIM_RECEIPT_OFF_POLICY] == 0x5a && memcmp(b + SEVSHIM_RECEIPT_OFF_IMAGE, z, 48) == 0, "policy only");
}

static void test_vectors(const char *tsv, const char *dir)
{
    FILE *f = fopen(tsv, "r");
    CHECK(f != NULL, "open %s", tsv);
    if (!f)
        return;
    char line[8192];
    int n = 0;
    while (fgets(line, sizeof(line), f)) {
        if (line[0] == '#' || line[0] == '\n')
            continue;
        line[strcspn(line, "\n")] = 0;
        char *col[9];
        int nc = 0;
        for (char *s = strtok(line, "\t"); s && nc < 9; s = strtok(NULL, "\t"))
            col[nc++] = s;
        CHECK(nc == 9, "vector line has %d columns", nc);
        if (nc != 9)
            continue;
        n++;
        const char *name = col[0];
        size_t kl = 0, ml = 0;
        uint8_t *key = read_file(dir, col[1], &kl);
        CHECK(key && kl == SEVSHIM_RECEIPT_KEY_SIZE, "%s: key file %s", name, col[1]);
        uint8_t want[SEVSHIM_RECEIPT_SIZE + SEVSHIM_RECEIPT_MAC_SIZE];
        CHECK(unhex(col[8], want, sizeof(want)), "%s: blob hex", name);
        uint16_t verdict = 0;
        if (strcmp(col[2], "OK") != 0)
            verdict = (uint16_t)atoi(col[2] + 1);

        /* the key arrives in the middle of an owner's table, as `verifier secret` builds it */
        uint32_t total;
        struct ent es[3] = { { G_A, 33, 0x11, NULL }, { G_KEY, SEVSHIM_RECEIPT_KEY_SIZE, 0, key }, { G_B, 7, 0x22, NULL } };
        uint8_t *area = mktable(es, 3, &total);
        CHECK(receipt_begin(area, AREA) == SEVSHIM_OK && receipt_have_key(), "%s: receipt_begin", name);
        if (strcmp(col[3], "-") != 0) {
            uint8_t nonce[SEVSHIM_NONCE_SIZE];
            CHECK(unhex(col[3], nonce, sizeof(nonce)), "%s: nonce", name);
            receipt_set_nonce(nonce);
        }
        if (strcmp(col[4], "-") != 0) {
            uint8_t *m = read_file(dir, col[4], &ml);
            CHECK(m && ml == SEVSHIM_MANIFEST_SIZE, "%s: manifest %s", name, col[4]);
            if (m && ml == SEVSHIM_MANIFEST_SIZE)
                receipt_set_manifest(m);
            free(m);
        }
        uint8_t d[48];
        if (strcmp(col[5], "-") != 0 && unhex(col[5], d, 48))
            receipt_set_digest(SEVSHIM_RECEIPT_F_IMAGE, d);
        if (strcmp(col[6], "-") != 0 && unhex(col[6], d, 48))
            receipt_set_digest(SEVSHIM_RECEIPT_F_VARS, d);
        if (strcmp(col[7], "-") != 0 && unhex(col[7], d, 48))
            receipt_set_digest(SEVSHIM_RECEIPT_F_POLICY, d);
        uint8_t got[sizeof(want)];
        CHECK(receipt_finish(verdict, got) == 1, "%s: receipt_finish", name);
        CHECK(memcmp(got, want, sizeof(want)) == 0, "%s: C receipt differs from the Go golden vector", name);
        CHECK(!receipt_have_key(), "%s: key gone after finish", name);
        uint8_t again[sizeof(want)];
        CHECK(receipt_finish(verdict, again) == 0, "%s: a second finish makes no receipt", name);
        /* the pure encoder + MAC agree with the stateful path */
        uint8_t mac[48];
        sevshim_receipt_mac(key, kl, want, SEVSHIM_RECEIPT_SIZE, mac);
        CHECK(memcmp(mac, want + SEVSHIM_RECEIPT_SIZE, 48) == 0, "%s: MAC", name);
        free(area);
        free(key);
    }
    fclose(f);
    CHECK(n >= 8, "read %d vectors", n);
}

static int all_zero(const uint8_t *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (p[i])
            return 0;
    return 1;
}

static void test_take(void)
{
    uint8_t key[SEVSHIM_RECEIPT_KEY_SIZE], kd[SEVSHIM_RECEIPT_KEY_SIZE];
    int found;
    uint32_t total, wt;
    for (unsigned i = 0; i < sizeof(kd); i++)
        kd[i] = (uint8_t)(0xC0 + i);
    struct ent A = { G_A, 33, 0x11, NULL }, B = { G_B, 7, 0x22, NULL }, K = { G_KEY, 48, 0, kd };

    /* first / middle / last: the table without the key is exactly the table built without it */
    struct { const char *what; struct ent in[3]; struct ent out[2]; } pos[] = {
        { "first", { K, A, B }, { A, B } },
        { "middle", { A, K, B }, { A, B } },
        { "last", { A, B, K }, { A, B } },
    };
    for (unsigned p = 0; p < 3; p++) {
        uint8_t *a = mktable(pos[p].in, 3, &total);
        uint8_t *w = mktable(pos[p].out, 2, &wt);
        CHECK(sevshim_receipt_key_take(a, AREA, key, &found) == SEVSHIM_OK && found, "key %s", pos[p].what);
        CHECK(memcmp(key, kd, sizeof(kd)) == 0, "key %s: bytes", pos[p].what);
        CHECK(memcmp(a, w, AREA) == 0, "key %s: table rewritten without it, total %u, tail zero", pos[p].what, wt);
        uint32_t t;
        CHECK(sevshim_secret_table_check(a, AREA, &t) == SEVSHIM_OK && t == total - 68, "key %s: still a valid table", pos[p].what);
        free(a);
        free(w);
    }
    /* only the key: nothing is left, the table is gone */
    {
        struct ent only[1] = { K };
        uint8_t *a = mktable(only, 1, &total);
        CHECK(sevshim_receipt_key_take(a, AREA, key, &found) == SEVSHIM_OK && found, "key only");
        CHECK(all_zero(a, AREA), "key only: area zero");
        uint32_t t = 1;
        CHECK(sevshim_secret_table_check(a, AREA, &t) == SEVSHIM_OK && t == 0, "key only: no table");
        free(a);
    }
    /* no key, no table, malformed: untouched, nothing found */
    {
        struct ent two[2] = { A, B };
        uint8_t *a = mktable(two, 2, &total), *c = malloc(AREA);
        memcpy(c, a, AREA);
        CHECK(sevshim_receipt_key_take(a, AREA, key, &found) == SEVSHIM_OK && !found, "no key entry");
        CHECK(memcmp(a, c, AREA) == 0 && all_zero(key, sizeof(key)), "no key entry: untouched");
        memset(a, 0x77, AREA);
        memcpy(c, a, AREA);
        CHECK(sevshim_receipt_key_take(a, AREA, key, &found) == SEVSHIM_OK && !found && memcmp(a, c, AREA) == 0, "no table");
        free(a);
        free(c);
    }
    {
        struct ent three[3] = { A, K, B };
        uint8_t *a = mktable(three, 3, &total), *c = malloc(AREA);
        put32(a + 16, total + 1);          /* entries no longer tile [20, total) */
        memcpy(c, a, AREA);
        CHECK(sevshim_receipt_key_take(a, AREA, key, &found) == SEVSHIM_OK && !found && memcmp(a, c, AREA) == 0,
              "malformed table: left for the hand-off's E064");
        put32(a + 16, AREA + 1);           /* longer than the area */
        memcpy(c, a, AREA);
        CHECK(sevshim_receipt_key_take(a, AREA, key, &found) == SEVSHIM_OK && !found && memcmp(a, c, AREA) == 0,
              "table longer than the area");
        CHECK(sevshim_receipt_key_take(a, 16, key, &found) == SEVSHIM_OK && !found, "area shorter than a header");
        free(a);
        free(c);
    }
    /* wrong key length (too short, too long) and two key entries: E065, untouched */
    uint32_t lens[] = { 0, 47, 49, 64, 200 };
    for (unsigned i = 0; i < sizeof(lens) / sizeof(lens[0]); i++) {
        struct ent bad[3] = { A, { G_KEY, lens[i], 0x33, NULL }, B };
        uint8_t *a = mktable(bad, 3, &total), *c = malloc(AREA);
        memcpy(c, a, AREA);
        CHECK(sevshim_receipt_key_take(a, AREA, key, &found) == SEVSHIM_E65 && !found, "key of %u bytes: E065", lens[i]);
        CHECK(memcmp(a, c, AREA) == 0 && all_zero(key, sizeof(key)), "key of %u bytes: untouched, no key", lens[i]);
        free(a);
        free(c);
    }
    {
        struct ent dup[3] = { K, A, K };
        uint8_t *a = mktable(dup, 3, &total);
        CHECK(sevshim_receipt_key_take(a, AREA, key, &found) == SEVSHIM_E65 && !found && all_zero(key, sizeof(key)), "two key entries: E065");
        CHECK(receipt_begin(a, AREA) == SEVSHIM_E65 && !receipt_have_key(), "receipt_begin: E065, no key held");
        uint8_t out[SEVSHIM_RECEIPT_SIZE + SEVSHIM_RECEIPT_MAC_SIZE];
        CHECK(receipt_finish(65, out) == 0, "no key: no receipt");
        free(a);
    }
    /* the table exactly fills the area and the key is last */
    {
        struct ent full[2] = { { G_A, AREA - 20 - 20 - 68, 0x44, NULL }, K };
        uint8_t *a = mktable(full, 2, &total);
        CHECK(total == AREA, "full table");
        CHECK(sevshim_receipt_key_take(a, AREA, key, &found) == SEVSHIM_OK && found, "full table: key last");
        CHECK(all_zero(a + AREA - 68, 68), "full table: freed tail zero");
        free(a);
    }
}

int main(int argc, char **argv)
{
    if (argc != 3) {
        fprintf(stderr, "usage: test_receipt VECTORS_TSV GOLDEN_DIR\n");
        return 2;
    }
    test_hmac();
    test_encode_flags();
    test_vectors(argv[1], argv[2]);
    test_take();
    printf("%d passed, %d failed\n", passed, failed);
    return failed != 0;
}
