"""Peak host memory per bench row (Linux VmHWM, reset between rows) and device memory.

Writing "5" to /proc/self/clear_refs resets the kernel's resident-set high-water mark, so each
row's `peak_rss_mb` covers that row only (session creation included). Where that is not
possible the peak is the process's so far, and the report says which (`rss_method`).
"""

from __future__ import annotations

import contextlib
import os
from typing import Any

_STATUS = "/proc/self/status"
_CLEAR_REFS = "/proc/self/clear_refs"


def _status_kb(field: str) -> int | None:
    try:
        with open(_STATUS, encoding="utf-8") as handle:
            for line in handle:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except (OSError, ValueError, IndexError):
        return None
    return None


class HostPeak:
    """Peak resident set size between `start()` and `peak_mb()`."""

    def __init__(self) -> None:
        self.method = "unknown"

    def start(self) -> None:
        try:
            with open(_CLEAR_REFS, "w", encoding="utf-8") as handle:
                handle.write("5")
            self.method = "VmHWM (reset per row)"
        except OSError:
            self.method = "VmHWM (process lifetime)" if _status_kb("VmHWM") else "rss at end"

    def peak_mb(self) -> float | None:
        kb = _status_kb("VmHWM")
        if kb is not None:
            return round(kb / 1024, 1)
        try:
            import psutil

            return round(psutil.Process(os.getpid()).memory_info().rss / 2**20, 1)
        except Exception:  # psutil missing or unsupported platform
            return None


def torch_device_peak_reset() -> None:
    """Reset torch's CUDA peak counters (torch backend rows)."""
    # not at the top: importing this module loads no torch
    import torch

    with contextlib.suppress(Exception):
        torch.cuda.reset_peak_memory_stats()


def torch_device_peak_mb() -> float | None:
    # not at the top: importing this module loads no torch
    import torch

    try:
        return round(torch.cuda.max_memory_allocated() / 2**20, 1)
    except Exception:  # no CUDA
        return None


def device_used_mb(device: int = 0) -> float | None:
    """Device-wide memory in use (free/total from the driver); ORT's arena is invisible to torch.

    Measured after the timed runs, when ONNX Runtime's arena holds its high-water mark, and
    minus the memory in use before the session opened; other processes on the GPU distort it.
    """
    try:
        import torch

        if not torch.cuda.is_available():
            return None
        free, total = torch.cuda.mem_get_info(device)
        return round((total - free) / 2**20, 1)
    except Exception:  # torch missing or no CUDA
        return None


def describe_peak(values: dict[str, Any]) -> str:
    return ", ".join(f"{k}={v}" for k, v in values.items() if v is not None)
