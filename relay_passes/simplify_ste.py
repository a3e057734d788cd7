"""Rewrite straight-through-estimator residues ``a + (b - a)`` to ``b``."""

from __future__ import annotations

import tvm
from tvm import relax
from tvm.relax.dpl import is_op, rewrite_call, wildcard


@tvm.transform.module_pass(opt_level=0, name="SimplifySTE")
class SimplifySTE:
    """``x + (q - x)`` is how training code writes ``q`` with an identity gradient (``detach`` is
    gone after export). Folding it exactly to ``q`` before constant folding keeps folded ternary
    weights exact, where float evaluation of ``x + (q - x)`` could leave one-ulp noise."""

    def __init__(self):
        self.a = wildcard()
        self.b = wildcard()
        self.pattern = (is_op("relax.add")(self.a, is_op("relax.subtract")(self.b, self.a))
                        | is_op("relax.add")(is_op("relax.subtract")(self.b, self.a), self.a))

    def transform_module(self, mod: tvm.IRModule, _ctx) -> tvm.IRModule:
        for gv, func in mod.functions_items():
            if isinstance(func, relax.Function):
                mod[gv] = rewrite_call(self.pattern, lambda _call, m: m[self.b], func)
        return mod
