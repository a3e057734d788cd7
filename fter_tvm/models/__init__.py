"""FTerViT model library: ternary layers, ternarize(), checkpoints."""
from .quant import fake_quant_act, fake_quant_prob, fake_ternary, quantize_act, ternary_codes
from .layers import Int8Attention, TernaryBitConv2d, TernaryLayerNorm, TernaryLinear
from .vit import FTerViT, FTerViTConfig
from .ternarize import ternarize
from .checkpoint import load_checkpoint, load_demo_model, save_checkpoint
from .size import model_size_bytes
from .integer import integer_logits
from .fidelity import fidelity, format_fidelity, randomize_near_zero
