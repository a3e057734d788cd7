"""Rewrite activation quantizer + matmul with a ternary constant into quantize_act + ternary_matmul."""

from __future__ import annotations

import numpy as np
import tvm
from tvm import relax
from tvm.relax import expr_functor

from schedules import compute
from schedules.formats import pack

from .base import FusionError, KernelMutator, const, tensor_sinfo
from .matching import ActQuantPattern, matrix_const, shape_of, ternary_decompose


def emit_quantize(m: KernelMutator, x, per_token: bool):
    """Emit the int8 quantizer for ``x`` flattened to ``[T, K]``; returns ``(q, s)`` vars."""
    shape = shape_of(x)
    k = shape[-1]
    t = int(np.prod(shape[:-1]))
    x2 = x if len(shape) == 2 else m.builder_.emit(relax.op.reshape(x, (t, k)))
    kind = "quantize_act" if per_token else "quantize_act_tensor"
    func = (compute.quantize_act if per_token else compute.quantize_act_tensor)(t, k)
    qs = m.emit_kernel(func, compute.kernel_name(kind, t=t, k=k), [x2],
                       [tensor_sinfo((t, k), "int8"), tensor_sinfo((t,), "float32")])
    return m.builder_.emit(relax.TupleGetItem(qs, 0)), m.builder_.emit(relax.TupleGetItem(qs, 1))


def emit_ternary_matmul(m: KernelMutator, q, s, weight, bias: np.ndarray, fmt: str,
                        epilogue: str = "none", res=None):
    """Emit ``ternary_matmul`` on quantized ``(q, s)`` with a :class:`TernaryWeight`."""
    t, k = shape_of(q)
    n = weight.codes.shape[0]
    args = [q, s, const(pack(weight.codes, fmt)), const(weight.alpha.astype(np.float32)),
            const(bias.astype(np.float32))]
    if res is not None:
        args.append(res)
    name = compute.kernel_name("ternary_matmul", t=t, k=k, n=n, fmt=fmt, epilogue=epilogue)
    return m.emit_kernel(compute.ternary_matmul(t, k, n, fmt, epilogue), name, args,
                         tensor_sinfo((t, n), "float32"))


@expr_functor.mutator
class _Rewriter(KernelMutator):
    def __init__(self, mod, fmt: str, strict: bool):
        super().__init__(mod)
        self.fmt = fmt
        self.strict = strict
        self.quant = ActQuantPattern()

    def visit_call_(self, call: relax.Call):
        if not (isinstance(call.op, tvm.ir.Op) and call.op.name == "relax.matmul"):
            return super().visit_call_(call)
        lhs, rhs = call.args
        w = matrix_const(rhs)
        if w is None:
            return super().visit_call_(call)
        act = self.quant.match(self.lookup.strip_views(lhs), self.lookup.var2val)
        if act is None:
            return super().visit_call_(call)
        weight = ternary_decompose(w, channel_axis=1)   # rhs is [K, N]
        if weight is None:
            if self.strict:
                source = getattr(lhs, "name", "?")
                raise FusionError(f"matmul fed by {source} has a quantized input but its weight "
                                  f"{list(w.shape)} is not ternary (strict mode)")
            return super().visit_call_(call)
        in_shape = shape_of(lhs)
        if shape_of(act.x)[-1] != in_shape[-1]:
            return super().visit_call_(call)
        q, s = emit_quantize(self, self.new(act.x), act.per_token)
        y = emit_ternary_matmul(self, q, s, weight, np.zeros(weight.codes.shape[0], np.float32),
                                self.fmt)
        out_shape = shape_of(call)
        return y if out_shape == shape_of(y) else relax.op.reshape(y, out_shape)


@tvm.transform.module_pass(opt_level=0, name="FuseTernaryMatmul")
class FuseTernaryMatmul:
    """Quantizer + matmul on a ternary constant -> ``quantize_act`` + ``ternary_matmul`` kernels.

    Weights are recognised from their values (per-channel or per-tensor {-a, 0, +a}) and packed in
    ``fmt`` ("b2" or "b3"). With ``strict=True`` a quantized matmul on a non-ternary constant is an
    error naming the node.
    """

    def __init__(self, fmt: str = "b3", strict: bool = False):
        self.fmt = fmt
        self.strict = strict

    def transform_module(self, mod: tvm.IRModule, _ctx) -> tvm.IRModule:
        return _Rewriter(mod, self.fmt, self.strict).run()


def reemit_ternary_matmul(m: KernelMutator, call: relax.Call, params: dict, *, alpha=None,
                          bias=None, epilogue: str | None = None, res=None):
    """Emit a copy of the ternary_matmul ``call`` with replaced scales, bias or epilogue."""
    q, s, w, old_alpha, old_bias = list(m.new(call.args[1]).fields)[:5]
    t, k, n = int(params["t"]), int(params["k"]), int(params["n"])
    fmt = params["fmt"]
    epilogue = epilogue or params["epilogue"]
    args = [q, s, w,
            const(alpha.astype(np.float32)) if alpha is not None else old_alpha,
            const(bias.astype(np.float32)) if bias is not None else old_bias]
    if res is not None:
        args.append(res)
    name = compute.kernel_name("ternary_matmul", t=t, k=k, n=n, fmt=fmt, epilogue=epilogue)
    return m.emit_kernel(compute.ternary_matmul(t, k, n, fmt, epilogue), name, args,
                         tensor_sinfo((t, n), "float32"))


def kernel_const(call: relax.Call, index: int) -> np.ndarray:
    """Value of the ``index``-th (constant) argument of a call_tir."""
    return call.args[1].fields[index].value.numpy()
