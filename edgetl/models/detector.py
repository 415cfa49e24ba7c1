"""An edge-sized detector: a registry backbone's multi-scale features, an FPN and an FCOS head.

The backbone is the timm model's `features_only` variant (strides 8, 16 and 32 from its
`feature_info`), loaded with the same offline ImageNet weights as the classifiers. Neck and
head come from torchvision (`FeaturePyramidNetwork` with P6/P7, `FCOSHead`), and so do the
anchor points, target assignment, box coding and losses (`FCOS.compute_loss`): the model *is*
a torchvision `FCOS`, so its state dict has torchvision's layout (`backbone.body`,
`backbone.fpn`, `head`) and a user's torchvision FCOS checkpoint loads into it. What differs:
no `GeneralizedRCNNTransform` (edgetl's letterbox preprocessing gives fixed-size inputs, the
spec records it), and the towers' depth and width are settings, because the torchvision
defaults (4 convs of 256 channels per tower) cost 40+ ms per image on a 2-core CPU. The towers
keep torchvision's GroupNorm: they are shared by every pyramid level, and a batch norm there
learns running statistics that mix the levels, while group norm has none to get wrong. Why
FCOS and these defaults: docs/ARCHITECTURE.md and benchmarks/results/detector-choice-*.md.

Post-processing (decode, score, NMS, top-K) lives in `edgetl.models.detection_outputs`, shared
by evaluation in torch and the exported graph.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import asdict, dataclass, field
from typing import Any

import torch
from torch import nn
from torchvision.models.detection._utils import BoxLinearCoder
from torchvision.models.detection.anchor_utils import AnchorGenerator
from torchvision.models.detection.fcos import (
    FCOS,
    FCOSClassificationHead,
    FCOSHead,
    FCOSRegressionHead,
)
from torchvision.models.detection.image_list import ImageList
from torchvision.ops.feature_pyramid_network import FeaturePyramidNetwork, LastLevelP6P7

from edgetl.errors import RecipeError, WeightsError
from edgetl.models.blocks import BlockLayout, timm_blocks
from edgetl.spec import PreprocessSpec

FEATURE_STRIDES = (8, 16, 32)  # backbone levels the pyramid starts from (C3, C4, C5)
CLASS_LAYERS = ("head.classification_head.cls_logits.",)  # replaced when classes differ


@dataclass(frozen=True)
class DetectorSettings:
    """The detector's shape and post-processing; stored in checkpoints as `head`."""

    kind: str = "fcos"
    fpn_channels: int = 64
    head_convs: int = 2
    head_norm: str = "group"  # group (GroupNorm, torchvision's) | none
    extra_levels: int = 2  # P6 and P7 on top of P3-P5
    center_sampling_radius: float = 1.5
    score_threshold: float = 0.05  # kept in the graph's NMS; predict filters higher
    nms_iou: float = 0.6
    max_detections: int = 100
    anchor_scale: float = 1.0  # anchor (point) size relative to the level's stride
    extra: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.kind != "fcos":
            raise RecipeError(f"unknown detector head {self.kind!r}", "use fcos")
        if self.head_norm not in ("group", "none"):
            raise RecipeError(f"head_norm must be group or none, got {self.head_norm!r}")
        if self.extra_levels not in (0, 1, 2):
            raise RecipeError("extra_levels must be 0, 1 or 2 (P6, P7)")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> DetectorSettings:
        known = {k: v for k, v in data.items() if k in cls.__dataclass_fields__}
        return cls(**known)


def head_groups(channels: int) -> int:
    """torchvision's 32 groups, but at least 2 channels per group (a 1x1 top level, from small
    inputs, has one value per channel, and group norm needs more than one per group), and a
    divisor of `channels`, so every width the recipe schema accepts builds (16: 8 groups)."""
    most = max(1, min(32, channels // 2))
    return next(g for g in range(most, 0, -1) if channels % g == 0)


class EdgeFCOSHead(FCOSHead):
    """torchvision's FCOS head with the towers' norm as a setting: torchvision's own
    `FCOSHead` makes GroupNorm(32, ...) itself, which fails for widths not divisible by 32;
    its two sub-heads take a `norm_layer`. The same layers, in the same order, with the same
    initialisation (a norm draws no random numbers)."""

    def __init__(self, in_channels: int, num_classes: int, num_convs: int,
                 norm_layer: Any) -> None:
        nn.Module.__init__(self)
        self.box_coder = BoxLinearCoder(normalize_by_size=True)
        self.classification_head = FCOSClassificationHead(in_channels, 1, num_classes,
                                                          num_convs, norm_layer=norm_layer)
        self.regression_head = FCOSRegressionHead(in_channels, 1, num_convs,
                                                  norm_layer=norm_layer)


class LastLevelP6(LastLevelP6P7):
    """P6 only (torchvision's block makes both P6 and P7)."""

    def forward(self, p: list[torch.Tensor], c: list[torch.Tensor], names: list[str]
                ) -> tuple[list[torch.Tensor], list[str]]:
        x = p[-1] if self.use_P5 else c[-1]
        p.append(self.p6(x))
        names.append("p6")
        return p, names


class TimmPyramid(nn.Module):
    """timm `features_only` body + torchvision FPN; returns an ordered dict of pyramid levels.

    Named `body` and `fpn` like torchvision's `BackboneWithFPN`, so detector checkpoints keep
    torchvision's key layout.
    """

    def __init__(self, body: nn.Module, in_channels: list[int], out_channels: int,
                 extra_levels: int) -> None:
        super().__init__()
        self.body = body
        extra = {0: None, 1: LastLevelP6(out_channels, out_channels),
                 2: LastLevelP6P7(out_channels, out_channels)}[extra_levels]
        self.fpn = FeaturePyramidNetwork(in_channels, out_channels, extra_blocks=extra)
        self.out_channels = out_channels

    def forward(self, x: torch.Tensor) -> OrderedDict[str, torch.Tensor]:
        features = self.body(x)
        return self.fpn(OrderedDict((str(i), f) for i, f in enumerate(features)))


class EdgeFCOS(FCOS):
    """torchvision's FCOS on fixed-size, already normalised inputs (no internal transform)."""

    def __init__(self, backbone: TimmPyramid, num_classes: int, settings: DetectorSettings,
                 input_size: tuple[int, int]) -> None:
        levels = len(FEATURE_STRIDES) + settings.extra_levels
        strides = [FEATURE_STRIDES[0] * 2**i for i in range(levels)]
        sizes = tuple((stride * settings.anchor_scale,) for stride in strides)
        anchors = AnchorGenerator(sizes, ((1.0,),) * levels)
        head = EdgeFCOSHead(backbone.out_channels, num_classes, settings.head_convs,
                            lambda c: nn.Identity() if settings.head_norm == "none"
                            else nn.GroupNorm(head_groups(c), c))
        super().__init__(backbone, num_classes, anchor_generator=anchors, head=head,
                         center_sampling_radius=settings.center_sampling_radius,
                         score_thresh=settings.score_threshold, nms_thresh=settings.nms_iou,
                         detections_per_img=settings.max_detections,
                         min_size=min(input_size), max_size=max(input_size))
        self.settings = settings
        self.input_size = tuple(input_size)
        self.num_classes = num_classes
        self.strides = tuple(strides)

    def head_outputs(self, images: torch.Tensor) -> tuple[dict[str, torch.Tensor],
                                                         list[torch.Tensor]]:
        """Raw head outputs ([N, A, C] logits, [N, A, 4] box codes, [N, A, 1] centreness) and
        the pyramid features they came from."""
        features = list(self.backbone(images).values())
        return self.head(features), features

    def anchor_boxes(self, images: torch.Tensor, features: list[torch.Tensor]) -> torch.Tensor:
        """The anchor (point) boxes of one image of this input size, [A, 4]."""
        size = [(images.shape[-2], images.shape[-1])]
        return self.anchor_generator(ImageList(images[:1], size), features)[0]

    def losses(self, images: torch.Tensor, targets: list[dict[str, torch.Tensor]]
               ) -> dict[str, torch.Tensor]:
        """torchvision's FCOS losses (focal classification, GIoU boxes, BCE centreness)."""
        head, features = self.head_outputs(images)
        anchors = self.anchor_boxes(images, features)
        per_level = [f.size(2) * f.size(3) for f in features]
        return self.compute_loss(targets, head, [anchors] * len(images), per_level)

    def block_layout(self) -> BlockLayout:
        """Backbone stages are the body blocks; the new neck and head train from phase A."""
        names = [n for n, _ in self.named_parameters()]
        body = [n for n in names if n.startswith("backbone.body.")]
        head = [n for n in names if n not in set(body)]
        return BlockLayout(head=head, blocks=timm_blocks(self.backbone.body, body,
                                                         "backbone.body."))


def _features_body(arch: str) -> tuple[nn.Module, list[int]]:
    import timm

    from edgetl.models import registry

    registry.timm_pretrained_cfg(arch)  # a clear error for unknown names
    try:
        body = timm.create_model(arch, pretrained=False, features_only=True,
                                 out_indices=_out_indices(arch))
    except (RuntimeError, ValueError, TypeError) as exc:
        raise RecipeError(f"{arch} has no multi-scale features for a detector: {exc}",
                          "use a convolutional backbone (EfficientNet-Lite, MobileNetV2, "
                          "ResNet)") from exc
    return body, list(body.feature_info.channels())


def _out_indices(arch: str) -> tuple[int, ...]:
    """The feature levels at strides 8, 16 and 32, read from timm's feature_info."""
    import timm

    probe = timm.create_model(arch, pretrained=False, features_only=True)
    reductions = list(probe.feature_info.reduction())
    missing = [s for s in FEATURE_STRIDES if s not in reductions]
    if missing:
        raise RecipeError(f"{arch} has no feature level at stride(s) {missing}",
                          "use a convolutional backbone with strides 8, 16 and 32")
    return tuple(len(reductions) - 1 - reductions[::-1].index(s) for s in FEATURE_STRIDES)


def build_detector(arch: str, num_classes: int, settings: DetectorSettings,
                   input_size: tuple[int, int], weights: str | None = None,
                   model_class: type[EdgeFCOS] = EdgeFCOS,
                   class_layers: tuple[str, ...] = CLASS_LAYERS,
                   optional: tuple[str, ...] = ()) -> tuple[EdgeFCOS, PreprocessSpec]:
    """The detector with the backbone's pretrained ImageNet weights (neck and head new), and
    the weights' own spec (the caller fits it to the input size with letterbox).

    `model_class` (an `EdgeFCOS` subclass, e.g. the instance model), `class_layers` and
    `optional` are passed on to `load_detector_checkpoint` when `weights` is a checkpoint."""
    from edgetl.models import registry

    body, channels = _features_body(arch)
    detector_file = weights is not None and _is_detector_file(weights)
    if detector_file:
        spec = registry.pretrained_spec(arch, None)
    else:
        pretrained, spec = registry.create_backbone(arch, weights)
        _load_body(body, pretrained.state_dict(), arch)
    model = model_class(TimmPyramid(body, channels, settings.fpn_channels,
                                    settings.extra_levels), num_classes, settings, input_size)
    if detector_file:
        load_detector_checkpoint(model, str(weights), class_layers, optional)
    return model, spec


def _load_body(body: nn.Module, state: dict[str, torch.Tensor], arch: str) -> None:
    """The classifier's weights into the features-only body: every body key must be there."""
    wanted = body.state_dict()
    missing = [k for k in wanted if k not in state]
    if missing:
        raise WeightsError(f"the pretrained {arch} weights lack {len(missing)} backbone "
                           f"key(s), e.g. {missing[0]}")
    body.load_state_dict({k: state[k] for k in wanted}, strict=True)


def _is_detector_file(path: str) -> bool:
    """True for a torchvision-format detector checkpoint (keys under backbone./head.)."""
    from edgetl.models import weights as W

    if str(path).lower() in ("random", "timm-cache"):
        return False
    state = W.read_state_dict(path)
    return any(k.startswith("backbone.body.") for k in state) and any(
        k.startswith("head.") for k in state)



def load_detector_checkpoint(model: EdgeFCOS, path: str,
                             class_layers: tuple[str, ...] = CLASS_LAYERS,
                             optional: tuple[str, ...] = ()) -> list[str]:
    """Load a torchvision-format detector checkpoint; its class layers (`class_layers`
    prefixes) are replaced (kept new) when its class count differs. A part named in
    `optional` (a key prefix) that the file lacks entirely stays new too (a detector's file
    for the instance model: the mask branch starts new). Everything else must fit exactly.
    Returns the keys left new."""
    from edgetl.models import weights as W

    state = W.read_state_dict(path)
    own = model.state_dict()
    replaced = [k for k in own if k.startswith(class_layers) and k in state
                and state[k].shape != own[k].shape]
    for key in replaced:
        del state[key]
    absent = [p for p in optional if not any(k.startswith(p) for k in state)]
    replaced += [k for k in own if absent and k.startswith(tuple(absent))]
    missing = [k for k in own if k not in state and k not in replaced]
    unexpected = [k for k in state if k not in own]
    wrong = [k for k in state if k in own and state[k].shape != own[k].shape]
    if missing or unexpected or wrong:
        detail = (missing or unexpected or wrong)[0]
        raise WeightsError(
            f"{path} does not fit this detector ({len(missing)} missing, {len(unexpected)} "
            f"unexpected, {len(wrong)} mis-shaped keys, e.g. {detail})",
            "use a checkpoint of the same backbone, fpn_channels, head_convs and head_norm")
    model.load_state_dict({**own, **state}, strict=True)
    return replaced


def skeleton_for(info: Any) -> EdgeFCOS:
    """The detector module tree of a checkpoint (`edgetl.checkpoint.CheckpointInfo`)."""
    body, channels = _features_body(info.architecture)
    settings = DetectorSettings.from_dict(info.head)
    return EdgeFCOS(TimmPyramid(body, channels, settings.fpn_channels, settings.extra_levels),
                    info.num_classes, settings, tuple(info.spec.input_size))
