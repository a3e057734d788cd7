/* Epilogues of the integer projections (numerics="integer") over a weight-stationary tile of
 * t tokens x nb channels, as tight C loops.
 *
 * The contract is schedules/integer/intmath.py (dequant); the TensorIR blocks these kernels
 * replace (schedules/esp32s3/epilogue_intrin.py) state the same expressions, and
 * tests/test_integer_c.py checks the kernels bit for bit against the NumPy reference on the
 * host and the lx106.  Only int32 add, multiply, shift and compare.
 *
 * A tile's accumulator acc[t][nb] (row stride acc_stride) becomes values in Q12 through the
 * channels' scale mantissas/exponents cm, ce, the biases cb (Q12) and the tokens' rm, re:
 *   c  = round(cm[j] * rm[i] / 2^abits)            (abits: bits of |acc| <= 128 k)
 *   sh = clamp(-(ce[j] + re[i]) - abits - 12, 1, 30)
 *   V  = round(acc * c / 2^sh) + cb[j]
 * The per-row factors are read once per row, the per-channel ones once per element. */
#include "fter_kernels.h"

enum { VALUE_FRAC = 12 };

static inline int32_t clamp(int32_t v, int32_t lo, int32_t hi) {
  return v < lo ? lo : (v > hi ? hi : v);
}

static inline int32_t value(int32_t acc, int32_t cm, int32_t ce, int32_t cb, int32_t ms,
                            int32_t es_base, int32_t abits) {
  const int32_t c = (cm * ms + (1 << (abits - 1))) >> abits;
  const int32_t sh = clamp(es_base - ce, 1, 30);
  return ((acc * c + (1 << (sh - 1))) >> sh) + cb;
}

void fter_value_rowmax_tile(int32_t *vmax, const int32_t *acc, const int32_t *cm, const int32_t *ce,
                            const int32_t *cb, const int32_t *rm, const int32_t *re, int32_t t,
                            int32_t nb, int32_t acc_stride, int32_t abits) {
  for (int32_t i = 0; i < t; ++i) {
    const int32_t ms = rm[i], es_base = -re[i] - abits - VALUE_FRAC;
    const int32_t *a = acc + i * acc_stride;
    int32_t m = vmax[i];
    for (int32_t j = 0; j < nb; ++j) {
      const int32_t v = value(a[j], cm[j], ce[j], cb[j], ms, es_base, abits);
      m = v > m ? v : m;
    }
    vmax[i] = m;
  }
}
