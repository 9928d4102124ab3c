/* OVMF-style footer table walk (docs/formats.md section 4). The whole table is walked even
 * after a match, so a malformed tail or a duplicate GUID is refused, never half-trusted. */
#include <string.h>
#include "sevshim/bytes.h"
#include "sevshim/footer.h"
#include "sevshim/formats.h"

#define RESET_AREA   0x20u
#define ENTRY_HDR    18u     /* u16 length + GUID */

static const uint8_t footer_guid[16] = SEVSHIM_GUID_FOOTER_TABLE;

enum sevshim_error sevshim_footer_find(const uint8_t *img, size_t len, const uint8_t guid[16],
                                       const uint8_t **data, size_t *data_len)
{
    *data = NULL;
    *data_len = 0;
    if (img == NULL || len < SEVSHIM_FOOTER_LEN_OFF_FROM_END)
        return SEVSHIM_OK;
    if (memcmp(img + len - SEVSHIM_FOOTER_GUID_OFF_FROM_END, footer_guid, 16) != 0)
        return SEVSHIM_OK;
    const uint8_t *lp = img + len - SEVSHIM_FOOTER_LEN_OFF_FROM_END;
    size_t total = le16(lp);
    if (total < ENTRY_HDR || total > len - RESET_AREA)
        return SEVSHIM_E61;
    size_t start = len - RESET_AREA - total;          /* first byte of the table */
    size_t p = len - SEVSHIM_FOOTER_LEN_OFF_FROM_END; /* exclusive end of the entry area */
    const uint8_t *d = NULL;
    size_t dl = 0;
    while (p > start) {
        if (p - start < ENTRY_HDR)
            return SEVSHIM_E61;                        /* stray bytes before an entry */
        const uint8_t *eg = img + p - 16;
        size_t el = le16(img + p - ENTRY_HDR);
        if (el < ENTRY_HDR || el > p - start)
            return SEVSHIM_E61;
        if (memcmp(eg, guid, 16) == 0) {
            if (d != NULL)
                return SEVSHIM_E61;                    /* ambiguous: refuse */
            d = img + p - el;
            dl = el - ENTRY_HDR;
        }
        p -= el;
    }
    *data = d;                                         /* outputs only on success */
    *data_len = dl;
    return SEVSHIM_OK;
}
