/* Host build seam for test/test_console.c: this io.h shadows include/sevshim/io.h (the test is
 * compiled with -Itest/include first), so src/console.c runs unchanged on the host and its port
 * writes land in two buffers, one for COM1 (0x3F8) and one for debugcon (0x402). */
#ifndef SEVSHIM_IO_H
#define SEVSHIM_IO_H
#include <stdint.h>
#include <stddef.h>

struct port_log { char buf[4096]; size_t len; };
extern struct port_log test_com1, test_debugcon;

static inline void outb(uint16_t port, uint8_t v)
{
    struct port_log *l = port == 0x3F8 ? &test_com1 : port == 0x402 ? &test_debugcon : NULL;
    if (l != NULL && l->len < sizeof(l->buf))
        l->buf[l->len++] = (char)v;
}
/* the line status register says "transmit holding register empty" */
static inline uint8_t inb(uint16_t port) { return port == 0x3F8 + 5 ? 0x20 : 0; }
#endif
