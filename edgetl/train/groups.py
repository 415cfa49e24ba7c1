"""Body blocks, freezing and learning-rate parameter groups for any timm classifier.

Blocks come from timm's own coarse `group_matcher` (stem, each stage, the final conv), so
"the last N blocks" means the same thing for EfficientNet, MobileNet, ResNet and ViT. The new head
is found by identity (`get_classifier()`), never by position.
"""

from __future__ import annotations

import torch
from torch import nn

from edgetl.models.blocks import BlockLayout
from edgetl.recipe import PhaseConfig


def classifier_prefix(model: nn.Module) -> str:
    head = model.get_classifier()  # type: ignore[operator]
    for name, module in model.named_modules():
        if module is head:
            return name
    raise ValueError("the classifier module is not part of the model")


def block_layout(model: nn.Module) -> BlockLayout:
    """Split parameters into head and ordered body blocks using timm's coarse grouping.

    Models of the dense tasks say it themselves (`model.block_layout()`): their head is a new
    neck and head over a pretrained body."""
    from timm.models._manipulate import group_parameters

    if hasattr(model, "block_layout"):
        return model.block_layout()

    prefix = classifier_prefix(model) + "."
    names = [n for n, _ in model.named_parameters()]
    head = [n for n in names if n.startswith(prefix)]
    groups = group_parameters(model, model.group_matcher(coarse=True))  # type: ignore[operator]
    blocks: list[list[str]] = []
    for _, members in sorted(groups.items()):
        body = [n for n in members if not n.startswith(prefix)]
        if body:
            blocks.append(body)
    seen = {n for b in blocks for n in b} | set(head)
    rest = [n for n in names if n not in seen]
    if rest:  # parameters timm's matcher did not place: treat them as the last body block
        blocks.append(rest)
    return BlockLayout(head=head, blocks=blocks)


def trainable_blocks(layout: BlockLayout, phase: PhaseConfig) -> list[int]:
    """Indices of body blocks this phase trains."""
    if phase.unfreeze == "head":
        return []
    if phase.unfreeze == "all":
        return list(range(layout.num_blocks))
    count = min(phase.blocks, layout.num_blocks)
    return list(range(layout.num_blocks - count, layout.num_blocks))


def block_multiplier(index: int, layout: BlockLayout, phase: PhaseConfig) -> float:
    """Learning-rate multiplier of body block `index` relative to the head's lr."""
    depth_from_top = layout.num_blocks - index  # 1 for the last block
    if phase.layer_decay is not None:
        return float(phase.layer_decay**depth_from_top)
    late = phase.late_blocks
    if late is None:
        late = phase.blocks if phase.unfreeze == "last" else 2
    return phase.late_multiplier if depth_from_top <= late else phase.early_multiplier


def apply_freeze(model: nn.Module, layout: BlockLayout, phase: PhaseConfig) -> set[str]:
    """Set requires_grad for this phase; returns the names of trainable parameters."""
    train = set(layout.head)
    for index in trainable_blocks(layout, phase):
        train.update(layout.blocks[index])
    for name, param in model.named_parameters():
        param.requires_grad_(name in train)
    return train


def _module_trainable(module: nn.Module) -> bool:
    params = list(module.parameters(recurse=False))
    return bool(params) and all(p.requires_grad for p in params)


def set_train_mode(model: nn.Module, phase: PhaseConfig,
                   layout: BlockLayout | None = None) -> None:
    """model.train(), then put frozen batch-norm layers back in eval so their statistics stay.

    `freeze_bn` fixes the pretrained body's statistics; batch norms of the new head (a
    detector's towers: `layout.head`) keep learning theirs, having no pretrained ones."""
    model.train()
    head = set(layout.head) if layout is not None else set()
    for name, module in model.named_modules():
        if not isinstance(module, nn.modules.batchnorm._BatchNorm):
            continue
        in_head = f"{name}.weight" in head
        if (phase.freeze_bn and not in_head) or not _module_trainable(module):
            module.eval()


def _no_decay(name: str, param: torch.Tensor) -> bool:
    return param.ndim <= 1 or name.endswith(".bias")


def param_groups(model: nn.Module, layout: BlockLayout, phase: PhaseConfig) -> list[dict]:
    """Optimizer groups: head at lr x1, body blocks at their multipliers; no decay on norms/biases.

    Each group carries `block` (name) and `lr_multiplier` so tests and logs can check them.
    """
    params = dict(model.named_parameters())
    groups: list[dict] = []

    def add(block: str, names: list[str], mult: float) -> None:
        for decay in (True, False):
            chosen = [params[n] for n in names
                      if params[n].requires_grad and _no_decay(n, params[n]) != decay]
            if chosen:
                groups.append({
                    "params": chosen,
                    "lr": phase.lr * mult,
                    "initial_lr": phase.lr * mult,
                    "weight_decay": phase.weight_decay if decay else 0.0,
                    "block": block,
                    "lr_multiplier": mult,
                })

    add("head", layout.head, 1.0)
    for index in trainable_blocks(layout, phase):
        add(f"block{index}", layout.blocks[index], block_multiplier(index, layout, phase))
    return groups
