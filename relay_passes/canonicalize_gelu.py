"""Rewrite GELU written out with erf (as ONNX exports it) to ``relax.nn.gelu``."""

from __future__ import annotations

import math

import numpy as np
import tvm
from tvm import relax
from tvm.relax.dpl import is_const, is_op, rewrite_call, wildcard

from .matching import scalar_const


@tvm.transform.module_pass(opt_level=0, name="CanonicalizeGelu")
class CanonicalizeGelu:
    """``x * (erf(x / sqrt2) + 1) * 0.5`` (and the ``x * 0.5 * (...)`` / ``* (1/sqrt2)``
    orders) -> ``gelu(x)``, so the epilogue fusion sees one GELU whatever the exporter wrote."""

    def __init__(self):
        self.x, self.c_one, self.c_half = wildcard(), is_const(), is_const()
        self.c_div, self.c_mul = is_const(), is_const()      # x / sqrt2  or  x * (1 / sqrt2)
        inner = is_op("relax.divide")(self.x, self.c_div) | is_op("relax.multiply")(self.x, self.c_mul)
        one_plus = (is_op("relax.add")(is_op("relax.erf")(inner), self.c_one)
                    | is_op("relax.add")(self.c_one, is_op("relax.erf")(inner)))
        self.pattern = (is_op("relax.multiply")(is_op("relax.multiply")(self.x, one_plus), self.c_half)
                        | is_op("relax.multiply")(is_op("relax.multiply")(self.x, self.c_half), one_plus))

    def _rewrite(self, call, m):
        one, half = scalar_const(m[self.c_one]), scalar_const(m[self.c_half])
        if self.c_div in m:
            ok = np.isclose(scalar_const(m[self.c_div]) or 0.0, math.sqrt(2.0))
        else:
            ok = np.isclose(scalar_const(m[self.c_mul]) or 0.0, 1 / math.sqrt(2.0))
        if not ok or one is None or half is None or not (np.isclose(one, 1.0) and np.isclose(half, 0.5)):
            return call
        return relax.op.nn.gelu(m[self.x])

    def transform_module(self, mod: tvm.IRModule, _ctx) -> tvm.IRModule:
        for gv, func in mod.functions_items():
            if isinstance(func, relax.Function):
                mod[gv] = rewrite_call(self.pattern, self._rewrite, func)
        return mod
