"""Split a classifier into a frozen prefix and a trainable suffix, so frozen work runs once.

When a phase trains without augmentation, the frozen part's output for an image never changes
(frozen batch-norm layers are in eval mode), so it is computed once per image and the epochs only
run the trainable suffix. Head-only phases cache pooled features (any timm model); phases that
train the last stages of an EfficientNet/MobileNetV2-style model cache the input of the first
trainable stage.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn

from edgetl.train.groups import BlockLayout


@dataclass
class FrozenSplit:
    """prefix: frozen, run once per image in eval mode; suffix: trains, maps it to logits."""

    prefix: Callable[[torch.Tensor], torch.Tensor]
    suffix: Callable[[torch.Tensor], torch.Tensor]
    where: str
    first_trainable: int = -1  # first body block the suffix holds (-1: head only)
    # prefix output -> pooled features (eval mode): lets a head-only phase reuse this cache
    to_pooled: Callable[[torch.Tensor], torch.Tensor] | None = None


def _is_stage_model(model: nn.Module) -> bool:
    return all(hasattr(model, a) for a in ("conv_stem", "bn1", "blocks", "conv_head", "bn2",
                                           "forward_head"))


def frozen_split(model: nn.Module, layout: BlockLayout, trainable: list[int]) -> FrozenSplit | None:
    """The split for the trainable block indices, or None when nothing can be cached."""
    if not trainable:
        def prefix(x: torch.Tensor) -> torch.Tensor:
            return model.forward_head(model.forward_features(x), pre_logits=True)

        def suffix(f: torch.Tensor) -> torch.Tensor:
            return model.get_classifier()(f)

        return FrozenSplit(prefix, suffix, "pooled features", -1)
    first = min(trainable)
    # timm's coarse layout of these models: [stem, stage 0..S-1 (+ conv_head, alone or with the
    # last stage)], so stage i is block i + 1 either way.
    if not _is_stage_model(model) or first == 0 or \
            layout.num_blocks not in (len(model.blocks) + 1, len(model.blocks) + 2):
        return None
    stages_frozen = first - 1

    def stage_prefix(x: torch.Tensor) -> torch.Tensor:
        x = model.bn1(model.conv_stem(x))
        for stage in model.blocks[:stages_frozen]:
            x = stage(x)
        return x

    def stage_suffix(f: torch.Tensor) -> torch.Tensor:
        for stage in model.blocks[stages_frozen:]:
            f = stage(f)
        return model.forward_head(model.bn2(model.conv_head(f)))

    def stage_to_pooled(f: torch.Tensor) -> torch.Tensor:
        for stage in model.blocks[stages_frozen:]:
            f = stage(f)
        return model.forward_head(model.bn2(model.conv_head(f)), pre_logits=True)

    return FrozenSplit(stage_prefix, stage_suffix, f"input of stage {stages_frozen}", first,
                       stage_to_pooled)
