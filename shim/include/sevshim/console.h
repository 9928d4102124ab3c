/* Console: every line goes to COM1 (0x3F8, 115200 8N1) and to debugcon (port 0x402).
 * Lines end in "\r\n" on COM1 and "\n" on debugcon. */
#ifndef SEVSHIM_CONSOLE_H
#define SEVSHIM_CONSOLE_H
#include <stdint.h>
void console_init(void);
void con_str(const char *s);              /* no newline */
void con_dec(uint64_t v);
void con_hex(const uint8_t *b, unsigned n); /* n bytes as lowercase hex */
void con_hex64(uint64_t v);               /* 0x + 16 digits */
void con_end(void);                        /* end the line */
void con_line(const char *s);              /* con_str + con_end */
void con_line2(const char *a, uint64_t x, const char *b, uint64_t y); /* "<a>x<b>y" */
#endif
