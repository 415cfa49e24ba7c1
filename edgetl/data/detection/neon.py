"""The built-in `neon-trees` detection set: NEON aerial images from the deepforest wheel, tiled.

deepforest 2.1.0 (MIT) ships four annotated RGB orthophoto crops from the US National
Ecological Observatory Network (Pascal VOC XML, about 950 tree-crown boxes; one image labels
its trees Alive/Dead: both are read as `tree`). They are far larger than a detector's input, so
each is cut into tiles of the recipe's input size on a fixed grid (the last row and column
shifted inward so every tile is full size; overlapping tiles share their group). A box cut by a
tile border stays when at least half of its area is inside the tile, clipped to it, and is
dropped otherwise (counted in the notes). Every tile's group is its source image, so no image
is split across train/val/test.

Tiles and their box CSV are written once per tile size to `$EDGETL_CACHE_DIR/neon-trees/<tile>/`
(default `~/.cache/edgetl/neon-trees/<tile>/`): built in a temporary folder and renamed into
place, rebuilt when the wheel's annotations or this module's rule change. The package is found
without importing it (deepforest imports torch and more).
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import shutil
import tempfile
from dataclasses import dataclass, replace
from pathlib import Path

from PIL import Image

from edgetl.data.detection import problems as P
from edgetl.data.detection.boxcsv import read_box_csv, write_box_csv
from edgetl.data.detection.geometry import Box, box_area
from edgetl.data.detection.voc import parse_voc_xml
from edgetl.data.detection.which import has_masks, reads_objects, task_for
from edgetl.data.samples import DataSet, Sample, stratum_key
from edgetl.data.targets import BoxTarget
from edgetl.errors import DataError

NEON_NAME = "neon-trees"
DEFAULT_TILE = 400
MIN_VISIBLE = 0.5
CLASS_NAME = "tree"
INSTALL_HINT = "pip install --no-deps deepforest==2.1.0"
_RULE = "grid-shift-inward/min-visible-0.5/v2"  # change when the tiling rule changes


def deepforest_data() -> Path:
    """deepforest's data folder (found with find_spec: the package is not imported)."""
    try:
        spec = importlib.util.find_spec("deepforest")
    except (ImportError, ValueError):
        spec = None
    if spec is None or not spec.submodule_search_locations:
        raise DataError("the neon-trees data set needs the deepforest wheel, which is not "
                        f"installed: {INSTALL_HINT}")
    for root in spec.submodule_search_locations:
        folder = Path(root) / "data"
        if sorted(folder.glob("*.xml")):
            return folder
    raise DataError("the installed deepforest package has no annotated images in its data/ "
                    "folder", hint=f"reinstall it: {INSTALL_HINT}")


def parse_name(name: str) -> int:
    """Tile size of `neon-trees` (default) or `neon-trees:<tile>`."""
    _, _, tail = name.strip().lower().partition(":")
    if not tail:
        return DEFAULT_TILE
    if not tail.isdigit() or not 32 <= int(tail) <= 4096:
        raise DataError(f"{name!r}: the tile size after 'neon-trees:' must be a whole number "
                        "of pixels from 32 to 4096, e.g. neon-trees:512")
    return int(tail)


def tile_origins(length: int, tile: int) -> list[int]:
    """Tile starts along one axis: a grid of `tile`, the last one shifted inward to fit."""
    if length <= tile:
        return [0]
    starts = list(range(0, length - tile + 1, tile))
    if starts[-1] + tile < length:
        starts.append(length - tile)
    return starts


def clip_to_tile(box: Box, x0: int, y0: int, width: int, height: int) -> Box | None:
    """The box in tile coordinates when at least MIN_VISIBLE of its area is inside, else None."""
    inside = (max(box[0], x0), max(box[1], y0), min(box[2], x0 + width), min(box[3], y0 + height))
    if inside[2] <= inside[0] or inside[3] <= inside[1]:
        return None
    if box_area(inside) < MIN_VISIBLE * box_area(box):
        return None
    return inside[0] - x0, inside[1] - y0, inside[2] - x0, inside[3] - y0


@dataclass(frozen=True)
class _Source:
    xml: Path
    image: Path


def _sources(folder: Path) -> list[_Source]:
    found = []
    for xml in sorted(folder.glob("*.xml")):
        ann = parse_voc_xml(xml)
        image = folder / ann.filename
        if image.is_file():
            found.append(_Source(xml, image))
    if not found:
        raise DataError(f"no XML in {folder} names an image there", hint=f"reinstall: "
                        f"{INSTALL_HINT}")
    return found


def _fingerprint(sources: list[_Source], tile: int) -> str:
    digest = hashlib.sha256(f"{_RULE}/{tile}".encode())
    for s in sources:
        digest.update(s.xml.name.encode() + s.xml.read_bytes() + s.image.name.encode())
    return digest.hexdigest()


def cache_root() -> Path:
    base = os.environ.get("EDGETL_CACHE_DIR")
    return Path(base).expanduser() if base else Path.home() / ".cache" / "edgetl"


def _tile_source(source: _Source, tile: int, out: Path) -> tuple[list[Sample], dict[str, int]]:
    """Tiles of one image written under `out`: samples (relative paths) and box counts."""
    ann = parse_voc_xml(source.xml)
    boxes = [(o.box, o.difficult) for o in ann.objects]
    samples, kept, dropped = [], 0, 0
    with Image.open(source.image) as img:
        rgb = img.convert("RGB")
    width, height = rgb.size
    seen: set[int] = set()
    for y0 in tile_origins(height, tile):
        for x0 in tile_origins(width, tile):
            w, h = min(tile, width), min(tile, height)
            name = f"tiles/{source.image.stem}_x{x0}_y{y0}.png"
            rgb.crop((x0, y0, x0 + w, y0 + h)).save(out / name)
            inside, crowd = [], []
            for k, (box, difficult) in enumerate(boxes):
                clipped = clip_to_tile(box, x0, y0, w, h)
                touches = box[0] < x0 + w and box[2] > x0 and box[1] < y0 + h and box[3] > y0
                if clipped is not None:
                    inside.append(clipped)
                    crowd.append(difficult)
                    seen.add(k)
                elif touches:
                    dropped += 1
            target = BoxTarget(boxes=tuple(inside), labels=(CLASS_NAME,) * len(inside),
                               crowd=tuple(crowd), image_size=(h, w))
            kept += len(inside)
            samples.append(Sample(path=name, label=stratum_key(target.classes()),
                                  group=source.image.stem, target=target))
    counts = {"boxes": len(boxes), "tile_boxes": kept, "pieces_dropped": dropped,
              "boxes_in_no_tile": len(boxes) - len(seen)}
    return samples, counts


def _build(folder: Path, sources: list[_Source], tile: int, fingerprint: str) -> None:
    """Write tiles, annotations.csv and source.json into `folder`, atomically as a whole."""
    folder.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f".{folder.name}.", dir=folder.parent))
    try:
        (work / "tiles").mkdir()
        samples: list[Sample] = []
        stats: dict = {"tiles": {}, "boxes": 0, "tile_boxes": 0, "pieces_dropped": 0,
                       "boxes_in_no_tile": 0}
        for source in sources:
            made, counts = _tile_source(source, tile, work)
            samples += made
            stats["tiles"][source.image.name] = len(made)
            for key, value in counts.items():
                stats[key] += value
        ds = DataSet(name=NEON_NAME, classes=[CLASS_NAME], samples=samples, origin=NEON_NAME,
                     task=task_for(masks=False))
        write_box_csv(ds, work / "annotations.csv")
        (work / "source.json").write_text(json.dumps(
            {"fingerprint": fingerprint, "tile": tile, "min_visible": MIN_VISIBLE, **stats},
            indent=2) + "\n")
        stale = None
        if folder.exists():
            stale = folder.with_name(f".{folder.name}.stale-{os.getpid()}")
            os.replace(folder, stale)
        try:
            os.replace(work, folder)
        except OSError:
            if not (folder / "source.json").is_file():  # another process did not win: give up
                raise
        if stale is not None:
            shutil.rmtree(stale, ignore_errors=True)
    finally:
        if work.exists():
            shutil.rmtree(work, ignore_errors=True)


def _cached(folder: Path, fingerprint: str) -> dict | None:
    try:
        info = json.loads((folder / "source.json").read_text())
    except (OSError, ValueError):
        return None
    return info if info.get("fingerprint") == fingerprint else None


def load_neon(name: str, task: str) -> DataSet:
    """`neon-trees[:<tile>]`: tiles (built on first use) with boxes, grouped by source image."""
    if not reads_objects(task) or has_masks(task):
        raise DataError(f"{NEON_NAME} has boxes only; use it with --task {task_for(masks=False)}")
    tile = parse_name(name)
    sources = _sources(deepforest_data())
    fingerprint = _fingerprint(sources, tile)
    folder = cache_root() / NEON_NAME / str(tile)
    info = _cached(folder, fingerprint)
    if info is None:
        _build(folder, sources, tile, fingerprint)
        info = _cached(folder, fingerprint)
        if info is None:
            raise DataError(f"could not build the {NEON_NAME} tiles in {folder}",
                            hint="check that EDGETL_CACHE_DIR is writable")
    ds = read_box_csv(folder / "annotations.csv", task, P.Problems())
    origin = f"{NEON_NAME}:{tile}"
    notes = [f"{len(sources)} NEON images cut into {len(ds.samples)} tiles of at most "
             f"{tile}x{tile} px (cached in {folder}); each tile's group is its source image",
             f"{info['boxes']} source boxes became {info['tile_boxes']} tile boxes (clipped to "
             f"their tile; overlapping edge tiles repeat some); {info['pieces_dropped']} "
             f"piece(s) with less than {MIN_VISIBLE:.0%} of a box inside a tile dropped, "
             f"{info['boxes_in_no_tile']} box(es) in no tile at all",
             "SOAP_061's Alive/Dead labels are read as 'tree' (one class)"]
    return replace(ds, name=NEON_NAME, origin=origin, notes=notes,
                   description="NEON aerial RGB tiles with tree-crown boxes from the deepforest "
                               "2.1.0 wheel (MIT)")
