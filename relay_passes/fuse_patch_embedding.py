"""Fuse the whole token embedding (patch quantize + projection + cls + pos) into one kernel."""

from __future__ import annotations

import numpy as np
import tvm
from tvm import relax
from tvm.ir.expr import Constant
from tvm.relax import expr_functor

from schedules import compute
from schedules.compute import fp16

from .base import KernelMutator, const, tensor_sinfo
from .matching import shape_of

LAYOUT_OPS = ("relax.reshape", "relax.permute_dims")


@expr_functor.mutator
class _Rewriter(KernelMutator):
    def __init__(self, mod: tvm.IRModule):
        super().__init__(mod)
        self._concat_inputs = (None, set())

    def _tokens(self, expr):
        """``(patch ternary_matmul call, params)`` when ``expr`` is its output through a
        reshape/permute chain that leaves the [tokens, d] element order unchanged."""
        chain = []
        while True:
            if isinstance(expr, relax.Var) and self.lookup.uses.get(expr, 0) != 1:
                return None
            v = self.lookup.value(expr)
            if isinstance(v, relax.Call) and isinstance(v.op, tvm.ir.Op) and v.op.name in LAYOUT_OPS:
                chain.append(v)
                expr = v.args[0]
                continue
            break
        found = self.kernel_attrs(v)
        if found is None or found[0] != "ternary_matmul" or found[1]["epilogue"] != "none":
            return None
        index = np.arange(int(np.prod(shape_of(v)))).reshape(shape_of(v))
        for op in reversed(chain):   # replay the layout ops on element indices
            if op.op.name == "relax.reshape":
                index = index.reshape(shape_of(op))
            else:
                index = index.transpose([int(a) for a in op.attrs.axes])
        return (v, found[1]) if np.array_equal(index.reshape(-1), np.arange(index.size)) else None

    def _embedding(self, call: relax.Call):
        """``(prefix [k, d], patch-tokens expr, pos [k+n, d])`` for either embedding order:
        ``concat([cls, ..., tokens]) + pos`` (ViT/DeiT) or ``concat([cls, ..., tokens + pos])``
        (DeiT-III, no position embedding on the prefix tokens: zero rows). The prefix is one or
        more constant tokens (class; distillation; register tokens)."""
        op = call.op.name if isinstance(call.op, tvm.ir.Op) else None
        if op == "relax.add":
            for cat_expr, pos in (call.args, call.args[::-1]):
                cat = self.lookup.call(cat_expr, "relax.concat")
                fields = self._cls_concat(cat)
                if fields is not None and isinstance(pos, Constant):
                    d = shape_of(call)[-1]
                    return fields[0], fields[1], pos.value.numpy().reshape(-1, d)
        if op == "relax.concat":
            fields = self._cls_concat(call)
            add = None if fields is None else self.lookup.call(fields[1], "relax.add")
            if add is not None:
                for tokens, pos in (add.args, add.args[::-1]):
                    if isinstance(pos, Constant):
                        d = shape_of(call)[-1]
                        pos = pos.value.numpy().reshape(-1, d)
                        zeros = np.zeros((fields[0].shape[0], d), pos.dtype)
                        return fields[0], tokens, np.concatenate([zeros, pos])
        if op == "relax.add":   # no prefix tokens at all: ``tokens + pos``
            for tokens, pos in (call.args, call.args[::-1]):
                if isinstance(pos, Constant) and not isinstance(tokens, Constant) \
                        and self._tokens(tokens) is not None and not self._feeds_concat(call):
                    d = shape_of(call)[-1]
                    return np.zeros((0, d), np.float32), tokens, pos.value.numpy().reshape(-1, d)
        return None

    def _feeds_concat(self, call: relax.Call) -> bool:
        """Whether the value ``call`` binds is a field of a concat (``concat([cls, tokens +
        pos])``: that concat is the embedding, not this add). The values feeding a concat are
        collected once per function (``self.lookup`` changes with it)."""
        if self._concat_inputs[0] is not self.lookup:
            values = set()
            for _, value in self.lookup.bindings:
                if self.lookup.call(value, "relax.concat") is not None:
                    fields = self.lookup.value(value.args[0])
                    if isinstance(fields, relax.Tuple):
                        values.update(self.lookup.var2val[f] for f in fields.fields
                                      if f in self.lookup.var2val)
            self._concat_inputs = (self.lookup, values)
        return call in self._concat_inputs[1]

    def _cls_concat(self, cat):
        """``(prefix [k, d] array, tokens expr)`` of ``concat([c1, .., ck, tokens], axis=1)``
        with constant ``c_i``."""
        if cat is None or int(cat.attrs.axis) not in (1, -2):
            return None
        fields = list(self.lookup.value(cat.args[0]).fields)
        if len(fields) < 2 or not all(isinstance(f, Constant) for f in fields[:-1]):
            return None
        d = shape_of(cat)[-1]
        prefix = np.concatenate([f.value.numpy().reshape(-1, d) for f in fields[:-1]])
        return prefix.astype(np.float32), fields[-1]

    def visit_call_(self, call: relax.Call):
        emb = self._embedding(call)
        found = None if emb is None else self._tokens(emb[1])
        if found is None:
            return super().visit_call_(call)
        cls, _, pos = emb
        tmm, params = found
        k = cls.shape[0]
        quant = self.lookup.value(self.lookup.value(tmm.args[1].fields[0]).tuple_value)
        qk = self.kernel_attrs(quant)
        if qk is None or qk[0] != "quantize_patches" or int(qk[1]["b"]) != 1:
            return super().visit_call_(call)
        c, gh, gw, p = (int(qk[1][x]) for x in ("c", "gh", "gw", "p"))
        d = int(params["n"])
        if shape_of(call) != [1, gh * gw + k, d] or pos.shape != (gh * gw + k, d):
            return super().visit_call_(call)
        cls, pos = (cls.reshape(d) if k == 1 else cls), pos.astype(np.float32)
        # cls and pos are fp16 by the model definition: stored so when that is lossless
        embed = fp16.F16_BITS if fp16.fp16_exact(cls) and fp16.fp16_exact(pos) else "float32"
        if embed == fp16.F16_BITS:
            cls, pos = fp16.to_f16_bits(cls), fp16.to_f16_bits(pos)
        args = [self.new(quant.args[1].fields[0]), *(self.new(a) for a in list(tmm.args[1].fields)[2:5]),
                *([const(cls)] if k else []), const(pos)]
        more = {} if k == 1 else {"prefix": k}
        name = compute.kernel_name("patch_embed", c=c, gh=gh, gw=gw, p=p, d=d, fmt=params["fmt"],
                                   embed=embed, **more)
        x = self.emit_kernel(compute.patch_embed(c, gh, gw, p, d, params["fmt"], embed, k), name,
                             args, tensor_sinfo((gh * gw + k, d), "float32"))
        return relax.op.reshape(x, shape_of(call))


@tvm.transform.module_pass(opt_level=0, name="FusePatchEmbedding")
class FusePatchEmbedding:
    """``concat([cls, .., tokens]) + pos``, ``concat([cls, .., tokens + pos])`` (one or more
    constant prefix tokens) or ``tokens + pos`` (none) with
    ``tokens = layout(ternary_matmul(quantize_patches(img)))`` -> ``patch_embed`` (batch 1; the
    layout chain must keep the token order). The int8 patch matrix, the projected tokens and the
    concatenation copy all disappear (low-memory targets)."""

    def transform_module(self, mod: tvm.IRModule, _ctx) -> tvm.IRModule:
        return _Rewriter(mod).run()
