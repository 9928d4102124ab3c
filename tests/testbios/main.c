/* sevshim test BIOS: reports what the shim left in the SEV secret block this image declares.
 *
 *   TESTBIOS START
 *   TESTBIOS SECRET sha256=<64 hex> bytes=<table total length> tail=zero|dirty
 *     or TESTBIOS SECRET absent           (no EFI secret table GUID at SECRET_BASE)
 *     or TESTBIOS SECRET bad-length=<n>   (total outside 20..SECRET_SIZE)
 *   TESTBIOS HALT
 *
 * on COM1 (lines end \r\n) and debugcon 0x402 (\n), then halts with interrupts off. The digest
 * covers exactly the table's total length; tail= says whether the rest of the block is zero.
 * Printing a digest of a secret is fine here only because the secrets are test values. */
#include <stdint.h>
#include "sha256.h"

static inline void outb(uint16_t port, uint8_t v) { __asm__ volatile("outb %0, %1" :: "a"(v), "Nd"(port)); }
static inline uint8_t inb(uint16_t port) { uint8_t v; __asm__ volatile("inb %1, %0" : "=a"(v) : "Nd"(port)); return v; }

static void putc2(char c)
{
    for (unsigned i = 0; i < 100000 && !(inb(0x3F8 + 5) & 0x20); i++)
        ;
    outb(0x3F8, (uint8_t)c);
    if (c != '\r')
        outb(0x402, (uint8_t)c);
}

static void puts2(const char *s)
{
    while (*s) {
        if (*s == '\n')
            putc2('\r');
        putc2(*s++);
    }
}

static void putdec(uint32_t v)
{
    char b[11];
    int i = 10;
    b[i] = 0;
    do { b[--i] = (char)('0' + v % 10); v /= 10; } while (v);
    puts2(&b[i]);
}

static const uint8_t table_guid[16] = {0x42,0xf5,0x74,0x1e,0xdd,0x71,0x66,0x4d,0x96,0x3e,0xef,0x42,0x87,0xff,0x17,0x3b};

__attribute__((section(".text.entry"), noreturn)) void tb_main(void)
{
    static const char hex[] = "0123456789abcdef";
    const volatile uint8_t *blk = (const volatile uint8_t *)SECRET_BASE;

    outb(0x3F8 + 1, 0x00); outb(0x3F8 + 3, 0x80); outb(0x3F8 + 0, 0x01); outb(0x3F8 + 1, 0x00);
    outb(0x3F8 + 3, 0x03); outb(0x3F8 + 2, 0xC7); outb(0x3F8 + 4, 0x03);
    puts2("TESTBIOS START\n");

    int match = 1;
    for (int i = 0; i < 16; i++)
        if (blk[i] != table_guid[i])
            match = 0;
    if (!match) {
        puts2("TESTBIOS SECRET absent\n");
    } else {
        uint32_t total = blk[16] | ((uint32_t)blk[17] << 8) | ((uint32_t)blk[18] << 16) | ((uint32_t)blk[19] << 24);
        if (total < 20 || total > SECRET_SIZE) {
            puts2("TESTBIOS SECRET bad-length=");
            putdec(total);
            puts2("\n");
        } else {
            uint8_t d[32];
            char hx[65];
            sha256(blk, total, d);
            for (int i = 0; i < 32; i++) {
                hx[2 * i] = hex[d[i] >> 4];
                hx[2 * i + 1] = hex[d[i] & 15];
            }
            hx[64] = 0;
            uint8_t acc = 0;
            for (uint32_t i = total; i < SECRET_SIZE; i++)
                acc |= blk[i];
            puts2("TESTBIOS SECRET sha256=");
            puts2(hx);
            puts2(" bytes=");
            putdec(total);
            puts2(acc ? " tail=dirty\n" : " tail=zero\n");
        }
    }
    puts2("TESTBIOS HALT\n");
    for (;;)
        __asm__ volatile("cli; hlt");
}
