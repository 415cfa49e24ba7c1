"""What a sample is labelled with, per task: the annotation records every source produces.

Classification keeps its class name in `Sample.label`. The dense tasks attach one of these to
`Sample.target`. They are plain, frozen and JSON-serialisable (`to_dict` / `target_from_dict`),
so a run's split file can hold them and deployment code can read them without torch.

Coordinates are always in the **original image's pixels**, x to the right and y down, boxes as
(x1, y1, x2, y2) with x2 > x1 and y2 > y1. Mapping into the model's input and back is the job of
`edgetl.geometry`, never of a reader.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

Box = tuple[float, float, float, float]


def _classes_of(labels: tuple[str, ...], crowd: tuple[bool, ...]) -> tuple[str, ...]:
    return tuple(sorted({name for name, is_crowd in zip(labels, crowd, strict=True)
                         if not is_crowd}))


def _normalise(target: Any, fields: tuple[str, ...], each: str) -> None:
    """A frozen target's per-object `fields` as tuples (boxes as floats; crowd as bools, all
    False when not given), one entry each (else ValueError "<fields> need <each>"), and its
    stated image size as ints."""
    object.__setattr__(target, "boxes", tuple(tuple(float(v) for v in b) for b in target.boxes))
    for name in fields[1:-1]:
        object.__setattr__(target, name, tuple(getattr(target, name)))
    crowd = (tuple(bool(c) for c in target.crowd) if target.crowd
             else (False,) * len(target.boxes))
    object.__setattr__(target, "crowd", crowd)
    if len({len(getattr(target, name)) for name in fields}) != 1:
        raise ValueError(f"{', '.join(fields[:-1])} and {fields[-1]} need {each}")
    if target.image_size is not None:
        object.__setattr__(target, "image_size", tuple(int(v) for v in target.image_size))


@dataclass(frozen=True)
class BoxTarget:
    """The boxes of one image (detection).

    `crowd` marks boxes that training ignores and evaluation treats as crowd regions (Pascal
    VOC's `difficult`, COCO's `iscrowd`). `image_size` is (H, W) as the annotation states it,
    when it states one (checked against the decoded image by the readers).
    """

    boxes: tuple[Box, ...] = ()
    labels: tuple[str, ...] = ()
    crowd: tuple[bool, ...] = ()
    image_size: tuple[int, int] | None = None
    kind: Literal["boxes"] = field(default="boxes", init=False)

    def __post_init__(self) -> None:
        _normalise(self, ("boxes", "labels", "crowd"), "one entry per box")

    def classes(self) -> tuple[str, ...]:
        """Classes with at least one (non-crowd) box, sorted: what stratified splits balance."""
        return _classes_of(self.labels, self.crowd)

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "boxes": [list(b) for b in self.boxes],
                "labels": list(self.labels), "crowd": list(self.crowd),
                "image_size": list(self.image_size) if self.image_size else None}


@dataclass(frozen=True)
class MaskTarget:
    """A semantic mask file for one image and how its pixel values map to classes.

    encoding: `index` (pixel value = class index), `palette` (RGB colour -> class by the
    task's palette), `binary` (0 -> class 0, 255 -> class 1). `present` lists the classes the
    mask holds when the reader looked (for stratified splits); empty when unknown.
    """

    mask_path: str
    encoding: Literal["index", "palette", "binary"] = "index"
    present: tuple[str, ...] = ()
    kind: Literal["mask"] = field(default="mask", init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "present", tuple(self.present))

    def classes(self) -> tuple[str, ...]:
        return tuple(sorted(self.present))

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "mask_path": self.mask_path, "encoding": self.encoding,
                "present": list(self.present)}


@dataclass(frozen=True)
class InstanceMask:
    """One instance's mask, in whichever form the source stores it.

    Exactly one of: `polygons` (flat x,y lists in pixels, COCO style), `rle` (COCO RLE dict,
    compressed string or uncompressed counts), or `id_png` + `id_value` (a PNG whose pixels
    equal `id_value` on this instance).
    """

    polygons: tuple[tuple[float, ...], ...] | None = None
    rle: dict[str, Any] | None = None
    id_png: str | None = None
    id_value: int | None = None

    def __post_init__(self) -> None:
        given = sum(x is not None for x in (self.polygons, self.rle, self.id_png))
        if given != 1:
            raise ValueError("an instance mask needs exactly one of polygons, rle or id_png")
        if self.id_png is not None and self.id_value is None:
            raise ValueError("an id_png instance mask needs its id_value")
        if self.polygons is not None:
            object.__setattr__(self, "polygons",
                               tuple(tuple(float(v) for v in p) for p in self.polygons))

    def to_dict(self) -> dict[str, Any]:
        if self.polygons is not None:
            return {"polygons": [list(p) for p in self.polygons]}
        if self.rle is not None:
            return {"rle": self.rle}
        return {"id_png": self.id_png, "id_value": self.id_value}


@dataclass(frozen=True)
class InstanceTarget:
    """Instances of one image: a box, a class and a mask each (instance segmentation)."""

    boxes: tuple[Box, ...] = ()
    labels: tuple[str, ...] = ()
    masks: tuple[InstanceMask, ...] = ()
    crowd: tuple[bool, ...] = ()
    image_size: tuple[int, int] | None = None
    kind: Literal["instances"] = field(default="instances", init=False)

    def __post_init__(self) -> None:
        _normalise(self, ("boxes", "labels", "masks", "crowd"), "one entry per instance")

    def classes(self) -> tuple[str, ...]:
        return _classes_of(self.labels, self.crowd)

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "boxes": [list(b) for b in self.boxes],
                "labels": list(self.labels), "masks": [m.to_dict() for m in self.masks],
                "crowd": list(self.crowd),
                "image_size": list(self.image_size) if self.image_size else None}


Target = BoxTarget | MaskTarget | InstanceTarget


def target_from_dict(data: dict[str, Any]) -> Target:
    """The inverse of each target's `to_dict`."""
    kind = data.get("kind")
    size = tuple(data["image_size"]) if data.get("image_size") else None
    if kind == "boxes":
        return BoxTarget(boxes=tuple(tuple(b) for b in data.get("boxes", [])),
                         labels=tuple(data.get("labels", [])),
                         crowd=tuple(data.get("crowd", [])), image_size=size)
    if kind == "mask":
        return MaskTarget(mask_path=data["mask_path"], encoding=data.get("encoding", "index"),
                          present=tuple(data.get("present", [])))
    if kind == "instances":
        masks = tuple(InstanceMask(polygons=m.get("polygons"), rle=m.get("rle"),
                                   id_png=m.get("id_png"), id_value=m.get("id_value"))
                      for m in data.get("masks", []))
        return InstanceTarget(boxes=tuple(tuple(b) for b in data.get("boxes", [])),
                              labels=tuple(data.get("labels", [])), masks=masks,
                              crowd=tuple(data.get("crowd", [])), image_size=size)
    raise ValueError(f"unknown target kind {kind!r}")
