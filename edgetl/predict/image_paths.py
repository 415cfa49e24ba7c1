"""The image files a command was given: files as they are, folders searched recursively.

Shared by `predict` and `bench --images` so both read a folder the same way. No torch, no PIL.
"""

from __future__ import annotations

import fnmatch
import os
from collections.abc import Sequence
from pathlib import Path

from edgetl.errors import UsageError


def image_files(values: Sequence[str | Path], glob: str | None = None) -> list[Path]:
    """Files in the order given; each folder expanded to the files under it (recursively,
    sorted) whose name has an image extension, or, with `glob`, whose path relative to the
    folder (or base name) matches that pattern. Hidden files and folders are skipped. A folder
    that yields nothing is a usage error: a typo should not predict on zero images."""
    from edgetl.data.samples import is_image_name

    out: list[Path] = []
    for value in values:
        path = Path(value)
        if not path.is_dir():
            out.append(path)
            continue
        found = []
        for root, dirs, names in os.walk(path):
            dirs[:] = sorted(d for d in dirs if not d.startswith("."))
            for name in names:
                if name.startswith("."):
                    continue
                file = Path(root) / name
                rel = file.relative_to(path).as_posix()
                if glob is None:
                    keep = is_image_name(name)
                else:
                    keep = fnmatch.fnmatch(rel, glob) or fnmatch.fnmatch(name, glob)
                if keep:
                    found.append(file)
        if not found:
            what = f"matching {glob!r}" if glob is not None else "with an image extension"
            raise UsageError(f"{path} holds no files {what}",
                             "give image files, or a folder of images (--glob PATTERN picks "
                             "other names)")
        out += sorted(found)
    return out


def same_stems(files: Sequence[Path]) -> tuple[Path, Path] | None:
    """Two files whose outputs would share a name (outputs are written as STEM.png)."""
    seen: dict[str, Path] = {}
    for file in files:
        stem = file.stem
        if stem in seen and seen[stem] != file:
            return seen[stem], file
        seen.setdefault(stem, file)
    return None
