"""Rewrite a LayerNorm written out as mean/variance arithmetic to ``relax.nn.layer_norm``."""

from __future__ import annotations

import numpy as np
import tvm
from tvm import relax
from tvm.relax.dpl import is_const, is_op, rewrite_call, wildcard

from .matching import scalar_const, shape_of


def _last_axis(call: relax.Call) -> bool:
    """A reduction over the last axis only, keeping it (``mean``/``variance`` with keepdims)."""
    rank = len(shape_of(call.args[0]))
    axes = call.attrs.axis
    return axes is not None and len(axes) == 1 and int(axes[0]) % rank == rank - 1 and \
        bool(call.attrs.keepdims)


@tvm.transform.module_pass(opt_level=0, name="CanonicalizeLayerNorm")
class CanonicalizeLayerNorm:
    """``(x - mean(x)) / sqrt(var(x) + eps)`` (or ``* rsqrt(...)``; the variance as
    ``mean((x - mean)^2)``, ``mean(d * d)`` or ``variance(x)``) over the last axis ->
    ``layer_norm(x, 1, 0, eps)``; a following ``* gamma`` and ``+ beta`` (constant vectors) move
    into the layer_norm, so a ternary LayerNorm written by hand fuses like the others."""

    def __init__(self):
        self.x, self.eps, self.two = wildcard(), is_const(), is_const()
        self.mean = is_op("relax.mean")(self.x)
        self.var_op = is_op("relax.variance")(self.x)
        d1, d2 = is_op("relax.subtract")(self.x, self.mean), is_op("relax.subtract")(self.x, self.mean)
        self.sq_mean = is_op("relax.mean")(is_op("relax.power")(d1, self.two)
                                           | is_op("relax.multiply")(d1, d1))
        var_eps = is_op("relax.add")(self.sq_mean | self.var_op, self.eps)
        self.pattern = (is_op("relax.divide")(d2, is_op("relax.sqrt")(var_eps))
                        | is_op("relax.multiply")(d2, is_op("relax.rsqrt")(var_eps)))
        # affine folding: layer_norm(x, g, b) * c -> layer_norm(x, g * c, b * c); + c -> b + c
        self.ln, self.c = is_op("relax.nn.layer_norm")(wildcard(), is_const(), is_const()), is_const()
        self.affine = is_op("relax.multiply")(self.ln, self.c) | is_op("relax.add")(self.ln, self.c)

    def _rewrite(self, call, m):
        checks = [_last_axis(m[self.mean])]
        if self.var_op in m:
            checks.append(_last_axis(m[self.var_op]))
        else:
            checks.append(_last_axis(m[self.sq_mean]))
            if self.two in m:
                checks.append(scalar_const(m[self.two]) == 2.0)
        eps = scalar_const(m[self.eps])
        if not all(checks) or eps is None or eps < 0:
            return call
        d = shape_of(m[self.x])[-1]
        ones, zeros = np.ones(d, np.float32), np.zeros(d, np.float32)
        return relax.op.nn.layer_norm(m[self.x], relax.const(ones), relax.const(zeros), axes=[-1],
                                      epsilon=eps)

    def _fold_affine(self, call, m):
        ln, c = m[self.ln], m[self.c].value.numpy()
        x, g, b = ln.args
        d = shape_of(x)[-1]
        if c.dtype != np.float32 or c.size not in (1, d) or (c.ndim and c.shape[-1] != c.size):
            return call   # only a scalar or a vector over the normalised axis
        c = np.broadcast_to(c.reshape(-1), (d,))
        g, b = g.value.numpy(), b.value.numpy()
        if call.op.name == "relax.multiply":
            g, b = g * c, b * c
        else:
            b = b + c
        return relax.op.nn.layer_norm(x, relax.const(g.astype(np.float32)),
                                      relax.const(b.astype(np.float32)), axes=ln.attrs.axes,
                                      epsilon=float(ln.attrs.epsilon))

    def transform_module(self, mod: tvm.IRModule, _ctx) -> tvm.IRModule:
        for gv, func in mod.functions_items():
            if isinstance(func, relax.Function):
                func = rewrite_call(self.pattern, self._rewrite, func)
                mod[gv] = rewrite_call(self.affine, self._fold_affine, func)
        return mod
