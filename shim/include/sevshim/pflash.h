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
 * erased again; *blocks = blocks changed. E052 (erase) / E053 (program). */
enum sevshim_error pflash_program(uintptr_t base, const uint8_t *src, uint32_t size, uint32_t *blocks);
/* Read back in array mode and compare. E054. */
enum sevshim_error pflash_verify(uintptr_t base, const uint8_t *src, uint32_t size);
/* SHA-384 of what the device holds now (array mode), compared with want: E055 if it differs.
 * Independent of the RAM buffer the flash was programmed from. */
enum sevshim_error pflash_check_digest(uintptr_t base, uint32_t size, const uint8_t want[48]);
#endif
