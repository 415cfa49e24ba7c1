"""Finding things in a data set's folders: split folders, images by name, class-name files.

Shared by every reader so that `valid/` means val everywhere, hidden entries are skipped
everywhere, and an annotation names its image by the same rule in every format.
"""

from __future__ import annotations

import os
from pathlib import Path

from edgetl.data.samples import is_image_name

SPLIT_FOLDER_NAMES: dict[str, str] = {"train": "train", "val": "val", "valid": "val",
                                      "validation": "val", "test": "test"}


def abspath(path: str | Path) -> Path:
    return Path(os.path.normpath(os.path.abspath(os.path.expanduser(str(path)))))


def visible_dirs(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.is_dir() and not p.name.startswith("."))


def split_folders(root: Path) -> list[tuple[Path, str]]:
    """Subfolders named like a split (train, val, valid, validation, test) with their split."""
    return [(p, SPLIT_FOLDER_NAMES[p.name.lower()]) for p in visible_dirs(root)
            if p.name.lower() in SPLIT_FOLDER_NAMES]


def walk_files(folder: Path, suffixes: tuple[str, ...] | None = None) -> list[Path]:
    """Files below `folder` (recursive, sorted, hidden skipped); images when `suffixes` is None."""
    found: list[Path] = []
    for current, dirs, files in os.walk(folder):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        for name in sorted(files):
            if name.startswith("."):
                continue
            if (is_image_name(name) if suffixes is None
                    else os.path.splitext(name)[1].lower() in suffixes):
                found.append(Path(current) / name)
    return found


def read_names(path: Path) -> list[str]:
    """Class names, one per line (blank lines and surrounding spaces ignored)."""
    names = [line.strip() for line in path.read_text(encoding="utf-8-sig").splitlines()]
    return [n for n in names if n]


class ImageIndex:
    """Images below a root, found by relative path, file name or stem, nearest one first.

    An annotation's image reference is tried as a path relative to the annotation's folder,
    then relative to the root, then by file name, then by stem (tools often change the
    extension); among several candidates the one sharing the longest folder prefix with the
    annotation wins, and a tie is ambiguous (None).
    """

    def __init__(self, root: Path, paths: list[Path] | None = None) -> None:
        self.root = root
        self.paths = paths if paths is not None else walk_files(root)
        self.by_name: dict[str, list[Path]] = {}
        self.by_stem: dict[str, list[Path]] = {}
        for p in self.paths:
            self.by_name.setdefault(p.name.lower(), []).append(p)
            self.by_stem.setdefault(p.stem.lower(), []).append(p)
        self._set = set(self.paths)

    @staticmethod
    def _nearest(candidates: list[Path], near: Path) -> Path | None:
        if len(candidates) == 1:
            return candidates[0]

        def shared(p: Path) -> int:
            return len(os.path.commonpath([str(p.parent), str(near)]))

        ranked = sorted(candidates, key=shared, reverse=True)
        return ranked[0] if shared(ranked[0]) > shared(ranked[1]) else None

    def find(self, reference: str, near: Path, stem: str | None = None) -> Path | None:
        """The image `reference` (a file name or relative path) names, looked up from `near`."""
        reference = reference.strip().replace("\\", "/")
        if reference:
            for base in (near, self.root):
                candidate = abspath(base / reference)
                if candidate in self._set:
                    return candidate
            name = reference.rsplit("/", 1)[-1].lower()
            if name in self.by_name:
                return self._nearest(self.by_name[name], near)
            if os.path.splitext(name)[0] in self.by_stem:
                return self._nearest(self.by_stem[os.path.splitext(name)[0]], near)
        if stem is not None and stem.lower() in self.by_stem:
            return self._nearest(self.by_stem[stem.lower()], near)
        return None
