"""The integer-numerics contract (``numerics="integer"``): every fixed-point op, written once.

Each op below is a function of a *backend* ``B`` and its operands. With :data:`NP` the operands are
NumPy int64 arrays and the op is the reference (it asserts that every intermediate fits int32);
with :data:`TIR` they are TensorIR expressions and the op is what the integer kernels
(``schedules.integer.kernels``) compute -- one source, so the kernels and the reference cannot
drift apart, and the tests compare the compiled kernels against the reference bit for bit.

The rules of the mode:

* **Per element, only int32 arithmetic**: multiply, add, arithmetic shifts (rounding right
  shifts round half up, and ``v + half`` must fit int32), min/max/select. No float, no division, no 64-bit
  product (Debian's lx106 GCC turns those into libgcc calls of 30+ instructions).
* **Per row / per channel / per call**, the kernels may also use float32 ``+ - * /`` and
  ``sqrt`` (IEEE correctly rounded, so every platform gets the same bits), and read a float's
  bits (:func:`split_f32`): per-token scales stay float32 between kernels, exactly as in the
  float mode, so the graph and the kernels' signatures do not change with the mode.
* Fixed-point formats: projections dequantize their int32 accumulators to ``V = round(v * 2^G)``
  (``G = VALUE_FRAC``); LayerNorm reads its float row relative to the row's largest exponent
  (:func:`fixed_from_f32`, ``LN_BITS``); attention logits are ``L = round(z * 2^LOGIT_FRAC)``.
* int8 codes come from an integer absmax ``A`` of the row: ``q = clamp(round(X * 127 / A))``
  through one integer reciprocal per row (:func:`quant_multiplier`, :func:`quant8`);
  the float scale handed on is ``A * unit / 127``.
* GELU is ``x * Phi(x)`` with ``Phi`` interpolated in a 1,025-entry Q15 table that each kernel
  fills once per call from a 4-piece cubic (|Phi error| < 3e-4); the MLP's hidden absmax is
  bounded from the row's largest GELU input (:func:`gelu_row_bound`). Softmax uses
  ``exp(-d) = 2^(-d log2 e)``: an integer shift and a cubic for the fraction (|error| < 5e-4),
  probabilities ``round(255 * e / sum e)`` through one reciprocal per row.

Values used several times are not bound with a TIR ``Let`` (it would shorten the C 20x, but TVM
0.27's CompactBufferAllocation then takes minutes per kernel): the C compiler merges repeated
subexpressions, and a kernel stores a value that feeds a long expression in its own block.

The NumPy reference kernels composed from these ops are in ``schedules.integer.intmath_ref``.
"""

from __future__ import annotations

import math

import numpy as np

VALUE_FRAC = 12        # G: fractional bits of dequantized projection outputs
LN_BITS = 14           # LayerNorm input: |X| <= 2^LN_BITS relative to the row's largest exponent
LN_NORM_FRAC = 10      # normalized LayerNorm values (x - mean) / std in units 2^-10
LOGIT_FRAC = 10        # attention logits in units 2^-10
SCALE_BITS = 15        # mantissas of per-row / per-channel scales
QUANT_SHIFT = 16       # q = ((X >> r) * M + 2^15) >> 16 with M = round(127 * 2^16 / (A >> r))
PROB_SHIFT = 23        # p = (e * R + 2^22) >> 23 with R = floor(255 * 2^23 / sum e)
EXP_ONE = 1 << 15      # exp(0) in the softmax's Q15
LOG2E_Q14 = round(math.log2(math.e) * (1 << 14))
INT32_MAX = (1 << 31) - 1


# ---- the two backends -----------------------------------------------------------------------------
class _Numpy:
    """Reference backend: int64 arrays, every result checked to fit int32."""

    name = "numpy"

    @staticmethod
    def chk(x):
        x = np.asarray(x, dtype=np.int64)
        if x.size and (x.max() > INT32_MAX or x.min() < -INT32_MAX - 1):
            raise OverflowError(f"integer-mode intermediate leaves int32: [{x.min()}, {x.max()}]")
        return x

    where = staticmethod(np.where)
    min = staticmethod(np.minimum)
    max = staticmethod(np.maximum)

    @staticmethod
    def div(a, b):          # both non-negative where used
        return np.asarray(a, np.int64) // np.asarray(b, np.int64)

    @staticmethod
    def bits(f):            # float32 value(s) -> their IEEE bits as int64
        return np.asarray(f, dtype=np.float32).view(np.int32).astype(np.int64)

    @staticmethod
    def from_bits(i):
        return np.asarray(i, dtype=np.int64).astype(np.int32).view(np.float32)

    @staticmethod
    def to_f32(i):
        return np.asarray(i, dtype=np.int64).astype(np.float32)

    @staticmethod
    def f32(v):
        return np.float32(v)

    @staticmethod
    def sqrt(f):
        return np.sqrt(np.float32(f)).astype(np.float32)

    @staticmethod
    def to_i32(f):          # truncation toward zero, as a C cast
        return np.asarray(f, dtype=np.float32).astype(np.int64)


class _Tir:
    """Kernel backend: TensorIR int32/float32 expressions (imported lazily: no TVM for NumPy)."""

    name = "tir"

    @staticmethod
    def chk(x):
        return x

    @staticmethod
    def where(c, a, b):
        from tvm.script import tirx as T
        return T.Select(c, a, b)

    @staticmethod
    def min(a, b):
        from tvm.script import tirx as T
        return T.min(a, b)

    @staticmethod
    def max(a, b):
        from tvm.script import tirx as T
        return T.max(a, b)

    @staticmethod
    def div(a, b):
        from tvm.script import tirx as T
        return T.truncdiv(a, b)

    @staticmethod
    def bits(f):
        from tvm.script import tirx as T
        return T.reinterpret("int32", f)

    @staticmethod
    def from_bits(i):
        from tvm.script import tirx as T
        return T.reinterpret("float32", i)

    @staticmethod
    def to_f32(i):
        from tvm.script import tirx as T
        return T.Cast("float32", i)

    @staticmethod
    def f32(v):
        from tvm.script import tirx as T
        return T.float32(v)

    @staticmethod
    def sqrt(f):
        from tvm.script import tirx as T
        return T.sqrt(f)

    @staticmethod
    def to_i32(f):
        from tvm.script import tirx as T
        return T.Cast("int32", f)


NP = _Numpy()
TIR = _Tir()


# ---- shifts and float bits ------------------------------------------------------------------------
def pow2(B, k):
    """``2^k`` as an int for ``0 <= k <= 30`` (a variable shift of a positive constant)."""
    return 1 << k


def rshift_round(B, v, s):
    """``round(v / 2^s)`` (half up) for ``1 <= s <= 30``: ``(v + 2^(s-1)) >> s``, which must fit
    int32. For a shift known only at run time the kernels compute the same value as
    ``((v >> (s-1)) + 1) >> 1`` (floor((v + 2^(s-1)) / 2^s) = floor((floor(v / 2^(s-1)) + 1) / 2)):
    one variable shift instead of two, as the C epilogues do (``fter_rshift1_round``)."""
    half_added = B.chk(v + pow2(B, s - 1))
    if isinstance(s, int):
        return half_added >> s
    return ((v >> (s - 1)) + 1) >> 1


def shift_round(B, v, s):
    """``round(v * 2^-s)`` for any ``s`` in [-30, 30]: a rounding right shift when ``s > 0``, else
    an exact multiply by ``2^-s`` (no left shift of a negative value: that is undefined in C)."""
    right = rshift_round(B, v, B.max(s, 1))
    left = B.chk(v * pow2(B, B.max(-s, 0)))
    return B.where(s > 0, right, left)


def split_f32(B, f, mb: int = SCALE_BITS):
    """A float32 as ``(M, e)`` with ``f ~= M * 2^e``: ``|M|`` its mantissa rounded to ``mb`` bits
    (``2^(mb-1) <= |M| <= 2^mb``), the sign of ``f``; ``M = 0`` for zero and subnormals. Exact
    integer ops on the float's bits."""
    b = B.bits(f)
    field = (b >> 23) & 255
    m24 = (b & 0x7FFFFF) | 0x800000
    m = B.where(field == 0, 0, m24 if mb == 24 else rshift_round(B, m24, 24 - mb))
    return B.where(b < 0, -m, m), field - 127 - (mb - 1)


def f32_pow2(B, k: int):
    """``2.0^k`` as a float32 constant."""
    return B.f32(2.0 ** k)


def pow2_bits(B, k):
    """The float32 bits of ``2^k`` for ``-126 <= k <= 127`` (a kernel stores them in a buffer and
    reads them back as float: TVM's C reinterprets only lvalues). The mask also keeps TVM's
    simplifier from distributing the multiply into a clamp of ``k`` beyond int32."""
    return ((k + 127) & 255) * (1 << 23)


def fixed_from_f32(B, f, field_ref, xb: int = LN_BITS):
    """``round(f * 2^(126 + xb - field_ref))``: a float read as an integer relative to the row's
    largest exponent field ``field_ref`` (``|f| <= 2^(field_ref-126)`` gives ``|X| <= 2^xb``).
    Integer ops on the bits; zero and subnormals read as 0."""
    return fixed_from_bits(B, B.bits(f), field_ref, xb)


def fixed_from_bits(B, b, field_ref, xb: int = LN_BITS):
    """:func:`fixed_from_f32` of the float whose bits are ``b``."""
    field = (b >> 23) & 255
    m24 = (b & 0x7FFFFF) | 0x800000
    sh = B.max(B.min(24 - xb + (field_ref - field), 30), 1)   # clamped: defined out of contract
    mag = B.where(field == 0, 0, rshift_round(B, m24, sh))
    return B.where(b < 0, -mag, mag)


def abs_bits(B, f):
    """The bits of ``|f|``: for non-negative floats the integer order is the float order, so the
    row's absmax is an integer max."""
    return B.bits(f) & 0x7FFFFFFF


# ---- quantization to int8 -------------------------------------------------------------------------
def quant_multiplier(B, a):
    """The row's int8 quantizer for absmax ``A >= 1`` (one division per row), packed in one int32:
    ``r`` (bits 24..27) so that ``A >> r < 2^16``, and ``M = round(127 * 2^16 / (A >> r))``
    (bits 0..23). :func:`quant8` applies it."""
    a = B.max(a, 1)
    r = 0
    for bit in range(16, 31):     # r = max(0, bit_length(A) - 16): compares, once per row
        r = r + B.where(a >= (1 << bit), 1, 0)
    ar = B.max(a >> r, 1)
    return B.div((127 << QUANT_SHIFT) + (ar >> 1), ar) + r * (1 << 24)


def quant8(B, x, packed):
    """int8 code ``clamp(round((X >> r) * M / 2^16), -127, 127)`` of ``|X| <= A`` with the row's
    :func:`quant_multiplier` (``(X >> r) * M <= 127 * 2^16``)."""
    q = rshift_round(B, B.chk((x >> (packed >> 24)) * (packed & 0xFFFFFF)), QUANT_SHIFT)
    return B.max(B.min(q, 127), -127)


def row_scale(B, a, unit_exp):
    """The float32 scale of int8 codes made from absmax ``A`` in units ``2^unit_exp``:
    ``max(A, 1) * 2^unit_exp / 127``."""
    return B.to_f32(B.max(a, 1)) * f32_pow2(B, unit_exp) / B.f32(127.0)


# ---- LayerNorm (per-row float scalars) -----------------------------------------------------------
def ln_eps_bits(B, top):
    """Float32 bits of ``u^-2``, ``u`` the unit of the row's integers (``fixed_from_f32``):
    ``eps`` in those units is ``eps * u^-2`` (clamped to ``2^+-120``)."""
    k = B.max(B.min(126 + LN_BITS - B.max(top >> 23, 1), 60), -60)
    return pow2_bits(B, 2 * k)


def ln_inv_std(B, sq, eps_scale, d: int, sq_shift: int, eps: float):
    """``2^LN_NORM_FRAC / sqrt(var + eps)`` (float32, per row) in the row's integer units, from
    the sum of squares ``sq`` (each term shifted right by ``sq_shift``) and ``u^-2`` as a float
    (:func:`ln_eps_bits`)."""
    var = B.to_f32(sq) * f32_pow2(B, sq_shift) / B.f32(float(d))
    return B.f32(float(1 << LN_NORM_FRAC)) / B.max(B.sqrt(var + B.f32(eps) * eps_scale),
                                                   B.f32(1e-30))


def ln_inv_split(B, inv):
    """``(M, e)`` of the row's ``ln_inv_std``, ``e`` clamped to [-30, 30] (a zero-variance row
    multiplies zeros)."""
    m, e = split_f32(B, inv)
    return m, B.max(B.min(e, 30), -30)


def _ln_unit(B, ab0, ab1):
    return B.max(B.max(ab0, ab1), B.f32(1e-30))


def ln_affine(B, ab0, ab1, which: int):
    """Q15 weights of the ternary gamma (``which=0``) and beta (1) relative to ``max(ab0, ab1)``."""
    return B.to_i32((ab0 if which == 0 else ab1) / _ln_unit(B, ab0, ab1) * B.f32(32768.0)
                    + B.f32(0.5))


def ln_out_scale(B, a, ab0, ab1):
    """Float32 scale of the LayerNorm's int8 codes: values are in units ``max(ab0, ab1) * 2^-10``."""
    return B.to_f32(B.max(a, 1)) * _ln_unit(B, ab0, ab1) * f32_pow2(B, -LN_NORM_FRAC) \
        / B.f32(127.0)


def patch_scale(B, top):
    """Float32 scale of a patch's codes from its absmax bits: ``max(amax, 1e-5) / 127``."""
    return B.max(B.from_bits(top), B.f32(1e-5)) / B.f32(127.0)


def patch_multiplier(B, top):
    """Quantizer multiplier of a patch: its absmax read relative to itself (``2^13..2^14``)."""
    return quant_multiplier(B, fixed_from_bits(B, top, B.max(top >> 23, 1)))


# ---- attention scalars ----------------------------------------------------------------------------
V_WEIGHT_BITS = 14   # P.V outputs weighted per channel by round(2^14 * vamax[c] / max vamax)


def code_scale(B, amax):
    """The float32 scale of int8 codes with absmax ``amax`` (float mode's ``_scale``)."""
    return B.max(amax, B.f32(1e-5)) / B.f32(127.0)


def v_weight(B, vamax, vtop):
    """Per value channel: ``round(2^14 * vamax / vtop)`` (float, once per call)."""
    return B.to_i32(vamax / B.max(vtop, B.f32(1e-30)) * B.f32(float(1 << V_WEIGHT_BITS))
                    + B.f32(0.5))


def attn_out_scale(B, a, vtop):
    """Float32 scale of the attention output's int8 codes: values are in units
    ``vtop / (127 * 255)`` (``code_scale(vtop) / 255``)."""
    return B.to_f32(B.max(a, 1)) * (code_scale(B, vtop) / B.f32(255.0)) / B.f32(127.0)


# ---- dequantizing an accumulator --------------------------------------------------------------------
def acc_bits(k: int) -> int:
    """Bits of ``|acc| <= 128 k`` (the int32 sum of k ternary x int8 products)."""
    return (128 * k).bit_length()


def score_bits(hd: int) -> int:
    """Bits of ``|score| <= 127^2 hd`` (the int32 QK^T of int8 codes over a head of ``hd``)."""
    return (127 * 127 * hd).bit_length()


def ln_sq_shift(d: int) -> int:
    """Right shift of each squared deviation in LayerNorm's sum of squares over ``d`` values:
    ``ceil(log2 d)``, at least 1 (the sum then fits int32 for deviations below 2^15)."""
    return max(1, math.ceil(math.log2(d)))


def dequant(B, acc, abits: int, ma, ea, ms, es, bias_fixed, frac: int = VALUE_FRAC):
    """``V = round((acc * alpha * s + bias) * 2^frac)`` for an accumulator ``|acc| < 2^abits``
    (:func:`acc_bits`), with ``alpha ~ ma * 2^ea`` and ``s ~ ms * 2^es`` (:func:`split_f32`).

    The product of the two 15-bit mantissas is cut (floored) to ``|C| <= 2^(30 - abits)`` so
    that ``acc * C`` fits int32: a floor, not a rounding, as its error (below 2^-14 relative)
    is far inside the scales' own, and a kernel gets it from one MULSH of prescaled factors;
    ``bias_fixed = round(bias * 2^frac)`` (:func:`fixed_frac`)."""
    cb = 30 - abits
    c = B.chk(ma * ms) >> (2 * SCALE_BITS - cb)
    # a right shift in [1, 30]: outside it a scale is absurd (an accumulator step worth more
    # than 2^(2 - G + abits)) or the row is all zero (s = 1e-5 / 127); both saturate the shift
    sh = B.max(B.min(-(2 * SCALE_BITS - cb + ea + es + frac), 30), 1)
    return B.chk(rshift_round(B, B.chk(acc * c), sh) + bias_fixed)


def fixed_frac(B, f, frac: int = VALUE_FRAC, limit_bits: int = 29):
    """``round(f * 2^frac)`` of a float32, saturated to ``|.| < 2^limit_bits`` (biases)."""
    m, e = split_f32(B, f, 24)
    sh = B.max(B.min(-(e + frac), 30), -(limit_bits - 24))
    lim = (1 << limit_bits) - 1
    return B.max(B.min(shift_round(B, m, sh), lim), -lim)


# ---- GELU ----------------------------------------------------------------------------------------
def _phi_pieces() -> tuple[tuple[int, ...], ...]:
    """Q15 cubic coefficients (highest first) of Phi(u) on [s, s+1), s = 0..3, in w = u - s."""
    pieces = []
    w = np.linspace(0.0, 1.0, 4001)
    for s in range(4):
        y = np.array([0.5 + 0.5 * math.erf((s + t) / math.sqrt(2.0)) for t in w])
        pieces.append(tuple(int(round(c * (1 << 15))) for c in np.polyfit(w, y, 3)))
    return tuple(pieces)


PHI_PIECES = _phi_pieces()


def _piece_coef(B, seg, i):
    c = [p[i] for p in PHI_PIECES]
    return B.where(seg == 0, c[0], B.where(seg == 1, c[1], B.where(seg == 2, c[2], c[3])))


GELU_TABLE_BITS = 8        # the Phi table's step in |x|: 2^-8, over [0, 4]
GELU_TABLE_SIZE = (4 << GELU_TABLE_BITS) + 1


def phi_poly(B, u, frac: int = VALUE_FRAC):
    """``Phi(x)`` in Q15 for ``0 <= u = |x| * 2^frac < 4 * 2^frac``: the 4-piece cubic."""
    one = 1 << frac
    seg = u >> frac
    w = u & (one - 1)
    r = _piece_coef(B, seg, 0)
    for i in (1, 2, 3):
        r = B.chk(rshift_round(B, B.chk(r * w), frac) + _piece_coef(B, seg, i))
    return r


def gelu_table_entry(B, k, frac: int = VALUE_FRAC):
    """Entry ``k`` of the per-call Phi table: ``phi_poly`` at ``|x| = k * 2^-8`` (the last entry
    at the largest value below 4)."""
    return phi_poly(B, B.min(k * (1 << (frac - GELU_TABLE_BITS)), (4 << frac) - 1), frac)


def gelu_table() -> np.ndarray:
    """The Phi table as the kernels fill it once per call."""
    return gelu_table_entry(NP, np.arange(GELU_TABLE_SIZE, dtype=np.int64))


def gelu(B, v, table, frac: int = VALUE_FRAC):
    """GELU of ``V = round(x * 2^frac)`` in the same units: ``x * Phi(x)`` with ``Phi(|x|)``
    interpolated linearly in the table (``table(k)`` reads entry ``k``), ``Phi(-x) = 1 - Phi(x)``;
    ``x`` for ``x >= 4`` and 0 for ``x <= -4``."""
    one = 1 << frac
    step = frac - GELU_TABLE_BITS
    u = B.min(B.where(v < 0, -v, v), 4 * one - 1)
    k = u >> step
    lo = table(k)
    phi_abs = lo + rshift_round(B, B.chk((table(k + 1) - lo) * (u & ((1 << step) - 1))), step)
    phi = B.where(v < 0, (1 << 15) - phi_abs, phi_abs)
    inner = rshift_round(B, B.chk(B.max(B.min(v, 4 * one), -4 * one) * phi), 15)
    return B.where(v >= 4 * one, v, B.where(v <= -4 * one, 0, inner))


def _gelu_neg_bound() -> int:
    """The largest ``|gelu(V)|`` over negative ``V`` (about 0.17 * 2^G): with it, the absmax of
    a row's GELU outputs is bounded from the row's largest input alone (:func:`gelu_row_bound`)."""
    tab = gelu_table()
    v = np.arange(-(4 << VALUE_FRAC), 1, dtype=np.int64)
    return int(np.abs(gelu(NP, v, lambda k: tab[k])).max())


GELU_NEG_BOUND = _gelu_neg_bound()


def gelu_row_bound(B, vmax, table):
    """The absmax the MLP quantizes its GELU row with: ``max(gelu(max V), GELU_NEG_BOUND)``. It
    is one GELU per row instead of one per element in the absmax pass (GELU rises for V >= 0 and
    its negative lobe is bounded); codes that would exceed it clamp to +-127 (only where the
    table's GELU dips, by at most its interpolation error)."""
    return B.max(gelu(B, vmax, table), GELU_NEG_BOUND)


# ---- softmax -------------------------------------------------------------------------------------
def _exp2_coefs() -> tuple[int, ...]:
    w = np.linspace(0.0, 1.0, 4001)
    c = np.polyfit(w, 2.0 ** (-w), 3)
    q = [int(round(x * (1 << 15))) for x in c]
    q[-1] = EXP_ONE   # exp(0) is exactly one: the row maximum's weight is 2^15
    return tuple(q)


EXP2_COEFS = _exp2_coefs()


def exp_neg(B, d, frac: int = LOGIT_FRAC):
    """``round(2^15 * exp(-D / 2^frac))`` for ``D >= 0`` (``D`` saturates at 2^16: e^-64 is 0)."""
    y = rshift_round(B, B.chk(B.min(d, (1 << 16) - 1) * LOG2E_Q14), 14)
    w = y & ((1 << frac) - 1)
    r = EXP2_COEFS[0]
    for c in EXP2_COEFS[1:]:
        r = B.chk(rshift_round(B, B.chk(r * w), frac) + c)
    return r >> B.min(y >> frac, 16)


def prob_reciprocal(B, total):
    """``R = floor(255 * 2^23 / sum e)`` (sum >= 2^15: the row maximum contributes exactly 2^15)."""
    return B.div(255 << PROB_SHIFT, B.max(total, 1))


def prob8(B, e, r):
    """uint8 probability ``min(round(e * R / 2^23), 255)``."""
    return B.min(rshift_round(B, B.chk(e * r), PROB_SHIFT), 255)
