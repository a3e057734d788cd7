"""Fold the im2col of a stride == kernel patch embedding into the int8 quantizer that reads it."""

from __future__ import annotations

import tvm
from tvm import relax
from tvm.relax import expr_functor

from schedules import compute

from .base import KernelMutator, tensor_sinfo
from .matching import shape_of


@expr_functor.mutator
class _Rewriter(KernelMutator):
    def visit_call_(self, call: relax.Call):
        found = self.kernel_attrs(call)
        if found is None or found[0] != "quantize_act":
            return super().visit_call_(call)
        perm = self.lookup.call(self.lookup.strip_views(call.args[1].fields[0]), "relax.permute_dims")
        if perm is None or [int(a) for a in perm.attrs.axes or []] != [0, 2, 4, 1, 3, 5]:
            return super().visit_call_(call)
        split = self.lookup.call(perm.args[0], "relax.reshape")
        if split is None:
            return super().visit_call_(call)
        image = split.args[0]
        b, c, gh, p, gw, p2 = shape_of(split)
        if p != p2 or shape_of(image) != [b, c, gh * p, gw * p]:
            return super().visit_call_(call)
        t, f = b * gh * gw, c * p * p
        name = compute.kernel_name("quantize_patches", b=b, c=c, gh=gh, gw=gw, p=p)
        return self.emit_kernel(compute.quantize_patches(b, c, gh, gw, p), name, [self.new(image)],
                                [tensor_sinfo((t, f), "int8"), tensor_sinfo((t,), "float32")])


@tvm.transform.module_pass(opt_level=0, name="FusePatchQuantize")
class FusePatchQuantize:
    """``quantize_act(reshape(permute(reshape(img, [B,C,gh,p,gw,p]), [0,2,4,1,3,5])))`` ->
    ``quantize_patches(img)``: the float patch matrix (as large as the image) is never built."""

    def transform_module(self, mod: tvm.IRModule, _ctx) -> tvm.IRModule:
        return _Rewriter(mod).run()
