/* sevshim-verify POLICY MANIFEST BIOS [VARS]
 *
 * Runs the firmware's verification sequence (src/verify.c, the very same file) on host files
 * and prints "OK" (exit 0) or "E0NN name" (exit 1). Usage errors exit 2.
 *
 * POLICY is a whole 16 KiB policy region, an exact policy block (file length = its total_size;
 * it is placed at the start of a zeroed region exactly as `builder build` embeds it), or a whole
 * shim image of the layout's code size, whose policy region is found through the footer table. "-" for MANIFEST, BIOS or VARS means
 * that fw_cfg file is absent. Like the firmware, a file is only handed to the checks when its
 * size is the one the shim's buffer holds; other sizes are judged from the size alone.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "sevshim/verify.h"

static uint8_t *slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        fprintf(stderr, "sevshim-verify: cannot open %s\n", path);
        exit(2);
    }
    size_t cap = 1 << 20, n = 0;
    uint8_t *b = malloc(cap);
    for (;;) {
        if (n == cap) {
            cap *= 2;
            b = realloc(b, cap);
        }
        if (!b) {
            fprintf(stderr, "sevshim-verify: out of memory\n");
            exit(2);
        }
        size_t r = fread(b + n, 1, cap - n, f);
        if (r == 0)
            break;
        n += r;
    }
    if (ferror(f)) {
        fprintf(stderr, "sevshim-verify: read error on %s\n", path);
        exit(2);
    }
    fclose(f);
    *len = n;
    return b;
}

static uint16_t le16(const uint8_t *p) { return (uint16_t)(p[0] | (p[1] << 8)); }
static uint32_t le32(const uint8_t *p)
{
    return (uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16) | ((uint32_t)p[3] << 24);
}

/* Policy region offset inside a shim image via the footer table, or -1. */
static long footer_policy_offset(const uint8_t *img, size_t n)
{
    static const uint8_t gfoot[16] = SEVSHIM_GUID_FOOTER_TABLE, gpol[16] = SEVSHIM_GUID_POLICY;
    if (n < 0x40 || memcmp(img + n - SEVSHIM_FOOTER_GUID_OFF_FROM_END, gfoot, 16) != 0)
        return -1;
    size_t total = le16(img + n - SEVSHIM_FOOTER_LEN_OFF_FROM_END);
    if (total < 18 || total > n - 0x20)
        return -1;
    size_t start = n - 0x20 - total, pos = n - SEVSHIM_FOOTER_LEN_OFF_FROM_END;
    while (pos > start && pos - start >= 18) {
        size_t l = le16(img + pos - 18);
        if (l < 18 || l > pos - start)
            return -1;
        if (memcmp(img + pos - 16, gpol, 16) == 0 && l == 26) {
            uint64_t base = 0x100000000ull - n, gpa = le32(img + pos - l);
            uint32_t size = le32(img + pos - l + 4);
            if (size != SEVSHIM_POLICY_REGION_SIZE || gpa < base || gpa - base + size > n)
                return -1;
            return (long)(gpa - base);
        }
        pos -= l;
    }
    return -1;
}

/* whether n is the code size of a layout (sevshim/layouts.def): then the file is a shim image */
static int is_code_size(size_t n)
{
#define SEVSHIM_LAYOUT_ROW(id, sym, name, code, vars, code_file, vars_file) if (n == (code)) return 1;
#include "sevshim/layouts.def"
#undef SEVSHIM_LAYOUT_ROW
    return 0;
}

int main(int argc, char **argv)
{
    if (argc != 4 && argc != 5) {
        fprintf(stderr, "usage: sevshim-verify POLICY MANIFEST BIOS [VARS]   (\"-\" = absent)\n");
        return 2;
    }
    static uint8_t region[SEVSHIM_POLICY_REGION_SIZE];
    size_t plen;
    uint8_t *p = slurp(argv[1], &plen);
    if (is_code_size(plen)) {
        long off = footer_policy_offset(p, plen);
        if (off < 0) {
            fprintf(stderr, "sevshim-verify: %s: shim image without a valid sevshim policy footer entry\n", argv[1]);
            return 2;
        }
        memcpy(region, p + off, sizeof(region));
    } else if (plen == sizeof(region)) {
        memcpy(region, p, plen);             /* a whole policy region */
    } else if (plen < sizeof(region) && plen >= 16 && le32(p + SEVSHIM_POLICY_OFF_TOTAL_SIZE) == plen) {
        memcpy(region, p, plen);             /* an exact block, zero-padded as builder embeds it */
    } else if (plen < sizeof(region)) {
        /* not a region and not an exact block (total_size differs from the file length) */
        printf("E%03d %s\n", (int)SEVSHIM_E10, sevshim_error_name(SEVSHIM_E10));
        return 1;
    } else {
        /* larger than the region: no shim image can carry it, so it cannot parse */
        printf("E%03d %s\n", (int)SEVSHIM_E10, sevshim_error_name(SEVSHIM_E10));
        return 1;
    }
    free(p);

    struct sevshim_input in = { .policy_region = region, .policy_region_len = sizeof(region) };
    /* the buffers are passed as the firmware passes its own: only at the policy layout's sizes */
    struct sevshim_policy pol;
    const struct sevshim_layout *l =
        sevshim_policy_parse(region, sizeof(region), &pol) == SEVSHIM_OK ? pol.layout : NULL;
    uint8_t *m = NULL, *b = NULL;
    size_t len;
    if (strcmp(argv[2], "-") != 0) {
        m = slurp(argv[2], &len);
        in.manifest_present = 1;
        in.manifest_size = len;
        in.manifest = len == SEVSHIM_MANIFEST_SIZE ? m : NULL;
    }
    if (strcmp(argv[3], "-") != 0) {
        b = slurp(argv[3], &len);
        in.bios_present = 1;
        in.bios_size = len;
        in.bios = l && len == l->code_size ? b : NULL;
    }
    uint8_t *v = NULL;
    if (argc == 5 && strcmp(argv[4], "-") != 0) {
        v = slurp(argv[4], &len);
        in.vars_present = 1;
        in.vars_size = len;
        in.vars = l && len == l->vars_size ? v : NULL;
    }

    struct sevshim_result r;
    enum sevshim_error e = sevshim_verify(&in, &r);
    free(m);
    free(b);
    free(v);
    if (e != SEVSHIM_OK) {
        printf("E%03d %s\n", (int)e, sevshim_error_name(e));
        return 1;
    }
    printf("OK\n");
    return 0;
}
