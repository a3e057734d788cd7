"""The C kernels of the integer numerics mode (runtime/kernels/layernorm_int.c) against the
contract's NumPy reference (schedules/integer/intmath_ref.py), bit for bit, on the host and on
the lx106 -- and what they cost there."""

from __future__ import annotations

import math
import struct

import numpy as np
import pytest

from runtime.cbuild import RUNTIME_DIR
from runtime.host_sim import build_host, run_host
from runtime.xtensa_sim import build_xtensa, run_xtensa
from schedules.integer import intmath_ref as ref

from test_kernels_c import require

LN_TEST = RUNTIME_DIR / "kernels" / "test_layernorm_int.c"
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


def ln_cases(seed: int = 0):
    """(input bytes, expected [(q, s)]) of test_layernorm_int.c: widths from 1 to DeiT-S's."""
    rng = np.random.default_rng(seed)
    blob, expected = [], []
    for d, ab in [(1, (0.8, 0.3)), (3, (0.2, 0.9)), (16, (1.0, 1.0)), (17, (0.5, 0.0)),
                  (192, (0.8, 0.3)), (384, (0.01, 0.02)), (768, (3.0, 0.5)), (100, (0.0, 0.0))]:
        x = _rows(rng, d)
        g, b = (rng.integers(-1, 2, d).astype(np.int8) for _ in range(2))
        ab = np.asarray(ab, np.float32)
        sq_shift = max(1, math.ceil(math.log2(d)))
        blob += [struct.pack("<3i", d, sq_shift, len(x)), np.float32(EPS).tobytes(), ab.tobytes(),
                 g.tobytes(), b.tobytes(), x.tobytes()]
        expected.append((d, *ref.layernorm_quant(x, g, b, ab, EPS)))
    return struct.pack("<i", len(expected)) + b"".join(blob), expected


def _check(output: bytes, expected) -> None:
    at = 0
    for d, q, s in expected:
        got_q = np.frombuffer(output, np.int8, q.size, at).reshape(q.shape)
        at += q.size
        got_s = np.frombuffer(output, np.float32, s.size, at)
        at += s.size * 4
        np.testing.assert_array_equal(got_q, q, err_msg=f"codes, d={d}")
        np.testing.assert_array_equal(got_s.view(np.uint32), s.view(np.uint32),
                                      err_msg=f"scales, d={d}")
    assert at == len(output)


@pytest.mark.cc
def test_layernorm_row_kernel_host(tmp_path):
    require("host")
    blob, expected = ln_cases()
    res = run_host(build_host([LN_TEST], tmp_path), blob)
    assert "layernorm ok" in res.stdout
    _check(res.output, expected)


@pytest.mark.xtensa
def test_layernorm_row_kernel_lx106(tmp_path):
    require("xtensa")
    blob, expected = ln_cases()
    res = run_xtensa(build_xtensa([LN_TEST], tmp_path), blob, timeout=300)
    assert "layernorm ok" in res.stdout
    _check(res.output, expected)
    i = [d for d, *_ in expected].index(192)
    per = res.counters[f"ln{i}"] / (192 * len(expected[i][1]))
    print(f"integer LayerNorm row kernel, d=192: {per:.1f} lx106 instructions per element")


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
