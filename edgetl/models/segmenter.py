"""An edge-sized semantic segmenter: a registry backbone as encoder, torchvision's LR-ASPP decoder.

The encoder is the timm model's `features_only` variant (the same offline ImageNet weights as
the classifiers): its stride-8 features feed LR-ASPP's low branch and its deepest features
(stride 16 or 32, `high_stride`) the high branch with its global-context gate. The decoder is
torchvision's `LRASPPHead` (the head of its MobileNetV3 LR-ASPP model), trained from scratch.
Class logits come out at stride 8 and are upsampled bilinearly to the input size; the
deployable graph takes their argmax (`edgetl.models.deployable`).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import torch
from torch import nn
from torch.nn import functional as F
from torchvision.models.segmentation.lraspp import LRASPPHead

from edgetl.errors import RecipeError, WeightsError
from edgetl.models.blocks import BlockLayout, timm_blocks
from edgetl.spec import PreprocessSpec

LOW_STRIDE = 8


@dataclass(frozen=True)
class SegmenterSettings:
    """The decoder's shape; stored in checkpoints as `head`."""

    kind: str = "lraspp"
    inter_channels: int = 128
    high_stride: int = 32

    def __post_init__(self) -> None:
        if self.kind != "lraspp":
            raise RecipeError(f"unknown segmentation decoder {self.kind!r}", "use lraspp")
        if self.high_stride not in (16, 32):
            raise RecipeError("high_stride must be 16 or 32")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> SegmenterSettings:
        return cls(**{k: v for k, v in data.items() if k in cls.__dataclass_fields__})


class EdgeSegmenter(nn.Module):
    """timm features -> LR-ASPP -> logits [N, classes, H, W] at the input size."""

    def __init__(self, body: nn.Module, channels: list[int], num_classes: int,
                 settings: SegmenterSettings) -> None:
        super().__init__()
        self.body = body
        self.head = LRASPPHead(channels[0], channels[1], num_classes, settings.inter_channels)
        self.settings = settings
        self.num_classes = num_classes

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        low, high = self.body(images)
        logits = self.head({"low": low, "high": high})
        return F.interpolate(logits, size=images.shape[-2:], mode="bilinear",
                             align_corners=False)

    def block_layout(self) -> BlockLayout:
        names = [n for n, _ in self.named_parameters()]
        body = [n for n in names if n.startswith("body.")]
        head = [n for n in names if not n.startswith("body.")]
        return BlockLayout(head=head, blocks=timm_blocks(self.body, body, "body."))


def _encoder(arch: str, settings: SegmenterSettings) -> tuple[nn.Module, list[int]]:
    import timm

    from edgetl.models import registry

    registry.timm_pretrained_cfg(arch)
    probe = timm.create_model(arch, pretrained=False, features_only=True)
    reductions = list(probe.feature_info.reduction())
    wanted = (LOW_STRIDE, settings.high_stride)
    if any(s not in reductions for s in wanted):
        raise RecipeError(f"{arch} has no feature level at strides {wanted}",
                          "use a convolutional backbone (EfficientNet-Lite, MobileNetV2)")
    indices = tuple(len(reductions) - 1 - reductions[::-1].index(s) for s in wanted)
    body = timm.create_model(arch, pretrained=False, features_only=True, out_indices=indices)
    return body, list(body.feature_info.channels())


def build_segmenter(arch: str, num_classes: int, settings: SegmenterSettings,
                    weights: str | None = None) -> tuple[EdgeSegmenter, PreprocessSpec]:
    """The segmenter with the encoder's pretrained ImageNet weights (decoder new), and the
    weights' own spec (the caller fits it to the input size with letterbox)."""
    from edgetl.models import registry

    body, channels = _encoder(arch, settings)
    pretrained, spec = registry.create_backbone(arch, weights)
    state = pretrained.state_dict()
    missing = [k for k in body.state_dict() if k not in state]
    if missing:
        raise WeightsError(f"the pretrained {arch} weights lack {len(missing)} encoder key(s), "
                           f"e.g. {missing[0]}")
    body.load_state_dict({k: state[k] for k in body.state_dict()}, strict=True)
    return EdgeSegmenter(body, channels, num_classes, settings), spec


def skeleton_for(info: Any) -> EdgeSegmenter:
    """The segmenter module tree of a checkpoint (`edgetl.checkpoint.CheckpointInfo`)."""
    settings = SegmenterSettings.from_dict(info.head)
    body, channels = _encoder(info.architecture, settings)
    return EdgeSegmenter(body, channels, info.num_classes, settings)
