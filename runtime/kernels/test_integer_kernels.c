/* Test program of the integer-mode C kernels (layernorm_int.c, epilogue_int.c) on the host and
 * in the Xtensa simulator, driven by tests/test_integer_c.py, which compares the output with the
 * contract's NumPy reference.
 *
 * Input: int32 case count, then per case an int32 op and its operands:
 *   op 0 (LayerNorm): int32 {d, sq_shift, rows}, float32 eps, float32 ab[2], int8 g[d],
 *        int8 b[d], float32 x[rows * d]; output int8 q[rows * d], float32 s[rows];
 *   op 1 (values and row max): int32 {t, nb, acc_stride, abits}, int32 acc[t * acc_stride],
 *        cm[nb], ce[nb], cb[nb], rm[t], re[t]; output int32 vmax[t], int32
 *        acc[t * acc_stride] (the values in place);
 *   op 2 (GELU codes): int32 {t, nb, v_stride}, int32 v[t * v_stride], tab[1025], mult[t];
 *        output int8 q[t * nb] (and the same codes written in place of the values, checked
 *        here: exit code 1 where they differ);
 *   op 3 (softmax row): int32 {n, h, sbits}, int32 scores[h * n], qm[h], qe[h], km[n * h],
 *        ke[n * h]; output uint8 p[h * n];
 *   op 4 (channel codes), op 5 (row codes): the tile as op 1 without vmax; output int8
 *        y[t * nb], float32 scale[nb] (op 4) or scale[t] (op 5), int32 acc[t * acc_stride]
 *        (the values in place); op 7 (row absmax codes): as op 5 with int32 amax[t] in place of
 *        the float scales;
 *   op 8 (attention output codes): int32 {n, h, hd}, int32 pacc[n * h * hd], vm[h * hd];
 *        per row: output int8 q[h * hd], int32 amax, int32 pacc row (the values in place);
 *   op 6 (residual): int32 {t, nb, stride}, int32 acc[t * stride], float32 alpha[nb], s[t],
 *        bias[nb], res[t * stride]; output float32 y[t * stride] (computed in place of res).
 *   op 9 (patch codes): int32 {c, gh, gw, p}, float32 img[c * gh*p * gw*p]; output int8
 *        q[gh*gw * c*p*p], float32 s[gh*gw].
 *   op 10 (GELU tables): no operands; output int32 fter_gelu_table_entry(k) for k <= 1024,
 *        int16 lut[FTER_GELU_LUT_SIZE] (fter_gelu_lut_fill).
 *   op 11 (exp table): no operands; output uint16 lut[FTER_EXP_LUT_SIZE] (fter_exp_lut_fill).
 * Reports the instructions of each case as FTER_COUNT k<case>.  Exit code 2 on malformed
 * input. */
#include <stdint.h>

#include "fter_kernels.h"
#include "harness.h"

#define MAX_D 1024
#define MAX_ELEMS (16 * 1024)
#define MAX_ROWS 256

static float x[MAX_ELEMS];
static int8_t g[MAX_D], b[MAX_D], q[MAX_ELEMS];
static int32_t scratch[MAX_D], gb[2 * MAX_D];
static float s[MAX_ROWS];
static int32_t acc[MAX_ELEMS], cm[MAX_D], ce[MAX_D], cb[MAX_D], rm[MAX_ROWS], re[MAX_ROWS],
    tab[1025], mult[MAX_ROWS], kman[MAX_ELEMS], kexp[MAX_ELEMS];

/* Every buffer addressable again before a case: a case fences (fter_fence) the buffers it
 * checks to the sizes it uses; a buffer it does not fence must not keep an earlier case's. */
static void open_buffers(void) {
#define OPEN(buf) fter_fence(buf, 0, sizeof buf, sizeof buf)
  OPEN(x), OPEN(g), OPEN(b), OPEN(q), OPEN(scratch), OPEN(gb), OPEN(s), OPEN(acc), OPEN(cm);
  OPEN(ce), OPEN(cb), OPEN(rm), OPEN(re), OPEN(tab), OPEN(mult), OPEN(kman), OPEN(kexp);
#undef OPEN
}

static void count(int32_t idx, uint32_t cycles) {
  char name[16] = "k";
  int32_t at = 1, v = idx, nd = 0;
  char digits[12];
  do {
    digits[nd++] = (char)('0' + v % 10);
    v /= 10;
  } while (v > 0);
  while (nd > 0) name[at++] = digits[--nd];
  name[at] = '\0';
  fter_count(name, cycles);
}

static int run_layernorm(int32_t idx) {
  int32_t h[3];
  float eps, ab[2];
  if (fter_read_input(h, sizeof h) != 0 || fter_read_input(&eps, sizeof eps) != 0 ||
      fter_read_input(ab, sizeof ab) != 0)
    return 2;
  const int32_t d = h[0], sq_shift = h[1], rows = h[2];
  if (d < 1 || d > MAX_D || rows < 1 || rows > MAX_ROWS || (int64_t)d * rows > MAX_ELEMS)
    return 2;
  fter_fence(x, 0, (size_t)(d * rows) * sizeof(float), sizeof x);
  fter_fence(q, 0, (size_t)(d * rows), sizeof q);
  fter_fence(scratch, 0, (size_t)d * sizeof(int32_t), sizeof scratch);
  fter_fence(gb, 0, (size_t)(2 * d) * sizeof(int32_t), sizeof gb);
  if (fter_read_input(g, (size_t)d) != 0 || fter_read_input(b, (size_t)d) != 0 ||
      fter_read_input(x, (size_t)(d * rows) * sizeof(float)) != 0)
    return 2;
  uint32_t t0 = fter_cycles();
  fter_ln_affine_i8(gb, g, b, ab, d);
  for (int32_t i = 0; i < rows; ++i)
    fter_ln_row_i8(x + i * d, gb, ab, q + i * d, s + i, scratch, d, sq_shift, eps);
  count(idx, fter_cycles() - t0);
  fter_write_output(q, (size_t)(d * rows));
  fter_write_output(s, (size_t)rows * sizeof(float));
  return 0;
}

/* op 2: a tile's accumulators and the channel and token tables */
static int read_tile(int32_t *t, int32_t *nb, int32_t *stride, int32_t *abits) {
  int32_t h[4];
  if (fter_read_input(h, sizeof h) != 0) return 2;
  *t = h[0], *nb = h[1], *stride = h[2], *abits = h[3];
  if (*t < 1 || *t > MAX_ROWS || *nb < 1 || *nb > MAX_D || *stride < *nb ||
      (int64_t)*t * *stride > MAX_ELEMS || *abits < 1 || *abits > 30)
    return 2;
  fter_fence(acc, 0, (size_t)(*t * *stride) * sizeof(int32_t), sizeof acc);
  if (fter_read_input(acc, (size_t)(*t * *stride) * sizeof(int32_t)) != 0 ||
      fter_read_input(cm, (size_t)*nb * sizeof(int32_t)) != 0 ||
      fter_read_input(ce, (size_t)*nb * sizeof(int32_t)) != 0 ||
      fter_read_input(cb, (size_t)*nb * sizeof(int32_t)) != 0 ||
      fter_read_input(rm, (size_t)*t * sizeof(int32_t)) != 0 ||
      fter_read_input(re, (size_t)*t * sizeof(int32_t)) != 0)
    return 2;
  return 0;
}

static int run_value_max(int32_t idx) {
  int32_t t, nb, stride, abits;
  if (read_tile(&t, &nb, &stride, &abits) != 0) return 2;
  fter_fence(mult, 0, (size_t)t * sizeof(int32_t), sizeof mult);
  static int32_t table[FTER_VALUE_TABLE_WORDS(MAX_D)];
  fter_fence(table, 0, (size_t)FTER_VALUE_TABLE_WORDS(nb) * sizeof(int32_t), sizeof table);
  fter_value_table(table, cm, ce, cb, nb, abits);
  uint32_t t0 = fter_cycles();
  fter_value_max_tile(mult, acc, table, rm, re, t, nb, stride, abits);
  count(idx, fter_cycles() - t0);
  fter_write_output(mult, (size_t)t * sizeof(int32_t));
  fter_write_output(acc, (size_t)(t * stride) * sizeof(int32_t));
  return 0;
}

static int run_gelu_codes(int32_t idx) {
  int32_t h[3];
  if (fter_read_input(h, sizeof h) != 0) return 2;
  const int32_t t = h[0], nb = h[1], stride = h[2];
  if (t < 1 || t > MAX_ROWS || nb < 1 || nb > MAX_D || stride < nb ||
      (int64_t)t * stride > MAX_ELEMS)
    return 2;
  fter_fence(acc, 0, (size_t)(t * stride) * sizeof(int32_t), sizeof acc);
  fter_fence(q, 0, (size_t)(t * nb), sizeof q);
  fter_fence(mult, 0, (size_t)t * sizeof(int32_t), sizeof mult);
  if (fter_read_input(acc, (size_t)(t * stride) * sizeof(int32_t)) != 0 ||
      fter_read_input(tab, sizeof tab) != 0 ||
      fter_read_input(mult, (size_t)t * sizeof(int32_t)) != 0)
    return 2;
  uint32_t t0 = fter_cycles();
  fter_gelu_codes_tile(q, acc, tab, mult, t, nb, nb, stride);
  count(idx, fter_cycles() - t0);
  /* in place, as the MLP writes them: the codes over the values (row stride `stride` bytes) */
  fter_fence(kman, 0, (size_t)(t * stride) * sizeof(int32_t), sizeof kman);
  for (int32_t i = 0; i < t * stride; ++i) kman[i] = acc[i];
  fter_gelu_codes_tile((int8_t *)kman, kman, tab, mult, t, nb, stride, stride);
  const int8_t *in_place = (const int8_t *)kman;
  for (int32_t i = 0; i < t; ++i)
    for (int32_t j = 0; j < nb; ++j)
      if (in_place[i * stride + j] != q[i * nb + j]) return 1;
  fter_write_output(q, (size_t)(t * nb));
  return 0;
}

static float scale[MAX_D];
static int32_t row_amax[MAX_ROWS];

/* op 4 (per channel), 5 (per row, float scales), 7 (per row, integer absmax) */
static int run_codes(int32_t idx, int32_t op) {
  int32_t t, nb, stride, abits;
  if (read_tile(&t, &nb, &stride, &abits) != 0) return 2;
  fter_fence(q, 0, (size_t)(t * nb), sizeof q);
  uint32_t t0 = fter_cycles();
  if (op == 5)
    fter_row_codes_tile(q, scale, acc, cm, ce, cb, rm, re, t, nb, nb, 1, stride, abits);
  else if (op == 7)
    fter_row_absmax_codes_tile(q, row_amax, acc, cm, ce, cb, rm, re, t, nb, nb, 1, stride, abits);
  else
    fter_channel_codes_tile(q, scale, acc, cm, ce, cb, rm, re, t, nb, nb, stride, abits);
  count(idx, fter_cycles() - t0);
  fter_write_output(q, (size_t)(t * nb));
  if (op == 7)
    fter_write_output(row_amax, (size_t)t * sizeof(int32_t));
  else
    fter_write_output(scale, (size_t)(op == 5 ? t : nb) * sizeof(float));
  fter_write_output(acc, (size_t)(t * stride) * sizeof(int32_t));
  return 0;
}

static int run_residual(int32_t idx) {
  int32_t h[3];
  if (fter_read_input(h, sizeof h) != 0) return 2;
  const int32_t t = h[0], nb = h[1], stride = h[2];
  if (t < 1 || t > MAX_ROWS || nb < 1 || nb > MAX_D || stride < nb ||
      (int64_t)t * stride > MAX_ELEMS)
    return 2;
  float *alpha = (float *)cm, *bias = (float *)cb, *res = x;
  fter_fence(acc, 0, (size_t)(t * stride) * sizeof(int32_t), sizeof acc);
  fter_fence(x, 0, (size_t)(t * stride) * sizeof(float), sizeof x);
  if (fter_read_input(acc, (size_t)(t * stride) * sizeof(int32_t)) != 0 ||
      fter_read_input(alpha, (size_t)nb * sizeof(float)) != 0 ||
      fter_read_input(s, (size_t)t * sizeof(float)) != 0 ||
      fter_read_input(bias, (size_t)nb * sizeof(float)) != 0 ||
      fter_read_input(res, (size_t)(t * stride) * sizeof(float)) != 0)
    return 2;
  uint32_t t0 = fter_cycles();
  fter_residual_tile(res, res, acc, alpha, s, bias, t, nb, stride, stride, stride);
  count(idx, fter_cycles() - t0);
  fter_write_output(res, (size_t)(t * stride) * sizeof(float));
  return 0;
}

static int run_attn_out(int32_t idx) {
  int32_t hdr[3];
  if (fter_read_input(hdr, sizeof hdr) != 0) return 2;
  const int32_t n = hdr[0], h = hdr[1], hd = hdr[2], d = h * hd;
  if (n < 1 || n > MAX_ROWS || h < 1 || hd < 1 || d > MAX_D || (int64_t)n * d > MAX_ELEMS)
    return 2;
  fter_fence(acc, 0, (size_t)(n * d) * sizeof(int32_t), sizeof acc);
  if (fter_read_input(acc, (size_t)(n * d) * sizeof(int32_t)) != 0 ||
      fter_read_input(cm, (size_t)d * sizeof(int32_t)) != 0)
    return 2;
  uint32_t t0 = fter_cycles();
  for (int32_t i = 0; i < n; ++i)
    fter_attn_out_codes_row(q + i * d, row_amax + i, acc + i * d, cm, h, hd, hd);
  count(idx, fter_cycles() - t0);
  for (int32_t i = 0; i < n; ++i) {
    fter_write_output(q + i * d, (size_t)d);
    fter_write_output(row_amax + i, sizeof(int32_t));
    fter_write_output(acc + i * d, (size_t)d * sizeof(int32_t));
  }
  return 0;
}

static int run_softmax(int32_t idx) {
  int32_t hdr[3];
  if (fter_read_input(hdr, sizeof hdr) != 0) return 2;
  const int32_t n = hdr[0], h = hdr[1], sbits = hdr[2];
  if (n < 1 || h < 1 || h > MAX_ROWS || (int64_t)n * h > MAX_ELEMS / 2 || sbits < 1 || sbits > 30)
    return 2;
  int32_t *scores = acc, *work = acc + n * h;
  fter_fence(acc, 0, (size_t)(2 * n * h) * sizeof(int32_t), sizeof acc);
  fter_fence(q, 0, (size_t)(n * h), sizeof q);
  if (fter_read_input(scores, (size_t)(n * h) * sizeof(int32_t)) != 0 ||
      fter_read_input(rm, (size_t)h * sizeof(int32_t)) != 0 ||
      fter_read_input(re, (size_t)h * sizeof(int32_t)) != 0 ||
      fter_read_input(kman, (size_t)(n * h) * sizeof(int32_t)) != 0 ||
      fter_read_input(kexp, (size_t)(n * h) * sizeof(int32_t)) != 0)
    return 2;
  /* the keys' factors as the attention block's k_eneg, k_emax and k_fact blocks make them */
  static int32_t kfac[2 * MAX_ELEMS], kneg[MAX_ROWS], kmax[MAX_ROWS];
  for (int32_t hh = 0; hh < h; ++hh) {
    kneg[hh] = -kexp[hh];
    kmax[hh] = kexp[hh];
    for (int32_t j = 1; j < n; ++j) {
      const int32_t e = kexp[j * h + hh];
      kneg[hh] = -e > kneg[hh] ? -e : kneg[hh];
      kmax[hh] = e > kmax[hh] ? e : kmax[hh];
    }
    for (int32_t j = 0; j < n; ++j) {
      const int32_t sh = 30 - kmax[hh] + kexp[j * h + hh];
      kfac[2 * (j * h + hh)] = kman[j * h + hh];
      kfac[2 * (j * h + hh) + 1] = 1 << (sh < 0 ? 0 : sh > 30 ? 30 : sh);
    }
  }
  uint8_t *p = (uint8_t *)q;
  uint32_t t0 = fter_cycles();
  fter_softmax_row_u8(p, work, scores, rm, re, kman, kexp, kfac, kneg, kmax, n, h, sbits,
                      n, n, n, h);
  count(idx, fter_cycles() - t0);
  fter_write_output(p, (size_t)(n * h));
  return 0;
}

static int run_patch(int32_t idx) {
  int32_t hdr[4];
  if (fter_read_input(hdr, sizeof hdr) != 0) return 2;
  const int32_t c = hdr[0], gh = hdr[1], gw = hdr[2], p = hdr[3];
  if (c < 1 || gh < 1 || gw < 1 || p < 1 || gh * gw > MAX_ROWS ||
      (int64_t)c * gh * gw * p * p > MAX_ELEMS)
    return 2;
  const int32_t n = gh * gw, f = c * p * p;
  fter_fence(x, 0, (size_t)(n * f) * sizeof(float), sizeof x);
  fter_fence(q, 0, (size_t)(n * f), sizeof q);
  if (fter_read_input(x, (size_t)(n * f) * sizeof(float)) != 0) return 2;
  uint32_t t0 = fter_cycles();
  for (int32_t t = 0; t < n; ++t) fter_patch_codes(q + t * f, s + t, x, t, c, p, gw, gh * p, gw * p);
  count(idx, fter_cycles() - t0);
  fter_write_output(q, (size_t)(n * f));
  fter_write_output(s, (size_t)n * sizeof(float));
  return 0;
}

static int32_t phi[1025];
static int16_t lut[FTER_GELU_LUT_SIZE];

static int run_gelu_tables(int32_t idx) {
  uint32_t t0 = fter_cycles();
  for (int32_t k = 0; k < 1025; ++k) phi[k] = fter_gelu_table_entry(k);
  fter_gelu_lut_fill(lut);
  count(idx, fter_cycles() - t0);
  fter_write_output(phi, sizeof phi);
  fter_write_output(lut, sizeof lut);
  return 0;
}

static uint16_t exp_lut[FTER_EXP_LUT_SIZE];

static int run_exp_table(int32_t idx) {
  uint32_t t0 = fter_cycles();
  fter_exp_lut_fill(exp_lut);
  count(idx, fter_cycles() - t0);
  fter_write_output(exp_lut, sizeof exp_lut);
  return 0;
}

int main(int argc, char **argv) {
  (void)argc;
  (void)argv;
  int32_t cases;
  if (fter_read_input(&cases, sizeof cases) != 0) return 2;
  /* as fter_kernels_init does before a model runs: not counted in a row */
  fter_softmax_init();
  fter_gelu_init();
  for (int32_t idx = 0; idx < cases; ++idx) {
    int32_t op;
    if (fter_read_input(&op, sizeof op) != 0) return 2;
    open_buffers();
    int rc = op == 0   ? run_layernorm(idx)
             : op == 1 ? run_value_max(idx)
             : op == 2 ? run_gelu_codes(idx)
             : op == 3 ? run_softmax(idx)
             : op == 4 || op == 5 || op == 7 ? run_codes(idx, op)
             : op == 6 ? run_residual(idx)
             : op == 8 ? run_attn_out(idx)
             : op == 9 ? run_patch(idx)
             : op == 10 ? run_gelu_tables(idx)
             : op == 11 ? run_exp_table(idx)
                       : 2;
    if (rc != 0) return rc;
  }
  fter_log("integer kernels ok\n");
  return 0;
}
