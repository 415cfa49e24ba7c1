"""Losses for imbalanced data: weighted cross-entropy with label smoothing, and focal loss."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from edgetl.errors import RecipeError
from edgetl.recipe import LossConfig


def _counts(counts: list[int], rule: str) -> np.ndarray:
    arr = np.asarray(counts, dtype=np.float64)
    if (arr <= 0).any():
        raise RecipeError(f"{rule} class weights need at least one training image per class")
    return arr


def balanced_class_weights(counts: list[int]) -> np.ndarray:
    """scikit-learn's 'balanced' rule: n_samples / (n_classes * count_c)."""
    arr = _counts(counts, "balanced")
    return arr.sum() / (len(arr) * arr)


def _per_sample_mean_one(raw: np.ndarray, arr: np.ndarray) -> np.ndarray:
    """Scale weights so their mean over the training images is 1 (sum_c n_c w_c = N), the
    convention of 'balanced': the loss keeps its magnitude, only the classes' shares move."""
    return raw * arr.sum() / (arr * raw).sum()


def sqrt_class_weights(counts: list[int]) -> np.ndarray:
    """Inverse square-root frequency: w_c proportional to 1/sqrt(n_c), mean 1 per image.

    At a 30:1 ratio the rare class weighs 5.5x the common one instead of 30x: it still counts,
    but its few images no longer outweigh the majority class."""
    arr = _counts(counts, "sqrt")
    return _per_sample_mean_one(1.0 / np.sqrt(arr), arr)


def effective_number_weights(counts: list[int], beta: float) -> np.ndarray:
    """Cui et al. 2019, class-balanced loss: w_c proportional to 1 / E_c with the effective
    number E_c = (1 - beta^n_c) / (1 - beta), mean 1 per image (Cui et al. scale to sum k).

    E_c grows like n_c for small classes and saturates at 1 / (1 - beta): with beta 0.99 no class
    counts as more than 100 images, so the weights' ratio stays bounded however large the
    majority class is."""
    arr = _counts(counts, "effective")
    effective = (1.0 - np.power(beta, arr)) / (1.0 - beta)
    return _per_sample_mean_one(1.0 / effective, arr)


def class_weights_for(cfg: LossConfig, class_counts: list[int]) -> np.ndarray | None:
    """The weights the recipe's `class_weights` asks for (None: unweighted)."""
    rule = cfg.class_weights
    if isinstance(rule, list):
        if len(rule) != len(class_counts):
            raise RecipeError(
                f"loss.class_weights has {len(rule)} values for {len(class_counts)} classes"
            )
        return np.asarray(rule, dtype=np.float64)
    if rule == "balanced":
        return balanced_class_weights(class_counts)
    if rule == "sqrt":
        return sqrt_class_weights(class_counts)
    if rule == "effective":
        return effective_number_weights(class_counts, cfg.effective_beta)
    return None


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
    weights = class_weights_for(cfg, class_counts)
    weight_t = torch.tensor(weights, dtype=torch.float32) if weights is not None else None
    if cfg.type == "focal":
        return FocalLoss(cfg.focal_gamma, weight_t), _as_list(weights)
    return nn.CrossEntropyLoss(weight=weight_t, label_smoothing=cfg.label_smoothing), _as_list(
        weights
    )


def _as_list(weights: np.ndarray | None) -> list[float] | None:
    return None if weights is None else [float(w) for w in weights]
