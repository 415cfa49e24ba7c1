"""The preprocessing contract (`PreprocessSpec`) and the task record (`TaskRecord`, kept in
`task_record` and re-exported here).

A spec is resolved once from the pretrained weights' own configuration, optionally overridden by
the recipe, and then travels unchanged: checkpoint -> exported artifact -> verify/bench/predict.
Nothing downstream rebuilds it from flags. Its fingerprint (sha256 of canonical JSON) is what
`verify` compares. This module is pure Python so deployment code can read specs without torch.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
from dataclasses import dataclass, field
from typing import Any, Literal

from edgetl.errors import SpecError
from edgetl.task_record import DEFAULT_TASK, LABELS_SCHEMA, TaskRecord
from edgetl.tiling import TileRule

# The task record lives in task_record; it stays importable from here.
__all__ = [
    "DEFAULT_LETTERBOX_FILL", "DEFAULT_TASK", "LABELS_FINGERPRINT_KEY", "LABELS_SCHEMA",
    "SPEC_SCHEMA", "ColorMode", "Geometry", "GraphInput", "HighBitDepth", "Interpolation",
    "PreprocessSpec", "ResizeMode", "TaskRecord", "edited_record", "unfingerprinted_labels",
]

SPEC_SCHEMA = "edgetl.preprocess/1"

ColorMode = Literal["rgb", "grayscale3", "bgr"]
ResizeMode = Literal["shorter", "exact", "none"]
Interpolation = Literal["nearest", "bilinear", "bicubic"]
GraphInput = Literal["float32_normalized", "uint8_raw"]
Geometry = Literal["crop", "letterbox", "stretch"]
HighBitDepth = Literal["refuse", "scale"]

# Fields added after the first schema, with the value that reproduces the old behaviour. They
# are written only when they differ from it, so every spec made before they existed keeps its
# canonical JSON and fingerprint (checkpoints and artifacts record fingerprints).
# `high_bit_depth` is the exception that proves the rule: the old behaviour (16-bit grey clipped
# at 255, almost white) was wrong, so its default is "refuse": a spec from before it refuses
# 16-bit images instead of feeding its model clipped pixels, and keeps its fingerprint.
ADDED_FIELDS: dict[str, object] = {"geometry": "crop", "fill": (0, 0, 0),
                                   "high_bit_depth": "refuse", "tile": None}
DEFAULT_LETTERBOX_FILL = (114, 114, 114)

# Every spec's decode turns the image upright by its EXIF Orientation tag first
# (`data/orientation.py`): a step of schema edgetl.preprocess/1 itself, not a field.
_COLOR_WORDS = {
    "rgb": "decode with PIL, turn upright by the EXIF orientation, convert to RGB",
    "grayscale3": "decode with PIL, turn upright by the EXIF orientation, convert to 8-bit "
                  "grayscale (L) and repeat it into 3 channels",
    "bgr": "decode with PIL, turn upright by the EXIF orientation, convert to RGB, then "
           "reverse the channels to BGR",
}


def _resize_for_crop(size: int, crop_pct: float) -> int:
    """timm's resize for a centre crop of `size` that keeps `crop_pct` of the shorter side."""
    if not 0 < crop_pct <= 1:
        raise SpecError(f"crop_pct must be in (0, 1], got {crop_pct}")
    return int(math.floor(size / crop_pct))


@dataclass(frozen=True)
class PreprocessSpec:
    """Everything between an image file and the model's input tensor.

    Order of operations (the same in torchvision and in the numpy/PIL reference):
    decode -> colour mode -> geometry -> scale to [0, 1] -> normalise -> layout, where the
    geometry is one of
    - `crop`: resize (shorter side or exact) then centre crop (classification);
    - `letterbox`: resize to fit `input_size` keeping the aspect ratio, then pad to it with
      `fill` (uint8 per channel), the image centred (dense tasks: nothing is cut off);
    - `stretch`: resize to exactly `input_size` (aspect ratio not kept).
    `edgetl.geometry` holds the per-image maps between original and input coordinates.
    """

    input_size: tuple[int, int]  # (H, W) of the tensor the model sees
    resize_mode: ResizeMode = "shorter"
    resize_size: tuple[int, int] = (256, 256)  # shorter side uses [0]; exact uses (H, W)
    crop_size: tuple[int, int] | None = (224, 224)  # centre crop after resize; None: no crop
    interpolation: Interpolation = "bilinear"
    antialias: bool = True
    color_mode: ColorMode = "rgb"
    mean: tuple[float, float, float] = (0.485, 0.456, 0.406)
    std: tuple[float, float, float] = (0.229, 0.224, 0.225)
    scale: float = 1.0 / 255.0  # uint8 -> float multiplier applied before mean/std
    layout: Literal["NCHW", "NHWC"] = "NCHW"
    dtype: Literal["float32", "float16"] = "float32"
    graph_input: GraphInput = "float32_normalized"
    decoder: Literal["pil"] = "pil"
    source: str = "unspecified"  # where the values came from (weights config, recipe override)
    schema: str = field(default=SPEC_SCHEMA)
    geometry: Geometry = "crop"
    fill: tuple[int, int, int] = (0, 0, 0)  # letterbox padding, uint8 per channel
    # 16-bit images (PIL modes I;16, I): "refuse" them, or "scale" 0..65535 to 0..255 (rounded)
    high_bit_depth: HighBitDepth = "refuse"
    # Dense tasks: images are cut into tiles by this rule (`edgetl.tiling`) and each tile goes
    # through the steps above; None: the whole image is the input (every spec before tiles).
    tile: TileRule | None = None

    def __post_init__(self) -> None:
        # Normalise lists from JSON into tuples so equality and hashing are stable.
        for name in ("input_size", "resize_size", "crop_size", "mean", "std", "fill"):
            value = getattr(self, name)
            if isinstance(value, list):
                object.__setattr__(self, name, tuple(value))
        object.__setattr__(self, "mean", tuple(float(v) for v in self.mean))
        object.__setattr__(self, "std", tuple(float(v) for v in self.std))
        object.__setattr__(self, "input_size", tuple(int(v) for v in self.input_size))
        object.__setattr__(self, "resize_size", tuple(int(v) for v in self.resize_size))
        if self.crop_size is not None:
            object.__setattr__(self, "crop_size", tuple(int(v) for v in self.crop_size))
        object.__setattr__(self, "fill", tuple(int(v) for v in self.fill))
        object.__setattr__(self, "tile", TileRule.from_value(self.tile))
        self.validate()

    # ----------------------------------------------------------------- validation
    def validate(self) -> None:
        """Raise `SpecError` naming the field when the spec cannot describe a real pipeline."""
        if self.schema != SPEC_SCHEMA:
            raise SpecError(f"spec schema {self.schema!r} is not {SPEC_SCHEMA!r}")
        if len(self.mean) != 3 or len(self.std) != 3:
            raise SpecError("spec mean and std need exactly 3 values (one per channel)")
        if any(not math.isfinite(s) or s <= 0 for s in self.std):
            raise SpecError(f"spec std must be positive, got {list(self.std)}")
        if any(not math.isfinite(m) for m in self.mean):
            raise SpecError(f"spec mean must be finite, got {list(self.mean)}")
        if len(self.input_size) != 2 or min(self.input_size) <= 0:
            raise SpecError(f"spec input_size must be two positive ints, got {self.input_size}")
        if len(self.resize_size) != 2 or min(self.resize_size) <= 0:
            raise SpecError(f"spec resize_size must be two positive ints, got {self.resize_size}")
        if self.scale <= 0:
            raise SpecError("spec scale must be positive")
        if self.color_mode not in _COLOR_WORDS:
            raise SpecError(f"spec color_mode must be one of {sorted(_COLOR_WORDS)}")
        if self.interpolation not in ("nearest", "bilinear", "bicubic"):
            raise SpecError("spec interpolation must be nearest, bilinear or bicubic")
        if self.resize_mode not in ("shorter", "exact", "none"):
            raise SpecError("spec resize_mode must be shorter, exact or none")
        if self.geometry not in ("crop", "letterbox", "stretch"):
            raise SpecError("spec geometry must be crop, letterbox or stretch")
        if len(self.fill) != 3 or any(not 0 <= v <= 255 for v in self.fill):
            raise SpecError(f"spec fill must be 3 values in 0..255, got {list(self.fill)}")
        if self.high_bit_depth not in ("refuse", "scale"):
            raise SpecError("spec high_bit_depth must be refuse or scale")
        if self.tile is not None and self.geometry == "crop":
            raise SpecError("spec tile applies to the letterbox and stretch geometries "
                            "(dense tasks), not to a centre crop")
        if self.geometry != "crop":
            if self.resize_mode != "exact" or self.crop_size is not None or \
                    tuple(self.resize_size) != tuple(self.input_size):
                raise SpecError(f"spec geometry {self.geometry} resizes to the input size "
                                "itself: it needs resize_mode exact, resize_size = input_size "
                                "and no crop")
            return
        final = self.crop_size if self.crop_size is not None else None
        if self.crop_size is not None:
            if min(self.crop_size) <= 0:
                raise SpecError(f"spec crop_size must be positive, got {self.crop_size}")
            if self.resize_mode == "exact" and (
                self.crop_size[0] > self.resize_size[0] or self.crop_size[1] > self.resize_size[1]
            ):
                raise SpecError(
                    f"spec crop {self.crop_size} is larger than the resize {self.resize_size}"
                )
            if self.resize_mode == "shorter" and max(self.crop_size) > self.resize_size[0]:
                raise SpecError(
                    f"spec crop {self.crop_size} is larger than the shorter side "
                    f"{self.resize_size[0]} it is cut from"
                )
        elif self.resize_mode == "exact":
            final = self.resize_size
        if final is not None and tuple(final) != tuple(self.input_size):
            raise SpecError(
                f"spec input_size {self.input_size} differs from the size the pipeline "
                f"makes {final}"
            )

    # ----------------------------------------------------------------- constructors
    @classmethod
    def from_crop_pct(
        cls,
        size: int,
        crop_pct: float,
        interpolation: Interpolation,
        mean: tuple[float, float, float],
        std: tuple[float, float, float],
        color_mode: ColorMode = "rgb",
        source: str = "unspecified",
    ) -> PreprocessSpec:
        """timm's rule: resize the shorter side to floor(size / crop_pct), centre-crop `size`."""
        resize = _resize_for_crop(size, crop_pct)
        return cls(
            input_size=(size, size),
            resize_mode="shorter",
            resize_size=(resize, resize),
            crop_size=(size, size),
            interpolation=interpolation,
            mean=mean,
            std=std,
            color_mode=color_mode,
            source=source,
        )

    def for_dense(self, size: tuple[int, int], geometry: Geometry = "letterbox",
                  fill: tuple[int, int, int] = DEFAULT_LETTERBOX_FILL) -> PreprocessSpec:
        """The same colour, interpolation and normalisation, fitted to a fixed `size` (H, W)
        by letterbox or stretch instead of a centre crop (nothing of the image is cut off)."""
        if geometry == "crop":
            raise SpecError("for_dense needs geometry letterbox or stretch")
        return self.with_overrides(
            input_size=tuple(size), resize_mode="exact", resize_size=tuple(size),
            crop_size=None, geometry=geometry,
            fill=tuple(fill) if geometry == "letterbox" else (0, 0, 0))

    def with_overrides(self, **changes: Any) -> PreprocessSpec:
        """A new spec with some fields replaced (validated); used for recipe overrides."""
        unknown = set(changes) - {f.name for f in dataclasses.fields(self)}
        if unknown:
            raise SpecError(f"unknown spec field(s): {', '.join(sorted(unknown))}")
        return dataclasses.replace(self, **changes)

    def with_crop_pct(self, crop_pct: float) -> PreprocessSpec:
        """timm's rule at this input size with another crop fraction (1.0: no border dropped,
        for images whose edges carry the label, such as whole solar cells)."""
        resize = _resize_for_crop(self.input_size[0], crop_pct)
        return self.with_overrides(resize_mode="shorter", resize_size=(resize, resize),
                                   crop_size=self.input_size)

    def at_size(self, size: int) -> PreprocessSpec:
        """The same rule at another input size, keeping the resize/crop ratio (for low-res runs)."""
        if self.crop_size is None or self.resize_mode != "shorter":
            return self.with_overrides(
                input_size=(size, size), resize_size=(size, size), crop_size=None,
                resize_mode="exact",
            )
        ratio = self.crop_size[0] / self.resize_size[0]
        resize = int(math.floor(size / ratio))
        return self.with_overrides(
            input_size=(size, size), resize_size=(resize, resize), crop_size=(size, size)
        )

    # ----------------------------------------------------------------- serialisation
    def to_dict(self) -> dict[str, Any]:
        """JSON-ready fields; fields added later are left out at their old default."""
        data = dataclasses.asdict(self)
        for key, default in ADDED_FIELDS.items():
            if data[key] == default:
                del data[key]
        for key, value in data.items():
            if isinstance(value, tuple):
                data[key] = list(value)
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> PreprocessSpec:
        if not isinstance(data, dict):
            raise SpecError("preprocessing spec must be a JSON object")
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = set(data) - known
        if unknown:
            raise SpecError(f"unknown preprocessing spec field(s): {', '.join(sorted(unknown))}")
        try:
            return cls(**data)
        except TypeError as exc:
            raise SpecError(f"preprocessing spec is incomplete: {exc}") from exc

    def canonical_json(self) -> str:
        """Sorted keys, no whitespace, floats as Python repr: the bytes the fingerprint hashes."""
        return json.dumps(self.to_dict(), sort_keys=True, separators=(",", ":"))

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> PreprocessSpec:
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise SpecError(f"preprocessing spec is not valid JSON: {exc}") from exc
        return cls.from_dict(data)

    def fingerprint(self) -> str:
        """sha256 of the canonical JSON; printed and compared by verify."""
        return hashlib.sha256(self.canonical_json().encode("utf-8")).hexdigest()

    def short_fingerprint(self) -> str:
        return self.fingerprint()[:12]

    def diff(self, other: PreprocessSpec, ignore: set[str] | None = None) -> list[str]:
        """Names of the fields whose values differ (excluding `ignore`)."""
        ignore = ignore or set()
        mine, theirs = dataclasses.asdict(self), dataclasses.asdict(other)
        return sorted(k for k in mine if k not in ignore and mine[k] != theirs.get(k))

    # ----------------------------------------------------------------- words
    def describe(self) -> str:
        """The pipeline in words, one step a line, so a person can check it against their code."""
        steps = [_COLOR_WORDS[self.color_mode]]
        if self.high_bit_depth == "scale":
            steps[0] += " (16-bit images scaled from 0-65535 to 0-255 first)"
        if self.tile is not None:
            steps.append(self.tile.describe())
        interp = f"{self.interpolation}{' with antialias' if self.antialias else ''}"
        height, width = self.input_size
        if self.geometry == "letterbox":
            steps.append(f"resize to fit {height}x{width} (HxW) keeping the aspect ratio "
                         f"({interp}), then pad to {height}x{width} with "
                         f"{list(self.fill)}, the image centred")
        elif self.geometry == "stretch":
            steps.append(f"resize to exactly {height}x{width} (HxW, {interp}; aspect ratio "
                         "not kept)")
        elif self.resize_mode == "shorter":
            steps.append(f"resize the shorter side to {self.resize_size[0]} px ({interp})")
        elif self.resize_mode == "exact":
            height, width = self.resize_size
            steps.append(f"resize to exactly {height}x{width} (HxW, {interp})")
        if self.crop_size is not None:
            steps.append(f"centre-crop {self.crop_size[0]}x{self.crop_size[1]} (HxW)")
        steps.append(f"multiply uint8 values by {self.scale:.6g}")
        steps.append(
            "subtract mean "
            + ", ".join(f"{m:.4g}" for m in self.mean)
            + " and divide by std "
            + ", ".join(f"{s:.4g}" for s in self.std)
        )
        steps.append(f"lay out as {self.layout} {self.dtype}")
        if self.graph_input == "uint8_raw":
            steps.append(
                "this artifact takes the uint8 image after resize/crop (NHWC) and does the "
                "scaling and normalisation inside the graph"
            )
        lines = [f"{i}. {s}" for i, s in enumerate(steps, 1)]
        lines.append(f"source: {self.source}; fingerprint {self.short_fingerprint()}")
        return "\n".join(lines)




# ----------------------------------------------------------------------- records of an artifact
# Artifact metadata key of the task record's fingerprint (beside `edgetl.labels`), so that an
# edit of the class names after export is detected as an edit of the spec is.
LABELS_FINGERPRINT_KEY = "edgetl.labels_fingerprint"


def edited_record(path: Any, what: str, actual: str,
                  recorded: list[tuple[str | None, str]]) -> str | None:
    """Why an artifact's embedded `what` (fingerprint `actual`) is not the one exported, or
    None: every fingerprint recorded at export (`(value, where)`, None: not recorded) must be
    `actual`."""
    for value, where in recorded:
        if value is not None and value != actual:
            return (f"{path}: its embedded {what} (fingerprint {actual[:12]}) is not the one "
                    f"exported (fingerprint {str(value)[:12]} {where}): it was edited after "
                    "export")
    return None


def unfingerprinted_labels(path: Any, metadata: dict[str, str]) -> str | None:
    """An artifact exported before task records were fingerprinted: accepted (refusing would
    break every artifact already deployed), with this warning, since an edit of its class
    names cannot be detected."""
    if LABELS_FINGERPRINT_KEY in metadata:
        return None
    return (f"{path} records no fingerprint of its class names (exported by an older edgetl): "
            "an edit of its labels after export cannot be detected; re-export it to have them "
            "checked")
