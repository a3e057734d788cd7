"""Vectorizable float32 ``exp`` and ``erf`` for the LLVM (x86) target.

LLVM lowers ``tirx.exp``/``tirx.erf`` of a vector to one libm call per lane (``expf``/``erff``),
which made the GELU epilogue cost 8x the VNNI matmul it follows. These rules, registered with TVM's
own ``register_intrin_lowering`` for the ``llvm`` target, expand float32 calls into branch-free
polynomials that vectorize; other dtypes keep TVM's previous rule.

* ``exp``: Cephes ``expf`` -- Cody-Waite reduction by ln 2 (two-part constant), degree-6
  polynomial, 2^n by building the exponent bits; relative error ~1e-7 on [-87.3, 88.3] (clamped outside).
* ``erf``: the rational approximation TVM's ``topi.fast_erf`` uses (from Eigen), |error| < 2e-7.
"""

from __future__ import annotations

import tvm
from tvm import tirx

_EXP_HI, _EXP_LO = 88.3, -87.33654   # keep 2^n a normal float: n in [-126, 127]
_LOG2E, _LN2_HI, _LN2_LO = 1.44269504088896341, 0.693359375, -2.12194440e-4
_EXP_POLY = (1.9875691500e-4, 1.3981999507e-3, 8.3334519073e-3, 4.1665795894e-2,
             1.6666665459e-1, 5.0000001201e-1)
_ERF_P = (-2.72614225801306e-10, 2.77068142495902e-08, -2.10102402082508e-06,
          -5.69250639462346e-05, -7.34990630326855e-04, -2.95459980854025e-03,
          -1.60960333262415e-02)
_ERF_Q = (-1.45660718464996e-05, -2.13374055278905e-04, -1.68282697438203e-03,
          -7.37332916720468e-03, -1.42647390514189e-02)


def _const(value, dtype: str):
    return tirx.const(value, dtype)


def _horner(x, coeffs, dtype):
    acc = _const(coeffs[0], dtype)
    for c in coeffs[1:]:
        acc = acc * x + _const(c, dtype)
    return acc


def _int_dtype(dtype: str) -> str:
    lanes = dtype[len("float32"):]
    return "int32" + lanes


def fast_exp(x: tvm.tirx.PrimExpr) -> tvm.tirx.PrimExpr:
    """``exp(x)`` for float32 (scalar or vector) as branch-free arithmetic."""
    dt = str(x.ty.dtype)
    x = tirx.max(tirx.min(x, _const(_EXP_HI, dt)), _const(_EXP_LO, dt))
    n = tirx.floor(x * _const(_LOG2E, dt) + _const(0.5, dt))
    r = x - n * _const(_LN2_HI, dt) - n * _const(_LN2_LO, dt)
    y = _horner(r, _EXP_POLY, dt) * (r * r) + r + _const(1.0, dt)
    idt = _int_dtype(dt)
    bits = tirx.shift_left(tirx.Cast(idt, n) + _const(127, idt), _const(23, idt))
    return y * tirx.reinterpret(dt, bits)


def fast_erf(x: tvm.tirx.PrimExpr) -> tvm.tirx.PrimExpr:
    """``erf(x)`` for float32 (scalar or vector): odd rational approximation on [-4, 4]."""
    dt = str(x.ty.dtype)
    x = tirx.max(tirx.min(x, _const(4.0, dt)), _const(-4.0, dt))
    x2 = x * x
    return x * _horner(x2, _ERF_P, dt) / _horner(x2, _ERF_Q, dt)


def _rule(op_name: str, fast):
    previous = tvm.ir.Op.get(op_name).get_attr("llvm.FLowerIntrinsic")

    def lower(call):
        if str(call.ty.dtype).startswith("float32"):
            return fast(call.args[0])
        return previous(call) if previous is not None else call

    return lower


def register() -> None:
    """Install the rules (idempotent); ``schedules.x86`` calls this at import."""
    global _REGISTERED
    if _REGISTERED:
        return
    for op_name, fast in (("tirx.exp", fast_exp), ("tirx.erf", fast_erf)):
        tirx.register_intrin_lowering(op_name, target="llvm", f=_rule(op_name, fast), level=99)
    _REGISTERED = True


_REGISTERED = False
