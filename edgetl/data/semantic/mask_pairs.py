"""Find image/mask pairs in a folder: the layouts semantic data sets are shipped in.

Layouts (folder names exact, lower-case):
- `ROOT/images/` + `ROOT/masks/` (or `labels/`, `annotations/`): no splits given;
- the same with split subfolders inside both, `images/train/` + `masks/train/` ...;
- `ROOT/train/`, `val/` (or `valid/`), `test/`, each holding `images/` + a mask folder
  (CamVid: `train/images` + `train/labels`).
Split names follow the classification folder rule (`folder.py`): with `train/` and `val/` but
no `test/`, `val/` is used as the test split and validation is carved from train later.

Pairs match on the path below the two folders without extension (`a/b.jpg` <-> `a/b.png`). A
mask may also carry one of `MASK_SUFFIXES` (`b_mask.png`) when no mask has the exact stem.
Mask files are lossless images (`MASK_EXTENSIONS`); a JPEG where a mask should be is reported,
not read. Several candidates for one image are reported as ambiguous, not guessed.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from edgetl.data.samples import is_image_name
from edgetl.data.semantic.problems import Problem
from edgetl.errors import DataError

IMAGE_DIRS = ("images",)
MASK_DIRS = ("masks", "labels", "annotations")
SPLIT_DIRS = {"train": "train", "val": "val", "valid": "val", "test": "test"}
MASK_EXTENSIONS = frozenset({".png", ".bmp", ".tif", ".tiff", ".gif", ".webp"})
LOSSY_EXTENSIONS = frozenset({".jpg", ".jpeg"})
MASK_SUFFIXES = ("_mask", "_masks", "_label", "_labels", "_gt", "_seg", "_L", "-mask")
LAYOUTS = ("images/ + masks/ (or labels/, annotations/), optionally under train/ val/ test/")


@dataclass(frozen=True)
class Pair:
    image: str
    mask: str
    split: str | None


@dataclass
class Listing:
    """What a folder holds: pairs, unusable files, and what the reader decided."""

    root: str
    pairs: list[Pair] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def _visible_dirs(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.is_dir() and not p.name.startswith("."))


def _files(folder: Path, keep: frozenset[str] | None) -> dict[str, list[str]]:
    """Relative stem (posix) -> files below `folder` (recursive, hidden skipped, sorted)."""
    found: dict[str, list[str]] = {}
    for current, dirs, files in os.walk(folder):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        for name in sorted(files):
            ext = os.path.splitext(name)[1].lower()
            if name.startswith(".") or (keep is None and not is_image_name(name)) or (
                    keep is not None and ext not in keep):
                continue
            path = os.path.join(current, name)
            stem = os.path.splitext(os.path.relpath(path, folder))[0].replace(os.sep, "/")
            found.setdefault(stem, []).append(path)
    return found


def _mask_dir(folder: Path) -> Path | None:
    """The first mask folder holding mask files; else the first that exists."""
    existing = [folder / name for name in MASK_DIRS if (folder / name).is_dir()]
    for candidate in existing:
        if _files(candidate, MASK_EXTENSIONS):
            return candidate
    return existing[0] if existing else None


def _blocks(root: Path) -> list[tuple[str | None, Path, Path]]:
    """(split folder name or None, image folder, mask folder) for each part of the layout."""
    subdirs = _visible_dirs(root)
    masks = _mask_dir(root)
    if "images" in subdirs and masks is not None:
        images = root / "images"
        inner = _visible_dirs(images)
        loose = [p for p in images.iterdir() if p.is_file() and is_image_name(p.name)]
        if inner and not loose and all(name in SPLIT_DIRS for name in inner):
            return [(name, images / name, masks / name) for name in inner]
        return [(None, images, masks)]
    blocks = []
    for name in (d for d in subdirs if d in SPLIT_DIRS):
        folder = root / name
        mask_dir = _mask_dir(folder)
        if not (folder / "images").is_dir() or mask_dir is None:
            raise DataError(f"split folder {folder} lacks images/ and a mask folder "
                            f"({', '.join(MASK_DIRS)})", hint="layouts: " + LAYOUTS)
        blocks.append((name, folder / "images", mask_dir))
    if not blocks:
        raise DataError(f"{root} holds no image and mask folders", hint="layouts: " + LAYOUTS)
    return blocks


def _split_names(names: list[str], notes: list[str]) -> dict[str, str]:
    """Folder name -> split, with the classification rule for train/ + val/ without test/."""
    canonical = [SPLIT_DIRS[n] for n in names]
    if canonical.count("val") > 1:
        raise DataError("both val/ and valid/ are present: which one is the validation split?",
                        hint="rename or remove one of them")
    mapping = {n: SPLIT_DIRS[n] for n in names}
    if "train" in canonical and "val" in canonical and "test" not in canonical:
        for n in names:
            if mapping[n] == "val":
                mapping[n] = "test"
        notes.append(f"{[n for n in names if SPLIT_DIRS[n] == 'val'][0]}/ is used as the test "
                     "split (no test/ folder); a validation split is carved from train")
    return mapping


def _strip_suffix(stem: str) -> str | None:
    for suffix in MASK_SUFFIXES:
        if stem.endswith(suffix) and len(stem) > len(suffix):
            return stem[: -len(suffix)]
    return None


def _pair_block(split: str | None, images: Path, masks: Path, out: Listing) -> None:
    image_files = _files(images, None)
    mask_files = _files(masks, MASK_EXTENSIONS | LOSSY_EXTENSIONS) if masks.is_dir() else {}
    suffixed: dict[str, list[str]] = {}
    for stem, paths in mask_files.items():
        base = _strip_suffix(stem)
        if base is not None:
            suffixed.setdefault(base, []).extend(paths)
    used: set[str] = set()
    for stem, paths in sorted(image_files.items()):
        candidates = mask_files.get(stem) or suffixed.get(stem) or []
        used.update(candidates)
        if len(paths) > 1 or len(candidates) > 1:
            files = paths if len(paths) > 1 else candidates
            listed = ", ".join(os.path.basename(f) for f in files)
            out.problems.append(Problem("ambiguous", paths[0],
                                        f"several files share the stem {stem!r}: {listed}"))
        elif not candidates:
            out.problems.append(Problem("missing_mask", paths[0],
                                        f"no mask for this image in {masks}"))
        elif os.path.splitext(candidates[0])[1].lower() in LOSSY_EXTENSIONS:
            out.problems.append(Problem("lossy_mask", paths[0], f"mask {candidates[0]} is a JPEG: "
                                        "lossy compression changes class values; save masks as "
                                        "PNG", mask=candidates[0]))
        else:
            out.pairs.append(Pair(paths[0], candidates[0], split))
    for _, paths in sorted(mask_files.items()):
        for path in paths:
            if path not in used:
                out.problems.append(Problem("orphan_mask", path,
                                            f"mask without an image in {images}", mask=path))


def find_pairs(root: str | Path) -> Listing:
    """Every image/mask pair under `root`, plus missing, orphan, ambiguous and JPEG masks."""
    root = Path(os.path.normpath(os.path.abspath(os.path.expanduser(str(root)))))
    listing = Listing(root=str(root))
    blocks = _blocks(root)
    names = [name for name, _, _ in blocks if name is not None]
    mapping = _split_names(names, listing.notes)
    for name, images, masks in blocks:
        _pair_block(mapping[name] if name else None, images, masks, listing)
    return listing
