"""Import a model into a Relax IRModule: torch.nn.Module, torch.export program, or ONNX."""

from __future__ import annotations

from pathlib import Path
from typing import Any

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


# aten ops ternary models use that the stock torch frontend rejects (SPEC §3)
CUSTOM_CONVERTERS = {"amax.default": _amax, "amin.default": _amin}


def export_torch(model, example_inputs: tuple) -> "torch.export.ExportedProgram":
    """``torch.export`` a module in eval mode without autograd, so quantizers export as pure math."""
    import torch

    model = model.eval()
    with torch.no_grad():
        try:
            return torch.export.export(model, tuple(example_inputs))
        except Exception as err:  # torch raises many types; keep its message, name the stage
            raise ImportError_(f"torch.export failed for {type(model).__name__}: {err}") from err


def from_torch_program(program) -> tvm.IRModule:
    """Relax module from an ``ExportedProgram``; parameters become constants."""
    from tvm.relax.frontend.torch import from_exported_program

    try:
        return from_exported_program(program, keep_params_as_input=False,
                                     custom_convert_map=CUSTOM_CONVERTERS)
    except (KeyError, AssertionError, ValueError, tvm.TVMError) as err:
        raise ImportError_(f"Relax import of the exported program failed: {err}") from err
