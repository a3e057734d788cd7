"""Shared recognition helpers: the quantizer patterns, view-op stripping, ternary-constant analysis.

Recognition is by math: the activation quantizer is any ``clip(round(x / s)) * s`` (or BitNet's
``clip(round(x * r)) / r``) whose scale comes from ``max(abs(x))``; a ternary weight is any constant
whose output channels take at most the values {-a_c, 0, +a_c}.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import tvm
from tvm.ir.expr import Constant
from tvm import relax
from tvm.relax.dpl import is_const, is_op, wildcard

# relative spread tolerated among the nonzero magnitudes of one channel (float folding of
# ``round(w / a) * a`` is exact, but a user's ``w + (wq - w)`` STE form can leave one-ulp noise)
TERNARY_RTOL = 1e-5
VIEW_OPS = ("relax.reshape", "relax.broadcast_to", "relax.expand_dims", "relax.squeeze")


def _clip_bounds(call: relax.Call) -> tuple[float, float]:
    return float(call.args[1].value), float(call.args[2].value)


def const_value(expr) -> np.ndarray | None:
    return expr.value.numpy() if isinstance(expr, Constant) else None


def scalar_const(expr) -> float | None:
    v = const_value(expr)
    return float(v.reshape(-1)[0]) if v is not None and v.size == 1 else None


def shape_of(expr) -> list[int]:
    return static_dims(expr.ty)


def static_dims(ty, origin: str = "", error=ValueError) -> list[int]:
    """The dims of the Relax tensor type ``ty``; raises ``error`` (its message prefixed with
    ``origin``) if ``ty`` is not a tensor of known shape or has a dynamic dim (static shapes
    only). The passes (``shape_of``) and the AOT lowering (``runtime.program``, which raises its
    ``AotLoweringError``) read shapes alike."""
    where = f"{origin}: " if origin else ""
    if not isinstance(ty, relax.TensorType) or ty.shape is None:
        raise error(f"{where}expected a tensor of known shape, got {ty}")
    dims = []
    for d in ty.shape.values:
        if not isinstance(d, tvm.tirx.IntImm):
            raise error(f"{where}dynamic shape {ty.shape} is not supported (static shapes only)")
        dims.append(int(d))
    return dims


@dataclass
class ActQuantMatch:
    x: relax.Expr          # the float tensor being quantized
    per_token: bool        # absmax over the last axis (True) or the whole tensor


class ActQuantPattern:
    """Per-token (or per-tensor) absmax int8 fake-quantizer, in both common spellings."""

    def __init__(self):
        self.x = wildcard()
        self.amax = is_op("relax.max")(is_op("relax.abs")(self.x))
        amax_c = is_op("relax.clip")(self.amax, wildcard(), wildcard()) | is_op("relax.maximum")(self.amax, is_const()) | self.amax
        self.s_const = is_const()
        self.s = is_op("relax.divide")(amax_c, self.s_const) | is_op("relax.multiply")(amax_c, self.s_const)
        self.r_const = is_const()
        self.r_num, self.r_mul = is_const(), is_const()      # 127 * (1 / amax), torch's reciprocal
        self.r = (is_op("relax.divide")(self.r_const, amax_c)
                  | is_op("relax.multiply")(is_op("relax.divide")(self.r_num, amax_c), self.r_mul))
        scaled = is_op("relax.divide")(self.x, self.s) | is_op("relax.multiply")(self.x, self.r)
        self.q = is_op("relax.clip")(is_op("relax.round")(scaled), wildcard(), wildcard())
        self.root = is_op("relax.multiply")(self.q, self.s) | is_op("relax.divide")(self.q, self.r)

    def match(self, expr, var2val) -> ActQuantMatch | None:
        m = self.root.extract_matched_expr(expr, var2val)
        if m is None:
            return None
        lo, hi = _clip_bounds(m[self.q])
        if (lo, hi) != (-128.0, 127.0):
            return None
        if self.s_const in m:
            c = scalar_const(m[self.s_const])
        elif self.r_const in m:
            c = scalar_const(m[self.r_const])
        else:
            num, mul = scalar_const(m[self.r_num]), scalar_const(m[self.r_mul])
            c = None if num is None or mul is None else num * mul
        if c is None or not (np.isclose(c, 127.0) or np.isclose(c, 1 / 127.0)):
            return None
        amax = m[self.amax]
        axis = amax.attrs.axis
        rank = len(shape_of(m[self.x]))
        if axis is None or len(axis) == rank:
            return ActQuantMatch(m[self.x], per_token=False)
        if len(axis) == 1 and int(axis[0]) in (-1, rank - 1) and amax.attrs.keepdims:
            return ActQuantMatch(m[self.x], per_token=True)
        return None


class Lookup:
    """Follows variables to their bound values inside one function."""

    def __init__(self, func: relax.Function):
        self.var2val = relax.analysis.get_var2val(func)
        self.bindings = [(b.var, b.value) for block in func.body.blocks for b in block.bindings]
        self.result = func.body.body
        self.uses: dict = {}
        for value in list(self.var2val.values()) + [func.body.body]:
            for var in relax.analysis.free_vars(value):
                self.uses[var] = self.uses.get(var, 0) + 1

    def _view_source(self, var):
        v = self.var2val.get(var)
        if isinstance(v, relax.Call) and isinstance(v.op, tvm.ir.Op) and v.op.name in VIEW_OPS \
                and isinstance(v.args[0], relax.Var):
            return v.args[0]
        return None

    def dead_after(self, var, call) -> bool:
        """True when nothing reads ``var`` -- or any view sharing its storage -- after ``call``
        (the binding value), so a kernel may update it in place."""
        index = next((i for i, (_, val) in enumerate(self.bindings) if val.same_as(call)), None)
        if index is None:
            return False
        root = var
        while self._view_source(root) is not None:
            root = self._view_source(root)
        aliases = {root}
        for bvar, _ in self.bindings:           # views of the storage, in binding order
            src = self._view_source(bvar)
            if src is not None and src in aliases:
                aliases.add(bvar)
        if any(a in aliases for a in relax.analysis.free_vars(self.result)):
            return False
        for bvar, val in self.bindings[index + 1:]:
            if bvar in aliases:
                continue
            if any(v in aliases for v in relax.analysis.free_vars(val)):
                return False
        return True

    def single_use_chain(self, expr) -> relax.Expr | None:
        """Like :meth:`strip_views`, but None when any variable on the way has another user."""
        while True:
            if isinstance(expr, relax.Var) and self.uses.get(expr, 0) != 1:
                return None
            v = self.value(expr)
            if isinstance(v, relax.Call) and isinstance(v.op, tvm.ir.Op) and v.op.name in VIEW_OPS:
                expr = v.args[0]
                continue
            return expr

    def value(self, expr):
        while isinstance(expr, relax.Var) and expr in self.var2val:
            expr = self.var2val[expr]
        return expr

    def call(self, expr, op_name: str) -> relax.Call | None:
        v = self.value(expr)
        if isinstance(v, relax.Call) and isinstance(v.op, tvm.ir.Op) and v.op.name == op_name:
            return v
        return None

    def strip_views(self, expr):
        """Skip reshape/broadcast/expand chains; returns the first non-view producer expression."""
        while True:
            v = self.value(expr)
            if isinstance(v, relax.Call) and isinstance(v.op, tvm.ir.Op) and v.op.name in VIEW_OPS:
                expr = v.args[0]
                continue
            return expr


@dataclass
class TernaryWeight:
    codes: np.ndarray      # int8 [N, K] in {-1, 0, 1}
    alpha: np.ndarray      # float32 [N]
    per_channel: bool


def ternary_decompose(w: np.ndarray, channel_axis: int) -> TernaryWeight | None:
    """Split a constant into ternary codes and per-channel scales, or None if it is not ternary.

    ``channel_axis`` indexes the output channels; the result's codes are ``[N, K]`` with K the
    flattened remaining axes (in their original order).
    """
    if w.dtype.kind != "f" or w.ndim < 1:
        return None
    mat = np.moveaxis(np.asarray(w, dtype=np.float64), channel_axis, 0).reshape(w.shape[channel_axis], -1)
    mag = np.abs(mat)
    alpha = mag.max(axis=1)
    nz = mag > 0
    ref = np.broadcast_to(alpha[:, None], mag.shape)
    if not np.all(np.abs(mag[nz] - ref[nz]) <= TERNARY_RTOL * ref[nz]):
        return None
    codes = np.where(nz, np.sign(mat), 0).astype(np.int8)
    nonzero_alpha = alpha[alpha > 0]
    per_channel = bool(nonzero_alpha.size and np.ptp(nonzero_alpha) > TERNARY_RTOL * nonzero_alpha.max())
    return TernaryWeight(codes, alpha.astype(np.float32), per_channel)


def per_tensor_ternary(expr, d: int) -> tuple[np.ndarray, float] | None:
    """``(codes int8[d], alpha)`` when ``expr`` is a constant vector ``alpha * codes`` (one scale)."""
    if not isinstance(expr, Constant):
        return None
    v = expr.value.numpy().reshape(1, d)
    tw = ternary_decompose(v, channel_axis=0)
    return None if tw is None else (tw.codes.reshape(d), float(tw.alpha[0]))


def matrix_const(expr) -> np.ndarray | None:
    """Value of a constant ``[K, N]`` matrix, also when batched matmul broadcasting wrote it as
    ``[1, ..., 1, K, N]`` (torch's ``matmul`` of a 3-D input by an expanded weight)."""
    v = const_value(expr)
    if v is None or v.ndim < 2 or any(d != 1 for d in v.shape[:-2]):
        return None
    return v.reshape(v.shape[-2:])
