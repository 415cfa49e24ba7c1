"""Artifact metadata: what goes into an exported file and the manifest beside it, and reading it.

Two records travel with every artifact:
- inside ONNX files, `metadata_props` with the keys in `META_*` (the spec JSON and its
  fingerprint, the labels JSON, the architecture, the edgetl version, the source checkpoint's
  weights sha256, format and precision). These are what `verify` and `predict` trust: the file
  alone is enough to run it correctly.
- beside the artifact, `<artifact file name>.manifest.json` (for example
  `model.int8-qdq.onnx.manifest.json`) with the same values plus the artifact's own sha256 and
  size, the opset, input/output names and dtypes, package versions, the source run folder and
  checkpoint, and format-specific evidence (quantisation counts, calibration settings). OpenVINO
  IRs carry the same keys in their rt_info (`openvino_ir.py`). TensorRT engines have no
  metadata slot, and LiteRT .tflite files do not carry it yet, so for them the manifest is the
  only record.

This module imports neither torch nor onnxruntime: `onnx` is only needed to read ONNX metadata,
and `metadata_from_mapping` lets a caller that already holds an onnxruntime session skip it.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from edgetl.artifact.formats import family_of
from edgetl.artifact.openvino_ir import ir_metadata
from edgetl.checkpoint import BEST
from edgetl.decision import OperatingPoint
from edgetl.errors import ArtifactError, SpecError, UsageError
from edgetl.io import atomic_write_json, sha256_file
from edgetl.spec import LABELS_FINGERPRINT_KEY, PreprocessSpec, TaskRecord, edited_record

ARTIFACT_SCHEMA = "edgetl.artifact/1"
MANIFEST_SUFFIX = ".manifest.json"

META_SCHEMA = "edgetl.schema"
META_SPEC = "edgetl.spec"
META_SPEC_FINGERPRINT = "edgetl.spec_fingerprint"
META_LABELS = "edgetl.labels"  # the task record (key and schema kept from classification)
META_ARCHITECTURE = "edgetl.architecture"
META_VERSION = "edgetl.version"
META_WEIGHTS_SHA256 = "edgetl.source_weights_sha256"
META_FORMAT = "edgetl.format"
META_PRECISION = "edgetl.precision"
META_CHECKPOINT = "edgetl.source_checkpoint"
META_INPUT_DTYPE = "edgetl.input_dtype"
META_OUTPUT_DTYPE = "edgetl.output_dtype"
META_OUTPUTS = "edgetl.outputs"  # JSON list of the graph's outputs: name, dtype, shape
META_POSTPROCESS = "edgetl.postprocess"  # JSON of the task's post-processing settings
META_DECISION = "edgetl.decision"  # JSON of a classifier's operating point (edgetl.decision)

INPUT_NAME = "input"
OUTPUT_NAME = "logits"


def manifest_path(artifact: str | Path) -> Path:
    """Where the manifest of `artifact` lives: the full file name plus `.manifest.json`."""
    path = Path(artifact)
    return path.with_name(path.name + MANIFEST_SUFFIX)


@dataclass(frozen=True)
class ArtifactInfo:
    """What an artifact says about itself (embedded metadata first, manifest second)."""

    path: Path
    format: str
    precision: str
    spec: PreprocessSpec
    task_record: TaskRecord
    architecture: str
    metadata: dict[str, str]
    manifest: dict[str, Any] | None = field(default=None)

    @property
    def embedded_preprocessing(self) -> bool:
        return self.spec.graph_input == "uint8_raw"

    @property
    def postprocess(self) -> dict[str, Any]:
        """The task's post-processing settings recorded at export ({} when none)."""
        text = self.metadata.get(META_POSTPROCESS)
        return json.loads(text) if text else {}

    @property
    def decision(self) -> OperatingPoint | None:
        """The operating point recorded at export (None: argmax decides)."""
        text = self.metadata.get(META_DECISION)
        if not text:
            return None
        try:
            return OperatingPoint.from_dict(json.loads(text), self.task_record.names)
        except (ValueError, KeyError, TypeError, UsageError) as exc:
            words = getattr(exc, "message", None) or str(exc)
            raise ArtifactError(f"{self.path}: the recorded operating point is invalid: {words}",
                                "re-export it from its run") from None

    @property
    def source_weights_sha256(self) -> str | None:
        return self.metadata.get(META_WEIGHTS_SHA256)

    @property
    def source_checkpoint(self) -> str:
        return self.metadata.get(META_CHECKPOINT, BEST)

    @property
    def source_run(self) -> Path | None:
        """The run folder recorded at export time (manifest only), for `evaluate ARTIFACT`."""
        run = ((self.manifest or {}).get("source") or {}).get("run")
        return Path(run) if run else None

    @property
    def data_origin(self) -> str | None:
        """The data string the source run was trained on (manifest only)."""
        return ((self.manifest or {}).get("source") or {}).get("data_origin")



def spec_tampering(info: ArtifactInfo) -> str | None:
    """Why an artifact's embedded spec or task record (class names) cannot be trusted (edited
    after export), or None: each fingerprint must be the one recorded beside it at export, and
    the manifest's."""
    manifest = info.manifest or {}
    return edited_record(info.path, "preprocessing spec", info.spec.fingerprint(), [
        (info.metadata.get(META_SPEC_FINGERPRINT), "recorded in it"),
        (manifest.get("spec_fingerprint"), "in its manifest")]) or edited_record(
        info.path, "labels (edgetl.labels)", info.task_record.fingerprint(), [
            (info.metadata.get(LABELS_FINGERPRINT_KEY), "recorded in it"),
            (manifest.get("labels_fingerprint"), "in its manifest")])


def build_metadata(
    *,
    spec: PreprocessSpec,
    task_record: TaskRecord,
    architecture: str,
    weights_sha256: str,
    fmt: str,
    precision: str,
    checkpoint: str,
    input_dtype: str,
    output_dtype: str,
    outputs: list[dict[str, Any]] | None = None,
    postprocess: dict[str, Any] | None = None,
    decision: OperatingPoint | None = None,
) -> dict[str, str]:
    """The string key/value pairs embedded in the artifact (ONNX `metadata_props`)."""
    from edgetl import __version__

    extra = {}
    if decision is not None:
        extra[META_DECISION] = decision.to_json()
    if outputs is not None:
        extra[META_OUTPUTS] = json.dumps(outputs, sort_keys=True, separators=(",", ":"))
    if postprocess:
        extra[META_POSTPROCESS] = json.dumps(postprocess, sort_keys=True, separators=(",", ":"))
    return {**extra,
        META_SCHEMA: ARTIFACT_SCHEMA,
        META_SPEC: spec.canonical_json(),
        META_SPEC_FINGERPRINT: spec.fingerprint(),
        META_LABELS: json.dumps(task_record.to_dict(), sort_keys=True, separators=(",", ":")),
        LABELS_FINGERPRINT_KEY: task_record.fingerprint(),
        META_ARCHITECTURE: architecture,
        META_VERSION: __version__,
        META_WEIGHTS_SHA256: weights_sha256,
        META_FORMAT: fmt,
        META_PRECISION: precision,
        META_CHECKPOINT: checkpoint,
        META_INPUT_DTYPE: input_dtype,
        META_OUTPUT_DTYPE: output_dtype,
    }


def set_onnx_metadata(model: Any, metadata: Mapping[str, str]) -> None:
    """Replace edgetl's keys in an `onnx.ModelProto`'s metadata_props (others are kept)."""
    keep = [(p.key, p.value) for p in model.metadata_props if p.key not in metadata]
    del model.metadata_props[:]
    for key, value in [*keep, *metadata.items()]:
        entry = model.metadata_props.add()
        entry.key, entry.value = key, str(value)


def write_manifest(
    artifact: str | Path, metadata: Mapping[str, str], extra: dict[str, Any]
) -> Path:
    """Write `<artifact>.manifest.json`: embedded values (parsed) + file hash + `extra`."""
    path = Path(artifact)
    record: dict[str, Any] = {
        "schema": ARTIFACT_SCHEMA,
        "artifact": path.name,
        "sha256": sha256_file(path),
        "size_bytes": path.stat().st_size,
        "format": metadata[META_FORMAT],
        "precision": metadata[META_PRECISION],
        "architecture": metadata[META_ARCHITECTURE],
        "edgetl_version": metadata[META_VERSION],
        "spec": json.loads(metadata[META_SPEC]),
        "spec_fingerprint": metadata[META_SPEC_FINGERPRINT],
        "labels": json.loads(metadata[META_LABELS]),
        "labels_fingerprint": metadata.get(LABELS_FINGERPRINT_KEY),
        "source_weights_sha256": metadata[META_WEIGHTS_SHA256],
        "metadata": dict(metadata),
        **extra,
    }
    return atomic_write_json(manifest_path(path), record)


def read_manifest(artifact: str | Path) -> dict[str, Any] | None:
    """The manifest beside `artifact`, or None when there is none."""
    path = manifest_path(artifact)
    if not path.is_file():
        return None
    try:
        record = json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise ArtifactError(f"{path} is not valid JSON: {exc}", "re-export the artifact") from exc
    if not isinstance(record, dict) or record.get("schema") != ARTIFACT_SCHEMA:
        raise ArtifactError(f"{path} is not an edgetl artifact manifest")
    return record


def onnx_metadata(path: str | Path) -> dict[str, str]:
    """metadata_props of an ONNX file (weights are parsed but not kept)."""
    # not at the top: onnx loads only when used (fast --help)
    import onnx

    try:
        model = onnx.load(str(path), load_external_data=False)
    except Exception as exc:  # protobuf decode errors have no common public base class
        raise ArtifactError(f"{path} is not a readable ONNX file: {exc}") from exc
    return {p.key: p.value for p in model.metadata_props}


def metadata_from_mapping(
    path: str | Path, metadata: Mapping[str, str], manifest: dict[str, Any] | None = None
) -> ArtifactInfo:
    """Build `ArtifactInfo` from embedded key/values (e.g. onnxruntime's custom_metadata_map)."""
    path = Path(path)
    meta = dict(metadata)
    if META_SPEC not in meta:
        raise ArtifactError(
            f"{path} has no embedded preprocessing spec ({META_SPEC})",
            "export it with 'edgetl export RUN', which embeds the spec; an artifact without "
            "its spec cannot be checked or run correctly",
        )
    try:
        spec = PreprocessSpec.from_json(meta[META_SPEC])
    except SpecError as exc:
        raise ArtifactError(f"{path}: the embedded preprocessing spec is invalid: {exc.message}"
                            ) from exc
    if META_LABELS not in meta:
        raise ArtifactError(f"{path} has no embedded labels ({META_LABELS})", "re-export it")
    try:
        task_record = TaskRecord.from_dict(json.loads(meta[META_LABELS]))
    except (json.JSONDecodeError, SpecError) as exc:
        raise ArtifactError(f"{path}: the embedded labels are invalid: {exc}") from exc
    return ArtifactInfo(
        path=path,
        format=meta.get(META_FORMAT, "unknown"),
        precision=meta.get(META_PRECISION, "unknown"),
        spec=spec,
        task_record=task_record,
        architecture=meta.get(META_ARCHITECTURE, "unknown"),
        metadata=meta,
        manifest=manifest,
    )


def read_artifact(path: str | Path) -> ArtifactInfo:
    """Read an artifact's spec, labels and origin without torch.

    ONNX and OpenVINO IR: the embedded metadata is the truth (the manifest adds the run it came
    from). Engines and .tflite files: the manifest is the only record. Raises `ArtifactError`
    (exit 2) when the file is missing or carries no spec.
    """
    path = Path(path)
    if not path.is_file():
        raise ArtifactError(f"artifact not found: {path}", "pass the file 'edgetl export' wrote")
    manifest = read_manifest(path)
    family = family_of(path)
    if family is not None and family.embedded_metadata:
        reader = ir_metadata if family.name == "openvino" else onnx_metadata
        return metadata_from_mapping(path, reader(path), manifest)
    if manifest is None:
        raise ArtifactError(
            f"{path} has no manifest {manifest_path(path).name} and no embedded metadata",
            "keep the manifest 'edgetl export' wrote beside the engine",
        )
    return metadata_from_mapping(path, manifest.get("metadata") or {}, manifest)
