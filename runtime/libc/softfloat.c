/* IEEE-754 binary32 add, subtract, multiply and unsigned conversions for
 * the lx106, whose Debian libgcc lacks them (the ESP8266 ROM has them), and a
 * division for the LX7 simulator build (FTER_SOFTFLOAT_DIV_ONLY, through
 * sim/esp32s3/lx7_divsf3.c, which takes the rest from the FPU): on the LX7 its
 * 32-bit integer divisions are one QUOU each, about 110 instructions a call
 * where Debian libgcc's takes about 170.  The lx106, which divides integers in
 * software, keeps libgcc's.
 *
 * Results must be bit-identical to x86-64 SSE with the default MXCSR
 * (round to nearest even, subnormals kept), so host and simulator builds
 * of the same C agree.  NaN results follow SSE: a NaN operand is returned
 * quieted (the first one if both are NaN), invalid operations return the
 * "default NaN" 0xffc00000.
 *
 * The file is also compiled on the host with FTER_SOFTFLOAT_PREFIX set, so
 * tests can compare it against the hardware on random bit patterns.
 */
#include <stdint.h>

#include "fter_bits.h"

#ifdef FTER_SOFTFLOAT_PREFIX
#define SF_CAT2(a, b) a##b
#define SF_CAT(a, b) SF_CAT2(a, b)
#define SF(name) SF_CAT(FTER_SOFTFLOAT_PREFIX, name)
#else
#define SF(name) __##name
#endif

float SF(addsf3)(float a, float b);
float SF(subsf3)(float a, float b);
float SF(mulsf3)(float a, float b);
float SF(divsf3)(float a, float b);
float SF(floatunsisf)(uint32_t u);
float SF(floatsisf)(int32_t i);
uint32_t SF(fixunssfsi)(float a);

#define SIGN_BIT 0x80000000u
#define DEFAULT_NAN 0xffc00000u
#define QUIET_BIT 0x00400000u
#define EXP_OF(x) ((int32_t)(((x) >> 23) & 0xffu))
#define FRAC_OF(x) ((x) & 0x007fffffu)
#define IS_NAN(x) (((x) & 0x7fffffffu) > 0x7f800000u)

/* Shift right, OR-ing every bit shifted out into bit 0 ("jamming") so the
 * rounding step still sees that the value was inexact. */
static uint32_t shift_right_jam(uint32_t x, int32_t n) {
  if (n <= 0) return x;
  if (n >= 31) return x != 0;
  return (x >> n) | ((x << (32 - n)) != 0);
}

/* Round and pack.  The value is sig * 2^(e - 157) with sig < 2^31 and, for
 * a normal result, sig >= 2^30 (e is then the biased exponent field).  The
 * 7 bits below the 24 kept ones are guard bits.  Adding (e - 1) << 23 to the
 * rounded significand lets its hidden bit carry into the exponent, which
 * also handles rounding up into the next binade or into infinity. */
static uint32_t round_pack(uint32_t sign, int32_t e, uint32_t sig) {
  if (e < 1) {
    sig = shift_right_jam(sig, 1 - e);
    e = 1;
  }
  if (e >= 255) return sign | 0x7f800000u;
  uint32_t rest = sig & 0x7fu;
  sig = (sig + 0x40u) >> 7;
  if (rest == 0x40u) sig &= ~1u; /* tie: round to even */
  return sign + ((uint32_t)(e - 1) << 23) + sig;
}

static uint32_t propagate_nan(uint32_t a, uint32_t b) {
  return (IS_NAN(a) ? a : b) | QUIET_BIT;
}

/* The significand of a finite, non-zero magnitude with the hidden bit at bit 23, subnormals
 * normalised by lowering the exponent *e below 1. */
static uint32_t normal_sig(uint32_t x, int32_t *e) {
  int32_t ex = EXP_OF(x);
  uint32_t f = FRAC_OF(x);
  if (ex == 0) {
    int32_t s = __builtin_clz(f) - 8;
    *e = 1 - s;
    return f << s;
  }
  *e = ex;
  return f | 0x00800000u;
}

#if defined(FTER_SOFTFLOAT_DIV_ONLY) || defined(FTER_SOFTFLOAT_PREFIX)
/* bits (<= 8) more quotient bits of a long division by d < 2^24 with the remainder *r < d */
static inline void div_step(uint32_t *q, uint32_t *r, uint32_t d, int32_t bits) {
  const uint32_t n = *r << bits, digit = n / d;
  *q = (*q << bits) | digit;
  *r = n - digit * d;
}

/* a / b: the quotient's significand by long division, eight bits a step so that every partial
 * remainder (< b's significand < 2^24) shifted stays below 2^32, plus a sticky bit for the rest;
 * round_pack does the rounding, subnormals and overflow. */
float SF(divsf3)(float a, float b) {
  uint32_t ua = bits_of(a), ub = bits_of(b);
  uint32_t sign = (ua ^ ub) & SIGN_BIT;
  uint32_t ma = ua & ~SIGN_BIT, mb = ub & ~SIGN_BIT;
  if (IS_NAN(ua) || IS_NAN(ub)) return from_bits(propagate_nan(ua, ub));
  if (ma == 0x7f800000u) return from_bits(mb == 0x7f800000u ? DEFAULT_NAN : sign | ma);
  if (mb == 0x7f800000u) return from_bits(sign);
  if (mb == 0) return from_bits(ma == 0 ? DEFAULT_NAN : sign | 0x7f800000u);
  if (ma == 0) return from_bits(sign);
  int32_t ea, eb;
  uint32_t xa = normal_sig(ua, &ea), xb = normal_sig(ub, &eb);
  int32_t e = ea - eb + 127;
  if (xa < xb) { /* xa / xb in [1, 2) */
    xa <<= 1;
    --e;
  }
  uint32_t q = 1, r = xa - xb; /* 30 more quotient bits: 8 + 8 + 8 + 6 */
  div_step(&q, &r, xb, 8);
  div_step(&q, &r, xb, 8);
  div_step(&q, &r, xb, 8);
  div_step(&q, &r, xb, 6);
  return from_bits(round_pack(sign, e, q | (r != 0)));
}
#endif

#ifndef FTER_SOFTFLOAT_DIV_ONLY
/* Unpacks a finite, non-zero magnitude into (e, sig) with sig < 2^31; the
 * hidden bit lands at bit 30 for normal numbers. */
static uint32_t unpack_sig(uint32_t x, int32_t *e) {
  int32_t ex = EXP_OF(x);
  uint32_t f = FRAC_OF(x);
  if (ex == 0) {
    *e = 1; /* subnormal: same scale as the smallest normal, no hidden bit */
    return f << 7;
  }
  *e = ex;
  return (f | 0x00800000u) << 7;
}

static uint32_t add_bits(uint32_t a, uint32_t b) {
  uint32_t sa = a & SIGN_BIT, sb = b & SIGN_BIT;
  uint32_t ma = a & ~SIGN_BIT, mb = b & ~SIGN_BIT;
  if (IS_NAN(a) || IS_NAN(b)) return propagate_nan(a, b);
  if (ma == 0x7f800000u) return (mb == 0x7f800000u && sa != sb) ? DEFAULT_NAN : a;
  if (mb == 0x7f800000u) return b;
  if (mb == 0) return ma == 0 ? (sa & sb) | ma : a; /* -0 + -0 = -0 only */
  if (ma == 0) return b;

  /* Order by magnitude so the result takes the larger operand's sign. */
  if (mb > ma) {
    uint32_t t = a;
    a = b;
    b = t;
    sa = a & SIGN_BIT;
    sb = b & SIGN_BIT;
  }
  int32_t ea, eb;
  uint32_t xa = unpack_sig(a, &ea), xb = unpack_sig(b, &eb);
  xb = shift_right_jam(xb, ea - eb);
  if (sa == sb) {
    uint32_t s = xa + xb; /* < 2^32: both are < 2^31 */
    if (s >= 0x80000000u) {
      s = (s >> 1) | (s & 1u);
      ++ea;
    }
    return round_pack(sa, ea, s);
  }
  uint32_t d = xa - xb;
  if (d == 0) return 0; /* exact cancellation gives +0 when rounding to nearest */
  /* Renormalise to bit 30, but never below the subnormal exponent 1.
   * Exact: when ea - eb > 1 at most one bit is lost to cancellation. */
  int32_t shift = __builtin_clz(d) - 1;
  if (shift > ea - 1) shift = ea - 1;
  return round_pack(sa, ea - shift, d << shift);
}

float SF(addsf3)(float a, float b) { return from_bits(add_bits(bits_of(a), bits_of(b))); }

float SF(subsf3)(float a, float b) {
  uint32_t ub = bits_of(b);
  /* Negating a NaN would change the payload SSE returns: keep it. */
  return from_bits(add_bits(bits_of(a), IS_NAN(ub) ? ub : ub ^ SIGN_BIT));
}

float SF(mulsf3)(float a, float b) {
  uint32_t ua = bits_of(a), ub = bits_of(b);
  uint32_t sign = (ua ^ ub) & SIGN_BIT;
  uint32_t ma = ua & ~SIGN_BIT, mb = ub & ~SIGN_BIT;
  if (IS_NAN(ua) || IS_NAN(ub)) return from_bits(propagate_nan(ua, ub));
  if (ma == 0x7f800000u || mb == 0x7f800000u) {
    if (ma == 0 || mb == 0) return from_bits(DEFAULT_NAN); /* 0 * inf */
    return from_bits(sign | 0x7f800000u);
  }
  if (ma == 0 || mb == 0) return from_bits(sign);

  int32_t ea, eb;
  uint32_t xa = normal_sig(ua, &ea), xb = normal_sig(ub, &eb);
  uint64_t p = (uint64_t)xa * xb; /* in [2^46, 2^48) */
  int32_t e = ea + eb - 127;
  int32_t drop = 16;
  if (p >= ((uint64_t)1 << 47)) {
    drop = 17;
    ++e;
  }
  uint32_t sig = (uint32_t)(p >> drop) | ((p & (((uint64_t)1 << drop) - 1)) != 0);
  return from_bits(round_pack(sign, e, sig));
}

float SF(floatunsisf)(uint32_t u) {
  if (u == 0) return 0.0f;
  int32_t top = 31 - __builtin_clz(u); /* value = sig * 2^(top - 30) */
  uint32_t sig = top >= 30 ? shift_right_jam(u, top - 30) : u << (30 - top);
  return from_bits(round_pack(0, 127 + top, sig));
}

float SF(floatsisf)(int32_t i) {
  /* Magnitude in unsigned arithmetic so INT32_MIN converts exactly. */
  uint32_t mag = i < 0 ? 0u - (uint32_t)i : (uint32_t)i;
  float r = SF(floatunsisf)(mag);
  return i < 0 ? from_bits(bits_of(r) | SIGN_BIT) : r;
}

/* Matches x86-64 gcc, which converts through a signed 64-bit integer
 * (cvttss2si): truncation toward zero, negative values wrap modulo 2^32,
 * NaN and |a| >= 2^63 give 0. */
uint32_t SF(fixunssfsi)(float a) {
  uint32_t ua = bits_of(a);
  int32_t ex = EXP_OF(ua) - 127; /* value = 1.frac * 2^ex */
  if (ex < 0 || ex >= 63) return 0;
  if (ex >= 55) return 0; /* every bit of the result lies above bit 31 */
  uint32_t sig = FRAC_OF(ua) | 0x00800000u;
  uint32_t mag = ex >= 23 ? (ex - 23 >= 32 ? 0 : sig << (ex - 23)) : sig >> (23 - ex);
  return (ua & SIGN_BIT) ? 0u - mag : mag;
}
#endif /* FTER_SOFTFLOAT_DIV_ONLY */
