"""Import a model into a Relax IRModule: torch.nn.Module, torch.export program, or ONNX."""

from __future__ import annotations

import re

import tvm
from tvm import relax


class ImportError_(ValueError):
    """The model could not be imported; the message names the node and op."""


def _amax(node, importer) -> relax.Var:
    args = importer.retrieve_args(node)
    dims = args[1] if len(args) > 1 else node.kwargs.get("dim", None)
    keepdim = args[2] if len(args) > 2 else node.kwargs.get("keepdim", False)
    axis = None if dims in (None, [], ()) else list(dims)
    return importer.block_builder.emit(relax.op.max(args[0], axis=axis, keepdims=bool(keepdim)))


def _amin(node, importer) -> relax.Var:
    args = importer.retrieve_args(node)
    dims = args[1] if len(args) > 1 else node.kwargs.get("dim", None)
    keepdim = args[2] if len(args) > 2 else node.kwargs.get("keepdim", False)
    axis = None if dims in (None, [], ()) else list(dims)
    return importer.block_builder.emit(relax.op.min(args[0], axis=axis, keepdims=bool(keepdim)))


def _max_dim(node, importer):
    """``max(x, dim, keepdim) -> (values, indices)`` as plain max/argmax (the stock converter goes
    through topk and tuples, which hides the absmax of an activation quantizer)."""
    args = importer.retrieve_args(node)
    dim = args[1] if len(args) > 1 else node.kwargs.get("dim")
    keepdim = bool(args[2] if len(args) > 2 else node.kwargs.get("keepdim", False))
    bb = importer.block_builder
    return relax.Tuple([bb.emit(relax.op.max(args[0], axis=[dim], keepdims=keepdim)),
                        bb.emit(relax.op.argmax(args[0], axis=dim, keepdims=keepdim))])


# aten ops ternary models use that the stock torch frontend rejects or hides (SPEC §3)
CUSTOM_CONVERTERS = {"amax.default": _amax, "amin.default": _amin, "max.dim": _max_dim}


def export_torch(model, example_inputs: tuple) -> "torch.export.ExportedProgram":
    """``torch.export`` a module in eval mode without autograd, so quantizers export as pure math."""
    import torch

    model = model.eval()
    with torch.no_grad():
        try:
            return torch.export.export(model, tuple(example_inputs))
        except Exception as err:  # torch raises many types; keep its message, name the stage
            raise ImportError_(f"torch.export failed for {type(model).__name__}: {err}") from err


def source_name(node) -> str:
    """Readable source of an FX node: its module path (``blocks.0.attn.qkv``) or the node name."""
    stack = node.meta.get("nn_module_stack") or {}
    if stack:
        path = list(stack.values())[-1][0]
        path = re.sub(r"L\['self'\]\.?|\[|\]|'", lambda m: "." if m.group(0) == "[" else "", path)
        return re.sub(r"[^0-9a-zA-Z_]+", "_", path).strip("_") or node.name
    return node.name


def _named_importer_class():
    """The stock importer, with every emitted binding named after its source FX node.

    Relax variable names then carry ``blocks_0_attn_qkv``-style origins through the passes, so the
    report can name unfused nodes and errors can name the offending layer.
    """
    from tvm.relax.frontend.torch.exported_program_translator import ExportedProgramImporter

    class NamedImporter(ExportedProgramImporter):
        def _translate_fx_graph(self, graph_module, nodes, inputs_vars, custom_ops=None):
            builder = self.block_builder
            emit = builder.emit
            current = {"name": ""}
            builder.emit = lambda expr, name_hint="": emit(expr, name_hint or current["name"])
            for key, conv in list(self.convert_map.items()):
                self.convert_map[key] = _naming(conv, current, key in (custom_ops or ()))
            return super()._translate_fx_graph(graph_module, nodes, inputs_vars, custom_ops)

    return NamedImporter


def _naming(conv, current, is_custom):
    def wrapped(node, *rest):
        current["name"] = source_name(node)
        return conv(node, *rest)
    return wrapped


def from_torch_program(program) -> tvm.IRModule:
    """Relax module from an ``ExportedProgram``; parameters become constants.

    Unsupported aten ops raise :class:`ImportError_` naming the op and its source node.
    """
    from tvm.relax.frontend.torch import exported_program_translator as ept

    program = program.run_decompositions()
    importer = _named_importer_class()()
    supported = set(importer.create_convert_map()) | set(CUSTOM_CONVERTERS)
    for node in program.graph.nodes:
        if node.op == "call_function" and node.target.__name__ not in supported:
            raise ImportError_(f"unsupported op {node.target.__name__} at node {node.name} "
                               f"({source_name(node)})")
    try:
        return importer.from_exported_program(program, False, False, False, CUSTOM_CONVERTERS)
    except (KeyError, AssertionError, ValueError, RuntimeError, tvm.error.InternalError) as err:
        raise ImportError_(f"Relax import of the exported program failed: {err}") from err


# element types the Relax ONNX import and our builds handle exactly; the float8/float4/int4/int2,
# bfloat16 and string types convert to wrong values or crash deep in TVM, so they are refused by name
ONNX_DTYPES = ("FLOAT", "FLOAT16", "DOUBLE", "INT8", "INT16", "INT32", "INT64", "UINT8", "UINT16",
               "UINT32", "UINT64", "BOOL")


def _node_label(node) -> str:
    return f"{node.name or node.output[0]!r} ({node.op_type})"


def _check_onnx_dtypes(graph) -> None:
    """Refuse element types outside :data:`ONNX_DTYPES`, naming the input, initializer or node."""
    import onnx

    ok = {getattr(onnx.TensorProto, name) for name in ONNX_DTYPES}

    def check(elem_type: int, where: str) -> None:
        if elem_type and elem_type not in ok:
            raise ImportError_(f"{where} has element type {onnx.TensorProto.DataType.Name(elem_type)}; "
                               f"supported: {', '.join(ONNX_DTYPES)}")

    for kind, values in (("input", graph.input), ("output", graph.output),
                         ("value", graph.value_info)):
        for v in values:
            check(v.type.tensor_type.elem_type, f"ONNX {kind} {v.name!r}")
    for init in graph.initializer:
        check(init.data_type, f"ONNX initializer {init.name!r}")
    for node in graph.node:
        for a in node.attribute:
            if a.name in ("to", "output_dtype") and a.type == onnx.AttributeProto.INT:
                check(a.i, f"ONNX node {_node_label(node)}: attribute {a.name}")
            elif a.type == onnx.AttributeProto.TENSOR:
                check(a.t.data_type, f"ONNX node {_node_label(node)}: attribute {a.name}")
            elif a.type == onnx.AttributeProto.STRING and node.op_type == "Constant":
                raise ImportError_(f"ONNX node {_node_label(node)}: string constants are not supported")


def _onnx_converters(base_map):
    """The ONNX frontend's converters, with our corrections:

    - Clip on constant bounds kept as ``relax.op.clip`` (the stock converter emits TE
      ``maximum``/``minimum`` kernels, which hides the activation quantizer's
      ``clip(round(x / s), -128, 127)`` from the passes); a missing bound of an integer tensor is
      the dtype's limit, not ±inf.
    - Constant also from ``value_float(s)`` / ``value_int(s)`` (torch's dynamo exporter without
      its optimizer writes those; the stock converter knows only ``value``).
    - LayerNormalization's optional ``Mean`` and ``InvStdDev`` outputs computed (the stock
      converter returns 0-d placeholders for them).
    - Pow with an exponent of another type (ONNX allows it: the result has the base's type) and
      Pow on integers (computed in float64, exact below 2**53).
    """
    import numpy as np
    from tvm.ir.expr import Constant

    class ConstantBoundClip(base_map["Clip"]):
        @classmethod
        def _impl_v13(cls, bb, inputs, attr, params):
            dtype = str(inputs[0].ty.dtype)
            info = np.iinfo(dtype) if dtype.startswith(("int", "uint")) else None
            missing = (-float("inf"), float("inf")) if info is None else (int(info.min), int(info.max))
            bounds = []
            for bound, default in zip((inputs[1], inputs[2]), missing):
                if bound is None:
                    bounds.append(default)
                elif isinstance(bound, Constant) and bound.value.numpy().size == 1:
                    value = bound.value.numpy().item()
                    bounds.append(value if info is None else int(value))
                else:
                    return super()._impl_v13(bb, inputs, attr, params)
            return bb.emit(relax.op.clip(inputs[0], *bounds))

        _impl_v11 = _impl_v13

    class ConstantAnyValue(base_map["Constant"]):
        @classmethod
        def _impl_v13(cls, bb, inputs, attr, params):
            for key, dtype in (("value_float", "float32"), ("value_floats", "float32"),
                               ("value_int", "int64"), ("value_ints", "int64")):
                if key in attr:
                    return relax.const(np.asarray(attr.pop(key), dtype), dtype)
            return super()._impl_v13(bb, inputs, attr, params)

        _impl_v12 = _impl_v13

    class LayerNormWithStats(base_map["LayerNormalization"]):
        @classmethod
        def _impl_v17(cls, bb, inputs, attr, params):
            out = super()._impl_v17(bb, inputs, dict(attr), params)
            if attr["tvm_custom"]["num_outputs"] == 1:
                return out
            x = inputs[0]
            ndim = len(x.ty.shape)
            axis = attr.get("axis", -1)
            axes = list(range(axis % ndim, ndim))
            mean = bb.emit(relax.op.mean(x, axes, keepdims=True))
            centred = bb.emit(relax.op.subtract(x, mean))
            var = bb.emit(relax.op.mean(relax.op.multiply(centred, centred), axes, keepdims=True))
            eps = relax.const(attr.get("epsilon", 1e-5), str(x.ty.dtype))
            inv_std = bb.emit(relax.op.rsqrt(relax.op.add(var, eps)))
            return relax.Tuple([out[0], mean, inv_std])

    class PowAnyTypes(base_map["Pow"]):
        @classmethod
        def _impl_v7(cls, bb, inputs, attr, params):
            base, exp = inputs
            dtype = str(base.ty.dtype)
            if dtype.startswith(("int", "uint")):
                as_f64 = [relax.op.astype(v, "float64") for v in (base, exp)]
                return bb.emit(relax.op.astype(relax.op.power(*as_f64), dtype))
            if str(exp.ty.dtype) != dtype:
                exp = bb.emit(relax.op.astype(exp, dtype))
            return super()._impl_v7(bb, [base, exp], attr, params)

        _impl_v12 = _impl_v13 = _impl_v15 = _impl_v7

    return {**base_map, "Clip": ConstantBoundClip, "Constant": ConstantAnyValue,
            "LayerNormalization": LayerNormWithStats, "Pow": PowAnyTypes}


def from_onnx_model(model) -> tvm.IRModule:
    """Relax module from an ONNX file path or ``ModelProto``; initializers become constants.

    Raises:
        ImportError_: unreadable or malformed model, dynamic input shapes, element types outside
            :data:`ONNX_DTYPES`, or an op the frontend cannot convert (names the node and op).
    """
    import onnx
    from tvm.relax.frontend.onnx import from_onnx

    if not isinstance(model, onnx.ModelProto):
        path = str(model)
        try:
            model = onnx.load(path)
        except Exception as err:   # onnx raises DecodeError / OSError / ValueError
            raise ImportError_(f"cannot read ONNX model {path}: {err}") from err
    try:
        onnx.checker.check_model(model)
    except onnx.checker.ValidationError as err:
        raise ImportError_(f"malformed ONNX model: {err}") from err
    for inp in model.graph.input:
        dims = inp.type.tensor_type.shape.dim
        if any(not d.HasField("dim_value") for d in dims):
            raise ImportError_(f"ONNX input {inp.name} has a dynamic shape; static shapes only")
    _check_onnx_dtypes(model.graph)
    from unittest import mock

    from tvm.relax.frontend.onnx import onnx_frontend

    stock_map = onnx_frontend._get_convert_map
    stock_convert = onnx_frontend.ONNXGraphImporter._convert_operator

    def convert_naming_node(self, op_name, inputs, attrs, opset):
        name = attrs.get("tvm_custom", {}).get("name") or "<unnamed>"
        try:
            return stock_convert(self, op_name, inputs, attrs, opset)
        except ImportError_:
            raise
        except Exception as err:   # converters raise ValueError, TypeError, TVMError, ...
            raise ImportError_(f"ONNX node {name!r} ({op_name}): {err}") from err

    try:
        # the frontend has no custom-converter argument: swap its map for this call only
        with mock.patch.object(onnx_frontend, "_get_convert_map",
                               lambda: _onnx_converters(stock_map())), \
                mock.patch.object(onnx_frontend.ONNXGraphImporter, "_convert_operator",
                                  convert_naming_node):
            return from_onnx(model, keep_params_in_input=False)
    except ImportError_:
        raise
    except (KeyError, AssertionError, ValueError, NotImplementedError, RuntimeError,
            tvm.error.InternalError) as err:
        raise ImportError_(f"Relax import of the ONNX model failed: {err}") from err


def import_model(model, example_inputs=None) -> tvm.IRModule:
    """Relax module from an ``nn.Module``, ``ExportedProgram``, ONNX path or ``ModelProto``."""
    import torch

    if isinstance(model, torch.nn.Module):
        if example_inputs is None:
            raise ValueError("example_inputs are required to export a torch.nn.Module")
        return from_torch_program(export_torch(model, example_inputs))
    if isinstance(model, torch.export.ExportedProgram):
        return from_torch_program(model)
    return from_onnx_model(model)
