"""FTerViT model library: ternary layers, ternarize(), checkpoints."""
from .quant import fake_quant_act, fake_quant_prob, fake_ternary, quantize_act, ternary_codes
from .layers import Int8Attention, TernaryBitConv2d, TernaryLayerNorm, TernaryLinear
