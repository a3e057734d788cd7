/* Reference int8 dot products for attention (QK^T and P.V). */
#include "fter_kernels.h"

int32_t fter_dot_s8_ref(const int8_t *a, const int8_t *b, int32_t n) {
  int32_t sum = 0;
  for (int32_t i = 0; i < n; ++i) sum += (int32_t)a[i] * (int32_t)b[i];
  return sum;
}

int32_t fter_dot_u8s8_ref(const uint8_t *p, const int8_t *v, int32_t n, int32_t v_stride) {
  int32_t sum = 0;
  for (int32_t i = 0; i < n; ++i) sum += (int32_t)p[i] * (int32_t)v[i * v_stride];
  return sum;
}
