"""Losses for imbalanced data: weighted cross-entropy with label smoothing, and focal loss."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from edgetl.errors import RecipeError
from edgetl.recipe import LossConfig


def balanced_class_weights(counts: list[int]) -> np.ndarray:
    """scikit-learn's 'balanced' rule: n_samples / (n_classes * count_c)."""
    arr = np.asarray(counts, dtype=np.float64)
    if (arr <= 0).any():
        raise RecipeError("balanced class weights need at least one training image per class")
    return arr.sum() / (len(arr) * arr)


class FocalLoss(nn.Module):
    """Lin et al. 2017: mean over samples of -alpha_y * (1 - p_y)^gamma * log p_y."""

    def __init__(self, gamma: float = 2.0, weight: torch.Tensor | None = None) -> None:
        super().__init__()
        self.gamma = gamma
        self.register_buffer("weight", weight if weight is not None else None)

    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        log_p = F.log_softmax(logits.float(), dim=1).gather(1, target[:, None]).squeeze(1)
        loss = -((1.0 - log_p.exp()) ** self.gamma) * log_p
        if self.weight is not None:
            loss = loss * self.weight[target]
        return loss.mean()


def build_loss(cfg: LossConfig, class_counts: list[int]) -> tuple[nn.Module, list[float] | None]:
    """The criterion and the class weights it uses (None when unweighted)."""
    weights: np.ndarray | None = None
    if cfg.class_weights == "balanced":
        weights = balanced_class_weights(class_counts)
    elif isinstance(cfg.class_weights, list):
        if len(cfg.class_weights) != len(class_counts):
            raise RecipeError(
                f"loss.class_weights has {len(cfg.class_weights)} values for "
                f"{len(class_counts)} classes"
            )
        weights = np.asarray(cfg.class_weights, dtype=np.float64)
    weight_t = torch.tensor(weights, dtype=torch.float32) if weights is not None else None
    if cfg.type == "focal":
        return FocalLoss(cfg.focal_gamma, weight_t), _as_list(weights)
    return nn.CrossEntropyLoss(weight=weight_t, label_smoothing=cfg.label_smoothing), _as_list(
        weights
    )


def _as_list(weights: np.ndarray | None) -> list[float] | None:
    return None if weights is None else [float(w) for w in weights]
