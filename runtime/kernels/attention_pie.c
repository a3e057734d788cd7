/* int8 attention rows on the ESP32-S3's PIE (emulated exactly elsewhere,
 * see pie/fter_pie.h).
 *
 * QK: the query row (hd/16 <= 6 chunks) stays in q0-q5; per key ACCX
 * accumulates the chunks, loading K chunk c+1 into q6/q7 while multiplying
 * chunk c (vmulas.s8.accx.ld.ip).  |score| <= 2^14 * 96: no saturation.
 *
 * PV: QACC lane l = channel 16g + l; per key j one 128-bit load of V[j, 16g..]
 * and one vsmulas.s8.qacc broadcasting the probability from q1 (16 of them).
 * PIE multiplies s8 x s8, so the main pass uses min(p, 127) and a fix-up pass
 * adds (p - 127) V[j] for p > 127 (128 split as 127 + 1).  Keys are taken in
 * chunks of 16 and chunks in blocks whose probability sum is <= 4095, read
 * out into int32 at each block end: |lane| <= 4095 * 128 < 2^19, exact for
 * any input.
 *
 * Both fall back to the reference unless hd is a multiple of 16, the rows
 * are 16-byte aligned with strides multiples of 16 (and, QK, hd <= 96; PV,
 * n <= FTER_PIE_MAX_N).
 */
#include <stdint.h>

#include "fter_kernels.h"
#include "fter_parallel.h"
#include "fter_pie.h"

#ifndef FTER_PIE_MAX_N
#define FTER_PIE_MAX_N 1024
#endif
#define MAX_N_PAD ((FTER_PIE_MAX_N + 15) & ~15)
#define BLOCK_SUM 4095 /* 4095 * 128 < 2^19 */

static int aligned16(const void *p, int32_t stride) {
  return ((uintptr_t)p & 15) == 0 && (stride & 15) == 0;
}

/* ---------------------------------------------------------------- QK */

/* Score of the key at kp with the query in q0..q(n-1); K chunks alternate q6/q7; set: the
 * score is written, else added. */
#define QK_KEYS(CHAIN)                                   \
  for (int32_t j = 0; j < n; ++j, krow += k_stride) {    \
    const int8_t *kp = krow;                             \
    int32_t s;                                           \
    PIE_ZERO_ACCX();                                     \
    PIE_VLD_128_IP(6, kp, 16);                           \
    CHAIN;                                               \
    PIE_SRS_ACCX(s);                                     \
    scores[j] = set ? s : scores[j] + s;                 \
  }
#define LD(qu, qq, qk) PIE_VMULAS_S8_ACCX_LD_IP(qu, kp, 16, qq, qk)

/* The keys' loop for `chunks` 16-byte query chunks (in q0..); inlined twice, once per `set`. */
static inline __attribute__((always_inline)) void qk_keys(int32_t *scores, const int8_t *krow,
                                                          int32_t chunks, int32_t n,
                                                          int32_t k_stride, int set) {
  switch (chunks) {
    case 1: QK_KEYS(PIE_VMULAS_S8_ACCX(0, 6)) break;
    case 2: QK_KEYS(LD(7, 0, 6); PIE_VMULAS_S8_ACCX(1, 7)) break;
    case 3: QK_KEYS(LD(7, 0, 6); LD(6, 1, 7); PIE_VMULAS_S8_ACCX(2, 6)) break;
    case 4: QK_KEYS(LD(7, 0, 6); LD(6, 1, 7); LD(7, 2, 6); PIE_VMULAS_S8_ACCX(3, 7)) break;
    case 5:
      QK_KEYS(LD(7, 0, 6); LD(6, 1, 7); LD(7, 2, 6); LD(6, 3, 7); PIE_VMULAS_S8_ACCX(4, 6)) break;
    default:
      QK_KEYS(LD(7, 0, 6); LD(6, 1, 7); LD(7, 2, 6); LD(6, 3, 7); LD(7, 4, 6);
              PIE_VMULAS_S8_ACCX(5, 7)) break;
  }
}

static void qk_row(int32_t *scores, const int8_t *q, const int8_t *k, int32_t hd, int32_t n,
                   int32_t k_stride, int set) {
  if ((hd & 15) != 0 || hd <= 0 || hd > 96 || !aligned16(q, 0) || !aligned16(k, k_stride)) {
    (set ? fter_qk_row_set_ref : fter_qk_row_ref)(scores, q, k, hd, n, k_stride);
    return;
  }
  const int32_t chunks = hd >> 4;
  const int8_t *qp = q;
  PIE_VLD_128_IP(0, qp, 16);
  if (chunks > 1) PIE_VLD_128_IP(1, qp, 16);
  if (chunks > 2) PIE_VLD_128_IP(2, qp, 16);
  if (chunks > 3) PIE_VLD_128_IP(3, qp, 16);
  if (chunks > 4) PIE_VLD_128_IP(4, qp, 16);
  if (chunks > 5) PIE_VLD_128_IP(5, qp, 16);
  if (set)
    qk_keys(scores, k, chunks, n, k_stride, 1);
  else
    qk_keys(scores, k, chunks, n, k_stride, 0);
}

void fter_qk_row_pie(int32_t *scores, const int8_t *q, const int8_t *k, int32_t hd, int32_t n,
                     int32_t k_stride) {
  qk_row(scores, q, k, hd, n, k_stride, 0);
}

void fter_qk_row_set_pie(int32_t *scores, const int8_t *q, const int8_t *k, int32_t hd,
                         int32_t n, int32_t k_stride) {
  qk_row(scores, q, k, hd, n, k_stride, 1);
}

/* ---------------------------------------------------------------- PV */

/* s8 multipliers (16-padded with 0), byte offsets of their V rows, and the
 * sum of each chunk of 16: the main pass (all keys) and the fix-up entries.
 * One set per worker (fter_parallel.h): split kernels run rows on both. */
static int8_t main_vals[FTER_WORKERS][MAX_N_PAD] __attribute__((aligned(16)));
static int8_t fix_vals[FTER_WORKERS][2 * MAX_N_PAD] __attribute__((aligned(16)));
static int32_t fix_offs[FTER_WORKERS][2 * MAX_N_PAD];
static int32_t main_sums[FTER_WORKERS][MAX_N_PAD / 16], fix_sums[FTER_WORKERS][2 * MAX_N_PAD / 16];
static uint32_t qacc_bufs[FTER_WORKERS][16] __attribute__((aligned(16)));

static void chunk_sums(int32_t *sums, const int8_t *val, int32_t count) {
  for (int32_t c = 0, j = 0; j < count; ++c, j += 16) {
    int32_t s = 0;
    for (int32_t i = 0; i < 16; ++i) s += val[j + i]; /* zero padded */
    sums[c] = s;
  }
}

static void add_qacc(int32_t *tot, uint32_t *qacc_buf) { fter_pie_add_qacc(tot, 16, qacc_buf); }

#define SEL16(X) X(0) X(1) X(2) X(3) X(4) X(5) X(6) X(7) X(8) X(9) X(10) X(11) X(12) X(13) X(14) X(15)
/* main pass: V rows in order, v_stride apart */
#define MAIN_STEP(s) PIE_VLD_128_XP(0, vp, v_stride); PIE_VSMULAS_S8_QACC(0, 1, s);
#define MAIN_TAIL(s) if (s < m) { MAIN_STEP(s) }
/* fix-up: gathered rows */
#define FIX_STEP(s) if (s < m) { const int8_t *rp = vcol + off[s]; PIE_VLD_128_IP(0, rp, 0); PIE_VSMULAS_S8_QACC(0, 1, s); }

/* tot[l] += sum_e val[e] * V[row_e, l] over count entries; off == NULL: rows 0, 1, 2, ...;
 * sums == NULL: the entries' whole sum is <= BLOCK_SUM (one readout at the end). */
static void pv_pass(int32_t *tot, const int8_t *val, const int32_t *off, const int32_t *sums,
                    int32_t count, const int8_t *vcol, int32_t v_stride, uint32_t *qacc_buf) {
  const int8_t *vp = vcol, *pp = val;
  int32_t block = 0;
  PIE_ZERO_QACC();
  for (int32_t j = 0, c = 0; j < count; j += 16, ++c) {
    const int32_t m = count - j < 16 ? count - j : 16;
    if (sums != 0) {
      if (block + sums[c] > BLOCK_SUM) {
        add_qacc(tot, qacc_buf);
        PIE_ZERO_QACC();
        block = 0;
      }
      block += sums[c];
    }
    PIE_VLD_128_IP(1, pp, 16);
    if (off != 0) {
      SEL16(FIX_STEP)
      off += 16;
    } else if (m == 16) {
      SEL16(MAIN_STEP)
    } else {
      SEL16(MAIN_TAIL)
    }
  }
  add_qacc(tot, qacc_buf);
}

/* The split of a probability row (below): its main values, fix-up entries and their count. */
typedef struct {
  int8_t *main_val, *fix_val;
  int32_t *fix_off;
  int32_t nfix;
} prob_split;

/* Probability j (byte offset o of its V row) into the split; returns its main value. */
static inline int32_t split_one(prob_split *sp, int32_t pj, int32_t j, int32_t o) {
  if (pj <= 127) {
    sp->main_val[j] = (int8_t)pj;
    return pj;
  }
  const int32_t d = pj - 127; /* 1..128 */
  sp->main_val[j] = 127;
  sp->fix_val[sp->nfix] = (int8_t)(d < 127 ? d : 127);
  sp->fix_off[sp->nfix++] = o;
  if (d == 128) {
    sp->fix_val[sp->nfix] = 1;
    sp->fix_off[sp->nfix++] = o;
  }
  return 127;
}

#if FTER_PIE_MAX_N > 1024
#error "split_probs sums 4 main values per word in 16-bit halves: at most 256 words"
#endif

#if defined(__GNUC__) && defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
#define FTER_PV_WORDS 1
typedef uint32_t prob_word __attribute__((may_alias));
#endif

/* main_val[j] = min(p[j], 127); each p[j] > 127 adds fix-up entries of p[j] - 127 (a 128 as
 * 127 + 1) with the byte offset of V row j.  Returns the sum of the main values.  A row of
 * softmax probabilities is mostly below 128: where p is word-aligned, four at a time pass
 * through as one word (their sum folded in two 16-bit halves) unless a byte has its top bit. */
static int32_t split_probs(prob_split *sp, const uint8_t *p, int32_t n, int32_t v_stride) {
  int32_t j = 0, total = 0;
  sp->nfix = 0;
#ifdef FTER_PV_WORDS
  if (((uintptr_t)p & 3) == 0) {
    uint32_t halves = 0; /* each half < 256 words * 2 * 127 < 2^16 */
    for (; j + 4 <= n; j += 4) {
      const uint32_t w = *(const prob_word *)(p + j);
      if ((w & 0x80808080u) == 0) {
        *(prob_word *)(sp->main_val + j) = w;
        halves += (w & 0x00FF00FFu) + ((w >> 8) & 0x00FF00FFu);
      } else {
        for (int32_t i = j; i < j + 4; ++i) total += split_one(sp, p[i], i, i * v_stride);
      }
    }
    total += (int32_t)((halves & 0xFFFFu) + (halves >> 16));
  }
#endif
  for (; j < n; ++j) total += split_one(sp, p[j], j, j * v_stride);
  return total;
}

static void pv_row(int32_t *out, const uint8_t *p, const int8_t *v, int32_t n, int32_t hd,
                   int32_t v_stride, int set) {
  /* n < 0 never occurs; stating it keeps gcc -Warray-bounds from flagging the padding loops
   * below once the buffers are per-worker rows */
  if ((hd & 15) != 0 || hd <= 0 || n < 0 || n > FTER_PIE_MAX_N || !aligned16(v, v_stride)) {
    (set ? fter_pv_row_set_ref : fter_pv_row_ref)(out, p, v, n, hd, v_stride);
    return;
  }
  const int32_t w = fter_worker_id();
  prob_split sp = {main_vals[w], fix_vals[w], fix_offs[w], 0};
  int32_t *main_sum = main_sums[w], *fix_sum = fix_sums[w];
  uint32_t *qacc_buf = qacc_bufs[w];
  const int32_t total = split_probs(&sp, p, n, v_stride), nfix = sp.nfix;
  const int32_t npad = (n + 15) & ~15, fpad = (nfix + 15) & ~15;
  for (int32_t j = n; j < npad; ++j) sp.main_val[j] = 0;
  for (int32_t j = nfix; j < fpad; ++j) sp.fix_val[j] = 0, sp.fix_off[j] = 0;
  /* per-chunk sums only where one QACC block cannot take the whole row */
  const int32_t *main_blocks = total > BLOCK_SUM ? main_sum : 0;
  if (main_blocks != 0) chunk_sums(main_sum, sp.main_val, n);
  chunk_sums(fix_sum, sp.fix_val, nfix);
  for (int32_t g = 0; g < hd; g += 16) {
    int32_t tot[16] = {0};
    pv_pass(tot, sp.main_val, 0, main_blocks, n, v + g, v_stride, qacc_buf);
    if (nfix > 0) pv_pass(tot, sp.fix_val, sp.fix_off, fix_sum, nfix, v + g, v_stride, qacc_buf);
    if (set)
      for (int32_t l = 0; l < 16; ++l) out[g + l] = tot[l];
    else
      for (int32_t l = 0; l < 16; ++l) out[g + l] += tot[l];
  }
}

void fter_pv_row_pie(int32_t *out, const uint8_t *p, const int8_t *v, int32_t n, int32_t hd,
                     int32_t v_stride) {
  pv_row(out, p, v, n, hd, v_stride, 0);
}

void fter_pv_row_set_pie(int32_t *out, const uint8_t *p, const int8_t *v, int32_t n, int32_t hd,
                         int32_t v_stride) {
  pv_row(out, p, v, n, hd, v_stride, 1);
}
