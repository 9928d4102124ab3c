/* libFuzzer target over the firmware's policy + manifest parser and check sequence (src/verify.c).
 *
 * Input: byte 0 = flags (bit0 manifest present, bit1 BIOS present, bit2 vars present,
 * bit3 BIOS one byte short, bit4 vars of the right size), bytes 1..2 = policy length n (LE,
 * clamped to 16 KiB), then n policy bytes (copied to the start of a zeroed 16 KiB region), then
 * the manifest (its size is whatever is left). The BIOS is a fixed zero image of the layout size.
 * Seeds in test/corpus are built from valid policies and signed manifests (test/mkcorpus.sh).
 * Mutations here almost never carry a valid signature, so steps 5..9 of the check sequence are
 * reached by the seeds only; test/fuzz_signed.c fuzzes those steps under valid signatures.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "sevshim/verify.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static uint8_t region[SEVSHIM_POLICY_REGION_SIZE];
    static uint8_t *bios;
    static uint8_t vars[SEVSHIM_OVMF_4M_VARS_SIZE];
    struct sevshim_result res;
    if (!bios)
        bios = calloc(1, SEVSHIM_OVMF_4M_CODE_SIZE);
    if (size < 3)
        return 0;
    uint8_t flags = data[0];
    size_t n = (size_t)(data[1] | (data[2] << 8));
    data += 3;
    size -= 3;
    if (n > size)
        n = size;
    if (n > sizeof(region))
        n = sizeof(region);
    memset(region, 0, sizeof(region));
    memcpy(region, data, n);
    data += n;
    size -= n;

    /* the manifest in its own allocation, so ASan sees any read past its end */
    uint8_t *m = malloc(size ? size : 1);
    memcpy(m, data, size);
    struct sevshim_input in = {
        .policy_region = region, .policy_region_len = sizeof(region),
        .manifest_present = flags & 1, .manifest_size = size,
        .manifest = size == SEVSHIM_MANIFEST_SIZE ? m : NULL,
        .bios_present = (flags >> 1) & 1,
        .bios_size = SEVSHIM_OVMF_4M_CODE_SIZE - ((flags >> 3) & 1),
        .vars_present = (flags >> 2) & 1,
        .vars_size = (flags & 0x10) ? SEVSHIM_OVMF_4M_VARS_SIZE : 0x1000,
    };
    in.bios = in.bios_size == SEVSHIM_OVMF_4M_CODE_SIZE ? bios : NULL;
    in.vars = in.vars_size == SEVSHIM_OVMF_4M_VARS_SIZE ? vars : NULL;
    enum sevshim_error e = sevshim_verify(&in, &res);
    if (e != SEVSHIM_OK && sevshim_error_name(e) == NULL)
        abort();   /* every refusal must be a code from errors.h */
    if (e == SEVSHIM_OK && (res.version_string[SEVSHIM_MANIFEST_VERSTR_LEN - 1] != 0 || !res.layout))
        abort();
    free(m);
    return 0;
}
