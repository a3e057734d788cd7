/* Ternary matmul by table lookup ("LUT" micro-kernels, T-MAC style), portable C.
 *
 * A packed weight byte holds 5 (b3) or 4 (b2) ternary weights, so its contribution to a dot
 * product depends only on the byte and on the 5 (4) activations it covers.  For each group g
 * of activations the kernel tabulates T[g][c] = sum_t w_t(c) * x[g*per_byte + t] for all 256
 * byte values c, decoded exactly as the reference decodes them (b3 bytes 243..255, which the
 * packer never writes, keep their low five base-3 digits; b2 code 3 is weight 2), and then
 * acc[j] += sum_g T[g][w_j[g]]: one load and one add per weight byte and row instead of
 * decoding five weights.  Building the tables costs ~256 adds per group and call, so the
 * kernel pays off when one call covers many rows (n): the tuner picks it per shape.
 *
 * |T| <= 5 * 128 fits int16.  Activations past k count as 0, so padding weights never matter.
 * The tables live in a static buffer per worker (fter_parallel.h): the two halves of a split
 * kernel may look up at the same time. */
#include <stdint.h>

#include "fter_kernels.h"
#include "fter_parallel.h"

/* groups per K block: 40 b3 bytes = 200 weights, DeiT-Tiny's K = 192 in one block; 20 KiB */
#define LUT_GROUPS 40

static int16_t luts[FTER_WORKERS][LUT_GROUPS][256] __attribute__((aligned(16)));

/* T[c] in byte order by a base-3 counter: v = sum_t (d_t - 1) x_t changes by x_0 when digit 0
 * steps and by D_j = x_j - 2 (x_0 + ... + x_{j-1}) when digits 0..j-1 wrap from 2 to 0 and
 * digit j steps, so every entry is one add and one store with few live registers.  Bytes
 * 243..255 repeat 0..12 (the reference drops the sixth digit). */
#define B3_ROW9(p)                                                                \
  do {                                                                            \
    (p)[0] = (int16_t)v; v += x0; (p)[1] = (int16_t)v; v += x0; (p)[2] = (int16_t)v; \
    v += d1; (p)[3] = (int16_t)v; v += x0; (p)[4] = (int16_t)v; v += x0;          \
    (p)[5] = (int16_t)v; v += d1; (p)[6] = (int16_t)v; v += x0;                    \
    (p)[7] = (int16_t)v; v += x0; (p)[8] = (int16_t)v;                             \
    /* a compiler barrier: otherwise gcc computes the 27 values of three rows first and  \
     * spills them to the stack (measured 2x the instructions on the lx106) */        \
    __asm__ volatile("" ::: "memory");                                            \
  } while (0)

static void build_b3_group(int16_t *t, const int8_t *x, int32_t len) {
  int32_t xs[5];
  for (int32_t i = 0; i < 5; ++i) xs[i] = i < len ? x[i] : 0;
  const int32_t x0 = xs[0];
  const int32_t d1 = xs[1] - 2 * x0;
  const int32_t d2 = xs[2] - 2 * (x0 + xs[1]);
  const int32_t d3 = xs[3] - 2 * (x0 + xs[1] + xs[2]);
  const int32_t d4 = xs[4] - 2 * (x0 + xs[1] + xs[2] + xs[3]);
  int32_t v = -(x0 + xs[1] + xs[2] + xs[3] + xs[4]);
  int16_t *p = t;
  for (int32_t h4 = 0; h4 < 3; ++h4) {
    for (int32_t h3 = 0; h3 < 3; ++h3, p += 27) {
      B3_ROW9(p);
      v += d2;
      B3_ROW9(p + 9);
      v += d2;
      B3_ROW9(p + 18);
      v += d3;
    }
    v += d4 - d3; /* digit 3 wrapped: the step was d4, not d3 */
  }
  for (int32_t c = 243; c < 256; ++c) t[c] = t[c - 243];
}

/* T[lo + 16*hi] = L[lo] + L'[hi], each nibble two 2-bit codes (code - 1 = weight). */
static void build_b2_group(int16_t *t, const int8_t *x, int32_t len) {
  int32_t v[4];
  for (int32_t i = 0; i < 4; ++i) v[i] = i < len ? x[i] : 0;
  int32_t l[16], h[16];
  for (int32_t c = 0; c < 16; ++c) {
    l[c] = ((c & 3) - 1) * v[0] + ((c >> 2) - 1) * v[1];
    h[c] = ((c & 3) - 1) * v[2] + ((c >> 2) - 1) * v[3];
  }
  for (int32_t hi = 0; hi < 16; ++hi)
    for (int32_t lo = 0; lo < 16; ++lo) t[lo + 16 * hi] = (int16_t)(l[lo] + h[hi]);
}

/* acc[j] += sum over the block's groups of lut[g][row_j[g]]: two rows and two groups per step
 * (l16si reaches 510 bytes, so the second group's table gets its own pointer). */
static void lookup_rows(int16_t (*lut)[256], int32_t *acc, const uint8_t *w, int32_t n,
                        int32_t w_stride, int32_t groups) {
  int32_t j = 0;
  for (; j + 1 < n; j += 2) {
    const uint8_t *ra = w + j * w_stride, *rb = ra + w_stride;
    const int16_t *t0 = lut[0], *t1 = lut[1];
    int32_t sa = 0, sb = 0, g = 0;
    for (; g + 1 < groups; g += 2, t0 += 512, t1 += 512) {
      sa += t0[ra[g]] + t1[ra[g + 1]];
      sb += t0[rb[g]] + t1[rb[g + 1]];
    }
    if (g < groups) {
      sa += t0[ra[g]];
      sb += t0[rb[g]];
    }
    acc[j] += sa;
    acc[j + 1] += sb;
  }
  if (j < n) {
    const uint8_t *ra = w + j * w_stride;
    const int16_t *t = lut[0];
    int32_t sa = 0;
    for (int32_t g = 0; g < groups; ++g, t += 256) sa += t[ra[g]];
    acc[j] += sa;
  }
}

/* Per K block of LUT_GROUPS weight bytes: the block's tables, then every row's lookups. */
static void tmm_lut(int32_t *acc, const int8_t *x, const uint8_t *w, int32_t k, int32_t n,
                    int32_t w_stride, int32_t per_byte,
                    void (*build_group)(int16_t *, const int8_t *, int32_t)) {
  int16_t (*lut)[256] = luts[fter_worker_id()];
  int32_t byte0 = 0;
  for (int32_t i0 = 0; i0 < k; i0 += per_byte * LUT_GROUPS, byte0 += LUT_GROUPS) {
    int32_t groups = 0;
    for (int32_t i = i0; i < k && groups < LUT_GROUPS; i += per_byte, ++groups)
      build_group(lut[groups], x + i, k - i);
    lookup_rows(lut, acc, w + byte0, n, w_stride, groups);
  }
}

void fter_tmm_b3_lut_xtensa(int32_t *acc, const int8_t *x, const uint8_t *w, int32_t k, int32_t n,
                            int32_t w_stride) {
  tmm_lut(acc, x, w, k, n, w_stride, 5, build_b3_group);
}

void fter_tmm_b2_lut_xtensa(int32_t *acc, const int8_t *x, const uint8_t *w, int32_t k, int32_t n,
                            int32_t w_stride) {
  tmm_lut(acc, x, w, k, n, w_stride, 4, build_b2_group);
}
