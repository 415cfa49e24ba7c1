"""Bench outputs: a rich table, the JSON report, a markdown table and a latency histogram PNG.

The JSON is the record (schema `edgetl.bench/1`: `schema`, `artifact`, `env`, `config`,
`normalization`, `rows`, `warnings`, and `comparison` when a baseline was given). The table and
markdown are views of it; `render_table` is what `make demo` shows.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from edgetl.bench.stats import CV_WARN
from edgetl.io import atomic_write_json, atomic_write_text, atomic_write_with

_STATUS_STYLE = {"ok": "green", "faster": "cyan", "regressed": "bold red", "missing": "bold red",
                 "new": "yellow"}


def row_label(row: dict[str, Any]) -> str:
    return f"{row['backend']} {row['precision']} b{row['batch']} {row['mode']}"


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}"


def compact_label(row: dict[str, Any]) -> str:
    """'ort-cpu fp32 b8', with ' e2e' when the row times predict's whole path."""
    label = f"{row['backend']} {row['precision']} b{row['batch']}"
    return label + (" e2e" if row["mode"] == "e2e" else "")


def render_table(report: dict[str, Any], console: Any, title: str | None = None) -> None:
    """The rows as a compact rich table (fits 80 columns) plus the report's warnings."""
    from rich import box
    from rich.table import Table

    art = report.get("artifact") or {}
    env = report.get("env") or {}
    cpu = env.get("cpu") or {}
    gpus = ", ".join(g["name"] for g in env.get("gpus") or []) or "no GPU"
    table = Table(title=title or f"bench {art.get('name', '')} ({art.get('format')}, "
                  f"spec {str(art.get('spec_fingerprint', ''))[:12]})",
                  caption=f"{cpu.get('model')}, {cpu.get('usable_cores')} cores, {gpus}; "
                  f"load {env.get('load_average')}", box=box.SIMPLE_HEAD, pad_edge=False)
    normalized = bool(report.get("normalization"))
    columns = ["row", "thr", "p50 ms", "p90 ms", "p99 ms", "cv", "img/s", "RSS MB"]
    if normalized:
        columns.append("p50/ref")
    for name in columns:
        table.add_column(name, justify="left" if name == "row" else "right", no_wrap=True)
    for row in report.get("rows") or []:
        cv = f"{row['cv']:.1%}"
        cells = [compact_label(row), str(row.get("threads") or "-"), _ms(row["p50_ms"]),
                 _ms(row["p90_ms"]), _ms(row["p99_ms"]),
                 f"[yellow]{cv}[/yellow]" if row["cv"] > CV_WARN else cv,
                 f"{row['throughput']:.1f}", f"{row.get('peak_rss_mb') or '-'}"]
        if normalized:
            cells.append(f"{row.get('p50_norm', 0):.3f}")
        table.add_row(*cells)
    console.print(table)
    if report.get("normalization"):
        ref = report["normalization"]
        console.print(f"p50/ref: p50 over the reference workload {ref['workload']} "
                      f"({ref['description']}) timed beside each row", highlight=False)
    for warning in report.get("warnings") or []:
        console.print(f"[yellow]warning:[/yellow] {warning}", highlight=False)


def render_comparison(comparison: dict[str, Any], console: Any) -> None:
    """Every compared row with its status, then notes and failures."""
    from rich import box
    from rich.table import Table

    metric = comparison["metric"]
    table = Table(title=f"regression gate vs {comparison.get('baseline')} "
                  f"(max regression {comparison['max_regression']:.0%}, metric {metric})",
                  box=box.SIMPLE_HEAD, pad_edge=False)
    for name in ("row", "status", "baseline", "new", "ratio", "allowed", "notes"):
        table.add_column(name, justify="left" if name in ("row", "status", "notes") else "right")
    for row in comparison["rows"]:
        key = row["key"]
        label = compact_label(key)
        style = _STATUS_STYLE.get(row["status"], "")
        table.add_row(label, f"[{style}]{row['status']}[/{style}]", _ms(row["old"]),
                      _ms(row["new"]), "-" if row["ratio"] is None else f"x{row['ratio']:.2f}",
                      _ms(row["threshold"]), "; ".join(row["notes"]))
    console.print(table)
    if any((row.get("load_factor") or 1.0) > 1.2 for row in comparison["rows"]):
        console.print("load xF: the reference workload beside that row ran F times slower than "
                      "in the baseline (a busier machine); its allowance was widened by F",
                      highlight=False)
    for note in comparison["notes"]:
        console.print(f"[yellow]note:[/yellow] {note}")
    if comparison["passed"]:
        console.print("[green]gate passed[/green]")
    for failure in comparison["failures"]:
        console.print(f"[bold red]FAILED:[/bold red] {failure}")


def write_json(report: dict[str, Any], path: str | Path) -> Path:
    return atomic_write_json(path, report)


def markdown_table(report: dict[str, Any]) -> str:
    """The rows (and the gate, if any) as GitHub-flavoured markdown."""
    art = report.get("artifact") or {}
    env = report.get("env") or {}
    cpu = env.get("cpu") or {}
    gpus = ", ".join(g["name"] for g in env.get("gpus") or []) or "no GPU"
    versions = env.get("versions") or {}
    lines = [
        f"### bench `{art.get('name')}` ({art.get('architecture')}, {art.get('format')}, "
        f"{art.get('precision')})",
        "",
        f"- machine: {cpu.get('model')} ({cpu.get('usable_cores')} usable cores), {gpus}; "
        f"load average at start {env.get('load_average')}",
        f"- versions: python {versions.get('python')}, onnxruntime "
        f"{versions.get('onnxruntime_imported') or versions.get('onnxruntime')}"
        f", torch {versions.get('torch')}, numpy {versions.get('numpy')}; date {env.get('date')}",
        f"- artifact sha256 `{str(art.get('sha256'))[:16]}`, spec "
        f"`{str(art.get('spec_fingerprint'))[:12]}`, {int(art.get('size_bytes') or 0) / 1e6:.1f}"
        " MB",
        "",
        "| backend | precision | batch | mode | threads | p50 ms | p90 ms | p99 ms | mean ms "
        "| cv | images/s | iters | peak RSS MB |",
        "|---|---|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for row in report.get("rows") or []:
        lines.append(
            f"| {row['backend']} | {row['precision']} | {row['batch']} | {row['mode']} | "
            f"{row.get('threads') or '-'} | {row['p50_ms']:.3f} | {row['p90_ms']:.3f} | "
            f"{row['p99_ms']:.3f} | {row['mean_ms']:.3f} | {row['cv']:.1%} | "
            f"{row['throughput']:.1f} | {row['iters']} | {row.get('peak_rss_mb') or '-'} |")
    comparison = report.get("comparison")
    if comparison:
        lines += ["", f"Regression gate ({comparison['rule']}): "
                  f"**{'passed' if comparison['passed'] else 'FAILED'}**", ""]
        lines += [f"- {f}" for f in comparison["failures"]]
        lines += [f"- note: {n}" for n in comparison["notes"]]
    for warning in report.get("warnings") or []:
        lines.append(f"- warning: {warning}")
    return "\n".join(lines) + "\n"


def write_markdown(report: dict[str, Any], path: str | Path) -> Path:
    return atomic_write_text(path, markdown_table(report))


def default_histogram_path(json_path: str | Path) -> Path:
    """r.json -> r.latency.png beside it."""
    path = Path(json_path)
    return path.with_name(path.stem + ".latency.png")


def write_histogram(rows: Sequence[dict[str, Any]], samples_ms: Sequence[np.ndarray],
                    path: str | Path) -> Path:
    """One panel per row: the latency distribution with p50/p90/p99 marked (matplotlib Agg)."""
    # not at the top: matplotlib loads only when a figure is drawn
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    count = max(len(rows), 1)
    cols = min(count, 3)
    lines = -(-count // cols)
    fig, axes = plt.subplots(lines, cols, figsize=(4.2 * cols, 3.0 * lines), squeeze=False)
    for ax in axes.flat[count:]:
        ax.set_visible(False)
    for ax, row, data in zip(axes.flat, rows, samples_ms, strict=False):
        high = np.percentile(data, 99.5) if len(data) else 1.0
        ax.hist(np.clip(data, None, high), bins=50, color="#4878a8")
        for name, colour in (("p50_ms", "black"), ("p90_ms", "orange"), ("p99_ms", "red")):
            ax.axvline(row[name], color=colour, linewidth=1, label=f"{name[:-3]} {row[name]:.3f}")
        ax.set_title(row_label(row), fontsize=9)
        ax.set_xlabel("ms per call (clipped at p99.5)", fontsize=8)
        ax.tick_params(labelsize=7)
        ax.legend(fontsize=7)
    fig.tight_layout()
    try:
        return atomic_write_with(path, lambda tmp: fig.savefig(tmp, format="png", dpi=100))
    finally:
        plt.close(fig)
