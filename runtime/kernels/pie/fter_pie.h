/**
 * @file fter_pie.h
 * @brief The ESP32-S3 PIE instructions fter's kernels use, each in two
 * forms: inline asm for the real core (FTER_PIE defined: ESP-IDF and the
 * esp32s3 simulator build, assembled by an assembler with the esp32s3 core
 * config) and an exact C emulation (default: host and lx106).
 *
 * A kernel is written once against these macros, so every build runs the
 * same instruction sequence.  Register numbers, immediates and `sel` are
 * compile-time constants; pointer arguments are lvalues that post-increment
 * like the instructions' address registers.  Semantics follow the esp32s3
 * QEMU translator (QACC_L = lanes 0-7, QACC_H = lanes 8-15, 20-bit lanes
 * packed in pairs into 5 little-endian bytes; 128-bit loads and stores use
 * addr & ~15; a fused `.ld` form multiplies first, then loads).
 *
 * Emulated state is one struct per thread (FTER_THREAD_LOCAL: a core's registers).  The kernels never saturate: the
 * emulation saturates like the translator (|lane| <= 2^19-1, |ACCX| <=
 * 2^39-1) but also sets fter_pie_overflow, which tests assert stays 0.
 * With FTER_PIE_COUNT, every emulated PIE instruction increments
 * fter_pie_instructions (a real-core build counts nothing).
 * Silicon needs CPENABLE bit 3 set first (SPEC §7; start code's job).
 */
#ifndef FTER_PIE_H_
#define FTER_PIE_H_

#include <stdint.h>

#include "fter_parallel.h"

#ifdef __cplusplus
extern "C" {
#endif

/** Set to 1 when an emulated QACC lane or ACCX would saturate (never on the real core). */
extern int fter_pie_overflow;
/** Emulated PIE instructions executed (counted only with FTER_PIE_COUNT); per thread where two
 * workers run at once (fter_parallel.h), like the state. */
extern FTER_THREAD_LOCAL uint32_t fter_pie_instructions;

#define FTER_PIE_STR_(x) #x
#define FTER_PIE_STR(x) FTER_PIE_STR_(x)

#if defined(FTER_PIE)

#define PIE_ZERO_QACC() __asm__ volatile("ee.zero.qacc" ::: "memory")
#define PIE_ZERO_ACCX() __asm__ volatile("ee.zero.accx" ::: "memory")
#define PIE_ZERO_Q(q) __asm__ volatile("ee.zero.q q" FTER_PIE_STR(q) ::: "memory")
#define PIE_VLD_128_IP(q, ptr, imm) \
  __asm__ volatile("ee.vld.128.ip q" FTER_PIE_STR(q) ", %0, " FTER_PIE_STR(imm) : "+r"(ptr) :: "memory")
#define PIE_VLD_128_XP(q, ptr, inc) \
  __asm__ volatile("ee.vld.128.xp q" FTER_PIE_STR(q) ", %0, %1" : "+r"(ptr) : "r"(inc) : "memory")
#define PIE_VST_128_IP(q, ptr, imm) \
  __asm__ volatile("ee.vst.128.ip q" FTER_PIE_STR(q) ", %0, " FTER_PIE_STR(imm) : "+r"(ptr) :: "memory")
/* SAR = sar (the core's shift register, which vmul reads; kernels set it and multiply in one
 * asm statement, so that no compiled shift comes between) */
#define PIE_SSAI(sar) __asm__ volatile("ssai " FTER_PIE_STR(sar) ::: "memory")
/* qz.u8[l] = (qx.u8[l] * qy.u8[l]) >> SAR, the 16-bit product's low byte after the shift */
#define PIE_VMUL_U8(qz, qx, qy)                                                                  \
  __asm__ volatile("ee.vmul.u8 q" FTER_PIE_STR(qz) ", q" FTER_PIE_STR(qx) ", q" FTER_PIE_STR(qy) \
                   ::: "memory")
/* qz.s8[l] = clamp(qx.s8[l] - qy.s8[l], -127, 127) */
#define PIE_VSUBS_S8(qz, qx, qy)                                                          \
  __asm__ volatile("ee.vsubs.s8 q" FTER_PIE_STR(qz) ", q" FTER_PIE_STR(qx) ", q" FTER_PIE_STR(qy) \
                   ::: "memory")
/* QACC[l] += qx.s8[l] * qy.s8[sel] */
#define PIE_VSMULAS_S8_QACC(qx, qy, sel) \
  __asm__ volatile("ee.vsmulas.s8.qacc q" FTER_PIE_STR(qx) ", q" FTER_PIE_STR(qy) ", " FTER_PIE_STR(sel) ::: "memory")
/* the same, then qu = 16 bytes at ptr & ~15, ptr += 16 */
#define PIE_VSMULAS_S8_QACC_LD_INCP(qu, ptr, qx, qy, sel)                                     \
  __asm__ volatile("ee.vsmulas.s8.qacc.ld.incp q" FTER_PIE_STR(qu) ", %0, q" FTER_PIE_STR(qx) \
                   ", q" FTER_PIE_STR(qy) ", " FTER_PIE_STR(sel)                              \
                   : "+r"(ptr)::"memory")
/* ACCX += sum_l qx.s8[l] * qy.s8[l] */
#define PIE_VMULAS_S8_ACCX(qx, qy) \
  __asm__ volatile("ee.vmulas.s8.accx q" FTER_PIE_STR(qx) ", q" FTER_PIE_STR(qy) ::: "memory")
#define PIE_VMULAS_S8_ACCX_LD_IP(qu, ptr, imm, qx, qy)                                           \
  __asm__ volatile("ee.vmulas.s8.accx.ld.ip q" FTER_PIE_STR(qu) ", %0, " FTER_PIE_STR(imm) ", q" \
                   FTER_PIE_STR(qx) ", q" FTER_PIE_STR(qy)                                       \
                   : "+r"(ptr)::"memory")
#define PIE_VMULAS_S8_ACCX_LD_XP(qu, ptr, inc, qx, qy)                                            \
  __asm__ volatile("ee.vmulas.s8.accx.ld.xp q" FTER_PIE_STR(qu) ", %0, %1, q" FTER_PIE_STR(qx) \
                   ", q" FTER_PIE_STR(qy)                                                         \
                   : "+r"(ptr)                                                                    \
                   : "r"(inc)                                                                     \
                   : "memory")
/* dst = (int32) ACCX (shift 0; our sums fit 32 bits) */
#define PIE_SRS_ACCX(dst) \
  __asm__ volatile("ee.srs.accx %0, %1, 0" : "=r"(dst) : "r"(0) : "memory")
/* raw QACC bytes: l.128 = bytes 0-15 (ptr & ~15), h.32 = bytes 16-19 (ptr & ~3) */
#define PIE_ST_QACC_L_L_128_IP(ptr, imm) \
  __asm__ volatile("ee.st.qacc_l.l.128.ip %0, " FTER_PIE_STR(imm) : "+r"(ptr) :: "memory")
#define PIE_ST_QACC_L_H_32_IP(ptr, imm) \
  __asm__ volatile("ee.st.qacc_l.h.32.ip %0, " FTER_PIE_STR(imm) : "+r"(ptr) :: "memory")
#define PIE_ST_QACC_H_L_128_IP(ptr, imm) \
  __asm__ volatile("ee.st.qacc_h.l.128.ip %0, " FTER_PIE_STR(imm) : "+r"(ptr) :: "memory")
#define PIE_ST_QACC_H_H_32_IP(ptr, imm) \
  __asm__ volatile("ee.st.qacc_h.h.32.ip %0, " FTER_PIE_STR(imm) : "+r"(ptr) :: "memory")

#else /* emulation */

/** @brief The emulated PIE state. */
typedef struct {
  union {
    int8_t s8[16];
    uint8_t u8[16];
  } q[8];
  int32_t qacc[16]; /* 20-bit signed lanes (8-bit ops) */
  int64_t accx;     /* 40-bit signed */
  int32_t sar;      /* the core's SAR as vmul reads it */
} fter_pie_state_t;

extern FTER_THREAD_LOCAL fter_pie_state_t fter_pie_state;

void fter_pie_zero_qacc(void);
void fter_pie_zero_accx(void);
void fter_pie_zero_q(int q);
void *fter_pie_vld_128(int q, const void *ptr, int32_t inc);
void *fter_pie_vst_128(int q, void *ptr, int32_t inc);
void fter_pie_ssai(int sar);
void fter_pie_vmul_u8(int qz, int qx, int qy);
void fter_pie_vsubs_s8(int qz, int qx, int qy);
void fter_pie_vsmulas_s8_qacc(int qx, int qy, int sel);
void *fter_pie_vsmulas_s8_qacc_ld_incp(int qu, const void *ptr, int qx, int qy, int sel);
void fter_pie_vmulas_s8_accx(int qx, int qy);
void *fter_pie_vmulas_s8_accx_ld(int qu, const void *ptr, int32_t inc, int qx, int qy);
int32_t fter_pie_srs_accx(void);
/* part: 0 = qacc_l.l.128, 1 = qacc_l.h.32, 2 = qacc_h.l.128, 3 = qacc_h.h.32 */
void *fter_pie_st_qacc(int part, void *ptr, int32_t inc);

#define PIE_ZERO_QACC() fter_pie_zero_qacc()
#define PIE_ZERO_ACCX() fter_pie_zero_accx()
#define PIE_ZERO_Q(q) fter_pie_zero_q(q)
#define PIE_VLD_128_IP(q, ptr, imm) ((ptr) = fter_pie_vld_128(q, ptr, imm))
#define PIE_VLD_128_XP(q, ptr, inc) ((ptr) = fter_pie_vld_128(q, ptr, inc))
#define PIE_VST_128_IP(q, ptr, imm) ((ptr) = fter_pie_vst_128(q, ptr, imm))
#define PIE_SSAI(sar) fter_pie_ssai(sar)
#define PIE_VMUL_U8(qz, qx, qy) fter_pie_vmul_u8(qz, qx, qy)
#define PIE_VSUBS_S8(qz, qx, qy) fter_pie_vsubs_s8(qz, qx, qy)
#define PIE_VSMULAS_S8_QACC(qx, qy, sel) fter_pie_vsmulas_s8_qacc(qx, qy, sel)
#define PIE_VSMULAS_S8_QACC_LD_INCP(qu, ptr, qx, qy, sel) \
  ((ptr) = fter_pie_vsmulas_s8_qacc_ld_incp(qu, ptr, qx, qy, sel))
#define PIE_VMULAS_S8_ACCX(qx, qy) fter_pie_vmulas_s8_accx(qx, qy)
#define PIE_VMULAS_S8_ACCX_LD_IP(qu, ptr, imm, qx, qy) \
  ((ptr) = fter_pie_vmulas_s8_accx_ld(qu, ptr, imm, qx, qy))
#define PIE_VMULAS_S8_ACCX_LD_XP(qu, ptr, inc, qx, qy) \
  ((ptr) = fter_pie_vmulas_s8_accx_ld(qu, ptr, inc, qx, qy))
#define PIE_SRS_ACCX(dst) ((dst) = fter_pie_srs_accx())
#define PIE_ST_QACC_L_L_128_IP(ptr, imm) ((ptr) = fter_pie_st_qacc(0, ptr, imm))
#define PIE_ST_QACC_L_H_32_IP(ptr, imm) ((ptr) = fter_pie_st_qacc(1, ptr, imm))
#define PIE_ST_QACC_H_L_128_IP(ptr, imm) ((ptr) = fter_pie_st_qacc(2, ptr, imm))
#define PIE_ST_QACC_H_H_32_IP(ptr, imm) ((ptr) = fter_pie_st_qacc(3, ptr, imm))

#endif /* FTER_PIE */

/**
 * @brief Stores QACC's raw 40 bytes into @p buf (16 words, 16-byte aligned:
 * QACC_L's 20 bytes at bytes 0-19, QACC_H's at 32-51) and adds its first
 * @p count (<= 16) signed 20-bit lanes to dst[0..count).  The unpack reads
 * little-endian words (the host and Xtensa are).
 */
void fter_pie_add_qacc(int32_t *dst, int32_t count, uint32_t *buf);
/** @brief fter_pie_add_qacc that writes the lanes instead of adding them. */
void fter_pie_set_qacc(int32_t *dst, int32_t count, uint32_t *buf);

/** @brief All 16 lanes into @p lanes (fter_pie_set_qacc). */
void fter_pie_read_qacc(int32_t lanes[16], uint32_t *buf);

/**
 * @brief The composite of the ternary matmul tile: for @p chunks 16-k
 * chunks, q0 = next 16 bytes of x (x += 16), then 16 x
 * vsmulas.s8.qacc.ld.incp alternating q1/q2 (sel 0..15) over the weight
 * columns at w.  Expects q1 = the first weight column and w at the second;
 * leaves q1 = the column after the last (w's 16-byte padding).  On the real
 * core one loopnez: 17 instructions per 256 MACs.
 */
void fter_pie_tmm_chunks(const int8_t **x, const int8_t **w, int32_t chunks);

/**
 * @brief A channel group's tokens: for each of @p tokens rows of x (@p x_stride apart), q1 = the
 * first weight column at @p w, QACC = 0, fter_pie_tmm_chunks over the row, and QACC's 16 lanes
 * written (@p set) or added into that row of @p acc (@p acc_stride apart) through @p buf (as
 * fter_pie_set_qacc).  Needs chunks <= 255 (no lane saturates) and 16-byte aligned x rows.  On
 * the real core one asm loop (per token 6 instructions around the chunk loop and the readout);
 * elsewhere exactly the same PIE instructions through the functions above.
 */
void fter_pie_tmm_tokens(int32_t *acc, const int8_t *x, const int8_t *w, int32_t tokens,
                         int32_t chunks, int32_t x_stride, int32_t acc_stride, uint32_t *buf,
                         int set);

#ifdef __cplusplus
}
#endif

#endif /* FTER_PIE_H_ */
