/* Freestanding <string.h> for the firmware build only: BearSSL's headers include it.
 * The implementations are in src/mem.c. */
#ifndef SEVSHIM_FREESTANDING_STRING_H
#define SEVSHIM_FREESTANDING_STRING_H
#include <stddef.h>
void *memcpy(void *dst, const void *src, size_t n);
void *memmove(void *dst, const void *src, size_t n);
void *memset(void *dst, int c, size_t n);
int memcmp(const void *a, const void *b, size_t n);
size_t strlen(const char *s);
#endif
