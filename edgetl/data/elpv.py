"""The ELPV solar-cell data set from the installed `elpv_dataset` package (offline demo data).

2,624 grayscale 300x300 electroluminescence images, each with a defect probability in
{0, 1/3, 2/3, 1} (data CC BY-NC-SA 4.0, Deitsch et al.). Two built-in views:
- `elpv`: 'functional' (probability < 0.5) and 'defective', in that order (1,803 / 821).
- `elpv:4class`: 'p0', 'p33', 'p67', 'p100' (1,508 / 295 / 106 / 715).

Both carry the usual protocol split, stratified 75/25 (1,968 train / 656 test). The split is
drawn once, stratified on the 4-class label, so the two views share the very same test images;
because each 2-class label is a union of 4-class labels it is also stratified on 2 classes
(functional 451 / defective 205 in test). Within each class the images are ranked by
sha256("elpv-split/seed0/<file name>") and the first ones, per a largest-remainder share of 656,
go to test: a rule that needs no random generator, so it cannot change with numpy or sklearn.
The cell type (mono/poly) is not a group; ELPV samples have no group.
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
from pathlib import Path

from edgetl.data.samples import DataSet, Sample
from edgetl.errors import DataError

ELPV_NAMES = ("elpv", "elpv:4class")
N_TEST = 656
SPLIT_SEED = 0
_INSTALL_HINT = "pip install 'edgetl[demo]'"
_FOUR_CLASS = ("p0", "p33", "p67", "p100")  # probability 0, 1/3, 2/3, 1
_TWO_CLASS = ("functional", "defective")


def elpv_data_dir() -> Path:
    """The package's data folder, found without importing the package (it imports numpy)."""
    spec = importlib.util.find_spec("elpv_dataset")
    if spec is None or not spec.submodule_search_locations:
        raise DataError("the ELPV data set is not installed", hint=_INSTALL_HINT)
    folder = Path(next(iter(spec.submodule_search_locations))) / "data"
    if not (folder / "labels.csv").is_file() or not (folder / "images").is_dir():
        raise DataError(f"the elpv_dataset package at {folder.parent} lacks data/labels.csv "
                        "or data/images/", hint=f"reinstall it: {_INSTALL_HINT}")
    return folder


def _four_class(probability: float) -> str:
    index = round(probability * 3)
    if not 0 <= index <= 3 or abs(probability * 3 - index) > 1e-6:
        raise DataError(f"ELPV defect probability {probability} is not 0, 1/3, 2/3 or 1")
    return _FOUR_CLASS[index]


def read_labels(folder: Path) -> list[tuple[str, str]]:
    """(absolute image path, 4-class label) per line of labels.csv (whitespace separated)."""
    rows: list[tuple[str, str]] = []
    for number, line in enumerate((folder / "labels.csv").read_text().splitlines(), start=1):
        parts = line.split()
        if not parts:
            continue
        try:
            rel, probability = parts[0], float(parts[1])
        except (IndexError, ValueError) as exc:
            raise DataError(f"{folder / 'labels.csv'} line {number} is malformed: {line!r}",
                            hint=f"reinstall: {_INSTALL_HINT}") from exc
        rows.append((os.path.normpath(folder / rel), _four_class(probability)))
    return rows


def _largest_remainder(sizes: dict[str, int], total: int) -> dict[str, int]:
    """Integer shares of `total` proportional to `sizes` (ties: larger remainder, then name)."""
    whole = sum(sizes.values())
    quotas = {k: total * v / whole for k, v in sizes.items()}
    shares = {k: int(q) for k, q in quotas.items()}
    order = sorted(quotas, key=lambda k: (-(quotas[k] - shares[k]), k))
    for key in order[: total - sum(shares.values())]:
        shares[key] += 1
    return shares


def protocol_test_paths(rows: list[tuple[str, str]], n_test: int = N_TEST) -> set[str]:
    """The fixed test set: per 4-class label, the first files by seeded sha256 rank."""
    by_class: dict[str, list[str]] = {}
    for path, label in rows:
        by_class.setdefault(label, []).append(path)
    shares = _largest_remainder({k: len(v) for k, v in by_class.items()}, n_test)

    def rank(path: str) -> str:
        key = f"elpv-split/seed{SPLIT_SEED}/{os.path.basename(path)}"
        return hashlib.sha256(key.encode()).hexdigest()

    test: set[str] = set()
    for label, paths in by_class.items():
        test.update(sorted(paths, key=rank)[: shares[label]])
    return test


def load_elpv(name: str) -> DataSet:
    """`elpv` or `elpv:4class` with the protocol split in `Sample.split`."""
    if name not in ELPV_NAMES:
        raise DataError(f"unknown built-in data set {name!r}; built-in names: "
                        f"{', '.join(ELPV_NAMES)}")
    folder = elpv_data_dir()
    rows = read_labels(folder)
    missing = [p for p, _ in rows if not os.path.isfile(p)]
    if missing:
        raise DataError(f"{len(missing)} ELPV image(s) listed in labels.csv are missing, "
                        f"e.g. {missing[0]}", hint=f"reinstall: {_INSTALL_HINT}")
    test = protocol_test_paths(rows)
    four = name == "elpv:4class"

    def label_of(four_label: str) -> str:
        if four:
            return four_label
        return _TWO_CLASS[0] if four_label in ("p0", "p33") else _TWO_CLASS[1]

    samples = [
        Sample(path=path, label=label_of(lab), group=None,
               split="test" if path in test else "train")
        for path, lab in rows
    ]
    classes = list(_FOUR_CLASS if four else _TWO_CLASS)
    what = ("4 classes by defect probability 0, 1/3, 2/3, 1" if four
            else "functional (defect probability < 0.5) vs defective")
    return DataSet(
        name=name,
        classes=classes,
        samples=samples,
        origin=name,
        description=f"ELPV solar cells (elpv_dataset package, CC BY-NC-SA 4.0): {what}; "
                    f"protocol split {len(samples) - len(test)} train / {len(test)} test",
        notes=["ELPV protocol split: stratified 75/25 on the 4-class label (same test images "
               "for elpv and elpv:4class)"],
    )
