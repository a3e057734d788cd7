/* Helpers of the PIE layer shared by the kernels, written once against
 * fter_pie.h: the QACC readout and the ternary-matmul chunk loop (one
 * zero-overhead loop on the real core, its twin from the same emulated
 * instructions elsewhere). */
#include "fter_pie.h"

/* Bits [12 - s, 32 - s) of v as the upper part of a signed 20-bit lane (arithmetic shift, as
 * on every gcc target). */
#define HI(v, s) ((int32_t)((v) << (s)) >> 12)

/* d[0..8) += (add) or = (set) the 8 signed 20-bit lanes of QACC_L or QACC_H, stored
 * little-endian in the 5 words at w (lane i at bits [20 i, 20 i + 20)): two to four shifts and
 * an OR per lane.  `add` is a constant at every call, so each use compiles to one form. */
static inline void lanes8(int32_t *d, const uint32_t *w, int add) {
  const uint32_t w0 = w[0], w1 = w[1], w2 = w[2], w3 = w[3], w4 = w[4];
#define LANE(l, v) d[l] = add ? d[l] + (v) : (v)
  LANE(0, HI(w0, 12));
  LANE(1, HI(w1, 24) | (int32_t)(w0 >> 20));
  LANE(2, HI(w1, 4));
  LANE(3, HI(w2, 16) | (int32_t)(w1 >> 28));
  LANE(4, HI(w3, 28) | (int32_t)(w2 >> 16));
  LANE(5, HI(w3, 8));
  LANE(6, HI(w4, 20) | (int32_t)(w3 >> 24));
  LANE(7, (int32_t)w4 >> 12);
#undef LANE
}

static void store_qacc(uint32_t *buf) {
  uint32_t *p = buf;
  PIE_ST_QACC_L_L_128_IP(p, 16); /* bytes 0..16 */
  PIE_ST_QACC_L_H_32_IP(p, 16);  /* bytes 16..20 */
  PIE_ST_QACC_H_L_128_IP(p, 16); /* bytes 32..48 */
  PIE_ST_QACC_H_H_32_IP(p, 0);   /* bytes 48..52 */
}

static inline void read_qacc(int32_t *dst, int32_t count, uint32_t *buf, int add) {
  store_qacc(buf);
  if (count == 16) {
    lanes8(dst, buf, add);
    lanes8(dst + 8, buf + 8, add);
    return;
  }
  int32_t lanes[16];
  lanes8(lanes, buf, 0);
  lanes8(lanes + 8, buf + 8, 0);
  for (int32_t l = 0; l < count; ++l) dst[l] = add ? dst[l] + lanes[l] : lanes[l];
}

void fter_pie_add_qacc(int32_t *dst, int32_t count, uint32_t *buf) { read_qacc(dst, count, buf, 1); }

void fter_pie_set_qacc(int32_t *dst, int32_t count, uint32_t *buf) { read_qacc(dst, count, buf, 0); }

void fter_pie_read_qacc(int32_t lanes[16], uint32_t *buf) { fter_pie_set_qacc(lanes, 16, buf); }

/* One 16-k chunk: weight column c is in q1 (c even) or q2 (c odd); each step
 * multiplies it by x[c] (q0 lane c) and loads column c+1 into the other. */
#define TMM_STEPS(S)                                                                      \
  S(2, 1, 0) S(1, 2, 1) S(2, 1, 2) S(1, 2, 3) S(2, 1, 4) S(1, 2, 5) S(2, 1, 6) S(1, 2, 7) \
  S(2, 1, 8) S(1, 2, 9) S(2, 1, 10) S(1, 2, 11) S(2, 1, 12) S(1, 2, 13) S(2, 1, 14) S(1, 2, 15)

void fter_pie_tmm_chunks(const int8_t **x, const int8_t **w, int32_t chunks) {
  const int8_t *xp = *x, *wp = *w;
#if defined(FTER_PIE)
#define TMM_ASM(qu, qx, sel) "ee.vsmulas.s8.qacc.ld.incp q" #qu ", %1, q" #qx ", q0, " #sel "\n"
  __asm__ volatile("loopnez %2, 1f\n"
                   "ee.vld.128.ip q0, %0, 16\n" TMM_STEPS(TMM_ASM) "1:\n"
                   : "+r"(xp), "+r"(wp)
                   : "r"(chunks)
                   : "memory");
#else
#define TMM_C(qu, qx, sel) PIE_VSMULAS_S8_QACC_LD_INCP(qu, wp, qx, 0, sel);
  for (int32_t c = 0; c < chunks; ++c) {
    PIE_VLD_128_IP(0, xp, 16);
    TMM_STEPS(TMM_C)
  }
#endif
  *x = xp;
  *w = wp;
}
