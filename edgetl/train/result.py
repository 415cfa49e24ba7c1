"""What a fine-tuning run hands back: its own module so the trainer and the entry point both
import it without importing each other."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any


@dataclass
class RunResult:
    run_dir: Path
    test_report: dict[str, Any]
    best_epoch: int | None
    best_value: float | None
    train_seconds: float
