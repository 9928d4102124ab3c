/* The libc pieces the firmware and Debian's libbearssl.a need (no libc is linked). */
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include "sevshim/handoff.h"

void *memcpy(void *dst, const void *src, size_t n)
{
    void *d = dst;
    __asm__ volatile("rep movsb" : "+D"(d), "+S"(src), "+c"(n) :: "memory");
    return dst;
}

void *memmove(void *dst, const void *src, size_t n)
{
    uint8_t *d = dst;
    const uint8_t *s = src;
    if (d <= s || d >= s + n)
        return memcpy(dst, src, n);
    while (n--)                 /* overlapping, dst above src: copy backwards */
        d[n] = s[n];
    return dst;
}

void *memset(void *dst, int c, size_t n)
{
    void *d = dst;
    __asm__ volatile("rep stosb" : "+D"(d), "+c"(n) : "a"(c) : "memory");
    return dst;
}

int memcmp(const void *a, const void *b, size_t n)
{
    const uint8_t *x = a, *y = b;
    for (size_t i = 0; i < n; i++)
        if (x[i] != y[i])
            return x[i] < y[i] ? -1 : 1;
    return 0;
}

size_t strlen(const char *s)
{
    size_t n = 0;
    while (s[n])
        n++;
    return n;
}

/* _FORTIFY_SOURCE entry points used by the Debian objects: destlen (size_t)-1 means unknown */
static void chk(size_t n, size_t destlen)
{
    if (destlen != (size_t)-1 && n > destlen)
        shim_refuse(SEVSHIM_E91);
}

void *__memcpy_chk(void *dst, const void *src, size_t n, size_t destlen)
{
    chk(n, destlen);
    return memcpy(dst, src, n);
}

void *__memmove_chk(void *dst, const void *src, size_t n, size_t destlen)
{
    chk(n, destlen);
    return memmove(dst, src, n);
}

void *__memset_chk(void *dst, int c, size_t n, size_t destlen)
{
    chk(n, destlen);
    return memset(dst, c, n);
}

void __stack_chk_fail(void)
{
    shim_refuse(SEVSHIM_E91);
}
