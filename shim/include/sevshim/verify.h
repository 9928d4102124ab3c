/* sevshim verification: policy and manifest parsing and the check sequence of docs/formats.md
 * section 6 (steps 2..9). No hardware access: the same source builds into the firmware, the
 * unit tests, the fuzzer and sevshim-verify. Inputs are untrusted bytes with explicit lengths;
 * nothing is read past them. */
#ifndef SEVSHIM_VERIFY_H
#define SEVSHIM_VERIFY_H
#include <stddef.h>
#include <stdint.h>
#include "sevshim/errors.h"
#include "sevshim/formats.h"

struct sevshim_layout {
    uint32_t id;
    const char *name;
    uint32_t code_size, code_base;
    uint32_t vars_size, vars_base;
};

/* NULL for unknown ids (including 0). */
const struct sevshim_layout *sevshim_layout_find(uint32_t id);

/* A parsed policy: pointers into the caller's region, valid as long as the region is. */
struct sevshim_policy {
    const uint8_t *block;          /* region start */
    uint32_t total_size;
    const struct sevshim_layout *layout;
    uint8_t secret_mode, tpm_mode, tpm_pcr, vars_mode;
    uint16_t nsigners, ndigests, nversions, nallowed_vars;
    const uint8_t *signers;        /* nsigners * 160 */
    const uint8_t *digests;        /* ndigests * 48 */
    const uint8_t *versions;       /* nversions * 8 (u64 LE) */
    const uint8_t *allowed_vars;   /* nallowed_vars * 48 */
};

/* Parses a policy region (docs/formats.md section 2): 0x4000 bytes, zero after total_size;
 * SEVSHIM_OK or SEVSHIM_E10. */
enum sevshim_error sevshim_policy_parse(const uint8_t *region, size_t region_len,
                                        struct sevshim_policy *out);

/* Structural checks of the 352-byte manifest at m (magic, version, signed_size, reserved,
 * version string): SEVSHIM_OK or SEVSHIM_E22. */
enum sevshim_error sevshim_manifest_wellformed(const uint8_t *m);

/* What the shim got from the host. A data pointer is NULL when the file's size is not the one
 * the shim accepts (it is then not read); the checks refuse such sizes before using data. */
struct sevshim_input {
    const uint8_t *policy_region;  /* the shim's RAM copy of its policy region */
    size_t policy_region_len;
    int manifest_present;
    uint64_t manifest_size;
    const uint8_t *manifest;       /* non-NULL iff manifest_size == 352 */
    int bios_present;
    uint64_t bios_size;
    const uint8_t *bios;           /* non-NULL iff bios_size == the layout's code_size */
    int vars_present;
    uint64_t vars_size;
    const uint8_t *vars;           /* non-NULL iff vars_size == the layout's vars_size */
};

struct sevshim_result {
    const struct sevshim_layout *layout;
    uint64_t bios_version;
    uint8_t key_id[SEVSHIM_SHA384_SIZE];
    uint8_t image_digest[SEVSHIM_SHA384_SIZE];
    uint8_t policy_digest[SEVSHIM_SHA384_SIZE];  /* SHA-384 of policy [0, total_size) */
    uint8_t vars_present;                        /* a var store was checked (step 9) */
    uint8_t vars_digest[SEVSHIM_SHA384_SIZE];    /* its SHA-384; all zero when absent */
    char version_string[SEVSHIM_MANIFEST_VERSTR_LEN]; /* NUL-terminated, printable ASCII */
    unsigned signer_index;
    uint8_t secret_mode, tpm_mode, tpm_pcr;      /* copied from the policy for later steps */
};

/* Steps 2..9 of docs/formats.md section 6, in order; the first failure wins. */
enum sevshim_error sevshim_verify(const struct sevshim_input *in, struct sevshim_result *out);

/* SHA-384 (FIPS 180-4, BearSSL) of n bytes at p. */
void sevshim_sha384(const void *p, size_t n, uint8_t out[SEVSHIM_SHA384_SIZE]);

/* "no-fwcfg", ...; NULL for codes that do not exist. */
const char *sevshim_error_name(enum sevshim_error e);

#endif
