"""Ahead-of-time C executor: the lowered Relax `main` as standalone C over one static arena.

`generate_aot` writes four files into a directory:
  - `<model>.h`        the API: `int <model>_run(const float *input, float *output)` and sizes;
  - `<model>.c`        static DLTensor descriptors and the call table that runs the kernels;
  - `fter_kernels.c`   TVM's generated C, byte for byte;
  - `fter_weights.c`   every constant as an aligned `const` array.
No TVM runtime, no malloc: intermediates live in one arena planned by `runtime.arena`, the
kernels' own scratch comes from `TVMBackendAllocWorkspace` (provided by our runtime, sized by
`FTER_WORKSPACE_BYTES`).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import tvm
import tvm_ffi

from . import aot_run, lower
from .cbuild import GENERATED_CFLAGS
from .arena import ArenaPlan, LiveBuffer, plan_arena
from .program import (KERNEL_SYMBOL_PREFIX, AotLoweringError, AotProgram, TensorView,
                      extract_program)

# TVM's C for packed functions reads shape/strides/device fields it may not use: fter_kernels.c
# (only it) is compiled with these -Wno flags, kept in one place: runtime/cbuild.py.
KERNEL_CFLAGS: tuple[str, ...] = GENERATED_CFLAGS

KERNELS_FILE = "fter_kernels.c"
WEIGHTS_FILE = "fter_weights.c"
_DL_TYPE_CODES = {0: "kDLInt", 1: "kDLUInt", 2: "kDLFloat", 4: "kDLBfloat", 6: "kDLBool"}


@dataclass(frozen=True)
class CallInfo:
    """One kernel call of the generated executor, for reports and profilers."""

    index: int
    name: str  # the PrimFunc (also the entry of fter_kernel_names[index])
    symbol: str  # its C entry point
    arg_shapes: tuple[tuple[int, ...], ...]
    arg_dtypes: tuple[str, ...]
    outputs: tuple[int, ...]  # positions of the arguments the call writes
    workspace_bytes: int  # what it takes from TVMBackendAllocWorkspace (with block headers)
    stages: tuple[int, ...] = ()  # split kernels: per stage the extent split between workers (0: not)
    const_bytes: int = 0  # bytes of the weights (constants) among its arguments
    weight_reads: int = 1  # how many times one call reads them (KernelCall.weight_reads)


@dataclass(frozen=True)
class AotResult:
    """What `generate_aot` wrote and what it needs at run time."""

    out_dir: Path
    header: Path
    model_c: Path
    kernels_c: Path
    weights_c: Path
    plan: ArenaPlan
    weights_bytes: int
    workspace_bytes: int
    calls: tuple[CallInfo, ...]
    copies_output: bool  # True when the output is copied out at the end (one extra step)
    input_shape: tuple[int, ...]
    output_shape: tuple[int, ...]
    kernel_cflags: tuple[str, ...] = KERNEL_CFLAGS

    @property
    def arena_bytes(self) -> int:
        return self.plan.total_bytes

    @property
    def sources(self) -> list[Path]:
        """The C files to compile (compile `kernels_c` with `kernel_cflags` added)."""
        return [self.model_c, self.kernels_c, self.weights_c]


def plan_program_arena(program: AotProgram, granularity: str = "tensor"
                       ) -> tuple[ArenaPlan, dict[str, int]]:
    """Plan the arena of `program`; returns the verified plan and each arena buffer's offset.

    granularity "tensor" (default) places every tensor allocation by its own live range and
    size, ignoring how StaticPlanBlockMemory grouped them into storages: its storages are each
    live across most of the model, so packing them gains nothing (see tests/test_arena.py).
    "storage" places the storages as they are, a tensor at its storage's offset plus its own.
    """
    if granularity not in ("tensor", "storage"):
        raise ValueError(f"granularity must be 'tensor' or 'storage', not {granularity!r}")
    unit_of = {}  # arena buffer -> (planning unit, offset inside it)
    for name in program.live_ranges():
        buf = program.buffers[name]
        by_storage = granularity == "storage" and buf.storage is not None
        unit_of[name] = (buf.storage, buf.storage_offset) if by_storage else (name, 0)
    units: dict[str, tuple[int, int]] = {}
    for name, (lo, hi) in program.live_ranges().items():
        unit = unit_of[name][0]
        old_lo, old_hi = units.get(unit, (lo, hi))
        units[unit] = (min(lo, old_lo), max(hi, old_hi))
    live = [LiveBuffer(u, program.buffers[u].nbytes, lo, hi) for u, (lo, hi) in units.items()]
    plan = plan_arena(live, program.num_steps)
    return plan, {name: plan.offset(u) + off for name, (u, off) in unit_of.items()}


def storage_bytes(program: AotProgram) -> int:
    """Sum of the `alloc_storage` sizes StaticPlanBlockMemory chose (what a pool would take)."""
    return sum(b.nbytes for b in program.buffers.values() if b.kind == "storage")


def generate_aot(lowered_mod: tvm.IRModule, kernel_c_source: str, out_dir: str | Path, *,
                 model_name: str = "fter_model", granularity: str = "tensor") -> AotResult:
    """Write the standalone C executor of a lowered module.

    Args:
        lowered_mod: the output of `lower.lower_for_aot`.
        kernel_c_source: the C of its kernels (`lower.build_kernels_c(lowered_mod)`).
        out_dir: directory to write into (created if missing).
        model_name: C identifier used for the header/source names and `<model_name>_run`.
        granularity: arena planning by "tensor" or by "storage" (see `plan_program_arena`).
    Returns:
        An `AotResult` with the file paths, the verified arena plan and the sizes.
    Raises:
        AotLoweringError: `main` has a form the executor does not support.
        arena.ArenaOverlapError: the arena plan failed its proof (a bug, never expected).
    """
    if lower.c_identifier(model_name) != model_name:
        raise ValueError(f"model_name {model_name!r} is not a C identifier")
    program = extract_program(lowered_mod)
    plan, offsets = plan_program_arena(program, granularity)
    per_kernel = lower.kernel_workspace_bytes(lowered_mod)
    workspace = max(per_kernel.values(), default=0)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    files = {
        "header": out / f"{model_name}.h",
        "model_c": out / f"{model_name}.c",
        "kernels_c": out / KERNELS_FILE,
        "weights_c": out / WEIGHTS_FILE,
    }
    weights_src = emit_weights(program)
    emitter = _ModelEmitter(program, plan, offsets, model_name, workspace)
    files["header"].write_text(emitter.header())
    files["model_c"].write_text(emitter.source())
    files["kernels_c"].write_text(kernel_c_source)
    files["weights_c"].write_text(weights_src)
    return AotResult(
        out_dir=out, **files, plan=plan,
        weights_bytes=sum(c.nbytes for c in program.constants),
        workspace_bytes=workspace, calls=tuple(_call_infos(program, per_kernel)),
        copies_output=program.copy_output,
        input_shape=program.tensors[program.input].shape,
        output_shape=program.tensors[program.output].shape)


def build_aot(mod: tvm.IRModule, out_dir: str | Path, **kwargs) -> AotResult:
    """Lower a Relax module, compile its kernels to C and write the executor (all three steps).

    Keyword arguments are those of `generate_aot`.
    """
    lowered = lower.lower_for_aot(mod)
    return generate_aot(lowered, lower.build_kernels_c(lowered), out_dir, **kwargs)


def _call_infos(program: AotProgram, workspace: dict[str, int]) -> list[CallInfo]:
    infos = []
    for call in program.calls:
        views = [program.tensors[a] for a in call.args]
        infos.append(CallInfo(
            call.index, call.name, call.symbol, tuple(v.shape for v in views),
            tuple(v.dtype for v in views),
            tuple(i for i, a in enumerate(call.args) if a in call.outputs),
            workspace[call.symbol], call.stages,
            sum(v.nbytes for v in views if program.buffers[v.buffer].kind == "const"),
            call.weight_reads))
    return infos


def _comment(text: str) -> str:
    return text.replace("*/", "* /")


class _ModelEmitter:
    """Emits `<model>.h` and `<model>.c` for one program and its arena plan."""

    def __init__(self, program: AotProgram, plan: ArenaPlan, offsets: dict[str, int],
                 model_name: str, workspace: int):
        self.p, self.plan, self.offsets = program, plan, offsets
        self.name, self.workspace = model_name, workspace
        used = [a for c in program.calls for a in c.args] + [program.input, program.output]
        self.tensors = [t for t in program.tensors.values() if t.name in set(used)]
        self.num_calls = len(program.calls) + (1 if program.copy_output else 0)

    def _kind(self, t: TensorView) -> str:
        return self.p.buffers[t.buffer].kind

    # -- header -------------------------------------------------------------------------------
    def header(self) -> str:
        inp, out = self.p.tensors[self.p.input], self.p.tensors[self.p.output]
        guard = self.name.upper() + "_H_"
        size = lambda t: t.nbytes // 4  # noqa: E731  (both are float32)
        shape = lambda t: "{" + ", ".join(map(str, t.shape)) + "}"  # noqa: E731
        return f"""/* {self.name}.h -- generated by fter-tvm (runtime/aot.py); do not edit. */
#ifndef {guard}
#define {guard}

#define FTER_INPUT_SIZE {size(inp)}  /* float32 elements */
#define FTER_INPUT_NDIM {len(inp.shape)}
#define FTER_INPUT_SHAPE {shape(inp)}
#define FTER_OUTPUT_SIZE {size(out)}  /* float32 elements */
#define FTER_OUTPUT_NDIM {len(out.shape)}
#define FTER_OUTPUT_SHAPE {shape(out)}
#define FTER_ARENA_BYTES {self.plan.total_bytes}
#ifndef FTER_WORKSPACE_BYTES  /* what TVMBackendAllocWorkspace must serve per worker (build the runtime with it) */
#define FTER_WORKSPACE_BYTES {self.workspace}
#endif
#define FTER_WEIGHTS_BYTES {sum(c.nbytes for c in self.p.constants)}
#define FTER_NUM_KERNELS {len(self.p.calls)}
#define FTER_NUM_CALLS {self.num_calls}  /* kernels, plus one output copy if any */

/* Kinds passed to FTER_PROFILE_END. */
#define FTER_KIND_KERNEL 0
#define FTER_KIND_COPY 1

/* Name of each call, by call index (what a profiler attributes cycles to). */
extern const char *const fter_kernel_names[FTER_NUM_CALLS];

/* Runs the model: reads FTER_INPUT_SIZE floats, writes FTER_OUTPUT_SIZE floats. Kernels read the
 * input and write the output in place, so the buffers must not overlap and should be 16-byte
 * aligned (SIMD kernels fall back to scalar code otherwise). Not reentrant (one static arena).
 * Built with FTER_WORKERS=2, kernel stages with independent iterations run as two halves through
 * fter_parallel_for (fter_parallel.h), which the platform provides. 
 * Returns 0, or the non-zero code of the first failing kernel; {self.name}_last_error() names it. */
int {self.name}_run(const float *input, float *output);
const char *{self.name}_last_error(void);

/* Profiling hook: define FTER_PROFILE and provide these two, or define both macros yourself. */
#ifdef FTER_PROFILE
void fter_profile_begin(int idx);
void fter_profile_end(int idx, int kind);
#endif
#ifndef FTER_PROFILE_BEGIN
#ifdef FTER_PROFILE
#define FTER_PROFILE_BEGIN(idx) fter_profile_begin(idx)
#define FTER_PROFILE_END(idx, kind) fter_profile_end((idx), (kind))
#else
#define FTER_PROFILE_BEGIN(idx) ((void)0)
#define FTER_PROFILE_END(idx, kind) ((void)0)
#endif
#endif
{aot_run.PROFILE_MACROS}

#endif /* {guard} */
"""

    # -- source -------------------------------------------------------------------------------
    def source(self) -> str:
        parts = [
            f"/* {self.name}.c -- generated by fter-tvm (runtime/aot.py); do not edit.\n"
            f" * {len(self.p.calls)} kernel calls over one static arena.\n"
            + "".join(f" * {_comment(line)}\n" for line in self.plan.describe().splitlines())
            + " */",
            "#include <stddef.h>\n#include <stdint.h>\n#include <dlpack/dlpack.h>\n"
            f"#include <tvm/ffi/c_api.h>\n#include \"fter_ffi.h\"\n#include \"{self.name}.h\"",
            self._declarations(),
            self._descriptors(),
            self._call_table(),
            self._arena_fence(),
            aot_run.invoke_functions(self.p),
            self._run_function(),
        ]
        return "\n\n".join(p for p in parts if p) + "\n"

    def _declarations(self) -> str:
        lines = ["/* Kernels: TVM's packed entry points (fter_kernels.c). */"]
        for symbol in dict.fromkeys(c.symbol for c in self.p.calls):
            lines.append(f"FTER_DECLARE_PACKED({symbol[len(KERNEL_SYMBOL_PREFIX):]});")
        lines.append("\n/* Weights (fter_weights.c). */")
        for i, data in enumerate(self.p.constants):
            lines.append(f"extern const {c_array_type(data)} fter_w{i}[{data.size}];")
        if self.plan.total_bytes:
            # FTER_ARENA_ATTR: where the arena lives, e.g. EXT_RAM_BSS_ATTR (PSRAM) in ESP-IDF
            # projects whose arena exceeds internal SRAM (fter_tvm/project.py sets it).
            lines.append("\n#ifndef FTER_ARENA_ATTR  /* placement attribute, e.g. EXT_RAM_BSS_ATTR */\n"
                         "#define FTER_ARENA_ATTR\n#endif\n"
                         "FTER_ARENA_ATTR static uint8_t fter_arena[FTER_ARENA_BYTES] "
                         "__attribute__((aligned(16)));")
        return "\n".join(lines)

    def _data_expr(self, t: TensorView) -> str:
        kind = self._kind(t)
        if kind == "arena":
            return f"(void *)(fter_arena + {self.offsets[t.buffer] + t.offset})"
        if kind == "const":
            return f"(void *)fter_{t.buffer}"
        return "NULL"  # the caller's input or output, bound at the start of each run

    def _descriptors(self) -> str:
        dims: dict[tuple[int, ...], str] = {}

        def dims_array(values: tuple[int, ...]) -> str:
            if values not in dims:
                dims[values] = f"fter_dims{len(dims)}"
            return f"(int64_t *){dims[values]}"

        lines = []
        for t in self.tensors:
            dl = _dl_dtype(t.dtype)
            shape = dims_array(t.shape) if t.shape else "NULL"
            strides = dims_array(_compact_strides(t.shape)) if t.shape else "NULL"
            qual = "static DLTensor" if self._kind(t) in ("input", "output") else "static const DLTensor"
            lines.append(
                f"{qual} fter_{t.name} = {{{self._data_expr(t)}, {{kDLCPU, 0}}, {len(t.shape)}, {dl}, "
                f"{shape}, {strides}, 0}};  /* {_comment(str(t.origin))}: {t.dtype} {t.shape}, "
                f"{self._kind(t)} {t.buffer} */")
        arrays = [f"static const int64_t {n}[{len(v)}] = {{{', '.join(map(str, v))}}};"
                  for v, n in dims.items()]
        return ("/* Shapes and compact strides, shared by tensors. */\n" + "\n".join(arrays)
                + "\n\n/* Tensors: data is in the arena, a weight, or the caller's input/output. */\n"
                + "\n".join(lines))

    def _call_table(self) -> str:
        return aot_run.call_table(self.p)

    def _arena_fence(self) -> str:
        if not self.p.calls:
            return ""
        if not self.plan.total_bytes:
            return "#define FTER_FENCE_ARENA(c) ((void)0)\n#define FTER_UNFENCE_ARENA() ((void)0)"
        return """#if defined(__SANITIZE_ADDRESS__)
#include <sanitizer/asan_interface.h>
/* Sanitized host builds (runtime.cbuild.HOST_SANITIZE): during a call only its arguments' bytes
 * of the arena are addressable, so a kernel touching bytes outside its own tensors (or an arena
 * plan that overlaps live tensors) is an AddressSanitizer finding, not a silent overwrite. */
static void fter_fence_arena(const struct fter_call *c) {
  int32_t j, d;
  ASAN_POISON_MEMORY_REGION(fter_arena, FTER_ARENA_BYTES);
  for (j = 0; j < c->num_args; ++j) {
    const DLTensor *t = c->args[j];
    const uint8_t *p = (const uint8_t *)t->data;
    uint64_t n = ((uint64_t)t->dtype.bits * t->dtype.lanes + 7u) / 8u;
    for (d = 0; d < t->ndim; ++d) n *= (uint64_t)t->shape[d];
    if (p >= fter_arena && p < fter_arena + FTER_ARENA_BYTES) ASAN_UNPOISON_MEMORY_REGION(p, n);
  }
}
#define FTER_FENCE_ARENA(c) fter_fence_arena(c)
#define FTER_UNFENCE_ARENA() ASAN_UNPOISON_MEMORY_REGION(fter_arena, FTER_ARENA_BYTES)
#else
#define FTER_FENCE_ARENA(c) ((void)0)
#define FTER_UNFENCE_ARENA() ((void)0)
#endif"""

    def _bind_io(self) -> list[str]:
        lines = []
        for t in self.tensors:
            kind = self._kind(t)
            if kind in ("input", "output"):
                base = "input" if kind == "input" else "output"
                lines.append(f"  fter_{t.name}.data = (void *)((uintptr_t){base} + {t.offset}u);")
        return lines

    def _run_function(self) -> str:
        return aot_run.run_function(self.p, self.name, self._bind_io())


def _dl_dtype(dtype: str) -> str:
    d = tvm_ffi.dtype(dtype)
    return f"{{{_DL_TYPE_CODES.get(d.type_code, str(d.type_code))}, {d.bits}, {d.lanes}}}"


def _compact_strides(shape: tuple[int, ...]) -> tuple[int, ...]:
    strides, acc = [], 1
    for d in reversed(shape):
        strides.append(acc)
        acc *= d
    return tuple(reversed(strides))


# ---------------------------------------------------------------------------------------------
# fter_weights.c

# dtype -> (C element type, literal style). 16-bit floats are stored as their bit patterns.
_C_TYPES = {
    "float32": ("float", "hexfloat"), "float64": ("double", "hexfloat"),
    "float16": ("uint16_t", "bits"), "bfloat16": ("uint16_t", "bits"), "bool": ("uint8_t", "int"),
    "int8": ("int8_t", "int"), "int16": ("int16_t", "int"), "int32": ("int32_t", "int"),
    "int64": ("int64_t", "int"), "uint8": ("uint8_t", "int"), "uint16": ("uint16_t", "int"),
    "uint32": ("uint32_t", "int"), "uint64": ("uint64_t", "int"),
}


def c_array_type(data: np.ndarray) -> str:
    """The C element type a constant is emitted with."""
    dtype = str(data.dtype)
    if dtype not in _C_TYPES:
        raise AotLoweringError(f"constant of dtype {dtype} cannot be emitted to C")
    return _C_TYPES[dtype][0]


def _hexfloat(v: float, suffix: str) -> str:
    # Hex literals are exact (no decimal round trip); inf/nan via builtins since freestanding
    # targets have no <math.h> and these are constant expressions in GCC.
    if v != v:
        return f"__builtin_nan{suffix}(\"\")"
    if v in (float("inf"), float("-inf")):
        return ("-" if v < 0 else "") + f"__builtin_inf{suffix}()"
    mant, exp = v.hex().split("p")
    mant = mant.rstrip("0").rstrip(".")
    return f"{mant}p{exp}{suffix}"


def _int_literal(v: int, ctype: str) -> str:
    if ctype == "int64_t":
        return "(-9223372036854775807LL - 1)" if v == -(2**63) else f"{v}LL"
    if ctype == "uint64_t":
        return f"{v}ULL"
    return f"{v}u" if ctype.startswith("uint") and ctype != "uint8_t" else str(v)


def _literals(data: np.ndarray) -> list[str]:
    """C literals of all elements; each distinct value is formatted once (weights repeat a lot)."""
    ctype, style = _C_TYPES[str(data.dtype)]
    flat = np.ascontiguousarray(data).reshape(-1)
    # Unique over bit patterns, not values: 0.0 == -0.0 but they are different weights.
    bits = flat.view(f"u{flat.itemsize}")
    uniq_bits, inverse = np.unique(bits, return_inverse=True)
    uniq = uniq_bits if style == "bits" else uniq_bits.view(flat.dtype)
    if style == "hexfloat":
        suffix = "f" if ctype == "float" else ""
        texts = [_hexfloat(float(v), suffix) for v in uniq.tolist()]
    else:
        texts = [_int_literal(int(v), ctype) for v in uniq.tolist()]
    return np.asarray(texts, dtype=object)[inverse.reshape(-1)].tolist()


def emit_weights(program: AotProgram) -> str:
    """The text of fter_weights.c: each constant `i` as `const <type> fter_w<i>[n]`, 16-aligned.

    External linkage (not `static`) because the tensor descriptors in the model source take their
    addresses in static initializers.
    """
    origins = {t.buffer: t.origin for t in program.tensors.values()}
    total = sum(c.nbytes for c in program.constants)
    out = [f"/* {WEIGHTS_FILE} -- generated by fter-tvm (runtime/aot.py); do not edit.\n"
           f" * {len(program.constants)} constants, {total} bytes. */\n#include <stdint.h>\n\n"
           "#ifndef FTER_WEIGHTS_ATTR  /* placement attribute, e.g. a flash-mapped section */\n"
           "#define FTER_WEIGHTS_ATTR\n#endif\n"]
    for i, data in enumerate(program.constants):
        if data.size == 0:
            raise AotLoweringError(f"constant {i} is empty")
        ctype = c_array_type(data)
        if data.itemsize == 1:
            init = "\n  " + "\n  ".join(_byte_string_rows(data)) + ";"
        else:
            per_line = 16
            lits = _literals(data)
            rows = (", ".join(lits[k:k + per_line]) for k in range(0, len(lits), per_line))
            init = " {\n  " + ",\n  ".join(rows) + "\n};"
        origin = origins.get(f"w{i}")
        out.append(f"/* fter_w{i}: {data.dtype} {tuple(data.shape)}, {data.nbytes} B"
                   + (f"; {_comment(origin)}" if origin else "") + " */\n"
                   f"FTER_WEIGHTS_ATTR const {ctype} fter_w{i}[{data.size}] "
                   f"__attribute__((aligned(16))) ={init}\n")
    return "\n".join(out)


_BYTE_ESCAPES = [f"\\x{b:02x}" for b in range(256)]


def _byte_string_rows(data: np.ndarray, per_line: int = 32) -> list[str]:
    """1-byte elements as string literals (exactly `size` chars, so no NUL is stored): GCC
    reads these ~30x faster than brace lists, which matters for megabytes of packed weights."""
    raw = np.ascontiguousarray(data).reshape(-1).view(np.uint8).tolist()
    return ['"' + "".join(_BYTE_ESCAPES[b] for b in raw[k:k + per_line]) + '"'
            for k in range(0, len(raw), per_line)]
