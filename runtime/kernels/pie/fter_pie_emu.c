/* Exact C emulation of the PIE instructions in fter_pie.h (host and lx106
 * builds).  Semantics from the esp32s3 QEMU translator: 128-bit accesses
 * use addr & ~15, 32-bit QACC stores addr & ~3; fused loads happen after
 * the multiply; accumulators saturate symmetrically (flagged here). */
#include "fter_pie.h"

int fter_pie_overflow;
FTER_THREAD_LOCAL uint32_t fter_pie_instructions;

#if !defined(FTER_PIE)

FTER_THREAD_LOCAL fter_pie_state_t fter_pie_state;

#define QACC_MAX 0x7ffff
#define ACCX_MAX 0x7fffffffffLL

#ifdef FTER_PIE_COUNT
#define COUNT() (++fter_pie_instructions)
#else
#define COUNT() ((void)0)
#endif

static const uint8_t *align16(const void *p) {
  return (const uint8_t *)((uintptr_t)p & ~(uintptr_t)15);
}

static int32_t sat_lane(int32_t v) {
  if (v > QACC_MAX || v < -QACC_MAX) {
    fter_pie_overflow = 1;
    return v > 0 ? QACC_MAX : -QACC_MAX;
  }
  return v;
}

void fter_pie_zero_qacc(void) {
  COUNT();
  for (int l = 0; l < 16; ++l) fter_pie_state.qacc[l] = 0;
}

void fter_pie_zero_accx(void) {
  COUNT();
  fter_pie_state.accx = 0;
}

void fter_pie_zero_q(int q) {
  COUNT();
  for (int b = 0; b < 16; ++b) fter_pie_state.q[q].u8[b] = 0;
}

static void load_q(int q, const void *ptr) {
  const uint8_t *src = align16(ptr);
  for (int b = 0; b < 16; ++b) fter_pie_state.q[q].u8[b] = src[b];
}

void *fter_pie_vld_128(int q, const void *ptr, int32_t inc) {
  COUNT();
  load_q(q, ptr);
  return (void *)((uintptr_t)ptr + (uintptr_t)inc);
}

void *fter_pie_vst_128(int q, void *ptr, int32_t inc) {
  COUNT();
  uint8_t *dst = (uint8_t *)align16(ptr);
  for (int b = 0; b < 16; ++b) dst[b] = fter_pie_state.q[q].u8[b];
  return (void *)((uintptr_t)ptr + (uintptr_t)inc);
}

void fter_pie_ssai(int sar) {
  COUNT();
  fter_pie_state.sar = sar & 31;
}

/* The translator's products: 16-bit, shifted by SAR, cut to the lane's byte */
void fter_pie_vmul_u8(int qz, int qx, int qy) {
  COUNT();
  for (int l = 0; l < 16; ++l) {
    const uint32_t p = (uint32_t)fter_pie_state.q[qx].u8[l] * fter_pie_state.q[qy].u8[l];
    fter_pie_state.q[qz].u8[l] = (uint8_t)(p >> fter_pie_state.sar);
  }
}

void fter_pie_vsubs_s8(int qz, int qx, int qy) {
  COUNT();
  for (int l = 0; l < 16; ++l) {
    const int32_t d = fter_pie_state.q[qx].s8[l] - fter_pie_state.q[qy].s8[l];
    fter_pie_state.q[qz].s8[l] = (int8_t)(d > 127 ? 127 : d < -127 ? -127 : d);
  }
}

static void vsmulas(int qx, int qy, int sel) {
  const int32_t s = fter_pie_state.q[qy].s8[sel];
  for (int l = 0; l < 16; ++l)
    fter_pie_state.qacc[l] = sat_lane(fter_pie_state.qacc[l] + fter_pie_state.q[qx].s8[l] * s);
}

void fter_pie_vsmulas_s8_qacc(int qx, int qy, int sel) {
  COUNT();
  vsmulas(qx, qy, sel);
}

void *fter_pie_vsmulas_s8_qacc_ld_incp(int qu, const void *ptr, int qx, int qy, int sel) {
  COUNT();
  vsmulas(qx, qy, sel);
  load_q(qu, ptr);
  return (void *)((uintptr_t)ptr + 16);
}

static void vmulas_accx(int qx, int qy) {
  int64_t a = fter_pie_state.accx;
  for (int l = 0; l < 16; ++l) a += fter_pie_state.q[qx].s8[l] * fter_pie_state.q[qy].s8[l];
  if (a > ACCX_MAX || a < -ACCX_MAX) {
    fter_pie_overflow = 1;
    a = a > 0 ? ACCX_MAX : -ACCX_MAX;
  }
  fter_pie_state.accx = a;
}

void fter_pie_vmulas_s8_accx(int qx, int qy) {
  COUNT();
  vmulas_accx(qx, qy);
}

void *fter_pie_vmulas_s8_accx_ld(int qu, const void *ptr, int32_t inc, int qx, int qy) {
  COUNT();
  vmulas_accx(qx, qy);
  load_q(qu, ptr);
  return (void *)((uintptr_t)ptr + (uintptr_t)inc);
}

int32_t fter_pie_srs_accx(void) {
  COUNT();
  return (int32_t)fter_pie_state.accx;
}

/* QACC_L (part 0/1) or QACC_H (2/3) as the hardware's 20 raw bytes: lane
 * pair (2i, 2i+1) in bytes 5i..5i+4, low lane in the low 20 bits. */
static void qacc_bytes(int high, uint8_t out[20]) {
  const int32_t *lanes = fter_pie_state.qacc + (high ? 8 : 0);
  for (int i = 0; i < 4; ++i) {
    const uint32_t a = (uint32_t)lanes[2 * i] & 0xfffffu, b = (uint32_t)lanes[2 * i + 1] & 0xfffffu;
    out[5 * i + 0] = (uint8_t)a;
    out[5 * i + 1] = (uint8_t)(a >> 8);
    out[5 * i + 2] = (uint8_t)((a >> 16) | (b << 4));
    out[5 * i + 3] = (uint8_t)(b >> 4);
    out[5 * i + 4] = (uint8_t)(b >> 12);
  }
}

void *fter_pie_st_qacc(int part, void *ptr, int32_t inc) {
  COUNT();
  uint8_t raw[20];
  qacc_bytes(part >= 2, raw);
  if ((part & 1) == 0) {
    uint8_t *dst = (uint8_t *)align16(ptr);
    for (int b = 0; b < 16; ++b) dst[b] = raw[b];
  } else {
    uint8_t *dst = (uint8_t *)((uintptr_t)ptr & ~(uintptr_t)3);
    for (int b = 0; b < 4; ++b) dst[b] = raw[16 + b];
  }
  return (void *)((uintptr_t)ptr + (uintptr_t)inc);
}

#endif /* !FTER_PIE */
