"""Train the demo FTerViT on scikit-learn digits: FP32 teacher -> KD (phase 1) -> QAT recovery (phase 2).

The recipe is the paper's (SPEC §1) at toy scale: a timm ``VisionTransformer`` teacher is trained
in fp32; ``student_from_teacher(teacher)`` initialises the FTerViT student, which is distilled from the frozen teacher
(KL at temperature T plus cross-entropy, AdamW, cosine lr), then recovered at a 10x lower lr.
"""

from __future__ import annotations

import dataclasses
import math
import time
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn
from tqdm.auto import tqdm

from .data import digits_split
from .models import FTerViT, FTerViTConfig, model_size_bytes, save_checkpoint

DEMO_CONFIG = FTerViTConfig(img_size=32, patch_size=8, in_chans=1, num_classes=10, embed_dim=64,
                            depth=4, num_heads=2, mlp_ratio=2.0, qkv_bias=True, eps=1e-6)


@dataclass
class TrainSettings:
    """Hyper-parameters of ``train_demo`` (defaults: the shipped checkpoint)."""

    teacher_epochs: int = 40
    kd_epochs: int = 20          # phase 1: distillation
    qat_epochs: int = 6          # phase 2: recovery at lr / 10
    batch_size: int = 64
    teacher_lr: float = 2e-3
    lr: float = 1e-3             # phase 1 peak lr; phase 2 uses lr / 10
    weight_decay: float = 0.05
    temperature: float = 4.0
    kd_weight: float = 0.7       # loss = kd_weight * T^2 * KL + (1 - kd_weight) * CE
    max_shift: float = 3.0       # random translation augmentation, pixels of the 32x32 image
    seed: int = 0
    threads: int = 1             # tiny ops: 1 thread beats 2 and does not spin when cores are busy


def make_teacher(cfg: FTerViTConfig = DEMO_CONFIG) -> nn.Module:
    """A plain fp32 timm VisionTransformer with the architecture of ``cfg``."""
    from timm.models.vision_transformer import VisionTransformer

    return VisionTransformer(
        img_size=cfg.img_size, patch_size=cfg.patch_size, in_chans=cfg.in_chans,
        num_classes=cfg.num_classes, embed_dim=cfg.embed_dim, depth=cfg.depth,
        num_heads=cfg.num_heads, mlp_ratio=cfg.mlp_ratio, qkv_bias=cfg.qkv_bias,
        init_values=cfg.layer_scale_init, no_embed_class=cfg.no_embed_class,
        norm_layer=partial(nn.LayerNorm, eps=cfg.eps), global_pool="token")


def student_from_teacher(teacher: nn.Module, cfg: FTerViTConfig) -> FTerViT:
    """The FTerViT of ``cfg`` (checkpointable) starting from the weights of ``make_teacher(cfg)``:
    state-dict names line up except the patch conv (``patch_embed.proj.*`` -> ``patch_embed.*``)."""
    student = FTerViT(cfg)
    state = {k.replace("patch_embed.proj.", "patch_embed."): v
             for k, v in teacher.state_dict().items()}
    student.load_state_dict(state)
    return student.train(teacher.training)


@torch.no_grad()
def evaluate(model: nn.Module, x: torch.Tensor, y: torch.Tensor, batch_size: int = 512) -> float:
    """Top-1 accuracy of ``model`` (put in eval mode) on ``(x, y)``."""
    model.eval()
    correct = sum((model(x[i:i + batch_size]).argmax(-1) == y[i:i + batch_size]).sum().item()
                  for i in range(0, len(x), batch_size))
    return correct / len(x)


def _augment(x: torch.Tensor, max_shift: float, gen: torch.Generator) -> torch.Tensor:
    """Random per-image translation by up to ``max_shift`` pixels (border padding)."""
    if max_shift <= 0:
        return x
    n, _, h, _ = x.shape
    shift = (torch.rand(n, 2, generator=gen) * 2 - 1) * (2 * max_shift / h)
    theta = torch.zeros(n, 2, 3)
    theta[:, 0, 0] = theta[:, 1, 1] = 1.0
    theta[:, :, 2] = shift
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    return F.grid_sample(x, grid, padding_mode="border", align_corners=False)


def _fit(model: nn.Module, x: torch.Tensor, y: torch.Tensor, *, epochs: int, lr: float,
         s: TrainSettings, teacher: nn.Module | None, desc: str, progress: bool) -> float:
    """AdamW + per-step cosine schedule; CE, or KD against ``teacher`` when given. Returns last loss."""
    gen = torch.Generator().manual_seed(s.seed)
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=s.weight_decay)
    steps_per_epoch = math.ceil(len(x) / s.batch_size)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=max(1, epochs * steps_per_epoch))
    if teacher is not None:
        teacher.eval()
    bar = tqdm(range(epochs), desc=desc, disable=not progress)
    loss_avg = float("nan")
    for _ in bar:
        model.train()
        perm = torch.randperm(len(x), generator=gen)
        total = 0.0
        for i in range(0, len(x), s.batch_size):
            idx = perm[i:i + s.batch_size]
            xb, yb = _augment(x[idx], s.max_shift, gen), y[idx]
            loss = _loss(model(xb), yb, teacher, xb, s)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            total += loss.item() * len(idx)
        loss_avg = total / len(x)
        bar.set_postfix(loss=f"{loss_avg:.4f}")
    return loss_avg


def _loss(logits: torch.Tensor, y: torch.Tensor, teacher: nn.Module | None, xb: torch.Tensor,
          s: TrainSettings) -> torch.Tensor:
    ce = F.cross_entropy(logits, y)
    if teacher is None:
        return ce
    with torch.no_grad():
        t_logits = teacher(xb)
    t = s.temperature
    kl = F.kl_div(F.log_softmax(logits / t, -1), F.log_softmax(t_logits / t, -1),
                  log_target=True, reduction="batchmean") * t * t
    return s.kd_weight * kl + (1 - s.kd_weight) * ce


def train_demo(out_dir: str | Path | None = None, settings: TrainSettings | None = None,
               progress: bool = True, config: FTerViTConfig = DEMO_CONFIG, **overrides) -> dict:
    """Train teacher and ternary student on digits; optionally save the student checkpoint.

    Args:
        out_dir: where to write ``digits_fter_vit.{pt,json}`` (None: do not save).
        settings: hyper-parameters (default ``TrainSettings()``); ``overrides`` replace fields,
            e.g. ``train_demo(None, kd_epochs=2)``.
        progress: show tqdm bars.
        config: the architecture (teacher and student share it).
    Returns:
        dict with ``teacher_acc``, ``student_kd_acc`` (after phase 1), ``student_acc`` (after
        phase 2), ``ternarized_acc`` (teacher ternarized, before any training), wall times in
        seconds (``teacher_s``, ``kd_s``, ``qat_s``, ``total_s``), process CPU time ``cpu_s``
        (unaffected by other jobs on the machine), ``sizes``, ``config``,
        ``settings``, ``student`` (the model) and ``checkpoint`` (JSON path or None).
    """
    s = dataclasses.replace(settings or TrainSettings(), **overrides)
    threads = torch.get_num_threads()
    torch.set_num_threads(s.threads)
    try:
        result = _train(s, config, progress)
    finally:
        torch.set_num_threads(threads)
    if out_dir is not None:
        meta = {k: v for k, v in result.items() if k not in ("student", "checkpoint", "config")}
        meta["torch"] = torch.__version__
        path = save_checkpoint(result["student"], Path(out_dir) / "digits_fter_vit.json", meta)
        result["checkpoint"] = str(path)
    return result


def _train(s: TrainSettings, config: FTerViTConfig, progress: bool) -> dict:
    torch.manual_seed(s.seed)
    x_tr, y_tr, x_te, y_te = digits_split(seed=s.seed)
    t0, c0 = time.perf_counter(), time.process_time()

    teacher = make_teacher(config)
    _fit(teacher, x_tr, y_tr, epochs=s.teacher_epochs, lr=s.teacher_lr, s=s, teacher=None,
         desc="teacher fp32", progress=progress)
    teacher_acc = evaluate(teacher, x_te, y_te)
    t1 = time.perf_counter()

    teacher.requires_grad_(False)
    student = student_from_teacher(teacher, config)
    student.requires_grad_(True)
    ternarized_acc = evaluate(student, x_te, y_te)
    _fit(student, x_tr, y_tr, epochs=s.kd_epochs, lr=s.lr, s=s, teacher=teacher,
         desc="phase 1 KD", progress=progress)
    kd_acc = evaluate(student, x_te, y_te)
    t2 = time.perf_counter()
    _fit(student, x_tr, y_tr, epochs=s.qat_epochs, lr=s.lr / 10, s=s, teacher=teacher,
         desc="phase 2 QAT", progress=progress)
    student_acc = evaluate(student, x_te, y_te)
    t3, c3 = time.perf_counter(), time.process_time()

    sizes = model_size_bytes(student)
    return {
        "teacher_acc": teacher_acc, "ternarized_acc": ternarized_acc, "student_kd_acc": kd_acc,
        "student_acc": student_acc, "teacher_s": t1 - t0, "kd_s": t2 - t1, "qat_s": t3 - t2,
        "total_s": t3 - t0, "cpu_s": c3 - c0,
        "sizes": {k: sizes[k] for k in ("params", "fp32", "2bit", "base3")},
        "config": student.config, "settings": dataclasses.asdict(s), "student": student.eval(),
        "checkpoint": None,
    }
