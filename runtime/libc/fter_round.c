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
  /* sqrt(m * 2^25) has 25 bits: 24 for the result plus a round bit.  Bit by
   * bit integer square root of a 50-bit radicand. */
  uint64_t rad = (uint64_t)m << 25, root = 0, bit = (uint64_t)1 << 48;
  while (bit > rad) bit >>= 2;
  while (bit != 0) {
    if (rad >= root + bit) {
      rad -= root + bit;
      root = (root >> 1) + bit;
    } else {
      root >>= 1;
    }
    bit >>= 2;
  }
  /* root has 25 bits.  No ties exist (the square of an odd 25-bit root is
   * odd, the radicand even), so round up exactly when the last bit is 1. */
  uint32_t q = (uint32_t)root;
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
