/* Byte-order loads and stores for every encoded field: little-endian for the formats of
 * docs/formats.md, big-endian for fw_cfg and TPM 2.0. vle32 reads the EFI secret table in
 * place through a volatile pointer (secret.c, receipt.c). */
#ifndef SEVSHIM_BYTES_H
#define SEVSHIM_BYTES_H
#include <stdint.h>

static inline uint16_t le16(const uint8_t *p) { return (uint16_t)(p[0] | (p[1] << 8)); }
static inline uint32_t le32(const uint8_t *p)
{
    return (uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16) | ((uint32_t)p[3] << 24);
}
static inline uint32_t vle32(const volatile uint8_t *p)
{
    return (uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16) | ((uint32_t)p[3] << 24);
}
static inline uint64_t le64(const uint8_t *p) { return le32(p) | ((uint64_t)le32(p + 4) << 32); }
static inline uint16_t be16(const uint8_t *p) { return (uint16_t)((p[0] << 8) | p[1]); }
static inline uint32_t be32(const uint8_t *p)
{
    return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) | p[3];
}
/* n-byte stores */
static inline void put_le(volatile uint8_t *p, uint64_t v, unsigned n)
{
    for (unsigned i = 0; i < n; i++, v >>= 8)
        p[i] = (uint8_t)v;
}
static inline void put_be(uint8_t *p, uint64_t v, unsigned n)
{
    while (n--) {
        p[n] = (uint8_t)v;
        v >>= 8;
    }
}
#endif
