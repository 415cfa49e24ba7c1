"""What machine and software a report was measured on: recorded in every report.

Timings are only comparable between reports whose environments match (or, with `--normalize`,
by ratio). Nothing here needs a GPU, torch or TensorRT: each probe that fails says so instead.
py-cpuinfo is not a dependency: the CPU model comes from /proc/cpuinfo or `lscpu`.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import os
import platform
import re
import shutil
import socket
import subprocess
import sys
from importlib import metadata
from typing import Any

THREAD_VARIABLES = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS",
                    "ORT_NUM_THREADS", "CUDA_VISIBLE_DEVICES")
_FLAGS_OF_INTEREST = ("avx2", "avx512f", "avx512_vnni", "avx_vnni", "amx_int8", "amx_bf16",
                      "avx512_bf16", "avx512_fp16", "neon", "asimd")


def _run(cmd: list[str], timeout: float = 5.0) -> str | None:
    if shutil.which(cmd[0]) is None:
        return None
    try:
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=False)
    except (OSError, subprocess.SubprocessError):
        return None
    return done.stdout if done.returncode == 0 else None


def cpu_info() -> dict[str, Any]:
    """Model name, logical/physical cores and the SIMD flags that decide int8/fp16 speed."""
    model: str | None = None
    flags: set[str] = set()
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as handle:
            for line in handle:
                key, _, value = line.partition(":")
                key = key.strip()
                if key in ("model name", "Hardware", "Model") and model is None:
                    model = value.strip()
                elif key in ("flags", "Features") and not flags:
                    flags = set(value.split())
    except OSError:
        pass
    lscpu = _run(["lscpu"])
    if lscpu:
        for line in lscpu.splitlines():
            key, _, value = line.partition(":")
            if key.strip() == "Model name" and not model:
                model = value.strip()
            elif key.strip() == "Flags" and not flags:
                flags = set(value.split())
    physical: int | None = None
    try:
        import psutil

        physical = psutil.cpu_count(logical=False)
    except ImportError:
        pass
    affinity = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None
    return {
        "model": model or platform.processor() or "unknown",
        "machine": platform.machine(),
        "logical_cores": os.cpu_count(),
        "physical_cores": physical,
        "usable_cores": affinity,
        "flags": sorted(f for f in _FLAGS_OF_INTEREST if f in flags),
    }


def load_average() -> list[float] | None:
    """1, 5 and 15 minute load averages: a busy machine explains noisy numbers."""
    try:
        return [round(v, 2) for v in os.getloadavg()]
    except (OSError, AttributeError):
        return None


def gpu_info() -> list[dict[str, Any]]:
    """GPUs from nvidia-smi (name, driver, memory); empty on machines without one."""
    out = _run(["nvidia-smi", "--query-gpu=name,driver_version,memory.total,compute_cap",
                "--format=csv,noheader"])
    gpus: list[dict[str, Any]] = []
    for line in (out or "").strip().splitlines():
        parts = [p.strip() for p in line.split(",")]
        if len(parts) >= 3:
            gpus.append({"name": parts[0], "driver": parts[1], "memory": parts[2],
                         "compute_capability": parts[3] if len(parts) > 3 else None,
                         "source": "nvidia-smi"})
    return gpus


def torch_cuda_info() -> dict[str, Any] | None:
    """torch's own view of CUDA, only when torch is already imported (never imports it)."""
    import sys

    torch = sys.modules.get("torch")
    if torch is None:
        return None
    try:
        if not torch.cuda.is_available():
            return {"available": False}
        props = torch.cuda.get_device_properties(0)
        return {"available": True, "device": props.name, "cuda": torch.version.cuda,
                "cudnn": torch.backends.cudnn.version(),
                "memory_gb": round(props.total_memory / 2**30, 1)}
    except Exception as exc:  # a broken driver must not break the report
        return {"available": False, "error": str(exc)}


def package_versions() -> dict[str, str | None]:
    """Versions that decide latency (installed distributions; None when absent)."""
    names = ("edgetl", "numpy", "torch", "onnx", "onnxruntime", "onnxruntime-gpu", "tensorrt",
             "openvino", "ai-edge-litert", "timm", "pillow")
    out: dict[str, str | None] = {"python": platform.python_version()}
    for name in names:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = None
    # Two onnxruntime distributions can be installed side by side (CPU and GPU builds share the
    # module name): the one imported is what ran.
    module = sys.modules.get("onnxruntime")
    if module is not None:
        out["onnxruntime_imported"] = getattr(module, "__version__", None)
    return out


def host_id() -> str:
    """A short hash of the host name: tells machines apart without publishing their names."""
    return hashlib.sha256(socket.gethostname().encode()).hexdigest()[:12]


def machine_slug(env: dict[str, Any]) -> str:
    """A file-name-safe machine name: the GPU if there is one, else the CPU and its cores."""
    gpus = env.get("gpus") or []
    if gpus:
        name = gpus[0]["name"]
    else:
        cpu = env.get("cpu") or {}
        name = f"{cpu.get('model', 'cpu')}-{cpu.get('usable_cores') or cpu.get('logical_cores')}c"
    name = re.sub(r"\(r\)|\(tm\)|processor|cpu @.*|nvidia", "", name, flags=re.IGNORECASE)
    return re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-") or "machine"


def capture_environment(threads: int | None = None) -> dict[str, Any]:
    """Everything a reader needs to judge whether two reports are comparable."""
    return {
        "date": _dt.datetime.now(_dt.UTC).replace(microsecond=0).isoformat(),
        "host_id": host_id(),
        "platform": platform.platform(),
        "cpu": cpu_info(),
        "gpus": gpu_info(),
        "torch_cuda": torch_cuda_info(),
        "versions": package_versions(),
        "threads": {
            "requested": threads,
            "env": {k: os.environ[k] for k in THREAD_VARIABLES if k in os.environ},
        },
        "load_average": load_average(),
    }
