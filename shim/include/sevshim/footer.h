/* OVMF-style GUIDed footer table (docs/formats.md section 4) of the accepted BIOS's RAM copy.
 * Pure parsing (firmware and host tests); signed, but still walked with strict bounds. */
#ifndef SEVSHIM_FOOTER_H
#define SEVSHIM_FOOTER_H
#include <stddef.h>
#include <stdint.h>
#include "sevshim/errors.h"

/* Finds the entry with `guid` in the footer table at the end of img. No footer GUID at
 * end-0x30: OK, *data = NULL, *data_len = 0. A well-formed table: OK, the entry's data or
 * NULL/0. A malformed table (length < 18 or past the image, an entry length < 18 or past the
 * table start, bytes left over) or the GUID twice: SEVSHIM_E61. */
enum sevshim_error sevshim_footer_find(const uint8_t *img, size_t len, const uint8_t guid[16],
                                       const uint8_t **data, size_t *data_len);
#endif
