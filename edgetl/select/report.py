"""What `edgetl select` shows and writes: the table, the scatter PNG, the recipe, select.json.

All views are made from the select record (the dict written as `select.json`), so the table,
the picture and the file cannot disagree.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from edgetl.io import atomic_write_json, atomic_write_text, atomic_write_with
from edgetl.runfolder import RunFolder

STATUS_WORDS = {"over_budget": "over", "trained": "ok", "skipped_time": "skipped",
                "not_deployable": "undeployable",
                "latency_only": "fits"}


def metric_text(training: dict[str, Any] | None, metric: str) -> str:
    """'88.3 [86.0, 90.7]' (percent) for scores, '0.3120 [0.2801, 0.3466]' for losses."""
    if not training:
        return "-"
    lo, hi = training["ci95"]
    if metric.endswith("loss"):
        return f"{training['value']:.4f} [{lo:.4f}, {hi:.4f}]"
    return f"{training['value']:.1%} [{lo:.1%}, {hi:.1%}]".replace("%", "")


def render_table(record: dict[str, Any], console: Any) -> None:
    """One row per candidate: the budget statistic per precision (the deployed one starred),
    the validation score with its interval, training seconds, and what became of it."""
    from rich import box
    from rich.table import Table

    config, metric = record["config"], record["metric"]
    stat = config["budget_on"]
    front, chosen = set(record["pareto_front"]), (record.get("pick") or {}).get("id")
    unit = "" if metric.endswith("loss") else " %"
    table = Table(title=f"select: {config['backend']} b{config['batch']}, {stat} <= "
                  f"{config['budget_ms']:g} ms; {metric}{unit} on validation [95% interval]",
                  caption="*: the precision deployed (the first within budget); s: training "
                  "seconds; status: PICK, front (Pareto), ok (trained), over (budget), "
                  "undeployable (the trained export missed verify or the budget), skipped "
                  "(time budget)",
                  box=box.SIMPLE_HEAD, pad_edge=False, padding=(0, 1, 0, 0))
    table.add_column("candidate", no_wrap=True)
    for precision in config["precisions"]:
        table.add_column(f"{precision} {stat}", justify="right", no_wrap=True)
    table.add_column(f"{metric.removeprefix('val_')}{unit}", justify="right", no_wrap=True)
    table.add_column("s", justify="right", no_wrap=True)
    table.add_column("status", no_wrap=True)
    for row in record["candidates"]:
        cells = [row["id"]]
        for precision in config["precisions"]:
            lat = (row.get("latency") or {}).get("precisions", {}).get(precision)
            star = "*" if precision == row.get("deploy_precision") else " "
            cells.append("-" if lat is None else f"{lat[f'{stat}_ms']:.2f}{star}")
        training = row.get("training")
        status = STATUS_WORDS.get(row["status"], row["status"])
        if row["id"] == chosen:
            status = "[bold green]PICK[/bold green]"
        elif row["id"] in front:
            status = "front"
        cells += [metric_text(training, metric),
                  f"{training['seconds']:.0f}" if training else "-", status]
        table.add_row(*cells, style="dim" if row["status"] == "over_budget" else None)
    console.print(table)


def plot_scatter(record: dict[str, Any], out_png: Path) -> Path:
    """Validation score (with its interval) against deployed latency: the budget line, the
    Pareto front, the pick; over-budget candidates as crosses along the bottom."""
    # not at the top: matplotlib loads only when a figure is drawn
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    config, metric = record["config"], record["metric"]
    stat = config["budget_on"]
    fig, ax = plt.subplots(figsize=(10, 5.5))
    trained = [r for r in record["candidates"] if r.get("training")]
    by_id = {r["id"]: r for r in trained}
    for row in trained:
        x, t = row["deploy_latency_ms"][stat], row["training"]
        lo, hi = t["ci95"]
        ax.errorbar([x], [t["value"]], yerr=[[t["value"] - lo], [hi - t["value"]]], fmt="o",
                    color="tab:blue", ecolor="tab:blue", alpha=0.8, capsize=3)
        ax.annotate(f"{row['id']} {row['deploy_precision']}", (x, t["value"]), fontsize=7,
                    xytext=(4, 4), textcoords="offset points")
    front = [by_id[k] for k in record["pareto_front"] if k in by_id]
    if front:
        ax.step([r["deploy_latency_ms"][stat] for r in front],
                [r["training"]["value"] for r in front], where="post", color="tab:orange",
                label="Pareto front")
    chosen = (record.get("pick") or {}).get("id")
    if chosen in by_id:
        row = by_id[chosen]
        ax.scatter([row["deploy_latency_ms"][stat]], [row["training"]["value"]], s=180,
                   facecolors="none", edgecolors="tab:green", linewidths=2, label="pick",
                   zorder=5)
        deployed = (record.get("pick") or {}).get("deployed_latency_ms")
        if deployed:  # the confirmed artifact: trained, exported (float nodes kept), timed
            ax.plot([row["deploy_latency_ms"][stat], deployed[stat]],
                    [row["training"]["value"]] * 2, color="tab:green", linestyle=":")
            ax.scatter([deployed[stat]], [row["training"]["value"]], marker="D", s=40,
                       color="tab:green", label="pick, trained and exported", zorder=5)
    over = [r for r in record["candidates"] if r["status"] == "over_budget"]
    if over:
        lowest = min((r["training"]["ci95"][0] for r in trained), default=0.0)
        xs = [min(p[f"{stat}_ms"] for p in r["latency"]["precisions"].values()) for r in over]
        ax.scatter(xs, [lowest] * len(xs), marker="x", color="grey",
                   label="over budget (not trained)")
        for row, x in zip(over, xs, strict=True):
            ax.annotate(row["id"], (x, lowest), fontsize=7, color="grey", xytext=(4, 4),
                        textcoords="offset points")
    ax.axvline(config["budget_ms"], color="tab:red", linestyle="--",
               label=f"budget {stat} {config['budget_ms']:g} ms")
    ax.set_xlabel(f"{stat} latency per call (ms), {config['backend']} batch {config['batch']}, "
                  "deployed precision")
    ax.set_ylabel(f"{metric} (validation, 95% interval)")
    ax.set_title("edgetl select: accuracy against latency")
    ax.grid(alpha=0.3)
    # outside the axes: inside, it covered the over-budget crosses in the lower right corner
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    fig.tight_layout()
    atomic_write_with(out_png, lambda tmp: fig.savefig(tmp, dpi=110, format="png"))
    plt.close(fig)
    return out_png


def recipe_text(recipe: Any, record: dict[str, Any]) -> str:
    """The pick's recipe as YAML, under a comment saying how it was chosen."""
    pick, config = record["pick"], record["config"]
    lo, hi = pick["ci95"]
    header = [
        f"# Picked by edgetl select ({record['created']}): {pick['id']}, deployed as "
        f"{pick['format']}",
        f"# {config['budget_on']} {pick['latency_ms'][config['budget_on']]:.3f} ms untrained, "
        f"{pick['deployed_latency_ms'][config['budget_on']]:.3f} ms trained and exported "
        f"({pick['float_nodes'] or 0} float nodes), <= budget {config['budget_ms']:g} ms on "
        f"{config['backend']} (batch {config['batch']})",
        f"# validation {record['metric']} {pick['value']:.4f} (95% interval {lo:.4f}-{hi:.4f}, "
        f"n={pick['n']}) with these phases on this split (same data, fractions and seed)",
        "# run it as is: edgetl finetune recipe.yaml --out runs/NAME",
    ]
    return "\n".join(header) + "\n" + recipe.to_yaml()


def write_outputs(out: Path, record: dict[str, Any], recipe: Any | None) -> None:
    """The scatter PNG, the recipe (when there is a pick) and select.json, each atomic;
    select.json last, so a folder with it is a finished selection."""
    folder = RunFolder(out)
    record["scatter"] = str(plot_scatter(record, folder.select_scatter_path))
    if recipe is not None:
        record["recipe"] = str(atomic_write_text(folder.recipe_path,
                                                 recipe_text(recipe, record)))
    atomic_write_json(folder.select_record_path, record)
