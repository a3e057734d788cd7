"""ONNX's own backend node tests, for the ops a ViT export uses, through the x86 path.

Each case (a one-node model, or its function expansion, with inputs and expected outputs) is
imported by ``relay_passes.frontend``, run through the fter pipeline (``fuse_model``), the x86
schedules and LLVM (``x86_executable``), executed by the Relax VM and compared with ONNX's
expected outputs: floats within ``TOLERANCE`` of their dtype, integers and bools exactly.

The ``onnx`` wheel ships the generators of these cases (``onnx.backend.test.case.node``; recent
wheels no longer ship the generated ``data/node`` directories, older ones do and are read when
the generators are absent). Policy applied to the cases, so a skip always says why:

- Operands that fix a shape (Reshape's shape, Slice's starts/ends/axes/steps, the axes of
  Reduce*/Squeeze/Unsqueeze, Split's sizes, Expand's shape, ConstantOfShape's input) are bound
  as initializers: the importer takes static shapes only, and both torch exporters write these as
  constants. The op is still tested on its data inputs.
- Element types outside ``relay_passes.frontend.ONNX_DTYPES`` (float8, float4, int4, int2,
  bfloat16, string) must be refused by the importer with an error naming where they occur; the
  case then skips as "unsupported element type". Before that check they converted to wrong
  values or crashed inside TVM.
- ``KNOWN_FAILURES`` below lists the cases that fail for a reason outside the importer's reach;
  each is still run, and a known failure that starts passing fails the test (drop it from the
  table then).
"""

from __future__ import annotations

import importlib
import re
import warnings
from pathlib import Path

import numpy as np
import onnx
import pytest
import tvm
from onnx import numpy_helper
from tvm import relax

from fter_tvm.compile import fuse_model, x86_executable
from relay_passes.frontend import ImportError_, from_onnx_model

VIT_OPS = frozenset(
    "MatMul Gemm Add Sub Mul Div Reshape Transpose Softmax Erf Gelu LayerNormalization Sqrt Pow "
    "ReduceMean ReduceMax Concat Slice Gather Conv Clip Round Abs Max Min Sign Cast CastLike Where "
    "Equal Flatten Unsqueeze Squeeze Expand Split QuantizeLinear DequantizeLinear Relu Identity "
    "Constant ConstantOfShape Shape Neg Exp Tanh Reciprocal".split())
# modules of onnx.backend.test.case.node whose export() functions generate the cases of VIT_OPS
CASE_MODULES = (
    "matmul gemm add sub mul div reshape transpose softmax erf gelu layernormalization sqrt pow "
    "reducemean reducemax concat slice gather conv clip round abs max min sign cast castlike where "
    "equal flatten unsqueeze squeeze expand split quantizelinear dequantizelinear relu identity "
    "constant constantofshape shape neg exp tanh reciprocal").split()
SHAPE_OPERANDS = {"Reshape": (1,), "Slice": (1, 2, 3, 4), "ReduceMean": (1,), "ReduceMax": (1,),
                  "Squeeze": (1,), "Unsqueeze": (1,), "Split": (1,), "Expand": (1,),
                  "ConstantOfShape": (0,)}
# (rtol, atol) by expected dtype; ONNX's runner uses rtol 1e-3 for all
TOLERANCE = {np.dtype(np.float16): (1e-3, 1e-3), np.dtype(np.float32): (1e-5, 1e-6),
             np.dtype(np.float64): (1e-7, 1e-12)}

_ZERO_SPLIT = "zero-size outputs of Split: TVM's split needs strictly increasing split indices"
_BOOL_MAX = "ReduceMax on bool: TVM's max reduction has no initial value for bool"
_BLOCKED = ("blocked quantization (block_size): TVM's QuantizeLinear/DequantizeLinear converters "
            "refuse it (the importer names the node); per-tensor and per-axis work")
KNOWN_FAILURES = {
    "test_split_zero_size_splits_opset13": _ZERO_SPLIT,
    "test_split_zero_size_splits_opset18": _ZERO_SPLIT,
    "test_reduce_max_bool_inputs": _BOOL_MAX,
    "test_reduce_max_empty_set_bool": _BOOL_MAX,
    "test_reduce_max_empty_set": "ReduceMax over a zero-size axis: TVM's reduction does not "
                                 "return -inf (ONNX's identity) for an empty set",
    "test_quantizelinear_blocked_asymmetric": _BLOCKED,
    "test_quantizelinear_blocked_symmetric": _BLOCKED,
    "test_dequantizelinear_blocked": _BLOCKED,
}


class Case:
    """One node test: ``model`` and one data set of ``inputs`` / ``outputs`` (numpy arrays)."""

    def __init__(self, name, model, inputs, outputs):
        self.name, self.model = name, model
        self.inputs, self.outputs = [_array(v) for v in inputs], [_array(v) for v in outputs]


def _array(v):
    return numpy_helper.to_array(v) if isinstance(v, onnx.TensorProto) else np.asarray(v)


def _generated_cases() -> list[Case]:
    from onnx.backend.test.case import node as case_node

    with warnings.catch_warnings():   # the generators overflow on purpose (saturating casts)
        warnings.simplefilter("ignore", RuntimeWarning)
        for name in CASE_MODULES:   # importing a module runs its export()s, which append cases
            importlib.import_module(f"onnx.backend.test.case.node.{name}")
    return [Case(c.name, c.model, *c.data_sets[0]) for c in case_node._NodeTestCases]


def _shipped_cases() -> list[Case]:
    root = Path(onnx.__file__).parent / "backend" / "test" / "data" / "node"
    cases = []
    for d in sorted(root.glob("test_*")):
        data = d / "test_data_set_0"
        load = [[onnx.load_tensor(str(p)) for p in sorted(data.glob(f"{kind}_*.pb"))]
                for kind in ("input", "output")]
        cases.append(Case(d.name, onnx.load(str(d / "model.onnx")), *load))
    return cases


def _cases() -> list[Case]:
    try:
        cases = _generated_cases()
    except ImportError:
        cases = _shipped_cases()
    return [c for c in cases if all(n.op_type in VIT_OPS for n in c.model.graph.node)]


CASES = _cases()


def bind_shape_operands(case: Case) -> tuple[onnx.ModelProto, list[np.ndarray]]:
    """The case's model with its shape operands turned into initializers, and the inputs left."""
    model = onnx.ModelProto.FromString(case.model.SerializeToString())
    graph = model.graph
    values = dict(zip((i.name for i in graph.input), case.inputs))
    bound = {n.input[k] for n in graph.node for k in SHAPE_OPERANDS.get(n.op_type, ())
             if k < len(n.input) and n.input[k] in values}
    graph.initializer.extend(numpy_helper.from_array(values[name], name) for name in sorted(bound))
    kept = [i for i in graph.input if i.name not in bound]
    del graph.input[:]
    graph.input.extend(kept)
    return model, [values[i.name] for i in kept]


def run_x86(model: onnx.ModelProto, inputs: list[np.ndarray]) -> list[np.ndarray]:
    """Outputs of ``model`` built by the x86 path (shapes come back as int64 arrays)."""
    fused, _ = fuse_model(model, "x86")
    vm = relax.VirtualMachine(x86_executable(fused, "x86"), tvm.cpu())
    out = vm["main"](*[tvm.runtime.tensor(np.array(x, order="C")) for x in inputs])
    outs = [out] if hasattr(out, "numpy") or isinstance(out, tvm.runtime.ShapeTuple) else list(out)
    return [np.array(list(o), np.int64) if isinstance(o, tvm.runtime.ShapeTuple) else o.numpy()
            for o in outs]


def mismatch(got: list[np.ndarray], expected: list[np.ndarray]) -> str | None:
    """None when every output matches (dtype, shape, values), else what differs."""
    if len(got) != len(expected):
        return f"{len(got)} outputs, expected {len(expected)}"
    for i, (g, e) in enumerate(zip(got, expected)):
        if g.dtype != e.dtype or g.shape != e.shape:
            return f"output {i}: {g.dtype}{list(g.shape)}, expected {e.dtype}{list(e.shape)}"
        if e.dtype.kind == "f":
            rtol, atol = TOLERANCE[e.dtype]
            if not np.allclose(g, e, rtol=rtol, atol=atol, equal_nan=True):
                err = np.nanmax(np.abs(g.astype(np.float64) - e.astype(np.float64)))
                return f"output {i}: max |diff| {err:.3g} beyond rtol {rtol} atol {atol}"
        elif not np.array_equal(g, e):
            return f"output {i}: {int((g != e).sum())} of {e.size} values differ"
    return None


def test_cases_found():
    """The selection is not empty and covers most of the ops (a renamed module would shrink it)."""
    ops = {n.op_type for c in CASES for n in c.model.graph.node}
    assert len(CASES) > 300 and len(ops) >= len(VIT_OPS) - 2, sorted(VIT_OPS - ops)


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_node(case: Case):
    model, inputs = bind_shape_operands(case)
    try:
        from_onnx_model(model)
    except ImportError_ as err:
        refused = re.search(r"element type (\w+)", str(err))
        if refused:
            pytest.skip(f"unsupported element type {refused.group(1)} (the importer refuses it)")
        if case.name not in KNOWN_FAILURES:
            raise
        pytest.skip(KNOWN_FAILURES[case.name])
    try:
        problem = mismatch(run_x86(model, inputs), case.outputs)
    except (RuntimeError, ValueError) as err:   # TVM's InternalError is a RuntimeError
        if case.name not in KNOWN_FAILURES:
            raise
        problem = str(err)
    if case.name in KNOWN_FAILURES:
        assert problem is not None, f"{case.name} passes now: remove it from KNOWN_FAILURES"
        pytest.skip(KNOWN_FAILURES[case.name])
    assert problem is None, f"{case.name}: {problem}"
