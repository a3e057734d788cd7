/* memcpy/memmove/memset/memcmp/strlen for the freestanding Xtensa build.
 * Word-sized copies when both pointers share 4-byte alignment: the lx106
 * traps on misaligned 32-bit loads, and byte loops would dominate the cost
 * of copying activations. */
#include <stdint.h>
#include <string.h>

void *memcpy(void *dst, const void *src, size_t n) {
  unsigned char *d = (unsigned char *)dst;
  const unsigned char *s = (const unsigned char *)src;
  if ((((uintptr_t)d ^ (uintptr_t)s) & 3u) == 0) {
    while (n > 0 && ((uintptr_t)d & 3u) != 0) {
      *d++ = *s++;
      --n;
    }
    uint32_t *dw = (uint32_t *)(void *)d;
    const uint32_t *sw = (const uint32_t *)(const void *)s;
    for (; n >= 16; n -= 16, dw += 4, sw += 4) {
      dw[0] = sw[0];
      dw[1] = sw[1];
      dw[2] = sw[2];
      dw[3] = sw[3];
    }
    for (; n >= 4; n -= 4) *dw++ = *sw++;
    d = (unsigned char *)dw;
    s = (const unsigned char *)sw;
  }
  while (n-- > 0) *d++ = *s++;
  return dst;
}

void *memmove(void *dst, const void *src, size_t n) {
  unsigned char *d = (unsigned char *)dst;
  const unsigned char *s = (const unsigned char *)src;
  if (d <= s || d >= s + n) return memcpy(dst, src, n);
  while (n-- > 0) d[n] = s[n]; /* overlap with dst above src: copy backwards */
  return dst;
}

void *memset(void *dst, int c, size_t n) {
  unsigned char *d = (unsigned char *)dst;
  uint32_t w = (uint32_t)(unsigned char)c * 0x01010101u;
  while (n > 0 && ((uintptr_t)d & 3u) != 0) {
    *d++ = (unsigned char)c;
    --n;
  }
  uint32_t *dw = (uint32_t *)(void *)d;
  for (; n >= 16; n -= 16, dw += 4) {
    dw[0] = w;
    dw[1] = w;
    dw[2] = w;
    dw[3] = w;
  }
  for (; n >= 4; n -= 4) *dw++ = w;
  d = (unsigned char *)dw;
  while (n-- > 0) *d++ = (unsigned char)c;
  return dst;
}

int memcmp(const void *a, const void *b, size_t n) {
  const unsigned char *x = (const unsigned char *)a, *y = (const unsigned char *)b;
  for (size_t i = 0; i < n; ++i)
    if (x[i] != y[i]) return x[i] < y[i] ? -1 : 1;
  return 0;
}

size_t strlen(const char *s) {
  size_t n = 0;
  while (s[n] != '\0') ++n;
  return n;
}
