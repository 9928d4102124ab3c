/* CFI (Intel command set) programming of QEMU's pflash_cfi01, run from RAM. */
#ifndef SEVSHIM_PFLASH_H
#define SEVSHIM_PFLASH_H
#include <stdint.h>
#include "sevshim/errors.h"
#define PFLASH_BLOCK_SIZE  0x1000u
#define PFLASH_BUFFER_SIZE 0x100u
/* CFI query at base: "QRY" (E050) and one erase region of size/4096 blocks of 4 KiB (E051). */
enum sevshim_error pflash_probe(uintptr_t base, uint32_t size);
/* Write src into the device: blocks that already hold it are skipped, erased ones are not
 * erased again, buffers use 32-bit data cycles if a probe buffer shows the device takes them,
 * else byte cycles; *blocks = blocks changed. E052 (erase) / E053 (program). Then a read-back
 * compare with src (E054) and the SHA-384 of what the device holds compared with want (E055),
 * independent of the RAM buffer the flash was programmed from. */
enum sevshim_error pflash_write(uintptr_t base, const uint8_t *src, uint32_t size,
                                const uint8_t want[48], uint32_t *blocks);
#endif
