"""scikit-learn's bundled 8x8 digits (offline) as 1x32x32 images for the demo FTerViT."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

IMG_SIZE = 32
TEST_FRACTION = 0.2
PIXEL_MAX = 16.0   # digits pixels are integers 0..16
MEAN, STD = 0.5, 0.5   # maps [0, 1] to [-1, 1]


def preprocess(images: np.ndarray | torch.Tensor) -> torch.Tensor:
    """``[N, 8, 8]`` digits pixels (0..16) -> normalized float32 ``[N, 1, 32, 32]`` (bilinear)."""
    x = torch.as_tensor(np.asarray(images), dtype=torch.float32).reshape(-1, 1, 8, 8) / PIXEL_MAX
    x = F.interpolate(x, size=(IMG_SIZE, IMG_SIZE), mode="bilinear", align_corners=False)
    return ((x - MEAN) / STD).contiguous()


def digits_split(seed: int = 0) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Fixed stratified 80/20 split of the 1797 digits: 1437 train, 360 test images.

    Returns:
        ``(x_train, y_train, x_test, y_test)``: float32 ``[N, 1, 32, 32]`` images and int64 labels.
    """
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    d = load_digits()
    idx_train, idx_test = train_test_split(np.arange(len(d.target)), test_size=TEST_FRACTION,
                                           stratify=d.target, random_state=seed)
    x = preprocess(d.images)
    y = torch.as_tensor(d.target, dtype=torch.int64)
    return x[idx_train], y[idx_train], x[idx_test], y[idx_test]
