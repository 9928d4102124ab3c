/* OVMF-style GUIDed footer table (docs/formats.md section 4) of the accepted BIOS's RAM copy.
 * Pure parsing (firmware and host tests); signed, but still walked with strict bounds. */
#ifndef SEVSHIM_FOOTER_H
#define SEVSHIM_FOOTER_H
#include <stddef.h>
#include <stdint.h>
#include "sevshim/errors.h"

/* Finds `guid` in the footer table at the end of img: OK and its data (NULL/0 if absent or no
 * footer GUID at end-0x30); E061 if a table or entry length is < 18 or out of bounds, bytes
 * are left over, or the GUID is there twice. */
enum sevshim_error sevshim_footer_find(const uint8_t *img, size_t len, const uint8_t guid[16],
                                       const uint8_t **data, size_t *data_len);
#endif
