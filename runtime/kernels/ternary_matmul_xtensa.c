/* Ternary matmul micro-kernels tuned for in-order Xtensa cores (LX7 on the
 * ESP32-S3, lx106 in the simulator), in portable C.
 *
 * Two 16-bit lanes per 32-bit multiply.  With X = x0 + x1*2^16 and
 * W = w1 + w0*2^16 (plain integers, negative lanes borrowing),
 *   X*W = x0*w1 + (x0*w0 + x1*w1)*2^16 + x1*w0*2^32,
 * so modulo 2^32 the upper half carries two products and the lower half a
 * small cross term L.  Summing such products over a block of at most 128
 * weights keeps |L| < 2^15 and the sum below 2^31, so the block's exact dot
 * product is (S + 2^15) >> 16.  Per two weights this is one mull and one
 * add; weights become lane words through a 256-entry table per byte (no
 * division, which the lx106 libgcc lacks, and no sign extension, which the
 * lx106 lacks as an instruction), activations once per block for all rows.
 * Two rows per pass share the activation loads.  Bytes are read one by
 * one, so weights need no alignment.  Lanes past k hold x = 0, so the
 * padding weights of a partial last byte never matter.  Rows with k < 16
 * use the reference kernel: building lane words would cost more than it
 * saves.
 */
#include <stdint.h>

#include "fter_kernels.h"

#define B2_BLOCK 128 /* weights per block: 32 bytes, 64 lane words */
#define B3_BLOCK 120 /* weights per block: 24 bytes, 72 lane words */
#define MIN_K 16

/* Exact int32 dot product of a block from its lane sum (see above).  The
 * cast and arithmetic shift are two's-complement, as on every gcc target. */
static int32_t lane_result(uint32_t s) { return (int32_t)(s + 0x8000u) >> 16; }

static uint32_t lane_pair(int32_t lo, int32_t hi) { return (uint32_t)lo + ((uint32_t)hi << 16); }

/* Lane words of the weight bytes, built by fter_kernels_init() or on first
 * use (tables in RAM are faster than flash on the ESP32-S3).  b2: {w1 + w0*2^16, w3 + w2*2^16}; b3: {w1 + w0*2^16,
 * w3 + w2*2^16, w4*2^16, 0} (padded to 16 bytes for shift addressing). */
static uint32_t b2_table[256][2];
static uint32_t b3_table[256][4];
static int tables_ready;

void fter_kernels_init(void) {
  static int done; /* once: the app's main and the model's first run both call it */
  if (done) return;
  int32_t d[5] = {0, 0, 0, 0, 0}; /* base-3 digits of b, counted up */
  for (int32_t b = 0; b < 256; ++b) {
    int32_t w[4];
    for (int32_t t = 0; t < 4; ++t) w[t] = (int32_t)((b >> (2 * t)) & 3) - 1;
    b2_table[b][0] = lane_pair(w[1], w[0]);
    b2_table[b][1] = lane_pair(w[3], w[2]);
    /* Bytes 243..255 never occur; the wrapping counter decodes them like
     * the reference (the sixth digit is dropped). */
    b3_table[b][0] = lane_pair(d[1] - 1, d[0] - 1);
    b3_table[b][1] = lane_pair(d[3] - 1, d[2] - 1);
    b3_table[b][2] = lane_pair(0, d[4] - 1);
    b3_table[b][3] = 0;
    for (int32_t t = 0; t < 5 && ++d[t] == 3; ++t) d[t] = 0;
  }
  tables_ready = 1;
  fter_tmm_pie_init();
  fter_softmax_init();
  fter_gelu_init();
  done = 1;
}

/* x[0 .. len) as lane words, per weight byte (b2: 4 activations -> 2
 * words, b3: 5 -> 3 words), zero past len. */
static void build_b2_lanes(uint32_t *lanes, const int8_t *x, int32_t len) {
  int32_t i = 0;
  for (; i + 2 <= len; i += 2) *lanes++ = lane_pair(x[i], x[i + 1]);
  if (i < len) *lanes++ = lane_pair(x[i], 0);
  for (i += 2; i < ((len + 3) & ~3); i += 2) *lanes++ = 0; /* rest of the last byte */
}

static void build_b3_lanes(uint32_t *lanes, const int8_t *x, int32_t len) {
  int32_t i = 0;
  for (; i + 5 <= len; i += 5, lanes += 3) { /* full bytes: no bounds checks */
    lanes[0] = lane_pair(x[i], x[i + 1]);
    lanes[1] = lane_pair(x[i + 2], x[i + 3]);
    lanes[2] = (uint32_t)(int32_t)x[i + 4];
  }
  if (i < len) {
    int32_t v[5];
    for (int32_t t = 0; t < 5; ++t) v[t] = i + t < len ? x[i + t] : 0;
    lanes[0] = lane_pair(v[0], v[1]);
    lanes[1] = lane_pair(v[2], v[3]);
    lanes[2] = (uint32_t)v[4];
  }
}

/* Byte q of rows a and b against the lane words of that byte. */
#define B2_STEP2(q) /* q: constant byte offset */                                                   \
  do {                                                                \
    const uint32_t *ta = b2_table[ra[q]], *tb = b2_table[rb[q]];     \
    const uint32_t x0 = xl[2 * (q)], x1 = xl[2 * (q) + 1];            \
    sa += x0 * ta[0] + x1 * ta[1];                                    \
    sb += x0 * tb[0] + x1 * tb[1];                                    \
  } while (0)
#define B3_STEP2(q)                                                             \
  do {                                                                          \
    const uint32_t *ta = b3_table[ra[q]], *tb = b3_table[rb[q]];               \
    const uint32_t x0 = xl[3 * (q)], x1 = xl[3 * (q) + 1], x2 = xl[3 * (q) + 2]; \
    sa += x0 * ta[0] + x1 * ta[1] + x2 * ta[2];                                 \
    sb += x0 * tb[0] + x1 * tb[1] + x2 * tb[2];                                 \
  } while (0)

void fter_tmm_b2_xtensa(int32_t *acc, const int8_t *x, const uint8_t *w, int32_t k, int32_t n,
                        int32_t w_stride) {
  if (k < MIN_K) {
    fter_tmm_b2_ref(acc, x, w, k, n, w_stride);
    return;
  }
  if (!tables_ready) fter_kernels_init();
  uint32_t lanes[B2_BLOCK / 2];
  for (int32_t i0 = 0; i0 < k; i0 += B2_BLOCK) {
    const int32_t len = k - i0 < B2_BLOCK ? k - i0 : B2_BLOCK;
    const int32_t nbytes = (len + 3) >> 2;
    build_b2_lanes(lanes, x + i0, len);
    const uint8_t *wb = w + (i0 >> 2);
    int32_t j = 0;
    for (; j + 1 < n; j += 2) {
      const uint8_t *ra = wb + j * w_stride, *rb = ra + w_stride;
      const uint32_t *xl = lanes;
      uint32_t sa = 0, sb = 0;
      /* Not unrolled: on the 16-register core gcc then hoists the loads
       * and spills (measured 20% more instructions). */
      for (int32_t q = 0; q < nbytes; ++q, ++ra, ++rb, xl += 2) B2_STEP2(0);
      acc[j] += lane_result(sa);
      acc[j + 1] += lane_result(sb);
    }
    if (j < n) { /* odd n: the last row alone */
      const uint8_t *ra = wb + j * w_stride;
      const uint32_t *xl = lanes;
      uint32_t sa = 0;
      for (int32_t q = 0; q < nbytes; ++q, xl += 2) {
        const uint32_t *ta = b2_table[ra[q]];
        sa += xl[0] * ta[0] + xl[1] * ta[1];
      }
      acc[j] += lane_result(sa);
    }
  }
}

void fter_tmm_b3_xtensa(int32_t *acc, const int8_t *x, const uint8_t *w, int32_t k, int32_t n,
                        int32_t w_stride) {
  if (k < MIN_K) {
    fter_tmm_b3_ref(acc, x, w, k, n, w_stride);
    return;
  }
  if (!tables_ready) fter_kernels_init();
  uint32_t lanes[B3_BLOCK / 5 * 3];
  int32_t byte0 = 0; /* i0 / 5 without a division */
  for (int32_t i0 = 0; i0 < k; i0 += B3_BLOCK, byte0 += B3_BLOCK / 5) {
    const int32_t len = k - i0 < B3_BLOCK ? k - i0 : B3_BLOCK;
    build_b3_lanes(lanes, x + i0, len);
    int32_t nbytes = 0;
    for (int32_t c = 0; c < len; c += 5) ++nbytes;
    const uint8_t *wb = w + byte0;
    int32_t j = 0;
    for (; j + 1 < n; j += 2) {
      const uint8_t *ra = wb + j * w_stride, *rb = ra + w_stride;
      const uint32_t *xl = lanes;
      uint32_t sa = 0, sb = 0;
      for (int32_t q = 0; q < nbytes; ++q, ++ra, ++rb, xl += 3) B3_STEP2(0);
      acc[j] += lane_result(sa);
      acc[j + 1] += lane_result(sb);
    }
    if (j < n) {
      const uint8_t *ra = wb + j * w_stride;
      const uint32_t *xl = lanes;
      uint32_t sa = 0;
      for (int32_t q = 0; q < nbytes; ++q, xl += 3) {
        const uint32_t *ta = b3_table[ra[q]];
        sa += xl[0] * ta[0] + xl[1] * ta[1] + xl[2] * ta[2];
      }
      acc[j] += lane_result(sa);
    }
  }
}
