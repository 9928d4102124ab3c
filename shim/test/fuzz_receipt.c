/* libFuzzer target over the receipt-key extraction (src/receipt.c, docs/formats.md section 9)
 * on an arbitrary secret area: it must never read or write past the area, and the result must
 * hold what the extraction promises: E065 or OK; with a key found, the area is a valid table
 * (or all zero) one entry shorter, and the freed tail is zero; otherwise the area is unchanged.
 * Input: the secret area (up to 4096 bytes), copied into its own allocation for ASan.
 * Seeds: test/corpus-receipt (key first, middle, last, only; 47 bytes; two keys). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "sevshim/receipt.h"
#include "sevshim/secret.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > 4096)
        return 0;
    uint8_t *a = malloc(size ? size : 1), *orig = malloc(size ? size : 1);
    memcpy(a, data, size);
    memcpy(orig, data, size);
    uint8_t key[SEVSHIM_RECEIPT_KEY_SIZE];
    int found = 0;
    uint32_t before = 0, after = 0;
    enum sevshim_error e0 = sevshim_secret_table_check(orig, size, &before);
    enum sevshim_error e = sevshim_receipt_key_take(a, size, key, &found);
    if (e != SEVSHIM_OK && e != SEVSHIM_E65)
        abort();
    if (!found && memcmp(a, orig, size) != 0)
        abort();                        /* nothing taken: nothing changed */
    if (found) {
        if (e0 != SEVSHIM_OK || before < 20 + 68)
            abort();
        enum sevshim_error e1 = sevshim_secret_table_check(a, size, &after);
        if (e1 != SEVSHIM_OK)
            abort();
        if (after != 0 && after != before - 68)
            abort();
        for (uint32_t i = (after ? after : 0); i < before; i++)
            if (a[i] != 0)
                abort();                /* freed bytes zeroed */
        if (memcmp(a + before, orig + before, size - before) != 0)
            abort();                    /* nothing past the old table touched */
    }
    free(a);
    free(orig);
    return 0;
}
