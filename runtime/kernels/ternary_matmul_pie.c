/* Weight-stationary ternary matmul tile on the ESP32-S3's PIE (emulated
 * exactly on the host and the lx106, see pie/fter_pie.h).
 *
 * Per group of 16 output channels the packed rows are decoded once into a
 * [kpad][16] int8 scratch (lane l = channel j0 + l; missing channels and k
 * padding are 0; one more row for the last prefetch, loaded, never multiplied).  A full group
 * decodes on PIE (decode_group): its bytes gathered into a [bytes][16] stage,
 * then 16 channels' 5 (b3) or 4 (b2) trits at a time.  Per token,
 * QACC lane l accumulates sum_r x[r] * w_{j0+l}[r]: each chunk of 16 k is one
 * 128-bit load of x and 16 vsmulas.s8.qacc.ld.incp (broadcast x[r] times
 * column r while loading column r+1), 17 instructions per 256 MACs.  A lane
 * holds at most 128 * 4080 < 2^19 (k blocks of <= 255 chunks, each read out
 * into int32), so nothing saturates.  x rows are used in place when
 * 16-byte aligned with k and x_stride multiples of 16, else copied into a
 * zero-padded aligned row.  k > FTER_PIE_MAX_K uses the reference.
 */
#include <stdint.h>

#include "fter_kernels.h"
#include "fter_parallel.h"
#include "fter_pie.h"

#ifndef FTER_PIE_MAX_K
#define FTER_PIE_MAX_K 1536
#endif
#define KPAD_MAX ((FTER_PIE_MAX_K + 15) & ~15)
#define BLOCK_CHUNKS 255 /* 128 * 255 * 16 < 2^19 */

/* [kpad + 1][16] weights; words so the zeroing loops may use 32-bit stores. One set per worker
 * (fter_parallel.h): the halves of a split kernel decode their channel groups at the same time. */
static struct {
  uint32_t scratch[(KPAD_MAX + 16) * 4] __attribute__((aligned(16)));
  uint32_t xrow[KPAD_MAX / 4] __attribute__((aligned(16)));
  uint32_t stage[(KPAD_MAX / 4) * 4] __attribute__((aligned(16))); /* [bytes][16], b2's the most */
  uint32_t qacc[16] __attribute__((aligned(16)));
} per_worker[FTER_WORKERS];

/* Weights of each packed byte (b3: 5 trits, b2: 4), built once (before any split: the model calls
 * fter_kernels_init first when it has two workers).  A b3 entry takes 8 bytes (3 unused) so that
 * the LX7 loop finds it with one ADDX8. */
static int8_t b3_trits[256][8];
static int8_t b2_trits[256][4];
/* b3 byte v as the fraction x = ceil(256 u / 243) of u = v mod 243 (bytes >= 243 wrap like the
 * reference): u's base-3 digit 4 - n is then ((x * 3^n mod 256) * 3) >> 8, exactly, for every u
 * (decode_group_b3; the identity is checked for all 256 bytes by the tile tests' decoding). */
static uint8_t b3_frac[256];
static int trits_ready;

void fter_tmm_pie_init(void) {
  int32_t d[5] = {0, 0, 0, 0, 0}; /* base-3 digits of b, counted up (bytes >= 243 wrap like the reference) */
  for (int32_t b = 0; b < 256; ++b) {
    for (int32_t t = 0; t < 4; ++t) b2_trits[b][t] = (int8_t)(((b >> (2 * t)) & 3) - 1);
    for (int32_t t = 0; t < 5; ++t) b3_trits[b][t] = (int8_t)(d[t] - 1);
    for (int32_t t = 0; t < 5 && ++d[t] == 3; ++t) d[t] = 0;
    const int32_t u = b < 243 ? b : b - 243;
    b3_frac[b] = (uint8_t)((u * 256 + 242) / 243);
  }
  trits_ready = 1;
}

static void zero_words(uint32_t *p, int32_t words) {
  for (int32_t i = 0; i < words; ++i) p[i] = 0;
}

/* Column l of the scratch from one packed row: weight r at dst[16 * r].  On the LX7 its asm holds
 * a zero-overhead loop, so it stays out of line: a C loop around it could otherwise become one
 * too (the core has one set of loop registers). */
#if defined(FTER_PIE) && defined(__XTENSA__)
__attribute__((noinline))
#endif
static void decode_row(int8_t *dst, const uint8_t *row, int32_t k, int b3) {
  const int32_t per = b3 ? 5 : 4;
  int32_t r = 0;
  if (b3) {
    /* two bytes per step: the loop's pointer updates and branch are paid once per 10 weights */
    const int8_t(*tab)[8] = b3_trits;
#if defined(FTER_PIE) && defined(__XTENSA__)
    /* on the LX7 one zero-overhead loop over the byte pairs */
    const int32_t pairs = k / 10;
    if (pairs > 0) {
      int32_t b0, b1, x, step = 160;
      int32_t n = pairs;
#define TRIT(src, i, o) "l8ui %[x], %[" #src "], " #i "\n s8i %[x], %[d], " #o "\n"
      __asm__ volatile(
          "loopnez %[n], 1f\n"
          "l8ui  %[b0], %[row], 0\n"
          "l8ui  %[b1], %[row], 1\n"
          "addx8 %[b0], %[b0], %[tab]\n"
          "addx8 %[b1], %[b1], %[tab]\n"
          TRIT(b0, 0, 0) TRIT(b0, 1, 16) TRIT(b0, 2, 32) TRIT(b0, 3, 48) TRIT(b0, 4, 64)
          TRIT(b1, 0, 80) TRIT(b1, 1, 96) TRIT(b1, 2, 112) TRIT(b1, 3, 128) TRIT(b1, 4, 144)
          "addi  %[row], %[row], 2\n"
          "add   %[d], %[d], %[step]\n"
          "1:\n"
          : [row] "+r"(row), [d] "+r"(dst), [n] "+r"(n), [b0] "=&r"(b0), [b1] "=&r"(b1),
            [x] "=&r"(x)
          : [tab] "r"(tab), [step] "r"(step)
          : "memory");
#undef TRIT
      r = pairs * 10;
    }
#else
    for (; r + 10 <= k; r += 10, dst += 160, row += 2) {
      const int8_t *t = tab[row[0]], *u = tab[row[1]];
      dst[0] = t[0], dst[16] = t[1], dst[32] = t[2], dst[48] = t[3], dst[64] = t[4];
      dst[80] = u[0], dst[96] = u[1], dst[112] = u[2], dst[128] = u[3], dst[144] = u[4];
    }
#endif
    for (; r + 5 <= k; r += 5, dst += 80) {
      const int8_t *t = tab[*row++];
      dst[0] = t[0], dst[16] = t[1], dst[32] = t[2], dst[48] = t[3], dst[64] = t[4];
    }
  } else {
    for (; r + 4 <= k; r += 4, dst += 64) {
      const int8_t *t = b2_trits[*row++];
      dst[0] = t[0], dst[16] = t[1], dst[32] = t[2], dst[48] = t[3];
    }
  }
  if (r < k) {
    const int8_t *t = b3 ? b3_trits[*row] : b2_trits[*row];
    for (int32_t i = 0; i < per && r < k; ++i, ++r, dst += 16) dst[0] = t[i];
  }
}

/* The multipliers stage_to_rows keeps in q7 (3s for b3, 4s for b2) and the 1s in q6, in the
 * order each loads them: b3 from the first row on, b2 from the second */
static const uint8_t pie_consts[48] __attribute__((aligned(16))) = {
    3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1,
    1, 1, 1, 1, 1, 1, 1, 1, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4};

/* Packed bytes per row of k weights */
static inline int32_t row_bytes(int32_t k, int b3) { return b3 ? (k + 4) / 5 : (k + 3) / 4; }

/* stage[16 p + l] = b3_frac[row[p]] (b3) or row[p] (b2) for p < bytes: one channel's lane of
 * the stage */
#if defined(FTER_PIE) && defined(__XTENSA__)
#define GATHER_FRAC(R) "add %[" R "], %[" R "], %[tab]\n l8ui %[" R "], %[" R "], 0\n"
#define GATHER_BYTE(R) ""
#define GATHER_AT(F, R, I, O) "l8ui %[" R "], %[row], " I "\n" F(R) "s8i %[" R "], %[st], " O "\n"
#define GATHER_OPERANDS                                                                  \
  : [row] "+r"(row), [st] "+r"(st), [a] "=&r"(a), [b] "=&r"(b) : [tab] "r"(tab), [p] "r"(bytes >> 2) \
  : "memory"
/* four bytes a step (the two registers alternate), then the last 0-3 one at a time */
#define GATHER_LOOP(F)                                                                         \
  do {                                                                                         \
    __asm__ volatile("loopnez %[p], 1f\n"                                                      \
                     GATHER_AT(F, "a", "0", "0") GATHER_AT(F, "b", "1", "16")                  \
                     GATHER_AT(F, "a", "2", "32") GATHER_AT(F, "b", "3", "48")                 \
                     "addi  %[row], %[row], 4\n"                                               \
                     "addi  %[st], %[st], 64\n"                                                \
                     "1:\n" GATHER_OPERANDS);                                                  \
    for (int32_t i = 0; i < (bytes & 3); ++i)                                                  \
      __asm__ volatile(GATHER_AT(F, "a", "0", "0") "addi  %[row], %[row], 1\n"                 \
                       "addi  %[st], %[st], 16\n" GATHER_OPERANDS);                            \
  } while (0)
__attribute__((noinline)) static void gather(uint8_t *st, const uint8_t *row, int32_t bytes,
                                             int b3) {
  int32_t a, b;
  const uint8_t *tab = b3_frac;
  if (b3)
    GATHER_LOOP(GATHER_FRAC);
  else
    GATHER_LOOP(GATHER_BYTE);
}
#undef GATHER_FRAC
#undef GATHER_BYTE
#undef GATHER_AT
#undef GATHER_OPERANDS
#undef GATHER_LOOP
#else
static void gather(uint8_t *st, const uint8_t *row, int32_t bytes, int b3) {
  for (int32_t p = 0; p < bytes; ++p) st[16 * p] = b3 ? b3_frac[row[p]] : row[p];
}
#endif

/* Rows [0, per bytes) of the scratch from the stage, per the base m (3 for b3, per = 5; 4 for
 * b2, per = 4): per stage row x (16 channels' byte p), q1..q(per-1) = x * m^n mod 256 (SAR 0),
 * then digit per - 1 - n = (q_n * m) >> 8 (SAR 8), less 1, is weight per p + per - 1 - n of the
 * 16 channels (b2's digit 3, 2 - 1, is the reference's decode of a byte's 3 too).  Padding
 * trits past k decode like any others. */
#if defined(FTER_PIE) && defined(__XTENSA__)
#define DIGIT_ROW(q) "ee.vmul.u8 q" #q ", q" #q ", q7\n ee.vsubs.s8 q" #q ", q" #q ", q6\n" \
  "ee.vst.128.ip q" #q ", %[d], 16\n"
#define STAGE_OPERANDS                                  \
  : [st] "+r"(st), [d] "+r"(dst), [c] "+r"(c) \
  : [n] "r"(bytes)                                      \
  : "memory"
/* FIRST, SECOND: the registers the two constant rows at c load into (the multiplier m goes to
 * q7, the 1s to q6); then per stage row x the powers q1.. = x * m^n mod 256 (POWERS) and the
 * digit rows from the last power down (DIGITS) */
#define STAGE_ASM(FIRST, SECOND, POWERS, DIGITS)                                           \
  __asm__ volatile("ee.vld.128.ip " FIRST ", %[c], 16\n"                                   \
                   "ee.vld.128.ip " SECOND ", %[c], 16\n"                                  \
                   "loopnez %[n], 1f\n"                                                    \
                   "ee.vld.128.ip q0, %[st], 16\n"                                         \
                   "ssai 0\n" POWERS "ssai 8\n" DIGITS "1:\n" STAGE_OPERANDS)
#define POWER(from, to) "ee.vmul.u8 q" #to ", q" #from ", q7\n"
__attribute__((noinline)) static void stage_to_rows(int8_t *dst, const uint8_t *st,
                                                     int32_t bytes, int b3) {
  const uint8_t *c = b3 ? pie_consts : pie_consts + 16;
  if (b3)
    STAGE_ASM("q7", "q6", POWER(0, 1) POWER(1, 2) POWER(2, 3) POWER(3, 4),
              DIGIT_ROW(4) DIGIT_ROW(3) DIGIT_ROW(2) DIGIT_ROW(1) DIGIT_ROW(0));
  else
    STAGE_ASM("q6", "q7", POWER(0, 1) POWER(1, 2) POWER(2, 3),
              DIGIT_ROW(3) DIGIT_ROW(2) DIGIT_ROW(1) DIGIT_ROW(0));
}
#undef STAGE_ASM
#undef POWER
#undef DIGIT_ROW
#undef STAGE_OPERANDS
#else
static void stage_to_rows(int8_t *dst, const uint8_t *st, int32_t bytes, int b3) {
  const uint8_t *c = b3 ? pie_consts : pie_consts + 16;
  if (b3) {
    PIE_VLD_128_IP(7, c, 16);
    PIE_VLD_128_IP(6, c, 16);
  } else {
    PIE_VLD_128_IP(6, c, 16);
    PIE_VLD_128_IP(7, c, 16);
  }
  for (int32_t p = 0; p < bytes; ++p) {
    PIE_VLD_128_IP(0, st, 16);
    PIE_SSAI(0);
    PIE_VMUL_U8(1, 0, 7);
    PIE_VMUL_U8(2, 1, 7);
    PIE_VMUL_U8(3, 2, 7);
    if (b3) PIE_VMUL_U8(4, 3, 7);
    PIE_SSAI(8);
#define DIGIT_ROW(q) PIE_VMUL_U8(q, q, 7); PIE_VSUBS_S8(q, q, 6); PIE_VST_128_IP(q, dst, 16);
    if (b3) {
      DIGIT_ROW(4)
    }
    DIGIT_ROW(3) DIGIT_ROW(2) DIGIT_ROW(1) DIGIT_ROW(0)
#undef DIGIT_ROW
  }
}
#endif

/* All 16 channels of a group into the scratch (rows >= k are cleared after) */
/* A group of 16 packed rows' bytes into its [bytes][16] stage */
static void gather_group(uint8_t *stage, const uint8_t *w, int32_t w_stride, int32_t bytes,
                         int b3) {
  for (int32_t l = 0; l < 16; ++l) gather(stage + l, w + l * w_stride, bytes, b3);
}

static void decode_group(int8_t *scratch, const uint8_t *w, int32_t w_stride, int32_t k,
                         uint8_t *stage, int b3) {
  const int32_t bytes = row_bytes(k, b3);
  gather_group(stage, w, w_stride, bytes, b3);
  stage_to_rows(scratch, stage, bytes, b3);
}

/* set: the tile's accumulators are written (their old values ignored), else added to; staged
 * (or NULL): the full groups' stages as fter_tmm_stage_b3/_b2 gather them, so that a full group
 * only runs stage_to_rows */
static void tile(int32_t *acc, const int8_t *x, const uint8_t *w, int32_t k, int32_t nb,
                 int32_t w_stride, int32_t t, int32_t x_stride, int32_t acc_stride, int b3,
                 int set, const uint8_t *staged) {
  uint32_t *scratch_words = per_worker[fter_worker_id()].scratch;
  uint32_t *xrow_words = per_worker[fter_worker_id()].xrow;
  uint32_t *qacc_buf = per_worker[fter_worker_id()].qacc;
  int8_t *scratch = (int8_t *)scratch_words;
  int8_t *xrow = (int8_t *)xrow_words;
  uint8_t *stage = (uint8_t *)per_worker[fter_worker_id()].stage;
  const int32_t kpad = (k + 15) & ~15, chunks = kpad >> 4;
  const int direct = ((uintptr_t)x & 15) == 0 && (x_stride & 15) == 0 && (k & 15) == 0;
  if (!trits_ready) fter_tmm_pie_init();
  if (!direct) zero_words(xrow_words + (k >> 2), (kpad >> 2) - (k >> 2)); /* tail of xrow */
  for (int32_t j0 = 0; j0 < nb; j0 += 16) {
    const int32_t lanes = nb - j0 < 16 ? nb - j0 : 16;
    /* a partial group's missing lanes are 0 from the start; a full group's rows k..kpad - 1 (the
     * last chunk's padding) are cleared after its decode, which writes the padding trits' rows
     * too (rows from kpad on are never multiplied: the chunk loop only prefetches row kpad) */
    if (lanes < 16) zero_words(scratch_words, (kpad + 16) * 4);
    if (lanes == 16 && staged != 0)
      stage_to_rows(scratch, staged + j0 * row_bytes(k, b3), row_bytes(k, b3), b3);
    else if (lanes == 16)
      decode_group(scratch, w + j0 * w_stride, w_stride, k, stage, b3);
    else
      for (int32_t l = 0; l < lanes; ++l) decode_row(scratch + l, w + (j0 + l) * w_stride, k, b3);
    if (lanes == 16) zero_words(scratch_words + k * 4, (kpad - k) * 4);
    if (direct && lanes == 16 && chunks <= BLOCK_CHUNKS) {
      fter_pie_tmm_tokens(acc + j0, x, scratch, t, chunks, x_stride, acc_stride, qacc_buf, set);
      continue;
    }
    const int8_t *xr = x;
    int32_t *ar = acc + j0;
    for (int32_t i = 0; i < t; ++i, xr += x_stride, ar += acc_stride) {
      const int8_t *xp = xr;
      if (!direct) {
        for (int32_t r = 0; r < k; ++r) xrow[r] = xr[r];
        xp = xrow;
      }
      const int8_t *wp = scratch;
      PIE_VLD_128_IP(1, wp, 16);
      for (int32_t c = 0; c < chunks; c += BLOCK_CHUNKS) {
        PIE_ZERO_QACC();
        fter_pie_tmm_chunks(&xp, &wp, chunks - c < BLOCK_CHUNKS ? chunks - c : BLOCK_CHUNKS);
        if (set && c == 0)
          fter_pie_set_qacc(ar, lanes, qacc_buf);
        else
          fter_pie_add_qacc(ar, lanes, qacc_buf);
      }
    }
  }
}

typedef void (*tile_ref_fn)(int32_t *, const int8_t *, const uint8_t *, int32_t, int32_t, int32_t,
                            int32_t, int32_t, int32_t);

/* The PIE tile (staged: see tile), or its reference `ref` for k > FTER_PIE_MAX_K (the decode
 * scratch's size). */
static void pie_tile(tile_ref_fn ref, int32_t *acc, const int8_t *x, const uint8_t *w, int32_t k,
                     int32_t nb, int32_t w_stride, int32_t t, int32_t x_stride,
                     int32_t acc_stride, int b3, int set, const uint8_t *staged) {
  if (k > FTER_PIE_MAX_K)
    ref(acc, x, w, k, nb, w_stride, t, x_stride, acc_stride);
  else
    tile(acc, x, w, k, nb, w_stride, t, x_stride, acc_stride, b3, set, staged);
}

void fter_tmm_tile_b3_pie(int32_t *acc, const int8_t *x, const uint8_t *w, int32_t k, int32_t nb,
                          int32_t w_stride, int32_t t, int32_t x_stride, int32_t acc_stride) {
  pie_tile(fter_tmm_tile_b3_ref, acc, x, w, k, nb, w_stride, t, x_stride, acc_stride, 1, 0, 0);
}

void fter_tmm_tile_b2_pie(int32_t *acc, const int8_t *x, const uint8_t *w, int32_t k, int32_t nb,
                          int32_t w_stride, int32_t t, int32_t x_stride, int32_t acc_stride) {
  pie_tile(fter_tmm_tile_b2_ref, acc, x, w, k, nb, w_stride, t, x_stride, acc_stride, 0, 0, 0);
}

void fter_tmm_tile_b3_set_pie(int32_t *acc, const int8_t *x, const uint8_t *w, int32_t k,
                              int32_t nb, int32_t w_stride, int32_t t, int32_t x_stride,
                              int32_t acc_stride) {
  pie_tile(fter_tmm_tile_b3_set_ref, acc, x, w, k, nb, w_stride, t, x_stride, acc_stride, 1, 1, 0);
}

void fter_tmm_tile_b2_set_pie(int32_t *acc, const int8_t *x, const uint8_t *w, int32_t k,
                              int32_t nb, int32_t w_stride, int32_t t, int32_t x_stride,
                              int32_t acc_stride) {
  pie_tile(fter_tmm_tile_b2_set_ref, acc, x, w, k, nb, w_stride, t, x_stride, acc_stride, 0, 1, 0);
}

/* The staged tiles' stage: every full group's bytes as decode_group gathers them */
static void stage_pie(uint8_t *stage, const uint8_t *w, int32_t k, int32_t nb, int32_t w_stride,
                      int b3) {
  const int32_t bytes = row_bytes(k, b3);
  if (k > FTER_PIE_MAX_K) return; /* the staged tile takes the reference */
  if (!trits_ready) fter_tmm_pie_init();
  for (int32_t j0 = 0; j0 + 16 <= nb; j0 += 16)
    gather_group(stage + j0 * bytes, w + j0 * w_stride, w_stride, bytes, b3);
}

void fter_tmm_stage_b3_pie(uint8_t *stage, const uint8_t *w, int32_t k, int32_t nb,
                           int32_t w_stride) {
  stage_pie(stage, w, k, nb, w_stride, 1);
}

void fter_tmm_stage_b2_pie(uint8_t *stage, const uint8_t *w, int32_t k, int32_t nb,
                           int32_t w_stride) {
  stage_pie(stage, w, k, nb, w_stride, 0);
}

void fter_tmm_tile_b3_staged_set_pie(int32_t *acc, const int8_t *x, const uint8_t *w,
                                     const uint8_t *stage, int32_t k, int32_t nb,
                                     int32_t w_stride, int32_t t, int32_t x_stride,
                                     int32_t acc_stride) {
  pie_tile(fter_tmm_tile_b3_set_ref, acc, x, w, k, nb, w_stride, t, x_stride, acc_stride, 1, 1,
           stage);
}

void fter_tmm_tile_b2_staged_set_pie(int32_t *acc, const int8_t *x, const uint8_t *w,
                                     const uint8_t *stage, int32_t k, int32_t nb,
                                     int32_t w_stride, int32_t t, int32_t x_stride,
                                     int32_t acc_stride) {
  pie_tile(fter_tmm_tile_b2_set_ref, acc, x, w, k, nb, w_stride, t, x_stride, acc_stride, 0, 1,
           stage);
}
