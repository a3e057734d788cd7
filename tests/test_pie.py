"""The PIE layer (runtime/kernels/pie) and the PIE kernels, bit-exact against NumPy.

runtime/kernels/pie/test_pie.c checks each emulated PIE instruction against
hand-computed values and every PIE kernel against its reference on the same
data; here the results are also compared with NumPy.  Host (marker ``cc``)
and lx106 in QEMU (marker ``xtensa``); run with -s for instruction counts.
"""

from __future__ import annotations

import re
import struct

import numpy as np
import pytest

from runtime import packing
from runtime.cbuild import RUNTIME_DIR
from runtime.host_sim import build_host, run_host
from runtime.xtensa_sim import build_xtensa, run_xtensa

PIE_TEST = RUNTIME_DIR / "kernels" / "pie" / "test_pie.c"
DIMS = (1, 3, 15, 16, 17, 33, 100, 197)
MAX_K = 4608  # FTER_PIE_MAX_K of the test build: k > 4080 exercises the QACC block readout
DEFINES = {"FTER_PIE_COUNT": None, "FTER_PIE_MAX_K": MAX_K}
# DeiT-Tiny shapes whose counts are reported.
DEIT = {("b3", 192, 16, 197): "tile_b3 k=192 nb=16 t=197", ("b3", 768, 16, 197): "tile_b3 k=768 nb=16 t=197",
        ("qk", 64, 197): "qk hd=64 n=197", ("pv", 64, 197): "pv hd=64 n=197"}


def header(*values: int) -> bytes:
    return struct.pack("<8i", *(list(values) + [0] * (8 - len(values))))


def start_pattern(n: int) -> np.ndarray:
    """What test_pie.c puts in the attention rows' outputs before calling the kernels."""
    return 1000 - 7 * np.arange(n, dtype=np.int64)


class Cases:
    """Input stream for test_pie.c and the NumPy expectation of each case."""

    def __init__(self, seed: int = 0):
        self.rng = np.random.default_rng(seed)
        self.blob: list[bytes] = [header(0)]
        self.expected: list[tuple[object, np.ndarray]] = [("self-test", np.zeros(1, np.int32))]

    def tile(self, fmt, k, nb, t, aligned=True, x=None, wt=None, set_=False, raw=None):
        """raw: packed bytes [nb, row_bytes] taken as they are, any value 0..255 (the
        reference's digits of byte v are the weights: b3's (v // 3^j) % 3 - 1, bytes >= 243, which
        no packer writes, read as v - 243; b2's (v >> 2j) & 3 - 1, where the 3 no packer writes
        is a 2)."""
        rng = self.rng
        if raw is not None:
            base, per = (3, 5) if fmt == "b3" else (4, 4)
            digits = (raw.astype(np.int64)[:, :, None] // base ** np.arange(per)) % base - 1
            wt = digits.reshape(nb, -1)[:, :k].astype(np.int8)
        wt = rng.integers(-1, 2, size=(nb, k)).astype(np.int8) if wt is None else wt
        x = rng.integers(-128, 128, size=(t, k)).astype(np.int8) if x is None else x
        rb = packing.row_bytes(k, fmt)
        w_stride = rb if aligned else rb + 1
        x_stride, x_off = ((k + 15) & ~15, 0) if aligned else (k + 1, 3)
        acc_stride = nb if aligned else nb + 2
        w = np.zeros((nb, w_stride), np.uint8)
        w[:, :rb] = packing.pack(wt, fmt) if raw is None else raw
        xs = rng.integers(-128, 128, size=(t, x_stride)).astype(np.int8)  # garbage past k
        xs[:, :k] = x
        acc = rng.integers(-1000, 1000, size=(t, acc_stride)).astype(np.int32)
        want = acc.astype(np.int64)
        want[:, :nb] = (0 if set_ else want[:, :nb]) + x.astype(np.int64) @ wt.T.astype(np.int64)
        op = (1 if fmt == "b2" else 2) + (4 if set_ else 0)
        self.blob += [header(op, k, nb, t, w_stride, x_stride, acc_stride, x_off), xs.tobytes(),
                      w.tobytes(), acc.tobytes()]
        desc = (fmt, k, nb, t) + (() if aligned else ("misaligned",)) + (("set",) if set_ else ())
        self.expected.append((desc, want.astype(np.int32).ravel()))

    # the row kernels accumulate into start_pattern; set_: the _set kernels, which write
    def qk(self, hd, n, aligned=True, set_=False, k_stride=None):
        q = self.rng.integers(-128, 128, size=hd).astype(np.int8)
        if k_stride is None:
            k_stride = (hd + 15) & ~15 if aligned else hd + 3
        k = self.rng.integers(-128, 128, size=(n, k_stride)).astype(np.int8)
        off = (0, 0) if aligned else (1, 5)
        self.blob += [header(7 if set_ else 3, hd, n, k_stride, *off), q.tobytes(), k.tobytes()]
        want = k[:, :hd].astype(np.int64) @ q.astype(np.int64) + (0 if set_ else start_pattern(n))
        desc = (("qk", hd, n) + (() if aligned else ("misaligned",)) + (("set",) if set_ else ())
                + ((f"k_stride{k_stride}",) if k_stride != ((hd + 15) & ~15) and aligned else ()))
        self.expected.append((desc, want.astype(np.int32)))

    def pv(self, hd, n, p=None, v=None, v_stride=None, v_off=0, p_off=0, tag="random",
           set_=False):
        p = self.rng.integers(0, 256, size=n).astype(np.uint8) if p is None else p
        v_stride = (hd + 15) & ~15 if v_stride is None else v_stride
        v = self.rng.integers(-128, 128, size=(n, v_stride)).astype(np.int8) if v is None else v
        self.blob += [header(8 if set_ else 4, n, hd, v_stride, p_off, v_off), p.tobytes(),
                      v.tobytes()]
        want = p.astype(np.int64) @ v[:, :hd].astype(np.int64) + (0 if set_ else start_pattern(hd))
        desc = ("pv", hd, n) + (() if tag == "deit" else (tag,)) + (("set",) if set_ else ())
        self.expected.append((desc, want.astype(np.int32)))

    def stream(self) -> bytes:
        return struct.pack("<i", len(self.expected)) + b"".join(self.blob)


def pie_cases(seed: int = 0) -> Cases:
    c = Cases(seed)
    rng = c.rng
    # every value of every dimension, the other two varied (product bounded for QEMU)
    for dim in range(3):
        for val in DIMS:
            while True:
                kn_t = [int(rng.choice(DIMS)) for _ in range(3)]
                kn_t[dim] = val
                if np.prod(kn_t) <= 700_000:
                    break
            k, nb, t = kn_t
            c.tile("b3" if (dim + val) % 2 else "b2", k, nb, t, aligned=bool(val % 3))
    for fmt in ("b2", "b3"):
        c.tile(fmt, 33, 17, 3, aligned=False)
        c.tile(fmt, 64, 16, 5, aligned=True)
    c.tile("b3", 192, 16, 197)
    # every byte value, padding trits past k included, through the PIE decode of full groups
    c.tile("b3", 203, 32, 3, raw=(np.arange(32 * 41) % 256).astype(np.uint8).reshape(32, 41))
    c.tile("b3", 83, 16, 2, aligned=False,
           raw=rng.integers(0, 256, size=(16, 17)).astype(np.uint8))
    # k = 192: the last byte's padding trits (any value here) decode to rows past kpad, which the
    # chunk loop only prefetches, never multiplies
    c.tile("b3", 192, 16, 3, raw=rng.integers(0, 256, size=(16, 39)).astype(np.uint8))
    c.tile("b3", 192, 16, 3, raw=rng.integers(0, 256, size=(16, 39)).astype(np.uint8), set_=True)
    c.tile("b2", 254, 32, 3, raw=(np.arange(32 * 64) % 256).astype(np.uint8).reshape(32, 64))
    c.tile("b2", 83, 16, 2, aligned=False,
           raw=rng.integers(0, 256, size=(16, 21)).astype(np.uint8))
    c.tile("b2", 768, 16, 197)
    c.tile("b3", 768, 16, 197)
    # lane bound: x = -128, w = -1 at the largest k (QACC read out per 4080), and k > FTER_PIE_MAX_K
    for k in (4080, MAX_K):
        c.tile("b3", k, 17, 2, x=np.full((2, k), -128, np.int8), wt=np.full((17, k), -1, np.int8))
    c.tile("b2", MAX_K + 5, 3, 2)
    # the _set tiles: written, not added to (k past 4080: the later blocks add; past MAX_K: ref)
    # (each runs the staged tile as well: full groups from the gathered stage, partial from w)
    for fmt, k, nb, t, aligned in [("b3", 192, 16, 17, True), ("b2", 33, 17, 3, False),
                                   ("b3", 4100, 5, 2, True), ("b3", MAX_K + 1, 3, 2, False),
                                   ("b2", 64, 16, 1, True), ("b3", 192, 40, 5, True),
                                   ("b3", 47, 33, 3, False), ("b2", 192, 40, 5, True),
                                   ("b2", 47, 33, 3, False), ("b2", MAX_K + 1, 3, 2, False)]:
        c.tile(fmt, k, nb, t, aligned=aligned, set_=True)
    c.tile("b3", 203, 32, 3, raw=(np.arange(32 * 41) % 256).astype(np.uint8).reshape(32, 41),
           set_=True)
    c.tile("b2", 254, 32, 3, raw=(np.arange(32 * 64) % 256).astype(np.uint8).reshape(32, 64),
           set_=True)
    for hd in (16, 32, 64, 48, 20, 80, 96):
        for n in (1, 17, 197):
            c.qk(hd, n)
        c.qk(hd, 33, aligned=False)
    # keys further apart than a head (K of all heads in one row, as the model lays it out): the
    # LX7 loop steps from a key's last chunk to the next key with one increment
    for hd, k_stride in ((64, 192), (16, 48), (96, 112), (80, 240)):
        c.qk(hd, 17, k_stride=k_stride)
        c.qk(hd, 5, k_stride=k_stride, set_=True)
    for hd in (16, 32, 64, 48, 20):
        for n in (1, 3, 17, 197):
            c.pv(hd, n)  # random p: sum far above 4095, many p > 127
    # softmax-like rows: small values plus a few > 127 (255 splits its 128 as 127 + 1)
    p = np.zeros(197, np.uint8)
    p[[0, 5, 100, 196]] = [255, 128, 200, 130]
    p[rng.integers(0, 197, 40)] = rng.integers(0, 4, 40).astype(np.uint8)
    c.pv(64, 197, p=p, tag="softmax")
    c.pv(64, 197, p=np.full(197, 255, np.uint8), v=np.full((197, 64), -128, np.int8), tag="extreme")
    c.pv(32, 40, v_stride=40, tag="stride40")  # stride not a multiple of 16: reference
    soft = np.exp(rng.standard_normal(197) * 2)
    c.pv(64, 197, p=np.minimum(np.round(255 * soft / soft.max()), 255).astype(np.uint8), tag="peaked")
    # the reported DeiT row: a softmax row as the integer softmax writes it (round(255 e / sum e),
    # sum about 255), with one key above 127
    soft = np.exp(rng.standard_normal(197))
    soft[7] = soft.sum()
    c.pv(64, 197, p=np.minimum(np.round(255 * soft / soft.sum()), 255).astype(np.uint8), tag="deit")
    # probabilities read a word at a time where p is word-aligned: every offset; rows whose main
    # values sum to 4095 (one QACC block) and 4096 (two); bytes > 127 in a word of small ones
    for p_off in (1, 2, 3, 4):
        c.pv(32, 37, p=rng.integers(0, 128, 37).astype(np.uint8), p_off=p_off, tag=f"p_off{p_off}")
    for total in (4095, 4096):
        p = np.zeros(40, np.uint8)
        p[:32], p[32] = 127, total - 127 * 32
        c.pv(16, 40, p=p, tag=f"sum{total}")
    p = rng.integers(0, 8, 197).astype(np.uint8)
    p[[3, 64, 65, 66, 67, 196]] = [128, 255, 129, 200, 127, 254]
    c.pv(48, 197, p=p, tag="mixed words")
    # rows read in place (aligned, main magnitudes <= 4095): bytes > 127 whose fix-up entries
    # still fit the main pass's QACC block, and ones that need their own blocks; whole chunks
    # only (n % 16 == 0) and a one-key tail
    q = rng.integers(0, 12, 64).astype(np.uint8)
    q[[1, 17, 40]] = [255, 128, 129]
    c.pv(32, 64, p=q, tag="in place, shared block")
    q = rng.integers(0, 24, 161).astype(np.uint8)
    q[rng.choice(160, 12, replace=False)] = 255
    q[160] = 200
    c.pv(64, 161, p=q, tag="in place, fix-up blocks")
    # the _set kernels write their outputs
    for hd, n in ((64, 197), (16, 1), (20, 17)):
        c.qk(hd, n, set_=True)
    c.qk(32, 33, aligned=False, set_=True)
    c.pv(64, 197, p=p, tag="mixed words", set_=True)
    c.pv(20, 17, tag="reference", set_=True)
    c.pv(32, 37, p_off=3, tag="p_off3", set_=True)
    return c


def check_output(output: bytes, expected) -> None:
    got = np.frombuffer(output, np.int32)
    assert got.shape == (sum(len(e) for _, e in expected),)
    at = 0
    for desc, e in expected:
        np.testing.assert_array_equal(got[at:at + len(e)], e, err_msg=str(desc))
        at += len(e)


def pie_counts(stdout: str) -> dict[str, int]:
    return {m[1]: int(m[2]) for m in re.finditer(r"^FTER_PIE (\S+) (\d+)$", stdout, re.M)}


def deit_rows(cases: Cases) -> list[tuple[str, int]]:
    descs = [d for d, _ in cases.expected]
    return [(label, descs.index(key)) for key, label in DEIT.items()]


@pytest.mark.cc
def test_pie_host(tmp_path):
    cases = pie_cases()
    exe = build_host([PIE_TEST], tmp_path, DEFINES)
    res = run_host(exe, cases.stream())
    assert "pie ok" in res.stdout and "FAIL" not in res.stdout, res.stdout
    check_output(res.output, cases.expected)
    counts = pie_counts(res.stdout)
    report = []
    for label, i in deit_rows(cases):
        report.append(f"{label}: {counts[f'c{i}']} emulated PIE instructions")
    # 17 instructions per 16-k chunk and token, + 6 per token and group (zero, first column,
    # readout); the group's decode: 2 constant loads, then 22 per packed byte (load, 2 SSAI, 9
    # multiplies, 5 subtractions, 5 stores)
    assert counts[f"c{deit_rows(cases)[1][1]}"] == 197 * (48 * 17 + 6) + 2 + 154 * 22
    print("\n".join(report))


@pytest.mark.xtensa
def test_pie_xtensa(tmp_path):
    cases = pie_cases()
    elf = build_xtensa([PIE_TEST], tmp_path, DEFINES)
    res = run_xtensa(elf, cases.stream(), timeout=600)
    assert "pie ok" in res.stdout and "FAIL" not in res.stdout, res.stdout
    check_output(res.output, cases.expected)
    counts = pie_counts(res.stdout)
    report = []
    for label, i in deit_rows(cases):
        ref, pie = res.counters[f"c{i}_ref"], res.counters[f"c{i}_pie"]
        report.append(f"{label}: lx106 ref {ref} instructions, pie (emulated) {pie}; "
                      f"{counts[f'c{i}']} PIE instructions")
    print("\n".join(report))


@pytest.mark.esp32s3_core
def test_pie_esp32s3_core(tmp_path):
    """The same program with the PIE instructions themselves, on the ESP32-S3's LX7 core: bit
    for bit the emulation's results; instruction counts of the real sequences (scalar parts
    included) for the DeiT-Tiny shapes."""
    from runtime.esp32s3_sim import build_esp32s3, run_esp32s3

    cases = pie_cases()
    elf = build_esp32s3([PIE_TEST], tmp_path, DEFINES)
    res = run_esp32s3(elf, cases.stream(), timeout=600)
    assert "FAIL" not in res.stdout, res.stdout
    check_output(res.output, cases.expected)
    report = []
    for label, i in deit_rows(cases):
        ref, pie = res.counters[f"c{i}_ref"], res.counters[f"c{i}_pie"]
        g16 = res.counters.get(f"c{i}_g16")
        report.append(f"{label}: LX7 ref {ref} instructions, pie {pie}"
                      + (f", from V in groups of 16 {g16}" if g16 is not None else ""))
    print("\n".join(report))
