/* The integer-mode contract's per-element ops in C (schedules/integer/intmath.py), shared by the
 * C epilogues (layernorm_int.c, epilogue_int.c).  Private to the kernels: static inline, int32
 * only; the callers keep every intermediate inside int32 as the contract does. */
#ifndef FTER_INTMATH_H_
#define FTER_INTMATH_H_

#include <stdint.h>

enum { FTER_QUANT_SHIFT = 16 };

static inline int32_t fter_clamp(int32_t v, int32_t lo, int32_t hi) {
  return v < lo ? lo : (v > hi ? hi : v);
}

/* intmath.rshift_round: round(v / 2^s), half up, 1 <= s <= 30 */
static inline int32_t fter_rshift_round(int32_t v, int32_t s) { return (v + (1 << (s - 1))) >> s; }

/* intmath.dequant with the row's factor ms and es_base = -(es + abits + frac) precomputed:
 * round(acc * round(cm * ms / 2^abits) / 2^sh) + bias, sh = clamp(es_base - ce, 1, 30) */
static inline int32_t fter_dequant(int32_t acc, int32_t cm, int32_t ce, int32_t bias, int32_t ms,
                                   int32_t es_base, int32_t abits) {
  const int32_t c = fter_rshift_round(cm * ms, abits);
  return fter_rshift_round(acc * c, fter_clamp(es_base - ce, 1, 30)) + bias;
}

/* intmath.quant8 with the row's packed multiplier split into r = packed >> 24 and
 * m = packed & 0xFFFFFF: clamp(round((x >> r) * m / 2^16), -127, 127) */
static inline int8_t fter_quant8(int32_t x, int32_t r, int32_t m) {
  return (int8_t)fter_clamp(fter_rshift_round((x >> r) * m, FTER_QUANT_SHIFT), -127, 127);
}

#endif /* FTER_INTMATH_H_ */
