/* Console: every line goes to COM1 (0x3F8, 115200 8N1, ends "\r\n") and debugcon (port 0x402,
 * ends "\n"). con_fmt(format, uint64_t args...) prints one whole line: %d decimal, %x 0x + 16
 * hex digits, %s a string, %h hex of bytes (two args: pointer, count). */
#ifndef SEVSHIM_CONSOLE_H
#define SEVSHIM_CONSOLE_H
#include <stdint.h>
void console_init(void);
void con_fmtv(const char *f, const uint64_t *a);
#define con_fmt(f, ...) con_fmtv(f, (const uint64_t[]){ __VA_ARGS__ })
#define con_line(s) con_fmtv(s, (const uint64_t *)0)   /* a line without % */

/* Every line the shim prints, in boot order (docs/shim.md "Console"). The Go definition is
 * pkg/format/console; both are tested against testdata/golden/console/lines.txt. */
#define SEVSHIM_CON_READY "SEVSHIM READY"
#define SEVSHIM_CON_WAKE "SEVSHIM WAKE"
#define SEVSHIM_CON_LOADED "SEVSHIM LOADED bios=%d vars=%d"
#define SEVSHIM_CON_VERIFIED "SEVSHIM VERIFIED version=%d signer=%h name=\"%s\""
#define SEVSHIM_CON_TPM_EXTENDED "SEVSHIM TPM extended pcr=%d banks=%d"
#define SEVSHIM_CON_TPM_ABSENT "SEVSHIM TPM absent"
#define SEVSHIM_CON_FLASHED "SEVSHIM FLASHED code=%d vars=%d"
#define SEVSHIM_CON_SECRET_HANDED_OFF "SEVSHIM SECRET handed-off bytes=%d base=%x"
#define SEVSHIM_CON_SECRET_WIPED "SEVSHIM SECRET wiped"
#define SEVSHIM_CON_SECRET_NONE "SEVSHIM SECRET none"
#define SEVSHIM_CON_RECEIPT_NONE "SEVSHIM RECEIPT none"
#define SEVSHIM_CON_RECEIPT "SEVSHIM RECEIPT %h"
#define SEVSHIM_CON_HANDOFF "SEVSHIM HANDOFF"
#define SEVSHIM_CON_ERROR "SEVSHIM ERROR E%s %s"
#define SEVSHIM_CON_EXCEPTION "SEVSHIM EXCEPTION vector=%d error=%x rip=%x"
#define SEVSHIM_CON_HALT "SEVSHIM HALT"
#endif
