"""`MaskRecord`: how a data set's mask pixels become class indices, written down once.

Training, evaluation and predict must turn a mask file into the same class indices, so the whole
mapping is data, not code: every raw pixel value (index and binary masks) or colour (palette
masks) the data set may hold is listed with the output index it becomes. Anything not listed is
an error for that file (listed, never clipped). The record travels with the split file (sidecar
JSON) and is meant to be embedded in the task record of checkpoints and artifacts.

Void classes: a class named void (see `classmap.VOID_NAMES`, or marked `(ignore)`) is not an
output class. Its raw value or colour maps to `ignore_index` like the raw value `ignore_index`
itself (index masks), and the remaining classes keep their listed order. CamVid's `11 void`
therefore becomes 255 and the model has 11 outputs, not 12. Output indices are 0..K-1 in
`classes` order; `ignore_index` must lie outside that range.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from edgetl.data.semantic.classmap import ClassEntry
from edgetl.errors import DataError

Encoding = Literal["index", "palette", "binary"]
ENCODINGS: tuple[str, ...] = ("index", "palette", "binary")
RECORD_SCHEMA = "edgetl.mask-record/1"
BINARY_NAMES = ("background", "foreground")
Colour = tuple[int, int, int]


@dataclass(frozen=True)
class MaskRecord:
    """Output classes, the ignore index, and the complete raw-value/colour -> index map.

    `values`: (raw pixel value, output index) pairs for index and binary masks; `colours`:
    (r, g, b, output index) for palette masks; an output index equal to `ignore_index` means
    "ignored". `void` names the listed classes that were turned into the ignore index.
    """

    classes: tuple[str, ...]
    encoding: Encoding
    ignore_index: int = 255
    values: tuple[tuple[int, int], ...] = ()
    colours: tuple[tuple[int, int, int, int], ...] = ()
    void: tuple[str, ...] = ()
    schema: str = field(default=RECORD_SCHEMA)

    def __post_init__(self) -> None:
        object.__setattr__(self, "classes", tuple(self.classes))
        object.__setattr__(self, "values", tuple(sorted((int(a), int(b)) for a, b in self.values)))
        object.__setattr__(self, "colours", tuple(tuple(int(v) for v in c) for c in self.colours))
        object.__setattr__(self, "void", tuple(self.void))
        if self.encoding not in ENCODINGS:
            raise DataError(f"mask encoding {self.encoding!r} is not one of {ENCODINGS}")
        if 0 <= self.ignore_index < len(self.classes):
            raise DataError(f"ignore index {self.ignore_index} is also the index of class "
                            f"{self.classes[self.ignore_index]!r}",
                            hint=f"use an ignore index >= {len(self.classes)}, e.g. 255")
        outputs = [b for _, b in self.values] + [c[3] for c in self.colours]
        bad = sorted({b for b in outputs if b != self.ignore_index
                      and not 0 <= b < len(self.classes)})
        if bad:
            raise DataError(f"mask record maps pixels to indices {bad} outside the "
                            f"{len(self.classes)} classes")

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    def value_map(self) -> dict[int, int]:
        """Raw pixel value -> output index (index and binary masks)."""
        return dict(self.values)

    def colour_map(self) -> dict[Colour, int]:
        """(r, g, b) -> output index (palette masks)."""
        return {(r, g, b): out for r, g, b, out in self.colours}

    def output_dtype(self) -> str:
        """'uint8' when every index and the ignore index fit in a byte, else 'int64'."""
        return "uint8" if 0 <= self.ignore_index <= 255 and self.num_classes <= 255 else "int64"

    def class_colours(self) -> list[Colour] | None:
        """The palette colour of each output class (palette masks), for drawing predictions."""
        if self.encoding != "palette":
            return None
        found: dict[int, Colour] = {}
        for r, g, b, out in self.colours:
            found.setdefault(out, (r, g, b))
        return [found[i] for i in range(self.num_classes)]

    def to_dict(self) -> dict[str, Any]:
        return {"schema": self.schema, "classes": list(self.classes), "encoding": self.encoding,
                "ignore_index": self.ignore_index, "values": [list(v) for v in self.values],
                "colours": [list(c) for c in self.colours], "void": list(self.void)}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> MaskRecord:
        if not isinstance(data, dict) or "classes" not in data or "encoding" not in data:
            raise DataError("a mask record needs 'classes' and 'encoding'")
        return cls(classes=tuple(data["classes"]), encoding=data["encoding"],
                   ignore_index=int(data.get("ignore_index", 255)),
                   values=tuple(tuple(v) for v in data.get("values", [])),
                   colours=tuple(tuple(c) for c in data.get("colours", [])),
                   void=tuple(data.get("void", [])),
                   schema=data.get("schema", RECORD_SCHEMA))

    def fingerprint(self) -> str:
        text = json.dumps(self.to_dict(), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(text.encode("utf-8")).hexdigest()

    def describe(self) -> str:
        """One line for humans: classes, encoding and what becomes the ignore index."""
        text = (f"{self.num_classes} classes, {self.encoding} masks, ignore index "
                f"{self.ignore_index}")
        if self.void:
            text += f" (void class(es) {', '.join(self.void)} mapped to it)"
        return text


def _split_void(entries: Sequence[ClassEntry]) -> tuple[list[ClassEntry], list[ClassEntry]]:
    kept = [e for e in entries if not e.void]
    return kept, [e for e in entries if e.void]


def index_record(entries: Sequence[ClassEntry], ignore_index: int = 255) -> MaskRecord:
    """Index masks: listed values in increasing order are classes 0..K-1; void -> ignore."""
    kept, void = _split_void(sorted(entries, key=lambda e: e.value))
    values = [(e.value, i) for i, e in enumerate(kept)] + [(e.value, ignore_index) for e in void]
    clash = [e for e in kept if e.value == ignore_index]
    if clash:
        raise DataError(f"class {clash[0].name!r} is stored as pixel value {ignore_index}, the "
                        "ignore index", hint="pass another ignore_index")
    if ignore_index >= 0 and all(v != ignore_index for v, _ in values):
        values.append((ignore_index, ignore_index))
    return MaskRecord(classes=tuple(e.name for e in kept), encoding="index",
                      ignore_index=ignore_index, values=tuple(values),
                      void=tuple(e.name for e in void))


def binary_record(names: Sequence[str] = BINARY_NAMES, ignore_index: int = 255) -> MaskRecord:
    """Binary masks: 0 is class 0, and both 1 and 255 are class 1 (255 is not ignored here)."""
    if len(names) != 2:
        raise DataError(f"binary masks hold 2 classes, but {len(names)} names were given "
                        f"({', '.join(names)})", hint="name background and foreground")
    return MaskRecord(classes=tuple(names), encoding="binary", ignore_index=ignore_index,
                      values=((0, 0), (1, 1), (255, 1)))


def palette_record(entries: Sequence[ClassEntry], ignore_index: int = 255) -> MaskRecord:
    """Palette masks: the class map's rows in order are classes 0..K-1; void colours -> ignore."""
    kept, void = _split_void(entries)
    colours = [(*e.colour, i) for i, e in enumerate(kept) if e.colour is not None]
    colours += [(*e.colour, ignore_index) for e in void if e.colour is not None]
    return MaskRecord(classes=tuple(e.name for e in kept), encoding="palette",
                      ignore_index=ignore_index, colours=tuple(colours),
                      void=tuple(e.name for e in void))
