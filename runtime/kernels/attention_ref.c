/* Reference int8 attention rows: one query row against all keys of a head,
 * and one row of probabilities times V, written for clarity.  The _set forms write their
 * outputs, the others add to them. */
#include "fter_kernels.h"

static void qk_row(int32_t *scores, const int8_t *q, const int8_t *k, int32_t hd, int32_t n,
                   int32_t k_stride, int set) {
  for (int32_t j = 0; j < n; ++j) {
    int32_t s = 0;
    for (int32_t c = 0; c < hd; ++c) s += (int32_t)q[c] * k[j * k_stride + c];
    scores[j] = set ? s : scores[j] + s;
  }
}

static void pv_row(int32_t *out, const uint8_t *p, const int8_t *v, int32_t n, int32_t hd,
                   int32_t v_stride, int set) {
  for (int32_t c = 0; c < hd; ++c) {
    int32_t s = 0;
    for (int32_t j = 0; j < n; ++j) s += (int32_t)p[j] * v[j * v_stride + c];
    out[c] = set ? s : out[c] + s;
  }
}

void fter_qk_row_ref(int32_t *scores, const int8_t *q, const int8_t *k, int32_t hd, int32_t n,
                     int32_t k_stride) {
  qk_row(scores, q, k, hd, n, k_stride, 0);
}

void fter_qk_row_set_ref(int32_t *scores, const int8_t *q, const int8_t *k, int32_t hd,
                         int32_t n, int32_t k_stride) {
  qk_row(scores, q, k, hd, n, k_stride, 1);
}

void fter_pv_row_ref(int32_t *out, const uint8_t *p, const int8_t *v, int32_t n, int32_t hd,
                     int32_t v_stride) {
  pv_row(out, p, v, n, hd, v_stride, 0);
}

void fter_pv_row_set_ref(int32_t *out, const uint8_t *p, const int8_t *v, int32_t n, int32_t hd,
                         int32_t v_stride) {
  pv_row(out, p, v, n, hd, v_stride, 1);
}
