"""Tables and lines both inspection renderings print (`data_cmd` for classification,
`data_dense` for the dense tasks): their own module so neither imports the other's internals."""

from __future__ import annotations

import os

from rich.table import Table

from edgetl.cli.common import console

SHOW = 10  # rows of each list shown on screen; --json has them all


def short(path: str, root: str) -> str:
    try:
        rel = os.path.relpath(path, root)
    except ValueError:
        return path
    return path if rel.startswith("..") else rel


def root_of(paths: list[str]) -> str:
    if not paths:
        return ""
    return os.path.commonpath(paths) if len(paths) > 1 else os.path.dirname(paths[0])


def cluster_table(title: str, entries: list[dict], root: str, distance: bool) -> Table:
    table = Table(title=title, title_justify="left", show_lines=False)
    table.add_column("#", justify="right")
    table.add_column("images (label / split)")
    if distance:
        table.add_column("max phash distance", justify="right")
    for k, entry in enumerate(entries[:SHOW], start=1):
        members = ", ".join(
            f"{short(p, root)} ({label}{' / ' + split if split else ''})"
            for p, label, split in zip(entry["paths"], entry["labels"], entry["splits"],
                                       strict=True)
        )
        row = [str(k), members] + ([str(entry["max_distance"])] if distance else [])
        table.add_row(*row)
    if len(entries) > SHOW:
        table.caption = f"... and {len(entries) - SHOW} more (all in --json)"
    return table


def print_duplicates(report: dict, root: str, *, thumb_mad: bool = False) -> None:
    """An inspection's duplicates: the count line with the near-duplicate rule (the thumbnail
    bound too with `thumb_mad`), then the exact groups' and the near clusters' tables."""
    rule = f"phash distance <= {report['near_dup_threshold']}"
    if thumb_mad:
        rule += f", thumbnail MAD <= {report['near_dup_max_thumb_mad']}"
    console.print(f"exact duplicate groups: {len(report['exact_duplicates'])}; near-duplicate "
                  f"clusters: {len(report['near_duplicates'])} ({rule})")
    if report["exact_duplicates"]:
        console.print(cluster_table("Exact duplicates", report["exact_duplicates"], root, False))
    if report["near_duplicates"]:
        console.print(cluster_table("Near-duplicates", report["near_duplicates"], root, True))


def print_sizes(sizes: dict) -> None:
    if sizes["width"]:
        w, h = sizes["width"], sizes["height"]
        common = ", ".join(f"{s['width']}x{s['height']} ({s['count']})"
                           for s in sizes["most_common"][:5])
        console.print(f"sizes (WxH): width {w['min']}-{w['max']} (median {w['median']:g}), "
                      f"height {h['min']}-{h['max']} (median {h['median']:g}); "
                      f"{sizes['distinct']} distinct: {common}", soft_wrap=True)


def path_table(title: str, entries: list[dict], root: str, more: bool = False) -> Table:
    """Files (relative to root) and reasons, the first `SHOW` of them (`more`: say how many
    were left out)."""
    table = Table(title=f"{title} ({len(entries)})", title_justify="left")
    table.add_column("file")
    table.add_column("reason")
    for entry in entries[:SHOW]:
        table.add_row(short(entry["path"], root), entry["reason"])
    if more and len(entries) > SHOW:
        table.caption = f"... and {len(entries) - SHOW} more (all in --json)"
    return table
