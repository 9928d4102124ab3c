/* Secret hand-off decision: the BIOS's SEV secret block (footer entry 4c2eb361-...) and the EFI
 * secret table in the shim's area, read in place through a volatile pointer (never copied). */
#include <string.h>
#include "sevshim/bytes.h"
#include "sevshim/footer.h"
#include "sevshim/formats.h"
#include "sevshim/secret.h"

static const uint8_t secret_block_guid[16] = SEVSHIM_GUID_SEV_SECRET;
static const uint8_t secret_table_guid[16] = SEVSHIM_GUID_EFI_SECRET_TABLE;

enum sevshim_error sevshim_secret_table_check(const volatile uint8_t *area, size_t area_len,
                                              uint32_t *total)
{
    *total = 0;
    if (area_len < 16)
        return SEVSHIM_OK;
    for (unsigned i = 0; i < 16; i++)
        if (area[i] != secret_table_guid[i])
            return SEVSHIM_OK;                 /* no table: not an error */
    if (area_len < SEVSHIM_EFI_SECRET_HEADER_SIZE)
        return SEVSHIM_E64;
    uint32_t t = vle32(area + 16);
    if (t < SEVSHIM_EFI_SECRET_HEADER_SIZE || t > area_len)
        return SEVSHIM_E64;
    uint32_t off = SEVSHIM_EFI_SECRET_HEADER_SIZE;
    while (off < t) {
        if (t - off < SEVSHIM_EFI_SECRET_ENTRY_HDR_SIZE)
            return SEVSHIM_E64;
        uint32_t el = vle32(area + off + 16);
        if (el < SEVSHIM_EFI_SECRET_ENTRY_HDR_SIZE || el > t - off)
            return SEVSHIM_E64;
        off += el;
    }
    *total = t;
    return SEVSHIM_OK;
}

enum sevshim_error sevshim_secret_plan(const uint8_t *bios, size_t bios_len, uint8_t secret_mode,
                                       const volatile uint8_t *area, size_t area_len,
                                       uint64_t ram_top, const struct sevshim_range *avoid,
                                       unsigned navoid, struct sevshim_secret_plan *out)
{
    const uint8_t *d;
    size_t dl;
    enum sevshim_error e;

    memset(out, 0, sizeof(*out));
    /* 1. the BIOS's secret block, if it declares one */
    e = sevshim_footer_find(bios, bios_len, secret_block_guid, &d, &dl);
    if (e != SEVSHIM_OK)
        return e;
    uint32_t base = 0, size = 0;
    if (d != NULL) {
        if (dl != SEVSHIM_SECRET_ENTRY_DATA_SIZE)
            return SEVSHIM_E61;
        base = le32(d);
        size = le32(d + 4);
        if (size == 0 && base != 0)
            return SEVSHIM_E61;
    }
    if (size == 0) {
        /* 2a. no block: the policy decides */
        if (secret_mode != SEVSHIM_SECRET_OPTIONAL)
            return SEVSHIM_E60;
    } else {
        /* 2b. a block: wholly in low RAM, clear of everything the shim uses */
        uint64_t b = base, n = size;
        if (b + n > ram_top)
            return SEVSHIM_E62;
        for (unsigned i = 0; i < navoid; i++)
            if (b < avoid[i].base + avoid[i].size && avoid[i].base < b + n)   /* overlap */
                return SEVSHIM_E62;
    }
    out->block_base = base;
    out->block_size = size;

    /* 3. the shim's own secret */
    uint32_t t;
    e = sevshim_secret_table_check(area, area_len, &t);
    if (e != SEVSHIM_OK)
        return e;
    out->table_len = t;
    if (t == 0)
        out->action = SEVSHIM_SECRET_NONE;
    else if (size == 0)
        out->action = SEVSHIM_SECRET_WIPE;
    else if (t > size)
        return SEVSHIM_E63;
    else
        out->action = SEVSHIM_SECRET_COPY;
    return SEVSHIM_OK;
}
