/* Reference int8 attention rows: one query row against all keys of a head,
 * and one row of probabilities times V, written for clarity. */
#include "fter_kernels.h"

void fter_qk_row_ref(int32_t *scores, const int8_t *q, const int8_t *k, int32_t hd, int32_t n,
                     int32_t k_stride) {
  for (int32_t j = 0; j < n; ++j) {
    int32_t s = 0;
    for (int32_t c = 0; c < hd; ++c) s += (int32_t)q[c] * k[j * k_stride + c];
    scores[j] += s;
  }
}

void fter_pv_row_ref(int32_t *out, const uint8_t *p, const int8_t *v, int32_t n, int32_t hd,
                     int32_t v_stride) {
  for (int32_t c = 0; c < hd; ++c) {
    int32_t s = 0;
    for (int32_t j = 0; j < n; ++j) s += (int32_t)p[j] * v[j * v_stride + c];
    out[c] += s;
  }
}
