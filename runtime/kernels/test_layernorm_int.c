/* Test program of the integer LayerNorm row kernel (host and Xtensa simulator, driven by
 * tests/test_integer_c.py, which compares the output with the contract's NumPy reference).
 *
 * Input: int32 case count, then per case int32 {d, sq_shift, rows}, float32 eps,
 * float32 ab[2], int8 g[d], int8 b[d], float32 x[rows * d].
 * Output per case: int8 q[rows * d], float32 s[rows].  Reports the instructions of each case
 * as FTER_COUNT ln<case>.  Exit code 2 on malformed input. */
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

int main(int argc, char **argv) {
  (void)argc;
  (void)argv;
  int32_t cases;
  if (fter_read_input(&cases, sizeof cases) != 0) return 2;
  for (int32_t idx = 0; idx < cases; ++idx) {
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
    if (fter_read_input(g, (size_t)d) != 0 || fter_read_input(b, (size_t)d) != 0 ||
        fter_read_input(x, (size_t)(d * rows) * sizeof(float)) != 0)
      return 2;
    uint32_t t0 = fter_cycles();
    fter_ln_affine_i8(gb, g, b, ab, d);
    for (int32_t i = 0; i < rows; ++i)
      fter_ln_row_i8(x + i * d, gb, ab, q + i * d, s + i, scratch, d, sq_shift, eps);
    uint32_t t1 = fter_cycles();
    char name[16] = "ln";
    int32_t at = 2, v = idx;
    char digits[12];
    int32_t nd = 0;
    do {
      digits[nd++] = (char)('0' + v % 10);
      v /= 10;
    } while (v > 0);
    while (nd > 0) name[at++] = digits[--nd];
    name[at] = '\0';
    fter_count(name, t1 - t0);
    fter_write_output(q, (size_t)(d * rows));
    fter_write_output(s, (size_t)rows * sizeof(float));
  }
  fter_log("layernorm ok\n");
  return 0;
}
