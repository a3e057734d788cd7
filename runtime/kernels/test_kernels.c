/* Kernel test program (host and Xtensa simulator, driven by
 * tests/test_kernels_c.py).  For each case from the input stream it places
 * the data at the requested offsets from 16-byte-aligned buffers, runs the
 * reference, the optimised, the public (dispatched) and, for the ternary
 * matmuls, the LUT kernel, checks that all agree bit for bit, writes the
 * result and reports cycle counts as FTER_COUNT c<case>_ref / _opt / _lut.
 *
 * Input: int32 case count, then per case int32 header
 *   {op, k, n, stride, x_off, w_off} followed by the operands:
 *   op 0/1 (tmm b2/b3): x int8[k], w uint8[n*stride], acc int32[n]
 *   op 2 (dot_s8):      a int8[k], b int8[k]                 (n, stride unused)
 *   op 3 (dot_u8s8):    p uint8[k], v int8[k*stride]          (n unused)
 * Output per case: int32[n] for op 0/1, int32[1] for op 2/3.
 * Exit code 1 on a mismatch, 2 on malformed input. */
#include <stdint.h>

#include "fter_kernels.h"
#include "harness.h"

#define MAX_BYTES (64 * 1024)
#define MAX_N 64


static int8_t xbuf[MAX_BYTES] __attribute__((aligned(16)));
static uint8_t wbuf[MAX_BYTES] __attribute__((aligned(16)));
static int32_t acc_in[MAX_N], acc_ref[MAX_N], acc_opt[MAX_N], acc_pub[MAX_N], acc_lut[MAX_N];

static void count(const char *suffix, int32_t idx, uint32_t cycles) {
  char name[32] = "c";
  char digits[12];
  int nd = 0, at = 1;
  do {
    digits[nd++] = (char)('0' + idx % 10);
    idx /= 10;
  } while (idx > 0);
  while (nd > 0) name[at++] = digits[--nd];
  while (*suffix != '\0' && at < 31) name[at++] = *suffix++;
  name[at] = '\0';
  fter_count(name, cycles);
}

static int run_tmm(int32_t op, int32_t idx, int32_t k, int32_t n, int32_t stride, const int8_t *x,
                   const uint8_t *w) {
  typedef void (*tmm_fn)(int32_t *, const int8_t *, const uint8_t *, int32_t, int32_t, int32_t);
  tmm_fn ref = op == 0 ? fter_tmm_b2_ref : fter_tmm_b3_ref;
  tmm_fn opt = op == 0 ? fter_tmm_b2_xtensa : fter_tmm_b3_xtensa;
  tmm_fn pub = op == 0 ? fter_tmm_b2 : fter_tmm_b3;
  tmm_fn lut = op == 0 ? fter_tmm_b2_lut_xtensa : fter_tmm_b3_lut_xtensa;
  for (int32_t j = 0; j < n; ++j) acc_ref[j] = acc_opt[j] = acc_pub[j] = acc_lut[j] = acc_in[j];
  uint32_t t0 = fter_cycles();
  ref(acc_ref, x, w, k, n, stride);
  uint32_t t1 = fter_cycles();
  opt(acc_opt, x, w, k, n, stride);
  uint32_t t2 = fter_cycles();
  pub(acc_pub, x, w, k, n, stride);
  uint32_t t3 = fter_cycles();
  lut(acc_lut, x, w, k, n, stride);
  count("_ref", idx, t1 - t0);
  count("_opt", idx, t2 - t1);
  count("_lut", idx, fter_cycles() - t3);
  for (int32_t j = 0; j < n; ++j) {
    if (acc_ref[j] != acc_opt[j] || acc_ref[j] != acc_pub[j] || acc_ref[j] != acc_lut[j]) {
      fter_log("MISMATCH case ");
      fter_log_int(idx);
      fter_log(" row ");
      fter_log_int(j);
      fter_log("\n");
      return 1;
    }
  }
  fter_write_output(acc_ref, (size_t)n * sizeof(int32_t));
  return 0;
}

static int run_dot(int32_t op, int32_t idx, int32_t k, int32_t stride, const int8_t *a,
                   const uint8_t *b) {
  int32_t r, o, p;
  uint32_t t0 = fter_cycles(), t1, t2;
  if (op == 2) {
    r = fter_dot_s8_ref(a, (const int8_t *)b, k);
    t1 = fter_cycles();
    o = fter_dot_s8_xtensa(a, (const int8_t *)b, k);
    t2 = fter_cycles();
    p = fter_dot_s8(a, (const int8_t *)b, k);
  } else {
    r = fter_dot_u8s8_ref((const uint8_t *)a, (const int8_t *)b, k, stride);
    t1 = fter_cycles();
    o = fter_dot_u8s8_xtensa((const uint8_t *)a, (const int8_t *)b, k, stride);
    t2 = fter_cycles();
    p = fter_dot_u8s8((const uint8_t *)a, (const int8_t *)b, k, stride);
  }
  count("_ref", idx, t1 - t0);
  count("_opt", idx, t2 - t1);
  if (r != o || r != p) {
    fter_log("MISMATCH case ");
    fter_log_int(idx);
    fter_log("\n");
    return 1;
  }
  fter_write_output(&r, sizeof r);
  return 0;
}

int main(int argc, char **argv) {
  (void)argc;
  (void)argv;
  int32_t cases;
  if (fter_read_input(&cases, sizeof cases) != 0) return 2;
  for (int32_t idx = 0; idx < cases; ++idx) {
    int32_t h[6];
    if (fter_read_input(h, sizeof h) != 0) return 2;
    const int32_t op = h[0], k = h[1], n = h[2], stride = h[3], x_off = h[4], w_off = h[5];
    const int32_t w_bytes = op <= 1 ? n * stride : (op == 2 ? k : k * stride);
    if (op < 0 || op > 3 || n > MAX_N || x_off < 0 || x_off > 15 || w_off < 0 || w_off > 15 ||
        k + x_off > MAX_BYTES || w_bytes + w_off > MAX_BYTES)
      return 2;
    int8_t *x = xbuf + x_off;
    uint8_t *w = wbuf + w_off;
    fter_fence(xbuf, (size_t)x_off, (size_t)(x_off + k), MAX_BYTES);
    fter_fence(wbuf, (size_t)w_off, (size_t)(w_off + w_bytes), MAX_BYTES);
    fter_fence(acc_opt, 0, (size_t)n * sizeof(int32_t), sizeof acc_opt);
    fter_fence(acc_pub, 0, (size_t)n * sizeof(int32_t), sizeof acc_pub);
    fter_fence(acc_lut, 0, (size_t)n * sizeof(int32_t), sizeof acc_lut);
    if (fter_read_input(x, (size_t)k) != 0 || fter_read_input(w, (size_t)w_bytes) != 0) return 2;
    int rc;
    if (op <= 1) {
      if (fter_read_input(acc_in, (size_t)n * sizeof(int32_t)) != 0) return 2;
      rc = run_tmm(op, idx, k, n, stride, x, w);
    } else {
      rc = run_dot(op, idx, k, stride, x, w);
    }
    if (rc != 0) return rc;
  }
  fter_log("kernels ok\n");
  return 0;
}
