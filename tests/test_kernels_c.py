"""C micro-kernels and the portable libc: bit-exact against NumPy, host vs Xtensa, accuracy.

Needs a host C compiler (marker ``cc``) and, for the ``xtensa`` tests,
xtensa-lx106-elf-gcc and qemu-system-xtensa.  Missing tools skip, except
under CI=true where they fail.
"""

from __future__ import annotations

import os
import struct

import numpy as np
import pytest

from runtime import cbuild, packing
from runtime.cbuild import RUNTIME_DIR
from runtime.host_sim import build_host, run_host
from runtime.xtensa_sim import build_xtensa, run_xtensa

KERNEL_TEST = RUNTIME_DIR / "kernels" / "test_kernels.c"
LIBC_TEST = RUNTIME_DIR / "libc" / "test_libc.c"
SIZES_K = (1, 3, 8, 15, 16, 17, 33, 100, 768)
SIZES_N = (1, 3, 16, 17)
UNARY = ("expf", "logf", "log2f", "erff", "tanhf", "sqrtf", "floorf", "ceilf", "truncf",
         "roundf", "nearbyintf", "rintf", "fabsf")


def require(target: str) -> None:
    missing = cbuild.missing_tools(target)
    if missing:
        msg = f"{target} tests need {', '.join(missing)}"
        if os.environ.get("CI") == "true":
            pytest.fail(msg)
        pytest.skip(msg)


# ---------------------------------------------------------------- packing (pure Python)

@pytest.mark.parametrize("fmt", ["b2", "b3"])
@pytest.mark.parametrize("k", [1, 4, 5, 7, 768])
def test_pack_roundtrip(fmt, k):
    wt = np.random.default_rng(k).integers(-1, 2, size=(5, k)).astype(np.int8)
    packed = packing.pack(wt, fmt)
    assert packed.shape == (5, packing.row_bytes(k, fmt)) and packed.dtype == np.uint8
    np.testing.assert_array_equal(packing.unpack(packed, k, fmt), wt)


def test_pack_layout_matches_spec():
    # b2: weight i at bits 2*(i%4) of byte i//4, code w+1; padding is code 1.
    assert packing.pack_b2(np.array([[1, 0, -1, 1, -1]])).tolist() == [[0b10_00_01_10, 0b01_01_01_00]]
    # b3: byte = sum (w_t + 1) * 3**t.
    assert packing.pack_b3(np.array([[1, -1, 0, 1, 1, 0]])).tolist() == [[2 + 0 + 9 + 54 + 162, 1 + 3 + 9 + 27 + 81]]


def test_pack_rejects_non_ternary():
    with pytest.raises(ValueError):
        packing.pack(np.array([[2, 0]]), "b2")
    with pytest.raises(ValueError):
        packing.pack(np.zeros((1, 3)), "b9")


def test_formats_agree_with_compiler():
    formats = pytest.importorskip("schedules.formats")
    wt = np.random.default_rng(0).integers(-1, 2, size=(3, 37))
    for fmt in packing.FORMATS:
        np.testing.assert_array_equal(packing.pack(wt, fmt), formats.pack(wt, fmt))


# ---------------------------------------------------------------- kernel test program

def kernel_cases(seed: int = 0):
    """Cases for test_kernels.c: (input bytes, list of (description, expected int32 array))."""
    rng = np.random.default_rng(seed)
    blob, expected = [], []
    for op, fmt in enumerate(("b2", "b3")):
        for k in SIZES_K:
            for n in SIZES_N:
                for aligned in (True, False):
                    wt = rng.integers(-1, 2, size=(n, k)).astype(np.int8)
                    x = rng.integers(-128, 128, size=k).astype(np.int8)
                    acc = rng.integers(-1000, 1000, size=n).astype(np.int32)
                    rb = packing.row_bytes(k, fmt)
                    stride = (rb + 3) & ~3 if aligned else rb + (1 if rb % 4 == 0 else 0)
                    w = np.zeros((n, stride), np.uint8)
                    w[:, :rb] = packing.pack(wt, fmt)
                    x_off, w_off = (0, 0) if aligned else (1, 3)
                    blob += [struct.pack("<6i", op, k, n, stride, x_off, w_off), x.tobytes(),
                             w.tobytes(), acc.tobytes()]
                    want = acc + packing.ternary_matmul_ref(x[None], wt)[0]
                    expected.append(((fmt, k, n, aligned), want.astype(np.int32)))
    for k in SIZES_K:
        for off in (0, 1):
            a = rng.integers(-128, 128, size=k).astype(np.int8)
            b = rng.integers(-128, 128, size=k).astype(np.int8)
            blob += [struct.pack("<6i", 2, k, 1, 1, off, 3 * off), a.tobytes(), b.tobytes()]
            expected.append((("dot_s8", k, 1, off == 0), np.array([a.astype(np.int64) @ b], np.int32)))
            for stride in (1, 7, 64):
                if k * stride > 60000:
                    continue
                p = rng.integers(0, 256, size=k).astype(np.uint8)
                v = rng.integers(-128, 128, size=k * stride).astype(np.int8)
                blob += [struct.pack("<6i", 3, k, 1, stride, off, 2 * off), p.tobytes(), v.tobytes()]
                want = p.astype(np.int64) @ v[::stride].astype(np.int64)
                expected.append((("dot_u8s8", k, stride, off == 0), np.array([want], np.int32)))
    return struct.pack("<i", len(expected)) + b"".join(blob), expected


def check_kernel_output(output: bytes, expected) -> None:
    got = np.frombuffer(output, np.int32)
    want = np.concatenate([e for _, e in expected])
    assert got.shape == want.shape
    at = 0
    for desc, e in expected:
        np.testing.assert_array_equal(got[at:at + len(e)], e, err_msg=str(desc))
        at += len(e)


def case_index(expected, desc) -> int:
    return [d for d, _ in expected].index(desc)


@pytest.mark.cc
@pytest.mark.parametrize("defines", [{}, {"FTER_KERNELS_REF": None}], ids=["opt", "ref"])
def test_kernels_host(tmp_path, defines):
    require("host")
    blob, expected = kernel_cases()
    exe = build_host([KERNEL_TEST], tmp_path, defines)
    res = run_host(exe, blob)
    assert "kernels ok" in res.stdout
    check_kernel_output(res.output, expected)


@pytest.mark.xtensa
def test_kernels_xtensa(tmp_path):
    require("xtensa")
    blob, expected = kernel_cases()
    elf = build_xtensa([KERNEL_TEST], tmp_path)
    res = run_xtensa(elf, blob, timeout=300)
    assert "kernels ok" in res.stdout
    check_kernel_output(res.output, expected)
    report = []
    for fmt in ("b2", "b3"):
        i = case_index(expected, (fmt, 768, 16, True))
        ref, opt = res.counters[f"c{i}_ref"], res.counters[f"c{i}_opt"]
        report.append(f"tmm_{fmt} k=768 n=16: ref {ref} instructions, xtensa {opt} ({ref / opt:.1f}x)")
        # The optimised kernel must stay well ahead of the reference.
        assert opt * 2 < ref, report[-1]
        # Measured 3.3 (b2) and 3.7 (b3) lx106 instructions per MAC; guard against regressions.
        assert opt < 4.5 * 768 * 16, report[-1]
    print("\n".join(report))


# ---------------------------------------------------------------- libc

def sweep_inputs() -> np.ndarray:
    """Dense sweep over the ranges the model uses plus special values."""
    rng = np.random.default_rng(1)
    parts = [
        np.linspace(-10, 10, 6001),
        np.linspace(-100, 89, 2001),
        rng.standard_normal(3000) * 3,
        np.exp(rng.uniform(-80, 80, 2000)),                 # positive, wide range (log, sqrt)
        np.array([0.0, -0.0, 0.5, -0.5, 1.5, 2.5, -2.5, 1e-40, -1e-40, 1e-45, 3.4e38, np.inf, -np.inf,
                  np.nan, 88.72283, 88.7229, -103.9, -104.0, 0.625, 0.84375, 1.25, 2.857, 6.0, 9.0]),
    ]
    return np.concatenate(parts).astype(np.float32)


def reference(name: str, x: np.ndarray) -> np.ndarray:
    """Correctly rounded (via float64) reference values for float32 inputs."""
    from math import erf
    xd = x.astype(np.float64)
    with np.errstate(all="ignore"):
        table = {
            "expf": np.exp, "logf": np.log, "log2f": np.log2, "tanhf": np.tanh, "sqrtf": np.sqrt,
            "floorf": np.floor, "ceilf": np.ceil, "truncf": np.trunc, "rintf": np.rint,
            "nearbyintf": np.rint, "fabsf": np.abs,
            "roundf": lambda v: np.sign(v) * np.floor(np.abs(v) + 0.5),
            "erff": np.vectorize(lambda v: erf(v) if np.isfinite(v) else np.sign(v) if not np.isnan(v) else v),
        }
        return table[name](xd).astype(np.float32)


def ulp_error(got: np.ndarray, want: np.ndarray) -> np.ndarray:
    """Distance in units of float32 ordering (0 = identical; NaN vs NaN is 0)."""
    def ordered(v):
        i = v.view(np.int32).astype(np.int64)
        return np.where(i < 0, -(i & 0x7FFFFFFF), i)
    both_nan = np.isnan(got) & np.isnan(want)
    d = np.abs(ordered(got) - ordered(want))
    d[both_nan] = 0
    d[np.isnan(got) ^ np.isnan(want)] = 1 << 40
    return d


# Max ulp vs correctly rounded results over sweep_inputs(); exact functions are 0.
ULP_BOUNDS = {"expf": 2, "logf": 2, "log2f": 2, "erff": 2, "tanhf": 2}


def libc_input(mode: int, *arrays: np.ndarray) -> bytes:
    return struct.pack("<2i", mode, len(arrays[0])) + b"".join(a.astype(np.float32).tobytes() for a in arrays)


def split_unary(output: bytes, count: int) -> dict[str, np.ndarray]:
    vals = np.frombuffer(output, np.float32)
    assert len(vals) == count * len(UNARY)
    return {name: vals[i * count:(i + 1) * count] for i, name in enumerate(UNARY)}


@pytest.fixture(scope="module")
def host_libc(tmp_path_factory):
    require("host")
    return build_host([LIBC_TEST], tmp_path_factory.mktemp("libc_host"), {"FTER_TEST_SOFTFLOAT": None})


@pytest.mark.cc
def test_libc_accuracy_host(host_libc):
    x = sweep_inputs()
    got = split_unary(run_host(host_libc, libc_input(0, x)).output, len(x))
    worst = {}
    for name in UNARY:
        err = ulp_error(got[name], reference(name, x))
        worst[name] = int(err.max())
        assert worst[name] <= ULP_BOUNDS.get(name, 0), (name, x[err.argmax()], got[name][err.argmax()])
    print("max ulp vs correctly rounded:", worst)


@pytest.mark.cc
def test_libc_edge_cases_host(host_libc):
    x = np.array([0.5, 1.5, 2.5, -0.5, -1.5, -2.5, -0.3, 8388609.0, -0.0], np.float32)
    got = split_unary(run_host(host_libc, libc_input(0, x)).output, len(x))
    assert got["nearbyintf"].tolist() == [0.0, 2.0, 2.0, -0.0, -2.0, -2.0, -0.0, 8388609.0, -0.0]
    assert got["roundf"].tolist() == [1.0, 2.0, 3.0, -1.0, -2.0, -3.0, -0.0, 8388609.0, -0.0]
    assert np.signbit(got["nearbyintf"][6]) and np.signbit(got["floorf"][8])
    assert np.isnan(got["sqrtf"][[3]]).all() and got["expf"][8] == 1.0


@pytest.mark.cc
def test_powf_host(host_libc):
    rng = np.random.default_rng(2)
    x = np.concatenate([rng.uniform(-4, 4, 500), rng.uniform(0.01, 10, 500)]).astype(np.float32)
    y = np.concatenate([rng.integers(-5, 6, 500), rng.uniform(-3, 3, 500)]).astype(np.float32)
    got = np.frombuffer(run_host(host_libc, libc_input(1, x, y)).output, np.float32)
    with np.errstate(all="ignore"):
        want = np.power(x.astype(np.float64), y.astype(np.float64)).astype(np.float32)
    assert ulp_error(got[:500], want[:500]).max() <= 4   # small integer exponents
    assert ulp_error(got[500:], want[500:]).max() <= 16  # |y ln x| < 7: error grows with it


@pytest.mark.cc
def test_softfloat_matches_sse(host_libc):
    # softfloat.c (the lx106's add/sub/mul/conversions, the LX7 simulator's division) against
    # x86 SSE on 2M random pairs.
    out = run_host(host_libc, struct.pack("<2i", 3, 2_000_000)).output
    assert struct.unpack("<I", out) == (0,)


def arith_inputs() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(3)
    a = rng.integers(0, 1 << 32, 4000, dtype=np.uint64).astype(np.uint32)
    b = rng.integers(0, 1 << 32, 4000, dtype=np.uint64).astype(np.uint32)
    near = (a[:1000] ^ rng.integers(0, 256, 1000).astype(np.uint32))  # cancellation, ties
    small = rng.standard_normal(2000).astype(np.float32).view(np.uint32)
    return (np.concatenate([a, a[:1000], small]).view(np.float32),
            np.concatenate([b, near, small[::-1]]).view(np.float32))


def nan_canonical(words: np.ndarray) -> np.ndarray:
    """Float words with every NaN replaced by one pattern (payloads may differ by operand order)."""
    w = words.copy()
    w[(w & 0x7FFFFFFF) > 0x7F800000] = 0x7FC00000
    return w


@pytest.mark.xtensa
def test_libc_bit_identical_host_vs_xtensa(tmp_path, host_libc):
    require("xtensa")
    elf = build_xtensa([LIBC_TEST], tmp_path)
    x = sweep_inputs()
    a, b = arith_inputs()
    rng = np.random.default_rng(4)
    px, py = rng.uniform(-4, 4, 2000).astype(np.float32), rng.uniform(-3, 3, 2000).astype(np.float32)
    py[:1000] = np.round(py[:1000])
    for blob, what in ((libc_input(0, x), "math"), (libc_input(1, px, py), "powf"),
                       (libc_input(2, a, b), "float arithmetic")):
        host = np.frombuffer(run_host(host_libc, blob).output, np.uint32)
        xt = np.frombuffer(run_xtensa(elf, blob, timeout=300).output, np.uint32)
        assert host.shape == xt.shape
        if what == "float arithmetic":
            host, xt = nan_canonical(host), nan_canonical(xt)
        bad = np.flatnonzero(host != xt)
        assert bad.size == 0, f"{what}: {bad.size} words differ, first at {bad[:5]}"


def int64_pairs() -> tuple[np.ndarray, np.ndarray]:
    """Dividend/divisor pairs for the 64-bit division helpers: every pair of edge values (zero
    divisors and INT64_MIN / -1, undefined in C, left out), random 64-bit words, and 64-bit
    dividends over small divisors (TVM's index arithmetic)."""
    edge = [0, 1, -1, 2, -2, 3, -7, 10, 2**31 - 1, -2**31, 2**32 + 5, -(2**32) - 3, 2**62 + 1,
            123456789012345, 2**63 - 1, -(2**63)]
    a = np.array([x for x in edge for _ in edge], np.int64)
    b = np.array([y for _ in edge for y in edge], np.int64)
    keep = (b != 0) & ~((a == -(2**63)) & (b == -1))
    rng = np.random.default_rng(9)
    ra = rng.integers(-(2**63), 2**63 - 1, 600, dtype=np.int64, endpoint=True)
    rb = rng.integers(-(2**63), 2**63 - 1, 600, dtype=np.int64, endpoint=True)
    rb[:300] = rng.integers(1, 1000, 300) * rng.choice([-1, 1], 300)
    rb[rb == 0] = 5
    return np.concatenate([a[keep], ra]), np.concatenate([b[keep], rb])


def int64_expected(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    out = []
    for x, y in zip(a.tolist(), b.tolist()):
        q = abs(x) // abs(y) * (1 if (x < 0) == (y < 0) else -1)   # C: truncate toward zero
        ux, uy = x % 2**64, y % 2**64
        out += [q % 2**64, (x - q * y) % 2**64, ux // uy, ux % uy]
    return np.array(out, np.uint64)


@pytest.mark.parametrize("where", ["host", pytest.param("lx106", marks=pytest.mark.xtensa)])
def test_int64_division_helpers(tmp_path, where):
    """C's int64 / and % (the lx106 links runtime/libc/libgcc_divdi.c for them; the host its own
    libgcc, which checks the expectations)."""
    require(where if where == "host" else "xtensa")
    a, b = int64_pairs()
    blob = struct.pack("<2i", 4, len(a)) + a.tobytes() + b.tobytes()
    if where == "host":
        out = run_host(build_host([LIBC_TEST], tmp_path), blob).output
    else:
        out = run_xtensa(build_xtensa([LIBC_TEST], tmp_path), blob, timeout=300).output
    got = np.frombuffer(out, np.uint64)
    want = int64_expected(a, b)
    bad = np.flatnonzero(got != want)
    assert bad.size == 0, f"{bad.size} results differ, first pairs {[(a[i // 4], b[i // 4]) for i in bad[:3]]}"
