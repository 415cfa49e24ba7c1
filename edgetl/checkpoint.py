"""Checkpoints: safetensors weights plus a JSON record, written atomically, loadable without pickle.

A checkpoint folder (`RUN/best/`, `RUN/last/`) holds:
- `model.safetensors`: the whole classifier's state dict;
- `checkpoint.json`: architecture, head, spec (and fingerprint), labels, recipe hash, data origin,
  metrics, versions, date;
- `last/` also holds `train_state.safetensors` + `train_state.json` (optimiser, scheduler,
  phase, epoch, early-stopping state, RNG) so `--resume` continues exactly where it stopped.
`RUN/qat/` (quantisation-aware training, `edgetl.export.qat_phase`) holds the fake-quantised
model's state dict (weights and quantiser parameters), `nncf_quantisers.json` (where NNCF put
the quantisers) and a record whose `qat` entry names the float checkpoint it started from.
The JSON is written last, so a folder whose JSON exists is complete.
"""

from __future__ import annotations

import datetime as _dt
import json
import platform
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

from edgetl.errors import ArtifactError
from edgetl.io import atomic_write_json, atomic_write_with, sha256_file
from edgetl.spec import PreprocessSpec, TaskRecord

CHECKPOINT_SCHEMA = "edgetl.checkpoint/1"
BEST, LAST = "best", "last"  # a run's checkpoint folders (edgetl.runfolder keeps the run)
QAT = "qat"  # the quantisation-aware checkpoint, next to best/ (export --format onnx-int8)
QUANTISERS_FILE = "nncf_quantisers.json"  # qat/ only: NNCF's quantiser placement
WEIGHTS_FILE = "model.safetensors"
RECORD_FILE = "checkpoint.json"
TRAIN_STATE_FILE = "train_state.json"  # last/ only: where the run stands (edgetl.train.state)
OPTIMIZER_FILE = "optimizer.pt"  # last/ only: the optimizer's state
EMA_FILE = "ema.pt"  # last/ only: the moving average of a phase cut short


def package_versions() -> dict[str, str]:
    """Versions that decide numerical results; recorded in every checkpoint and report."""
    out = {"python": platform.python_version()}
    for name in ("edgetl", "torch", "torchvision", "timm", "onnx", "onnxruntime", "numpy",
                 "pillow"):
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return out


def now_iso() -> str:
    return _dt.datetime.now(_dt.UTC).replace(microsecond=0).isoformat()


@dataclass(frozen=True)
class CheckpointInfo:
    """The JSON side of a checkpoint, parsed."""

    folder: Path
    architecture: str
    num_classes: int
    head: dict[str, Any]
    spec: PreprocessSpec
    task_record: TaskRecord
    record: dict[str, Any]

    @property
    def weights_path(self) -> Path:
        return self.folder / WEIGHTS_FILE

    @property
    def data_origin(self) -> str | None:
        return (self.record.get("data") or {}).get("origin")

    def weights_sha256(self) -> str:
        return sha256_file(self.weights_path)


def save_checkpoint(
    folder: str | Path,
    model: Any,
    *,
    architecture: str,
    head: dict[str, Any],
    spec: PreprocessSpec,
    task_record: TaskRecord,
    extra: dict[str, Any],
) -> Path:
    """Write weights then the JSON record (atomic each; JSON last marks completeness)."""
    # not at the top: importing this module loads no torch
    from safetensors.torch import save_file

    target = Path(folder)
    target.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().contiguous().cpu() for k, v in model.state_dict().items()}
    atomic_write_with(target / WEIGHTS_FILE, lambda tmp: save_file(state, tmp))
    record = {
        "schema": CHECKPOINT_SCHEMA,
        "architecture": architecture,
        "num_classes": task_record.num_classes,
        "head": head,
        "spec": spec.to_dict(),
        "spec_fingerprint": spec.fingerprint(),
        "labels": task_record.to_dict(),  # the task record (key kept from classification)
        "weights_sha256": sha256_file(target / WEIGHTS_FILE),
        "versions": package_versions(),
        "created": now_iso(),
        **extra,
    }
    atomic_write_json(target / RECORD_FILE, record)
    return target


def resolve_checkpoint_folder(path: str | Path, which: str = BEST) -> Path:
    """Accept a run folder (uses `which`/) or a checkpoint folder itself."""
    base = Path(path)
    if not base.exists():
        raise ArtifactError(f"run or checkpoint folder not found: {base}")
    if (base / RECORD_FILE).is_file():
        return base
    candidate = base / which
    if (candidate / RECORD_FILE).is_file():
        return candidate
    raise ArtifactError(
        f"{base} holds no {which}/{RECORD_FILE}",
        "pass a run folder written by 'edgetl finetune' (it may still be running or was killed "
        "before its first epoch ended)",
    )


def read_checkpoint_info(path: str | Path, which: str = BEST) -> CheckpointInfo:
    """Parse and validate `checkpoint.json` (no torch needed)."""
    folder = resolve_checkpoint_folder(path, which)
    try:
        record = json.loads((folder / RECORD_FILE).read_text())
    except json.JSONDecodeError as exc:
        raise ArtifactError(f"{folder / RECORD_FILE} is not valid JSON: {exc}") from exc
    if record.get("schema") != CHECKPOINT_SCHEMA:
        raise ArtifactError(
            f"{folder} is not an edgetl checkpoint (schema {record.get('schema')!r})")
    if not (folder / WEIGHTS_FILE).is_file():
        raise ArtifactError(f"{folder} has no {WEIGHTS_FILE}")
    spec = PreprocessSpec.from_dict(record["spec"])
    if spec.fingerprint() != record.get("spec_fingerprint"):
        raise ArtifactError(f"{folder}: the spec does not match its recorded fingerprint")
    return CheckpointInfo(
        folder=folder,
        architecture=record["architecture"],
        num_classes=int(record["num_classes"]),
        head=dict(record.get("head") or {}),
        spec=spec,
        task_record=TaskRecord.from_dict(record["labels"]),
        record=record,
    )


def check_weights(info: Any, hint: str | None = None) -> None:
    """Raise `ArtifactError` when `info.weights_path` does not hash to the recorded sha256."""
    recorded = info.record.get("weights_sha256")
    if recorded is None:  # checkpoints always record it; a hand-made one may not
        return
    actual = info.weights_sha256()
    if actual != recorded:
        raise ArtifactError(
            f"{info.weights_path} is corrupt or truncated: its sha256 {actual[:12]} is not the "
            f"{recorded[:12]} its checkpoint.json records",
            hint or "restore the file, or use the run's other checkpoint (best or last)",
        )
