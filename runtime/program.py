"""The lowered Relax `main` as a flat program: `extract_program` walks it into an `AotProgram` --
buffers, tensor views over them and the kernel calls in order -- which the arena planner
(`runtime.arena`) places and the C emitter (`runtime.aot`) writes out.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import tvm
import tvm_ffi
from tvm import relax, tirx

from relay_passes.matching import static_dims
from schedules.compute.kernel_base import WEIGHT_READS_ATTR

from .split_workers import SCRATCH_ATTR, STAGES_ATTR

KERNEL_SYMBOL_PREFIX = "__tvm_ffi_"  # TVM's MakePackedAPI: a PrimFunc's C entry is this + its symbol
GenericConst = tvm.ir.expr.GenericConst  # a Relax tensor constant (`R.const`, weights)


class AotLoweringError(ValueError):
    """The lowered `main` contains something the AOT executor cannot turn into static C."""


def kernel_symbol(func: tirx.PrimFunc) -> str:
    """The C symbol of a PrimFunc's packed entry point, `__tvm_ffi_<global_symbol>`."""
    return KERNEL_SYMBOL_PREFIX + str(func.attrs["global_symbol"])


@dataclass(frozen=True)
class Buffer:
    """A region of memory, by kind:

    - "arena": one tensor allocation, placed in the arena by the planner. `storage` names the
      `alloc_storage` it came from (None for `R.builtin.alloc_tensor`), at `storage_offset`;
    - "storage": an `alloc_storage` block (only placed when planning by storage);
    - "input" / "output": the caller's buffers; "const": a weight array.
    """

    name: str
    kind: str
    nbytes: int
    origin: str  # the Relax variable or constant it comes from, for messages and comments
    storage: str | None = None
    storage_offset: int = 0


@dataclass(frozen=True)
class TensorView:
    """A tensor = a typed, shaped window on a buffer at a byte offset."""

    name: str
    buffer: str
    offset: int
    shape: tuple[int, ...]
    dtype: str
    origin: str

    @property
    def nbytes(self) -> int:
        return int(np.prod(self.shape, dtype=np.int64)) * tvm_ffi.dtype(self.dtype).itemsize


@dataclass(frozen=True)
class KernelCall:
    """One packed call in `main`: PrimFunc `name` (C entry `symbol`) on tensors `args`."""

    index: int
    name: str
    symbol: str
    args: tuple[str, ...]
    outputs: tuple[str, ...]  # args that were freshly allocated for this call
    # split kernels (runtime.split_workers): per stage the extent of its split loop (0: whole);
    # empty for kernels that take no range
    stages: tuple[int, ...] = ()
    # how many times the kernel reads its weights per call (WEIGHT_READS_ATTR; 1 where unset)
    weight_reads: int = 1


@dataclass
class AotProgram:
    """Everything the arena planner and the C emitter need from the lowered `main`."""

    buffers: dict[str, Buffer] = field(default_factory=dict)
    tensors: dict[str, TensorView] = field(default_factory=dict)
    calls: list[KernelCall] = field(default_factory=list)
    constants: list[np.ndarray] = field(default_factory=list)  # buffer "w<i>" holds constants[i]
    input: str = ""  # tensor name
    output: str = ""  # tensor name
    copy_output: bool = False  # True when the output lives elsewhere and is copied at the end

    def live_ranges(self) -> dict[str, tuple[int, int]]:
        """[first, last] step using each "arena" buffer; steps are calls, plus the final copy.

        A buffer is used by a step when any view of it is an argument (or the copied output).
        Buffers no step uses are left out.
        """
        ranges: dict[str, tuple[int, int]] = {}

        def touch(tensor: str, step: int) -> None:
            buf = self.tensors[tensor].buffer
            if self.buffers[buf].kind != "arena":
                return
            lo, hi = ranges.get(buf, (step, step))
            ranges[buf] = (min(lo, step), max(hi, step))

        for call in self.calls:
            for arg in call.args:
                touch(arg, call.index)
        if self.copy_output:
            touch(self.output, len(self.calls))
        return ranges

    @property
    def num_steps(self) -> int:
        return len(self.calls) + (1 if self.copy_output else 0)


def extract_program(lowered: tvm.IRModule) -> AotProgram:
    """Walk the lowered `main` into an `AotProgram`.

    Binding forms handled (all others raise `AotLoweringError` naming the binding):
      - `s = R.memory.alloc_storage(R.shape([n]), ...)`: a "storage" buffer of n bytes;
      - `t = R.memory.alloc_tensor(s, offset, R.shape(...), dtype, ...)`: an "arena" buffer of
        the tensor's size, remembering `s` and the offset (the planner may keep or split them);
      - `t = R.builtin.alloc_tensor(R.shape(...), dtype, ...)`: an "arena" buffer (this is how
        StaticPlanBlockMemory leaves the function's output, which then becomes the caller's);
      - `_ = prim_func(args...)`: a kernel call, args being tensors or constants;
      - `v = R.reshape(t, shape)`, `v = R.memory.view(t, ...)`: a view, no copy;
      - `v = w`, `v = (a, b)`, `v = tup[i]`, `v = R.const(...)`;
      - `R.memory.kill_storage/kill_tensor`: ignored (the arena planner owns lifetimes).
    """
    return _MainWalker(lowered).walk()


class _MainWalker:
    def __init__(self, mod: tvm.IRModule):
        self.mod = mod
        self.func = mod["main"]
        self.prog = AotProgram()
        self.env: dict = {}  # relax Var -> tensor name | ("storage", buffer) | tuple
        self.fresh: set[str] = set()  # allocated tensors not yet passed to any kernel
        self.consts: list[tuple[GenericConst, str]] = []

    def walk(self) -> AotProgram:
        if len(self.func.params) != 1:
            raise AotLoweringError(f"main must take exactly one tensor, got {len(self.func.params)}")
        param = self.func.params[0]
        self._check_float32(param, "input")
        buf = self._buffer("input", "input", self._tensor_nbytes(param), param.name)
        self.env[param] = self.prog.input = self._view(buf, 0, param, param.name)
        body = self.func.body
        for block in body.blocks:
            for binding in block.bindings:
                self._binding(binding)
        self._bind_output(body.body)
        self._check_no_writes_to_caller_data()
        return self.prog

    # -- helpers ------------------------------------------------------------------------------
    def _buffer(self, name: str, kind: str, nbytes: int, origin: str, **kw) -> str:
        self.prog.buffers[name] = Buffer(name, kind, nbytes, origin, **kw)
        return name

    def _new_name(self, prefix: str, kinds: tuple[str, ...]) -> str:
        return f"{prefix}{sum(b.kind in kinds for b in self.prog.buffers.values())}"

    def _view(self, buffer: str, offset: int, var_or_ty, origin: str) -> str:
        shape, dtype = self._static_shape(var_or_ty, origin)
        name = f"t{len(self.prog.tensors)}"
        self.prog.tensors[name] = TensorView(name, buffer, offset, shape, dtype, origin)
        return name

    @staticmethod
    def _static_shape(var_or_ty, origin: str) -> tuple[tuple[int, ...], str]:
        ty = var_or_ty.ty if isinstance(var_or_ty, (relax.Var, relax.Expr)) else var_or_ty
        return tuple(static_dims(ty, origin, AotLoweringError)), str(ty.dtype)

    def _tensor_nbytes(self, var) -> int:
        shape, dtype = self._static_shape(var, var.name)
        return int(np.prod(shape, dtype=np.int64)) * tvm_ffi.dtype(dtype).itemsize

    def _check_float32(self, var, what: str) -> None:
        shape, dtype = self._static_shape(var, f"{what} {getattr(var, 'name', '')}")
        if dtype != "float32":
            raise AotLoweringError(f"the model {what} must be float32, got {dtype}")

    def _int(self, expr, origin: str) -> int:
        if isinstance(expr, tvm.tirx.IntImm):
            return int(expr.value)
        raise AotLoweringError(f"{origin}: {expr} is not a compile-time integer")

    def _tensor(self, expr, origin: str) -> str:
        if isinstance(expr, GenericConst):
            return self._constant(expr, origin)
        value = self.env.get(expr) if isinstance(expr, relax.Var) else None
        if not isinstance(value, str):
            raise AotLoweringError(f"{origin}: argument {expr} is not a tensor")
        return value

    def _constant(self, const: GenericConst, origin: str) -> str:
        for seen, name in self.consts:  # a constant used twice is one weight array
            if seen.same_as(const):
                return name
        data = const.value.numpy()
        idx = len(self.prog.constants)
        self.prog.constants.append(data)
        buf = self._buffer(f"w{idx}", "const", data.nbytes, origin)
        name = self._view(buf, 0, const.ty, f"constant {idx}, first used by {origin}")
        self.consts.append((const, name))
        return name

    # -- bindings -----------------------------------------------------------------------------
    def _binding(self, binding) -> None:
        var, value = binding.var, getattr(binding, "value", None)
        where = f"binding `{var.name}`"
        if not isinstance(binding, relax.VarBinding):
            raise AotLoweringError(f"{where}: unsupported binding kind {type(binding).__name__}")
        if isinstance(value, relax.Call) and isinstance(value.op, relax.GlobalVar):
            self._kernel_call(value, where)
        elif isinstance(value, relax.Call) and isinstance(value.op, tvm.ir.Op):
            self._op_call(var, value, where)
        elif isinstance(value, relax.Call):
            raise AotLoweringError(f"{where}: call of {value.op} is not supported by the AOT "
                                   "executor (only PrimFuncs and memory operators)")
        elif isinstance(value, relax.Var):
            self.env[var] = self.env[value]
        elif isinstance(value, relax.Tuple):
            self.env[var] = tuple(self._field(f, where) for f in value.fields)
        elif isinstance(value, relax.TupleGetItem):
            self.env[var] = self.env[value.tuple_value][value.index]
        elif isinstance(value, GenericConst):
            self.env[var] = self._constant(value, where)
        else:
            raise AotLoweringError(f"{where}: unsupported value {type(value).__name__}: {value}")

    def _field(self, expr, where: str):
        if isinstance(expr, relax.Var) and isinstance(self.env.get(expr), tuple):
            return self.env[expr]
        return self._tensor(expr, where)

    def _op_call(self, var, call: relax.Call, where: str) -> None:
        op = call.op.name
        if op == "relax.memory.alloc_storage":
            (size,) = call.args[0].values
            self.env[var] = ("storage", self._buffer(
                self._new_name("s", ("storage",)), "storage", self._int(size, where), var.name))
        elif op == "relax.memory.alloc_tensor":
            storage = self.env.get(call.args[0])
            if not (isinstance(storage, tuple) and storage[0] == "storage"):
                raise AotLoweringError(f"{where}: alloc_tensor on {call.args[0]}, not a storage")
            offset = self._int(call.args[1], where)
            nbytes = self._tensor_nbytes(var)
            if offset < 0 or offset + nbytes > self.prog.buffers[storage[1]].nbytes:
                raise AotLoweringError(f"{where}: {nbytes} B at offset {offset} overflow "
                                       f"storage {storage[1]}")
            buf = self._buffer(self._new_name("a", ("arena", "output")), "arena", nbytes, var.name,
                               storage=storage[1], storage_offset=offset)
            self.env[var] = self._view(buf, 0, var, var.name)
            self.fresh.add(self.env[var])
        elif op == "relax.builtin.alloc_tensor":
            buf = self._buffer(self._new_name("a", ("arena", "output")), "arena",
                               self._tensor_nbytes(var), var.name)
            self.env[var] = self._view(buf, 0, var, var.name)
            self.fresh.add(self.env[var])
        elif op in ("relax.reshape", "relax.memory.view"):
            base = self.prog.tensors[self._tensor(call.args[0], where)]
            extra = 0
            if op == "relax.memory.view" and len(call.args) > 3:
                extra = self._int(call.args[3], where)
            self.env[var] = self._view(base.buffer, base.offset + extra, var, var.name)
            self._check_fits(self.env[var], where)
        elif op in ("relax.memory.kill_storage", "relax.memory.kill_tensor"):
            pass
        else:
            raise AotLoweringError(f"{where}: operator {op} is not supported by the AOT executor "
                                   "(it should have been legalized to a PrimFunc)")

    def _check_fits(self, tensor: str, where: str) -> None:
        t = self.prog.tensors[tensor]
        cap = self.prog.buffers[t.buffer].nbytes
        if t.offset < 0 or t.offset + t.nbytes > cap:
            raise AotLoweringError(f"{where}: tensor of {t.nbytes} B at offset {t.offset} "
                                   f"overflows its {cap} B buffer {t.buffer}")

    def _kernel_call(self, call: relax.Call, where: str) -> None:
        func = self.mod[call.op]
        if not isinstance(func, tirx.PrimFunc):
            raise AotLoweringError(f"{where}: call of Relax function {call.op.name_hint} "
                                   "(only PrimFunc calls are supported)")
        args = tuple(self._tensor(a, f"{where} ({call.op.name_hint})") for a in call.args)
        outputs = tuple(a for a in args if a in self.fresh)
        self.fresh.difference_update(args)
        index = len(self.prog.calls)
        stages: tuple[int, ...] = ()
        if func.attrs is not None and STAGES_ATTR in func.attrs:
            stages = tuple(int(e) for e in func.attrs[STAGES_ATTR])
            args, outputs = self._split_scratch(func, args, outputs, where)
        reads = 1
        if func.attrs is not None and WEIGHT_READS_ATTR in func.attrs:
            reads = int(func.attrs[WEIGHT_READS_ATTR])
        self.prog.calls.append(KernelCall(index, call.op.name_hint, kernel_symbol(func), args,
                                          outputs, stages, reads))

    def _split_scratch(self, func, args, outputs, where: str):
        """Arena tensors for the scratch a split kernel shares between its stages (buffer
        parameters after the call's own arguments, live for this call only)."""
        n = int(func.attrs[SCRATCH_ATTR])
        params = func.params[len(args):len(args) + n]
        if len(args) + n + 3 != len(func.params):
            raise AotLoweringError(f"{where}: split kernel {func.attrs['global_symbol']} takes "
                                   f"{len(func.params)} parameters, not {len(args)} + {n} + 3")
        extra = []
        for p in params:
            shape = tuple(int(d) for d in p.ty.shape)
            nbytes = int(np.prod(shape, dtype=np.int64)) * tvm_ffi.dtype(str(p.ty.dtype)).itemsize
            buf = self._buffer(self._new_name("a", ("arena", "output")), "arena", nbytes,
                               f"{where}: scratch {p.name}")
            name = f"t{len(self.prog.tensors)}"
            self.prog.tensors[name] = TensorView(name, buf, 0, shape, str(p.ty.dtype),
                                                 f"scratch {p.name} of {where}")
            extra.append(name)
        return args + tuple(extra), outputs + tuple(extra)

    # -- output and safety --------------------------------------------------------------------
    def _bind_output(self, ret) -> None:
        if isinstance(ret, relax.Tuple):
            value = tuple(self._field(f, "the return value") for f in ret.fields)
        else:
            value = self.env.get(ret) if isinstance(ret, relax.Var) else None
        if isinstance(value, tuple):
            if len(value) != 1 or not isinstance(value[0], str):
                raise AotLoweringError(f"main must return one tensor, returns {ret}: {ret.ty}")
            value = value[0]
        if not isinstance(value, str):
            raise AotLoweringError(f"main must return a tensor, returns {ret}")
        out = self.prog.tensors[value]
        if out.dtype != "float32":
            raise AotLoweringError(f"the model output must be float32, got {out.dtype}")
        self.prog.output = value
        buf = self.prog.buffers[out.buffer]
        # The caller's buffer stands in for an allocation only when it is exactly that allocation
        # and owns it (not a slice of a shared storage): then the last kernel writes it directly.
        if (buf.kind == "arena" and buf.storage is None and out.offset == 0
                and out.nbytes == buf.nbytes):
            self.prog.buffers[out.buffer] = Buffer(buf.name, "output", buf.nbytes, buf.origin)
        else:
            self.prog.copy_output = True

    def _check_no_writes_to_caller_data(self) -> None:
        """Kernels must not store into the caller's input or into weights (both are read-only)."""
        for call in self.prog.calls:
            func = self.mod[self.mod.get_global_var(call.name)]
            stored: list = []
            tvm_ffi.structural_walk(func.body, (tirx.BufferStore, lambda s: stored.append(s.buffer)))
            for param, arg in zip(func.params, call.args):
                kind = self.prog.buffers[self.prog.tensors[arg].buffer].kind
                if kind in ("input", "const") and any(b.same_as(param) for b in stored):
                    raise AotLoweringError(
                        f"kernel {call.name} writes its argument {param.name}, which is the "
                        f"model {kind}; in-place kernels on read-only data are not supported")
