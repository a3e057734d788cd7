/* The public kernel names (the symbols TVM's T.call_extern links to),
 * forwarding to one implementation per build: -DFTER_KERNELS_REF selects
 * the portable reference, the default is the optimised version.  A call
 * rather than a macro because the generated C declares these names itself
 * and never includes fter_kernels.h. */
#include "fter_kernels.h"

/* FTER_MICRO_TIMING (the simulator builds): every call through a public name adds its cycles
 * (runtime/sim/harness.h fter_cycles) to fter_micro_cycles, so a profile can tell the
 * micro-kernels' share of each generated kernel from the code around them. */
#ifdef FTER_MICRO_TIMING
uint32_t fter_cycles(void);
uint32_t fter_micro_cycles;
#define FTER_TIMED(call)                         \
  do {                                           \
    const uint32_t t0_ = fter_cycles();          \
    call;                                        \
    fter_micro_cycles += fter_cycles() - t0_;    \
  } while (0)
#else
#define FTER_TIMED(call) call
#endif

#ifdef FTER_KERNELS_REF
#define FTER_IMPL(name) name##_ref
#else
#define FTER_IMPL(name) name##_xtensa
#endif

void fter_tmm_b2(int32_t *acc, const int8_t *x, const uint8_t *w, int32_t k, int32_t n,
                 int32_t w_stride) {
  FTER_TIMED(FTER_IMPL(fter_tmm_b2)(acc, x, w, k, n, w_stride));
}

void fter_tmm_b3(int32_t *acc, const int8_t *x, const uint8_t *w, int32_t k, int32_t n,
                 int32_t w_stride) {
  FTER_TIMED(FTER_IMPL(fter_tmm_b3)(acc, x, w, k, n, w_stride));
}

/* The LUT variants (ternary_matmul_lut.c): the tuner picks them per shape; their reference
 * is the plain kernel's. */
#ifdef FTER_KERNELS_REF
#define FTER_LUT(fmt) fter_tmm_##fmt##_ref
#else
#define FTER_LUT(fmt) fter_tmm_##fmt##_lut_xtensa
#endif

void fter_tmm_b2_lut(int32_t *acc, const int8_t *x, const uint8_t *w, int32_t k, int32_t n,
                     int32_t w_stride) {
  FTER_TIMED(FTER_LUT(b2)(acc, x, w, k, n, w_stride));
}

void fter_tmm_b3_lut(int32_t *acc, const int8_t *x, const uint8_t *w, int32_t k, int32_t n,
                     int32_t w_stride) {
  FTER_TIMED(FTER_LUT(b3)(acc, x, w, k, n, w_stride));
}

int32_t fter_dot_s8(const int8_t *a, const int8_t *b, int32_t n) {
  return FTER_IMPL(fter_dot_s8)(a, b, n);
}

int32_t fter_dot_u8s8(const uint8_t *p, const int8_t *v, int32_t n, int32_t v_stride) {
  return FTER_IMPL(fter_dot_u8s8)(p, v, n, v_stride);
}

/* The PIE kernels (ternary_matmul_pie.c, attention_pie.c): on cores without PIE the layer
 * emulates every PIE instruction exactly (slowly), so host, lx106 and LX7 builds run one
 * instruction sequence; FTER_KERNELS_REF selects the portable reference instead. */
#ifdef FTER_KERNELS_REF
#define FTER_PIE_IMPL(name) name##_ref
#else
#define FTER_PIE_IMPL(name) name##_pie
#endif

void fter_tmm_tile_b3(int32_t *acc, const int8_t *x, const uint8_t *w, int32_t k, int32_t nb,
                      int32_t w_stride, int32_t t, int32_t x_stride, int32_t acc_stride) {
  FTER_TIMED(FTER_PIE_IMPL(fter_tmm_tile_b3)(acc, x, w, k, nb, w_stride, t, x_stride, acc_stride));
}

void fter_tmm_tile_b2(int32_t *acc, const int8_t *x, const uint8_t *w, int32_t k, int32_t nb,
                      int32_t w_stride, int32_t t, int32_t x_stride, int32_t acc_stride) {
  FTER_TIMED(FTER_PIE_IMPL(fter_tmm_tile_b2)(acc, x, w, k, nb, w_stride, t, x_stride, acc_stride));
}

void fter_tmm_tile_b3_set(int32_t *acc, const int8_t *x, const uint8_t *w, int32_t k, int32_t nb,
                          int32_t w_stride, int32_t t, int32_t x_stride, int32_t acc_stride) {
  FTER_TIMED(
      FTER_PIE_IMPL(fter_tmm_tile_b3_set)(acc, x, w, k, nb, w_stride, t, x_stride, acc_stride));
}

void fter_tmm_tile_b2_set(int32_t *acc, const int8_t *x, const uint8_t *w, int32_t k, int32_t nb,
                          int32_t w_stride, int32_t t, int32_t x_stride, int32_t acc_stride) {
  FTER_TIMED(
      FTER_PIE_IMPL(fter_tmm_tile_b2_set)(acc, x, w, k, nb, w_stride, t, x_stride, acc_stride));
}

/* The staged tiles: the reference decodes from w and has no stage to fill */
#ifdef FTER_KERNELS_REF
#define FTER_TMM_STAGED(fmt)                                                                  \
  void fter_tmm_stage_##fmt(uint8_t *stage, const uint8_t *w, int32_t k, int32_t nb,         \
                            int32_t w_stride) {                                               \
    (void)stage, (void)w, (void)k, (void)nb, (void)w_stride;                                  \
  }                                                                                           \
  void fter_tmm_tile_##fmt##_staged_set(int32_t *acc, const int8_t *x, const uint8_t *w,     \
                                        const uint8_t *stage, int32_t k, int32_t nb,          \
                                        int32_t w_stride, int32_t t, int32_t x_stride,        \
                                        int32_t acc_stride) {                                 \
    (void)stage;                                                                              \
    FTER_TIMED(                                                                               \
        fter_tmm_tile_##fmt##_set_ref(acc, x, w, k, nb, w_stride, t, x_stride, acc_stride));  \
  }
#else
#define FTER_TMM_STAGED(fmt)                                                                  \
  void fter_tmm_stage_##fmt(uint8_t *stage, const uint8_t *w, int32_t k, int32_t nb,         \
                            int32_t w_stride) {                                               \
    FTER_TIMED(fter_tmm_stage_##fmt##_pie(stage, w, k, nb, w_stride));                        \
  }                                                                                           \
  void fter_tmm_tile_##fmt##_staged_set(int32_t *acc, const int8_t *x, const uint8_t *w,     \
                                        const uint8_t *stage, int32_t k, int32_t nb,          \
                                        int32_t w_stride, int32_t t, int32_t x_stride,        \
                                        int32_t acc_stride) {                                 \
    FTER_TIMED(fter_tmm_tile_##fmt##_staged_set_pie(acc, x, w, stage, k, nb, w_stride, t,     \
                                                    x_stride, acc_stride));                   \
  }
#endif
FTER_TMM_STAGED(b3)
FTER_TMM_STAGED(b2)
#undef FTER_TMM_STAGED

void fter_qk_row(int32_t *scores, const int8_t *q, const int8_t *k, int32_t hd, int32_t n,
                 int32_t k_stride) {
  FTER_TIMED(FTER_PIE_IMPL(fter_qk_row)(scores, q, k, hd, n, k_stride));
}

void fter_pv_row(int32_t *out, const uint8_t *p, const int8_t *v, int32_t n, int32_t hd,
                 int32_t v_stride) {
  FTER_TIMED(FTER_PIE_IMPL(fter_pv_row)(out, p, v, n, hd, v_stride));
}

void fter_qk_row_set(int32_t *scores, const int8_t *q, const int8_t *k, int32_t hd, int32_t n,
                     int32_t k_stride) {
  FTER_TIMED(FTER_PIE_IMPL(fter_qk_row_set)(scores, q, k, hd, n, k_stride));
}

void fter_pv_row_set(int32_t *out, const uint8_t *p, const int8_t *v, int32_t n, int32_t hd,
                     int32_t v_stride) {
  FTER_TIMED(FTER_PIE_IMPL(fter_pv_row_set)(out, p, v, n, hd, v_stride));
}

void fter_v_groups16(int8_t *vg, const int8_t *v, int32_t n, int32_t cols, int32_t v_stride) {
  FTER_TIMED(FTER_PIE_IMPL(fter_v_groups16)(vg, v, n, cols, v_stride));
}

void fter_pv_row_g16(int32_t *out, const uint8_t *p, const int8_t *vg, int32_t n, int32_t hd) {
  FTER_TIMED(FTER_PIE_IMPL(fter_pv_row_g16)(out, p, vg, n, hd));
}

void fter_pv_row_g16_set(int32_t *out, const uint8_t *p, const int8_t *vg, int32_t n,
                         int32_t hd) {
  FTER_TIMED(FTER_PIE_IMPL(fter_pv_row_g16_set)(out, p, vg, n, hd));
}
