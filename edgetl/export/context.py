"""What every format's exporter receives, and the steps they share.

`ExportContext` holds the run, its checkpoint record, the format row and the options; its
methods load the fine-tuned model, say which spec the artifact carries, and build the metadata
and manifest fields common to all formats, so format modules only do their own part.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from edgetl.artifact.formats import ExportFormat
from edgetl.artifact.manifest import build_metadata
from edgetl.checkpoint import CheckpointInfo, now_iso, package_versions
from edgetl.decision import OperatingPoint
from edgetl.export.options import ExportOptions
from edgetl.export.preprocess_graph import embedded_spec
from edgetl.runfolder import RunFolder
from edgetl.spec import PreprocessSpec


@dataclass(frozen=True)
class ExportResult:
    """Where the artifact and its manifest went, and the format's own evidence."""

    path: Path
    manifest: Path
    format: str
    precision: str
    size_bytes: int
    details: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class ExportContext:
    run: Path
    info: CheckpointInfo
    fmt: ExportFormat
    options: ExportOptions
    target: Path
    decision: OperatingPoint | None = None  # a classifier's operating point, chosen on val

    @property
    def spec(self) -> PreprocessSpec:
        """The spec the artifact carries: the run's, with graph_input changed when embedded."""
        if self.options.embed_preprocessing:
            return embedded_spec(self.info.spec)
        return self.info.spec

    @property
    def run_folder(self) -> RunFolder:
        return RunFolder(self.run)

    @property
    def split_file(self) -> Path:
        """The run's split file, as the run folder names it for the checkpoint's task (never the
        name a checkpoint recorded: select's probes once recorded a CSV name for every task)."""
        return self.run_folder.split_path(self.info.task_record.task)

    def load_model(self) -> Any:
        """The fine-tuned classifier (eval, CPU, float32) exactly as training saved it."""
        from edgetl.models.loading import load_model

        model, _ = load_model(self.info.folder)
        return model

    def metadata(self, input_dtype: str, output_dtype: str = "float32",
                 outputs: list[dict[str, Any]] | None = None,
                 postprocess: dict[str, Any] | None = None) -> dict[str, str]:
        return build_metadata(
            spec=self.spec,
            task_record=self.info.task_record,
            architecture=self.info.architecture,
            weights_sha256=self.info.weights_sha256(),
            fmt=self.fmt.name,
            precision=self.fmt.precision,
            checkpoint=self.options.checkpoint,
            input_dtype=input_dtype,
            output_dtype=output_dtype,
            outputs=outputs,
            postprocess=postprocess,
            decision=self.decision,
        )

    def manifest_extra(self, details: dict[str, Any]) -> dict[str, Any]:
        """Manifest fields beyond the embedded metadata: origin, options, versions, evidence."""
        return {
            "source": {
                "run": str(self.run.resolve()),
                "checkpoint": self.options.checkpoint,
                "checkpoint_folder": str(self.info.folder.resolve()),
                "data_origin": self.info.data_origin,
                "split_file": self.split_file.name,
            },
            "embed_preprocessing": self.options.embed_preprocessing,
            "options": {
                "opset": self.options.opset,
                "max_batch": self.options.max_batch,
                **({"calibration_images": self.options.calibration_images,
                    "calibration_method": self.options.calibration_method}
                   if self.fmt.calibrated else {}),
            },
            "details": details,
            **({"decision": self.decision.to_dict()} if self.decision is not None else {}),
            "versions": package_versions(),
            "created": now_iso(),
        }
