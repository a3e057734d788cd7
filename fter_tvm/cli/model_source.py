"""The MODEL argument shared by ``compile`` and ``simulate``: a checkpoint, an ONNX file, or a timm
model name (ternarized, random weights), plus the input shape and example input options."""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from pathlib import Path

import numpy as np


@dataclass(frozen=True)
class ModelSource:
    """What MODEL names: ``kind`` is "checkpoint", "onnx" or "timm"."""

    kind: str
    ref: str


def model_source(s: str) -> ModelSource:
    """argparse type: an existing ``.pt``/``.json`` checkpoint (or its directory), an ``.onnx``
    file, or a word that is not a path (taken as a timm model name)."""
    p = Path(s)
    if p.suffix == ".onnx":
        if not p.is_file():
            raise argparse.ArgumentTypeError(f"ONNX file not found: {s}")
        return ModelSource("onnx", s)
    if p.suffix in (".pt", ".json") or p.is_dir():
        if not (p.with_suffix(".json").is_file() or (p / "fter_vit.json").is_file()):
            raise argparse.ArgumentTypeError(f"checkpoint not found: {s} (expected a .json beside the .pt)")
        return ModelSource("checkpoint", s)
    if "/" in s or p.exists():
        raise argparse.ArgumentTypeError(f"{s}: not a checkpoint (.pt/.json), an .onnx file or a timm name")
    return ModelSource("timm", s)


def shape(s: str) -> tuple[int, ...]:
    """argparse type: ``1,3,224,224`` or ``1x3x224x224`` (positive integers)."""
    try:
        dims = tuple(int(d) for d in s.replace("x", ",").split(","))
    except ValueError:
        dims = ()
    if not dims or any(d <= 0 for d in dims):
        raise argparse.ArgumentTypeError(f"bad shape {s!r}: use positive integers like 1,3,224,224")
    return dims


def npy_file(s: str) -> np.ndarray:
    """argparse type: a ``.npy`` file holding one input (float32 after conversion)."""
    try:
        return np.load(s).astype(np.float32)
    except (OSError, ValueError) as e:
        raise argparse.ArgumentTypeError(f"cannot read input {s}: {e}") from None


def add_model_arguments(parser: argparse.ArgumentParser) -> None:
    """MODEL, --input-shape, --input, --seed and the compile options both commands share."""
    parser.add_argument("model", metavar="MODEL", type=model_source,
                        help="FTerViT checkpoint (.pt/.json from save_checkpoint), ONNX file, or a timm "
                             "ViT/DeiT name (ternarized with random weights)")
    parser.add_argument("--input-shape", type=shape, default=None,
                        help="input shape, e.g. 1,3,224,224 (default: from the model's config)")
    parser.add_argument("--input", type=npy_file, default=None, metavar="FILE.npy",
                        help="input to use (default: standard normal noise from --seed)")
    parser.add_argument("--seed", type=int, default=0,
                        help="seed of the random input and of timm's random weights (default 0)")
    parser.add_argument("--pack-format", choices=("b3", "b2"), default=None,
                        help="ternary packing: b3 (5 trits/byte) or b2 (4/byte); default: the target's")
    parser.add_argument("--tuning-db", type=Path, default=None, help="tuning database from fter-tvm tune")


def load_model(source: ModelSource, input_shape=None, seed: int = 0):
    """The model to compile and its input shape.

    Returns:
        ``(model, shape)``: an ``nn.Module`` (eval mode) or an ONNX path, and the input shape
        (``input_shape`` if given, else the model's own).
    Raises:
        ValueError: unknown timm name, unusable checkpoint, or an input shape an ONNX file
            contradicts (the message says which).
    """
    if source.kind == "onnx":
        import onnx

        graph = onnx.load(source.ref, load_external_data=False).graph
        dims = tuple(d.dim_value for d in graph.input[0].type.tensor_type.shape.dim)
        if input_shape is not None and tuple(input_shape) != dims:
            raise ValueError(f"{source.ref} fixes the input shape {list(dims)}; --input-shape "
                             f"{list(input_shape)} differs")
        return source.ref, dims
    if source.kind == "checkpoint":
        from fter_tvm.models import load_checkpoint

        model = load_checkpoint(source.ref)
        c = model.config
        return model, tuple(input_shape or (1, c["in_chans"], c["img_size"], c["img_size"]))
    import timm
    import torch

    from fter_tvm.models import ternarize

    torch.manual_seed(seed)
    try:
        teacher = timm.create_model(source.ref, pretrained=False)
    except RuntimeError as e:   # timm: "Unknown model (...)"
        raise ValueError(f"{source.ref}: not a checkpoint path and not a timm model ({e})") from None
    model = ternarize(teacher).eval()
    # a timm ViT has no FTerViT .config: its patch embedding knows the input it was built for
    embed = teacher.patch_embed
    return model, tuple(input_shape or (1, embed.proj.in_channels, *embed.img_size))


def example_input(shape_, given: np.ndarray | None, seed: int) -> np.ndarray:
    """``given`` (reshaped check) or seeded standard normal noise of ``shape_``."""
    if given is not None:
        if tuple(given.shape) != tuple(shape_):
            raise ValueError(f"--input has shape {list(given.shape)}, the model takes {list(shape_)}")
        return given
    return np.random.default_rng(seed).standard_normal(shape_).astype(np.float32)


def compile_from_args(args, target):
    """Load MODEL and compile it for ``target`` with the shared options; returns ``(art, x)``."""
    import torch

    from fter_tvm.compile import compile as fter_compile

    model, shape_ = load_model(args.model, args.input_shape, args.seed)
    x = example_input(shape_, args.input, args.seed)
    inputs = None if isinstance(model, str) else (torch.from_numpy(x),)
    art = fter_compile(model, target=target, example_inputs=inputs, tuning_db=args.tuning_db,
                       pack_format=args.pack_format, strict=getattr(args, "strict", False))
    return art, x
