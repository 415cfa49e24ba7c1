"""The CPU's name for benchmark records (imported by the scripts in this folder)."""

from __future__ import annotations

import platform
from pathlib import Path


def cpu_name() -> str:
    """/proc/cpuinfo's model name (Linux), else what platform reports."""
    info = Path("/proc/cpuinfo")
    lines = info.read_text().splitlines() if info.is_file() else []
    return next((line.split(":", 1)[1].strip() for line in lines
                 if line.startswith("model name")), platform.processor())
