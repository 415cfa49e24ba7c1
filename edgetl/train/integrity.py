"""Training-state files that cannot be read are one line, not a traceback.

The weights are checked against their recorded sha256 by `edgetl.checkpoint.check_weights`;
the training state beside `last/` has no recorded hash, so `load_state_file` turns its decode
failures into the same kind of line (exit 2, naming the file).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from edgetl.errors import ArtifactError

T = TypeVar("T")


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
