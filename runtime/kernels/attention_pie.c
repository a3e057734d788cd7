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

#if defined(FTER_PIE) && defined(__XTENSA__)
/* The keys' loop on the LX7 as one zero-overhead loop (out of line: a C loop around it must not
 * become one, see epilogue_int.c's FTER_LX7_LOOP_FN).  The same PIE instructions as QK_KEYS,
 * except that the last chunk's load advances the key pointer by %[inc] = k_stride - 16 (c - 1)
 * straight to the next key (.xp instead of .ip), and that the last multiply of a key loads the
 * next key's first chunk into q6 (QK_NEXT; the first key's comes before the loop, QK_FIRST), so
 * the loop runs the first n - 1 keys and the last key follows without that load (nothing is
 * read past it): per key c + 4 instructions (set) or c + 6 (add). */
#define QK_LOOP(CHAIN, STORE)                                                                  \
  __asm__ volatile("loopnez %[n], 1f\n ee.zero.accx\n" CHAIN(QK_NEXT) "ee.srs.accx %[s], %[z], 0\n" \
                   STORE "addi %[o], %[o], 4\n"                                                \
                   "1:\n"                                                                     \
                   : [kp] "+r"(k), [o] "+r"(scores), [n] "+r"(rest), [s] "=&r"(s), [t] "=&r"(t) \
                   : [inc] "r"(inc), [z] "r"(0)                                                 \
                   : "memory")
#define QK_LAST_KEY(CHAIN, STORE)                                                             \
  __asm__ volatile("ee.zero.accx\n" CHAIN(QK_END) "ee.srs.accx %[s], %[z], 0\n" STORE         \
                   : [kp] "+r"(k), [o] "+r"(scores), [s] "=&r"(s), [t] "=&r"(t)                \
                   : [inc] "r"(inc), [z] "r"(0)                                                 \
                   : "memory")
#define QK_SET "s32i %[s], %[o], 0\n"
#define QK_ADD "l32i %[t], %[o], 0\n add %[s], %[s], %[t]\n s32i %[s], %[o], 0\n"
#define QK_LD(qu, qx, qy) "ee.vmulas.s8.accx.ld.ip q" #qu ", %[kp], 16, q" #qx ", q" #qy "\n"
#define QK_LX(qu, qx, qy) "ee.vmulas.s8.accx.ld.xp q" #qu ", %[kp], %[inc], q" #qx ", q" #qy "\n"
/* a key's last multiply (chunk c - 1 in qy): then the next key's first chunk into q6, or not */
#define QK_NEXT(qx, qy) QK_LD(6, qx, qy)
#define QK_END(qx, qy) "ee.vmulas.s8.accx q" #qx ", q" #qy "\n"
/* each key's chain with its first chunk in q6 (one chunk: its load is the .xp one) */
#define QK_C1(LAST) "ee.vmulas.s8.accx.ld.xp q6, %[kp], %[inc], q0, q6\n"
#define QK_C1_END(LAST) "ee.vmulas.s8.accx q0, q6\n"
#define QK_C2(LAST) QK_LX(7, 0, 6) LAST(1, 7)
#define QK_C3(LAST) QK_LD(7, 0, 6) QK_LX(6, 1, 7) LAST(2, 6)
#define QK_C4(LAST) QK_LD(7, 0, 6) QK_LD(6, 1, 7) QK_LX(7, 2, 6) LAST(3, 7)
#define QK_C5(LAST) QK_LD(7, 0, 6) QK_LD(6, 1, 7) QK_LD(7, 2, 6) QK_LX(6, 3, 7) LAST(4, 6)
#define QK_C6(LAST) \
  QK_LD(7, 0, 6) QK_LD(6, 1, 7) QK_LD(7, 2, 6) QK_LD(6, 3, 7) QK_LX(7, 4, 6) LAST(5, 7)
#define QK_RUN(C, C_END, STORE) \
  do {                          \
    QK_LOOP(C, STORE);          \
    QK_LAST_KEY(C_END, STORE);  \
  } while (0)
#define QK_CASES(STORE)                                \
  switch (chunks) {                                    \
    case 1: QK_RUN(QK_C1, QK_C1_END, STORE); break;    \
    case 2: QK_RUN(QK_C2, QK_C2, STORE); break;        \
    case 3: QK_RUN(QK_C3, QK_C3, STORE); break;        \
    case 4: QK_RUN(QK_C4, QK_C4, STORE); break;        \
    case 5: QK_RUN(QK_C5, QK_C5, STORE); break;        \
    default: QK_RUN(QK_C6, QK_C6, STORE); break;       \
  }

static __attribute__((noinline)) void qk_keys_lx7(int32_t *scores, const int8_t *k,
                                                  int32_t chunks, int32_t n, int32_t k_stride,
                                                  int set) {
  const int32_t inc = k_stride - 16 * (chunks - 1);
  int32_t s, t, rest = n - 1;
  if (n < 1) return;
  /* the first key's first chunk (one chunk: straight on to the next key) */
  if (chunks == 1)
    PIE_VLD_128_XP(6, k, inc);
  else
    PIE_VLD_128_IP(6, k, 16);
  if (set) {
    QK_CASES(QK_SET)
  } else {
    QK_CASES(QK_ADD)
  }
}
#define QK_KEYS_FN qk_keys_lx7
#else
#define QK_KEYS_FN qk_keys
#endif

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
    QK_KEYS_FN(scores, k, chunks, n, k_stride, 1);
  else
    QK_KEYS_FN(scores, k, chunks, n, k_stride, 0);
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

/* QACC's 16 lanes into dst: added (*add) or written, after which *add is set. */
static void out_qacc(int32_t *dst, int *add, uint32_t *qacc_buf) {
  (*add ? fter_pie_add_qacc : fter_pie_set_qacc)(dst, 16, qacc_buf);
  *add = 1;
}

#define SEL16(X) X(0) X(1) X(2) X(3) X(4) X(5) X(6) X(7) X(8) X(9) X(10) X(11) X(12) X(13) X(14) X(15)
/* main pass: V rows in order, v_stride apart */
#define MAIN_STEP(s) PIE_VLD_128_XP(0, vp, v_stride); PIE_VSMULAS_S8_QACC(0, 1, s);
#define MAIN_TAIL(s) if (s < m) { MAIN_STEP(s) }
/* fix-up: gathered rows */
#define FIX_STEP(s) if (s < m) { const int8_t *rp = vcol + off[s]; PIE_VLD_128_IP(0, rp, 0); PIE_VSMULAS_S8_QACC(0, 1, s); }

/* The main pass's whole 16-key chunks: per chunk q1 = the next 16 values at *pp, then each key's
 * V row (v_stride apart from *vp) times its lane of q1.  Rows 16 bytes apart (V in groups of
 * 16 channels, fter_pv_row_g16) are multiplied with the fused load of the next: the first row
 * is loaded before the chunks, the steps alternate q0 and q2, and the last step of the last
 * chunk loads nothing (no read past the last row).  On the LX7 one zero-overhead loop of 33
 * instructions per chunk, or 17 fused (out of line, see qk_keys_lx7). */
/* the fused steps 0..14 of a chunk: row in q0 (even steps, the next loaded into q2) or q2 */
#define FUSED15(S) S(2, 0, 0) S(0, 2, 1) S(2, 0, 2) S(0, 2, 3) S(2, 0, 4) S(0, 2, 5) S(2, 0, 6) \
  S(0, 2, 7) S(2, 0, 8) S(0, 2, 9) S(2, 0, 10) S(0, 2, 11) S(2, 0, 12) S(0, 2, 13) S(2, 0, 14)
#if defined(FTER_PIE) && defined(__XTENSA__)
static __attribute__((noinline)) void pv_chunks(const int8_t **pp, const int8_t **vp,
                                                int32_t chunks, int32_t v_stride) {
  const int8_t *p = *pp, *v = *vp;
  if (v_stride == 16) {
    if (chunks > 0) {
#define PVF_ASM(qu, qx, s) "ee.vsmulas.s8.qacc.ld.incp q" #qu ", %[v], q" #qx ", q1, " #s "\n"
      __asm__ volatile("ee.vld.128.ip q0, %[v], 16\n"
                       "loopnez %[c], 1f\n ee.vld.128.ip q1, %[p], 16\n"
                       FUSED15(PVF_ASM) PVF_ASM(0, 2, 15) "1:\n"
                       "ee.vld.128.ip q1, %[p], 16\n"
                       FUSED15(PVF_ASM) "ee.vsmulas.s8.qacc q2, q1, 15\n"
                       : [p] "+r"(p), [v] "+r"(v)
                       : [c] "r"(chunks - 1)
                       : "memory");
#undef PVF_ASM
    }
  } else {
#define PV_ASM(s) "ee.vld.128.xp q0, %[v], %[st]\n ee.vsmulas.s8.qacc q0, q1, " #s "\n"
    __asm__ volatile("loopnez %[c], 1f\n ee.vld.128.ip q1, %[p], 16\n" SEL16(PV_ASM) "1:\n"
                     : [p] "+r"(p), [v] "+r"(v)
                     : [c] "r"(chunks), [st] "r"(v_stride)
                     : "memory");
#undef PV_ASM
  }
  *pp = p;
  *vp = v;
}
#else
static inline void pv_chunks(const int8_t **pvals, const int8_t **vrows, int32_t chunks,
                             int32_t v_stride) {
  const int8_t *pp = *pvals, *vp = *vrows;
  if (v_stride == 16) {
#define PVF_C(qu, qx, s) PIE_VSMULAS_S8_QACC_LD_INCP(qu, vp, qx, 1, s);
    if (chunks > 0) PIE_VLD_128_IP(0, vp, 16);
    for (int32_t c = 0; c < chunks; ++c) {
      PIE_VLD_128_IP(1, pp, 16);
      FUSED15(PVF_C)
      if (c + 1 < chunks) {
        PVF_C(0, 2, 15)
      } else {
        PIE_VSMULAS_S8_QACC(2, 1, 15);
      }
    }
#undef PVF_C
  } else {
    for (int32_t c = 0; c < chunks; ++c) {
      PIE_VLD_128_IP(1, pp, 16);
      SEL16(MAIN_STEP)
    }
  }
  *pvals = pp;
  *vrows = vp;
}
#endif
#undef FUSED15

/* How a pass of pv_pass starts and ends: QACC zeroed first (else the pass goes on with what an
 * earlier one left) and read out last (else left for the next pass). */
enum { PV_FRESH = 1, PV_READOUT = 2, PV_WHOLE = 3 };

/* dst[l] (+)= sum_e val[e] * V[row_e, l] over count entries, added if *add (then set); off ==
 * NULL: rows 0, 1, 2, ...; sums == NULL: the entries' whole sum is <= BLOCK_SUM (one readout at
 * the end); mode: PV_FRESH and/or PV_READOUT.  tail (main pass, one block): the multipliers of
 * the last count % 16 entries, as the last 16 entries' chunk with the leading ones 0 where
 * count >= 16 (one more whole chunk), else from tail[0]. */
static void pv_pass(int32_t *dst, int *add, const int8_t *val, const int32_t *off,
                    const int32_t *sums, int32_t count, const int8_t *vcol, int32_t v_stride,
                    uint32_t *qacc_buf, const int8_t *tail, int mode) {
  const int8_t *vp = vcol, *pp = val;
  int32_t block = 0, j = 0, c = 0;
  if (mode & PV_FRESH) PIE_ZERO_QACC();
  if (off == 0 && sums == 0) { /* one block: the chunk loop, then the tail */
    c = count >> 4;
    pv_chunks(&pp, &vp, c, v_stride);
    j = c << 4;
    if (tail != 0 && j < count) {
      if (count >= 16) { /* the chunk of the last 16 keys, its first 16 - count % 16 lanes 0 */
        pp = tail;
        vp = vcol + (count - 16) * v_stride;
        pv_chunks(&pp, &vp, 1, v_stride);
        j = count;
      } else {
        pp = tail;
      }
    }
  }
  for (; j < count; j += 16, ++c) {
    const int32_t m = count - j < 16 ? count - j : 16;
    if (sums != 0) {
      if (block + sums[c] > BLOCK_SUM) {
        out_qacc(dst, add, qacc_buf);
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
  if (mode & PV_READOUT) out_qacc(dst, add, qacc_buf);
}

/* The split of a probability row (below): its main values, fix-up entries and their count. */
typedef struct {
  int8_t *main_val, *fix_val;
  int32_t *fix_off;
  int32_t nfix;
} prob_split;

/* Adds a fix-up entry of val (<= 127) for the V row at byte offset o to the split. */
static inline void add_fix(prob_split *sp, int32_t val, int32_t o) {
  sp->fix_val[sp->nfix] = (int8_t)val;
  sp->fix_off[sp->nfix++] = o;
}

/* Probability j (byte offset o of its V row) into the split; returns its main value. */
static inline int32_t split_one(prob_split *sp, int32_t pj, int32_t j, int32_t o) {
  if (pj <= 127) {
    sp->main_val[j] = (int8_t)pj;
    return pj;
  }
  const int32_t d = pj - 127; /* 1..128 */
  sp->main_val[j] = 127;
  add_fix(sp, d < 127 ? d : 127, o);
  if (d == 128) add_fix(sp, 1, o);
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

#if defined(FTER_PV_WORDS) && MAX_N_PAD >= 64
/* 16 int8 ones: ACCX += a chunk times them sums its bytes */
static const int8_t ones16[16] __attribute__((aligned(16))) = {1, 1, 1, 1, 1, 1, 1, 1,
                                                               1, 1, 1, 1, 1, 1, 1, 1};

/* The first word at or after p + j (j a multiple of 4, below end, a multiple of 16) with a byte
 * above 127, or end: four words per test (out of line, so that its loop has the registers). */
static __attribute__((noinline)) int32_t next_big_word(const uint8_t *p, int32_t j, int32_t end) {
  for (; (j & 15) != 0 && j < end; j += 4)
    if (*(const prob_word *)(p + j) & 0x80808080u) return j;
  for (; j < end; j += 16) {
    const prob_word *w = (const prob_word *)(p + j);
    if ((w[0] | w[1] | w[2] | w[3]) & 0x80808080u) break;
  }
  for (; j < end; j += 4)
    if (*(const prob_word *)(p + j) & 0x80808080u) return j;
  return end;
}

/* A 16-byte aligned probability row read in place: the main pass takes p's whole 16-key chunks
 * as they are, as int8, so a byte b > 127 reads as b - 256 and adds fix-up entries 127, 127
 * and 2 (256 in all) for its V row; the last n % 16 keys are split as split_probs does into
 * main_val[0..16), the tail chunk (pv_pass).  The main values' magnitudes must sum to at
 * most BLOCK_SUM (one QACC block for the whole main pass, as a softmax row's ~255 do): their
 * sum is ACCX over the chunks times ones16 plus the big bytes' 2 (256 - b) and the tail's.
 * Returns 0, and leaves nothing to use, where p does not qualify; else 1, or 2 where the fix-up
 * entries fit into the main pass's QACC block too (their sum and the main one <= BLOCK_SUM). */
static int direct_probs(prob_split *sp, const uint8_t *p, int32_t n, int32_t v_stride) {
  const int32_t full = n & ~15;
  int32_t big = 0, nbig = 0, sum = 0;
  sp->nfix = 0;
  if (((uintptr_t)p & 15) != 0) return 0;
  for (int32_t j = next_big_word(p, 0, full); j < full; j = next_big_word(p, j + 4, full)) {
    for (int32_t i = j; i < j + 4; ++i) {
      if (p[i] <= 127) continue;
      if (++nbig * 128 > BLOCK_SUM) return 0; /* |b - 256| >= 1: the sum alone bounds nbig */
      big += 256 - p[i];
      add_fix(sp, 127, i * v_stride);
      add_fix(sp, 127, i * v_stride);
      add_fix(sp, 2, i * v_stride);
    }
  }
  /* the tail chunk: with n >= 16 the last 16 keys' multipliers, the first 16 - n % 16 of them
   * 0 (that chunk's V rows all exist); else the n keys', zero padded */
  const int32_t lead = n >= 16 ? 16 - (n - full) : 0;
  for (int32_t j = 0; j < 16; ++j) sp->main_val[j] = 0;
  for (int32_t j = full; j < n; ++j) sum += split_one(sp, p[j], lead + j - full, j * v_stride);
  if (full > 0) {
    const int8_t *pp = (const int8_t *)p, *op = ones16;
    int32_t s;
    PIE_VLD_128_IP(7, op, 0);
    PIE_ZERO_ACCX();
    for (int32_t j = 0; j < full; j += 16) {
      PIE_VLD_128_IP(6, pp, 16);
      PIE_VMULAS_S8_ACCX(6, 7);
    }
    PIE_SRS_ACCX(s);
    sum += s + 2 * big;
  }
  if (sum > BLOCK_SUM) return 0;
  for (int32_t e = 0; e < sp->nfix; ++e) sum += sp->fix_val[e];
  return sum <= BLOCK_SUM ? 2 : 1;
}
#define FTER_PV_DIRECT 1
#endif

/* group_step: bytes from one group of 16 channels to the next, 16 for rows of hd channels,
 * 16 n for V in groups of 16 (fter_pv_row_g16, v_stride 16) */
static void pv_row(int32_t *out, const uint8_t *p, const int8_t *v, int32_t n, int32_t hd,
                   int32_t v_stride, int32_t group_step, int set) {
  /* n < 0 never occurs; stating it keeps gcc -Warray-bounds from flagging the padding loops
   * below once the buffers are per-worker rows */
  if ((hd & 15) != 0 || hd <= 0 || n < 0 || n > FTER_PIE_MAX_N || !aligned16(v, v_stride)) {
    if (group_step == 16)
      (set ? fter_pv_row_set_ref : fter_pv_row_ref)(out, p, v, n, hd, v_stride);
    else
      (set ? fter_pv_row_g16_set_ref : fter_pv_row_g16_ref)(out, p, v, n, hd);
    return;
  }
  const int32_t w = fter_worker_id();
  prob_split sp = {main_vals[w], fix_vals[w], fix_offs[w], 0};
  int32_t *main_sum = main_sums[w], *fix_sum = fix_sums[w];
  uint32_t *qacc_buf = qacc_bufs[w];
  const int8_t *main_val = sp.main_val, *tail = 0;
  const int32_t *main_blocks = 0, *fix_blocks = fix_sum;
  int main_mode = PV_WHOLE, fix_mode = PV_WHOLE;
#ifdef FTER_PV_DIRECT
  const int direct = direct_probs(&sp, p, n, v_stride);
  if (direct) {
    main_val = (const int8_t *)p;
    tail = sp.main_val;
    if (direct == 2 && sp.nfix > 0) { /* one QACC block for both passes */
      main_mode = PV_FRESH;
      fix_mode = PV_READOUT;
      fix_blocks = 0;
    }
  } else
#endif
  {
    const int32_t total = split_probs(&sp, p, n, v_stride), npad = (n + 15) & ~15;
    for (int32_t j = n; j < npad; ++j) sp.main_val[j] = 0;
    /* per-chunk sums only where one QACC block cannot take the whole row */
    if (total > BLOCK_SUM) {
      main_blocks = main_sum;
      chunk_sums(main_sum, sp.main_val, n);
    }
  }
  const int32_t nfix = sp.nfix, fpad = (nfix + 15) & ~15;
  for (int32_t j = nfix; j < fpad; ++j) sp.fix_val[j] = 0, sp.fix_off[j] = 0;
  if (fix_blocks != 0) chunk_sums(fix_sum, sp.fix_val, nfix);
  for (int32_t g = 0; g < hd; g += 16) {
    const int8_t *vg = v + (g >> 4) * group_step;
    int add = !set;
    pv_pass(out + g, &add, main_val, 0, main_blocks, n, vg, v_stride, qacc_buf, tail, main_mode);
    if (nfix > 0)
      pv_pass(out + g, &add, sp.fix_val, sp.fix_off, fix_blocks, nfix, vg, v_stride, qacc_buf, 0,
              fix_mode);
  }
}

void fter_pv_row_pie(int32_t *out, const uint8_t *p, const int8_t *v, int32_t n, int32_t hd,
                     int32_t v_stride) {
  pv_row(out, p, v, n, hd, v_stride, 16, 0);
}

void fter_pv_row_set_pie(int32_t *out, const uint8_t *p, const int8_t *v, int32_t n, int32_t hd,
                         int32_t v_stride) {
  pv_row(out, p, v, n, hd, v_stride, 16, 1);
}

void fter_pv_row_g16_pie(int32_t *out, const uint8_t *p, const int8_t *vg, int32_t n,
                         int32_t hd) {
  pv_row(out, p, vg, n, hd, 16, 16 * n, 0);
}

void fter_pv_row_g16_set_pie(int32_t *out, const uint8_t *p, const int8_t *vg, int32_t n,
                             int32_t hd) {
  pv_row(out, p, vg, n, hd, 16, 16 * n, 1);
}

/* A group's n rows of 16 bytes, v_stride apart at v, to consecutive rows at vg: one 128-bit load
 * and store per row (on the LX7 one zero-overhead loop) */
#if defined(FTER_PIE) && defined(__XTENSA__)
static __attribute__((noinline)) void group_rows16(int8_t *vg, const int8_t *v, int32_t n,
                                                   int32_t v_stride) {
  __asm__ volatile("loopnez %[n], 1f\n"
                   "ee.vld.128.xp q0, %[v], %[st]\n"
                   "ee.vst.128.ip q0, %[d], 16\n"
                   "1:\n"
                   : [v] "+r"(v), [d] "+r"(vg)
                   : [n] "r"(n), [st] "r"(v_stride)
                   : "memory");
}
#else
static void group_rows16(int8_t *vg, const int8_t *v, int32_t n, int32_t v_stride) {
  for (int32_t j = 0; j < n; ++j) {
    PIE_VLD_128_XP(0, v, v_stride);
    PIE_VST_128_IP(0, vg, 16);
  }
}
#endif

void fter_v_groups16_pie(int8_t *vg, const int8_t *v, int32_t n, int32_t cols, int32_t v_stride) {
  if ((cols & 15) != 0 || n < 0 || !aligned16(v, v_stride) || !aligned16(vg, 16)) {
    fter_v_groups16_ref(vg, v, n, cols, v_stride);
    return;
  }
  for (int32_t g = 0; g < cols; g += 16) group_rows16(vg + g * n, v + g, n, v_stride);
}
