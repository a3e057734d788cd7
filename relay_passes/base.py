"""Plumbing shared by the fusion passes: a mutator that emits kernel calls, and the pass wrapper."""

from __future__ import annotations

import re

import numpy as np
import tvm
import tvm_ffi
from tvm.ir.expr import Constant
from tvm import relax, tirx
from tvm.relax import PyExprMutator

from .matching import Lookup


class FusionError(ValueError):
    """A model violates a requirement of fusion (e.g. non-ternary weight in strict mode)."""


def c_identifier(name: str) -> str:
    return re.sub(r"[^0-9a-zA-Z_]", "_", name)


class KernelMutator(PyExprMutator):
    """Base for the fusion rewriters: subclasses override ``visit_call_`` and call ``emit_kernel``.

    Subclasses are decorated with ``@expr_functor.mutator`` (TVM forbids inheriting from a
    decorated class, so this base is left undecorated).

    ``self.lookup`` follows variables of the *original* function (rewrites match against it), and
    ``self.new(expr)`` maps an original expression to its rewritten counterpart.
    """

    def __init__(self, mod: tvm.IRModule):
        super().__init__(mod)
        self.mod = mod
        self.lookup: Lookup | None = None
        self.rewrites = 0

    def new(self, expr):
        return self.visit_expr(expr)

    def emit_kernel(self, func: tirx.PrimFunc, name: str, args, out_sinfo) -> relax.Var:
        """Add ``func`` to the module (deduplicated by name) and emit ``call_tir`` to it."""
        func = func.with_attr("global_symbol", c_identifier(name))
        gv = self._find_kernel(func, c_identifier(name))
        self.rewrites += 1
        return self.builder_.emit(relax.call_tir(gv, list(args), out_sinfo))

    def emit_kernel_inplace(self, func: tirx.PrimFunc, name: str, args, index: int,
                            out_sinfo) -> relax.Var:
        """Like :meth:`emit_kernel`, as ``call_tir_inplace`` writing into ``args[index]``
        (the caller has checked nothing reads that tensor afterwards)."""
        gv = self._find_kernel(func.with_attr("global_symbol", c_identifier(name)), c_identifier(name))
        self.rewrites += 1
        return self.builder_.emit(relax.call_tir_inplace(gv, list(args), [index], out_sinfo))

    def _find_kernel(self, func: tirx.PrimFunc, name: str) -> tvm.ir.GlobalVar:
        """The module's GlobalVar for ``func``: reused when an equal kernel exists, else added
        under ``name`` (suffixed when a different kernel already holds that name)."""
        mod = self.builder_.get()
        names = _names(mod)
        candidate, i = name, 0
        while candidate in names:
            gv = mod.get_global_var(candidate)
            if tvm_ffi.structural_equal(mod[gv].without_attr("global_symbol"),
                                       func.without_attr("global_symbol")):
                return gv
            i += 1
            candidate = f"{name}_{i}"
        return self.builder_.add_func(func.with_attr("global_symbol", candidate), candidate)

    def kernel_attrs(self, call: relax.Call) -> tuple[str, dict] | None:
        """``(kind, params)`` when ``call`` is a call_tir of one of our kernels."""
        if not is_kernel_call(call):
            return None
        gv = call.args[0]
        func = self.builder_.get()[gv] if gv.name_hint in _names(self.builder_.get()) else None
        if func is None or func.attrs is None or "fter.kind" not in func.attrs:
            return None
        return str(func.attrs["fter.kind"]), {k: str(v) for k, v in func.attrs["fter.params"].items()}

    def single_use_kernel(self, expr, kind: str):
        """``(call, params)`` when ``expr`` is (a view of) a ``kind`` kernel call used only here."""
        inner = self.lookup.single_use_chain(expr)
        if inner is None:
            return None
        call = self.lookup.value(inner)
        found = self.kernel_attrs(call)
        if found is None or found[0] != kind:
            return None
        return call, found[1]

    def kernel_behind_quantizer(self, q_expr, kind: str):
        """``(call, params)`` of a single-use ``kind`` kernel whose output reaches ``q_expr`` --
        the int8 codes of a ``quantize_act`` -- through that quantizer and views only."""
        item = self.lookup.value(q_expr)
        if not isinstance(item, relax.TupleGetItem) or item.index != 0:
            return None
        quant = self.lookup.value(item.tuple_value)
        found = self.kernel_attrs(quant)
        if found is None or found[0] != "quantize_act":
            return None
        return self.single_use_kernel(quant.args[1].fields[0], kind)

    def residual_matmul_behind(self, call: relax.Call, kind: str):
        """``(params, args, (kind_call, kind_params))`` when ``call`` is a ``ternary_matmul`` with
        the residual epilogue whose input is quantized from a single-use ``kind`` kernel (the
        tail of a block that a low-memory pass fuses into one kernel), else None."""
        found = self.kernel_attrs(call)
        if found is None or found[0] != "ternary_matmul" or found[1]["epilogue"] != "residual":
            return None
        args = list(call.args[1].fields)
        behind = self.kernel_behind_quantizer(args[0], kind)
        return None if behind is None else (found[1], args, behind)

    def run(self) -> tvm.IRModule:
        for gv, func in self.mod.functions_items():
            if isinstance(func, relax.Function):
                self.lookup = Lookup(func)
                self.builder_.update_func(gv, self.visit_expr(func))
        return relax.transform.DeadCodeElimination()(self.builder_.get())


KERNEL_CALL_OPS = ("relax.call_tir", "relax.call_tir_inplace")


def is_kernel_call(call) -> bool:
    """``call_tir`` or ``call_tir_inplace`` (the callee still has to be one of ours)."""
    return isinstance(call, relax.Call) and isinstance(call.op, tvm.ir.Op) and \
        call.op.name in KERNEL_CALL_OPS


def _names(mod: tvm.IRModule) -> set[str]:
    return {g.name_hint for g in mod.get_global_vars()}


def const(arr: np.ndarray) -> Constant:
    return relax.const(np.ascontiguousarray(arr))


def tensor_sinfo(shape, dtype: str) -> relax.TensorType:
    return relax.TensorType([int(d) for d in shape], dtype)


def rewrite_to_fixpoint(mutator_cls, mod: tvm.IRModule, max_rounds: int = 8) -> tvm.IRModule:
    """Run a ``KernelMutator`` until a round rewrites nothing: each round matches against the
    module as the previous one left it, so chained epilogues fold one link per round."""
    for _ in range(max_rounds):
        mutator = mutator_cls(mod)
        mod = mutator.run()
        if not mutator.rewrites:
            break
    return mod
