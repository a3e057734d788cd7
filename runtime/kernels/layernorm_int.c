/* The integer LayerNorm of one row (numerics="integer"), written as tight C loops.
 *
 * The contract is schedules/integer/intmath.py (ternary_layernorm_quant in
 * schedules/integer/kernels.py states the same row as TensorIR, intmath_ref.layernorm_quant as
 * NumPy); this file follows it op for op, and tests/test_integer_c.py checks it bit for bit
 * against the NumPy reference on the host and on the lx106.  Per element only int32 add,
 * multiply, shift, compare; per row a few float32 operations (+ - * / sqrtf), which round the
 * same way everywhere (the runtime is built with -ffp-contract=off).
 *
 * fter_ln_affine_i8 folds the ternary gamma and beta with their Q15 weights once per call;
 * fter_ln_row_i8 then makes five passes over a row, each a plain loop the compiler keeps in
 * registers: the largest |bits|; the fixed-point row (relative to that exponent) and its sum;
 * the sum of squared deviations; the normalised, ternary-scaled values and their absmax; the
 * int8 codes. */
#include "fter_bits.h"
#include "fter_intmath.h"
#include "fter_kernels.h"

#include <math.h>

enum { LN_BITS = 14, LN_NORM_FRAC = 10 };

static inline float fmax_(float a, float b) { return a > b ? a : b; }

static inline float ln_unit(const float *ab) { return fmax_(fmax_(ab[0], ab[1]), 1e-30f); }

void fter_ln_affine_i8(int32_t *gb, const int8_t *g, const int8_t *b, const float *ab, int32_t d) {
  /* gamma and beta's scales as a Q15 pair relative to the larger */
  const float unit = ln_unit(ab);
  const int32_t g0 = (int32_t)(ab[0] / unit * 32768.0f + 0.5f);
  const int32_t g1 = (int32_t)(ab[1] / unit * 32768.0f + 0.5f);
  for (int32_t j = 0; j < d; ++j) {
    gb[j] = (int32_t)g[j] * g0;
    gb[d + j] = (int32_t)b[j] * g1 * (1 << LN_NORM_FRAC) + (1 << 14);   /* with the rounding half */
  }
}

void fter_ln_row_i8(const float *x, const int32_t *gb, const float *ab, int8_t *q, float *s,
                    int32_t *row, int32_t d, int32_t sq_shift, float eps) {
  /* 1: the largest |x| as bits (for non-negative floats the integer order is the float order) */
  int32_t top = 0;
  FTER_UNROLL4
  for (int32_t j = 0; j < d; ++j) {
    int32_t a = (int32_t)(bits_of(x[j]) & 0x7FFFFFFFu);
    top = a > top ? a : top;
  }
  /* 2: X = round(x * 2^(126 + LN_BITS - field_ref)), and the row's sum */
  int32_t ref = top >> 23;
  if (ref < 1) ref = 1;
  int32_t total = 0;
  FTER_UNROLL4
  for (int32_t j = 0; j < d; ++j) {
    const int32_t mag = fter_fixed_from_bits((int32_t)bits_of(x[j]), ref);
    row[j] = mag;
    total += mag;
  }
  /* mean = floor((total + d/2) / d) */
  int32_t num = total + d / 2;
  int32_t mean = num / d;
  if (num % d < 0) mean -= 1;
  /* 3: sum of squared deviations, each term shifted right by sq_shift */
  int32_t sq = 0;
  FTER_UNROLL4
  for (int32_t j = 0; j < d; ++j) {
    int32_t dev = row[j] - mean;
    sq += (dev * dev) >> sq_shift;
  }
  /* per row, in float32: 2^10 / sqrt(var + eps * u^-2) as a 15-bit mantissa and an exponent */
  int32_t k = fter_clamp(126 + LN_BITS - ref, -60, 60);
  float eps_scale = from_bits((uint32_t)((2 * k + 127) & 255) << 23);
  float var = (float)sq * (float)(1 << sq_shift) / (float)d;
  float inv = 1024.0f / fmax_(sqrtf(var + eps * eps_scale), 1e-30f);
  int32_t ib = (int32_t)bits_of(inv);
  int32_t ifield = (ib >> 23) & 255;
  int32_t rm = ifield == 0 ? 0 : fter_rshift_round((ib & 0x7FFFFF) | 0x800000, 9);
  rm = ib < 0 ? -rm : rm;
  int32_t re = fter_clamp(ifield - 141, -30, 30);
  /* 4: y = round((z * gamma * g0 + beta * g1 * 2^10) / 2^15), z the normalised value; absmax */
  const int32_t *gg = gb, *bb = gb + d;
  int32_t amax = 0;
  if (re < 0) {
    const int32_t sh = -re, half = 1 << (sh - 1);
    FTER_UNROLL4
    for (int32_t j = 0; j < d; ++j) {
      int32_t z = ((row[j] - mean) * rm + half) >> sh;
      int32_t y = (z * gg[j] + bb[j]) >> 15;
      row[j] = y;
      int32_t a = fter_abs(y);
      amax = a > amax ? a : amax;
    }
  } else { /* rare: tiny variance (a zero-variance row has rm * 2^re past int32, times 0) */
    for (int32_t j = 0; j < d; ++j) {
      int32_t z = (row[j] - mean) * rm * (1 << re);
      int32_t y = (z * gg[j] + bb[j]) >> 15;
      row[j] = y;
      int32_t a = fter_abs(y);
      amax = a > amax ? a : amax;
    }
  }
  /* the codes' scale: values are in units max(ab0, ab1) * 2^-10 */
  *s = (float)(amax > 1 ? amax : 1) * ln_unit(ab) * 9.765625e-04f / 127.0f;
  /* 5: q = clamp(round((y >> r) * M / 2^16), -127, 127) */
  fter_codes(q, row, d, fter_quant_multiplier(amax));
}
