/* Ternary matmul micro-kernels tuned for in-order Xtensa cores (LX7 on the
 * ESP32-S3, lx106 in the simulator), in portable C.
 *
 * - w = code - 1, so sum x*w = sum x*code - sum x: the weights are used as
 *   their unsigned codes {0,1,2} (one extui + one mull per weight) and the
 *   activation sum, computed once per call, is subtracted per row.
 * - Two output rows per pass share every activation load.
 * - Weights are read as aligned 32-bit words (16 b2 or 20 b3 weights) and
 *   the inner steps are fully unrolled, so shifts are constants and the
 *   loop branch is paid once per word.
 * - b3 bytes are decoded by a 256-entry table into five 2-bit codes: no
 *   division (the lx106 libgcc has none) and no multiply by powers of 3.
 * Misaligned weights, strides that are not multiples of 4, short rows and
 * big-endian targets use the reference kernels.
 */
#include <stdint.h>

#include "fter_kernels.h"

#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
#define FTER_LITTLE_ENDIAN 1
#else
#define FTER_LITTLE_ENDIAN 0
#endif

static int32_t sum_x(const int8_t *x, int32_t k) {
  int32_t s0 = 0, s1 = 0;
  int32_t i = 0;
  for (; i + 1 < k; i += 2) {
    s0 += x[i];
    s1 += x[i + 1];
  }
  if (i < k) s0 += x[i];
  return s0 + s1;
}

static int use_reference(const uint8_t *w, int32_t k, int32_t w_stride, int32_t min_k) {
  return !FTER_LITTLE_ENDIAN || k < min_k || ((uintptr_t)w & 3u) != 0 || (w_stride & 3) != 0;
}

/* ---- b2: 16 weights per 32-bit word ---- */

#define B2_CODE(word, q) ((int32_t)(((word) >> (2 * (q))) & 3u))
#define B2_STEP2(q)                      \
  do {                                   \
    int32_t xv = xp[q];                  \
    sa += xv * B2_CODE(wa, q);           \
    sb += xv * B2_CODE(wb, q);           \
  } while (0)
#define B2_STEP1(q) sa += (int32_t)xp[q] * B2_CODE(wa, q)
#define B2_UNROLL16(STEP)                                                     \
  STEP(0); STEP(1); STEP(2); STEP(3); STEP(4); STEP(5); STEP(6); STEP(7);    \
  STEP(8); STEP(9); STEP(10); STEP(11); STEP(12); STEP(13); STEP(14); STEP(15)

/* sum of x[i] * code_i over the weights past the last full word. */
static int32_t b2_tail(const int8_t *x, const uint8_t *bytes, int32_t tail) {
  int32_t s = 0;
  for (int32_t i = 0; i < tail; ++i) s += (int32_t)x[i] * (int32_t)((bytes[i >> 2] >> (2 * (i & 3))) & 3u);
  return s;
}

void fter_tmm_b2_xtensa(int32_t *acc, const int8_t *x, const uint8_t *w, int32_t k, int32_t n,
                        int32_t w_stride) {
  if (use_reference(w, k, w_stride, 16)) {
    fter_tmm_b2_ref(acc, x, w, k, n, w_stride);
    return;
  }
  const int32_t words = k >> 4, tail = k & 15;
  const int32_t sx = sum_x(x, k);
  const int8_t *xt = x + (words << 4);
  int32_t j = 0;
  for (; j + 1 < n; j += 2) {
    const uint32_t *ra = (const uint32_t *)(const void *)(w + j * w_stride);
    const uint32_t *rb = (const uint32_t *)(const void *)(w + (j + 1) * w_stride);
    const int8_t *xp = x;
    int32_t sa = 0, sb = 0;
    for (int32_t g = 0; g < words; ++g, xp += 16) {
      const uint32_t wa = ra[g], wb = rb[g];
      B2_UNROLL16(B2_STEP2);
    }
    if (tail) {
      sa += b2_tail(xt, (const uint8_t *)(ra + words), tail);
      sb += b2_tail(xt, (const uint8_t *)(rb + words), tail);
    }
    acc[j] += sa - sx;
    acc[j + 1] += sb - sx;
  }
  if (j < n) { /* odd n: last row alone */
    const uint32_t *ra = (const uint32_t *)(const void *)(w + j * w_stride);
    const int8_t *xp = x;
    int32_t sa = 0;
    for (int32_t g = 0; g < words; ++g, xp += 16) {
      const uint32_t wa = ra[g];
      B2_UNROLL16(B2_STEP1);
    }
    if (tail) sa += b2_tail(xt, (const uint8_t *)(ra + words), tail);
    acc[j] += sa - sx;
  }
}

/* ---- b3: 20 weights per 32-bit word ---- */

/* Byte -> its five base-3 digits as 2-bit fields (digit t at bits 2t).
 * Bytes 243..255 never occur in packed data; they decode like the
 * reference (the sixth digit is dropped). */
static const uint16_t B3_DECODE[256] = {
    0x000, 0x001, 0x002, 0x004, 0x005, 0x006, 0x008, 0x009,
    0x00a, 0x010, 0x011, 0x012, 0x014, 0x015, 0x016, 0x018,
    0x019, 0x01a, 0x020, 0x021, 0x022, 0x024, 0x025, 0x026,
    0x028, 0x029, 0x02a, 0x040, 0x041, 0x042, 0x044, 0x045,
    0x046, 0x048, 0x049, 0x04a, 0x050, 0x051, 0x052, 0x054,
    0x055, 0x056, 0x058, 0x059, 0x05a, 0x060, 0x061, 0x062,
    0x064, 0x065, 0x066, 0x068, 0x069, 0x06a, 0x080, 0x081,
    0x082, 0x084, 0x085, 0x086, 0x088, 0x089, 0x08a, 0x090,
    0x091, 0x092, 0x094, 0x095, 0x096, 0x098, 0x099, 0x09a,
    0x0a0, 0x0a1, 0x0a2, 0x0a4, 0x0a5, 0x0a6, 0x0a8, 0x0a9,
    0x0aa, 0x100, 0x101, 0x102, 0x104, 0x105, 0x106, 0x108,
    0x109, 0x10a, 0x110, 0x111, 0x112, 0x114, 0x115, 0x116,
    0x118, 0x119, 0x11a, 0x120, 0x121, 0x122, 0x124, 0x125,
    0x126, 0x128, 0x129, 0x12a, 0x140, 0x141, 0x142, 0x144,
    0x145, 0x146, 0x148, 0x149, 0x14a, 0x150, 0x151, 0x152,
    0x154, 0x155, 0x156, 0x158, 0x159, 0x15a, 0x160, 0x161,
    0x162, 0x164, 0x165, 0x166, 0x168, 0x169, 0x16a, 0x180,
    0x181, 0x182, 0x184, 0x185, 0x186, 0x188, 0x189, 0x18a,
    0x190, 0x191, 0x192, 0x194, 0x195, 0x196, 0x198, 0x199,
    0x19a, 0x1a0, 0x1a1, 0x1a2, 0x1a4, 0x1a5, 0x1a6, 0x1a8,
    0x1a9, 0x1aa, 0x200, 0x201, 0x202, 0x204, 0x205, 0x206,
    0x208, 0x209, 0x20a, 0x210, 0x211, 0x212, 0x214, 0x215,
    0x216, 0x218, 0x219, 0x21a, 0x220, 0x221, 0x222, 0x224,
    0x225, 0x226, 0x228, 0x229, 0x22a, 0x240, 0x241, 0x242,
    0x244, 0x245, 0x246, 0x248, 0x249, 0x24a, 0x250, 0x251,
    0x252, 0x254, 0x255, 0x256, 0x258, 0x259, 0x25a, 0x260,
    0x261, 0x262, 0x264, 0x265, 0x266, 0x268, 0x269, 0x26a,
    0x280, 0x281, 0x282, 0x284, 0x285, 0x286, 0x288, 0x289,
    0x28a, 0x290, 0x291, 0x292, 0x294, 0x295, 0x296, 0x298,
    0x299, 0x29a, 0x2a0, 0x2a1, 0x2a2, 0x2a4, 0x2a5, 0x2a6,
    0x2a8, 0x2a9, 0x2aa, 0x000, 0x001, 0x002, 0x004, 0x005,
    0x006, 0x008, 0x009, 0x00a, 0x010, 0x011, 0x012, 0x014,
};

#define B3_CODE(d, t) ((int32_t)(((d) >> (2 * (t))) & 3u))
/* Byte q (0..3) of the weight words: five weights starting at xp[5q]. */
#define B3_BYTE2(q)                                       \
  do {                                                    \
    const uint32_t da = B3_DECODE[(wa >> (8 * (q))) & 255u]; \
    const uint32_t db = B3_DECODE[(wb >> (8 * (q))) & 255u]; \
    const int8_t *xq = xp + 5 * (q);                      \
    int32_t xv;                                           \
    xv = xq[0]; sa += xv * B3_CODE(da, 0); sb += xv * B3_CODE(db, 0); \
    xv = xq[1]; sa += xv * B3_CODE(da, 1); sb += xv * B3_CODE(db, 1); \
    xv = xq[2]; sa += xv * B3_CODE(da, 2); sb += xv * B3_CODE(db, 2); \
    xv = xq[3]; sa += xv * B3_CODE(da, 3); sb += xv * B3_CODE(db, 3); \
    xv = xq[4]; sa += xv * B3_CODE(da, 4); sb += xv * B3_CODE(db, 4); \
  } while (0)
#define B3_BYTE1(q)                                       \
  do {                                                    \
    const uint32_t da = B3_DECODE[(wa >> (8 * (q))) & 255u]; \
    const int8_t *xq = xp + 5 * (q);                      \
    sa += xq[0] * B3_CODE(da, 0) + xq[1] * B3_CODE(da, 1) + xq[2] * B3_CODE(da, 2) + \
          xq[3] * B3_CODE(da, 3) + xq[4] * B3_CODE(da, 4); \
  } while (0)

static int32_t b3_tail(const int8_t *x, const uint8_t *bytes, int32_t tail) {
  int32_t s = 0;
  for (; tail > 0; tail -= 5, x += 5, ++bytes) {
    const uint32_t d = B3_DECODE[*bytes];
    const int32_t m = tail < 5 ? tail : 5; /* the last byte may be partial */
    for (int32_t t = 0; t < m; ++t) s += (int32_t)x[t] * B3_CODE(d, t);
  }
  return s;
}

void fter_tmm_b3_xtensa(int32_t *acc, const int8_t *x, const uint8_t *w, int32_t k, int32_t n,
                        int32_t w_stride) {
  if (use_reference(w, k, w_stride, 20)) {
    fter_tmm_b3_ref(acc, x, w, k, n, w_stride);
    return;
  }
  int32_t words = 0, done = 0; /* k / 20 without a division */
  while (done + 20 <= k) {
    done += 20;
    ++words;
  }
  const int32_t tail = k - done;
  const int32_t sx = sum_x(x, k);
  const int8_t *xt = x + done;
  int32_t j = 0;
  for (; j + 1 < n; j += 2) {
    const uint32_t *ra = (const uint32_t *)(const void *)(w + j * w_stride);
    const uint32_t *rb = (const uint32_t *)(const void *)(w + (j + 1) * w_stride);
    const int8_t *xp = x;
    int32_t sa = 0, sb = 0;
    for (int32_t g = 0; g < words; ++g, xp += 20) {
      const uint32_t wa = ra[g], wb = rb[g];
      B3_BYTE2(0);
      B3_BYTE2(1);
      B3_BYTE2(2);
      B3_BYTE2(3);
    }
    if (tail) {
      sa += b3_tail(xt, (const uint8_t *)(ra + words), tail);
      sb += b3_tail(xt, (const uint8_t *)(rb + words), tail);
    }
    acc[j] += sa - sx;
    acc[j + 1] += sb - sx;
  }
  if (j < n) {
    const uint32_t *ra = (const uint32_t *)(const void *)(w + j * w_stride);
    const int8_t *xp = x;
    int32_t sa = 0;
    for (int32_t g = 0; g < words; ++g, xp += 20) {
      const uint32_t wa = ra[g];
      B3_BYTE1(0);
      B3_BYTE1(1);
      B3_BYTE1(2);
      B3_BYTE1(3);
    }
    if (tail) sa += b3_tail(xt, (const uint8_t *)(ra + words), tail);
    acc[j] += sa - sx;
  }
}
