"""Pixel losses for semantic segmentation: cross-entropy, Dice, both, focal; ignore-aware.

Every loss skips pixels labelled `ignore_index` (void, letterbox padding). Class weights
(`balanced`: inverse pixel frequency, normalised to mean 1) weight cross-entropy and focal;
Dice is the mean over classes of 1 - 2|P∩T| / (|P| + |T|) on softmax probabilities.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from edgetl.errors import RecipeError
from edgetl.recipe import LossConfig

SEMANTIC_LOSSES = ("cross_entropy", "dice", "ce_dice", "focal")


def pixel_class_weights(pixel_counts: list[int]) -> np.ndarray:
    """Inverse pixel frequency, normalised to mean 1 (classes without pixels get the mean)."""
    counts = np.asarray(pixel_counts, dtype=np.float64)
    present = counts > 0
    if not present.any():
        raise RecipeError("balanced class weights need labelled pixels")
    weights = np.ones_like(counts)
    weights[present] = counts[present].sum() / (present.sum() * counts[present])
    return weights / weights.mean()


def dice_loss(logits: torch.Tensor, target: torch.Tensor, ignore_index: int) -> torch.Tensor:
    """1 - mean Dice over the classes present in the batch (prediction or target)."""
    probs = torch.softmax(logits.float(), dim=1)
    valid = (target != ignore_index).unsqueeze(1)
    onehot = F.one_hot(target.clamp(0, logits.shape[1] - 1), logits.shape[1])
    onehot = onehot.permute(0, 3, 1, 2).float() * valid
    probs = probs * valid
    inter = (probs * onehot).sum(dim=(0, 2, 3))
    total = probs.sum(dim=(0, 2, 3)) + onehot.sum(dim=(0, 2, 3))
    present = total > 0
    dice = (2 * inter[present] + 1.0) / (total[present] + 1.0)
    return 1.0 - dice.mean()


class SegmentationLoss(nn.Module):
    """The recipe's pixel loss as one module: (logits [N,C,H,W], target [N,H,W]) -> scalar."""

    def __init__(self, kind: str, ignore_index: int, weight: torch.Tensor | None,
                 gamma: float) -> None:
        super().__init__()
        if kind not in SEMANTIC_LOSSES:
            raise RecipeError(f"loss.type {kind} does not apply to semantic segmentation",
                              f"use one of {', '.join(SEMANTIC_LOSSES)}")
        self.kind, self.ignore_index, self.gamma = kind, ignore_index, gamma
        self.register_buffer("weight", weight)

    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        logits = logits.float()
        if self.kind == "dice":
            return dice_loss(logits, target, self.ignore_index)
        if self.kind == "focal":
            ce = F.cross_entropy(logits, target, ignore_index=self.ignore_index,
                                 reduction="none")
            valid = target != self.ignore_index
            p = torch.exp(-ce)
            focal = (1 - p) ** self.gamma * ce
            if self.weight is not None:
                focal = focal * self.weight[target.clamp(0, len(self.weight) - 1)]
            return focal[valid].mean() if valid.any() else focal.sum() * 0
        ce = F.cross_entropy(logits, target, weight=self.weight, ignore_index=self.ignore_index)
        if self.kind == "ce_dice":
            return ce + dice_loss(logits, target, self.ignore_index)
        return ce


def build_segmentation_loss(cfg: LossConfig, pixel_counts: list[int], ignore_index: int
                            ) -> tuple[SegmentationLoss, list[float] | None]:
    """The criterion and the class weights it uses (None when unweighted)."""
    weights: np.ndarray | None = None
    if cfg.class_weights == "balanced":
        weights = pixel_class_weights(pixel_counts)
    elif isinstance(cfg.class_weights, list):
        if len(cfg.class_weights) != len(pixel_counts):
            raise RecipeError(f"loss.class_weights has {len(cfg.class_weights)} values for "
                              f"{len(pixel_counts)} classes")
        weights = np.asarray(cfg.class_weights, dtype=np.float64)
    weight_t = torch.tensor(weights, dtype=torch.float32) if weights is not None else None
    loss = SegmentationLoss(cfg.type, ignore_index, weight_t, cfg.focal_gamma)
    return loss, None if weights is None else [float(w) for w in weights]
