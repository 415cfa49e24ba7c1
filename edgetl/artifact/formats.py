"""The table of export formats, keyed by name, and the file families they belong to.

One row per format says which module builds it, what precision it holds, what the file is
called and which verify budgets apply by default. Everything else (CLI, verify, manifest) looks
formats up here by name, never by position. The builder is named by its module string and
imported only by `edgetl.export`, so this table imports no exporter. The options an export
takes are `edgetl.export.options.ExportOptions`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from edgetl.errors import UsageError

Precision = Literal["fp32", "fp16", "int8"]
Family = Literal["onnx", "tensorrt", "openvino", "litert"]


@dataclass(frozen=True)
class ArtifactFamily:
    """A kind of artifact file: its suffix, what to call it in messages, and whether the file
    carries edgetl's metadata itself (otherwise the manifest beside it is the only record)."""

    name: str
    suffix: str
    noun: str
    embedded_metadata: bool
    companion_suffix: str | None = None  # a second file of the same stem the first one needs


FAMILIES: dict[str, ArtifactFamily] = {
    f.name: f
    for f in (
        ArtifactFamily(name="onnx", suffix=".onnx", noun="an ONNX graph", embedded_metadata=True),
        ArtifactFamily(name="tensorrt", suffix=".engine", noun="a TensorRT engine",
                       embedded_metadata=False),
        # the .xml names the IR; its weights are the .bin of the same stem beside it
        ArtifactFamily(name="openvino", suffix=".xml", noun="an OpenVINO IR",
                       embedded_metadata=True, companion_suffix=".bin"),
        # edgetl's record is the manifest beside it (not yet in the flatbuffer's metadata)
        ArtifactFamily(name="litert", suffix=".tflite", noun="a LiteRT model",
                       embedded_metadata=False),
    )
}


def family_of(path: str | Path) -> ArtifactFamily | None:
    """The family a file belongs to by its suffix (None: no family edgetl writes)."""
    suffix = Path(path).suffix
    return next((f for f in FAMILIES.values() if f.suffix == suffix), None)


def artifact_size(path: str | Path) -> int:
    """Bytes of an artifact with its companion file (an IR's .xml and .bin together)."""
    path = Path(path)
    family = family_of(path)
    size = path.stat().st_size
    if family is None or family.companion_suffix is None:
        return size
    companion = path.with_suffix(family.companion_suffix)
    return size + (companion.stat().st_size if companion.is_file() else 0)


@dataclass(frozen=True)
class ExportFormat:
    """One exportable format: the builder module and the defaults that go with it."""

    name: str
    family: Family
    precision: Precision
    filename: str  # default file name inside the run's export folder
    module: str  # module with `export(ctx) -> ExportOutcome`, imported only when used
    description: str
    top1_agreement_budget: float  # verify: minimum top-1 agreement with the PyTorch model
    accuracy_budget_points: float  # verify: maximum accuracy drop in percentage points
    calibrated: bool = False
    # can come from the quantisation-aware checkpoint (`export --qat`, recipe `quantize:`)
    quantisation_aware: bool = False


FORMATS: dict[str, ExportFormat] = {
    f.name: f
    for f in (
        ExportFormat(
            name="onnx", family="onnx", precision="fp32", filename="model.onnx",
            module="edgetl.export.onnx_fp32",
            description="ONNX, float32 weights and input",
            top1_agreement_budget=1.0, accuracy_budget_points=0.5,
        ),
        ExportFormat(
            name="onnx-fp16", family="onnx", precision="fp16", filename="model.fp16.onnx",
            module="edgetl.export.onnx_fp16",
            description="ONNX, float16 weights and compute; float32 input and output",
            top1_agreement_budget=0.995, accuracy_budget_points=0.5,
        ),
        ExportFormat(
            name="onnx-int8", family="onnx", precision="int8", filename="model.int8-qdq.onnx",
            module="edgetl.export.onnx_int8",
            description="ONNX, static int8 QDQ (per-channel weights), calibrated on train images",
            top1_agreement_budget=0.98, accuracy_budget_points=1.0, calibrated=True,
            quantisation_aware=True,
        ),
        ExportFormat(
            name="tensorrt-fp16", family="tensorrt", precision="fp16", filename="model.fp16.engine",
            module="edgetl.export.tensorrt_engine",
            description="TensorRT engine, fp16 enabled (built on this GPU, for this GPU)",
            top1_agreement_budget=0.995, accuracy_budget_points=0.5,
        ),
        ExportFormat(
            name="tensorrt-int8", family="tensorrt", precision="int8", filename="model.int8.engine",
            module="edgetl.export.tensorrt_engine",
            description="TensorRT engine, int8 with an entropy calibrator (and fp16 fallback)",
            top1_agreement_budget=0.98, accuracy_budget_points=1.0, calibrated=True,
        ),
        ExportFormat(
            name="openvino", family="openvino", precision="fp32", filename="model.xml",
            module="edgetl.export.openvino_ir",
            description="OpenVINO IR (.xml + .bin) converted from the fp32 ONNX graph",
            top1_agreement_budget=1.0, accuracy_budget_points=0.5,
        ),
        ExportFormat(
            name="openvino-fp16", family="openvino", precision="fp16", filename="model.fp16.xml",
            module="edgetl.export.openvino_ir",
            description="OpenVINO IR, float16 weights (the CPU computes in float32)",
            top1_agreement_budget=0.995, accuracy_budget_points=0.5,
        ),
        ExportFormat(
            name="openvino-int8", family="openvino", precision="int8",
            filename="model.int8.xml", module="edgetl.export.openvino_int8",
            description="OpenVINO IR, NNCF post-training int8, calibrated on train images",
            top1_agreement_budget=0.98, accuracy_budget_points=1.0, calibrated=True,
        ),
        ExportFormat(
            name="litert", family="litert", precision="fp32", filename="model.tflite",
            module="edgetl.export.litert",
            description="LiteRT .tflite (litert-torch), float32, batch 1",
            top1_agreement_budget=1.0, accuracy_budget_points=0.5,
        ),
    )
}


@dataclass(frozen=True)
class DetectionBudgets:
    """verify's gates for a detector of one precision: share of the torch model's detections
    (score >= `min_score`) the artifact matches (same label, IoU >= 0.5), the median IoU of the
    matched boxes, and the largest test mAP / AP50 drop in points."""

    match_rate: float
    median_iou: float | None  # None: reported, not gated (int8 boxes move by design)
    map_points: float
    min_score: float = 0.3


DETECTION_BUDGETS: dict[str, DetectionBudgets] = {
    "fp32": DetectionBudgets(match_rate=0.99, median_iou=0.98, map_points=0.5),
    "fp16": DetectionBudgets(match_rate=0.98, median_iou=0.95, map_points=0.5),
    "int8": DetectionBudgets(match_rate=0.95, median_iou=None, map_points=1.5),
}


@dataclass(frozen=True)
class InstanceBudgets(DetectionBudgets):
    """verify's gates for an instance model: detection's (matched share, box IoU, box mAP
    points) plus the median mask IoU of matched detections (masks pasted at the file's size)
    and the largest test mask mAP / AP50 drop in points."""

    mask_iou: float = 0.95
    mask_map_points: float = 0.5


INSTANCE_BUDGETS: dict[str, InstanceBudgets] = {
    "fp32": InstanceBudgets(match_rate=0.99, median_iou=0.98, map_points=0.5, mask_iou=0.95,
                            mask_map_points=0.5),
    "fp16": InstanceBudgets(match_rate=0.98, median_iou=0.95, map_points=0.5, mask_iou=0.93,
                            mask_map_points=0.5),
    "int8": InstanceBudgets(match_rate=0.95, median_iou=None, map_points=2.0, mask_iou=0.90,
                            mask_map_points=2.0),
}


@dataclass(frozen=True)
class SemanticBudgets:
    """verify's gates for a segmenter of one precision: the share of input pixels where the
    artifact's class equals the torch model's, and the largest test mIoU drop in points."""

    pixel_agreement: float
    miou_points: float


SEMANTIC_BUDGETS: dict[str, SemanticBudgets] = {
    "fp32": SemanticBudgets(pixel_agreement=0.995, miou_points=0.5),
    "fp16": SemanticBudgets(pixel_agreement=0.99, miou_points=0.5),
    "int8": SemanticBudgets(pixel_agreement=0.98, miou_points=1.5),
}


def get_format(name: str) -> ExportFormat:
    """The table row for `name`, or a usage error that lists the valid names."""
    try:
        return FORMATS[name]
    except KeyError:
        raise UsageError(
            f"unknown export format {name!r}", f"use one of {', '.join(FORMATS)}"
        ) from None


def artifact_filename(fmt: ExportFormat, embed_preprocessing: bool) -> str:
    """Default file name; embedded-preprocessing variants say so (`model.uint8in.onnx`)."""
    if not embed_preprocessing:
        return fmt.filename
    stem, dot, suffix = fmt.filename.partition(".")
    return f"{stem}.uint8in{dot}{suffix}"
