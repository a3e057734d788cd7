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

/* V[j, c] at v[j * v_stride + (c / 16) * group_step + c % 16]: group_step 16 for rows of hd
 * channels, 16 n for V in groups of 16 channels (v_stride 16) */
static void pv_row(int32_t *out, const uint8_t *p, const int8_t *v, int32_t n, int32_t hd,
                   int32_t v_stride, int32_t group_step, int set) {
  for (int32_t c = 0; c < hd; ++c) {
    const int8_t *vc = v + (c / 16) * group_step + c % 16;
    int32_t s = 0;
    for (int32_t j = 0; j < n; ++j) s += (int32_t)p[j] * vc[j * v_stride];
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
  pv_row(out, p, v, n, hd, v_stride, 16, 0);
}

void fter_pv_row_set_ref(int32_t *out, const uint8_t *p, const int8_t *v, int32_t n, int32_t hd,
                         int32_t v_stride) {
  pv_row(out, p, v, n, hd, v_stride, 16, 1);
}

void fter_v_groups16_ref(int8_t *vg, const int8_t *v, int32_t n, int32_t cols, int32_t v_stride) {
  for (int32_t j = 0; j < n; ++j)
    for (int32_t c = 0; c < cols; ++c) vg[(c / 16) * 16 * n + 16 * j + c % 16] = v[j * v_stride + c];
}

void fter_pv_row_g16_ref(int32_t *out, const uint8_t *p, const int8_t *vg, int32_t n,
                         int32_t hd) {
  pv_row(out, p, vg, n, hd, 16, 16 * n, 0);
}

void fter_pv_row_g16_set_ref(int32_t *out, const uint8_t *p, const int8_t *vg, int32_t n,
                             int32_t hd) {
  pv_row(out, p, vg, n, hd, 16, 16 * n, 1);
}
