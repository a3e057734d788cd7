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
    gb[2 * j] = (int32_t)g[j] * g0;
    gb[2 * j + 1] = (int32_t)b[j] * g1 * (1 << LN_NORM_FRAC) + (1 << 14); /* with the rounding half */
  }
}

#if defined(FTER_PIE) && defined(__XTENSA__)
/* Passes 1-4 on the LX7, one zero-overhead loop each (kept out of line: the core has one set of
 * loop registers), with MIN/MAX/MOVLTZ where GCC, building for the lx106, branches, and the
 * passes' constants and shift (SAR) set once per row instead of per element. */
#define LN_LOOP_FN static __attribute__((noinline))

/* Each pass takes two elements a loop step (ONE(O, G): the element at byte offset O of the row
 * and G of the factors), an odd d one more (the same asm statement on its own, after the loop). */
#define LN_PAIRS(ONE, STEPS, OPERANDS)                                                        \
  do {                                                                                         \
    __asm__ volatile(LN_PRE "loopnez %[p], 1f\n" ONE("0", "0") ONE("4", "8") STEPS "1:\n"     \
                     OPERANDS);                                                                \
    if (d & 1) __asm__ volatile(LN_PRE ONE("0", "0") OPERANDS);                               \
  } while (0)

/* pass 1: max(|bits|) of the row */
LN_LOOP_FN int32_t ln_top_lx7(const float *x, int32_t d) {
  int32_t top = 0, a;
#define LN_PRE ""
#define TOP_AT(O, G)                      \
  "l32i   %[a], %[px], " O "\n"            \
  "and    %[a], %[a], %[mask]\n"           \
  "max    %[top], %[top], %[a]\n"
#define TOP_OPERANDS                                                     \
  : [top] "+r"(top), [px] "+r"(x), [a] "=&r"(a)                          \
  : [p] "r"(d >> 1), [mask] "r"(0x7FFFFFFF)                               \
  : "memory"
  LN_PAIRS(TOP_AT, "addi   %[px], %[px], 8\n", TOP_OPERANDS);
#undef LN_PRE
  return top;
}

/* pass 2 on the FPU (FTER_FPU_FIXED_AT): row[j] = fter_fixed_from_bits(bits of x[j], ref) for
 * rows with fter_fpu_ref(ref); returns the row's sum */
LN_LOOP_FN int32_t ln_fixed_lx7(int32_t *row, const float *x, int32_t d, int32_t ref) {
  int32_t total = 0, a, b, t, u; /* no input of the asm is a constant GCC could share its register */
#define FIXED_AT(O, FR, R)                       \
  FTER_FPU_FIXED_AT(O, FR, R, "t", "u")          \
  "s32i   %[" R "], %[pr], " O "\n"              \
  "add    %[tot], %[tot], %[" R "]\n"
#define FIXED_OPERANDS                                                                         \
  : [tot] "+r"(total), [px] "+r"(x), [pr] "+r"(row), [a] "=&r"(a), [b] "=&r"(b), [t] "=&r"(t), \
    [u] "=&r"(u)                                                                               \
  : [p] "r"(d >> 1), [sc] "r"(fter_fpu_scale(ref))                                             \
  : FTER_FP_CLOBBERS
  __asm__ volatile("wfr    f2, %[sc]\n"
                   "loopnez %[p], 1f\n" FIXED_AT("0", "f0", "a") FIXED_AT("4", "f1", "b")
                   "addi   %[px], %[px], 8\n addi   %[pr], %[pr], 8\n"
                   "1:\n" FIXED_OPERANDS);
  if (d & 1) __asm__ volatile("wfr    f2, %[sc]\n" FIXED_AT("0", "f0", "a") FIXED_OPERANDS);
  return total;
}

/* pass 3: sum of ((row[j] - mean)^2 >> sq_shift) */
LN_LOOP_FN int32_t ln_sq_lx7(const int32_t *row, int32_t d, int32_t mean, int32_t sq_shift) {
  int32_t sq = 0, v;
#define LN_PRE "ssr    %[sh]\n"
#define SQ_AT(O, G)                       \
  "l32i   %[v], %[pr], " O "\n"            \
  "sub    %[v], %[v], %[mean]\n"           \
  "mull   %[v], %[v], %[v]\n"              \
  "sra    %[v], %[v]\n"                    \
  "add    %[sq], %[sq], %[v]\n"
#define SQ_OPERANDS                                                                   \
  : [sq] "+r"(sq), [pr] "+r"(row), [v] "=&r"(v)                                       \
  : [p] "r"(d >> 1), [mean] "r"(mean), [sh] "r"(sq_shift)                              \
  : "memory"
  LN_PAIRS(SQ_AT, "addi   %[pr], %[pr], 8\n", SQ_OPERANDS);
#undef LN_PRE
  return sq;
}

/* pass 4 (shift sh >= 1): row[j] = (z * gb[2j] + gb[2j + 1]) >> 15, z = ((row[j] - mean) * rm +
 * half) >> sh, whose numerator is row[j] * rm + (half - mean * rm) (%[k]: one add for the
 * subtraction and the rounding; the products wrap, the sum is the exact int32); returns
 * max(|row[j]|) */
LN_LOOP_FN int32_t ln_norm_lx7(int32_t *row, const int32_t *gb, int32_t d, int32_t mean,
                               int32_t rm, int32_t sh) {
  int32_t amax = 0, v, t;
#define LN_PRE "ssr    %[sh]\n"
#define NORM_AT(O, G)                     \
  "l32i   %[v], %[pr], " O "\n"            \
  "mull   %[v], %[v], %[rm]\n"             \
  "add    %[v], %[v], %[k]\n"              \
  "sra    %[v], %[v]\n"                    \
  "l32i   %[t], %[pg], " G "\n"            \
  "mull   %[v], %[v], %[t]\n"              \
  "l32i   %[t], %[pg], " G "+4\n"          \
  "add    %[v], %[v], %[t]\n"              \
  "srai   %[v], %[v], 15\n"                \
  "s32i   %[v], %[pr], " O "\n"            \
  "abs    %[v], %[v]\n"                    \
  "max    %[amax], %[amax], %[v]\n"
#define NORM_OPERANDS                                                                        \
  : [amax] "+r"(amax), [pr] "+r"(row), [pg] "+r"(gb), [v] "=&r"(v), [t] "=&r"(t)           \
  : [p] "r"(d >> 1), [rm] "r"(rm), [sh] "r"(sh),                                          \
    [k] "r"((int32_t)(((uint32_t)1 << (sh - 1)) - (uint32_t)mean * (uint32_t)rm))         \
  : "memory"
  LN_PAIRS(NORM_AT, "addi   %[pr], %[pr], 8\n addi   %[pg], %[pg], 16\n", NORM_OPERANDS);
#undef LN_PRE
  return amax;
}
#define FTER_LN_LX7 1
#endif

void fter_ln_row_i8(const float *x, const int32_t *gb, const float *ab, int8_t *q, float *s,
                    int32_t *row, int32_t d, int32_t sq_shift, float eps) {
  /* 1: the largest |x| as bits (for non-negative floats the integer order is the float order) */
#ifdef FTER_LN_LX7
  const int32_t top = ln_top_lx7(x, d);
#else
  int32_t top = 0;
  FTER_UNROLL4
  for (int32_t j = 0; j < d; ++j) {
    int32_t a = (int32_t)(bits_of(x[j]) & 0x7FFFFFFFu);
    top = a > top ? a : top;
  }
#endif
  /* 2: X = round(x * 2^(126 + LN_BITS - field_ref)), and the row's sum */
  int32_t ref = top >> 23;
  if (ref < 1) ref = 1;
  int32_t total = 0;
#ifdef FTER_LN_LX7
  if (fter_fpu_ref(ref))
    total = ln_fixed_lx7(row, x, d, ref);
  else
#endif
  {
    FTER_UNROLL4
    for (int32_t j = 0; j < d; ++j) {
      const int32_t mag = fter_fixed_from_bits((int32_t)bits_of(x[j]), ref);
      row[j] = mag;
      total += mag;
    }
  }
  /* mean = floor((total + d/2) / d) */
  int32_t num = total + d / 2;
  int32_t mean = num / d;
  if (num % d < 0) mean -= 1;
  /* 3: sum of squared deviations, each term shifted right by sq_shift */
#ifdef FTER_LN_LX7
  const int32_t sq = ln_sq_lx7(row, d, mean, sq_shift);
#else
  int32_t sq = 0;
  FTER_UNROLL4
  for (int32_t j = 0; j < d; ++j) {
    int32_t dev = row[j] - mean;
    sq += (dev * dev) >> sq_shift;
  }
#endif
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
  int32_t amax = 0;
  if (re < 0) {
    const int32_t sh = -re;
#ifdef FTER_LN_LX7
    amax = ln_norm_lx7(row, gb, d, mean, rm, sh);
#else
    const int32_t half = 1 << (sh - 1);
    FTER_UNROLL4
    for (int32_t j = 0; j < d; ++j) {
      int32_t z = ((row[j] - mean) * rm + half) >> sh;
      int32_t y = (z * gb[2 * j] + gb[2 * j + 1]) >> 15;
      row[j] = y;
      int32_t a = fter_abs(y);
      amax = a > amax ? a : amax;
    }
#endif
  } else { /* rare: tiny variance (a zero-variance row has rm * 2^re past int32, times 0) */
    for (int32_t j = 0; j < d; ++j) {
      int32_t z = (row[j] - mean) * rm * (1 << re);
      int32_t y = (z * gb[2 * j] + gb[2 * j + 1]) >> 15;
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
