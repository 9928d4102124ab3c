/* CFI programming of QEMU's pflash_cfi01 (Intel command set, x8, 4 KiB blocks, 256-byte write
 * buffer). Runs from RAM: after a command, reads return status until 0xFF (read array). */
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

enum sevshim_error pflash_program(uintptr_t base, const uint8_t *src, uint32_t size, uint32_t *blocks)
{
    *blocks = 0;
    if (size % PFLASH_BLOCK_SIZE)
        return SEVSHIM_E91;
    for (uint32_t off = 0; off < size; off += PFLASH_BLOCK_SIZE) {
        uintptr_t b = base + off;
        /* A block that already holds the target bytes is left alone; an erased one (all 0xFF,
         * as most of the shim's image) needs no erase. Only an optimisation: pflash_verify
         * compares every byte afterwards. */
        int same = 1, erased = 1;
        for (uint32_t i = 0; i < PFLASH_BLOCK_SIZE; i++) {
            uint8_t v = mmio_read8(b + i);
            same &= v == src[off + i];
            erased &= v == 0xFF;
        }
        if (same)
            continue;
        if (!erased) {
            mmio_write8(b, CMD_BLOCK_ERASE);
            mmio_write8(b, CMD_CONFIRM);
            mmio_write8(b, CMD_READ_STATUS);
            if (!ready_ok(b, ST_ERASE_ERR | ST_VPP_ERR | ST_LOCKED))
                return SEVSHIM_E52;
        }
        for (uint32_t c = 0; c < PFLASH_BLOCK_SIZE; c += PFLASH_BUFFER_SIZE) {
            const uint8_t *d = src + off + c;
            uintptr_t a = b + c;
            uint8_t ones = 0xFF;
            for (unsigned i = 0; i < PFLASH_BUFFER_SIZE; i++)
                ones &= d[i];
            if (ones == 0xFF)
                continue;                       /* all 0xFF: the erased block holds it */
            mmio_write8(a, CMD_BUFFERED);
            if (!ready_ok(a, 0))                /* bit 7: buffer available */
                return SEVSHIM_E53;
            mmio_write8(a, PFLASH_BUFFER_SIZE - 1);
            for (unsigned i = 0; i < PFLASH_BUFFER_SIZE; i++)
                mmio_write8(a + i, d[i]);
            mmio_write8(a, CMD_CONFIRM);
            mmio_write8(a, CMD_READ_STATUS);
            if (!ready_ok(a, ST_PROGRAM_ERR | ST_VPP_ERR | ST_LOCKED))
                return SEVSHIM_E53;
        }
        mmio_write8(b, CMD_READ_ARRAY);
        (*blocks)++;
    }
    return SEVSHIM_OK;
}

enum sevshim_error pflash_verify(uintptr_t base, const uint8_t *src, uint32_t size)
{
    uint8_t diff = 0;
    mmio_write8(base, CMD_READ_ARRAY);
    for (uint32_t i = 0; i < size; i++)
        diff |= (uint8_t)(mmio_read8(base + i) ^ src[i]);
    return diff ? SEVSHIM_E54 : SEVSHIM_OK;
}

enum sevshim_error pflash_check_digest(uintptr_t base, uint32_t size, const uint8_t want[48])
{
    uint8_t got[48], diff = 0;
    mmio_write8(base, CMD_READ_ARRAY);
    barrier();
    /* array mode: the device reads like ROM, so the hash reads it as plain memory */
    sevshim_sha384((const void *)base, size, got);
    for (unsigned i = 0; i < sizeof(got); i++)
        diff |= (uint8_t)(got[i] ^ want[i]);
    return diff ? SEVSHIM_E55 : SEVSHIM_OK;
}
