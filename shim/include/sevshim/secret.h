/* Secret hand-off decision (docs/formats.md section 4a). Pure: the firmware passes its RAM copy
 * of the accepted BIOS, its secret area and the low-RAM top; the tests and the fuzzer pass
 * crafted bytes. The caller does the copy and the wipe. */
#ifndef SEVSHIM_SECRET_H
#define SEVSHIM_SECRET_H
#include <stddef.h>
#include <stdint.h>
#include "sevshim/errors.h"

enum sevshim_secret_action {
    SEVSHIM_SECRET_NONE = 1,    /* the shim's area holds no secret table: nothing to pass on */
    SEVSHIM_SECRET_COPY,        /* copy table_len bytes to block_base, zero the rest of the block */
    SEVSHIM_SECRET_WIPE,        /* a table, but the BIOS has no block and the policy allows that */
};

struct sevshim_secret_plan {
    enum sevshim_secret_action action;
    uint32_t block_base, block_size; /* the BIOS's block (0/0 when it declares none) */
    uint32_t table_len;              /* COPY/WIPE: the table's total length */
};

/* Zeroes n bytes through a volatile pointer: the compiler may not drop it as a dead store. */
static inline void sevshim_wipe(volatile void *p, size_t n)
{
    volatile uint8_t *v = p;
    while (n--)
        *v++ = 0;
}

/* A RAM range the BIOS's secret block must not touch. */
struct sevshim_range {
    uint64_t base, size;
};

/* Checks the EFI secret table in area, in place: OK and *total if well formed (header GUID,
 * 20 <= total <= area_len, entries of length >= 20 tiling [20, total)); OK and *total = 0
 * without the header GUID; else SEVSHIM_E64. */
enum sevshim_error sevshim_secret_table_check(const volatile uint8_t *area, size_t area_len,
                                              uint32_t *total);

/* Decides the hand-off. secret_mode: the policy's (0 optional, 1 require); the block must end
 * by ram_top and overlap none of the navoid ranges in avoid. Refusals: E061 (footer), E060
 * (require, no block), E062 (placement), E063 (table larger than the block), E064 (table). */
enum sevshim_error sevshim_secret_plan(const uint8_t *bios, size_t bios_len, uint8_t secret_mode,
                                       const volatile uint8_t *area, size_t area_len,
                                       uint64_t ram_top, const struct sevshim_range *avoid,
                                       unsigned navoid, struct sevshim_secret_plan *out);
#endif
