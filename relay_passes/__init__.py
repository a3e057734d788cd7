"""Graph-level (Relax) passes of fter-tvm: recognise ternary layers by their math and fuse them.

The folder keeps the design card's name; Relay no longer exists, these are Relax passes.
"""
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
from .pipeline import fter_pipeline, phases
from .simplify_ste import SimplifySTE
from .store_side_tensors_fp16 import StoreSideTensorsFp16
from .split_qkv_attention import SplitQkvAttention
