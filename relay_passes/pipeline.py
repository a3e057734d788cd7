"""The fter-tvm Relax pass pipeline: one flat, named list of phases."""

from __future__ import annotations

from pathlib import Path

import tvm
from tvm import relax

from .canonicalize_gelu import CanonicalizeGelu
from .canonicalize_layer_norm import CanonicalizeLayerNorm
from .conv_patch_to_matmul import ConvPatchToMatmul
from .fold_constant_numpy import FoldConstantNumpy
from .fold_layer_scale import FoldLayerScale
from .fuse_attention_layout import FuseAttentionLayout
from .fuse_attention_projection import FuseAttentionProjection
from .fuse_epilogue import FuseEpilogue
from .fuse_int8_attention import FuseInt8Attention
from .fuse_patch_embedding import FusePatchEmbedding
from .fuse_patch_quantize import FusePatchQuantize
from .fuse_ternary_mlp import FuseTernaryMlp
from .fuse_ternary_layer_norm import FuseTernaryLayerNorm
from .fuse_ternary_layer_norm_float import FuseTernaryLayerNormFloat
from .fuse_ternary_matmul import FuseTernaryMatmul
from .fuse_ternary_matmul_float import FuseTernaryMatmulFloat
from .simplify_ste import SimplifySTE
from .split_qkv_attention import SplitQkvAttention


@tvm.transform.module_pass(opt_level=0, name="_DebugDump")
class _DebugDump:
    """Write the module as TVMScript to ``dump_dir/<index>_<phase>.py`` (debugging aid)."""

    def __init__(self, dump_dir: Path, index: int, phase: str):
        self.path = Path(dump_dir) / f"{index:02d}_{phase}.py"

    def transform_module(self, mod, _ctx):
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.path.write_text(mod.script(show_meta=False))
        return mod


def phases(fmt: str = "b3", strict: bool = False, low_memory: bool = False
           ) -> list[tuple[str, tvm.transform.Pass]]:
    """The named phases, in order. ``low_memory`` (a target setting) trades a little compute
    for activation memory: token-streamed MLP, int8-only Q/K/V."""
    return [
        # 1. canonicalise: STE residues away, then parameters fold into constant tensors
        ("canonicalize", tvm.transform.Sequential([SimplifySTE(), FoldConstantNumpy(),
                                                   relax.transform.FoldConstant(),
                                                   CanonicalizeGelu(), CanonicalizeLayerNorm(),
                                                   ConvPatchToMatmul()])),
        # 2-4. ternary weights recognised by value; quantizer + matmul -> quantize_act + ternary_matmul;
        # the ternary matmuls left have float inputs (no quantizer) -> ternary_matmul_float
        ("ternary_matmul", tvm.transform.Sequential([FuseTernaryMatmul(fmt=fmt, strict=strict),
                                                     FusePatchQuantize(),
                                                     FuseTernaryMatmulFloat(fmt=fmt)])),
        # 5. TernaryLayerNorm + the quantizer that follows it -> one kernel; unquantized ones alone
        ("ternary_layernorm", tvm.transform.Sequential([FuseTernaryLayerNorm(),
                                                        FuseTernaryLayerNormFloat()])),
        # 6. int8 attention (quantized Q/K/V, softmax, uint8 P) -> one kernel
        ("int8_attention", tvm.transform.Sequential([FuseInt8Attention(), FuseAttentionLayout()])),
        # 7. epilogues: bias, LayerScale into scales, then GELU / residual add
        ("epilogue", tvm.transform.Sequential([FuseEpilogue(), FoldLayerScale(), FuseEpilogue()])),
        # 8. optional, low memory: the MLP as one token-streamed kernel; int8-only Q/K/V
        ("low_memory", tvm.transform.Sequential([FuseTernaryMlp(), SplitQkvAttention(),
                                                 FuseAttentionProjection(), FusePatchEmbedding()])
         if low_memory else tvm.transform.Sequential([])),
        ("cleanup", relax.transform.DeadCodeElimination()),
    ]


def fter_pipeline(fmt: str = "b3", strict: bool = False, dump_dir: Path | None = None,
                  low_memory: bool = False) -> tvm.transform.Pass:
    """The whole graph-level pipeline as one pass; ``dump_dir`` writes the IR after each phase."""
    passes = []
    for i, (name, p) in enumerate(phases(fmt, strict, low_memory)):
        passes.append(p)
        passes.append(_DebugDump(dump_dir, i, name) if dump_dir else tvm.transform.Sequential([]))
    return tvm.transform.Sequential(passes, name="fter_pipeline")
