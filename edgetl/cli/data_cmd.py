"""`edgetl data inspect` and `edgetl data split`: thin wrappers that print library reports.

Library modules are imported inside the commands so `edgetl --help` imports no PIL or numpy.
Data warnings (`DataWarning`) are printed to stderr as `warning: ...` lines.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from edgetl.cli.common import console, err_console

app = typer.Typer(help="Inspect data sets and make leakage-safe splits.", no_args_is_help=True)

_DATA_HELP = ("Folder tree (one subfolder per class), CSV manifest, or built-in name "
              "(elpv, elpv:4class).")
_THRESHOLD_HELP = ("Near-duplicate perceptual-hash distance (0-64; negative: exact duplicates "
                   "only).")
_SHOW = 10  # rows of each list shown on screen; --json has them all


@contextmanager
def _warnings_to_stderr() -> Iterator[None]:
    """Show each DataWarning as one stderr line; other warnings go through unchanged."""
    from edgetl.data.samples import DataWarning

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", DataWarning)
        try:
            yield
        finally:
            for item in caught:
                if issubclass(item.category, DataWarning):
                    err_console.print(f"warning: {item.message}", markup=False, highlight=False,
                                      soft_wrap=True)
                else:
                    warnings.showwarning(item.message, item.category, item.filename, item.lineno)


@contextmanager
def _progress(total: int, label: str) -> Iterator[Callable[[int], None]]:
    """A transient rich progress bar on stderr; yields the `progress(n)` callback."""
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
               TimeElapsedColumn())
    with Progress(*columns, console=err_console, transient=True,
                  disable=not err_console.is_terminal) as bar:  # no stray newline in logs
        task = bar.add_task(label, total=total)
        yield lambda n: bar.advance(task, n)


def _short(path: str, root: str) -> str:
    try:
        rel = os.path.relpath(path, root)
    except ValueError:
        return path
    return path if rel.startswith("..") else rel


def _root_of(paths: list[str]) -> str:
    if not paths:
        return ""
    return os.path.commonpath(paths) if len(paths) > 1 else os.path.dirname(paths[0])


def _cluster_table(title: str, entries: list[dict], root: str, distance: bool) -> Table:
    table = Table(title=title, title_justify="left", show_lines=False)
    table.add_column("#", justify="right")
    table.add_column("images (label / split)")
    if distance:
        table.add_column("max phash distance", justify="right")
    for k, entry in enumerate(entries[:_SHOW], start=1):
        members = ", ".join(
            f"{_short(p, root)} ({label}{' / ' + split if split else ''})"
            for p, label, split in zip(entry["paths"], entry["labels"], entry["splits"],
                                       strict=True)
        )
        row = [str(k), members] + ([str(entry["max_distance"])] if distance else [])
        table.add_row(*row)
    if len(entries) > _SHOW:
        table.caption = f"... and {len(entries) - _SHOW} more (all in --json)"
    return table


def _class_table(classes: dict[str, int], splits: dict[str, dict[str, int]] | None) -> Table:
    table = Table(title="Classes", title_justify="left")
    table.add_column("class")
    table.add_column("images", justify="right")
    table.add_column("share", justify="right")
    names = list(splits or {})
    for name in names:
        table.add_column(name, justify="right")
    total = sum(classes.values()) or 1
    for label, n in classes.items():
        per = [str((splits or {})[s].get(label, 0)) for s in names]
        table.add_row(label, str(n), f"{100.0 * n / total:.1f}%", *per)
    per_total = [str(sum((splits or {})[s].values())) for s in names]
    table.add_row("[bold]total[/]", f"[bold]{sum(classes.values())}[/]", "", *per_total)
    return table


def _print_inspect(report: dict) -> None:
    paths = [e["path"] for e in report["unreadable"]]
    for key in ("exact_duplicates", "near_duplicates"):
        for entry in report[key]:
            paths += entry["paths"]
    root = report["origin"] if os.path.isdir(report["origin"]) else _root_of(paths)
    console.print(f"[bold]{report['name']}[/]: {report['description']}", soft_wrap=True)
    console.print(f"{report['n_images']} readable images of {report['n_files']} files, "
                  f"{len(report['classes'])} classes")
    console.print(_class_table(report["classes"], report["splits"]))
    sizes = report["sizes"]
    if sizes["width"]:
        w, h = sizes["width"], sizes["height"]
        common = ", ".join(f"{s['width']}x{s['height']} ({s['count']})"
                           for s in sizes["most_common"][:5])
        console.print(f"sizes (WxH): width {w['min']}-{w['max']} (median {w['median']:g}), "
                      f"height {h['min']}-{h['max']} (median {h['median']:g}); "
                      f"{sizes['distinct']} distinct: {common}", soft_wrap=True)
    modes = ", ".join(f"{m} {n}" for m, n in report["modes"].items())
    formats = ", ".join(f"{f or '?'} {n}" for f, n in report["formats"].items())
    console.print(f"modes: {modes}; formats: {formats}")
    if report["unreadable"]:
        table = Table(title=f"Unreadable files ({len(report['unreadable'])})", title_justify="left")
        table.add_column("file")
        table.add_column("reason")
        for entry in report["unreadable"][:_SHOW]:
            table.add_row(_short(entry["path"], root), entry["reason"])
        console.print(table)
    console.print(f"exact duplicate groups: {len(report['exact_duplicates'])}; near-duplicate "
                  f"clusters: {len(report['near_duplicates'])} (phash distance <= "
                  f"{report['near_dup_threshold']}, thumbnail MAD <= "
                  f"{report['near_dup_max_thumb_mad']})")
    if report["exact_duplicates"]:
        console.print(_cluster_table("Exact duplicates", report["exact_duplicates"], root, False))
    if report["near_duplicates"]:
        console.print(_cluster_table("Near-duplicates", report["near_duplicates"], root, True))
    if report["cross_split_duplicates"] is not None:
        across = report["cross_split_duplicates"]
        console.print(f"duplicate clusters across the given splits: {len(across)}")
        if across:
            console.print(_cluster_table("Across splits", across, root, True))
    ratio = report["imbalance_ratio"]
    console.print("imbalance (largest/smallest class): "
                  + (f"{ratio:.2f}:1" if ratio is not None else "a class is empty"))
    for line in report["warnings"]:
        err_console.print(f"warning: {line}", markup=False, highlight=False, soft_wrap=True)


@app.command("inspect")
def inspect(
    data: str = typer.Argument(..., help=_DATA_HELP),
    json_out: Path | None = typer.Option(None, "--json", help="Write the report as JSON."),
    near_dup_threshold: int = typer.Option(6, "--near-dup-threshold", help=_THRESHOLD_HELP),
) -> None:
    """Counts per class, image sizes/modes, unreadable files, duplicates and near-duplicates."""
    from edgetl.data.inspect import inspect_data
    from edgetl.data.sources import load_data
    from edgetl.interrupt import activity
    from edgetl.io import atomic_write_json, require_writable

    if json_out is not None:
        _refuse_input(data, json_out, "--json")
        require_writable(json_out, "--json")
    with _warnings_to_stderr(), activity(f"data inspect of {data}", "no report was written"):
        ds = load_data(data, check_images=False)  # the scan below decodes every file once
        with _progress(len(ds.samples), "hashing images") as advance:
            report = inspect_data(ds, near_dup_threshold=near_dup_threshold, progress=advance)
    _print_inspect(report)
    if json_out is not None:
        atomic_write_json(json_out, report)
        console.print(f"report written to {json_out}")


def _print_split(report: dict, notes: list[str], out: Path) -> None:
    console.print(f"wrote {out}: {report['n_images']} rows")
    splits = report["splits"]
    classes: dict[str, int] = {}
    for per in splits.values():
        for label, n in per.items():
            classes[label] = classes.get(label, 0) + n
    console.print(_class_table(classes, splits))
    for note in notes:
        console.print(f"- {note}", soft_wrap=True, highlight=False)
    clusters = report["duplicate_clusters"]
    root = _root_of([p for e in clusters for p in e["paths"]])
    console.print(f"groups: {report['n_groups']}, across splits: "
                  f"{len(report['groups_across_splits'])}; duplicate clusters: {len(clusters)} "
                  f"({sum(len(e['paths']) for e in clusters)} images), across splits: "
                  f"{len(report['clusters_across_splits'])}; held out: {len(report['held_out'])}")
    if clusters:
        title = "Duplicate clusters (each kept in one split)"
        console.print(_cluster_table(title, clusters, root, True))
    if report["leak_free"]:
        console.print("[green]leakage check passed[/]: no group or duplicate cluster crosses "
                      "splits")
    else:
        err_console.print(
            "warning: the splits given by the source leak: "
            f"{len(report['groups_across_splits'])} group(s) and "
            f"{len(report['clusters_across_splits'])} duplicate cluster(s) cross val/test; "
            "fix the source's split", markup=False, highlight=False, soft_wrap=True)


def _refuse_input(data: str, path: Path, option: str) -> None:
    """Writing over the data's own manifest would replace the user's list of images."""
    from edgetl.errors import UsageError
    from edgetl.io import same_file

    if os.path.isfile(data) and path.exists() and same_file(data, path):
        raise UsageError(f"{option} {path} is the input manifest itself: writing it would "
                         "replace your data's own list", f"give {option} another file name")


@app.command("split")
def split(
    data: str = typer.Argument(..., help=_DATA_HELP),
    out: Path = typer.Option(..., "--out", help="Where to write the split manifest CSV."),
    val: float = typer.Option(0.15, "--val", help="Validation fraction of the whole data set."),
    test: float = typer.Option(0.15, "--test", help="Test fraction (ignored when the source "
                               "gives a test split)."),
    seed: int = typer.Option(0, "--seed", help="Seed of the split."),
    group_column: str = typer.Option("group", "--group-column",
                                     help="Manifest column whose equal values stay together."),
    near_dup_threshold: int = typer.Option(6, "--near-dup-threshold", help=_THRESHOLD_HELP),
    json_out: Path | None = typer.Option(None, "--json", help="Write the leakage report as JSON."),
) -> None:
    """Seeded stratified/grouped split keeping near-duplicates together, with a leakage report."""
    from edgetl.data.manifest import extra_columns, write_manifest
    from edgetl.data.sources import load_data
    from edgetl.data.split import leakage_report, make_splits
    from edgetl.interrupt import activity
    from edgetl.io import atomic_write_json, require_writable

    _refuse_input(data, out, "--out")
    require_writable(out, "--out")
    if json_out is not None:
        _refuse_input(data, json_out, "--json")
        require_writable(json_out, "--json")
    with _warnings_to_stderr(), activity(f"data split of {data}", f"{out} was not written"):
        ds = load_data(data, group_column=group_column)
        with _progress(len(ds.samples), "hashing images") as advance:
            result = make_splits(ds, val, test, seed, near_dup_threshold, progress=advance)
        report = leakage_report(result, near_dup_threshold=near_dup_threshold)
    is_csv = ds.origin.lower().endswith(".csv") and os.path.isfile(ds.origin)
    write_manifest(result, out, extra_columns(ds.origin) if is_csv else None)
    new_notes = result.notes
    _print_split(report, new_notes, out)
    if json_out is not None:
        payload = {"out": str(out.absolute()), "seed": seed, "val": val, "test": test,
                   "notes": new_notes, **report}
        atomic_write_json(json_out, payload)
        console.print(f"report written to {json_out}")
