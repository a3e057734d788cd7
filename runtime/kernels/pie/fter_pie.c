/* Helpers of the PIE layer shared by the kernels, written once against
 * fter_pie.h: the QACC readout and the ternary-matmul chunk loop (one
 * zero-overhead loop on the real core, its twin from the same emulated
 * instructions elsewhere). */
#include "fter_pie.h"

/* Signed 20-bit lane from its low 20 bits. */
static int32_t lane20(uint32_t v) { return (int32_t)((v & 0xfffffu) ^ 0x80000u) - 0x80000; }

/* The 8 lanes of QACC_L or QACC_H from its 20 raw bytes: lane pair (2i, 2i+1)
 * in bytes 5i..5i+4, the low lane in the low 20 bits. */
static void unpack8(int32_t *lanes, const uint8_t *r) {
  for (int i = 0; i < 4; ++i, r += 5, lanes += 2) {
    lanes[0] = lane20((uint32_t)r[0] | (uint32_t)r[1] << 8 | (uint32_t)r[2] << 16);
    lanes[1] = lane20((uint32_t)r[2] >> 4 | (uint32_t)r[3] << 4 | (uint32_t)r[4] << 12);
  }
}

void fter_pie_read_qacc(int32_t lanes[16], uint8_t *buf) {
  uint8_t *p = buf;
  PIE_ST_QACC_L_L_128_IP(p, 16); /* buf[0..16) */
  PIE_ST_QACC_L_H_32_IP(p, 16);  /* buf[16..20) */
  PIE_ST_QACC_H_L_128_IP(p, 16); /* buf[32..48) */
  PIE_ST_QACC_H_H_32_IP(p, 0);   /* buf[48..52) */
  unpack8(lanes, buf);
  unpack8(lanes + 8, buf + 32);
}

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
