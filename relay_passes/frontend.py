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


def _onnx_converters(base_map):
    """The ONNX frontend's converters, with Clip on constant bounds kept as ``relax.op.clip``.

    The stock Clip converter emits TE ``maximum``/``minimum`` kernels, which hides the
    activation quantizer's ``clip(round(x / s), -128, 127)`` from the passes.
    """
    from tvm.ir.expr import Constant

    stock = base_map["Clip"]

    class ConstantBoundClip(stock):
        @classmethod
        def _impl_v13(cls, bb, inputs, attr, params):
            bounds = []
            for bound, missing in ((inputs[1], -float("inf")), (inputs[2], float("inf"))):
                if bound is None:
                    bounds.append(missing)
                elif isinstance(bound, Constant) and bound.value.numpy().size == 1:
                    bounds.append(float(bound.value.numpy()))
                else:
                    return super()._impl_v13(bb, inputs, attr, params)
            return bb.emit(relax.op.clip(inputs[0], *bounds))

        _impl_v11 = _impl_v13

    return {**base_map, "Clip": ConstantBoundClip}


def from_onnx_model(model) -> tvm.IRModule:
    """Relax module from an ONNX file path or ``ModelProto``; initializers become constants."""
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
    from unittest import mock

    from tvm.relax.frontend.onnx import onnx_frontend

    stock_map = onnx_frontend._get_convert_map
    try:
        # the frontend has no custom-converter argument: swap its map for this call only
        with mock.patch.object(onnx_frontend, "_get_convert_map",
                               lambda: _onnx_converters(stock_map())):
            return from_onnx(model, keep_params_in_input=False)
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
