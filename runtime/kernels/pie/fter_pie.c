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

#if defined(FTER_PIE)
/* All 16 lanes on the LX7 from the stored QACC at %[b] (QACC_L's words at bytes 0..16, QACC_H's
 * at 32..48, the same layout) to d = %[d]: lane l of each half is taken from the same bits of its
 * two words, so the halves go side by side and share each funnel shift's SSAI (4 per 16 lanes
 * instead of 8).  A lane that straddles two words is one SRC and a SEXT, a lane inside one word
 * a shift pair; OP(o) stores (LANE_SET) or adds (LANE_ADD, through %[u]) the lane in %[t] at
 * byte o of d.  %[w0], %[w1] hold QACC_L's current two words, %[w2], %[w3] QACC_H's. */
#define LANES16_ASM(OP)                                                                       \
  "l32i  %[w0], %[b], 0\n l32i %[w2], %[b], 32\n"                                            \
  "sext  %[t], %[w0], 19\n" OP(0) "sext %[t], %[w2], 19\n" OP(32)                          \
  "l32i  %[w1], %[b], 4\n l32i %[w3], %[b], 36\n ssai 20\n"                                 \
  "src   %[t], %[w1], %[w0]\n sext %[t], %[t], 19\n" OP(4)                                  \
  "src   %[t], %[w3], %[w2]\n sext %[t], %[t], 19\n" OP(36)                                 \
  "slli  %[t], %[w1], 4\n srai %[t], %[t], 12\n" OP(8)                                      \
  "slli  %[t], %[w3], 4\n srai %[t], %[t], 12\n" OP(40)                                     \
  "l32i  %[w0], %[b], 8\n l32i %[w2], %[b], 40\n ssai 28\n"                                 \
  "src   %[t], %[w0], %[w1]\n sext %[t], %[t], 19\n" OP(12)                                 \
  "src   %[t], %[w2], %[w3]\n sext %[t], %[t], 19\n" OP(44)                                 \
  "l32i  %[w1], %[b], 12\n l32i %[w3], %[b], 44\n ssai 16\n"                                \
  "src   %[t], %[w1], %[w0]\n sext %[t], %[t], 19\n" OP(16)                                 \
  "src   %[t], %[w3], %[w2]\n sext %[t], %[t], 19\n" OP(48)                                 \
  "slli  %[t], %[w1], 8\n srai %[t], %[t], 12\n" OP(20)                                     \
  "slli  %[t], %[w3], 8\n srai %[t], %[t], 12\n" OP(52)                                     \
  "l32i  %[w0], %[b], 16\n l32i %[w2], %[b], 48\n ssai 24\n"                                \
  "src   %[t], %[w0], %[w1]\n sext %[t], %[t], 19\n" OP(24)                                 \
  "src   %[t], %[w2], %[w3]\n sext %[t], %[t], 19\n" OP(56)                                 \
  "srai  %[t], %[w0], 12\n" OP(28) "srai %[t], %[w2], 12\n" OP(60)
#define LANE_SET(o) "s32i %[t], %[d], " #o "\n"
#define LANE_ADD(o) "l32i %[u], %[d], " #o "\n add %[t], %[t], %[u]\n s32i %[t], %[d], " #o "\n"
#define LANES_OUT [w0] "=&r"(w0), [w1] "=&r"(w1), [w2] "=&r"(w2), [w3] "=&r"(w3), [t] "=&r"(t), \
      [u] "=&r"(u)

static inline void lanes16_lx7(int32_t *d, const uint32_t *b, int add) {
  uint32_t w0, w1, w2, w3, t, u;
  if (add)
    __asm__ volatile(LANES16_ASM(LANE_ADD) : LANES_OUT : [d] "r"(d), [b] "r"(b) : "memory");
  else
    __asm__ volatile(LANES16_ASM(LANE_SET) : LANES_OUT : [d] "r"(d), [b] "r"(b) : "memory");
}
#endif

static inline void read_qacc(int32_t *dst, int32_t count, uint32_t *buf, int add) {
  store_qacc(buf);
  if (count == 16) {
#if defined(FTER_PIE)
    lanes16_lx7(dst, buf, add);
#else
    lanes8(dst, buf, add);
    lanes8(dst + 8, buf + 8, add);
#endif
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

/* Per token i < tokens: q1 = the first weight column at w, QACC = 0, the chunk loop over x row i,
 * QACC read out into acc row i (written if set, else added to).  On the real core one asm loop
 * around the chunk loop, the group's constants in registers (QACC is stored to buf); elsewhere
 * the same instructions through the functions above. */
void fter_pie_tmm_tokens(int32_t *acc, const int8_t *x, const int8_t *w, int32_t tokens,
                         int32_t chunks, int32_t x_stride, int32_t acc_stride, uint32_t *buf,
                         int set) {
  if (tokens < 1) return;
#if defined(FTER_PIE)
  uint32_t w0, w1, w2, w3, t, u;
#define TOK_STEP(qu, qx, sel) "ee.vsmulas.s8.qacc.ld.incp q" #qu ", %[w0], q" #qx ", q0, " #sel "\n"
#define TOKENS_ASM(OP)                          \
  "0:\n"                                        \
  "mov     %[w0], %[wp]\n"                      \
  "mov     %[w1], %[x]\n"                       \
  "ee.vld.128.ip q1, %[w0], 16\n"               \
  "ee.zero.qacc\n"                              \
  "loopnez %[ch], 1f\n"                         \
  "ee.vld.128.ip q0, %[w1], 16\n"               \
  TMM_STEPS(TOK_STEP)                           \
  "1:\n"                                        \
  "mov     %[w0], %[b]\n"                       \
  "ee.st.qacc_l.l.128.ip %[w0], 16\n"           \
  "ee.st.qacc_l.h.32.ip %[w0], 16\n"            \
  "ee.st.qacc_h.l.128.ip %[w0], 16\n"           \
  "ee.st.qacc_h.h.32.ip %[w0], 0\n"             \
  LANES16_ASM(OP)                               \
  "add     %[x], %[x], %[xs]\n"                 \
  "add     %[d], %[d], %[as]\n"                 \
  "addi    %[n], %[n], -1\n"                    \
  "bnez    %[n], 0b\n"
#define TOKENS_OPERANDS                                                                     \
  : LANES_OUT, [d] "+r"(acc), [x] "+r"(x), [n] "+r"(tokens)                                 \
  : [b] "r"(buf), [wp] "r"(w), [ch] "r"(chunks), [xs] "r"(x_stride), [as] "r"(acc_stride * 4) \
  : "memory"
  if (set)
    __asm__ volatile(TOKENS_ASM(LANE_SET) TOKENS_OPERANDS);
  else
    __asm__ volatile(TOKENS_ASM(LANE_ADD) TOKENS_OPERANDS);
#else
  for (int32_t i = 0; i < tokens; ++i, x += x_stride, acc += acc_stride) {
    const int8_t *xp = x, *wp = w;
    PIE_VLD_128_IP(1, wp, 16);
    PIE_ZERO_QACC();
    fter_pie_tmm_chunks(&xp, &wp, chunks);
    read_qacc(acc, 16, buf, !set);
  }
#endif
}
