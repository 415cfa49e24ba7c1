"""A model's trainable parts in order: the new head, then the pretrained body's blocks.

"The last N blocks" in a recipe means the same thing for every backbone because blocks come
from timm's own coarse parameter grouping (stem, each stage, the final conv), and for every task
because each task's model says which of its parameters are new (the head group, trained from
phase A) and which belong to the pretrained body.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass
class BlockLayout:
    """Parameter names of the head and of each body block, stem first."""

    head: list[str]
    blocks: list[list[str]]

    @property
    def num_blocks(self) -> int:
        return len(self.blocks)


def timm_blocks(body: Any, names: list[str], prefix: str = "") -> list[list[str]]:
    """`names` (parameters of `body`, each starting with `prefix`) grouped into timm's coarse
    blocks, in forward order. Works for `features_only` bodies too, whose parameter names are
    the full model's: the full architecture's group matcher is applied to them."""
    # not at the top: importing this module loads no torch
    from timm.models._manipulate import group_with_matcher

    matcher = _group_matcher(body)
    local = [n[len(prefix):] for n in names]
    groups = group_with_matcher(((n, None) for n in local), matcher, return_values=False)
    blocks: list[list[str]] = []
    for _, members in sorted(groups.items()):
        blocks.append([prefix + m for m in members])
    seen = {n for block in blocks for n in block}
    rest = [n for n in names if n not in seen]
    if rest:
        blocks.append(rest)
    return blocks


def _group_matcher(body: Any) -> dict:
    if hasattr(body, "group_matcher"):
        return body.group_matcher(coarse=True)
    # not at the top: importing this module loads no torch
    import timm
    import torch

    arch = body.pretrained_cfg.get("architecture") if hasattr(body, "pretrained_cfg") else None
    if arch is None:
        raise ValueError("cannot find the timm architecture of a features-only body")
    with torch.device("meta"):
        full = timm.create_model(arch, pretrained=False)
    return full.group_matcher(coarse=True)
