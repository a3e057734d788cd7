/* Float math for generated kernels: binary32 arithmetic only, so every
 * target that rounds +,-,*,/ correctly (x86-64 SSE, our lx106 soft-float)
 * produces the same bits.  Never use double, fma or compiler builtins here.
 *
 * expf, logf and tanhf follow Cephes (S. L. Moshier) single-precision
 * algorithms and coefficients; erff uses the rational approximations of
 * fdlibm's s_erff.c, whose notice is reproduced for those coefficients:
 *   Copyright (C) 1993 by Sun Microsystems, Inc. All rights reserved.
 *   Developed at SunPro, a Sun Microsystems, Inc. business.
 *   Permission to use, copy, modify, and distribute this software is freely
 *   granted, provided that this notice is preserved.
 */
#include <math.h>
#include <stdint.h>

#include "fter_bits.h"

#define ABS_BITS(u) ((u) & 0x7fffffffu)
#define IS_NAN_BITS(u) (ABS_BITS(u) > 0x7f800000u)
#define QUIET(u) from_bits((u) | 0x00400000u)

/* 2^k for k in [-126, 127], built from its exponent field. */
static float pow2i(int32_t k) { return from_bits((uint32_t)(k + 127) << 23); }

/* Round to nearest, ties to even, by the 1.5 * 2^23 trick: valid for
 * |x| < 2^22 and exact because float addition rounds that way. */
static float round_even_small(float x) {
  const float magic = 12582912.0f;
  return (x + magic) - magic;
}

float expf(float x) {
  uint32_t ux = bits_of(x);
  if (IS_NAN_BITS(ux)) return QUIET(ux);
  if (x >= 88.72283935546875f) return from_bits(0x7f800000u); /* > FLT_MAX */
  if (x < -103.97208404541015625f) return 0.0f;                /* < 2^-150 */

  /* x = k ln2 + r, |r| <= ln2/2; ln2 is split so k * C1 is exact. */
  float kf = round_even_small(x * 1.44269504088896341f);
  int32_t k = (int32_t)kf;
  float r = x - kf * 0.693359375f;
  r = r - kf * -2.12194440e-4f;

  float p = 1.9875691500e-4f;
  p = p * r + 1.3981999507e-3f;
  p = p * r + 8.3334519073e-3f;
  p = p * r + 4.1665795894e-2f;
  p = p * r + 1.6666665459e-1f;
  p = p * r + 5.0000001201e-1f;
  p = p * (r * r) + r;
  p = p + 1.0f;

  /* Scale by 2^k; two steps keep each factor a normal number (k = 128 near
   * overflow, subnormal results below k = -126, rounded once at the end). */
  if (k > 127) return (p * 2.0f) * pow2i(k - 1);
  if (k < -125) return (p * pow2i(k + 64)) * pow2i(-64);
  return p * pow2i(k);
}

/* ln(1 + f) - f for f = m - 1, m in [sqrt(1/2), sqrt(2)). */
static float log1p_tail(float f, float z) {
  float y = 7.0376836292e-2f;
  y = y * f - 1.1514610310e-1f;
  y = y * f + 1.1676998740e-1f;
  y = y * f - 1.2420140846e-1f;
  y = y * f + 1.4249322787e-1f;
  y = y * f - 1.6668057665e-1f;
  y = y * f + 2.0000714765e-1f;
  y = y * f - 2.4999993993e-1f;
  y = y * f + 3.3333331174e-1f;
  return y * f * z - 0.5f * z;
}

/* Splits a positive finite x into m * 2^e with m in [sqrt(1/2), sqrt(2)),
 * returning m - 1 (exact). */
static float log_reduce(uint32_t ux, int32_t *e) {
  int32_t ex = (int32_t)(ux >> 23);
  if (ex == 0) { /* subnormal: scale up by 2^25 first */
    ux = bits_of(from_bits(ux) * 33554432.0f);
    ex = (int32_t)(ux >> 23) - 25;
  }
  ex -= 126; /* mantissa in [0.5, 1) */
  float m = from_bits((ux & 0x007fffffu) | 0x3f000000u);
  if (m < 0.707106781186547524f) {
    ex -= 1;
    m = m + m - 1.0f;
  } else {
    m = m - 1.0f;
  }
  *e = ex;
  return m;
}

/* Special values shared by logf and log2f; returns 1 when *out is set. */
static int log_special(uint32_t ux, float *out) {
  if (IS_NAN_BITS(ux)) {
    *out = QUIET(ux);
  } else if (ABS_BITS(ux) == 0) {
    *out = from_bits(0xff800000u); /* -inf */
  } else if (ux & 0x80000000u) {
    *out = from_bits(0xffc00000u); /* NaN for negative input */
  } else if (ux == 0x7f800000u) {
    *out = from_bits(ux);
  } else {
    return 0;
  }
  return 1;
}

float logf(float x) {
  uint32_t ux = bits_of(x);
  float out;
  if (log_special(ux, &out)) return out;
  int32_t e;
  float f = log_reduce(ux, &e);
  float fe = (float)e;
  float y = log1p_tail(f, f * f);
  /* e * ln2 in two parts, the small one added first. */
  y = y + fe * -2.12194440e-4f;
  return (f + y) + fe * 0.693359375f;
}

float log2f(float x) {
  uint32_t ux = bits_of(x);
  float out;
  if (log_special(ux, &out)) return out;
  int32_t e;
  float f = log_reduce(ux, &e);
  float y = log1p_tail(f, f * f);
  /* log2(1 + f) = (f + y) * log2(e); log2(e) = 1 + 0.44269504 keeps the
   * large term f + y exact-ish before adding the integer exponent. */
  const float log2e_m1 = 0.44269504088896340736f;
  float z = y * log2e_m1 + f * log2e_m1;
  z = z + y;
  z = z + f;
  return z + (float)e;
}

/* x^n by repeated squaring: exact for n = 2 and a few ulp for small n. */
static float pow_int(float x, uint32_t n) {
  float r = 1.0f;
  while (n != 0) {
    if (n & 1u) r = r * x;
    x = x * x;
    n >>= 1;
  }
  return r;
}

float powf(float x, float y) {
  uint32_t ux = bits_of(x), uy = bits_of(y);
  if (ABS_BITS(uy) == 0 || ux == 0x3f800000u) return 1.0f;
  if (IS_NAN_BITS(ux) || IS_NAN_BITS(uy)) return QUIET(IS_NAN_BITS(ux) ? ux : uy);
  int y_int = ABS_BITS(uy) < 0x4b800000u ? truncf(y) == y : ABS_BITS(uy) != 0x7f800000u;
  int y_odd = y_int && ABS_BITS(uy) < 0x4b800000u && ((int32_t)fabsf(y) & 1);
  if (y_int && ABS_BITS(uy) <= 0x42800000u) { /* |y| <= 64 */
    float r = pow_int(x, (uint32_t)(int32_t)fabsf(y));
    return (uy & 0x80000000u) ? 1.0f / r : r;
  }
  float ax = fabsf(x);
  if (ux & 0x80000000u) {
    if (!y_int) return from_bits(0xffc00000u); /* negative base, fractional power */
  }
  float r = ABS_BITS(ux) == 0 ? ((uy & 0x80000000u) ? from_bits(0x7f800000u) : 0.0f)
                              : expf(y * logf(ax));
  return ((ux & 0x80000000u) && y_odd) ? -r : r;
}

float tanhf(float x) {
  uint32_t ux = bits_of(x);
  if (IS_NAN_BITS(ux)) return QUIET(ux);
  float ax = fabsf(x);
  if (ax < 0.625f) { /* odd polynomial: 1 - 2/(e^2x + 1) would cancel */
    float z = x * x;
    float p = -5.70498872745e-3f;
    p = p * z + 2.06390887954e-2f;
    p = p * z - 5.37397155531e-2f;
    p = p * z + 1.33314422036e-1f;
    p = p * z - 3.33332819422e-1f;
    return p * z * x + x;
  }
  float r = ax > 9.01091289520263671875f ? 1.0f : 1.0f - 2.0f / (expf(ax + ax) + 1.0f);
  return (ux & 0x80000000u) ? -r : r;
}

/* fdlibm erff coefficients, written as bit patterns so no decimal
 * conversion can change them. */
static float erf_poly(const uint32_t *c, int n, float s) {
  float r = from_bits(c[n - 1]);
  for (int i = n - 2; i >= 0; --i) r = from_bits(c[i]) + s * r;
  return r;
}

static const uint32_t ERF_PP[5] = {0x3e0375d4, 0xbea66beb, 0xbce9528f, 0xbbbd1489, 0xb7c756b1};
static const uint32_t ERF_QQ[6] = {0x3f800000, 0x3ecbbbce, 0x3d852a63,
                                   0x3ba68116, 0x390aee49, 0xb684e21a};
static const uint32_t ERF_PA[7] = {0xbb1acdc6, 0x3ed46805, 0xbebe9208, 0x3ea2fe54,
                                   0xbde31cc2, 0x3d1151b3, 0xbb0df9c0};
static const uint32_t ERF_QA[7] = {0x3f800000, 0x3dd9f331, 0x3f0a5785, 0x3d931ae7,
                                   0x3e013307, 0x3c5f6e13, 0x3c445aa3};
static const uint32_t ERF_RA[8] = {0xbc21a093, 0xbf31a0b7, 0xc128f022, 0xc2798057,
                                   0xc322658c, 0xc3389ae7, 0xc2a2932b, 0xc11d077e};
static const uint32_t ERF_SA[9] = {0x3f800000, 0x419d35ce, 0x4309a863, 0x43d9486f, 0x442158c9,
                                   0x43d6810b, 0x42d9451f, 0x40d23f7c, 0xbd777f97};
static const uint32_t ERF_RB[7] = {0xbc21a092, 0xbf4c9dd4, 0xc18e104b, 0xc320a2ea,
                                   0xc41f6441, 0xc480230b, 0xc3f1c275};
static const uint32_t ERF_SB[8] = {0x3f800000, 0x41f2b459, 0x43a2e571, 0x44c01759,
                                   0x4547fdbb, 0x451f90ce, 0x43ed43a7, 0xc1b38712};

float erff(float x) {
  uint32_t ux = bits_of(x), ax_bits = ABS_BITS(ux);
  if (IS_NAN_BITS(ux)) return QUIET(ux);
  float sign = (ux & 0x80000000u) ? -1.0f : 1.0f;
  float ax = from_bits(ax_bits);
  if (ax_bits < 0x3f580000u) { /* |x| < 0.84375: x + x * P(x^2)/Q(x^2) */
    if (ax_bits < 0x31800000u) return x + x * from_bits(0x3e0375d4u); /* |x| < 2^-28 */
    float z = x * x;
    return x + x * (erf_poly(ERF_PP, 5, z) / erf_poly(ERF_QQ, 6, z));
  }
  if (ax_bits < 0x3fa00000u) { /* |x| < 1.25: erf(1) region, c + P(s)/Q(s) */
    float s = ax - 1.0f;
    float r = from_bits(0x3f58560bu) + erf_poly(ERF_PA, 7, s) / erf_poly(ERF_QA, 7, s);
    return sign * r;
  }
  if (ax_bits >= 0x40c00000u) return sign; /* |x| >= 6: erf rounds to +-1 */
  /* erfc(x) = exp(-x^2 - 0.5625 + R/S) / x; x^2 is split as z^2 + (z-x)(z+x)
   * with z the top 12 bits of x so -z*z is exact. */
  float s = 1.0f / (ax * ax);
  float rs = ax_bits < 0x4036db6eu ? erf_poly(ERF_RA, 8, s) / erf_poly(ERF_SA, 9, s)
                                   : erf_poly(ERF_RB, 7, s) / erf_poly(ERF_SB, 8, s);
  float z = from_bits(ax_bits & 0xfffff000u);
  float r = expf(-z * z - 0.5625f) * expf((z - ax) * (z + ax) + rs);
  return sign * (1.0f - r / ax);
}
