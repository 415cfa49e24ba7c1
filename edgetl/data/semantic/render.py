"""Rich rendering of `inspect_semantic`'s report, for the CLI (`--task semantic`) to print.

Kept beside the report it renders (one module per task) so the CLI stays a thin wrapper; only
the CLI imports it. Lists show the first `SHOW` rows; `--json` has them all.
"""

from __future__ import annotations

import os
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.table import Table

SHOW = 10
_LISTS = (("missing_masks", "Images without a mask"), ("orphan_masks", "Masks without an image"),
          ("size_mismatch", "Masks of another size than their image"),
          ("values_outside", "Masks with values outside the class list"),
          ("palette_unknown", "Masks with colours not in the class map"),
          ("unreadable", "Unreadable files"), ("other_problems", "Other unusable files"))


def _short(path: str, root: str) -> str:
    rel = os.path.relpath(path, root) if root else path
    return path if rel.startswith("..") else rel


def class_table(report: dict[str, Any]) -> Table:
    """Per class: pixel share and images, overall and per split."""
    blocks = report["pixels"]
    names = list(blocks)
    table = Table(title="Classes (share of labelled pixels / images holding the class)",
                  title_justify="left")
    table.add_column("#", justify="right")
    table.add_column("class")
    for name in names:
        table.add_column(f"{name} ({blocks[name]['images']})", justify="right")
    for index, cls in enumerate(report["classes"]):
        cells = [f"{100 * blocks[n]['classes'][cls]['share']:5.2f}% / "
                 f"{blocks[n]['classes'][cls]['images']}" for n in names]
        table.add_row(str(index), escape(cls), *cells)
    table.add_row("", f"[dim]ignored ({report['ignore_index']})[/]",
                  *[f"[dim]{100 * blocks[n]['ignored_share']:.2f}% of all[/]" for n in names])
    return table


def problem_table(title: str, entries: list[dict[str, Any]], root: str) -> Table:
    table = Table(title=f"{title} ({len(entries)})", title_justify="left")
    table.add_column("file")
    table.add_column("why")
    for entry in entries[:SHOW]:
        table.add_row(escape(_short(entry["path"], root)), escape(entry["detail"]))
    if len(entries) > SHOW:
        table.caption = f"... and {len(entries) - SHOW} more (all in --json)"
    return table


def print_semantic_report(report: dict[str, Any], console: Console | None = None,
                          err_console: Console | None = None) -> None:
    """Print the report: header, class table, problems, duplicates, groups, warnings."""
    console = console or Console()
    err_console = err_console or Console(stderr=True)
    root = report["origin"] if os.path.isdir(report["origin"]) else os.path.dirname(
        report["origin"])
    record = report["record"]
    console.print(f"[bold]{escape(report['name'])}[/]: {escape(report['description'])}",
                  soft_wrap=True)
    console.print(f"{report['n_images']} usable images of {report['n_files']} files; "
                  f"{len(report['classes'])} classes, {record['encoding']} masks, ignore index "
                  f"{report['ignore_index']}"
                  + (f" (void: {', '.join(record['void'])})" if record["void"] else ""))
    console.print(class_table(report))
    sizes = report["sizes"]
    console.print("sizes (WxH): " + ", ".join(f"{s['width']}x{s['height']} ({s['count']})"
                                              for s in sizes["most_common"][:5])
                  + (f"; {sizes['distinct']} distinct" if sizes["distinct"] > 5 else ""))
    for key, title in _LISTS:
        if report[key]:
            console.print(problem_table(title, report[key], root))
    console.print(f"exact duplicate groups: {len(report['exact_duplicates'])}; near-duplicate "
                  f"clusters: {len(report['near_duplicates'])} "
                  f"({sum(len(c['paths']) for c in report['near_duplicates'])} images; phash "
                  f"distance <= {report['near_dup_threshold']}); across the given splits: "
                  f"{len(report['cross_split_duplicates'] or [])}")
    groups = report["groups"]
    if groups["n_groups"]:
        table = Table(title=f"Groups ({groups['n_groups']}; across splits: "
                      f"{len(groups['across_splits'])})", title_justify="left")
        table.add_column("group")
        table.add_column("images per split")
        crossing = {g["group"] for g in groups["across_splits"]}
        shown = sorted(groups["groups"].items(), key=lambda kv: kv[0] not in crossing)
        for group, per in shown[:SHOW]:
            mark = " [red](crosses)[/]" if group in crossing else ""
            table.add_row(escape(group) + mark, ", ".join(f"{k} {v}" for k, v in per.items()))
        console.print(table)
    for line in report["notes"]:
        console.print(f"- {line}", soft_wrap=True, highlight=False)
    for line in report["warnings"]:
        err_console.print(f"warning: {line}", markup=False, highlight=False, soft_wrap=True)
