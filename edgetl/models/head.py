"""A new classification head on a pretrained timm backbone.

The head replaces timm's classifier module in place (same attribute, so `get_classifier()` returns
it and its parameter names start with the classifier's name, which the trainer uses to put the
head in its own parameter group). timm's pooling stays. Dropout lives in the head only:
`model.drop_rate` is set to 0 so it is not applied twice.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

from edgetl.errors import RecipeError
from edgetl.models import registry
from edgetl.models import weights as W
from edgetl.spec import PreprocessSpec


@dataclass
class HeadConfig:
    """dropout before the last Linear; hidden > 0 adds Linear -> ReLU -> Dropout before it."""

    dropout: float = 0.2
    hidden: int = 0

    def __post_init__(self) -> None:
        if not 0.0 <= self.dropout < 1.0:
            raise RecipeError(f"head dropout must be in [0, 1), got {self.dropout}")
        if self.hidden < 0:
            raise RecipeError(f"head hidden width must be >= 0, got {self.hidden}")


def make_head(in_features: int, num_classes: int, head: HeadConfig) -> Any:
    """`Sequential` with named layers: [hidden, act,] drop, fc."""
    # not at the top: importing this module loads no torch
    from torch import nn

    layers: OrderedDict[str, nn.Module] = OrderedDict()
    width = in_features
    if head.hidden > 0:
        layers["hidden"] = nn.Linear(in_features, head.hidden)
        layers["act"] = nn.ReLU(inplace=True)
        width = head.hidden
    layers["drop"] = nn.Dropout(head.dropout)
    layers["fc"] = nn.Linear(width, num_classes)
    return nn.Sequential(layers)


def head_parameter_prefix(model: Any) -> str:
    """Module name of the classifier (e.g. 'classifier', 'head.fc'): the head's param prefix."""
    return W.classifier_prefix(model)


def attach_head(model: Any, num_classes: int, head: HeadConfig) -> Any:
    """Replace the model's classifier with a new head sized to `num_classes` (in place)."""
    # not at the top: importing this module loads no torch
    from torch import nn

    if num_classes < 1:
        raise RecipeError(f"num_classes must be >= 1, got {num_classes}")
    name = head_parameter_prefix(model)
    old = model.get_submodule(name)
    if not isinstance(old, nn.Linear):
        raise RecipeError(
            f"{type(model).__name__}'s classifier '{name}' is a {type(old).__name__}, not a Linear",
            "choose an architecture with a Linear classifier",
        )
    model.set_submodule(name, make_head(old.in_features, num_classes, head))
    if hasattr(model, "drop_rate"):
        model.drop_rate = 0.0
    if hasattr(model, "num_classes"):
        model.num_classes = num_classes
    return model


def build_classifier(arch: str, num_classes: int, head: HeadConfig, weights: str | None = None
                     ) -> tuple[Any, PreprocessSpec]:
    """Pretrained backbone (see `create_backbone`) with a new head, and the weights' spec."""
    model, spec = registry.create_backbone(arch, weights)
    return attach_head(model, num_classes, head), spec


def skeleton_for(info: Any) -> Any:
    """The classifier module tree of a checkpoint (`edgetl.checkpoint.CheckpointInfo`)."""
    return build_classifier_skeleton(info.architecture, info.num_classes, HeadConfig(**info.head))


def build_classifier_skeleton(arch: str, num_classes: int, head: HeadConfig) -> Any:
    """The same module tree as `build_classifier`, randomly initialised, no weights read.

    For loading a fine-tuned checkpoint, whose own file supplies every parameter.
    """
    # not at the top: importing this module loads no torch
    import timm

    registry.timm_pretrained_cfg(arch)  # a clear error for unknown names
    return attach_head(timm.create_model(arch, pretrained=False), num_classes, head)
