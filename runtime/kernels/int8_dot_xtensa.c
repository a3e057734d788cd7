/* int8 dot products unrolled by four with independent accumulators: on the
 * in-order Xtensa core each step is l8si/l8ui + mull + add, and the unroll
 * pays the loop branch once per four products.  32-bit loads do not help
 * here: extracting a signed byte from a word costs as much as l8si. */
#include "fter_kernels.h"

int32_t fter_dot_s8_xtensa(const int8_t *a, const int8_t *b, int32_t n) {
  int32_t s0 = 0, s1 = 0, s2 = 0, s3 = 0;
  int32_t i = 0;
  for (; i + 4 <= n; i += 4) {
    s0 += (int32_t)a[i] * b[i];
    s1 += (int32_t)a[i + 1] * b[i + 1];
    s2 += (int32_t)a[i + 2] * b[i + 2];
    s3 += (int32_t)a[i + 3] * b[i + 3];
  }
  for (; i < n; ++i) s0 += (int32_t)a[i] * b[i];
  return (s0 + s1) + (s2 + s3);
}

int32_t fter_dot_u8s8_xtensa(const uint8_t *p, const int8_t *v, int32_t n, int32_t v_stride) {
  int32_t s0 = 0, s1 = 0, s2 = 0, s3 = 0;
  const int32_t step4 = 4 * v_stride;
  int32_t i = 0;
  for (; i + 4 <= n; i += 4, v += step4) {
    s0 += (int32_t)p[i] * v[0];
    s1 += (int32_t)p[i + 1] * v[v_stride];
    s2 += (int32_t)p[i + 2] * v[2 * v_stride];
    s3 += (int32_t)p[i + 3] * v[3 * v_stride];
  }
  for (; i < n; ++i, v += v_stride) s0 += (int32_t)p[i] * v[0];
  return (s0 + s1) + (s2 + s3);
}
