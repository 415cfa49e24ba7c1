"""Find image files that do not decode, without crashing and without decoding twice.

A truncated JPEG or a text file named `.jpg` must not stop a training run halfway through an
epoch, so sources decode every image once up front (PIL `load()`, which reads the whole pixel
stream) and move failures to `DataSet.skipped`. JPEGs are decoded at reduced scale
(`Image.draft`): the whole entropy-coded stream is still read, so truncation is still caught, at
a fraction of the cost. Results are cached per process by (path, size, mtime).
"""

from __future__ import annotations

import os
import re
import warnings
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager

from PIL import Image, UnidentifiedImageError

from edgetl.data.samples import DataSet, DataWarning

_CHECKED: dict[tuple[str, int, int], str | None] = {}


def default_workers() -> int:
    """Threads for decoding: PIL releases the GIL while decoding, so threads scale."""
    return max(1, min(8, os.cpu_count() or 1))


@contextmanager
def quiet_pil() -> Iterator[None]:
    """Silence PIL's DecompressionBombWarning (big images are fine here) around a thread pool.

    Entered once in the calling thread: `warnings.catch_warnings` swaps process-wide state, so
    entering it inside worker threads would interleave saves and restores and lose warnings.
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        yield


def _file_key(path: str) -> tuple[str, int, int] | None:
    try:
        stat = os.stat(path)
    except OSError:
        return None
    return path, stat.st_size, stat.st_mtime_ns


_IN_MEMORY = re.compile(r"\s*<_io\.\w+ object at 0x[0-9a-fA-F]+>")


def describe_error(exc: BaseException) -> str:
    """One short line for a decode failure (shown in reports and warnings).

    PIL names what it read from, which is an in-memory buffer when the bytes were read first
    (`dedup.py`); that object's repr says nothing to a user and is left out. The path is in
    the report's own column.
    """
    if isinstance(exc, UnidentifiedImageError):
        return "cannot decode (not an image format PIL recognises)"
    text = _IN_MEMORY.sub("", " ".join(str(exc).split())) or type(exc).__name__
    return f"cannot decode ({type(exc).__name__}: {text})"


def decode_error(path: str) -> str | None:
    """None when the file decodes completely, else a short reason."""
    key = _file_key(path)
    if key is None:
        return "file not found"
    if key in _CHECKED:
        return _CHECKED[key]
    reason: str | None = None
    try:
        with Image.open(path) as img:
            if img.format == "JPEG":
                img.draft("L", (64, 64))
            img.load()
    except Exception as exc:  # any decoder failure means "unreadable", whatever PIL raises
        reason = describe_error(exc)
    _CHECKED[key] = reason
    return reason


def find_unreadable(
    paths: Iterable[str],
    *,
    progress: Callable[[int], None] | None = None,
    workers: int | None = None,
) -> dict[str, str]:
    """Path -> reason for every file that does not decode. `progress(n)` gets increments."""
    unique = list(dict.fromkeys(paths))
    bad: dict[str, str] = {}
    with quiet_pil(), ThreadPoolExecutor(max_workers=workers or default_workers()) as pool:
        for path, reason in zip(unique, pool.map(decode_error, unique), strict=True):
            if reason is not None:
                bad[path] = reason
            if progress is not None:
                progress(1)
    return bad


def drop_unreadable(ds: DataSet, *, progress: Callable[[int], None] | None = None) -> DataSet:
    """Move samples whose file does not decode to `skipped`, with one summary warning."""
    bad = find_unreadable((s.path for s in ds.samples), progress=progress)
    if not bad:
        return ds
    kept = [s for s in ds.samples if s.path not in bad]
    skipped = list(ds.skipped) + sorted(bad.items())
    first = next(iter(sorted(bad)))
    more = f" and {len(bad) - 1} more" if len(bad) > 1 else ""
    warnings.warn(
        f"skipped {len(bad)} unreadable image file(s): {first}: {bad[first]}{more}",
        DataWarning,
        stacklevel=2,
    )
    return ds.replace(samples=kept, skipped=skipped)
