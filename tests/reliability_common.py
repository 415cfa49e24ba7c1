"""Helpers of the reliability tests (issue 16): the real console script, real files, signals."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

SCRIPT = Path(sys.executable).parent / "edgetl"
EDGETL = [str(SCRIPT)] if SCRIPT.is_file() else [sys.executable, "-m", "edgetl.cli.main"]


def edgetl(*args: object, cwd: Path | None = None, timeout: int = 600
           ) -> subprocess.CompletedProcess:
    """Run the installed `edgetl` console script with real arguments."""
    return subprocess.run([*EDGETL, *map(str, args)], capture_output=True, text=True,
                          timeout=timeout, cwd=cwd, env=dict(os.environ))


def last_line(text: str) -> str:
    lines = [line for line in text.splitlines() if line.strip()]
    return lines[-1] if lines else ""


def interrupt_when_ready(args: list[object], ready: str, timeout: float = 300
                         ) -> tuple[int, str, str]:
    """Start `edgetl ARGS`, send a real SIGINT once stdout shows `ready`; (rc, stdout, stderr)."""
    proc = subprocess.Popen([*EDGETL, *map(str, args)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=dict(os.environ))
    lines: list[str] = []
    seen = threading.Event()

    def read() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            lines.append(line)
            if ready in line:
                seen.set()

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    deadline = time.time() + timeout
    while not seen.is_set() and proc.poll() is None and time.time() < deadline:
        time.sleep(0.01)
    if not seen.is_set():
        proc.kill()
        proc.wait()
        pytest.fail(f"{args[0]} never printed {ready!r}: {''.join(lines)}"
                    f"{proc.stderr.read() if proc.stderr else ''}")
    proc.send_signal(signal.SIGINT)
    rc = proc.wait(timeout=120)
    reader.join(timeout=10)
    stderr = proc.stderr.read() if proc.stderr else ""
    return rc, "".join(lines), stderr


def tiny_recipe(path: Path, source: Path | str, epochs: int = 1, **sections: object) -> Path:
    """A recipe that trains Lite0's head at 64 px on cached features: seconds per run."""
    import yaml

    recipe = {
        "name": "tiny",
        "data": {"source": str(source)},
        "model": {"architecture": "tf_efficientnet_lite0", "input_size": 64},
        "augment": {"preset": "none"},
        "train": {"batch_size": 8, "eval_batch_size": 32, "num_threads": 1},
        "phases": [{"name": "A", "epochs": epochs, "lr": 0.01, "augment": False}],
    }
    for key, value in sections.items():
        recipe[key] = {**recipe.get(key, {}), **value} if isinstance(value, dict) else value
    path.write_text(yaml.safe_dump(recipe))
    return path


def copy_run(src: Path, dst: Path) -> Path:
    shutil.copytree(src, dst)
    return dst


def mount_tmpfs(folder: Path, size: str = "2m", read_only: bool = False) -> bool:
    """Mount a small tmpfs on `folder` (root in a sandbox); False where that is not allowed."""
    folder.mkdir(parents=True, exist_ok=True)
    options = f"size={size}" + (",ro" if read_only else "")
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(folder)],
                          capture_output=True, text=True)
    return done.returncode == 0


def unmount(folder: Path) -> None:
    subprocess.run(["umount", str(folder)], capture_output=True)
