"""Split qkv projection + int8 attention so only int8 K and V are ever stored (low-memory targets)."""

from __future__ import annotations

import tvm
from tvm import relax
from tvm.relax import expr_functor

from schedules import compute

from .base import KernelMutator, const, tensor_sinfo
from .fuse_ternary_matmul import kernel_const
from .matching import shape_of


@expr_functor.mutator
class _Rewriter(KernelMutator):
    def visit_call_(self, call: relax.Call):
        found = self.kernel_attrs(call)
        if found is None or found[0] != "int8_attention_qkv":
            return super().visit_call_(call)
        att = found[1]
        n, h, hd = int(att["n"]), int(att["h"]), int(att["hd"])
        d = h * hd
        proj = self.single_use_kernel(call.args[1].fields[0], "ternary_matmul")
        if proj is None or proj[1]["epilogue"] != "none" or int(proj[1]["n"]) != 3 * d:
            return super().visit_call_(call)
        tmm, p = proj
        t, k, fmt = int(p["t"]), int(p["k"]), p["fmt"]
        q, s = (self.new(a) for a in list(tmm.args[1].fields)[:2])
        w, alpha, bias = (kernel_const(tmm, i) for i in (2, 3, 4))
        # V: projected twice (channel absmax, then quantize) -- never a float [t, d] tensor
        vq = self.emit_kernel(
            compute.ternary_matmul_channels(t, k, d, fmt),
            compute.kernel_name("ternary_matmul_channels", t=t, k=k, n=d, fmt=fmt),
            [q, s, const(w[2 * d:]), const(alpha[2 * d:]), const(bias[2 * d:])],
            [tensor_sinfo((t, d), "int8"), tensor_sinfo((d,), "float32")])
        # K: quantized per (token, head) as each projected row is produced
        kc = self.emit_kernel(
            compute.ternary_matmul_heads(t, k, h, hd, fmt),
            compute.kernel_name("ternary_matmul_heads", t=t, k=k, h=h, hd=hd, fmt=fmt),
            [q, s, const(w[d:2 * d]), const(alpha[d:2 * d]), const(bias[d:2 * d])],
            [tensor_sinfo((t, d), "int8"), tensor_sinfo((t, h), "float32")])
        codes = [self.builder_.emit(relax.TupleGetItem(x, i)) for x in (kc, vq) for i in (0, 1)]
        # Q: projected one row at a time inside the attention kernel
        out = self.emit_kernel(
            compute.int8_attention_q(n, h, hd, fmt, float(att["scale"])),
            compute.kernel_name("int8_attention_q", n=n, h=h, hd=hd, fmt=fmt),
            [q, s, const(w[:d]), const(alpha[:d]), const(bias[:d]), *codes],
            tensor_sinfo((n, d), "float32"))
        return out if shape_of(out) == shape_of(call) else relax.op.reshape(out, shape_of(call))


@tvm.transform.module_pass(opt_level=0, name="SplitQkvAttention")
class SplitQkvAttention:
    """``int8_attention_qkv(ternary_matmul(x, W_qkv))`` -> V projection quantized per channel
    (two passes), K projection quantized per (token, head), and attention that projects Q one
    row at a time.

    Same arithmetic; the [n, 3d] float projection (the ViT's largest activation) is replaced by
    int8 K and V, for n*d*d extra MACs (the second V pass).
    """

    def transform_module(self, mod: tvm.IRModule, _ctx) -> tvm.IRModule:
        return _Rewriter(mod).run()
