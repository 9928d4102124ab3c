/* libFuzzer target over the issue-6 parsers of untrusted bytes: the footer-table walk, the EFI
 * secret table and the hand-off decision (src/footer.c, src/secret.c) and the TPM response
 * parsers (src/tpm2.c).
 *
 * Input: byte 0 = selector (even: footer + secret plan, odd: TPM responses), byte 1 = policy
 * secret_mode (low bit), bytes 2..3 = length n of the BIOS image (LE), then n image bytes,
 * then the rest = the secret area (footer case) or the TPM response (TPM case). Each part is
 * copied into its own allocation so ASan sees any read past its end.
 * Seeds: test/corpus-parsers (test/mkcorpus-parsers.py).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "sevshim/footer.h"
#include "sevshim/secret.h"
#include "sevshim/layout.h"
#include "sevshim/tpm2.h"

static const uint8_t secret_guid[16] = SEVSHIM_GUID_SEV_SECRET;
/* the firmware's own table (sevshim/layout.h), not a copy */
static const struct sevshim_range avoid[] = SHIM_RAM_RANGES;
#define NAVOID ((unsigned)(sizeof(avoid) / sizeof(avoid[0])))
#define RAM_TOP 0x10000000u

/* a block the plan accepted must not touch any range of the shim's RAM */
static int overlaps_shim_ram(uint64_t base, uint64_t size)
{
    for (unsigned i = 0; i < NAVOID; i++)
        if (base < avoid[i].base + avoid[i].size && avoid[i].base < base + size)
            return 1;
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 4)
        return 0;
    uint8_t sel = data[0], mode = data[1] & 1;
    size_t n = (size_t)(data[2] | (data[3] << 8));
    data += 4;
    size -= 4;
    if (n > size)
        n = size;
    uint8_t *img = malloc(n ? n : 1);
    memcpy(img, data, n);
    size_t rest = size - n;
    uint8_t *r = malloc(rest ? rest : 1);
    memcpy(r, data + n, rest);

    if ((sel & 1) == 0) {
        const uint8_t *d;
        size_t dl;
        enum sevshim_error e = sevshim_footer_find(img, n, secret_guid, &d, &dl);
        if (e != SEVSHIM_OK && e != SEVSHIM_E61)
            abort();
        if (e == SEVSHIM_OK && d && (d < img || d + dl > img + n))
            abort();
        struct sevshim_secret_plan p;
        e = sevshim_secret_plan(img, n, mode, r, rest, RAM_TOP, avoid, NAVOID, &p);
        if (e != SEVSHIM_OK && (e < SEVSHIM_E60 || e > SEVSHIM_E64))
            abort();
        if (e == SEVSHIM_OK) {
            if (p.action == SEVSHIM_SECRET_COPY &&
                (p.table_len > p.block_size || p.table_len > rest || p.table_len < 20 ||
                 (uint64_t)p.block_base + p.block_size > RAM_TOP ||
                 overlaps_shim_ram(p.block_base, p.block_size)))
                abort();
            if (p.action == SEVSHIM_SECRET_WIPE && mode != 0)
                abort();
        }
    } else {
        static const uint8_t zero384[48];
        unsigned banks;
        enum sevshim_error e1 = tpm2_startup_rsp(r, rest);
        enum sevshim_error e2 = tpm2_pcr_event_rsp(r, rest, zero384, &banks);
        if ((e1 != SEVSHIM_OK && e1 != SEVSHIM_E73) || (e2 != SEVSHIM_OK && e2 != SEVSHIM_E73))
            abort();
        if (e2 == SEVSHIM_OK && (banks < 1 || banks > TPM2_MAX_BANKS))
            abort();
        (void)tpm2_rsp_size(r, rest);
    }
    free(img);
    free(r);
    return 0;
}
