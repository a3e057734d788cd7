/* The integer-mode contract's per-element ops in C (schedules/integer/intmath.py), shared by the
 * C epilogues (layernorm_int.c, epilogue_int.c).  Private to the kernels: static inline, int32
 * only; the callers keep every intermediate inside int32 as the contract does. */
#ifndef FTER_INTMATH_H_
#define FTER_INTMATH_H_

#include <stdint.h>

enum { FTER_QUANT_SHIFT = 16 };

/* Before a short per-element loop: Debian's lx106 GCC, which also builds the LX7 code here, emits
 * no zero-overhead loops, so each iteration pays a counter and a branch; unrolled by 4 the
 * epilogues' passes run 5-7 % fewer instructions (tests/test_integer_c.py prints the counts). */
#if defined(__GNUC__) && !defined(__clang__)
#define FTER_UNROLL4 _Pragma("GCC unroll 4")
#else
#define FTER_UNROLL4
#endif

/* (The LX7's MIN/MAX instructions in inline asm were measured slower here: GCC must then keep
 * the bounds in registers, and the kernels' inner loops are short of them.) */
static inline int32_t fter_min(int32_t a, int32_t b) { return a < b ? a : b; }
static inline int32_t fter_max(int32_t a, int32_t b) { return a > b ? a : b; }

static inline int32_t fter_abs(int32_t v) { return v < 0 ? -v : v; }

/* lo <= hi */
static inline int32_t fter_clamp(int32_t v, int32_t lo, int32_t hi) {
  return fter_min(fter_max(v, lo), hi);
}

/* intmath.rshift_round: round(v / 2^s), half up, 1 <= s <= 30 */
static inline int32_t fter_rshift_round(int32_t v, int32_t s) { return (v + (1 << (s - 1))) >> s; }

/* The same rounding for a shift known at run time, given as s1 = s - 1 (0 <= s1 <= 29):
 * floor((v + 2^(s-1)) / 2^s) == floor((floor(v / 2^(s-1)) + 1) / 2), one variable shift instead of
 * building 2^(s-1) with a second one (and no int32 overflow near 2^31). */
static inline int32_t fter_rshift1_round(int32_t v, int32_t s1) { return ((v >> s1) + 1) >> 1; }

/* intmath.fixed_from_bits (LN_BITS = 14): the float with bits b read as an integer relative to
 * the row's largest exponent field ref, round(|f| * 2^(140 - ref)) with f's sign; zero and
 * subnormals read as 0, and the shift clamps as the contract's (ref >= the row's fields). */
static inline int32_t fter_fixed_from_bits(int32_t b, int32_t ref) {
  const int32_t field = (b >> 23) & 255;
  int32_t mag = 0;
  if (field != 0)
    mag = fter_rshift1_round((b & 0x7FFFFF) | 0x800000, fter_clamp(ref + 9 - field, 0, 29));
  return b < 0 ? -mag : mag;
}

/* intmath.dequant with the row's factor ms and es1 = -(es + abits + frac) - 1 precomputed:
 * round(acc * floor(cm * ms / 2^abits) / 2^sh) + bias, sh = clamp(es1 + 1 - ce, 1, 30) (the
 * rounding in the s - 1 form) */
static inline int32_t fter_dequant(int32_t acc, int32_t cm, int32_t ce, int32_t bias, int32_t ms,
                                   int32_t es1, int32_t abits) {
  const int32_t c = (cm * ms) >> abits;
  return fter_rshift1_round(acc * c, fter_clamp(es1 - ce, 0, 29)) + bias;
}

/* intmath.quant8 with the row's packed multiplier split into r = packed >> 24 and
 * m = packed & 0xFFFFFF: clamp(round((x >> r) * m / 2^16), -127, 127) */
static inline int8_t fter_quant8(int32_t x, int32_t r, int32_t m) {
  return (int8_t)fter_clamp(fter_rshift_round((x >> r) * m, FTER_QUANT_SHIFT), -127, 127);
}

/* intmath.quant_multiplier of an absmax a, packed: r in bits 24..27 with (A >> r) < 2^16 for
 * A = max(a, 1), M = round(127 * 2^16 / (A >> r)) in bits 0..23 (one division, once per row or
 * channel) */
static inline int32_t fter_quant_multiplier(int32_t a) {
  if (a < 1) a = 1;
  int32_t r = 0;
  for (int32_t bit = 16; bit < 31; ++bit) r += a >= (1 << bit);
  int32_t ar = a >> r;
  if (ar < 1) ar = 1;
  return ((127 << FTER_QUANT_SHIFT) + (ar >> 1)) / ar + (r << 24);
}

#if defined(FTER_PIE) && defined(__XTENSA__)
/* fter_codes as one LX7 zero-overhead loop (epilogue_int.c) */
void fter_codes_lx7(int8_t *q, const int32_t *v, int32_t n, int32_t r, int32_t m);

/* fter_fixed_from_bits on the LX7's FPU, for loops in asm: FP register FR = the float at byte O of
 * %[px] times f2 = 2^(140 - ref) (fter_fpu_scale), an exact product (one below 2^-126 may flush,
 * but reads as 0 either way); TRUNC.S with scale 1 gives %[T] = the sign times floor(2 |y|),
 * exactly the contract's m24 >> (sh - 1); its magnitude's ((. + 1) >> 1) with the sign back is
 * %[R] (%[U] scratch).  For rows with fter_fpu_ref(ref): the scale is a normal float and no
 * element is Inf or NaN.  The functions holding these loops are out of line with no float value
 * live across them; FTER_FP_CLOBBERS names the FP registers to a compiler that allocates them. */
#define FTER_FPU_FIXED_AT(O, FR, R, T, U) \
  "lsi    " FR ", %[px], " O "\n"         \
  "mul.s  " FR ", " FR ", f2\n"           \
  "trunc.s %[" T "], " FR ", 1\n"         \
  "abs    %[" R "], %[" T "]\n"           \
  "addi   %[" R "], %[" R "], 1\n"        \
  "srai   %[" R "], %[" R "], 1\n"        \
  "neg    %[" U "], %[" R "]\n"           \
  "movltz %[" R "], %[" U "], %[" T "]\n"
#ifdef __XTENSA_HARD_FLOAT__
#define FTER_FP_CLOBBERS "memory", "f0", "f1", "f2"
#else
#define FTER_FP_CLOBBERS "memory"
#endif
static inline int fter_fpu_ref(int32_t ref) { return ref >= 13 && ref <= 254; }
static inline int32_t fter_fpu_scale(int32_t ref) { return (267 - ref) << 23; }
#endif

/* q[j] = quant8(v[j]) for j < n with one packed multiplier (fter_quant_multiplier) */
static inline void fter_codes(int8_t *q, const int32_t *v, int32_t n, int32_t packed) {
  const int32_t r = packed >> 24, m = packed & 0xFFFFFF;
#if defined(FTER_PIE) && defined(__XTENSA__)
  fter_codes_lx7(q, v, n, r, m);
#else
  FTER_UNROLL4
  for (int32_t j = 0; j < n; ++j) q[j] = fter_quant8(v[j], r, m);
#endif
}

#endif /* FTER_INTMATH_H_ */
