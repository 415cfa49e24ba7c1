"""Class-name files of semantic data sets: `classes.txt` and `class_dict.csv`, and void names.

`classes.txt`: one class per line in index order; blank lines and `#` comments are skipped. A
line may start with its pixel value (`11 void (ignore)`, CamVid's format); then every line must.
`class_dict.csv`: a header and `name,r,g,b` rows (extra columns ignored), row order = index.

A class is **void** (never trained on, never scored) when its line ends with `(ignore)` or its
name is one of `VOID_NAMES`. Void classes are not output classes: their pixels become the ignore
index (see `record.py`).
"""

from __future__ import annotations

import csv
import io
import re
from dataclasses import dataclass
from pathlib import Path

from edgetl.errors import DataError

VOID_NAMES = frozenset({"void", "ignore", "ignored", "unlabeled", "unlabelled"})
CLASSES_FILE = "classes.txt"
CLASS_DICT_FILE = "class_dict.csv"
_IGNORE_MARK = re.compile(r"\s*\(ignored?\)\s*$", re.IGNORECASE)
_NUMBERED = re.compile(r"^(\d+)\s+(\S.*)$")


@dataclass(frozen=True)
class ClassEntry:
    """One listed class: its pixel value (or colour), its name, and whether it is void."""

    value: int
    name: str
    void: bool = False
    colour: tuple[int, int, int] | None = None


def parse_name(text: str) -> tuple[str, bool]:
    """(name, void) from a listed name: `void (ignore)` -> ('void', True)."""
    marked = bool(_IGNORE_MARK.search(text))
    name = _IGNORE_MARK.sub("", text).strip()
    return name, marked or name.lower() in VOID_NAMES


def entries_from_names(names: list[str] | tuple[str, ...], where: str) -> list[ClassEntry]:
    """Entries for names in index order (the recipe's `classes`, an unnumbered classes.txt)."""
    entries = []
    for value, text in enumerate(names):
        name, void = parse_name(str(text))
        if not name:
            raise DataError(f"{where}: class {value} has an empty name")
        entries.append(ClassEntry(value, name, void))
    return _check_unique(entries, where)


def read_classes_txt(path: str | Path) -> list[ClassEntry]:
    """Entries of a classes.txt (numbered or not; see the module docstring)."""
    path = Path(path)
    try:
        lines = path.read_text(encoding="utf-8-sig").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise DataError(f"cannot read class names {path}: {exc}") from exc
    rows = [line.strip() for line in lines]
    rows = [r for r in rows if r and not r.startswith("#")]
    if not rows:
        raise DataError(f"class names file {path} lists no classes",
                        hint="one class name per line, in index order")
    numbered = [_NUMBERED.match(r) for r in rows]
    if not any(numbered):
        return entries_from_names(rows, str(path))
    if not all(numbered):
        bad = rows[numbered.index(None)]
        raise DataError(f"{path}: line {bad!r} has no pixel value while others do",
                        hint="number every line ('3 road') or none")
    entries = []
    for match in numbered:
        assert match is not None
        name, void = parse_name(match.group(2))
        entries.append(ClassEntry(int(match.group(1)), name, void))
    return _check_unique(entries, str(path))


def read_class_dict(path: str | Path) -> list[ClassEntry]:
    """Entries of a `name,r,g,b` class map; the value is the row's position."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise DataError(f"cannot read class map {path}: {exc}") from exc
    rows = [r for r in csv.reader(io.StringIO(text)) if any(c.strip() for c in r)]
    if rows and not _is_colour_row(rows[0]):
        rows = rows[1:]  # header
    entries = []
    for line, row in enumerate(rows, start=2):
        if not _is_colour_row(row):
            raise DataError(f"{path} line {line}: {','.join(row)!r} is not name,r,g,b",
                            hint="colours are integers 0-255")
        name, void = parse_name(row[0])
        colour = (int(row[1]), int(row[2]), int(row[3]))
        entries.append(ClassEntry(len(entries), name, void, colour))
    if not entries:
        raise DataError(f"class map {path} lists no classes", hint="rows of name,r,g,b")
    entries = _check_unique(entries, str(path))
    seen: dict[tuple[int, int, int], str] = {}
    for e in entries:
        assert e.colour is not None
        if e.colour in seen:
            raise DataError(f"{path}: colour {e.colour} is given to {seen[e.colour]!r} and "
                            f"{e.name!r}", hint="one colour per class")
        seen[e.colour] = e.name
    return entries


def _is_colour_row(row: list[str]) -> bool:
    if len(row) < 4 or not row[0].strip():
        return False
    try:
        return all(0 <= int(c) <= 255 for c in row[1:4])
    except ValueError:
        return False


def _check_unique(entries: list[ClassEntry], where: str) -> list[ClassEntry]:
    names: set[str] = set()
    values: set[int] = set()
    for e in entries:
        if e.name in names:
            raise DataError(f"{where}: class name {e.name!r} is listed twice")
        if e.value in values:
            raise DataError(f"{where}: pixel value {e.value} is listed twice")
        names.add(e.name)
        values.add(e.value)
    return entries
