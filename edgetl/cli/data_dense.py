"""Terminal rendering of the detection/instance inspection report (`edgetl data inspect --task`).

Kept apart from `data_cmd.py` so the classification rendering there stays as it was; the
shared pieces (paths relative to the data root, duplicate tables) come from `data_tables.py`.
"""

from __future__ import annotations

import os

from rich.table import Table

from edgetl.cli.common import console, err_console
from edgetl.cli.data_tables import (
    cluster_table,
    path_table,
    print_duplicates,
    print_sizes,
    root_of,
)


def _class_table(report: dict) -> Table:
    what = report["objects"]
    table = Table(title="Classes", title_justify="left")
    for column in ("class", "images", what, "crowd"):
        table.add_column(column, justify="left" if column == "class" else "right")
    splits = report["splits"] or {}
    for name in splits:
        table.add_column(f"{what} in {name}", justify="right")
    for label, row in report["classes"].items():
        per = [str(splits[s]["objects"].get(label, 0)) for s in splits]
        table.add_row(label, str(row["images"]), str(row["objects"]), str(row["crowd"]), *per)
    total_per = [str(sum(splits[s]["objects"].values())) for s in splits]
    table.add_row("[bold]total[/]", f"[bold]{report['n_images']}[/] images",
                  f"[bold]{sum(r['objects'] for r in report['classes'].values())}[/]",
                  str(sum(r["crowd"] for r in report["classes"].values())), *total_per)
    return table


def _size_table(title: str, sizes: dict) -> Table:
    table = Table(title=title, title_justify="left")
    table.add_column("COCO size")
    table.add_column("original", justify="right")
    if sizes["input"] is not None:
        table.add_column(f"at input {sizes.get('input_size') or ''}".rstrip(), justify="right")
    for bucket, rule in (("small", "< 32²"), ("medium", "32²-96²"), ("large", ">= 96²")):
        row = [f"{bucket} ({rule})", str(sizes["original"][bucket])]
        if sizes["input"] is not None:
            row.append(str(sizes["input"][bucket]))
        table.add_row(*row)
    return table


def print_dense_inspect(report: dict) -> None:
    """Print a detection/instance report; warnings go to stderr."""
    what = report["objects"]
    paths = [e["path"] for e in report["unreadable"] + report["invalid_boxes"]]
    for key in ("exact_duplicates", "near_duplicates"):
        paths += [p for entry in report[key] for p in entry["paths"]]
    origin = report["origin"].split(":", 1)[-1]
    root = origin if os.path.isdir(origin) else os.path.dirname(origin) or root_of(paths)
    console.print(f"[bold]{report['name']}[/]: {report['description']}", soft_wrap=True)
    n = len(report["classes"])
    console.print(f"{report['n_images']} readable images, {report['n_objects']} {what}, "
                  f"{n} class{'es' if n != 1 else ''} ({report['task']})")
    console.print(_class_table(report))
    per = report["objects_per_image"]
    if "max" in per:
        hist = ", ".join(f"{k}: {n}" for k, n in per["histogram"].items() if n)
        console.print(f"{what} per image: min {per['min']:g}, median {per['median']:g}, mean "
                      f"{per['mean']:.2f}, max {per['max']:g} ({hist})", soft_wrap=True)
    console.print(f"images without {what}: {report['images_without_objects']['count']}")
    box = report["box_sizes"]
    if report.get("instance_areas"):
        areas = report["instance_areas"]
        console.print(_size_table("Instance mask areas (pixels)", {**areas, "input_size":
                                                                   box["input_size"]}))
        forms = ", ".join(f"{k} {n}" for k, n in areas["forms"].items())
        console.print(f"mask forms: {forms or 'none'}")
    console.print(_size_table("Box areas", box))
    if box["width"]:
        console.print(f"box width {box['width']['min']:g}-{box['width']['max']:g} (median "
                      f"{box['width']['median']:g}), height {box['height']['min']:g}-"
                      f"{box['height']['max']:g} (median {box['height']['median']:g}) px")
    print_sizes(report["sizes"])
    console.print("modes: " + ", ".join(f"{m} {n}" for m, n in report["modes"].items()))
    for title, key in (("Invalid boxes (clipped or dropped)", "invalid_boxes"),
                       ("Degenerate polygons (clipped or dropped)", "degenerate_polygons"),
                       ("Masks whose size differs from their image", "mask_size_mismatches"),
                       ("Overlapping instance masks", "mask_overlaps"),
                       ("Unreadable files", "unreadable"),
                       ("Other problems (not used)", "problems")):
        entries = report.get(key) or []
        if key == "problems":
            shown = {(e["path"], e["reason"]) for k in ("degenerate_polygons",
                     "mask_size_mismatches", "mask_overlaps") for e in report.get(k) or []}
            entries = [e for e in entries if (e["path"], e["reason"]) not in shown]
        if entries:
            console.print(path_table(title, entries, root, more=True))
    print_duplicates(report, root)
    if report["cross_split_duplicates"]:
        console.print(cluster_table("Across splits", report["cross_split_duplicates"], root,
                                     True))
    for note in report["notes"]:
        console.print(f"- {note}", soft_wrap=True, highlight=False)
    for line in report["warnings"]:
        err_console.print(f"warning: {line}", markup=False, highlight=False, soft_wrap=True)
