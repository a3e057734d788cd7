"""TensorIR compute of every fused kernel, one module per op family -- the scalar meaning, before
any target schedules it:

* ``matmul``: ``ternary_matmul`` (epilogue none/GELU/residual), ``ternary_matmul_heads``,
  ``ternary_matmul_channels``, ``ternary_matmul_float``
* ``mlp``: ``ternary_mlp`` (the whole MLP, optionally in place)
* ``attention``: ``int8_attention[_qkv,_q,_block]``
* ``normalization``: ``ternary_layernorm_quant``, ``ternary_layernorm_float``
* ``quantize``: ``quantize_act[_tensor]``, ``quantize_patches``, ``quantize_channels``
* ``embedding``: ``patch_embed``
* ``kernel_base`` (tag, decoded trit, accumulation, absmax reduction, epilogues: what every
  family shares), ``fp16`` (fp16 side tensors as uint16 bit patterns)

Every builder returns a PrimFunc tagged with ``fter.kind`` (the family) and ``fter.params`` (its
specialization); the target schedules (``schedules.x86``, ``schedules.esp32s3``) dispatch on the
kind. A new op goes into its family's module (or a new one here) and is exported below; its
schedules go into each target's package. Target-specific forms of an op (x86 tiled layouts, the
esp32s3 weight-stationary MLP) live with their target, the integer forms in ``schedules.integer``.
"""

from .attention import int8_attention, int8_attention_block, int8_attention_q, int8_attention_qkv
from .embedding import patch_embed
from .kernel_base import ACT_EPS, EPILOGUES, kernel_name
from .matmul import (ROW_FORMATS, row_format, ternary_matmul, ternary_matmul_channels,
                     ternary_matmul_float, ternary_matmul_heads)
from .mlp import ternary_mlp
from .normalization import ternary_layernorm_float, ternary_layernorm_quant
from .quantize import quantize_act, quantize_act_tensor, quantize_channels, quantize_patches

__all__ = [
    "ACT_EPS", "EPILOGUES", "ROW_FORMATS", "int8_attention", "int8_attention_block",
    "int8_attention_q", "int8_attention_qkv", "kernel_name", "patch_embed", "quantize_act",
    "quantize_act_tensor", "quantize_channels", "quantize_patches", "row_format",
    "ternary_layernorm_float", "ternary_layernorm_quant", "ternary_matmul",
    "ternary_matmul_channels", "ternary_matmul_float", "ternary_matmul_heads", "ternary_mlp",
]
