/**
 * @file fter_kernels.h
 * @brief fter's C micro-kernels: ternary x int8 matmul on packed weights
 * and int8 dot products for attention.
 *
 * Each kernel exists as a portable reference (`*_ref`, in
 * runtime/kernels/<op>_ref.c) and an optimised scalar version for Xtensa
 * cores (`*_xtensa`, in <op>_xtensa.c, portable C that also runs on the
 * host).  The public names without suffix, which TVM's `T.call_extern`
 * uses, are defined in runtime/kernels/kernel_dispatch.c and forward to the
 * reference when FTER_KERNELS_REF is defined, else to the optimised
 * version.  Both versions return bit-identical results.
 *
 * Weight packing (SPEC §2), per output row j of K weights w in {-1,0,1}:
 * - "b2": 4 weights per byte, code w + 1 in bits 2*(i%4) of byte i/4;
 *   ceil(K/4) bytes per row.
 * - "b3": 5 weights per byte, byte = sum_{t<5} (w_{5b+t} + 1) * 3^t;
 *   ceil(K/5) bytes per row; padding weights are 0 (code 1).
 * runtime/packing.py has the matching NumPy packers.
 */
#ifndef FTER_KERNELS_H_
#define FTER_KERNELS_H_

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/**
 * @brief Builds the optimised kernels' decode tables (and the LX7's softmax
 * and GELU tables) now instead of on their first call.  Call it at start-up
 * when kernels may first run on two cores at the same time (the lazy path
 * is not synchronised); later calls return at once.
 */
void fter_kernels_init(void);

/**
 * @brief Ternary matmul micro-kernel, format b2: for j in [0, n),
 * acc[j] += sum_{i<k} x[i] * w_j[i], where row j starts at w + j*w_stride.
 *
 * Shapes: acc int32[n], x int8[k], w uint8[n rows of w_stride >= ceil(k/4)
 * bytes].  k need not be a multiple of 4 (the last byte is partial).
 * Accumulates, never overwrites.  Exact: no saturation; |sum| <= 128*k
 * fits int32 for any k < 2^24.  Alignment: none required (bytes are read
 * one by one).  The optimised version packs two products per 32-bit
 * multiply, builds 6 KiB of decode tables in RAM on its first call (shared
 * with b3) and uses the reference when k < 16.
 */
void fter_tmm_b2(int32_t *acc, const int8_t *x, const uint8_t *w, int32_t k, int32_t n,
                 int32_t w_stride);
void fter_tmm_b2_ref(int32_t *acc, const int8_t *x, const uint8_t *w, int32_t k, int32_t n,
                     int32_t w_stride);
void fter_tmm_b2_xtensa(int32_t *acc, const int8_t *x, const uint8_t *w, int32_t k, int32_t n,
                        int32_t w_stride);

/**
 * @brief Ternary matmul micro-kernel, format b3 (5 trits per byte): same
 * contract as fter_tmm_b2 with rows of w_stride >= ceil(k/5) bytes.  The
 * optimised version decodes bytes through a 256-entry table (no division)
 * and uses the reference when k < 16.
 */
void fter_tmm_b3(int32_t *acc, const int8_t *x, const uint8_t *w, int32_t k, int32_t n,
                 int32_t w_stride);
void fter_tmm_b3_ref(int32_t *acc, const int8_t *x, const uint8_t *w, int32_t k, int32_t n,
                     int32_t w_stride);
void fter_tmm_b3_xtensa(int32_t *acc, const int8_t *x, const uint8_t *w, int32_t k, int32_t n,
                        int32_t w_stride);

/**
 * @brief Ternary matmul by table lookup, formats b3 and b2: the contract of
 * fter_tmm_b3 / fter_tmm_b2 (bit-identical results), a different cost.
 * Per call and block of 200 (b3) / 160 (b2) weights it builds 256-entry
 * int16 tables of partial sums of the activations (~256 adds per weight
 * byte of x), then spends one load and one add per weight byte and row, so
 * it wins when n is large.  Uses a 20 KiB static buffer: not re-entrant.
 * The optimised versions live in ternary_matmul_lut.c; with
 * FTER_KERNELS_REF the public names forward to the references.
 */
void fter_tmm_b3_lut(int32_t *acc, const int8_t *x, const uint8_t *w, int32_t k, int32_t n,
                     int32_t w_stride);
void fter_tmm_b3_lut_xtensa(int32_t *acc, const int8_t *x, const uint8_t *w, int32_t k, int32_t n,
                            int32_t w_stride);
void fter_tmm_b2_lut(int32_t *acc, const int8_t *x, const uint8_t *w, int32_t k, int32_t n,
                     int32_t w_stride);
void fter_tmm_b2_lut_xtensa(int32_t *acc, const int8_t *x, const uint8_t *w, int32_t k, int32_t n,
                            int32_t w_stride);

/**
 * @brief int8 dot product sum_{i<n} a[i] * b[i] (rows of Q and K in
 * attention scores).  Exact int32 result, no saturation: |sum| <= 2^14 * n
 * fits for n < 2^17.  No alignment required.
 */
int32_t fter_dot_s8(const int8_t *a, const int8_t *b, int32_t n);
int32_t fter_dot_s8_ref(const int8_t *a, const int8_t *b, int32_t n);
int32_t fter_dot_s8_xtensa(const int8_t *a, const int8_t *b, int32_t n);

/**
 * @brief uint8 x int8 strided dot product sum_{i<n} p[i] * v[i*v_stride]
 * (softmax probabilities quantised to uint8 times one column of V, whose
 * rows are v_stride bytes apart).  Exact int32, no saturation: |sum| <=
 * 255*128*n fits for n < 65793.  No alignment required.
 */
int32_t fter_dot_u8s8(const uint8_t *p, const int8_t *v, int32_t n, int32_t v_stride);
int32_t fter_dot_u8s8_ref(const uint8_t *p, const int8_t *v, int32_t n, int32_t v_stride);
int32_t fter_dot_u8s8_xtensa(const uint8_t *p, const int8_t *v, int32_t n, int32_t v_stride);

/**
 * @brief Weight-stationary ternary matmul tile, format b3 (fmt b2: same with
 * b2 rows): for i < t, j < nb,
 * acc[i*acc_stride + j] += sum_{r<k} x[i*x_stride + r] * w_j[r], where the
 * packed row w_j starts at w + j*w_stride.
 *
 * Exact int32, accumulates.  `_ref` runs fter_tmm_b3_ref per token.  `_pie`
 * (ESP32-S3 PIE, emulated exactly on other cores, ternary_matmul_pie.c)
 * decodes each group of 16 rows once into a 16-byte-aligned static scratch
 * of (FTER_PIE_MAX_K + 16) * 16 bytes (FTER_PIE_MAX_K defaults to 1536; larger
 * k uses the reference) and accumulates 16 channels per token in QACC
 * (17 PIE instructions per 256 MACs).  x rows are read in place when x is
 * 16-byte aligned and k, x_stride are multiples of 16, else copied.  No
 * saturation for any k (QACC read out every 4080 k).  Not re-entrant.
 */
void fter_tmm_tile_b3(int32_t *acc, const int8_t *x, const uint8_t *w, int32_t k, int32_t nb,
                      int32_t w_stride, int32_t t, int32_t x_stride, int32_t acc_stride);
void fter_tmm_tile_b3_ref(int32_t *acc, const int8_t *x, const uint8_t *w, int32_t k, int32_t nb,
                          int32_t w_stride, int32_t t, int32_t x_stride, int32_t acc_stride);
void fter_tmm_tile_b3_pie(int32_t *acc, const int8_t *x, const uint8_t *w, int32_t k, int32_t nb,
                          int32_t w_stride, int32_t t, int32_t x_stride, int32_t acc_stride);
void fter_tmm_tile_b2(int32_t *acc, const int8_t *x, const uint8_t *w, int32_t k, int32_t nb,
                      int32_t w_stride, int32_t t, int32_t x_stride, int32_t acc_stride);
void fter_tmm_tile_b2_ref(int32_t *acc, const int8_t *x, const uint8_t *w, int32_t k, int32_t nb,
                          int32_t w_stride, int32_t t, int32_t x_stride, int32_t acc_stride);
void fter_tmm_tile_b2_pie(int32_t *acc, const int8_t *x, const uint8_t *w, int32_t k, int32_t nb,
                          int32_t w_stride, int32_t t, int32_t x_stride, int32_t acc_stride);
/**
 * @brief The same tiles written instead of added to: acc[i*acc_stride + j] =
 * sum_r x[i*x_stride + r] * w_j[r] for i < t, j < nb (the old values are not
 * read; the esp32s3 integer schedules use them where the accumulator starts
 * at zero, which saves zeroing it and reading it back).
 */
void fter_tmm_tile_b3_set(int32_t *acc, const int8_t *x, const uint8_t *w, int32_t k, int32_t nb,
                          int32_t w_stride, int32_t t, int32_t x_stride, int32_t acc_stride);
void fter_tmm_tile_b3_set_ref(int32_t *acc, const int8_t *x, const uint8_t *w, int32_t k,
                              int32_t nb, int32_t w_stride, int32_t t, int32_t x_stride,
                              int32_t acc_stride);
void fter_tmm_tile_b3_set_pie(int32_t *acc, const int8_t *x, const uint8_t *w, int32_t k,
                              int32_t nb, int32_t w_stride, int32_t t, int32_t x_stride,
                              int32_t acc_stride);
void fter_tmm_tile_b2_set(int32_t *acc, const int8_t *x, const uint8_t *w, int32_t k, int32_t nb,
                          int32_t w_stride, int32_t t, int32_t x_stride, int32_t acc_stride);
void fter_tmm_tile_b2_set_ref(int32_t *acc, const int8_t *x, const uint8_t *w, int32_t k,
                              int32_t nb, int32_t w_stride, int32_t t, int32_t x_stride,
                              int32_t acc_stride);
void fter_tmm_tile_b2_set_pie(int32_t *acc, const int8_t *x, const uint8_t *w, int32_t k,
                              int32_t nb, int32_t w_stride, int32_t t, int32_t x_stride,
                              int32_t acc_stride);

/**
 * @brief The b3 and b2 set tiles with their weights' gathered bytes kept: one
 * call of fter_tmm_stage_b3 (b2) stores, for every full group of 16 rows
 * (channels 16g..16g+15 for g < nb / 16), the group's packed bytes as the PIE
 * decode reads them into stage + 16 * g * bytes ([bytes][16] each, bytes the
 * packed row's (k + 4) / 5 or (k + 3) / 4: FTER_TMM_STAGE_BYTES(k, nb, 5 or 4)
 * in all, 16-byte aligned); then any number of fter_tmm_tile_b3_staged_set
 * (b2) calls with the same w, k, nb, w_stride (and other tokens) decode those
 * groups from the stage instead of gathering the bytes again (the integer MLP
 * runs fc1 and fc2 block of tokens by block of tokens).  Same values as
 * fter_tmm_tile_b3_set (b2).  The reference (FTER_KERNELS_REF) and
 * k > FTER_PIE_MAX_K decode from w and leave the stage alone.
 */
#define FTER_TMM_STAGE_BYTES(k, nb, per) (((nb) / 16) * 16 * (((k) + (per) - 1) / (per)))
#define FTER_TMM_STAGED(fmt)                                                                  \
  void fter_tmm_stage_##fmt(uint8_t *stage, const uint8_t *w, int32_t k, int32_t nb,         \
                            int32_t w_stride);                                                \
  void fter_tmm_stage_##fmt##_pie(uint8_t *stage, const uint8_t *w, int32_t k, int32_t nb,   \
                                  int32_t w_stride);                                          \
  void fter_tmm_tile_##fmt##_staged_set(int32_t *acc, const int8_t *x, const uint8_t *w,     \
                                        const uint8_t *stage, int32_t k, int32_t nb,          \
                                        int32_t w_stride, int32_t t, int32_t x_stride,        \
                                        int32_t acc_stride);                                  \
  void fter_tmm_tile_##fmt##_staged_set_pie(int32_t *acc, const int8_t *x, const uint8_t *w, \
                                            const uint8_t *stage, int32_t k, int32_t nb,      \
                                            int32_t w_stride, int32_t t, int32_t x_stride,    \
                                            int32_t acc_stride);
FTER_TMM_STAGED(b3)
FTER_TMM_STAGED(b2)
#undef FTER_TMM_STAGED

/** @brief Builds the PIE tile's decode tables (called by fter_kernels_init). */
void fter_tmm_pie_init(void);

/**
 * @brief Attention scores of one query row: scores[j] += sum_{c<hd} q[c] *
 * k[j*k_stride + c] for j < n (one head).  Exact int32, accumulates.  `_pie`
 * keeps the query in PIE registers and accumulates each key in ACCX; it
 * needs hd a multiple of 16 and <= 96, q and k 16-byte aligned, k_stride a
 * multiple of 16, else it runs the reference (attention_ref.c).
 */
void fter_qk_row(int32_t *scores, const int8_t *q, const int8_t *k, int32_t hd, int32_t n,
                 int32_t k_stride);
void fter_qk_row_ref(int32_t *scores, const int8_t *q, const int8_t *k, int32_t hd, int32_t n,
                     int32_t k_stride);
void fter_qk_row_pie(int32_t *scores, const int8_t *q, const int8_t *k, int32_t hd, int32_t n,
                     int32_t k_stride);
/** @brief fter_qk_row with the scores written (scores[j] = ...), not added to. */
void fter_qk_row_set(int32_t *scores, const int8_t *q, const int8_t *k, int32_t hd, int32_t n,
                     int32_t k_stride);
void fter_qk_row_set_ref(int32_t *scores, const int8_t *q, const int8_t *k, int32_t hd,
                         int32_t n, int32_t k_stride);
void fter_qk_row_set_pie(int32_t *scores, const int8_t *q, const int8_t *k, int32_t hd,
                         int32_t n, int32_t k_stride);

/**
 * @brief One row of probabilities times V: out[c] += sum_{j<n} p[j] *
 * v[j*v_stride + c] for c < hd (uint8 p, int8 V).  Exact int32 for any
 * input, accumulates.  `_pie` accumulates 16 channels in QACC with min(p,127)
 * and a fix-up pass for p > 127, reading QACC out whenever the block's
 * probability sum would pass 4095 (no saturation).  Needs hd a multiple of
 * 16, v 16-byte aligned, v_stride a multiple of 16 and n <= FTER_PIE_MAX_N
 * (default 1024), else it runs the reference.  Not re-entrant (static
 * buffers of ~6 n bytes).
 */
void fter_pv_row(int32_t *out, const uint8_t *p, const int8_t *v, int32_t n, int32_t hd,
                 int32_t v_stride);
void fter_pv_row_ref(int32_t *out, const uint8_t *p, const int8_t *v, int32_t n, int32_t hd,
                     int32_t v_stride);
void fter_pv_row_pie(int32_t *out, const uint8_t *p, const int8_t *v, int32_t n, int32_t hd,
                     int32_t v_stride);
/** @brief fter_pv_row with the outputs written (out[c] = ...), not added to. */
void fter_pv_row_set(int32_t *out, const uint8_t *p, const int8_t *v, int32_t n, int32_t hd,
                     int32_t v_stride);
void fter_pv_row_set_ref(int32_t *out, const uint8_t *p, const int8_t *v, int32_t n, int32_t hd,
                         int32_t v_stride);
void fter_pv_row_set_pie(int32_t *out, const uint8_t *p, const int8_t *v, int32_t n, int32_t hd,
                         int32_t v_stride);

/**
 * @brief V in groups of 16 channels: fter_v_groups16 copies v[j*v_stride + c]
 * (j < n, c < cols, cols a multiple of 16) to vg[(c/16)*16*n + 16*j + c%16],
 * and fter_pv_row_g16 is fter_pv_row over such a head (its hd/16 groups
 * consecutive, 16*n bytes apart): out[c] (+)= sum_j p[j] * vg[(c/16)*16*n +
 * 16*j + c%16].  A group's rows sit 16 bytes apart, so the PIE row multiplies
 * each with the fused load of the next (ee.vsmulas.s8.qacc.ld.incp), 17
 * instructions per 16 keys instead of 33.  Same values as fter_pv_row; vg must
 * be 16-byte aligned (else the reference runs).
 */
void fter_v_groups16(int8_t *vg, const int8_t *v, int32_t n, int32_t cols, int32_t v_stride);
void fter_v_groups16_ref(int8_t *vg, const int8_t *v, int32_t n, int32_t cols, int32_t v_stride);
void fter_v_groups16_pie(int8_t *vg, const int8_t *v, int32_t n, int32_t cols, int32_t v_stride);
void fter_pv_row_g16(int32_t *out, const uint8_t *p, const int8_t *vg, int32_t n, int32_t hd);
void fter_pv_row_g16_ref(int32_t *out, const uint8_t *p, const int8_t *vg, int32_t n, int32_t hd);
void fter_pv_row_g16_pie(int32_t *out, const uint8_t *p, const int8_t *vg, int32_t n, int32_t hd);
void fter_pv_row_g16_set(int32_t *out, const uint8_t *p, const int8_t *vg, int32_t n, int32_t hd);
void fter_pv_row_g16_set_ref(int32_t *out, const uint8_t *p, const int8_t *vg, int32_t n,
                             int32_t hd);
void fter_pv_row_g16_set_pie(int32_t *out, const uint8_t *p, const int8_t *vg, int32_t n,
                             int32_t hd);

/**
 * @brief The integer LayerNorm (numerics="integer"), the fixed-point
 * contract of schedules/integer/intmath.py bit for bit, in two calls.
 * fter_ln_affine_i8, once per call of the kernel: gb[2j] = g[j] * g0 and
 * gb[2j + 1] = b[j] * g1 * 2^10 + 2^14 (side by side for the row's loop), the
 * ternary gamma g[d] and beta b[d] with their Q15 weights g0, g1 from the
 * scales ab[0], ab[1].
 * fter_ln_row_i8, per row: float32 x[d] to int8 codes q[d] and their
 * float32 scale *s (sq_shift = max(1, ceil(log2 d)), eps as float32);
 * scratch row int32[d].  Both re-entrant.  Portable C
 * (runtime/kernels/layernorm_int.c); the reference is the contract's NumPy
 * form (schedules/integer/intmath_ref.py).
 */
void fter_ln_affine_i8(int32_t *gb, const int8_t *g, const int8_t *b, const float *ab, int32_t d);
void fter_ln_row_i8(const float *x, const int32_t *gb, const float *ab, int8_t *q, float *s,
                    int32_t *row, int32_t d, int32_t sq_shift, float eps);

/**
 * @brief The integer MLP's fc1 values over a block of tokens
 * (numerics="integer"): V[i][j], the contract's dequant of
 * acc[i*acc_stride + j] (channel tables cm, ce, cb[nb]; token tables
 * rm, re[t]; abits = bit length of 128 k), in place of the accumulators,
 * and vmax[i] = max_j V[i][j] (written, not folded) for i < t, j < nb.
 * The channels come as fter_value_table made them from cm, ce, cb, nb and
 * abits once per call of the MLP (FTER_VALUE_TABLE_WORDS(nb) int32 words:
 * the value loops' per-channel factors, which the blocks would otherwise
 * rebuild each time).  Portable C (runtime/kernels/epilogue_int.c),
 * re-entrant.
 */
#define FTER_VALUE_CHUNK 128
#define FTER_VALUE_TABLE_WORDS(nb) \
  ((((nb) + FTER_VALUE_CHUNK - 1) / FTER_VALUE_CHUNK) * (FTER_VALUE_CHUNK * 5 + 2))
void fter_value_table(int32_t *table, const int32_t *cm, const int32_t *ce, const int32_t *cb,
                      int32_t nb, int32_t abits);
void fter_value_max_tile(int32_t *vmax, int32_t *acc, const int32_t *table, const int32_t *rm,
                         const int32_t *re, int32_t t, int32_t nb, int32_t acc_stride,
                         int32_t abits);

/**
 * @brief The integer MLP's hidden codes from its fc1 values
 * (numerics="integer"): q[i*q_stride + j] = quant8(gelu(v[i*v_stride + j]),
 * mult[i]) for i < t, j < nb (schedules/integer/intmath.py), gelu through
 * the per-call Phi table tab[1025] (intmath.gelu_table), mult[i] the row's
 * packed quantizer multiplier (made from the row's GELU bound).  q may be
 * v's own memory (the codes in place of the values, as the integer MLP
 * writes them) with q_stride <= 4 * v_stride: every code is stored after the
 * values at and before it are read.
 * Portable C (runtime/kernels/epilogue_int.c), re-entrant once
 * fter_kernels_init has run; the LX7 build reads gelu from the table
 * fter_gelu_init builds (on first use otherwise) instead of interpolating
 * in tab (the same bits: the table is the contract's gelu of every input).
 */
void fter_gelu_codes_tile(int8_t *q, const int32_t *v, const int32_t *tab, const int32_t *mult,
                          int32_t t, int32_t nb, int32_t q_stride, int32_t v_stride);

/**
 * @brief A tile of a projection quantized per channel (numerics="integer",
 * the V projection): the contract's values V[i][j] (dequant of
 * acc[i*acc_stride + j] with the channel tables cm, ce, cb[nb] and the token
 * tables rm, re[t]; abits = bit length of 128 k) replace the accumulators in
 * place, then each channel's absmax A[j] over the t tokens gives
 * y[i*y_stride + j] = quant8(V[i][j], quant_multiplier(A[j])) and
 * scale[j] = A[j] * 2^-12.  Portable C (runtime/kernels/epilogue_int.c),
 * re-entrant.
 */
void fter_channel_codes_tile(int8_t *y, float *scale, int32_t *acc, const int32_t *cm,
                             const int32_t *ce, const int32_t *cb, const int32_t *rm,
                             const int32_t *re, int32_t t, int32_t nb, int32_t y_stride,
                             int32_t acc_stride, int32_t abits);

/**
 * @brief The same tile quantized per token (numerics="integer", one head of
 * the K projection): values in place as fter_channel_codes_tile, then each
 * token's absmax A[i] over the nb channels gives
 * y[i*y_stride + j] = quant8(V[i][j], quant_multiplier(A[i])) and
 * scale[i*scale_stride] = A[i] * 2^-12.  Portable C
 * (runtime/kernels/epilogue_int.c), re-entrant.
 */
void fter_row_codes_tile(int8_t *y, float *scale, int32_t *acc, const int32_t *cm,
                         const int32_t *ce, const int32_t *cb, const int32_t *rm,
                         const int32_t *re, int32_t t, int32_t nb, int32_t y_stride,
                         int32_t scale_stride, int32_t acc_stride, int32_t abits);

/**
 * @brief fter_row_codes_tile with each token's integer absmax A[i] written
 * to amax[i*amax_stride] instead of a float scale (the attention block's Q,
 * whose scale the kernel derives from A).  Portable C
 * (runtime/kernels/epilogue_int.c), re-entrant.
 */
void fter_row_absmax_codes_tile(int8_t *y, int32_t *amax, int32_t *acc, const int32_t *cm,
                                const int32_t *ce, const int32_t *cb, const int32_t *rm,
                                const int32_t *re, int32_t t, int32_t nb, int32_t y_stride,
                                int32_t amax_stride, int32_t acc_stride, int32_t abits);

/**
 * @brief One attention output row's codes (numerics="integer"): the P.V
 * outputs pacc[hh*head_stride + c] weighted per value channel,
 * round(pacc * vm[hh*hd + c] / 2^14), in place, their absmax A to *amax, and
 * q[hh*hd + c] = quant8(value, quant_multiplier(A)) for hh < h, c < hd.
 * Portable C (runtime/kernels/epilogue_int.c), re-entrant.
 */
void fter_attn_out_codes_row(int8_t *q, int32_t *amax, int32_t *pacc, const int32_t *vm,
                             int32_t h, int32_t hd, int32_t head_stride);

/**
 * @brief The integer patch quantizer (numerics="integer") of patch @p patch (row-major over a
 * grid @p gw patches wide) of the float image @p img [c][img_h][img_w], patches p x p: its
 * absmax scale max(absmax, 1e-5) / 127 into *s and its c*p*p pixels, in (channel, row, column)
 * order, as int8 codes into q -- schedules/integer/intmath.py's patch_scale, patch_multiplier,
 * fixed_from_f32 and quant8 bit for bit.
 */
void fter_patch_codes(int8_t *q, float *s, const float *img, int32_t patch, int32_t c,
                      int32_t p, int32_t gw, int32_t img_h, int32_t img_w);

/**
 * @brief The float residual epilogue of a projection over a tile:
 * y[i*y_stride + j] = (float)acc[i*acc_stride + j] * (alpha[j] * s[i])
 * + bias[j] + res[i*res_stride + j] for i < t, j < nb, each operation
 * rounded to float32 in that order (y may be res: in place).  Portable C
 * (runtime/kernels/epilogue_int.c; on the LX7 simulator build the FPU in
 * inline asm), re-entrant.
 */
void fter_residual_tile(float *y, const float *res, const int32_t *acc, const float *alpha,
                        const float *s, const float *bias, int32_t t, int32_t nb,
                        int32_t y_stride, int32_t res_stride, int32_t acc_stride);

/**
 * @brief One attention row's integer softmax (numerics="integer"), all h
 * heads: logits L[j] = dequant(scores[hh*scores_stride + j]) in Q10 through
 * the row's qm[hh], qe[hh] and key j's km, ke[j*k_stride + hh] (sbits = bit
 * length of 127^2 hd), then exp_neg(max L - L[j]) in Q15, one reciprocal of
 * the sum, uint8 probabilities p[hh*p_stride + j] = min(round(255 e / sum),
 * 255) -- schedules/integer/intmath.py bit for bit.  work: int32 rows of n
 * (stride work_stride) for the logits and exponentials.  kf[2*(j*k_stride +
 * hh)] = km[j*k_stride + hh] and kf[2*(j*k_stride + hh) + 1] =
 * 2^clamp(30 - kmax[hh] + ke[j*k_stride + hh], 0, 30), kmax[hh] the largest
 * ke of head hh and kneg[hh] minus its smallest: the keys' factors of the LX7
 * loop, side by side (other cores do not read them).  Portable C
 * (runtime/kernels/epilogue_int.c), re-entrant once fter_kernels_init has
 * built its exp table (it builds it on first use).
 */
void fter_softmax_row_u8(uint8_t *p, int32_t *work, const int32_t *scores, const int32_t *qm,
                         const int32_t *qe, const int32_t *km, const int32_t *ke,
                         const int32_t *kf, const int32_t *kneg, const int32_t *kmax, int32_t n,
                         int32_t h, int32_t sbits, int32_t p_stride, int32_t work_stride,
                         int32_t scores_stride, int32_t k_stride);

/**
 * @brief Builds fter_softmax_row_u8's exp tables (called by fter_kernels_init):
 * the cubic's fraction table everywhere, and in builds for the ESP32-S3's PIE
 * core the LX7 loop's whole exp table (fter_exp_lut_fill, 21 KB, internal RAM).
 */
void fter_softmax_init(void);

/**
 * @brief Entries of the LX7 softmax's exp table: every difference
 * 0 <= D <= 10648 of a logit below its row's maximum (Q10).  10648 is the
 * smallest D whose intmath.exp_neg is 0, as it is for every larger D.
 */
#define FTER_EXP_LUT_SIZE 10649

/**
 * @brief lut[D] = intmath.exp_neg(D) (Q15, <= 2^15) for
 * 0 <= D < FTER_EXP_LUT_SIZE; lut[FTER_EXP_LUT_SIZE - 1] is 0, so the loop
 * reads every larger D through the same clamped index.
 */
void fter_exp_lut_fill(uint16_t *lut);

/** @brief Entry k <= 1024 of intmath.gelu_table (the Phi table, Q15). */
int32_t fter_gelu_table_entry(int32_t k);

/** @brief Entries of the GELU table: every value 0 <= u < 4 in Q12. */
#define FTER_GELU_LUT_SIZE (1 << 14)

/**
 * @brief lut[u] = intmath.gelu(-u) for 0 <= u < FTER_GELU_LUT_SIZE (values in
 * Q12, <= 0; gelu(u) = lut[u] + u), from Phi table entries
 * fter_gelu_table_entry makes.  lut[FTER_GELU_LUT_SIZE - 1] is 0, which lets
 * the LX7 loop read the saturated inputs |v| >= 4 through the same clamped
 * index.
 */
void fter_gelu_lut_fill(int16_t *lut);

/**
 * @brief Builds the LX7 GELU loop's table (32 KB, internal RAM) in builds
 * for the ESP32-S3's PIE core; nothing elsewhere (called by fter_kernels_init).
 */
void fter_gelu_init(void);

#ifdef __cplusplus
}
#endif

#endif /* FTER_KERNELS_H_ */
