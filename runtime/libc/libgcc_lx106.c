/* Integer helpers that the Debian libgcc for the lx106 lacks because the
 * ESP8266 ROM provides them (SPEC §5).  Linked only into Xtensa builds;
 * no division instruction exists on this core, so these are shift-subtract
 * loops started at the divisor's leading bit. */
#include <stdint.h>

#include "udivmod.h"

uint32_t __udivsi3(uint32_t n, uint32_t d);
uint32_t __umodsi3(uint32_t n, uint32_t d);
int32_t __divsi3(int32_t n, int32_t d);
int32_t __modsi3(int32_t n, int32_t d);
uint64_t __umulsidi3(uint32_t a, uint32_t b);
uint64_t __muldi3(uint64_t a, uint64_t b);

#define CLZ32(v) __builtin_clz(v)
#define SHL32(v, s) ((v) << (s))
FTER_DEFINE_UDIVMOD(udivmod, uint32_t, CLZ32, SHL32)

uint32_t __udivsi3(uint32_t n, uint32_t d) {
  uint32_t r;
  return udivmod(n, d, &r);
}

uint32_t __umodsi3(uint32_t n, uint32_t d) {
  uint32_t r;
  udivmod(n, d, &r);
  return r;
}

/* C99 semantics: the quotient truncates toward zero, the remainder takes
 * the sign of the dividend.  Magnitudes are taken in unsigned arithmetic so
 * INT32_MIN does not overflow. */
int32_t __divsi3(int32_t n, int32_t d) {
  uint32_t r;
  uint32_t un = n < 0 ? 0u - (uint32_t)n : (uint32_t)n;
  uint32_t ud = d < 0 ? 0u - (uint32_t)d : (uint32_t)d;
  uint32_t q = udivmod(un, ud, &r);
  return (int32_t)((n < 0) != (d < 0) ? 0u - q : q);
}

int32_t __modsi3(int32_t n, int32_t d) {
  uint32_t r;
  uint32_t un = n < 0 ? 0u - (uint32_t)n : (uint32_t)n;
  uint32_t ud = d < 0 ? 0u - (uint32_t)d : (uint32_t)d;
  udivmod(un, ud, &r);
  return (int32_t)(n < 0 ? 0u - r : r);
}

/* 32 x 32 -> 64-bit product from 16-bit halves: the core has MUL32 (low
 * word) but no MULUH, and libgcc's __muldi3 calls this. */
uint64_t __umulsidi3(uint32_t a, uint32_t b) {
  uint32_t a0 = a & 0xffffu, a1 = a >> 16, b0 = b & 0xffffu, b1 = b >> 16;
  uint32_t lo = a0 * b0, m0 = a1 * b0, m1 = a0 * b1, hi = a1 * b1;
  uint32_t mid = m0 + m1;
  if (mid < m0) hi += 0x10000u; /* carry out of the middle sum */
  hi += mid >> 16;
  uint32_t lo2 = lo + (mid << 16);
  if (lo2 < lo) hi += 1u;
  return ((uint64_t)hi << 32) | lo2;
}

/* Low 64 bits of a 64 x 64 product (the high cross terms fall off). */
uint64_t __muldi3(uint64_t a, uint64_t b) {
  uint32_t alo = (uint32_t)a, ahi = (uint32_t)(a >> 32);
  uint32_t blo = (uint32_t)b, bhi = (uint32_t)(b >> 32);
  uint64_t lo = __umulsidi3(alo, blo);
  return lo + ((uint64_t)(alo * bhi + ahi * blo) << 32);
}
