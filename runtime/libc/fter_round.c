/* Exact float functions: sqrtf (integer algorithm, correctly rounded),
 * fabsf, fminf/fmaxf and the rounding family, all by bit manipulation so
 * no target's hardware or libm is involved. */
#include <math.h>
#include <stdint.h>

#include "fter_bits.h"

float fabsf(float x) { return from_bits(bits_of(x) & 0x7fffffffu); }

/* C99: a NaN operand is ignored. */
float fmaxf(float a, float b) {
  if (a != a) return b;
  if (b != b) return a;
  return a > b ? a : b;
}

float fminf(float a, float b) {
  if (a != a) return b;
  if (b != b) return a;
  return a < b ? a : b;
}

/* One digit of sqrtf's square root: the next two radicand bits into the remainder, the next
 * root bit out of it. */
static inline void sqrt_step(uint32_t *rem, uint32_t *root, uint32_t pair) {
  const uint32_t r = (*rem << 2) | pair, trial = (*root << 2) | 1u;
  const uint32_t take = r >= trial;
  *rem = take ? r - trial : r;
  *root = (*root << 1) | take;
}

float sqrtf(float x) {
  uint32_t ux = bits_of(x);
  if ((ux & 0x7fffffffu) > 0x7f800000u) return from_bits(ux | 0x00400000u); /* NaN */
  if ((ux & 0x7fffffffu) == 0) return x;                                   /* +-0 */
  if (ux & 0x80000000u) return from_bits(0xffc00000u);  /* negative: SSE default NaN */
  if (ux == 0x7f800000u) return x;

  int32_t e = (int32_t)(ux >> 23);
  uint32_t m = ux & 0x007fffffu;
  if (e == 0) { /* subnormal: normalise */
    int32_t s = __builtin_clz(m) - 8;
    m <<= s;
    e = 1 - s;
  } else {
    m |= 0x00800000u;
  }
  e -= 127; /* x = m * 2^(e - 23), m in [2^23, 2^24) */
  if (e & 1) { /* make the exponent even */
    m <<= 1;
    e -= 1;
  }
  /* sqrt(m * 2^25) has 25 bits: 24 for the result plus a round bit.  Digit by digit (two
   * radicand bits a step) in 32 bits: m * 2^25 = (2m) * 4^12, so the first 13 steps take the
   * pairs of 2m < 2^26 and the last 12 take zeros; the remainder stays <= 2 root < 2^26. */
  const uint32_t mm = m << 1;
  uint32_t rem = 0, root = 0;
  for (int32_t s = 24; s >= 0; s -= 2) sqrt_step(&rem, &root, (mm >> s) & 3u);
  for (int32_t i = 0; i < 12; ++i) sqrt_step(&rem, &root, 0);
  /* root has 25 bits.  No ties exist (the square of an odd 25-bit root is
   * odd, the radicand even), so round up exactly when the last bit is 1. */
  uint32_t q = root;
  q = (q >> 1) + (q & 1u);
  /* q in [2^23, 2^24]; adding the exponent lets a carry to 2^24 bump it. */
  return from_bits(((uint32_t)((e >> 1) + 126) << 23) + q); /* e even: exact */
}

float truncf(float x) {
  uint32_t ux = bits_of(x);
  int32_t e = (int32_t)((ux >> 23) & 0xffu) - 127;
  if (e >= 23) return e == 128 && (ux & 0x007fffffu) ? from_bits(ux | 0x00400000u) : x;
  if (e < 0) return from_bits(ux & 0x80000000u); /* |x| < 1: signed zero */
  return from_bits(ux & ~(0x007fffffu >> e));
}

float floorf(float x) {
  float t = truncf(x);
  return (x < t) ? t - 1.0f : t; /* only for negative non-integers */
}

float ceilf(float x) {
  float t = truncf(x);
  return (x > t) ? t + 1.0f : t;
}

float roundf(float x) {
  float t = truncf(x);
  float diff = x - t; /* exact: t holds the integer bits of x */
  if (diff >= 0.5f) return t + 1.0f;
  if (diff <= -0.5f) return t - 1.0f;
  return t;
}

float nearbyintf(float x) {
  uint32_t ux = bits_of(x);
  if ((ux & 0x7fffffffu) >= 0x4b000000u) /* |x| >= 2^23 (or inf/NaN): integral */
    return (ux & 0x7fffffffu) > 0x7f800000u ? from_bits(ux | 0x00400000u) : x;
  /* Add and subtract 2^23: the addition rounds to an integer, ties to even.
   * Done on |x| and the sign put back so -0.3 gives -0. */
  float r = (fabsf(x) + 8388608.0f) - 8388608.0f;
  return from_bits(bits_of(r) | (ux & 0x80000000u));
}

float rintf(float x) { return nearbyintf(x); }
