"""What a reader could not use or had to fix, collected for `DataSet.skipped` and one warning.

Every entry is `(path, "<kind>: <detail>")` with `kind` one of the constants below, so the
inspector can count problems by kind without parsing free text, and users read one sentence.
Undecodable images keep the classification readers' wording (`cannot decode (...)`).
"""

from __future__ import annotations

import os
import warnings
from collections import Counter

from edgetl.data.detection.geometry import Box, Size, check_box, size_error
from edgetl.data.samples import DataWarning

BOX_CLIPPED = "box clipped to the image"
BOX_DROPPED = "box dropped"
UNKNOWN_CLASS = "unknown class"
IMAGE_MISSING = "image not found"
IMAGE_SIZE = "image size differs from the annotation"
NO_ANNOTATION = "no annotation"
BAD_ANNOTATION = "bad annotation"
UNKNOWN_IMAGE = "annotation of an unknown image"
POLYGON_CLIPPED = "polygon clipped to the image"
POLYGON_DROPPED = "polygon dropped"
MASK_DROPPED = "mask dropped"
MASK_SIZE = "mask size differs from the image"
MASK_OVERLAP = "overlapping instance masks"
ID_MAP_FULL = "id map full"
UNREADABLE_PREFIXES = ("cannot decode", "cannot read")

BOX_KINDS = (BOX_CLIPPED, BOX_DROPPED)
# An annotation of these kinds lost an object of its image: the image is left out, not kept as
# one with fewer objects (the lost object would be taught as background). Clipping repairs.
LOSING_KINDS = frozenset({BOX_DROPPED, UNKNOWN_CLASS, BAD_ANNOTATION, POLYGON_DROPPED,
                          MASK_DROPPED, MASK_SIZE, ID_MAP_FULL})
LEFT_OUT = "image left out"
POLYGON_KINDS = (POLYGON_CLIPPED, POLYGON_DROPPED)


def kind_of(reason: str) -> str:
    """The kind a reason starts with ('cannot decode' for undecodable files)."""
    for prefix in UNREADABLE_PREFIXES:
        if reason.startswith(prefix):
            return prefix
    return reason.split(":", 1)[0]


class Problems:
    """An ordered list of (path, reason); `warn` summarises it in one DataWarning."""

    def __init__(self) -> None:
        self.items: list[tuple[str, str]] = []

    def add(self, path: str, kind: str, detail: str = "") -> None:
        self.items.append((str(path), f"{kind}: {detail}" if detail else kind))

    def image_size(self, path: str) -> Size | None:
        """The image's (H, W) as decoded, or None with why it cannot be used recorded."""
        size, reason = size_error(path)
        if size is None:
            self.add(path, reason or "cannot decode")
        return size

    def box(self, raw: Box, size: Size, where: str, name: str) -> Box | None:
        """`raw` checked against an (H, W) image: the box to use (clipped if need be) or None,
        with a clipped or dropped box recorded under `where` for the object `name`."""
        box, issue = check_box(raw, size)
        if issue:
            self.add(where, BOX_CLIPPED if box else BOX_DROPPED, f"{name} {issue}")
        return box

    def mark(self) -> int:
        """Where the next image's problems start (for `lost_objects`)."""
        return len(self.items)

    def lost_objects(self, since: int, image: str) -> bool:
        """True when a problem recorded since `since` lost an object of `image`.

        Those entries then say that the image is left out, so the one line that reports an
        annotation also says what became of its image (one problem, not two).
        """
        name = os.path.basename(str(image))
        lost = False
        for k in range(since, len(self.items)):
            path, reason = self.items[k]
            if kind_of(reason) in LOSING_KINDS and LEFT_OUT not in reason:
                self.items[k] = (path, f"{reason}; {LEFT_OUT}: {name}" if ":" in reason
                                 else f"{reason}: {LEFT_OUT}: {name}")
                lost = True
        return lost

    def extend(self, items: list[tuple[str, str]]) -> None:
        self.items.extend(items)

    def __len__(self) -> int:
        return len(self.items)

    def summary(self) -> str:
        """'3 box clipped to the image, 1 unknown class' (most frequent first)."""
        counts = Counter(kind_of(reason) for _, reason in self.items)
        return ", ".join(f"{n} {kind}" for kind, n in counts.most_common())

    def warn(self, where: str) -> None:
        """One DataWarning for everything collected (nothing when empty)."""
        if not self.items:
            return
        path, reason = self.items[0]
        more = f" (and {len(self.items) - 1} more: `edgetl data inspect` lists them all)" \
            if len(self.items) > 1 else ""
        warnings.warn(f"{where}: {len(self.items)} annotation or image problem(s): "
                      f"{self.summary()}; e.g. {path}: {reason}{more}", DataWarning,
                      stacklevel=3)
