"""Feed int8 attention straight from the fused qkv projection and write the merged-heads layout."""

from __future__ import annotations

import numpy as np
import tvm
from tvm import relax
from tvm.relax import expr_functor

from schedules import compute

from .base import KernelMutator, tensor_sinfo
from .matching import shape_of, scalar_const


def _perm(call) -> list[int] | None:
    return None if call is None or call.attrs.axes is None else [int(a) for a in call.attrs.axes]


@expr_functor.mutator
class _Rewriter(KernelMutator):
    def _qkv_source(self, args):
        """``Y`` when ``q, k, v = take(permute(reshape(Y, [1, n, 3, h, hd]), [2,0,3,1,4]), 0|1|2)``."""
        source = None
        for index, arg in enumerate(args):
            take = self.lookup.call(self.lookup.strip_views(arg), "relax.take")
            if take is None or int(take.attrs.axis) != 0 or scalar_const(take.args[1]) != index:
                return None
            perm = self.lookup.call(take.args[0], "relax.permute_dims")
            if _perm(perm) != [2, 0, 3, 1, 4]:
                return None
            split = self.lookup.call(perm.args[0], "relax.reshape")
            if split is None or source not in (None, split.args[0]):
                return None
            source = split.args[0]
            if shape_of(split)[0] != 1 or shape_of(split)[2] != 3:
                return None
        return source

    def visit_call_(self, call: relax.Call):
        if not (isinstance(call.op, tvm.ir.Op) and call.op.name == "relax.reshape"):
            return super().visit_call_(call)
        merge = self.lookup.call(call.args[0], "relax.permute_dims")
        if _perm(merge) != [0, 2, 1, 3]:
            return super().visit_call_(call)
        found = self.single_use_kernel(merge.args[0], "int8_attention")
        if found is None:
            return super().visit_call_(call)
        att, params = found
        b, h, n, hd = (int(params[x]) for x in ("b", "h", "n", "hd"))
        qkv = self._qkv_source(list(att.args[1].fields))
        if b != 1 or qkv is None or int(np.prod(shape_of(qkv))) != n * 3 * h * hd:
            return super().visit_call_(call)
        scale = float(params["scale"])
        y = self.builder_.emit(relax.op.reshape(self.new(qkv), (n, 3 * h * hd)))
        name = compute.kernel_name("int8_attention_qkv", n=n, h=h, hd=hd)
        out = self.emit_kernel(compute.int8_attention_qkv(n, h, hd, scale), name, [y],
                               tensor_sinfo((n, h * hd), "float32"))
        return relax.op.reshape(out, shape_of(call))


@tvm.transform.module_pass(opt_level=0, name="FuseAttentionLayout")
class FuseAttentionLayout:
    """``merge_heads(int8_attention(split_heads(qkv)))`` (batch 1) -> ``int8_attention_qkv(qkv)``.

    The head split (reshape, permute, three takes) and merge (permute, reshape) are copies of the
    whole activation; folding them into the kernel's indexing removes four [n, 3d]-sized buffers.
    """

    def transform_module(self, mod: tvm.IRModule, _ctx) -> tvm.IRModule:
        return _Rewriter(mod).run()
