"""Atomic file writes and hashing: nothing a run already wrote is lost or left half-written."""

from __future__ import annotations

import errno
import hashlib
import json
import math
import os
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

FULL_DISK_BYTES = 1 << 20  # below this much free space a failed write is a full disk


def atomic_write_bytes(path: str | Path, data: bytes) -> Path:
    """Write to a temporary file in the same folder, fsync, then rename over `path`."""
    return atomic_write_with(path, lambda tmp: Path(tmp).write_bytes(data))


def atomic_write_text(path: str | Path, text: str) -> Path:
    return atomic_write_bytes(path, text.encode("utf-8"))


def finite_or_none(obj: Any) -> Any:
    """`obj` with every NaN or infinite number replaced by None (JSON null), numpy scalars as
    Python numbers: a value that could not be computed is missing, not a bare `NaN`."""
    if isinstance(obj, dict):
        return {key: finite_or_none(value) for key, value in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [finite_or_none(value) for value in obj]
    if hasattr(obj, "dtype") and hasattr(obj, "item") and getattr(obj, "ndim", None) == 0:
        obj = obj.item()  # a numpy scalar
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    return obj


def json_text(obj: Any, **kwargs: Any) -> str:
    """Strict JSON (RFC 8259) of `obj`: non-finite numbers become null (`finite_or_none`);
    `allow_nan=False` keeps a bare NaN or Infinity out of every file edgetl writes."""
    kwargs.setdefault("default", str)
    return json.dumps(finite_or_none(obj), allow_nan=False, **kwargs)


def atomic_write_json(path: str | Path, obj: Any) -> Path:
    return atomic_write_text(path, json_text(obj, indent=2, sort_keys=False) + "\n")


def atomic_write_with(path: str | Path, writer: Callable[[str], object]) -> Path:
    """Let `writer(tmp_path)` produce the file (e.g. torch/onnx/matplotlib savers), then rename."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp" + target.suffix,
                                   dir=target.parent)
    except OSError as exc:  # name the file the user asked for, not the temporary one
        raise OSError(exc.errno, exc.strerror, str(target)) from exc
    os.close(fd)
    try:
        writer(tmp)
        with open(tmp, "rb") as handle:
            os.fsync(handle.fileno())
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600; results are meant to be shared
        os.replace(tmp, target)
    except BaseException as exc:
        full = isinstance(exc, Exception) and not isinstance(exc, OSError) and \
            (os.strerror(errno.ENOSPC) in str(exc) or disk_full(target.parent))
        if os.path.exists(tmp):
            os.unlink(tmp)
        if isinstance(exc, OSError) and exc.filename is None:
            exc.filename = str(target)  # a failed write() names no file
        if full:  # torch.save and safetensors report a full disk in their own words (or
            # none: torch says "unexpected pos"), so the free space is asked as well
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(target)) from exc
        raise
    return target


def disk_full(folder: str | Path) -> bool:
    """Whether the file system holding `folder` has (almost) no space left."""
    try:
        stat = os.statvfs(folder)
    except OSError:
        return False
    return stat.f_bavail * stat.f_frsize < FULL_DISK_BYTES


def _umask() -> int:
    current = os.umask(0)
    os.umask(current)
    return current


@contextmanager
def outputs_together(*paths: str | Path | None) -> Iterator[None]:
    """Files that only mean something together (an artifact and its manifest, a report and its
    table): if the block fails or is interrupted after writing some of them, every one of them
    is removed, so no half of a set is left looking complete (a stale partner included).
    Files the block did not touch are left as they were."""
    files = [Path(p) for p in paths if p is not None]
    before = {p: _signature(p) for p in files}
    try:
        yield
    except BaseException:
        if any(_signature(p) != before[p] for p in files):
            for p in files:
                if p.is_file():
                    p.unlink()
        raise


def _signature(path: Path) -> tuple[int, int, int] | None:
    """Changes when the file is written or replaced (an atomic write makes a new inode)."""
    try:
        stat = path.stat()
    except OSError:
        return None
    return stat.st_ino, stat.st_mtime_ns, stat.st_size


def require_writable(path: str | Path, what: str, *, folder: bool = False) -> None:
    """Fail now, before any work, when `path` (a file, or a folder with `folder`) cannot be
    written: a file or folder in the way, a read-only file system, no permission. Raises the
    `OSError` the write itself would raise, so the CLI words it once (`errors.os_error_line`)."""
    target = Path(path)
    if target.exists():
        if folder and not target.is_dir():
            raise NotADirectoryError(errno.ENOTDIR, f"{what} {path} is a file, not a folder",
                                     str(path))
        if not folder and target.is_dir():
            raise IsADirectoryError(errno.EISDIR, f"{what} {path} is a folder, not a file",
                                    str(path))
    probe = target if folder and target.is_dir() else target.parent
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    if not probe.is_dir():
        raise NotADirectoryError(errno.ENOTDIR, f"{what} {path}: {probe} is a file, not a "
                                 "folder", str(path))
    if not os.access(probe, os.W_OK | os.X_OK):  # EROFS too, for root as well
        code = errno.EROFS if _read_only(probe) else errno.EACCES
        raise OSError(code, os.strerror(code), str(path))


def _read_only(folder: Path) -> bool:
    try:
        return bool(os.statvfs(folder).f_flag & os.ST_RDONLY)
    except OSError:
        return False


def same_file(a: str | Path, b: str | Path) -> bool:
    """Whether two paths name one file (resolving links and relative parts)."""
    try:
        return os.path.samefile(a, b)
    except OSError:
        return Path(a).resolve() == Path(b).resolve()


def append_line(path: str | Path, line: str) -> None:
    """Append one line and fsync (metrics.jsonl: a crash loses at most the line being written)."""
    with open(path, "a", encoding="utf-8") as handle:
        handle.write(line.rstrip("\n") + "\n")
        handle.flush()
        os.fsync(handle.fileno())


def sha256_file(path: str | Path, chunk: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(chunk):
            digest.update(block)
    return digest.hexdigest()
