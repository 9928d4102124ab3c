/* Console output: COM1 (16550 at 0x3F8, 115200 8N1) and QEMU debugcon (port 0x402). */
#include "sevshim/console.h"
#include "sevshim/io.h"

#define COM1     0x3F8
#define DEBUGCON 0x402

void console_init(void)
{
    outb(COM1 + 1, 0x00);  /* no interrupts */
    outb(COM1 + 3, 0x80);  /* DLAB */
    outb(COM1 + 0, 0x01);  /* divisor 1: 115200 */
    outb(COM1 + 1, 0x00);
    outb(COM1 + 3, 0x03);  /* 8N1 */
    outb(COM1 + 2, 0xC7);  /* FIFO on, cleared */
    outb(COM1 + 4, 0x03);  /* DTR, RTS */
}

static void com1_putc(char c)
{
    /* bounded wait for the transmit holding register; a missing UART reads 0xFF and passes */
    for (unsigned i = 0; i < 100000 && !(inb(COM1 + 5) & 0x20); i++)
        ;
    outb(COM1, (uint8_t)c);
}

static void putc2(char c)
{
    com1_putc(c);
    outb(DEBUGCON, (uint8_t)c);
}

static void con_str(const char *s)
{
    while (*s)
        putc2(*s++);
}

static void con_dec(uint64_t v)
{
    char buf[21];
    int i = 20;
    buf[i] = 0;
    do {
        buf[--i] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    con_str(&buf[i]);
}

static const char hexdig[] = "0123456789abcdef";

static void con_hex(const uint8_t *b, unsigned n)
{
    for (unsigned i = 0; i < n; i++) {
        putc2(hexdig[b[i] >> 4]);
        putc2(hexdig[b[i] & 15]);
    }
}

static void con_end(void)
{
    com1_putc('\r');
    com1_putc('\n');
    outb(DEBUGCON, '\n');
}

void con_fmtv(const char *f, const uint64_t *a)
{
    for (; *f; f++) {
        if (*f != '%') {
            putc2(*f);
            continue;
        }
        switch (*++f) {
        case 'd': con_dec(*a++); break;
        case 's': con_str((const char *)(uintptr_t)*a++); break;
        case 'h': con_hex((const uint8_t *)(uintptr_t)a[0], (unsigned)a[1]); a += 2; break;
        case 'x':
            putc2('0'); putc2('x');
            for (int s = 60; s >= 0; s -= 4)
                putc2(hexdig[(*a >> s) & 15]);
            a++;
            break;
        }
    }
    con_end();
}
