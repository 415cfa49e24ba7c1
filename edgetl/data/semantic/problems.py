"""What can be wrong with an image/mask pair, as structured records and one-line reasons.

Readers keep these on the data set (`SemanticDataSet.problems`) so the inspector can list each
kind with its values, and turn each into the `(path, reason)` pair of `DataSet.skipped`, the
contract every task's readers share.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

KINDS: dict[str, str] = {
    "missing_mask": "images without a mask",
    "orphan_mask": "masks without an image",
    "ambiguous": "images with more than one candidate file",
    "lossy_mask": "JPEG masks (lossy compression changes class values)",
    "unreadable_image": "unreadable images",
    "unreadable_mask": "unreadable masks",
    "size_mismatch": "masks whose size differs from their image",
    "values_outside": "masks with values outside the class list",
    "palette_unknown": "masks with colours not in the class map",
    "not_grey": "colour pixels in index masks",
    "mode": "masks of an unsupported pixel mode",
    "annotation": "images with unusable annotations",
}


@dataclass(frozen=True)
class Problem:
    """One unusable file. `path` is the image (or the mask, for a mask without an image)."""

    kind: str
    path: str
    detail: str
    mask: str | None = None
    found: tuple[Any, ...] = field(default=())

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"unknown problem kind {self.kind!r}")
        object.__setattr__(self, "found", tuple(self.found))

    def reason(self) -> str:
        """The one-line reason kept in `DataSet.skipped`."""
        return self.detail

    def to_dict(self) -> dict[str, Any]:
        found = [list(f) if isinstance(f, tuple) else f for f in self.found]
        return {"kind": self.kind, "path": self.path, "mask": self.mask,
                "detail": self.detail, "found": found}


def summary(problems: Sequence[Problem]) -> str:
    """'3 images without a mask, 1 unreadable masks' in first-seen order."""
    counts = Counter(p.kind for p in problems)
    return ", ".join(f"{n} {KINDS[kind]}" for kind, n in counts.items())
