/* CFI programming of QEMU's pflash_cfi01 (Intel command set, x8, 4 KiB blocks, 256-byte write
 * buffer). Runs from RAM: after a command, reads return status until 0xFF (read array); in
 * read-array mode the device reads like ROM, so every compare uses 64-bit loads. */
#include <string.h>
#include "sevshim/bytes.h"
#include "sevshim/pflash.h"
#include "sevshim/io.h"
#include "sevshim/verify.h"

#define CMD_READ_ARRAY   0xFF
#define CMD_READ_STATUS  0x70
#define CMD_CLEAR_STATUS 0x50
#define CMD_CFI_QUERY    0x98
#define CMD_BLOCK_ERASE  0x20
#define CMD_CONFIRM      0xD0
#define CMD_BUFFERED     0xE8
#define ST_READY         0x80
#define ST_ERASE_ERR     0x20
#define ST_PROGRAM_ERR   0x10
#define ST_VPP_ERR       0x08
#define ST_LOCKED        0x02
#define POLL_MAX         1000000u

/* Polls the status (already in a status mode) until ready: 1 if none of the err bits is set,
 * else 0 after clearing the status and returning to read-array mode. */
static int ready_ok(uintptr_t a, uint8_t err)
{
    for (uint32_t i = 0; i < POLL_MAX; i++) {
        uint8_t s = mmio_read8(a);
        if (s & ST_READY) {
            if (!(s & err))
                return 1;
            break;
        }
    }
    mmio_write8(a, CMD_CLEAR_STATUS);
    mmio_write8(a, CMD_READ_ARRAY);
    return 0;
}

/* The OR of (word at a ^ word of src) over n bytes (a multiple of 8, a 8-aligned), and in *ones
 * the AND of the words at a (~0: all 0xFF). a is the device in read-array mode, or RAM. */
static uint64_t diff64(uintptr_t a, const uint8_t *src, uint32_t n, uint64_t *ones)
{
    uint64_t diff = 0, and = ~0ull;
    for (uint32_t i = 0; i < n; i += 8) {
        uint64_t v = *(const volatile uint64_t *)(a + i), s;
        memcpy(&s, src + i, sizeof(s));
        diff |= v ^ s;
        and &= v;
    }
    *ones = and;
    return diff;
}

enum sevshim_error pflash_probe(uintptr_t base, uint32_t size)
{
    mmio_write8(base, CMD_CFI_QUERY);
    int qry = mmio_read8(base + 0x10) == 'Q' && mmio_read8(base + 0x11) == 'R' &&
              mmio_read8(base + 0x12) == 'Y';
    uint8_t nregions = mmio_read8(base + 0x2C);
    uint32_t nblocks = (uint32_t)(mmio_read8(base + 0x2D) | (mmio_read8(base + 0x2E) << 8)) + 1;
    uint32_t bsize = (uint32_t)(mmio_read8(base + 0x2F) | (mmio_read8(base + 0x30) << 8)) * 256;
    mmio_write8(base, CMD_READ_ARRAY);
    if (!qry)
        return SEVSHIM_E50;
    /* 0x27 (log2 size) is wrong in QEMU for non-power-of-two sizes: use the erase region */
    if (nregions != 1 || bsize != PFLASH_BLOCK_SIZE || (uint64_t)nblocks * bsize != size)
        return SEVSHIM_E51;
    return SEVSHIM_OK;
}

/* One buffered write of PFLASH_BUFFER_SIZE bytes at a: the count is of 32-bit data cycles if
 * wide, else of byte cycles (what any x8 device takes). 1 if the status shows no error. */
static int write_buffer(uintptr_t a, const uint8_t *d, int wide)
{
    mmio_write8(a, CMD_BUFFERED);
    if (!ready_ok(a, 0))                /* bit 7: buffer available */
        return 0;
    unsigned step = wide ? 4 : 1;
    mmio_write8(a, (uint8_t)(PFLASH_BUFFER_SIZE / step - 1));
    for (unsigned i = 0; i < PFLASH_BUFFER_SIZE; i += step)
        wide ? mmio_write32(a + i, le32(d + i)) : mmio_write8(a + i, d[i]);
    mmio_write8(a, CMD_CONFIRM);
    mmio_write8(a, CMD_READ_STATUS);
    return ready_ok(a, ST_PROGRAM_ERR | ST_VPP_ERR | ST_LOCKED);
}

/* From read-array mode: erases the block at b unless erased, writes its buffers that are not
 * all 0xFF, back to read array. While *wide is -1 the first buffer is the probe: 32-bit cycles,
 * read back; if the device did not take them, *wide = 0 and the block is redone with bytes. */
static enum sevshim_error program_block(uintptr_t b, const uint8_t *s, int *wide)
{
    uint64_t ones;
    diff64(b, s, PFLASH_BLOCK_SIZE, &ones);
    if (ones != ~0ull) {
        mmio_write8(b, CMD_BLOCK_ERASE);
        mmio_write8(b, CMD_CONFIRM);
        mmio_write8(b, CMD_READ_STATUS);
        if (!ready_ok(b, ST_ERASE_ERR | ST_VPP_ERR | ST_LOCKED))
            return SEVSHIM_E52;
    }
    for (uint32_t c = 0; c < PFLASH_BLOCK_SIZE; c += PFLASH_BUFFER_SIZE) {
        diff64((uintptr_t)(s + c), s + c, PFLASH_BUFFER_SIZE, &ones);
        if (ones == ~0ull)
            continue;                   /* all 0xFF: the erased block holds it */
        int ok = write_buffer(b + c, s + c, *wide != 0);
        if (*wide < 0) {
            mmio_write8(b, CMD_READ_ARRAY);
            *wide = ok && diff64(b + c, s + c, PFLASH_BUFFER_SIZE, &ones) == 0;
            if (!*wide)                 /* once; erases only if the probe wrote (read-only: E053) */
                return program_block(b, s, wide);
        } else if (!ok) {
            return SEVSHIM_E53;
        }
    }
    mmio_write8(b, CMD_READ_ARRAY);
    return SEVSHIM_OK;
}

enum sevshim_error pflash_write(uintptr_t base, const uint8_t *src, uint32_t size,
                                const uint8_t want[48], uint32_t *blocks)
{
    int wide = -1;                      /* probed per device, on its first buffer written */
    uint64_t ones;
    *blocks = 0;
    if (size % PFLASH_BLOCK_SIZE)
        return SEVSHIM_E91;
    for (uint32_t off = 0; off < size; off += PFLASH_BLOCK_SIZE) {
        /* A block that already holds the target bytes is left alone, an erased one (all 0xFF,
         * as most of the shim's image) is not erased again: the read-back checks every byte. */
        if (diff64(base + off, src + off, PFLASH_BLOCK_SIZE, &ones) == 0)
            continue;
        enum sevshim_error e = program_block(base + off, src + off, &wide);
        if (e != SEVSHIM_OK)
            return e;
        (*blocks)++;
    }
    /* read back in array mode: the device holds src exactly */
    mmio_write8(base, CMD_READ_ARRAY);
    if (diff64(base, src, size, &ones) != 0)
        return SEVSHIM_E54;
    /* and its SHA-384 (the device read as plain memory) is want, whatever src holds now */
    uint8_t got[SEVSHIM_SHA384_SIZE];
    barrier();
    sevshim_sha384((const void *)base, size, got);
    return memcmp(got, want, sizeof(got)) ? SEVSHIM_E55 : SEVSHIM_OK;
}
