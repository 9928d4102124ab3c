/* SHA-256 (FIPS 180-4), one-shot, for the test BIOS only. */
#ifndef TESTBIOS_SHA256_H
#define TESTBIOS_SHA256_H
#include <stddef.h>
#include <stdint.h>
void sha256(const volatile uint8_t *p, uint32_t n, uint8_t out[32]);
#endif
