/* 64-bit division helpers that Debian's libgcc for the Xtensa lx106 lacks (the ESP8266 ROM
 * provides them; ESP-IDF's libgcc has its own).  Both simulated cores link them: TVM's index
 * arithmetic divides int64 values in glue kernels whose extents are not powers of two.
 * Shift-subtract from the divisor's leading bit, with no variable 64-bit shift (those would call
 * further libgcc helpers). */
#include <stdint.h>

#include "udivmod.h"

uint64_t __udivdi3(uint64_t n, uint64_t d);
uint64_t __umoddi3(uint64_t n, uint64_t d);
int64_t __divdi3(int64_t n, int64_t d);
int64_t __moddi3(int64_t n, int64_t d);

static int clz64(uint64_t v) { /* v != 0 */
  const uint32_t hi = (uint32_t)(v >> 32);
  return hi != 0u ? __builtin_clz(hi) : 32 + __builtin_clz((uint32_t)v);
}

static uint64_t shl64(uint64_t v, int s) { /* one bit at a time: no __ashldi3 call */
  for (int i = 0; i < s; ++i) v <<= 1;
  return v;
}

FTER_DEFINE_UDIVMOD(udivmod64, uint64_t, clz64, shl64)

uint64_t __udivdi3(uint64_t n, uint64_t d) {
  uint64_t r;
  return udivmod64(n, d, &r);
}

uint64_t __umoddi3(uint64_t n, uint64_t d) {
  uint64_t r;
  udivmod64(n, d, &r);
  return r;
}

/* C99: the quotient truncates toward zero, the remainder takes the sign of the dividend;
 * magnitudes in unsigned arithmetic so INT64_MIN does not overflow. */
static uint64_t magnitude(int64_t v) { return v < 0 ? 0u - (uint64_t)v : (uint64_t)v; }

int64_t __divdi3(int64_t n, int64_t d) {
  uint64_t r;
  const uint64_t q = udivmod64(magnitude(n), magnitude(d), &r);
  return (int64_t)((n < 0) != (d < 0) ? 0u - q : q);
}

int64_t __moddi3(int64_t n, int64_t d) {
  uint64_t r;
  udivmod64(magnitude(n), magnitude(d), &r);
  return (int64_t)(n < 0 ? 0u - r : r);
}
