"""Is a checkpoint folder whole? Its weights against the sha256 its `checkpoint.json` records.

A truncated or overwritten `model.safetensors` used to reach safetensors or torch and end as an
internal error (exit 70). Every loader checks here first, so a damaged file is one line, exit 2,
naming the file. The training state beside `last/` has no recorded hash; `load_state_file`
turns its decode failures into the same kind of line.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from edgetl.errors import ArtifactError

T = TypeVar("T")


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


def load_state_file(path: Path, load: Callable[[Path], T], hint: str) -> T:
    """`load(path)` for a training-state file; a missing or undecodable file is one line."""
    if not path.is_file():
        raise ArtifactError(f"{path} is missing", hint)
    try:
        return load(path)
    except (json.JSONDecodeError, UnicodeDecodeError, EOFError, RuntimeError, ValueError,
            TypeError, KeyError) as exc:  # torch.load reports truncation as RuntimeError
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise ArtifactError(f"{path} is corrupt or truncated ({first})", hint) from exc
