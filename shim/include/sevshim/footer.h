/* OVMF-style GUIDed footer table of a flash image (docs/formats.md section 4), read from the
 * accepted BIOS's RAM copy. Pure parsing: compiled into the firmware and the host tests. The
 * image is signed, but its table is still walked with strict bounds. */
#ifndef SEVSHIM_FOOTER_H
#define SEVSHIM_FOOTER_H
#include <stddef.h>
#include <stdint.h>
#include "sevshim/errors.h"

/* Finds the entry with `guid` in the footer table at the end of img (len bytes).
 * - no footer GUID at end-0x30: *data = NULL, *data_len = 0, SEVSHIM_OK (no table, no entry);
 * - table present and well formed: *data and *data_len = the entry's data, or NULL/0 if absent;
 * - table malformed (length below 18 or past the image, an entry length below 18 or past the
 *   table start, bytes left over) or the GUID present more than once: SEVSHIM_E61. */
enum sevshim_error sevshim_footer_find(const uint8_t *img, size_t len, const uint8_t guid[16],
                                       const uint8_t **data, size_t *data_len);
#endif
