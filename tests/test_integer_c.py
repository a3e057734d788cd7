"""The C kernels of the integer numerics mode (runtime/kernels/layernorm_int.c, epilogue_int.c)
against the contract's NumPy reference (schedules/integer/intmath.py, intmath_ref.py), bit for
bit, on the host and on the lx106 -- and what they cost there; and the esp32s3 schedules that
call them."""

from __future__ import annotations

import struct

import numpy as np
import pytest

from runtime.cbuild import RUNTIME_DIR
from runtime.host_sim import build_host, run_host
from runtime.xtensa_sim import build_xtensa, run_xtensa
from schedules.integer import intmath as im
from schedules.integer import intmath_ref as ref

from test_kernels_c import require

TEST_PROGRAM = RUNTIME_DIR / "kernels" / "test_integer_kernels.c"
EPS = 1e-6


def _rows(rng, d: int) -> np.ndarray:
    """Rows a residual stream can hold, and the edges: zero variance, all zero, subnormals,
    one outlier, signs mixed across 40 binary orders of magnitude, exact ties of the fixed-point
    reading (max 1.0: units of 2^-13, values k + 1/2 of them, both signs)."""
    ties = (np.arange(d) + 0.5) / 8192 * np.where(np.arange(d) % 3 == 1, -1, 1)
    ties[0] = 1.0
    rows = [
        ties,
        rng.standard_normal(d) * rng.uniform(0.01, 30),
        np.full(d, 0.75),
        np.zeros(d),
        np.where(rng.random(d) < 0.5, 1e-40, -3e-39),
        np.r_[rng.standard_normal(d - 1) * 1e-3, 5e3][:d],
        rng.standard_normal(d) * 2.0 ** rng.integers(-20, 20, d),
        rng.standard_normal(d) * 1e-30,
        rng.standard_normal(d) * 1e6,
    ]
    return np.stack(rows).astype(np.float32)


def ln_cases(rng):
    """LayerNorm cases of test_integer_kernels.c (op 0): widths from 1 to DeiT-S's hidden."""
    blob, expected = [], []
    for d, ab in [(1, (0.8, 0.3)), (3, (0.2, 0.9)), (16, (1.0, 1.0)), (17, (0.5, 0.0)),
                  (192, (0.8, 0.3)), (384, (0.01, 0.02)), (768, (3.0, 0.5)), (100, (0.0, 0.0))]:
        x = _rows(rng, d)
        g, b = (rng.integers(-1, 2, d).astype(np.int8) for _ in range(2))
        ab = np.asarray(ab, np.float32)
        sq_shift = im.ln_sq_shift(d)
        blob += [struct.pack("<4i", 0, d, sq_shift, len(x)), np.float32(EPS).tobytes(),
                 ab.tobytes(), g.tobytes(), b.tobytes(), x.tobytes()]
        q, s = ref.layernorm_quant(x, g, b, ab, EPS)
        expected.append((f"layernorm d={d}", [q, s]))
    return blob, expected


def _tile(rng, t, nb, stride, k, deit=False):
    """A projection tile's operands at edge values: scales over 2^-30..2^5 so that the rounding
    shift clamps at both ends, a zero scale, extreme accumulators; -> (header and operand bytes,
    the contract's values V[t, nb], the accumulators [t, stride]).  ``deit``: instead scales and
    accumulators as a ternary ViT's fc1 has them (no shift clamps; values within a few units,
    some past GELU's saturation); ``deit="large"``: the same with values up to ~100, so that the
    GELU codes' quantizer shifts (r > 0)."""
    abits = im.acc_bits(k)
    lim = 128 * k
    if deit:   # its own generator: the same tile whatever the cases before it drew
        rng = np.random.default_rng((t, nb, stride, k))
        acc = np.clip(rng.normal(0, 40 * k ** 0.5, (t, stride)), -lim, lim).astype(np.int32)
        low, high = (0, 2) if deit == "large" else (-6, -4)
        alpha = (2.0 ** rng.uniform(low, high, nb)).astype(np.float32)
        scale = (2.0 ** rng.uniform(-8, -6, t)).astype(np.float32)
    else:
        acc = rng.integers(-lim, lim + 1, (t, stride)).astype(np.int32)
        acc[0, :] = lim
        alpha = (2.0 ** rng.uniform(-30, 5, nb)).astype(np.float32)
        alpha[0] = 0.0
        scale = (2.0 ** rng.uniform(-20, 0, t)).astype(np.float32)
    bias = (rng.standard_normal(nb) * 4).astype(np.float32)
    cm, ce = (np.asarray(a, np.int32) for a in im.split_f32(im.NP, alpha))
    rm, re = (np.asarray(a, np.int32) for a in im.split_f32(im.NP, scale))
    cb = np.asarray(im.fixed_frac(im.NP, bias), np.int32)
    wide = lambda a: np.asarray(a, np.int64)   # noqa: E731
    v = im.dequant(im.NP, wide(acc[:, :nb]), abits, wide(cm)[None, :], wide(ce)[None, :],
                   wide(rm)[:, None], wide(re)[:, None], wide(cb)[None, :])
    blob = [struct.pack("<4i", t, nb, stride, abits), acc.tobytes(), cm.tobytes(), ce.tobytes(),
            cb.tobytes(), rm.tobytes(), re.tobytes()]
    return blob, v, acc


def _tag(deit) -> str:
    """A tile case's name suffix for _tile's ``deit``."""
    return {False: "", True: " deit", "large": " deit large"}[deit]


TILES = [(1, 1, 1, 16), (3, 16, 48, 192), (17, 16, 16, 768), (197, 16, 64, 192), (5, 7, 9, 33)]
DEIT_TILE = (197, 32, 32, 192)   # with DeiT-like scales (_tile's deit): no shift clamps
# ... and every tiling with such scales: DeiT's, odd channel counts (the LX7 loops' tails), long
# rows whose accumulators need 18 and 19 bits (the LX7 loops' MULSH factors split their shift
# differently from 19 bits on), and rows of several channel chunks (TILE_CHANNELS, 128) with a
# partial last one
DEIT_TILES = [(*DEIT_TILE, True), (3, 7, 9, 33, True), (2, 33, 40, 64, True),
              (4, 16, 16, 1536, True), (5, 9, 16, 3072, True), (6, 17, 17, 192, "large"),
              (3, 300, 304, 192, True)]


def value_max_cases(rng):
    """Value tiles (op 1) of the MLP's fc1: the values in place of the accumulators (the columns
    past nb untouched) and each row's largest value, signed (rows of only negative values
    among them: the scales' extremes)."""
    blob, expected = [], []
    for t, nb, stride, k, deit in [*((*tile, False) for tile in TILES), *DEIT_TILES]:
        tile, v, acc = _tile(rng, t, nb, stride, k, deit)
        after = acc.copy()
        after[:, :nb] = v
        blob += [struct.pack("<i", 1), *tile]
        expected.append((f"value max t={t} nb={nb} k={k}{_tag(deit)}",
                         [v.max(1).astype(np.int32), after]))
    return blob, expected


def tile_cases(rng):
    """GELU-codes tiles (op 2) of the MLP's fc1 values (k = 192, 768), values past GELU's +-4
    saturation among them; each row's multiplier from its GELU bound, as the MLP makes it."""
    blob, expected = [], []
    tab = im.gelu_table()
    for t, nb, stride, k, deit in [*((*tile, False) for tile in TILES), *DEIT_TILES]:
        _, v, _ = _tile(rng, t, nb, stride, k, deit)
        vals = np.zeros((t, stride), np.int32)
        vals[:, :nb] = v
        vals[:, nb:] = rng.integers(-(1 << 20), 1 << 20, (t, stride - nb))
        h = im.gelu(im.NP, v, lambda i: tab[i])
        bound = im.gelu_row_bound(im.NP, v.max(1), lambda i: tab[i])
        mult = np.asarray(im.quant_multiplier(im.NP, bound), np.int32)
        q = im.quant8(im.NP, h, np.asarray(mult, np.int64)[:, None]).astype(np.int8)
        blob += [struct.pack("<i", 2), struct.pack("<3i", t, nb, stride), vals.tobytes(),
                 tab.astype(np.int32).tobytes(), mult.tobytes()]
        expected.append((f"gelu codes t={t} nb={nb} k={k}{_tag(deit)}", [q]))
    return blob, expected


def codes_cases(rng):
    """Projection tiles quantized per channel (op 4, the V projection) and per token (op 5, a
    head of K; op 7, a head of the attention block's Q, absmax instead of scales): codes,
    scales, and the values left in place of the accumulators (the columns past nb
    untouched)."""
    blob, expected = [], []
    kinds = {4: (0, "channel codes"), 5: (1, "row codes"), 7: (1, "row absmax codes")}
    for op, (axis, kind) in kinds.items():
        for t, nb, stride, k, deit in [*((*tile, False) for tile in TILES),
                                       (197, 64, 80, 192, False), (4, 40, 40, 64, False),
                                       *DEIT_TILES]:
            tile, v, acc = _tile(rng, t, nb, stride, k, deit)
            top = np.abs(v).max(axis)
            mult = np.asarray(im.quant_multiplier(im.NP, top), np.int64)
            q = im.quant8(im.NP, v, mult[None, :] if axis == 0 else mult[:, None])
            after = acc.copy()
            after[:, :nb] = v
            scale = top.astype(np.float32) * np.float32(2.0 ** -im.VALUE_FRAC)
            blob += [struct.pack("<i", op), *tile]
            expected.append((f"{kind} t={t} nb={nb} k={k}{_tag(deit)}",
                             [q.astype(np.int8), top.astype(np.int32) if op == 7 else scale,
                              after]))
    return blob, expected


def residual_cases(rng):
    """Float residual tiles (op 6): (float)acc * (alpha * s) + bias + res rounded step by step,
    as NumPy's float32 operations do; accumulators to +-2^24 and beyond (the conversion rounds),
    subnormal and huge scales, cancellation against the residual."""
    blob, expected = [], []
    f32 = np.float32
    for t, nb, stride in [(1, 1, 1), (197, 16, 24), (5, 7, 7), (3, 64, 64)]:
        acc = rng.integers(-(1 << 26), 1 << 26, (t, stride)).astype(np.int32)
        alpha = (rng.standard_normal(nb) * 2.0 ** rng.integers(-60, 20, nb)).astype(f32)
        alpha[0] = f32(1e-38)
        scale = (2.0 ** rng.uniform(-30, 0, t)).astype(f32)
        bias = rng.standard_normal(nb).astype(f32)
        res = (rng.standard_normal((t, stride)) * 100).astype(f32)
        res[:, 0] = -(acc[:, 0].astype(f32) * (alpha[0] * scale)) - bias[0]   # cancels
        want = res.copy()
        want[:, :nb] = acc[:, :nb].astype(f32) * (alpha[None, :] * scale[:, None]) + bias + res[:, :nb]
        blob += [struct.pack("<4i", 6, t, nb, stride), acc.tobytes(), alpha.tobytes(),
                 scale.tobytes(), bias.tobytes(), res.tobytes()]
        expected.append((f"residual t={t} nb={nb}", [want]))
    return blob, expected


def attn_out_cases(rng):
    """Attention output rows (op 8): P.V sums up to 255 * 127 * n weighted per value channel by
    up to 2^14, absmax, int8 codes; a zero row and one with a single nonzero output among them."""
    blob, expected = [], []
    for n, h, hd in [(80, 3, 64), (3, 2, 16), (1, 1, 8), (4, 4, 12)]:   # 80 rows fill the program's buffers
        d = h * hd
        lim = 255 * 127 * min(n, 4)
        pacc = rng.integers(-lim, lim + 1, (n, d)).astype(np.int32)
        pacc[0] = 0
        if n > 1:
            pacc[1] = 0
            pacc[1, d // 2] = -lim
        vm = rng.integers(0, (1 << im.V_WEIGHT_BITS) + 1, d).astype(np.int32)
        vm[0] = 1 << im.V_WEIGHT_BITS
        ov = im.rshift_round(im.NP, pacc.astype(np.int64) * vm, im.V_WEIGHT_BITS)
        top = np.abs(ov).max(1)
        mult = np.asarray(im.quant_multiplier(im.NP, top), np.int64)
        q = im.quant8(im.NP, ov, mult[:, None]).astype(np.int8)
        blob += [struct.pack("<4i", 8, n, h, hd), pacc.tobytes(), vm.tobytes()]
        rows = [a for i in range(n) for a in (q[i], top[i:i + 1].astype(np.int32),
                                              ov[i].astype(np.int32))]
        expected.append((f"attention output n={n} h={h} hd={hd}", rows))
    return blob, expected


def softmax_cases(rng):
    """Softmax rows (op 3): DeiT-Tiny's (197 keys, 3 heads of 64), a short row, one key; scores
    over the whole int32 product range, query and key scales from 2^-20 to 2^2 (rounding shifts
    clamped at both ends), all-equal rows, rows whose exponentials underflow to zero; and a
    DeiT-like row, query and key scales within 2^-9..2^-6, whose every head takes the LX7 loop
    (its shifts need no clamp), with one head whose keys' exponents span the most that loop
    takes (27)."""
    blob, expected = [], []
    for n, h, hd, deit in [(197, 3, 64, False), (5, 2, 16, False), (1, 1, 8, False),
                           (50, 4, 32, False), (197, 3, 64, True)]:
        sbits = im.score_bits(hd)
        lim = 127 * 127 * hd
        scores = rng.integers(-lim, lim + 1, (h, n)).astype(np.int32)
        scores[0, :] = 1234                                  # all equal
        if n > 1:
            scores[-1, 0] = lim                               # one key dominates
        span = (-9, -6) if deit else (-20, 2)
        qs = (2.0 ** rng.uniform(*span, h)).astype(np.float32)
        ks = (2.0 ** rng.uniform(*span, (n, h))).astype(np.float32)
        if deit:   # head 1: es1 - ke from 2 to 29 (qs 2^-1: qe = -15, es1 = -16 at sbits 20)
            qs[1] = np.float32(2.0 ** -1)
            ks[:, 1] = np.float32(2.0 ** -17)
            ks[0, 1], ks[1, 1] = np.float32(2.0 ** -4), np.float32(2.0 ** -31)
        qm, qe = (np.asarray(a, np.int32) for a in im.split_f32(im.NP, qs))
        km, ke = (np.asarray(a, np.int32) for a in im.split_f32(im.NP, ks))
        wide = lambda a: np.asarray(a, np.int64)   # noqa: E731
        logit = im.dequant(im.NP, wide(scores), sbits, wide(qm)[:, None], wide(qe)[:, None],
                           wide(km).T, wide(ke).T, 0, im.LOGIT_FRAC)
        e = im.exp_neg(im.NP, logit.max(1, keepdims=True) - logit)
        p = im.prob8(im.NP, e, im.prob_reciprocal(im.NP, e.sum(1, keepdims=True)))
        blob += [struct.pack("<4i", 3, n, h, sbits), scores.tobytes(), qm.tobytes(), qe.tobytes(),
                 km.tobytes(), ke.tobytes()]
        expected.append((f"softmax n={n} h={h}{_tag(deit)}", [np.asarray(p, np.uint8)]))
    return blob, expected


def patch_cases(rng):
    """Patch quantizer (op 9): DeiT's 16 x 16 patches of 3 channels and small grids; patches of
    normal pixels, all zero, subnormal, one outlier, magnitudes over 40 binary orders, exact ties
    of the fixed-point reading."""
    blob, expected = [], []
    for c, gh, gw, p in [(3, 2, 3, 16), (1, 1, 1, 1), (3, 3, 5, 4), (2, 2, 2, 3)]:
        n, f = gh * gw, c * p * p
        kinds = [rng.standard_normal(f) * rng.uniform(0.1, 3), np.zeros(f),
                 np.where(rng.random(f) < 0.5, 1e-40, -3e-39),
                 np.r_[rng.standard_normal(f - 1) * 1e-3, -5e3][:f],
                 rng.standard_normal(f) * 2.0 ** rng.integers(-20, 20, f),
                 np.r_[1.0, (np.arange(f - 1) + 0.5) / 8192 * (-1) ** np.arange(f - 1)][:f]]
        cols = np.stack([kinds[t % len(kinds)] for t in range(n)]).astype(np.float32)
        img = cols.reshape(gh, gw, c, p, p).transpose(2, 0, 3, 1, 4).reshape(c, gh * p, gw * p)
        top = im.abs_bits(im.NP, cols).max(-1)
        s = np.asarray(im.patch_scale(im.NP, top), np.float32)
        q = im.quant8(im.NP, im.fixed_from_f32(im.NP, cols, np.maximum(top >> 23, 1)[:, None]),
                      np.asarray(im.patch_multiplier(im.NP, top), np.int64)[:, None])
        blob += [struct.pack("<5i", 9, c, gh, gw, p), np.ascontiguousarray(img).tobytes()]
        expected.append((f"patch codes c={c} {gh}x{gw} p={p}",
                         [np.asarray(q, np.int8).ravel(), s]))
    return blob, expected


def gelu_table_cases(rng):
    """The Phi table and the GELU table the LX7 loop reads (op 10), made in C: the contract's
    ``gelu_table`` and ``gelu(-u)`` of every input 0 <= u < 4 in Q(G); the loop adds max(v, 0),
    which needs gelu(u) = gelu(-u) + u, and reads the saturated inputs at the last entry, which
    must be 0."""
    del rng
    tab = im.gelu_table()
    u = np.arange(1 << 14, dtype=np.int64)
    lut = im.gelu(im.NP, -u, lambda k: tab[k])
    assert lut[-1] == 0 and np.array_equal(im.gelu(im.NP, u, lambda k: tab[k]), lut + u)
    return [struct.pack("<i", 10)], [("gelu tables", [tab.astype(np.int32),
                                                     lut.astype(np.int16)])]


def exp_table_cases(rng):
    """The exp table the LX7 softmax loop reads (op 11), made in C: the contract's ``exp_neg`` of
    every difference below the row's maximum up to the first D where it is 0; the loop reads every
    larger D at that last entry, which holds only because exp_neg stays 0 past it (checked up to
    the contract's own saturation at 2^16)."""
    del rng
    d = np.arange(1 << 16, dtype=np.int64)
    e = np.asarray(im.exp_neg(im.NP, d), np.int64)
    size = int(np.nonzero(e)[0].max()) + 2
    assert not e[size - 1:].any()
    return [struct.pack("<i", 11)], [("exp table", [e[:size].astype(np.uint16)])]


def cases(seed: int = 0):
    """(input bytes, expected [(description, [arrays in output order])]) of the test program."""
    rng = np.random.default_rng(seed)
    parts = [make(rng) for make in (ln_cases, value_max_cases, tile_cases, codes_cases,
                                    residual_cases, attn_out_cases, softmax_cases, patch_cases,
                                    gelu_table_cases, exp_table_cases)]
    expected = [e for _, exp in parts for e in exp]
    return struct.pack("<i", len(expected)) + b"".join(b for blob, _ in parts for b in blob), expected


def _check(output: bytes, expected) -> None:
    at = 0
    for desc, arrays in expected:
        for want in arrays:
            got = np.frombuffer(output, want.dtype, want.size, at).reshape(want.shape)
            at += want.nbytes
            np.testing.assert_array_equal(got.view(f"u{want.itemsize}"),
                                          want.view(f"u{want.itemsize}"), err_msg=desc)
    assert at == len(output)


@pytest.mark.cc
def test_integer_kernels_host(tmp_path):
    require("host")
    blob, expected = cases()
    res = run_host(build_host([TEST_PROGRAM], tmp_path), blob)
    assert "integer kernels ok" in res.stdout
    _check(res.output, expected)


def _per_element(res, expected) -> str:
    """The kernels' instructions per element at DeiT-Tiny's shapes."""
    names = [desc for desc, _ in expected]
    ln = names.index("layernorm d=192")
    rx = names.index("value max t=197 nb=16 k=192")
    gc = names.index("gelu codes t=197 nb=16 k=192")
    rxd, gcd, ccd, rcd = (names.index(f"{kind} t=197 nb=32 k=192 deit") for kind in (
        "value max", "gelu codes", "channel codes", "row codes"))
    sm = names.index("softmax n=197 h=3 deit")
    cc = names.index("channel codes t=197 nb=16 k=192")
    rc = names.index("row codes t=197 nb=64 k=192")
    rs = names.index("residual t=197 nb=16")
    ao = names.index("attention output n=80 h=3 hd=64")
    pc = names.index("patch codes c=3 2x3 p=16")
    return (f"LayerNorm d=192 {res.counters[f'k{ln}'] / (192 * len(expected[ln][1][1])):.1f} per "
            f"element, values and row max {res.counters[f'k{rx}'] / (197 * 16):.1f} per value, "
            f"GELU codes {res.counters[f'k{gc}'] / (197 * 16):.1f} per value; with DeiT-like "
            f"scales values and row max {res.counters[f'k{rxd}'] / (197 * 32):.1f}, GELU codes "
            f"{res.counters[f'k{gcd}'] / (197 * 32):.1f}, channel codes "
            f"{res.counters[f'k{ccd}'] / (197 * 32):.1f}, row codes "
            f"{res.counters[f'k{rcd}'] / (197 * 32):.1f}; "
            f"softmax {res.counters[f'k{sm}'] / (197 * 3):.1f} per score, "
            f"channel codes {res.counters[f'k{cc}'] / (197 * 16):.1f} per value, "
            f"row codes {res.counters[f'k{rc}'] / (197 * 64):.1f} per value, "
            f"residual {res.counters[f'k{rs}'] / (197 * 16):.1f} per value, "
            f"attention output codes {res.counters[f'k{ao}'] / (80 * 192):.1f} per value, "
            f"patch codes {res.counters[f'k{pc}'] / (6 * 768):.1f} per pixel")


@pytest.mark.xtensa
def test_integer_kernels_lx106(tmp_path):
    require("xtensa")
    blob, expected = cases()
    res = run_xtensa(build_xtensa([TEST_PROGRAM], tmp_path), blob, timeout=300)
    assert "integer kernels ok" in res.stdout
    _check(res.output, expected)
    print(f"lx106 instructions: {_per_element(res, expected)}")


@pytest.mark.esp32s3_core
def test_integer_kernels_esp32s3_core(tmp_path):
    """The same program built for the LX7 (the esp32s3 toolchain, -DFTER_PIE): the same bits."""
    from runtime.esp32s3_sim import build_esp32s3, run_esp32s3

    blob, expected = cases()
    res = run_esp32s3(build_esp32s3([TEST_PROGRAM], tmp_path), blob, timeout=300)
    assert "integer kernels ok" in res.stdout
    _check(res.output, expected)
    print(f"LX7 instructions: {_per_element(res, expected)}")


def test_esp32s3_layernorm_form_calls_the_c_kernels_and_splits_by_rows():
    """The esp32s3 schedule of the integer LayerNorm: gamma/beta folded once, one row-kernel call
    per token, the kernel's signature and attributes kept, and rows split between the workers
    (the folded gamma/beta become scratch that both stages share)."""
    from runtime import split_workers
    from schedules.esp32s3.integer import SCHEDULES
    from schedules.integer import kernels as ki

    func = ki.ternary_layernorm_quant(17, 48, 1e-6)
    form = SCHEDULES["ternary_layernorm"](func)
    script = form.script()
    assert script.count('"fter_ln_affine_i8"') == 1 and script.count('"fter_ln_row_i8"') == 1
    assert dict(form.attrs) == dict(func.attrs)
    params = lambda f: [(str(p.name), tuple(p.shape), str(p.dtype)) for p in f.params]  # noqa: E731
    assert params(form) == params(func)
    out, plans = split_workers.split_kernel(form)
    assert [p.extent for p in plans] == [0, 17], plans
    assert int(out.attrs[split_workers.SCRATCH_ATTR]) == 1


def test_esp32s3_patch_embed_codes_each_patch_in_one_call_and_splits_by_patches():
    """The integer patch embedding's quantizer (absmax bits, scale, multiplier, codes) is one
    ``fter_patch_codes`` call per patch on the image; its absmax and multipliers leave no
    scratch behind, and the patches split between the workers like the tiles' channel blocks."""
    from runtime import split_workers
    from schedules.esp32s3.integer import SCHEDULES
    from schedules.integer import kernels as ki

    func = ki.patch_embed(3, 2, 3, 4, 32, "b3")
    form = SCHEDULES["patch_embed"](func)
    script = form.script()
    assert script.count('"fter_patch_codes"') == 1 and "patch_absmax" not in script.replace(
        "patch_absmax_patch_scale_patch_quant", "")
    assert {str(b.name) for b in form.body.block.alloc_buffers} == {"q", "s", "acc"}
    _, plans = split_workers.split_kernel(form)
    assert [p.extent for p in plans] == [32, 6, 2], plans


def test_esp32s3_mlp_and_attention_call_the_c_epilogues():
    """The MLP calls fc1's tile, values-and-row-max, GELU-codes, fc2's tile and residual kernels
    once per token block (fc1 runs once), the attention block the softmax row kernel and the output-codes row kernel
    once per row (P.V from a copy of V in groups of 16 channels), and both their residual
    epilogues the residual tile kernel once per channel block; the softmax's
    intermediates are gone (left allocated, they would keep their full [n, h, n] size and land
    in the arena)."""
    from runtime.split_workers import split_kernel
    from schedules.esp32s3.integer import SCHEDULES
    from schedules.integer import attention as ka
    from schedules.integer import kernels as ki

    mlp = SCHEDULES["ternary_mlp"](ki.ternary_mlp(17, 32, 64, "b3", True)).script()
    assert mlp.count('"fter_gelu_codes_tile"') == 1 and mlp.count('"fter_residual_tile"') == 1
    assert mlp.count('"fter_tmm_tile_b3_staged_set"') == 2
    assert mlp.count('"fter_value_max_tile"') == 1
    assert mlp.count('"fter_value_table"') == 1   # the channels' factors once per call
    attn = SCHEDULES["int8_attention_block"](ka.int8_attention_block(17, 2, 16, "b3", 0.25))
    assert attn.script().count('"fter_softmax_row_u8"') == 1
    assert attn.script().count('"fter_residual_tile"') == 1
    assert attn.script().count('"fter_attn_out_codes_row"') == 1
    # each head's probability row 16-byte aligned (the stride padded), for fter_pv_row's words
    assert '"buffer_dim_align": [[0, 1, 16, 0]]' in attn.script()
    scratch = {str(b.name) for b in attn.body.block.alloc_buffers}
    assert {"sacc", "logit", "p"} <= scratch and not scratch & {"lmax", "e", "lsum", "recip"}
    # P.V from V in groups of 16 channels, copied once per call; the split leaves the copy whole
    # and makes its buffer an arena parameter (read by the row halves on both workers)
    assert attn.script().count('"fter_v_groups16"') == 1
    assert attn.script().count('"fter_pv_row_g16_set"') == 1
    assert [[int(x) for x in b.shape] for b in attn.body.block.alloc_buffers
            if str(b.name) == "v_global"] == [[2, 17, 16]]
    split, plans = split_kernel(attn)
    assert "v_global" in {str(p.name) for p in split.params}
    assert any(p.extent for p in plans)
    assert not scratch & {"qv", "ov", "omult"}   # Q values and output values stay in place
    # one head: the softmax stays TensorIR (blockize cannot take its unit head loops)
    one = SCHEDULES["int8_attention_block"](ka.int8_attention_block(5, 1, 8, "b3", 0.25))
    assert '"fter_softmax_row_u8"' not in one.script() and '"fter_qk_row_set"' in one.script()


@pytest.mark.parametrize("t, d, hidden, fmt, blocks, size, staged", [
    (17, 32, 64, "b3", 2, 9, True), (1, 32, 64, "b3", 1, 1, True),
    (197, 192, 768, "b3", 12, 17, True), (197, 192, 768, "b2", 16, 13, True),
    (50, 64, 8192, "b2", 17, 3, False), (17, 32, 64, "b2", 2, 9, True),
    (50, 64, 8192, "b3", 17, 3, False), (9, 16, 40, "b3", 2, 5, True),
    (9, 64, 40, "b3", 2, 5, True)])
def test_esp32s3_mlp_token_blocks_split_between_workers(t, d, hidden, fmt, blocks, size, staged):
    """The integer MLP runs token block by token block in two halves: an even count of at least
    two blocks (one with a single token), as few as the per-worker budget allows after the
    weights' stages (gathered once per half, where they take at most two thirds of it), each
    block's scratch (values [size, hidden] int32, then the int8 codes in their place and fc2's
    [size, d] after the codes, 16-byte aligned, or past the values where they do not fit
    there) private to the worker that runs it -- nothing of [t, hidden] is left -- and the
    two-core split gives each worker a half."""
    import re

    from runtime.split_workers import split_kernel
    from schedules.esp32s3.integer import (MLP_WORKSPACE_BYTES, SCHEDULES, mlp_block_words,
                                           mlp_codes_at, mlp_token_blocks, tmm_stage_bytes)
    from schedules.integer import kernels as ki

    assert mlp_token_blocks(t, d, hidden, fmt) == (blocks, size, staged)
    stages = tmm_stage_bytes(d, hidden, fmt) + tmm_stage_bytes(hidden, d, fmt) if staged else 0
    at, words = mlp_codes_at(size, hidden), mlp_block_words(size, d, hidden)
    assert at * 4 >= size * hidden and at % 4 == 0 and words == max(size * hidden, at + size * d)
    assert stages + words * 4 <= MLP_WORKSPACE_BYTES or size == 1
    assert (blocks - 1) * size < t <= blocks * size
    if hidden > 1024:
        return   # (the plan alone: such a kernel takes long to build)
    form = SCHEDULES["ternary_mlp"](ki.ternary_mlp(t, d, hidden, fmt, True))
    script = form.script()
    scratch = {str(b.name): [int(x) for x in b.shape] for b in form.body.block.alloc_buffers}
    assert scratch["acc"] == [words] and "q2" not in scratch
    assert not [n for n, shape in scratch.items() if len(shape) == 2]
    # fc1 and fc2: the staged tiles after one stage call each, or the plain ones
    calls = re.findall(r'"(fter_tmm_(?:stage|tile)_\w+)"', script)
    assert calls == ([f"fter_tmm_stage_{fmt}"] * 2 + [f"fter_tmm_tile_{fmt}_staged_set"] * 2 if staged
                     else [f"fter_tmm_tile_{fmt}_set"] * 2)
    # weights read once per half (from its stages) or once per block
    assert int(form.attrs["fter.weight_reads"]) == ((2 if blocks > 1 else 1) if staged else blocks)
    out, plans = split_kernel(form)
    assert not any(p.private for p in plans)
    assert plans[-1].extent == (2 if blocks > 1 else 0)
    assert int(out.attrs["fter.weight_reads"]) == int(form.attrs["fter.weight_reads"])
    if blocks > 1:   # the block's scratch and the stages stay in the kernel: per worker
        assert {str(p.name) for p in out.params} >= {"rm", "re", "cm", "ce", "cb", "tab", "vtab"}
        assert not {str(p.name) for p in out.params} & {"acc", "vmax", "mult", "s2", "st1", "st2"}


def test_esp32s3_channels_form_accumulates_once_and_splits_by_channel_blocks():
    """The integer V projection codes each block of channels right after its accumulation (a
    channel's absmax is over its own column): one tile call per block, no second pass, and the
    two-core split divides the blocks."""
    from runtime.split_workers import split_kernel
    from schedules.esp32s3.integer import SCHEDULES
    from schedules.integer import kernels as ki

    form = SCHEDULES["ternary_matmul_channels"](ki.ternary_matmul_channels(17, 64, 48, "b3"))
    script = form.script()
    assert script.count('"fter_tmm_tile_b3_set"') == 1
    # the block's epilogue is one C call; its absmax and multiplier tables are gone
    assert script.count('"fter_channel_codes_tile"') == 1
    assert {str(b.name) for b in form.body.block.alloc_buffers} == {
        "cm", "ce", "cb", "rm", "re", "acc1"}
    _, plans = split_kernel(form)
    assert plans[-1].extent == 3 and plans[-1].reason == "split along j_0"


def test_esp32s3_heads_form_codes_each_head_in_one_call_and_splits_by_heads():
    """The integer K projection accumulates a head's [t, hd] in tiles, then codes it with one
    ``fter_row_codes_tile`` call whose values overwrite the accumulators (no value buffer);
    the two-core split divides the heads."""
    from runtime.split_workers import split_kernel
    from schedules.esp32s3.integer import SCHEDULES
    from schedules.integer import kernels as ki

    form = SCHEDULES["ternary_matmul_heads"](ki.ternary_matmul_heads(17, 64, 3, 32, "b3"))
    script = form.script()
    assert script.count('"fter_tmm_tile_b3_set"') == 1 and script.count('"fter_row_codes_tile"') == 1
    assert "for ax1_0 in range(2)" in script   # hd = 32: two tiles of 16 channels a head
    assert {str(b.name) for b in form.body.block.alloc_buffers} == {
        "cm", "ce", "cb", "rm", "re", "acc"}
    _, plans = split_kernel(form)
    assert plans[-1].extent == 3 and plans[-1].reason == "split along g"


def test_esp32s3_integer_tiles_write_their_accumulators():
    """Every weight-stationary tile and attention row of the integer forms starts from zero, so
    it calls the ``_set`` kernel (the output written, not added to) and no zeroing block is left
    for it."""
    import re

    from schedules.esp32s3.integer import SCHEDULES
    from schedules.integer import attention as ka
    from schedules.integer import kernels as ki

    forms = [(ki.ternary_mlp(17, 32, 64, "b2", True), 2, set()),
             (ki.ternary_matmul_heads(17, 64, 3, 32, "b2"), 1, set()),
             (ki.ternary_matmul_channels(17, 64, 48, "b3"), 1, set()),
             (ka.int8_attention_block(17, 2, 16, "b3", 0.25), 2, set())]
    for func, tiles, inits in forms:
        script = SCHEDULES[func.attrs["fter.kind"]](func).script()
        assert not re.search(r'"fter_tmm_tile_b[23]"', script)
        assert len(re.findall(r'"fter_tmm_tile_b[23]_(?:staged_)?set"', script)) == tiles
        assert set(re.findall(r'sblock\("(\w*_init)"', script)) == inits
        if func.attrs["fter.kind"] == "int8_attention_block":
            for row in ("qk_row", "pv_row_g16"):
                assert script.count(f'"fter_{row}_set"') == 1
                assert f'"fter_{row}"' not in script
