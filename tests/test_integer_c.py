"""The C kernels of the integer numerics mode (runtime/kernels/layernorm_int.c, epilogue_int.c)
against the contract's NumPy reference (schedules/integer/intmath.py, intmath_ref.py), bit for
bit, on the host and on the lx106 -- and what they cost there; and the esp32s3 schedules that
call them."""

from __future__ import annotations

import math
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
    one outlier, signs mixed across 40 binary orders of magnitude."""
    rows = [
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
        sq_shift = max(1, math.ceil(math.log2(d)))
        blob += [struct.pack("<4i", 0, d, sq_shift, len(x)), np.float32(EPS).tobytes(),
                 ab.tobytes(), g.tobytes(), b.tobytes(), x.tobytes()]
        q, s = ref.layernorm_quant(x, g, b, ab, EPS)
        expected.append((f"layernorm d={d}", [q, s]))
    return blob, expected


def rowmax_cases(rng):
    """Value row-max cases (op 1): tiles of the MLP's fc1 (k = 192, 768), scales over 2^-30..2^5
    so that the rounding shift clamps at both ends, zero scales, extreme accumulators."""
    blob, expected = [], []
    for t, nb, stride, k in [(1, 1, 1, 16), (3, 16, 48, 192), (17, 16, 16, 768), (197, 16, 64, 192),
                             (5, 7, 9, 33)]:
        abits = im.acc_bits(k)
        lim = 128 * k
        acc = rng.integers(-lim, lim + 1, (t, stride)).astype(np.int32)
        acc[0, :] = lim
        alpha = (2.0 ** rng.uniform(-30, 5, nb)).astype(np.float32)
        alpha[0] = 0.0
        scale = (2.0 ** rng.uniform(-20, 0, t)).astype(np.float32)
        bias = (rng.standard_normal(nb) * 4).astype(np.float32)
        cm, ce = (np.asarray(a, np.int32) for a in im.split_f32(im.NP, alpha))
        rm, re = (np.asarray(a, np.int32) for a in im.split_f32(im.NP, scale))
        cb = np.asarray(im.fixed_frac(im.NP, bias), np.int32)
        vmax = rng.integers(-(1 << 30), 1 << 20, t).astype(np.int32)
        v = im.dequant(im.NP, acc[:, :nb].astype(np.int64), abits, cm[None, :].astype(np.int64),
                       ce[None, :].astype(np.int64), rm[:, None].astype(np.int64),
                       re[:, None].astype(np.int64), cb[None, :].astype(np.int64))
        blob += [struct.pack("<5i", 1, t, nb, stride, abits), acc.tobytes(), cm.tobytes(),
                 ce.tobytes(), cb.tobytes(), rm.tobytes(), re.tobytes(), vmax.tobytes()]
        expected.append((f"rowmax t={t} nb={nb} k={k}",
                         [np.maximum(vmax, v.max(1)).astype(np.int32)]))
    return blob, expected


def cases(seed: int = 0):
    """(input bytes, expected [(description, [arrays in output order])]) of the test program."""
    rng = np.random.default_rng(seed)
    ln_blob, ln_expected = ln_cases(rng)
    mx_blob, mx_expected = rowmax_cases(rng)
    expected = ln_expected + mx_expected
    return struct.pack("<i", len(expected)) + b"".join(ln_blob + mx_blob), expected


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


@pytest.mark.xtensa
def test_integer_kernels_lx106(tmp_path):
    require("xtensa")
    blob, expected = cases()
    res = run_xtensa(build_xtensa([TEST_PROGRAM], tmp_path), blob, timeout=300)
    assert "integer kernels ok" in res.stdout
    _check(res.output, expected)
    names = [desc for desc, _ in expected]
    ln = names.index("layernorm d=192")
    mx = names.index("rowmax t=197 nb=16 k=192")
    print(f"lx106 instructions: LayerNorm d=192 "
          f"{res.counters[f'k{ln}'] / (192 * len(expected[ln][1][1])):.1f} per element, "
          f"value row max {res.counters[f'k{mx}'] / (197 * 16):.1f} per value")


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
