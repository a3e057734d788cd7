/* Reference ternary matmul micro-kernels: the packing formats of SPEC §2
 * decoded one weight at a time, written for clarity, not speed. */
#include "fter_kernels.h"

/* Weight i of a b2 row: 2-bit code w + 1 at bits 2*(i%4) of byte i/4. */
static int32_t trit_b2(const uint8_t *row, int32_t i) {
  return (int32_t)((row[i / 4] >> (2 * (i % 4))) & 3u) - 1;
}

/* Weight i of a b3 row: base-3 digit i%5 of byte i/5. */
static int32_t trit_b3(const uint8_t *row, int32_t i) {
  static const uint8_t pow3[5] = {1, 3, 9, 27, 81};
  return (int32_t)((row[i / 5] / pow3[i % 5]) % 3u) - 1;
}

void fter_tmm_b2_ref(int32_t *acc, const int8_t *x, const uint8_t *w, int32_t k, int32_t n,
                     int32_t w_stride) {
  for (int32_t j = 0; j < n; ++j) {
    const uint8_t *row = w + j * w_stride;
    int32_t sum = 0;
    for (int32_t i = 0; i < k; ++i) sum += (int32_t)x[i] * trit_b2(row, i);
    acc[j] += sum;
  }
}

void fter_tmm_b3_ref(int32_t *acc, const int8_t *x, const uint8_t *w, int32_t k, int32_t n,
                     int32_t w_stride) {
  for (int32_t j = 0; j < n; ++j) {
    const uint8_t *row = w + j * w_stride;
    int32_t sum = 0;
    for (int32_t i = 0; i < k; ++i) sum += (int32_t)x[i] * trit_b3(row, i);
    acc[j] += sum;
  }
}

/* Tiles: t tokens (rows of x, x_stride apart) against the same nb rows. */
static void tile_ref(void (*ref)(int32_t *, const int8_t *, const uint8_t *, int32_t, int32_t, int32_t),
                     int32_t *acc, const int8_t *x, const uint8_t *w, int32_t k, int32_t nb,
                     int32_t w_stride, int32_t t, int32_t x_stride, int32_t acc_stride) {
  for (int32_t i = 0; i < t; ++i, x += x_stride, acc += acc_stride) ref(acc, x, w, k, nb, w_stride);
}

void fter_tmm_tile_b3_ref(int32_t *acc, const int8_t *x, const uint8_t *w, int32_t k, int32_t nb,
                          int32_t w_stride, int32_t t, int32_t x_stride, int32_t acc_stride) {
  tile_ref(fter_tmm_b3_ref, acc, x, w, k, nb, w_stride, t, x_stride, acc_stride);
}

void fter_tmm_tile_b2_ref(int32_t *acc, const int8_t *x, const uint8_t *w, int32_t k, int32_t nb,
                          int32_t w_stride, int32_t t, int32_t x_stride, int32_t acc_stride) {
  tile_ref(fter_tmm_b2_ref, acc, x, w, k, nb, w_stride, t, x_stride, acc_stride);
}

/* The _set tiles: the [t, nb] accumulators zeroed, then the tile added. */
static void zero_tile(int32_t *acc, int32_t t, int32_t nb, int32_t acc_stride) {
  for (int32_t i = 0; i < t; ++i, acc += acc_stride)
    for (int32_t j = 0; j < nb; ++j) acc[j] = 0;
}

void fter_tmm_tile_b3_set_ref(int32_t *acc, const int8_t *x, const uint8_t *w, int32_t k,
                              int32_t nb, int32_t w_stride, int32_t t, int32_t x_stride,
                              int32_t acc_stride) {
  zero_tile(acc, t, nb, acc_stride);
  fter_tmm_tile_b3_ref(acc, x, w, k, nb, w_stride, t, x_stride, acc_stride);
}

void fter_tmm_tile_b2_set_ref(int32_t *acc, const int8_t *x, const uint8_t *w, int32_t k,
                              int32_t nb, int32_t w_stride, int32_t t, int32_t x_stride,
                              int32_t acc_stride) {
  zero_tile(acc, t, nb, acc_stride);
  fter_tmm_tile_b2_ref(acc, x, w, k, nb, w_stride, t, x_stride, acc_stride);
}
