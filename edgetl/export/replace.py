"""Whether an export may write over what is already at its target.

Why: `export RUN --format onnx-fp16 --out RUN/export/model.onnx` used to replace the fp32
artifact there, and its manifest, without a word. An export now replaces only the same
artifact made again: the same format, from the same run, checkpoint and weights, with the same
preprocessing input (what `verify` and `bench` reports name it by). Anything else there (another
artifact, a manifest of one, a file that is no artifact) is refused unless `--force`.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from edgetl.errors import UsageError


def _same_run(recorded: Any, run: Path) -> bool:
    try:
        return recorded is not None and Path(recorded).resolve() == run.resolve()
    except OSError:
        return False


def existing_artifact(target: Path, manifest: Path) -> tuple[str, dict[str, Any] | None] | None:
    """What is at the target already: (words, its manifest record), or None when nothing."""
    if not target.exists() and not manifest.exists():
        return None
    try:
        record = json.loads(manifest.read_text()) if manifest.is_file() else None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        record = None
    if not isinstance(record, dict):
        what = "a file that has no readable edgetl manifest" if target.exists() else \
            f"a damaged manifest ({manifest.name})"
        return what, None
    source = record.get("source") or {}
    words = (f"a {record.get('format', '?')} ({record.get('precision', '?')}) artifact of "
             f"{source.get('run', 'an unknown run')} ({source.get('checkpoint', '?')} "
             "checkpoint)")
    if not target.exists():
        words = f"the manifest of {words}, without its file"
    return words, record


def check_replace(target: Path, manifest: Path, run: Path, fmt: str, checkpoint: str,
                  embed: bool, weights_sha256: str | None, force: bool) -> None:
    """Raise `UsageError` (exit 2) when the export would replace another artifact at
    `target` (or its `manifest`) and `force` is not given."""
    found = existing_artifact(target, manifest)
    if found is None or force:
        return
    words, record = found
    if record is not None and target.exists() and record.get("format") == fmt and \
            _same_run((record.get("source") or {}).get("run"), run) and \
            (record.get("source") or {}).get("checkpoint") == checkpoint and \
            bool(record.get("embed_preprocessing")) == embed and \
            record.get("source_weights_sha256") == weights_sha256:
        return  # the same artifact, made again
    raise UsageError(f"--out {target} already holds {words}, which this export ({fmt} of "
                     f"{run}, {checkpoint} checkpoint) would replace",
                     "pass --force to replace it, or choose another --out")
