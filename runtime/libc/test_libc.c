/* libc / soft-float test program (host and Xtensa simulator, driven by
 * tests/test_kernels_c.py).  Input: int32 mode, int32 count, then data.
 *   mode 0: float x[count] -> for each function of UNARY in order, f(x[i]).
 *   mode 1: float x[count], float y[count] -> powf(x[i], y[i]).
 *   mode 2: uint32 a[count], uint32 b[count] (float bit patterns) -> per
 *           pair: a+b, a-b, a*b, a/b, (float)(int32)a, (float)(uint32)a,
 *           (int32)a and (uint32)a where in range (else 0), and the
 *           comparisons a<b, a<=b, a==b, a>b as bits 0..3 of one word.
 *   mode 4: int64 a[count], int64 b[count] -> per pair a / b, a % b, and the
 *           same on the values as uint64 (the lx106's 64-bit division helpers,
 *           libgcc_divdi.c): four 64-bit words.
 *   mode 3 (host only, built with -DFTER_TEST_SOFTFLOAT): `count` random
 *           pairs of bit patterns through softfloat.c and the hardware;
 *           outputs the number of results that differ (NaN payloads aside).
 * Outputs are written as raw 32-bit words. */
#include <math.h>
#include <stdint.h>

#include "harness.h"

#ifdef FTER_TEST_SOFTFLOAT
#define FTER_SOFTFLOAT_PREFIX fter_sf_
#include "../libc/softfloat.c"
#endif

#define MAX_COUNT 16384

typedef float (*unary_fn)(float);
static const unary_fn UNARY[] = {expf,  logf,  log2f, erff,  tanhf,      sqrtf, floorf,
                                 ceilf, truncf, roundf, nearbyintf, rintf, fabsf};

static float xs[MAX_COUNT], ys[MAX_COUNT];
static uint32_t out[MAX_COUNT];

typedef union {
  float f;
  uint32_t u;
} word;

static uint32_t u_of(float f) {
  word w;
  w.f = f;
  return w.u;
}

static int emit(int32_t count) { return fter_write_output(out, (size_t)count * 4u); }

#define MAX_PAIRS 2048
static int64_t ia[MAX_PAIRS], ib[MAX_PAIRS];
static uint64_t out64[4 * MAX_PAIRS];

static int int64_division(int32_t count) {
  if (count > MAX_PAIRS || fter_read_input(ia, (size_t)count * 8u) != 0 ||
      fter_read_input(ib, (size_t)count * 8u) != 0)
    return 2;
  for (int32_t i = 0; i < count; ++i) {
    volatile int64_t a = ia[i], b = ib[i]; /* volatile: no constant folding */
    out64[4 * i] = (uint64_t)(a / b);
    out64[4 * i + 1] = (uint64_t)(a % b);
    out64[4 * i + 2] = (uint64_t)a / (uint64_t)b;
    out64[4 * i + 3] = (uint64_t)a % (uint64_t)b;
  }
  return fter_write_output(out64, (size_t)count * 32u) != 0 ? 3 : 0;
}

static int arith(int32_t count) {
  /* volatile operands keep the compiler from folding or reordering. */
  for (int32_t op = 0; op < 9; ++op) {
    for (int32_t i = 0; i < count; ++i) {
      volatile float a = xs[i], b = ys[i];
      float fa = a, fb = b;
      uint32_t r = 0;
      switch (op) {
        case 0: r = u_of(fa + fb); break;
        case 1: r = u_of(fa - fb); break;
        case 2: r = u_of(fa * fb); break;
        case 3: r = u_of(fa / fb); break;
        case 4: r = u_of((float)(int32_t)u_of(fa)); break;
        case 5: r = u_of((float)u_of(fa)); break;
        case 6: r = (fa > -2147483648.0f && fa < 2147483648.0f) ? (uint32_t)(int32_t)fa : 0u; break;
        case 7: r = (fa > -1.0f && fa < 4294967296.0f) ? (uint32_t)fa : 0u; break;
        default: r = (uint32_t)(fa < fb) | (uint32_t)(fa <= fb) << 1 | (uint32_t)(fa == fb) << 2 |
                     (uint32_t)(fa > fb) << 3;
      }
      out[i] = r;
    }
    if (emit(count) != 0) return 3;
  }
  return 0;
}

#ifdef FTER_TEST_SOFTFLOAT
static float f_of(uint32_t u) {
  word w;
  w.u = u;
  return w.f;
}

static uint32_t lcg_state = 12345u;
static uint32_t lcg(void) {
  lcg_state = lcg_state * 1664525u + 1013904223u;
  return lcg_state ^ (lcg_state >> 15);
}

static int same(uint32_t a, uint32_t b) {
  int nan_a = (a & 0x7fffffffu) > 0x7f800000u, nan_b = (b & 0x7fffffffu) > 0x7f800000u;
  return nan_a || nan_b ? nan_a && nan_b : a == b;
}

/* Random patterns biased towards hard cases: equal exponents, subnormals,
 * nearly-cancelling pairs, integers. */
static uint32_t pattern(void) {
  uint32_t r = lcg(), kind = lcg() % 8u;
  if (kind == 0) return r & 0x807fffffu;                              /* subnormal */
  if (kind == 1) return (r & 0x80ffffffu) | 0x3f000000u;              /* near 1 */
  if (kind == 2) return u_of((float)(int32_t)(r >> (lcg() % 32u)));   /* integers */
  return r;
}

static int softfloat_vs_hardware(int32_t count) {
  uint32_t bad = 0;
  for (int32_t i = 0; i < count; ++i) {
    uint32_t ua = pattern(), ub = (lcg() & 1u) ? pattern() : ua ^ (lcg() & 0x800000ffu);
    volatile float a = f_of(ua), b = f_of(ub);
    float fa = a, fb = b;
    bad += !same(u_of(fter_sf_addsf3(fa, fb)), u_of(fa + fb));
    bad += !same(u_of(fter_sf_subsf3(fa, fb)), u_of(fa - fb));
    bad += !same(u_of(fter_sf_mulsf3(fa, fb)), u_of(fa * fb));
    bad += !same(u_of(fter_sf_divsf3(fa, fb)), u_of(fa / fb));
    bad += !same(u_of(fter_sf_floatunsisf(ua)), u_of((float)ua));
    bad += !same(u_of(fter_sf_floatsisf((int32_t)ua)), u_of((float)(int32_t)ua));
    if (fa > -1.0f && fa < 4294967296.0f) bad += fter_sf_fixunssfsi(fa) != (uint32_t)fa;
  }
  out[0] = bad;
  return emit(1);
}
#endif

int main(int argc, char **argv) {
  (void)argc;
  (void)argv;
  int32_t hdr[2];
  if (fter_read_input(hdr, sizeof hdr) != 0) return 2;
  const int32_t mode = hdr[0], count = hdr[1];
  if (count < 0 || (mode != 3 && count > MAX_COUNT)) return 2;
  if (mode == 3) {
#ifdef FTER_TEST_SOFTFLOAT
    return softfloat_vs_hardware(count);
#else
    return 2;
#endif
  }
  if (mode == 4) return int64_division(count);
  if (fter_read_input(xs, (size_t)count * 4u) != 0) return 2;
  if (mode >= 1 && fter_read_input(ys, (size_t)count * 4u) != 0) return 2;
  if (mode == 0) {
    for (uint32_t f = 0; f < sizeof UNARY / sizeof UNARY[0]; ++f) {
      for (int32_t i = 0; i < count; ++i) out[i] = u_of(UNARY[f](xs[i]));
      if (emit(count) != 0) return 3;
    }
    return 0;
  }
  if (mode == 1) {
    for (int32_t i = 0; i < count; ++i) out[i] = u_of(powf(xs[i], ys[i]));
    return emit(count);
  }
  if (mode == 2) return arith(count);
  return 2;
}
