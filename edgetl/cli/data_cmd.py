"""`edgetl data inspect` and `edgetl data split`: thin wrappers that print library reports.

Library modules are imported inside the commands so `edgetl --help` imports no PIL or numpy.
Data warnings (`DataWarning`) are printed to stderr as `warning: ...` lines.
"""

from __future__ import annotations

import os
import sys
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from edgetl.cli.common import (
    JSON_HELP,
    NEAR_DUP_HELP,
    check_near_dup,
    console,
    err_console,
    json_target,
    write_json_report,
)
from edgetl.cli.data_tables import SHOW as _SHOW
from edgetl.cli.data_tables import cluster_table as _cluster_table
from edgetl.cli.data_tables import path_table as _path_table
from edgetl.cli.data_tables import print_duplicates
from edgetl.cli.data_tables import print_sizes as _print_sizes
from edgetl.cli.data_tables import root_of as _root_of

app = typer.Typer(help="Inspect data sets and make leakage-safe splits.", no_args_is_help=True)

_DATA_HELP = (
    "Classification (default): a folder tree (one subfolder per class, optionally under "
    "train/ val/ test/), a CSV image list (path,label[,split,group]) or a built-in name (elpv, "
    "elpv:4class). Detection: Pascal VOC, COCO JSON, YOLO, a box CSV or VIA (prefix voc:, "
    "coco:, yolo:, csv:, via: forces one) or neon-trees[:TILE]. Semantic segmentation: image "
    "and mask folders (images/ with masks/, labels/ or annotations/; index or palette PNGs), "
    "COCO JSON or a split CSV (path,mask). Instance segmentation: COCO polygons/RLE, "
    "instance-id mask folders, VIA or YOLO segmentation (prefix coco:, masks:, via:, yolo:), "
    "or a COCO JSON split. Give --task for the dense tasks.")
_TASK_HELP = "classification (default), detection, semantic or instance."


def _task(value: str | None) -> str:
    from edgetl import tasks
    from edgetl.errors import UsageError
    from edgetl.spec import DEFAULT_TASK

    task = (value or DEFAULT_TASK).strip().lower()
    tasks.get(task, UsageError(f"--task {value!r} is not one of {', '.join(tasks.names())}"))
    return task


_GROUP_HELP = ("Group images by their file name: a regular expression searched in the base "
               "name; its first capture group (or the whole match) is the group, e.g. "
               "'^([^_]+)_'. Groups stay in one split; groups crossing given splits are listed. "
               "Every task; finetune takes the same option.")


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


def _print_groups(groups: dict | None) -> None:
    """Group count and the groups that cross the given splits (nothing when there are none)."""
    if not groups or not groups["n_groups"]:
        return
    across = groups["across_splits"]
    console.print(f"groups: {groups['n_groups']} ({groups['ungrouped']} image(s) ungrouped); "
                  f"across the given splits: {len(across)}")
    if across:
        table = Table(title="Groups across splits", title_justify="left")
        table.add_column("group")
        table.add_column("images per split")
        for entry in across[:_SHOW]:
            table.add_row(entry["group"], ", ".join(f"{k} {v}" for k, v in entry["splits"].items()))
        if len(across) > _SHOW:
            table.caption = f"... and {len(across) - _SHOW} more (all in --json)"
        console.print(table)


def print_class_inspect(report: dict) -> None:
    """Classification's `inspect_printer`: the report of `inspect_data` on the terminal."""
    paths = [e["path"] for e in report["unreadable"]]
    for key in ("exact_duplicates", "near_duplicates"):
        for entry in report[key]:
            paths += entry["paths"]
    root = report["origin"] if os.path.isdir(report["origin"]) else _root_of(paths)
    console.print(f"[bold]{report['name']}[/]: {report['description']}", soft_wrap=True)
    console.print(f"{report['n_images']} readable images of {report['n_files']} files, "
                  f"{len(report['classes'])} classes")
    console.print(_class_table(report["classes"], report["splits"]))
    _print_sizes(report["sizes"])
    modes = ", ".join(f"{m} {n}" for m, n in report["modes"].items())
    formats = ", ".join(f"{f or '?'} {n}" for f, n in report["formats"].items())
    console.print(f"modes: {modes}; formats: {formats}")
    if report["unreadable"]:
        console.print(_path_table("Unreadable files", report["unreadable"], root))
    print_duplicates(report, root, thumb_mad=True)
    if report["cross_split_duplicates"] is not None:
        across = report["cross_split_duplicates"]
        console.print(f"duplicate clusters across the given splits: {len(across)}")
        if across:
            console.print(_cluster_table("Across splits", across, root, True))
    _print_groups(report.get("groups"))
    ratio = report["imbalance_ratio"]
    console.print("imbalance (largest/smallest class): "
                  + (f"{ratio:.2f}:1" if ratio is not None else "a class is empty"))
    for line in report["warnings"]:
        err_console.print(f"warning: {line}", markup=False, highlight=False, soft_wrap=True)


@app.command("inspect")
def inspect(
    data: str = typer.Argument(..., help=_DATA_HELP),
    json_out: str | None = typer.Option(None, "--json", metavar="FILE|-", help=JSON_HELP),
    near_dup_threshold: int = typer.Option(6, "--near-dup-threshold", help=NEAR_DUP_HELP),
    group_from_name: str | None = typer.Option(None, "--group-from-name", help=_GROUP_HELP),
    task: str | None = typer.Option(None, "--task", help=_TASK_HELP),
    input_size: int | None = typer.Option(
        None, "--input-size", min=1, help="Detection/instance: also bucket box sizes at this "
        "letterboxed input size (the recipe's input size)."),
) -> None:
    """What a data set of any task holds: images per class (classification), objects per class
    and box sizes (detection, instance segmentation), pixels per class (semantic
    segmentation); image sizes/modes, unreadable files, duplicates and near-duplicates, groups
    and leaks across given splits."""
    from edgetl import tasks
    from edgetl.data.grouping import group_from_name as apply_group_rule
    from edgetl.data.sources import load_data
    from edgetl.interrupt import activity

    chosen = tasks.get(_task(task))
    check_near_dup(near_dup_threshold)
    if input_size is not None and not chosen.dense:
        from edgetl.errors import UsageError

        raise UsageError("--input-size applies to --task detection or instance")
    if json_out not in (None, "-"):
        _refuse_input(data, Path(json_out), "--json")
    json_target(json_out)
    if json_out == "-":
        console.file = sys.stderr  # standard output carries the JSON alone
    with _warnings_to_stderr(), activity(f"data inspect of {data}", "no report was written"):
        ds = load_data(data, task=task, check_images=False)  # the scan decodes each file once
        if group_from_name is not None:
            ds = apply_group_rule(ds, group_from_name)
        inspector = chosen.load("data_inspector")
        with _progress(len(ds.samples), "hashing images") as advance:
            report = inspector(ds, input_size, near_dup_threshold=near_dup_threshold,
                               progress=advance)
    chosen.load("inspect_printer")(report)
    write_json_report(json_out, report)
    if json_out not in (None, "-"):
        console.print(f"report written to {json_out}")


def _print_split(report: dict, notes: list[str], out: Path, dense: bool = False) -> None:
    if dense:
        sizes = ", ".join(f"{n} {k}" for k, n in report["split_sizes"].items())
        console.print(f"wrote {out}: {report['n_images']} images ({sizes}); the class table "
                      "counts the images holding each class", soft_wrap=True)
    else:
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
    out: Path = typer.Option(..., "--out", help="The split file to write: a CSV for "
                             "classification (path,label,group,split), detection (a box CSV) "
                             "and semantic segmentation (path,mask); a COCO JSON for instance "
                             "segmentation. finetune --data reads it back."),
    val: float = typer.Option(0.15, "--val", help="Validation fraction of the whole data set."),
    test: float = typer.Option(0.15, "--test", help="Test fraction (ignored when the source "
                               "gives a test split)."),
    seed: int = typer.Option(0, "--seed", help="Seed of the split."),
    group_column: str = typer.Option("group", "--group-column",
                                     help="Manifest column whose equal values stay together."),
    near_dup_threshold: int = typer.Option(6, "--near-dup-threshold", help=NEAR_DUP_HELP),
    json_out: str | None = typer.Option(None, "--json", metavar="FILE|-",
                                        help=JSON_HELP.replace("the report", "the leakage "
                                                               "report")),
    group_from_name: str | None = typer.Option(None, "--group-from-name", help=_GROUP_HELP),
    task: str | None = typer.Option(None, "--task", help=_TASK_HELP),
) -> None:
    """Seeded split of a data set of any task (classification, detection, semantic or instance
    segmentation): stratified by class, grouped, near-duplicates kept together, with a leakage
    report."""
    from edgetl import tasks
    from edgetl.data.grouping import group_from_name as apply_group_rule
    from edgetl.data.image_list import extra_columns, write_image_list
    from edgetl.data.sources import load_data
    from edgetl.data.split import leakage_report, make_splits
    from edgetl.data.splitfile import split_file_name, write_split
    from edgetl.errors import UsageError
    from edgetl.interrupt import activity
    from edgetl.io import require_writable

    name = _task(task)
    dense = tasks.get(name).dense
    want = Path(split_file_name(name)).suffix
    if dense and out.suffix.lower() != want:
        raise UsageError(f"--out {out}: a {name} split is written as a {want} file",
                         hint=f"e.g. --out split{want}")
    check_near_dup(near_dup_threshold)
    _refuse_input(data, out, "--out")
    require_writable(out, "--out")
    if json_out not in (None, "-"):
        _refuse_input(data, Path(json_out), "--json")
    json_target(json_out)
    if json_out == "-":
        console.file = sys.stderr  # standard output carries the JSON alone
    with _warnings_to_stderr(), activity(f"data split of {data}", f"{out} was not written"):
        ds = load_data(data, task=task, group_column=group_column)
        if group_from_name is not None:
            ds = apply_group_rule(ds, group_from_name)
        with _progress(len(ds.samples), "hashing images") as advance:
            result = make_splits(ds, val, test, seed, near_dup_threshold, progress=advance)
        report = leakage_report(result, near_dup_threshold=near_dup_threshold)
    is_csv = ds.origin.lower().endswith(".csv") and os.path.isfile(ds.origin)
    if not dense:  # a manifest keeps the source CSV's extra columns
        write_image_list(result, out, extra_columns(ds.origin) if is_csv else None)
    else:
        write_split(result, out)
    new_notes = result.notes
    _print_split(report, new_notes, out, dense=dense)
    if json_out is not None:
        payload = {"out": str(out.absolute()), "seed": seed, "val": val, "test": test,
                   "notes": new_notes, **report}
        write_json_report(json_out, payload)
        if json_out != "-":
            console.print(f"report written to {json_out}")


def print_semantic_inspect(report: dict) -> None:
    """Semantic segmentation's `inspect_printer`: `print_semantic_report` on this command's
    consoles (standard output may carry the JSON, then the report goes to stderr)."""
    from edgetl.data.semantic import print_semantic_report

    print_semantic_report(report, console, err_console)
