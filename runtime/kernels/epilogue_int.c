/* Epilogues of the integer projections (numerics="integer") over a weight-stationary tile of
 * t tokens x nb channels, as tight C loops.
 *
 * The contract is schedules/integer/intmath.py (dequant, gelu, quant8); the TensorIR blocks
 * these kernels replace (schedules/esp32s3/epilogue_intrin.py) state the same expressions, and
 * tests/test_integer_c.py checks the kernels bit for bit against the NumPy reference on the
 * host and the lx106.  Only int32 add, multiply, shift and compare.
 *
 * A tile's accumulator acc[t][nb] (row stride acc_stride) becomes values in Q12 through the
 * channels' scale mantissas/exponents cm, ce, the biases cb (Q12) and the tokens' rm, re:
 *   c  = floor(cm[j] * rm[i] / 2^abits)            (abits: bits of |acc| <= 128 k)
 *   sh = clamp(-(ce[j] + re[i]) - abits - 12, 1, 30)
 *   V  = round(acc * c / 2^sh) + cb[j]
 * The per-row factors are read once per row, the per-channel ones once per element. */
#include "fter_bits.h"
#include "fter_intmath.h"
#include "fter_kernels.h"

enum {
  VALUE_FRAC = 12,
  GELU_STEP = 4,
  LOGIT_FRAC = 10,
  LOG2E_Q14 = 23637,
  PROB_SHIFT = 23,
  V_WEIGHT_BITS = 14
};

/* intmath.EXP2_COEFS: 2^-w on [0, 1) as a Q15 cubic in w (Q10), exactly 2^15 at w = 0 */
static const int32_t EXP2_COEFS[4] = {-1295, 7556, -22645, 32768};

/* intmath.gelu for v >= 0 below 4 (u = v in Q12): round(u * P / 2^15), P = Phi(u) interpolated
 * between the table's entries lo and hi around u (tab[u >> 4], tab[(u >> 4) + 1]). */
static inline int32_t gelu_pos(int32_t u, int32_t lo, int32_t hi) {
  const int32_t frac = u & ((1 << GELU_STEP) - 1);
  const int32_t phi = lo + fter_rshift_round((hi - lo) * frac, GELU_STEP);
  return fter_rshift_round(u * phi, 15);
}

/* intmath.gelu: x * Phi(x), Phi(|x|) interpolated in the 1,025-entry Q15 table (step 2^-8).
 * With u = |v| < 4 the contract's round(v * Phi(v) / 2^15) is gelu_pos(u) for v >= 0 and, as
 * v * (2^15 - P) = v * 2^15 + u * P, exactly v + gelu_pos(u) for v < 0: one product, no sign
 * branch.  |v| >= 4: v or 0. */
static inline int32_t gelu(int32_t v, const int32_t *tab) {
  const int32_t four = 4 << VALUE_FRAC;
  const int32_t u = fter_abs(v);
  if (u >= four) return v > 0 ? v : 0;
  const int32_t k = u >> GELU_STEP;
  return gelu_pos(u, tab[k], tab[k + 1]) + fter_min(v, 0);
}

/* intmath.PHI_PIECES: Phi(u) on [s, s + 1), s = 0..3, as a Q15 cubic in w = u - s (Q12),
 * highest power first */
static const int32_t PHI_PIECES[4][4] = {
    {-1401, -645, 13230, 16376}, {832, -4387, 8010, 27566}, {508, -1521, 1714, 32025},
    {59, -147, 131, 32724}};

int32_t fter_gelu_table_entry(int32_t k) {
  const int32_t u = fter_min(k << GELU_STEP, (4 << VALUE_FRAC) - 1);
  const int32_t *c = PHI_PIECES[u >> VALUE_FRAC];
  const int32_t w = u & ((1 << VALUE_FRAC) - 1);
  int32_t r = c[0];
  for (int32_t i = 1; i < 4; ++i) r = fter_rshift_round(r * w, VALUE_FRAC) + c[i];
  return r;
}

void fter_gelu_lut_fill(int16_t *lut) {
  int32_t hi = fter_gelu_table_entry(0);
  for (int32_t k = 0; k < FTER_GELU_LUT_SIZE >> GELU_STEP; ++k) {
    const int32_t lo = hi;
    hi = fter_gelu_table_entry(k + 1);
    for (int32_t f = 0; f < 1 << GELU_STEP; ++f) {
      const int32_t u = (k << GELU_STEP) + f;
      lut[u] = (int16_t)(gelu_pos(u, lo, hi) - u); /* gelu(-u), see gelu() above */
    }
  }
}

/* Channels per chunk of the value loops (channel_chunk): each row's loop call and set-up is paid
 * once per chunk (DeiT-Tiny on the LX7: 32 -> 128 saves 4 M), and the chunk's factors take
 * 20 bytes a channel of stack (2.5 KB).  A row takes the LX7 loop where the chunk's channel
 * exponents span at most 27 (lx7_row), as trained and random ViTs' do. */
enum { TILE_CHANNELS = FTER_VALUE_CHUNK };

#if defined(FTER_PIE) && defined(__XTENSA__)
/* The LX7 loops below keep two more factors per channel, so that MULSH (the high word of the
 * 64-bit product) takes the place of both variable shifts:
 * - [3]: cm << cm_shift(abits); with the row's factor ms << (32 - abits - cm_shift) one MULSH is
 *   c = floor(cm * ms / 2^abits) (|cm|, |ms| <= 2^15: both stay in int32);
 * - [4]: 2^(30 - cemax + ce), cemax the chunk's largest exponent (lx7_chunk_prep); MULSH of the
 *   product acc * c by it is floor(acc * c / 2^(2 + cemax - ce)), and the row's remaining
 *   e = es1 - cemax - 2 completes the second rounding's es1 - ce (FTER_DEQUANT_SAR). */
#define CHAN_WORDS 5
static inline int32_t cm_shift(int32_t abits) { return fter_min(15, 32 - abits); }
static inline int32_t row_factor(int32_t ms, int32_t abits) {
  return ms * (1 << (32 - abits - cm_shift(abits)));
}
#else
#define CHAN_WORDS 3
#endif

#if CHAN_WORDS == 5
/* The smallest and largest channel exponent of a chunk (channel_chunk's layout) into range, and
 * each channel's second MULSH factor 2^(30 - cemax + ce) (chan[j][4]; clamped for chunks whose
 * exponents span more than 27, which no row's loop then uses). */
static void lx7_chunk_prep(int32_t range[2], int32_t chan[TILE_CHANNELS][CHAN_WORDS], int32_t nc) {
  range[0] = range[1] = chan[0][1];
  for (int32_t j = 1; j < nc; ++j) {
    range[0] = fter_min(range[0], chan[j][1]);
    range[1] = fter_max(range[1], chan[j][1]);
  }
  for (int32_t j = 0; j < nc; ++j) chan[j][4] = 1 << fter_clamp(30 - range[1] + chan[j][1], 0, 30);
}
#endif

/* Channels are taken in chunks whose factors sit side by side on the stack: one pointer walks
 * them in the inner loop, which leaves registers for the row's factors. Fills chan with up to
 * TILE_CHANNELS of the left channels (and, for the LX7 loops, their MULSH factors and the
 * chunk's exponent range, range); returns how many. */
static inline int32_t channel_chunk(int32_t chan[TILE_CHANNELS][CHAN_WORDS], int32_t range[2],
                                    const int32_t *cm, const int32_t *ce, const int32_t *cb,
                                    int32_t left, int32_t abits) {
  const int32_t nc = fter_min(left, TILE_CHANNELS);
  for (int32_t j = 0; j < nc; ++j) {
    chan[j][0] = cm[j];
    chan[j][1] = ce[j];
    chan[j][2] = cb[j];
#if CHAN_WORDS == 5
    chan[j][3] = cm[j] * (1 << cm_shift(abits));
#endif
  }
#if CHAN_WORDS == 5
  lx7_chunk_prep(range, chan, nc);
#else
  range[0] = range[1] = 0; /* only the LX7 loops read it */
#endif
  (void)abits;
  return nc;
}

#if defined(FTER_PIE) && defined(__XTENSA__)
/* The LX7's own loops for rows whose shifts es1 - ce all lie in [2, 29] (the contract's clamp is
 * then the identity): the C's operations in one zero-overhead loop per row, with the LX7's ABS,
 * CLAMPS and MAX and every value in a register (GCC, which builds for the lx106 here, keeps
 * some of them on the stack and branches for each clamp).  Other rows, and every other core, run
 * the C. */
#define FTER_LX7_ROWS 1

/* Every function below whose asm holds a zero-overhead loop is kept out of line: a C loop that
 * calls a function is never made a zero-overhead loop itself (the LX7 has one LBEG/LEND/LCOUNT),
 * while a C loop around inlined asm could be, by a compiler that emits them (ESP-IDF's GCC). */
#define FTER_LX7_LOOP_FN static __attribute__((noinline))

/* V = round(acc * c / 2^(es1 - ce)) + cb, c = floor(cm * ms / 2^abits) (fter_dequant) into
 * %[v], from %[pa] + AO (acc) and %[pf] + FO (the chunk's factors), byte offsets as strings,
 * %[ms] the row's factor (row_factor): c is one MULSH; SAR holds the row's shift
 * e + 1 = es1 - cemax - 1 and %[hf] its 2^e, so that one add and one shift are the rounding
 * ((y >> e) + 1) >> 1 = (y + 2^e) >> (e + 1) (%[sh]; FTER_DEQUANT_SAR_AT sets SAR again, for
 * loops that use it for more); %[x], %[t] scratch */
#define FTER_DEQUANT_SAR(AO, FO, SAR)          \
  "l32i   %[x], %[pa], " AO "\n"               \
  "l32i   %[t], %[pf], " FO "+12\n"            \
  "mulsh  %[t], %[t], %[ms]\n"                 \
  "mull   %[x], %[x], %[t]\n"                  \
  "l32i   %[t], %[pf], " FO "+16\n"            \
  "mulsh  %[x], %[x], %[t]\n"                  \
  SAR                                          \
  "add    %[x], %[x], %[hf]\n"                 \
  "sra    %[x], %[x]\n"                        \
  "l32i   %[t], %[pf], " FO "+8\n"             \
  "add    %[v], %[x], %[t]\n"
#define FTER_DEQUANT_AT(AO, FO) FTER_DEQUANT_SAR(AO, FO, "")
#define FTER_DEQUANT_SAR_AT(AO, FO) FTER_DEQUANT_SAR(AO, FO, "ssr    %[sh]\n")
#define FTER_DEQUANT_ASM FTER_DEQUANT_AT("0", "0")

/* Whether a row takes the LX7 loop: its shifts es1 - ce need no clamp over the chunk's exponent
 * range, and es1 - cemax >= 2 leaves the row's e = es1 - cemax - 2 non-negative (SAR holds
 * e + 1, see FTER_DEQUANT_SAR). */
static inline int lx7_row(int32_t es1, const int32_t range[2]) {
  return es1 - range[1] >= 2 && es1 - range[0] <= 29;
}

/* Two values per loop step in the row loops below, an odd count ending with one more (SAR set
 * again: the tail is an asm statement of its own); ROW_OPERANDS_WITH, the operands around
 * each loop's own, and ROW_STEP, the two pointers' step, are the same in each. */
#define ROW_INPUTS [ms] "r"(ms), [sh] "r"(sh), [hf] "r"(1 << (sh - 1)), [p] "r"(nc >> 1)
#define ROW_OPERANDS_WITH(...)                                                             \
  : __VA_ARGS__, [pa] "+r"(a), [pf] "+r"(f), [x] "=&r"(x), [t] "=&r"(t), [v] "=&r"(v) : ROW_INPUTS \
  : "memory"
#define ROW_STEP "addi   %[pa], %[pa], 8\n addi   %[pf], %[pf], 40\n"
#define ROW_PAIRS(ONE, STEPS)                                                          \
  do {                                                                                 \
    __asm__ volatile("ssr    %[sh]\n"                                                  \
                     "loopnez %[p], 1f\n" ONE("0", "0", "0") ONE("4", "20", "4") STEPS \
                     "1:\n" ROW_OPERANDS);                                              \
    if (nc & 1) __asm__ volatile("ssr    %[sh]\n" ONE("0", "0", "0") ROW_OPERANDS);     \
  } while (0)

/* The row's values in place of its accumulators; with top, each channel's largest |V| folded
 * into top[j], else the row's largest |V| (or, with signed_max, its largest V) folded into the
 * returned m. */
#define VALUE_AT(AO, FO, TO) FTER_DEQUANT_AT(AO, FO) "s32i   %[v], %[pa], " AO "\n"
#define VALUE_TOP_AT(AO, FO, TO)           \
  VALUE_AT(AO, FO, TO)                     \
  "abs    %[v], %[v]\n"                    \
  "l32i   %[t], %[pt], " TO "\n"           \
  "max    %[t], %[t], %[v]\n"              \
  "s32i   %[t], %[pt], " TO "\n"
#define VALUE_ROWTOP_AT(AO, FO, TO) VALUE_AT(AO, FO, TO) "abs    %[v], %[v]\n max    %[m], %[m], %[v]\n"
#define VALUE_ROWMAX_AT(AO, FO, TO) VALUE_AT(AO, FO, TO) "max    %[m], %[m], %[v]\n"
FTER_LX7_LOOP_FN int32_t values_row_lx7(int32_t *a, const int32_t (*f)[CHAN_WORDS], int32_t *top,
                                        int32_t m, int32_t nc, int32_t ms, int32_t sh,
                                        int signed_max) {
  int32_t x, t, v;
#define ROW_OPERANDS ROW_OPERANDS_WITH([pt] "+r"(top), [m] "+r"(m))
  if (top != 0)
    ROW_PAIRS(VALUE_TOP_AT, ROW_STEP "addi   %[pt], %[pt], 8\n");
  else if (signed_max)
    ROW_PAIRS(VALUE_ROWMAX_AT, ROW_STEP);
  else
    ROW_PAIRS(VALUE_ROWTOP_AT, ROW_STEP);
#undef ROW_OPERANDS
  return m;
}

/* The GELU table of the loop below (fter_gelu_init): in internal RAM, as every table the
 * kernels read per value (flash reads go through the cache). */
static int16_t gelu_lut[FTER_GELU_LUT_SIZE];
static int gelu_lut_ready;

/* GELU and quant8 of the value at %[pv] + VO, its code stored at %[pq] + OO.  GELU reads the
 * table gelu_lut of gelu(-u) at u' = min(|V|, 2^14 - 1) (CLAMPS to 15 signed bits) and adds
 * max(V, 0) (MAX with %[z] = 0): gelu(-|V|) + max(V, 0) is the contract's gelu for |V| < 4
 * (gelu(u) = gelu(-u) + u), and V or 0 beyond, as gelu_lut[2^14 - 1] = 0 (fter_gelu_lut_fill)
 * -- no branch.  SHIFT: the quantizer's h >> r with r in SAR for the whole row, or nothing where
 * the row's r is 0; then round(. / 2^16) with %[half] = 2^15 (the product is below 2^24 in
 * magnitude: the row's multiplier is made from the row's GELU bound).  The code is CLAMPS'd to
 * [-128, 127] only: the contract's -127 bound never acts here, as every negative GELU lies
 * within GELU_NEG_BOUND <= the row's absmax (gelu_row_bound), and a value within the absmax
 * codes to at least -127 (intmath.quant_multiplier's M is at most 127 * 2^16 / (A >> r) + 1/2;
 * test_integer checks the bound over every absmax and value). */
#define GELU_SHIFT "sra    %[t], %[t]\n"
#define GELU_NO_SHIFT ""
#define GELU_VALUE_AT(SHIFT, VO, OO)        \
  "l32i   %[v], %[pv], " VO "\n"            \
  "abs    %[u], %[v]\n"                     \
  "clamps %[t], %[u], 14\n"                 \
  "addx2  %[t], %[t], %[lut]\n"             \
  "l16si  %[t], %[t], 0\n"                  \
  "max    %[u], %[v], %[z]\n"               \
  "add    %[t], %[t], %[u]\n"               \
  SHIFT                                     \
  "mull   %[t], %[t], %[m]\n"               \
  "add    %[t], %[t], %[half]\n"            \
  "srai   %[t], %[t], 16\n"                 \
  "clamps %[t], %[t], 7\n"                  \
  "s8i    %[t], %[pq], " OO "\n"
#define GELU_AT(VO, QO) GELU_VALUE_AT(GELU_SHIFT, VO, QO)
#define GELU_R0_AT(VO, QO) GELU_VALUE_AT(GELU_NO_SHIFT, VO, QO)
#define GELU_ROW_OPERANDS                                                                  \
  : [pv] "+r"(v), [pq] "+r"(out), [t] "=&r"(t), [u] "=&r"(u), [v] "=&r"(x)                 \
  : [lut] "r"(gelu_lut), [z] "r"(0), [m] "r"(m), [half] "r"(1 << (FTER_QUANT_SHIFT - 1)),  \
    [r] "r"(r), [p] "r"(n >> 1)                                                            \
  : "memory"

/* Two codes a loop step over a row of n values at %[pv] into %[pq], the row's shift in SAR
 * (from %[r]), an odd n ending with one more: AT(VO, QO) codes the value at byte VO of %[pv]
 * into byte QO of %[pq]; the asm operands follow AT. */
#define CODE_PAIRS(AT, ...)                                                           \
  do {                                                                                \
    __asm__ volatile("ssr    %[r]\n"                                                  \
                     "loopnez %[p], 1f\n" AT("0", "0") AT("4", "1")                   \
                     "addi   %[pv], %[pv], 8\n"                                       \
                     "addi   %[pq], %[pq], 2\n"                                       \
                     "1:\n" __VA_ARGS__);                                             \
    if (n & 1) __asm__ volatile("ssr    %[r]\n" AT("0", "0") __VA_ARGS__);            \
  } while (0)
/* CODE_PAIRS with R0_AT where the row's shift r is 0, else with R_AT */
#define CODE_ROW(R0_AT, R_AT, ...)   \
  do {                               \
    if (r == 0)                      \
      CODE_PAIRS(R0_AT, __VA_ARGS__); \
    else                             \
      CODE_PAIRS(R_AT, __VA_ARGS__);  \
  } while (0)

/* One row of GELU codes from its values (fter_gelu_codes_tile), two values a loop step: 12
 * instructions a value where the row's r is 0 (as for most rows), 13 where it shifts. */
FTER_LX7_LOOP_FN void gelu_codes_row_lx7(int8_t *out, const int32_t *v, int32_t n, int32_t r,
                                         int32_t m) {
  int32_t t, u, x;
  CODE_ROW(GELU_R0_AT, GELU_AT, GELU_ROW_OPERANDS);
}
#undef GELU_R0_AT
#undef GELU_AT
#undef GELU_ROW_OPERANDS
#undef GELU_VALUE_AT

/* The end of an int8 code in the LX7 loops below: register X holds the product (h >> r) * m, and
 * round(. / 2^16) with %[half] = 2^15 and MAX with %[low] = -127 store quant8's code at byte QO
 * of %[pq].  Every loop here codes values within the absmax A its multiplier was made from,
 * which leaves the rounded value in [-128, 127] before any clamp (127 at h = A; -128 at worst
 * for h = -A, where h >> r floors; test_integer checks it for every A), so the contract's clamp
 * to [-127, 127] is the MAX alone. */
#define QUANT8_STORE(X, QO)                   \
  "add    %[" X "], %[" X "], %[half]\n"       \
  "srai   %[" X "], %[" X "], 16\n"            \
  "max    %[" X "], %[" X "], %[low]\n"        \
  "s8i    %[" X "], %[pq], " QO "\n"

/* fter_codes on the LX7: two values per loop step with the row's shift r in SAR for the whole
 * row (no shift at all where r is 0, as for most rows), MAX for the clamp (QUANT8_STORE; the
 * C's GCC, building for the lx106, branches twice per value and sets SAR per value): 7 or 8
 * instructions per value. */
__attribute__((noinline)) void fter_codes_lx7(int8_t *q, const int32_t *v, int32_t n, int32_t r,
                                              int32_t m) {
  int32_t x;
#define CODE_AT(SHIFT, VO, QO)                \
  "l32i   %[x], %[pv], " VO "\n"             \
  SHIFT                                      \
  "mull   %[x], %[x], %[m]\n"                \
  QUANT8_STORE("x", QO)
#define CODE_R_AT(VO, QO) CODE_AT("sra    %[x], %[x]\n", VO, QO)
#define CODE_R0_AT(VO, QO) CODE_AT("", VO, QO)
#define CODES_OPERANDS                                                                      \
  : [pv] "+r"(v), [pq] "+r"(q), [x] "=&r"(x)                                               \
  : [m] "r"(m), [half] "r"(1 << (FTER_QUANT_SHIFT - 1)), [low] "r"(-127), [p] "r"(n >> 1), \
    [r] "r"(r)                                                                              \
  : "memory"
  CODE_ROW(CODE_R0_AT, CODE_R_AT, CODES_OPERANDS);
#undef CODE_R0_AT
#undef CODE_R_AT
#undef CODE_AT
#undef CODES_OPERANDS
}

/* One row of a channel-quantized tile's codes: q[j] = quant8(v[j]) with channel j's split
 * multiplier at f[j][0] (r) and f[j][1] (m), two values a step; with shifts (CHAN_R) or, where
 * every r of the chunk is 0, without: 11.5 or 8.5 instructions per value. */
#define CHAN_CODE_AT(SHIFT, VO, FO, QO)      \
  "l32i   %[x], %[pv], " VO "\n"            \
  SHIFT(FO)                                 \
  "l32i   %[t], %[pf], " FO "+4\n"          \
  "mull   %[x], %[x], %[t]\n"               \
  QUANT8_STORE("x", QO)
#define CHAN_R(FO) "l32i   %[t], %[pf], " FO "\n ssr    %[t]\n sra    %[x], %[x]\n"
#define CHAN_R0(FO) ""
#define CHAN_CODES_OPERANDS                                                                  \
  : [pv] "+r"(v), [pf] "+r"(f), [pq] "+r"(q), [x] "=&r"(x), [t] "=&r"(t)                     \
  : [half] "r"(1 << (FTER_QUANT_SHIFT - 1)), [low] "r"(-127), [p] "r"(nc >> 1) : "memory"
#define CHAN_CODES(SHIFT)                                                                   \
  do {                                                                                      \
    __asm__ volatile("loopnez %[p], 1f\n" CHAN_CODE_AT(SHIFT, "0", "0", "0")                \
                     CHAN_CODE_AT(SHIFT, "4", "20", "1")                                     \
                     "addi   %[pv], %[pv], 8\n addi   %[pf], %[pf], 40\n"                    \
                     "addi   %[pq], %[pq], 2\n"                                              \
                     "1:\n" CHAN_CODES_OPERANDS);                                            \
    if (nc & 1) __asm__ volatile(CHAN_CODE_AT(SHIFT, "0", "0", "0") CHAN_CODES_OPERANDS);    \
  } while (0)
FTER_LX7_LOOP_FN void chan_codes_row_lx7(int8_t *q, const int32_t *v,
                                         const int32_t (*f)[CHAN_WORDS], int32_t nc, int shifts) {
  int32_t x, t;
  if (shifts)
    CHAN_CODES(CHAN_R);
  else
    CHAN_CODES(CHAN_R0);
}

/* The P.V outputs o[c] of a head weighted in place, round(o[c] * w[c] / 2^14), two a step;
 * returns max(top, their largest |value|). */
#define WEIGHTED_AT(O)                       \
  "l32i   %[x], %[po], " O "\n"             \
  "l32i   %[t], %[pw], " O "\n"             \
  "mull   %[x], %[x], %[t]\n"               \
  "addmi  %[x], %[x], 0x2000\n"             \
  "srai   %[x], %[x], 14\n"                 \
  "s32i   %[x], %[po], " O "\n"             \
  "abs    %[x], %[x]\n"                     \
  "max    %[m], %[m], %[x]\n"
#define WEIGHTED_OPERANDS                                                            \
  : [m] "+r"(top), [po] "+r"(o), [pw] "+r"(w), [x] "=&r"(x), [t] "=&r"(t)         \
  : [p] "r"(n >> 1) : "memory"
FTER_LX7_LOOP_FN int32_t weighted_row_lx7(int32_t *o, const int32_t *w, int32_t n, int32_t top) {
  int32_t x, t;
  __asm__ volatile("loopnez %[p], 1f\n" WEIGHTED_AT("0") WEIGHTED_AT("4")
                   "addi   %[po], %[po], 8\n addi   %[pw], %[pw], 8\n"
                   "1:\n" WEIGHTED_OPERANDS);
  if (n & 1) __asm__ volatile(WEIGHTED_AT("0") WEIGHTED_OPERANDS);
  return top;
}

#endif /* FTER_PIE && __XTENSA__ */

void fter_gelu_init(void) {
#ifdef FTER_LX7_ROWS
  fter_gelu_lut_fill(gelu_lut);
  gelu_lut_ready = 1;
#endif
}

/* q may be v's memory (fter_kernels.h): rows in order, each code stored after its value is read
 * (the LX7 loop reads a step's two values before either store reaches them) */
void fter_gelu_codes_tile(int8_t *q, const int32_t *v, const int32_t *tab, const int32_t *mult,
                          int32_t t, int32_t nb, int32_t q_stride, int32_t v_stride) {
#ifdef FTER_LX7_ROWS
  if (!gelu_lut_ready) fter_gelu_init();
  (void)tab;
#endif
  for (int32_t i = 0; i < t; ++i, q += q_stride, v += v_stride) {
    const int32_t r = mult[i] >> 24, m = mult[i] & 0xFFFFFF;
#ifdef FTER_LX7_ROWS
    gelu_codes_row_lx7(q, v, nb, r, m);
#else
    FTER_UNROLL4
    for (int32_t j = 0; j < nb; ++j) q[j] = (int8_t)fter_quant8(gelu(v[j], tab), r, m);
#endif
  }
}

/* The values of nc channels (chan, as channel_chunk fills it) for t tokens, in place of their
 * accumulators a[i * stride + j]; with top, top[j] folds each channel's largest |V|, else
 * rowtop[i] each row's largest |V| or, with signed_max, its largest V. */
static void values_in_place(int32_t *a, const int32_t chan[TILE_CHANNELS][CHAN_WORDS],
                            const int32_t range[2], int32_t *top, int32_t *rowtop, int32_t nc,
                            const int32_t *rm, const int32_t *re, int32_t t, int32_t stride,
                            int32_t abits, int signed_max) {
  (void)range; /* only the LX7 loops read it */
  for (int32_t i = 0; i < t; ++i, a += stride) {
    const int32_t ms = rm[i], es1 = -re[i] - abits - VALUE_FRAC - 1;
#ifdef FTER_LX7_ROWS
    if (lx7_row(es1, range)) {
      const int32_t m = values_row_lx7(a, (const int32_t(*)[CHAN_WORDS])chan, top,
                                       top ? 0 : rowtop[i], nc, row_factor(ms, abits),
                                       es1 - range[1] - 1, signed_max);
      if (top == 0) rowtop[i] = m;
      continue;
    }
#endif
    if (top == 0) {
      int32_t m = rowtop[i];
      FTER_UNROLL4
      for (int32_t j = 0; j < nc; ++j) {
        const int32_t *f = chan[j];
        const int32_t v = fter_dequant(a[j], f[0], f[1], f[2], ms, es1, abits);
        a[j] = v;
        m = fter_max(m, signed_max ? v : fter_abs(v));
      }
      rowtop[i] = m;
    } else {
      for (int32_t j = 0; j < nc; ++j) {
        const int32_t *f = chan[j];
        const int32_t v = fter_dequant(a[j], f[0], f[1], f[2], ms, es1, abits);
        a[j] = v;
        top[j] = fter_max(top[j], fter_abs(v));
      }
    }
  }
}

/* The table's chunk c: its channels' factors (channel_chunk's [TILE_CHANNELS][CHAN_WORDS], in
 * the room of 5 words a channel whatever CHAN_WORDS is), then its exponent range at RANGE_AT */
enum { TABLE_CHUNK_WORDS = FTER_VALUE_TABLE_WORDS(TILE_CHANNELS), RANGE_AT = TILE_CHANNELS * 5 };
typedef int32_t chan_factors[TILE_CHANNELS][CHAN_WORDS];

void fter_value_table(int32_t *table, const int32_t *cm, const int32_t *ce, const int32_t *cb,
                      int32_t nb, int32_t abits) {
  for (int32_t j0 = 0; j0 < nb; j0 += TILE_CHANNELS, table += TABLE_CHUNK_WORDS)
    channel_chunk(*(chan_factors *)table, table + RANGE_AT, cm + j0, ce + j0, cb + j0, nb - j0,
                  abits);
}

void fter_value_max_tile(int32_t *vmax, int32_t *acc, const int32_t *table, const int32_t *rm,
                         const int32_t *re, int32_t t, int32_t nb, int32_t acc_stride,
                         int32_t abits) {
  for (int32_t i = 0; i < t; ++i) vmax[i] = -2147483647 - 1; /* below every value (> -2^30) */
  for (int32_t j0 = 0; j0 < nb; j0 += TILE_CHANNELS, table += TABLE_CHUNK_WORDS)
    values_in_place(acc + j0, *(const chan_factors *)table, table + RANGE_AT, 0, vmax,
                    fter_min(nb - j0, TILE_CHANNELS), rm, re, t, acc_stride, abits, 1);
}

/* The float scale of codes made from an absmax a of values in Q12 (intmath: A * 2^-12). */
static inline float value_scale(int32_t a) { return (float)a * 0x1p-12f; }

void fter_channel_codes_tile(int8_t *y, float *scale, int32_t *acc, const int32_t *cm,
                             const int32_t *ce, const int32_t *cb, const int32_t *rm,
                             const int32_t *re, int32_t t, int32_t nb, int32_t y_stride,
                             int32_t acc_stride, int32_t abits) {
  for (int32_t j0 = 0; j0 < nb; j0 += TILE_CHANNELS) {
    int32_t chan[TILE_CHANNELS][CHAN_WORDS], range[2], top[TILE_CHANNELS];
    const int32_t nc = channel_chunk(chan, range, cm + j0, ce + j0, cb + j0, nb - j0, abits);
    for (int32_t j = 0; j < nc; ++j) top[j] = 0;
    values_in_place(acc + j0, chan, range, top, 0, nc, rm, re, t, acc_stride, abits, 0);
    /* each channel's multiplier, split as fter_quant8 takes it, in its chunk slot */
    int32_t shifts = 0;
    for (int32_t j = 0; j < nc; ++j) {
      const int32_t packed = fter_quant_multiplier(top[j]);
      chan[j][0] = packed >> 24;
      chan[j][1] = packed & 0xFFFFFF;
      shifts |= chan[j][0];
      scale[j0 + j] = value_scale(top[j]);
    }
    const int32_t *a = acc + j0;
    int8_t *out = y + j0;
    for (int32_t i = 0; i < t; ++i, a += acc_stride, out += y_stride) {
#ifdef FTER_LX7_ROWS
      chan_codes_row_lx7(out, a, (const int32_t(*)[CHAN_WORDS])chan, nc, shifts != 0);
#else
      FTER_UNROLL4
      for (int32_t j = 0; j < nc; ++j) out[j] = fter_quant8(a[j], chan[j][0], chan[j][1]);
#endif
    }
    (void)shifts; /* only the LX7 loop reads it */
  }
}

/* Values in place with each token's absmax A, then per token its multiplier and codes; A goes to
 * amax (int) or as A * 2^-12 to scale (float), whichever is not NULL.  Tokens are taken
 * ROW_BLOCK at a time, their maxima on the stack. */
enum { ROW_BLOCK = 64 };
static void row_codes(int8_t *y, float *scale, int32_t *amax, int32_t *acc, const int32_t *cm,
                      const int32_t *ce, const int32_t *cb, const int32_t *rm, const int32_t *re,
                      int32_t t, int32_t nb, int32_t y_stride, int32_t out_stride,
                      int32_t acc_stride, int32_t abits) {
  for (int32_t i0 = 0; i0 < t; i0 += ROW_BLOCK) {
    const int32_t rows = fter_min(t - i0, ROW_BLOCK);
    int32_t *a = acc + i0 * acc_stride, top[ROW_BLOCK];
    for (int32_t i = 0; i < rows; ++i) top[i] = 0;
    for (int32_t j0 = 0; j0 < nb; j0 += TILE_CHANNELS) {
      int32_t chan[TILE_CHANNELS][CHAN_WORDS], range[2];
      const int32_t nc = channel_chunk(chan, range, cm + j0, ce + j0, cb + j0, nb - j0, abits);
      values_in_place(a + j0, chan, range, 0, top, nc, rm + i0, re + i0, rows, acc_stride,
                      abits, 0);
    }
    for (int32_t i = 0; i < rows; ++i, a += acc_stride) {
      const int32_t at = (i0 + i) * out_stride;
      if (scale) scale[at] = value_scale(top[i]);
      if (amax) amax[at] = top[i];
      fter_codes(y + (i0 + i) * y_stride, a, nb, fter_quant_multiplier(top[i]));
    }
  }
}

void fter_row_codes_tile(int8_t *y, float *scale, int32_t *acc, const int32_t *cm,
                         const int32_t *ce, const int32_t *cb, const int32_t *rm,
                         const int32_t *re, int32_t t, int32_t nb, int32_t y_stride,
                         int32_t scale_stride, int32_t acc_stride, int32_t abits) {
  row_codes(y, scale, 0, acc, cm, ce, cb, rm, re, t, nb, y_stride, scale_stride, acc_stride,
            abits);
}

void fter_row_absmax_codes_tile(int8_t *y, int32_t *amax, int32_t *acc, const int32_t *cm,
                                const int32_t *ce, const int32_t *cb, const int32_t *rm,
                                const int32_t *re, int32_t t, int32_t nb, int32_t y_stride,
                                int32_t amax_stride, int32_t acc_stride, int32_t abits) {
  row_codes(y, 0, amax, acc, cm, ce, cb, rm, re, t, nb, y_stride, amax_stride, acc_stride,
            abits);
}

void fter_attn_out_codes_row(int8_t *q, int32_t *amax, int32_t *pacc, const int32_t *vm,
                             int32_t h, int32_t hd, int32_t head_stride) {
  /* the weighted outputs in place, and their absmax */
  int32_t top = 0;
  for (int32_t hh = 0; hh < h; ++hh) {
    int32_t *o = pacc + hh * head_stride;
    const int32_t *w = vm + hh * hd;
#ifdef FTER_LX7_ROWS
    top = weighted_row_lx7(o, w, hd, top);
#else
    FTER_UNROLL4
    for (int32_t c = 0; c < hd; ++c) {
      const int32_t v = fter_rshift_round(o[c] * w[c], V_WEIGHT_BITS);
      o[c] = v;
      top = fter_max(top, fter_abs(v));
    }
#endif
  }
  *amax = top;
  const int32_t packed = fter_quant_multiplier(top);
  for (int32_t hh = 0; hh < h; ++hh) fter_codes(q + hh * hd, pacc + hh * head_stride, hd, packed);
}

#ifdef FTER_LX7_ROWS
/* One row of n patch pixels on the LX7 (rows with fter_fpu_ref(ref)): each read on the FPU
 * (FTER_FPU_FIXED_AT, f2 = 2^(140 - ref) from %[sc]) and coded as fter_codes_lx7 does for a
 * multiplier without shift (QUANT8_STORE): a patch's absmax reads as 2^13..2^14, so its r is 0
 * (the caller checks); two pixels a step. */
#define PATCH_AT(O, FR, R, QO)              \
  FTER_FPU_FIXED_AT(O, FR, R, "t", "u")     \
  "mull   %[" R "], %[" R "], %[m]\n"        \
  QUANT8_STORE(R, QO)
#define PATCH_OPERANDS                                                                       \
  : [px] "+r"(x), [pq] "+r"(q), [a] "=&r"(a), [b] "=&r"(b), [t] "=&r"(t), [u] "=&r"(u)       \
  : [sc] "r"(sc), [m] "r"(m), [half] "r"(1 << (FTER_QUANT_SHIFT - 1)), [low] "r"(-127),     \
    [p] "r"(n >> 1)                                                                          \
  : FTER_FP_CLOBBERS
FTER_LX7_LOOP_FN void patch_row_lx7(int8_t *q, const float *x, int32_t n, int32_t sc, int32_t m) {
  int32_t a, b, t, u;
  __asm__ volatile("wfr    f2, %[sc]\n"
                   "loopnez %[p], 1f\n" PATCH_AT("0", "f0", "a", "0") PATCH_AT("4", "f1", "b", "1")
                   "addi   %[px], %[px], 8\n addi   %[pq], %[pq], 2\n"
                   "1:\n" PATCH_OPERANDS);
  if (n & 1) __asm__ volatile("wfr    f2, %[sc]\n" PATCH_AT("0", "f0", "a", "0") PATCH_OPERANDS);
}
#undef PATCH_OPERANDS
#undef PATCH_AT
#endif

/* The integer patch quantizer (intmath.patch_scale / patch_multiplier / fixed_from_f32 / quant8)
 * of one patch of a [c, img_h, img_w] image, pixels in (channel, row, column) order: the largest
 * |pixel| as bits, its float scale, the pixels read relative to its exponent and coded. */
void fter_patch_codes(int8_t *q, float *s, const float *img, int32_t patch, int32_t c,
                      int32_t p, int32_t gw, int32_t img_h, int32_t img_w) {
  const float *origin = img + (patch / gw) * p * img_w + (patch % gw) * p;
  int32_t top = 0;
  for (int32_t ch = 0; ch < c; ++ch)
    for (int32_t py = 0; py < p; ++py) {
      const float *row = origin + (ch * img_h + py) * img_w;
      FTER_UNROLL4
      for (int32_t px = 0; px < p; ++px)
        top = fter_max(top, (int32_t)(bits_of(row[px]) & 0x7FFFFFFFu));
    }
  const float a = from_bits((uint32_t)top);
  *s = (a > 1e-5f ? a : 1e-5f) / 127.0f;
  const int32_t ref = fter_max(top >> 23, 1);
  const int32_t packed = fter_quant_multiplier(fter_fixed_from_bits(top, ref));
  const int32_t r = packed >> 24, m = packed & 0xFFFFFF;
#ifdef FTER_LX7_ROWS
  if (fter_fpu_ref(ref) && r == 0) {
    for (int32_t ch = 0; ch < c; ++ch)
      for (int32_t py = 0; py < p; ++py, q += p)
        patch_row_lx7(q, origin + (ch * img_h + py) * img_w, p, fter_fpu_scale(ref), m);
    return;
  }
#endif
  for (int32_t ch = 0; ch < c; ++ch)
    for (int32_t py = 0; py < p; ++py, q += p) {
      const float *row = origin + (ch * img_h + py) * img_w;
      FTER_UNROLL4
      for (int32_t px = 0; px < p; ++px)
        q[px] = fter_quant8(fter_fixed_from_bits((int32_t)bits_of(row[px]), ref), r, m);
    }
}

/* The float residual epilogue of a projection: (float)acc * (alpha * s) + bias + res, each
 * operation rounded to float32 in that order (no fused multiply-add, as -ffp-contract=off keeps
 * the C).  In the esp32s3 simulator build (FTER_PIE with Debian's soft-float lx106 GCC, whose
 * float operations call FPU-backed helpers) a row runs on the LX7's FPU as one zero-overhead asm
 * loop: the same IEEE single round-to-nearest operations, loads straight into FP registers
 * (LSIP, post-incremented), without helper calls.  ESP-IDF's hard-float GCC emits FPU
 * instructions for the C itself (the asm does not declare the FP registers it uses, which only
 * a soft-float compiler may ignore). */
#if defined(FTER_PIE) && defined(__XTENSA__) && !defined(__XTENSA_HARD_FLOAT__)
/* (out of line: it holds a zero-overhead loop, see FTER_LX7_LOOP_FN) */
static __attribute__((noinline)) void residual_row_lx7(float *y, const float *res,
                                                      const int32_t *acc, const float *alpha,
                                                      float s, const float *bias, int32_t nb) {
  int32_t x;
  __asm__ volatile(
      "wfr     f3, %[s]\n"
      "loopnez %[n], 1f\n"
      "l32i    %[x], %[acc], 0\n"
      "lsip    f1, %[alpha], 4\n"
      "float.s f0, %[x], 0\n"
      "mul.s   f1, f1, f3\n"
      "mul.s   f0, f0, f1\n"
      "lsip    f1, %[bias], 4\n"
      "add.s   f0, f0, f1\n"
      "lsip    f1, %[res], 4\n"
      "add.s   f0, f0, f1\n"
      "ssip    f0, %[y], 4\n"
      "addi    %[acc], %[acc], 4\n"
      "1:\n"
      : [y] "+r"(y), [res] "+r"(res), [acc] "+r"(acc), [alpha] "+r"(alpha), [bias] "+r"(bias),
        [n] "+r"(nb), [x] "=&r"(x)
      : [s] "r"(s)
      : "memory");
}
#endif

void fter_residual_tile(float *y, const float *res, const int32_t *acc, const float *alpha,
                        const float *s, const float *bias, int32_t t, int32_t nb,
                        int32_t y_stride, int32_t res_stride, int32_t acc_stride) {
  for (int32_t i = 0; i < t; ++i, y += y_stride, res += res_stride, acc += acc_stride) {
#if defined(FTER_PIE) && defined(__XTENSA__) && !defined(__XTENSA_HARD_FLOAT__)
    residual_row_lx7(y, res, acc, alpha, s[i], bias, nb);
#else
    const float si = s[i];
    FTER_UNROLL4
    for (int32_t j = 0; j < nb; ++j) y[j] = (float)acc[j] * (alpha[j] * si) + bias[j] + res[j];
#endif
  }
}

/* intmath.exp_neg's fraction: the cubic 2^-w (Q15) for every w of the 10-bit fraction, built
 * once (fter_softmax_init, called by fter_kernels_init and on first use): the cubic depends on w
 * alone, so a lookup gives its very bits, 2^14 < value <= 2^15 */
static uint16_t exp2_frac[1 << LOGIT_FRAC];
static int exp2_ready;

#ifdef FTER_LX7_ROWS
/* The LX7 exp loop's table (fter_exp_lut_fill): in internal RAM, as the GELU table */
static uint16_t exp_lut[FTER_EXP_LUT_SIZE];
#endif

/* round(255 e / sum e) goes through one reciprocal of the row's sum (intmath.prob_reciprocal) */
static inline int32_t prob_reciprocal(int32_t total) {
  return (255 << PROB_SHIFT) / (total > 1 ? total : 1);
}

/* intmath.exp_neg: round(2^15 * exp(-D / 2^10)) for D >= 0 */
static inline int32_t exp_neg(int32_t dlt) {
  const int32_t y = fter_rshift_round(fter_min(dlt, 65535) * LOG2E_Q14, 14);
  return exp2_frac[y & ((1 << LOGIT_FRAC) - 1)] >> fter_min(y >> LOGIT_FRAC, 16);
}

void fter_softmax_init(void) {
  for (int32_t w = 0; w < (1 << LOGIT_FRAC); ++w) {
    int32_t r = EXP2_COEFS[0];
    for (int32_t c = 1; c < 4; ++c) r = fter_rshift_round(r * w, LOGIT_FRAC) + EXP2_COEFS[c];
    exp2_frac[w] = (uint16_t)r;
  }
  exp2_ready = 1;
#ifdef FTER_LX7_ROWS
  fter_exp_lut_fill(exp_lut);
#endif
}

void fter_exp_lut_fill(uint16_t *lut) {
  if (!exp2_ready) fter_softmax_init();
  for (int32_t d = 0; d < FTER_EXP_LUT_SIZE; ++d) lut[d] = (uint16_t)exp_neg(d);
}

#ifdef FTER_LX7_ROWS
/* A softmax row's three passes on the LX7, one zero-overhead loop each with MIN/MAX where GCC
 * (building for the lx106, which has neither) branches; fter_softmax_row_u8's C is their twin. */

/* logits l[j] = dequant(z[j]) with key j's factors km, kf side by side at kmf, kstep bytes
 * from one key to the next; their max.  ms2 = ms * 2^(32 - sbits) (sbits >= 17 keeps it in
 * int32): MULSH of km and ms2 is floor(km * ms / 2^sbits), as for the channels' factors above;
 * the rounding is the channels' too (FTER_DEQUANT_SAR): MULSH by kf = 2^(30 - kmax + ke[j]),
 * then the row's 2^e (%[hf]) added and SAR = e + 1 = es1 - kmax - 1 (softmax_lx7_row: the
 * clamp is the identity). */
#define LOGIT_AT(O)                         \
  "l32i   %[t], %[pk], 0\n"                 \
  "mulsh  %[t], %[t], %[ms]\n"              \
  "l32i   %[x], %[pz], " O "\n"             \
  "mull   %[x], %[x], %[t]\n"               \
  "l32i   %[t], %[pk], 4\n"                 \
  "mulsh  %[x], %[x], %[t]\n"               \
  "add    %[x], %[x], %[hf]\n"              \
  "sra    %[x], %[x]\n"                     \
  "s32i   %[x], %[pl], " O "\n"             \
  "max    %[m], %[m], %[x]\n"               \
  "add    %[pk], %[pk], %[ks]\n"
#define LOGIT_OPERANDS                                                                    \
  : [m] "+r"(lmax), [pz] "+r"(z), [pl] "+r"(l), [pk] "+r"(kmf), [x] "=&r"(x), [t] "=&r"(t) \
  : [ks] "r"(kstep), [ms] "r"(ms2), [hf] "r"(1 << (sh - 1)), [sh] "r"(sh), [p] "r"(n >> 1) \
  : "memory"
FTER_LX7_LOOP_FN int32_t softmax_logits_lx7(int32_t *l, const int32_t *z, const int32_t *kmf,
                                            int32_t n, int32_t kstep, int32_t ms2, int32_t sh) {
  int32_t lmax = -(1 << 30), x, t;
  __asm__ volatile("ssr    %[sh]\n"
                   "loopnez %[p], 1f\n" LOGIT_AT("0") LOGIT_AT("4")
                   "addi   %[pz], %[pz], 8\n"
                   "addi   %[pl], %[pl], 8\n"
                   "1:\n" LOGIT_OPERANDS);
  if (n & 1) __asm__ volatile("ssr    %[sh]\n" LOGIT_AT("0") LOGIT_OPERANDS);
  return lmax;
}

/* Whether a softmax row takes the LX7 loops: the scores' bits leave ms2 in int32, and the
 * row's shifts es1 - ke lie in [2, 29] for every key of the head (kmax its largest exponent,
 * kneg minus its smallest), as lx7_row asks of a projection row. */
static inline int softmax_lx7_row(int32_t sbits, int32_t es1, int32_t kneg, int32_t kmax) {
  const int32_t range[2] = {-kneg, kmax};
  return sbits >= 17 && lx7_row(es1, range);
}

/* l[j] = exp_neg(lmax - l[j]) in place, read from exp_lut at min(D, FTER_EXP_LUT_SIZE - 1)
 * (the last entry is 0, as exp_neg is for every larger D); their sum.  Two values a step, an
 * odd n one more. */
#define EXP_AT(X, O)                        \
  "l32i   %[" X "], %[pl], " O "\n"          \
  "sub    %[" X "], %[lmax], %[" X "]\n"     \
  "min    %[" X "], %[" X "], %[cap]\n"      \
  "addx2  %[" X "], %[" X "], %[tab]\n"      \
  "l16ui  %[" X "], %[" X "], 0\n"           \
  "s32i   %[" X "], %[pl], " O "\n"          \
  "add    %[tot], %[tot], %[" X "]\n"
#define EXP_OPERANDS                                                                  \
  : [tot] "+r"(total), [pl] "+r"(l), [x] "=&r"(x), [y] "=&r"(y)                       \
  : [lmax] "r"(lmax), [cap] "r"(FTER_EXP_LUT_SIZE - 1), [tab] "r"(exp_lut), [p] "r"(n >> 1) \
  : "memory"
FTER_LX7_LOOP_FN int32_t softmax_exp_lx7(int32_t *l, int32_t n, int32_t lmax) {
  int32_t total, x, y;
  __asm__ volatile("movi   %[tot], 0\n" : [tot] "=r"(total)); /* not an input's register */
  __asm__ volatile("loopnez %[p], 1f\n" EXP_AT("x", "0") EXP_AT("y", "4")
                   "addi   %[pl], %[pl], 8\n"
                   "1:\n" EXP_OPERANDS);
  if (n & 1) __asm__ volatile(EXP_AT("x", "0") EXP_OPERANDS);
  return total;
}

/* out[j] = min(round(l[j] * recip / 2^PROB_SHIFT), 255), two values a step.  The min is
 * implied here: every l[j] is a term of the row's sum, and recip = floor(255 2^23 / sum), so
 * l[j] * recip <= 255 2^23 and the rounded value is at most 255 already. */
#define PROB_AT(X, LO, OO)                  \
  "l32i   %[" X "], %[pl], " LO "\n"         \
  "mull   %[" X "], %[" X "], %[rc]\n"       \
  "add    %[" X "], %[" X "], %[half]\n"     \
  "srai   %[" X "], %[" X "], %[sh]\n"       \
  "s8i    %[" X "], %[po], " OO "\n"
#define PROB_OPERANDS                                                                    \
  : [pl] "+r"(l), [po] "+r"(out), [x] "=&r"(x), [y] "=&r"(y)                            \
  : [rc] "r"(recip), [half] "r"(1 << (PROB_SHIFT - 1)), [sh] "i"(PROB_SHIFT),             \
    [p] "r"(n >> 1)                                                                      \
  : "memory"
FTER_LX7_LOOP_FN void softmax_probs_lx7(uint8_t *out, const int32_t *l, int32_t n,
                                        int32_t recip) {
  int32_t x, y;
  __asm__ volatile("loopnez %[p], 1f\n" PROB_AT("x", "0", "0") PROB_AT("y", "4", "1")
                   "addi   %[pl], %[pl], 8\n"
                   "addi   %[po], %[po], 2\n"
                   "1:\n" PROB_OPERANDS);
  if (n & 1) __asm__ volatile(PROB_AT("x", "0", "0") PROB_OPERANDS);
}
#endif

void fter_softmax_row_u8(uint8_t *p, int32_t *work, const int32_t *scores, const int32_t *qm,
                         const int32_t *qe, const int32_t *km, const int32_t *ke,
                         const int32_t *kf, const int32_t *kneg, const int32_t *kmax, int32_t n,
                         int32_t h, int32_t sbits, int32_t p_stride, int32_t work_stride,
                         int32_t scores_stride, int32_t k_stride) {
  (void)kf, (void)kneg, (void)kmax; /* only the LX7 loops read them */
  if (!exp2_ready) fter_softmax_init();
  for (int32_t hh = 0; hh < h; ++hh) {
    const int32_t *z = scores + hh * scores_stride;
    int32_t *l = work + hh * work_stride;
    const int32_t ms = qm[hh], es1 = -qe[hh] - sbits - LOGIT_FRAC - 1;
    uint8_t *out = p + hh * p_stride;
#ifdef FTER_LX7_ROWS
    if (softmax_lx7_row(sbits, es1, kneg[hh], kmax[hh])) {
      const int32_t m = softmax_logits_lx7(l, z, kf + 2 * hh, n, 8 * k_stride,
                                           ms * (1 << (32 - sbits)), es1 - kmax[hh] - 1);
      const int32_t sum = softmax_exp_lx7(l, n, m);
      softmax_probs_lx7(out, l, n, prob_reciprocal(sum));
      continue;
    }
#endif
    /* logits in Q10 and their maximum */
    int32_t lmax = -(1 << 30);
    FTER_UNROLL4
    for (int32_t j = 0; j < n; ++j) {
      const int32_t v =
          fter_dequant(z[j], km[j * k_stride + hh], ke[j * k_stride + hh], 0, ms, es1, sbits);
      l[j] = v;
      lmax = fter_max(v, lmax);
    }
    /* exp(L - max) in Q15 (in place) and their sum */
    int32_t total = 0;
    FTER_UNROLL4
    for (int32_t j = 0; j < n; ++j) {
      const int32_t e = exp_neg(lmax - l[j]);
      l[j] = e;
      total += e;
    }
    /* probabilities round(255 e / sum e) through one reciprocal */
    const int32_t recip = prob_reciprocal(total);
    FTER_UNROLL4
    for (int32_t j = 0; j < n; ++j) {
      const int32_t v = fter_rshift_round(l[j] * recip, PROB_SHIFT);
      out[j] = (uint8_t)fter_min(v, 255);
    }
  }
}
