"""The split a run trained on, as a CSV plus a sidecar that says how to read its masks.

`split.csv`: `path,mask,group,split`, one row per image, absolute paths (relative paths in a
hand-written file resolve against the CSV's folder), the same shape as the classification
manifest plus the mask column. `split.csv.json` (the sidecar, beside it): the `MaskRecord`
(classes, encoding, ignore index, every raw value/colour -> index including the void remap),
where the data came from, and the sha256 of the CSV's text so a sidecar never pairs with another
CSV. Reading both back with `load_semantic` gives the same samples, classes and record, so
training, evaluation and predict decode masks the same way. For masks rasterised from COCO the
sidecar names the JSON, and missing cached masks are painted again on read.

Why a sidecar instead of more columns: the pixel map is per data set, not per row (CamVid's
void remap, a 30-colour palette), and one JSON is easier to embed in a task record verbatim.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from edgetl.data.csvrows import csv_rows
from edgetl.data.samples import SPLITS
from edgetl.data.semantic.coco import load_coco_masks
from edgetl.data.semantic.dataset import SEMANTIC_TASK, Row, SemanticDataSet
from edgetl.data.semantic.problems import Problem
from edgetl.data.semantic.record import MaskRecord
from edgetl.errors import DataError
from edgetl.io import atomic_write_json, atomic_write_text

SPLIT_COLUMNS = ("path", "mask", "group", "split")
SIDECAR_SCHEMA = "edgetl.semantic-split/1"


def sidecar_path(csv_path: str | Path) -> Path:
    """`split.csv` -> `split.csv.json`."""
    csv_path = Path(csv_path)
    return csv_path.with_name(csv_path.name + ".json")


def split_file_text(ds: SemanticDataSet) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(SPLIT_COLUMNS)
    for s in ds.samples:
        if s.target is None or s.target.kind != "mask":
            raise DataError(f"{s.path} has no mask target: only semantic data sets have a "
                            "semantic split file")
        writer.writerow([s.path, s.target.mask_path, s.group or "", s.split or ""])
    return buffer.getvalue()


def write_split_file(ds: SemanticDataSet, path: str | Path) -> Path:
    """Write `ds` as `path` plus its sidecar (both atomic; sidecar first, CSV last)."""
    record = getattr(ds, "record", None)
    if record is None:
        raise DataError(f"{ds.origin}: no mask record; open the data with load_semantic")
    text = split_file_text(ds)
    path = Path(os.path.abspath(os.path.expanduser(str(path))))
    sidecar: dict[str, Any] = {
        "schema": SIDECAR_SCHEMA,
        "task": SEMANTIC_TASK,
        "name": ds.name,
        "origin": ds.origin,
        "n_rows": len(ds.samples),
        "csv_sha256": hashlib.sha256(text.encode("utf-8")).hexdigest(),
        "record": record.to_dict(),
    }
    coco = getattr(ds, "rasterised_from", None)
    if coco:
        sidecar["coco"] = {"json": coco, "ignore_index": record.ignore_index,
                           "cache_root": _cache_root(ds)}
    atomic_write_json(sidecar_path(path), sidecar)
    return atomic_write_text(path, text)


def _cache_root(ds: SemanticDataSet) -> str | None:
    """`<root>` of COCO masks cached as `<root>/semantic-masks/<key>/<id>.png`."""
    for s in ds.samples:
        if s.target is not None and s.target.kind == "mask":
            return str(Path(s.target.mask_path).parent.parent.parent)
    return None


@dataclass
class SplitFile:
    """Rows of a split file, its record (None without a sidecar) and rows it could not use."""

    path: str
    rows: list[Row] = field(default_factory=list)
    record: MaskRecord | None = None
    problems: list[Problem] = field(default_factory=list)
    name: str | None = None
    sidecar: str | None = None
    coco: str | None = None


def _read_csv(path: Path) -> tuple[str, list[str], list[dict[str, str]]]:
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise DataError(f"cannot read split file {path}: {exc}") from exc
    header, rows = csv_rows(text, f"split file {path}")
    missing = [c for c in ("path", "mask") if c not in header]
    if missing:
        raise DataError(f"split file {path} lacks column(s) {missing}; header is {header}",
                        hint="the first line must be path,mask[,group][,split]")
    return text, header, rows


def _read_sidecar(csv_path: Path, text: str) -> dict[str, Any] | None:
    side = sidecar_path(csv_path)
    if not side.is_file():
        return None
    try:
        meta = json.loads(side.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise DataError(f"cannot read split sidecar {side}: {exc}") from exc
    if not isinstance(meta, dict) or meta.get("schema") != SIDECAR_SCHEMA:
        raise DataError(f"{side} is not a semantic split sidecar ({SIDECAR_SCHEMA})")
    if meta.get("csv_sha256") != hashlib.sha256(text.encode("utf-8")).hexdigest():
        raise DataError(f"{side} was written for another version of {csv_path.name}",
                        hint="write both again with write_split_file, or delete the sidecar")
    return meta


def read_split_file(path: str | Path, *, cache_dir: str | Path | None = None) -> SplitFile:
    """Rows (paths resolved), record and origin of a split file; files are not opened here."""
    path = Path(os.path.abspath(os.path.expanduser(str(path))))
    text, _, rows = _read_csv(path)
    meta = _read_sidecar(path, text)
    out = SplitFile(path=str(path))
    if meta is not None:
        out.record = MaskRecord.from_dict(meta["record"])
        out.name, out.sidecar = meta.get("name"), str(sidecar_path(path))
    seen: set[str] = set()
    for line, row in enumerate(rows, start=2):
        image, mask = (row.get("path") or "").strip(), (row.get("mask") or "").strip()
        if not image or not mask:
            raise DataError(f"split file {path} line {line}: empty path or mask")
        split = (row.get("split") or "").strip().lower() or None
        if split is not None and split not in SPLITS:
            raise DataError(f"split file {path} line {line}: split {split!r} is not one of "
                            f"{', '.join(SPLITS)} (or empty)")
        image = os.path.normpath(os.path.join(path.parent, os.path.expanduser(image)))
        mask = os.path.normpath(os.path.join(path.parent, os.path.expanduser(mask)))
        if image in seen:
            out.problems.append(Problem("ambiguous", image, f"listed twice in {path.name} "
                                        f"(line {line} skipped)", mask=mask))
            continue
        seen.add(image)
        out.rows.append(Row(image, mask, (row.get("group") or "").strip() or None, split))
    if not out.rows:
        raise DataError(f"split file {path} has no rows")
    coco = (meta or {}).get("coco")
    if coco:
        out.coco = coco["json"]
        if any(not os.path.isfile(r.mask) for r in out.rows) and os.path.isfile(coco["json"]):
            load_coco_masks(coco["json"], ignore_index=coco["ignore_index"],
                            cache_dir=cache_dir or coco.get("cache_root"))
    return out
