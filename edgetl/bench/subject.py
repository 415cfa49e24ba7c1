"""What is being benchmarked: an exported artifact, its source run (for `torch`), or a run folder.

`ARTIFACT` may be an exported file (ONNX or TensorRT engine: its embedded metadata and manifest
give the spec, labels and the run it came from) or a run folder (torch only, or its
RUN/export/model.onnx for ONNX Runtime backends). The report's `artifact` record identifies
exactly what was timed: sha256, size, format, precision and spec fingerprint.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from edgetl.artifact.formats import artifact_size
from edgetl.artifact.manifest import ArtifactInfo, read_artifact
from edgetl.errors import ArtifactError, UsageError
from edgetl.io import sha256_file
from edgetl.runfolder import BEST, RunFolder
from edgetl.spec import PreprocessSpec, TaskRecord

DEFAULT_ONNX = "model.onnx"  # the ONNX artifact `edgetl export` writes into RUN/export/


@dataclass(frozen=True)
class Subject:
    given: Path
    artifact: ArtifactInfo | None  # None: a run folder without an exported model
    run: Path | None  # the run folder whose checkpoint `torch` times (None: not available)
    checkpoint: str  # best or last

    def require_artifact(self, backend: str) -> ArtifactInfo:
        if self.artifact is None:
            raise UsageError(
                f"--backend {backend} times an exported artifact and {self.given} is a run "
                "folder without export/model.onnx",
                f"run 'edgetl export {self.given}' first, or use --backend torch",
            )
        return self.artifact

    def require_run(self) -> Path:
        if self.run is None or not self.run.is_dir():
            where = f" ({self.run} is not on this machine)" if self.run else ""
            raise ArtifactError(
                f"--backend torch needs the run folder that {self.given.name} was exported "
                f"from{where}",
                "pass the run folder itself as ARTIFACT, or drop --backend torch",
            )
        return self.run

    def run_spec_and_labels(self) -> tuple[PreprocessSpec, TaskRecord]:
        from edgetl.checkpoint import read_checkpoint_info

        info = read_checkpoint_info(self.require_run(), self.checkpoint)
        return info.spec, info.task_record

    def record(self) -> dict[str, Any]:
        """The report's `artifact` section."""
        if self.artifact is not None:
            art = self.artifact
            return {
                "path": str(art.path), "name": art.path.name, "sha256": sha256_file(art.path),
                "size_bytes": artifact_size(art.path), "format": art.format,
                "precision": art.precision, "spec_fingerprint": art.spec.fingerprint(),
                "architecture": art.architecture,
                "embedded_preprocessing": art.embedded_preprocessing,
                "num_classes": art.task_record.num_classes,
                "source_run": str(self.run) if self.run else None,
            }
        from edgetl.checkpoint import read_checkpoint_info

        info = read_checkpoint_info(self.require_run(), self.checkpoint)
        return {
            "path": str(info.weights_path), "name": info.weights_path.name,
            "sha256": info.weights_sha256(), "size_bytes": info.weights_path.stat().st_size,
            "format": "checkpoint", "precision": "fp32",
            "spec_fingerprint": info.spec.fingerprint(), "architecture": info.architecture,
            "embedded_preprocessing": False, "num_classes": info.task_record.num_classes,
            "source_run": str(self.run),
        }


def open_subject(path: str | Path, checkpoint: str = BEST) -> Subject:
    """Resolve ARTIFACT (file or run folder) without loading any model. An artifact whose
    spec or class names were edited after export is refused, as predict refuses it."""
    from edgetl.predict import refuse_edited

    given = Path(path)
    if given.is_dir():
        from edgetl.checkpoint import read_checkpoint_info

        read_checkpoint_info(given, checkpoint)  # a clear error when it is not a run folder
        onnx = RunFolder(given).export_path / DEFAULT_ONNX
        artifact = read_artifact(onnx) if onnx.is_file() else None
        if artifact is not None:
            refuse_edited(artifact)
        return Subject(given=given, artifact=artifact, run=given, checkpoint=checkpoint)
    artifact = read_artifact(given)
    refuse_edited(artifact)
    return Subject(given=given, artifact=artifact, run=artifact.source_run,
                   checkpoint=artifact.source_checkpoint)
