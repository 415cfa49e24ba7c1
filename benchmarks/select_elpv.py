"""The acceptance case of `edgetl select` (issue 17) on ELPV, recorded with everything it used.

    python benchmarks/select_elpv.py [--sizes 224] [--backend ort-cpu] [--time-budget 30m]
        [--phases A] [--threads 2] [--work runs/select-elpv]

1. A latency scan (`edgetl select --latency-only`, no budget to speak of) times every registry
   backbone with offline weights at the sizes given (the first size is the reference).
2. The budget is put between the fastest-precision p90 of two registry backbones at the
   reference size: the geometric mean of the adjacent pair with the widest gap, so a second
   measurement cannot move either across it by ordinary noise.
3. `edgetl select` runs with that budget and the time budget; the backbones above the budget
   must be excluded (reported either way, with the scan's and the run's figures).
4. The written recipe is fine-tuned as is (`edgetl finetune OUT/recipe.yaml`), its pick's
   format exported, verified and timed like the probe was; the test figure of the selection
   metric is compared with the validation interval select reported.
Writes `benchmarks/results/select-elpv-<cpu|gpu>-<date>.json` and `.md` (machine, versions,
load, commit, every command). Takes about 10-20 minutes on a 2-core CPU with the defaults.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import math
import os
import platform
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).resolve().parent / "results"
REPO = Path(__file__).resolve().parents[1]
COMMANDS: list[str] = []


def edgetl(*args: object) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "edgetl.cli.main", *map(str, args)]
    COMMANDS.append("edgetl " + " ".join(command[3:]))
    print("$", COMMANDS[-1], flush=True)
    started = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True, cwd=REPO,
                          env={**os.environ, "COLUMNS": "160"})
    print(done.stdout[-3000:], done.stderr[-2000:], sep="\n", flush=True)
    print(f"  ({time.perf_counter() - started:.0f} s, exit {done.returncode})", flush=True)
    return done


def must(done: subprocess.CompletedProcess[str], what: str) -> None:
    if done.returncode != 0:
        sys.exit(f"{what} failed (exit {done.returncode}): {done.stderr.strip()[-500:]}")


def machine() -> dict[str, Any]:
    model = next((line.split(":", 1)[1].strip() for line in
                  Path("/proc/cpuinfo").read_text().splitlines()
                  if line.startswith("model name")), platform.processor())
    import onnxruntime
    import torch

    return {"cpu": model, "cores": os.cpu_count(), "python": platform.python_version(),
            "torch": torch.__version__, "onnxruntime": onnxruntime.__version__,
            "load_average": [round(x, 2) for x in os.getloadavg()]}


def commit() -> str:
    done = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True,
                          text=True, cwd=REPO)
    return done.stdout.strip()


def fastest_p90(row: dict[str, Any]) -> float:
    return min(p["p90_ms"] for p in row["latency"]["precisions"].values())


def choose_budget(scan: dict[str, Any], size: int, above_id: str | None = None
                  ) -> dict[str, Any]:
    """Between the two adjacent backbones (by fastest p90 at `size`) with the widest gap, or
    just below `above_id` (between it and the next faster backbone)."""
    rows = sorted((r for r in scan["candidates"] if r["input_size"] == size), key=fastest_p90)
    if len(rows) < 2:
        sys.exit(f"the scan has fewer than two backbones at {size} px")
    pairs = [(fastest_p90(b) / fastest_p90(a), a, b) for a, b in zip(rows, rows[1:], strict=False)]
    if above_id is not None:
        pairs = [t for t in pairs if t[2]["id"] == above_id]
        if not pairs:
            sys.exit(f"--above {above_id}: not a backbone of the scan with a faster one below it")
    ratio, below, above = max(pairs, key=lambda t: t[0])
    budget = math.sqrt(fastest_p90(below) * fastest_p90(above))
    return {"budget_ms": round(budget, 3), "reference_size": size, "gap_ratio": round(ratio, 3),
            "below": {"id": below["id"], "fastest_p90_ms": fastest_p90(below)},
            "above": {"id": above["id"], "fastest_p90_ms": fastest_p90(above)},
            "scan": {r["id"]: {p: {"p50_ms": v["p50_ms"], "p90_ms": v["p90_ms"]}
                               for p, v in r["latency"]["precisions"].items()} for r in rows}}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--recipe", default="recipes/examples/elpv-quickstart.yaml")
    parser.add_argument("--sizes", default="224")
    parser.add_argument("--backend", default="ort-cpu")
    parser.add_argument("--precision", default="fp32,int8")
    parser.add_argument("--time-budget", default="30m")
    parser.add_argument("--phases", default="A", choices=("A", "all"))
    parser.add_argument("--threads", default="2")
    parser.add_argument("--work", default="runs/select-elpv")
    parser.add_argument("--results", default=str(RESULTS), help="where the JSON/.md go")
    parser.add_argument("--above", default=None,
                        help="put the budget just below this candidate (e.g. "
                             "tf_efficientnet_lite1@224) instead of in the widest gap")
    args = parser.parse_args()
    work = (REPO / args.work).resolve()
    if work.exists() and any(work.iterdir()):
        sys.exit(f"{work} is not empty: pass another --work")
    common = ["--backend", args.backend, "--precision", args.precision, "--sizes", args.sizes,
              "--threads", args.threads]
    started = time.perf_counter()

    scan_dir = work / "scan"
    must(edgetl("select", args.recipe, "--budget-ms", "1000000", "--latency-only", *common,
                "--out", scan_dir), "the latency scan")
    scan = json.loads((scan_dir / "select.json").read_text())
    size = int(args.sizes.split(",")[0])
    budget = choose_budget(scan, size, args.above)

    select_dir = work / "select"
    chosen = edgetl("select", args.recipe, "--budget-ms", budget["budget_ms"], "--time-budget",
                    args.time_budget, "--phases", args.phases, *common, "--out", select_dir)
    if chosen.returncode != 0 and not (select_dir / "select.json").is_file():
        must(chosen, "select")
    record = json.loads((select_dir / "select.json").read_text())
    if record["pick"] is None:  # nothing deployable within budget: say why, and stop here
        today = dt.date.today().isoformat()
        stem = Path(args.results) / f"select-elpv-nopick-{args.phases}-{today}"
        stem.parent.mkdir(parents=True, exist_ok=True)
        stem.with_suffix(".json").write_text(json.dumps({
            "date": dt.date.today().isoformat(), "commit": commit(), "machine": machine(),
            "args": vars(args), "budget": budget, "select_exit": chosen.returncode,
            "stderr": chosen.stderr.strip()[-800:],
            "candidates": [{"id": r["id"], "status": r["status"], "reason": r["reason"],
                            "deployment": r.get("deployment"),
                            "val": (r["training"] or {}).get("value")}
                           for r in record["candidates"]],
            "wall_seconds": round(time.perf_counter() - started, 1), "commands": COMMANDS,
        }, indent=2) + "\n")
        sys.exit(f"select picked nothing (exit {chosen.returncode}); wrote {stem}.json")
    rows = {r["id"]: r for r in record["candidates"]}
    above = rows[budget["above"]["id"]]
    # the backbones the scan put above the budget, measured again by select: excluded?
    excluded = {key: rows[key]["status"] == "over_budget" for key, lat in budget["scan"].items()
                if min(v["p90_ms"] for v in lat.values()) > budget["budget_ms"]}
    pick = record["pick"]

    run = work / "finetune"
    must(edgetl("finetune", select_dir / "recipe.yaml", "--out", run), "finetune")
    test = json.loads((run / "test_metrics.json").read_text())
    name = pick["metric"].removeprefix("val_")
    test_value = test.get(name)  # (the test report has no loss)
    lo, hi = pick["ci95"]

    must(edgetl("export", run, "--format", pick["format"]), "export")
    from edgetl.export import default_artifact_path, get_format

    artifact = default_artifact_path(run, get_format(pick["format"]))
    verify = edgetl("verify", artifact, "--against", run, "--json", work / "verify.json")
    bench_json = work / "bench-final.json"
    must(edgetl("bench", artifact, "--backend", args.backend, "--batch", "1", "--threads",
                args.threads, "--json", bench_json), "bench")
    final_row = json.loads(bench_json.read_text())["rows"][0]

    today = dt.date.today().isoformat()
    kind = "cpu" if args.backend == "ort-cpu" else "gpu"
    result = {
        "date": today, "commit": commit(), "machine": machine(), "args": vars(args),
        "budget": budget,
        "select": {
            "budget_ms": record["config"]["budget_ms"], "budget_on": record["config"]["budget_on"],
            "metric": record["metric"], "split": record["split"]["counts"],
            "latency_seconds": record.get("latency_seconds"),
            "accuracy_seconds": record.get("accuracy_seconds"),
            "time_budget": record.get("time_budget"),
            "candidates": [{
                "id": r["id"], "status": r["status"], "reason": r["reason"],
                "deploy_precision": r["deploy_precision"],
                "latency": {p: {"p50_ms": v["p50_ms"], "p90_ms": v["p90_ms"], "cv": v["cv"]}
                            for p, v in r["latency"]["precisions"].items()},
                "val": None if not r["training"] else {
                    "value": r["training"]["value"], "ci95": r["training"]["ci95"],
                    "seconds": r["training"]["seconds"]},
            } for r in record["candidates"]],
            "pareto_front": record["pareto_front"], "pick": pick,
            "alternatives": record["alternatives"],
        },
        "acceptance": {
            "above_budget_backbone": budget["above"]["id"],
            "above_budget_excluded": above["status"] == "over_budget",
            "every_backbone_above_budget_excluded": excluded,
            "test": {"metric": name, "value": test_value,
                     "ci95": test.get(f"{name}_ci95"), "n": test["n"]},
            "val": {"metric": pick["metric"], "value": pick["value"], "ci95": pick["ci95"],
                    "n": pick["n"]},
            "test_within_val_interval": None if test_value is None else lo <= test_value <= hi,
        },
        "deployed": {
            "artifact": str(artifact), "format": pick["format"],
            "verify_exit": verify.returncode,
            "bench_p50_ms": final_row["p50_ms"], "bench_p90_ms": final_row["p90_ms"],
            "probe_p50_ms": pick["latency_ms"]["p50"], "probe_p90_ms": pick["latency_ms"]["p90"],
        },
        "wall_seconds": round(time.perf_counter() - started, 1),
        "commands": COMMANDS,
    }
    results = Path(args.results)
    results.mkdir(parents=True, exist_ok=True)
    stem = results / f"select-elpv-{kind}-{today}"
    stem.with_suffix(".json").write_text(json.dumps(result, indent=2) + "\n")
    stem.with_suffix(".md").write_text(markdown(result))
    print(f"wrote {stem}.json and .md")


def markdown(result: dict[str, Any]) -> str:
    sel, acc, dep, budget = result["select"], result["acceptance"], result["deployed"], \
        result["budget"]
    m = result["machine"]
    precisions = result["args"]["precision"].split(",")
    lines = [
        f"# edgetl select on ELPV ({result['date']}, commit {result['commit']})", "",
        f"{m['cpu']}, {m['cores']} cores, load {m['load_average']}; torch {m['torch']}, "
        f"onnxruntime {m['onnxruntime']}; wall {result['wall_seconds']:.0f} s.", "",
        f"Budget {sel['budget_on']} <= {sel['budget_ms']:.3f} ms: between "
        f"{budget['below']['id']} ({budget['below']['fastest_p90_ms']:.3f} ms) and "
        f"{budget['above']['id']} ({budget['above']['fastest_p90_ms']:.3f} ms) in the scan "
        f"(gap x{budget['gap_ratio']})."
        + (" The gap is narrow: a second measurement can move a backbone across the budget "
           "(a busy machine's scheduling noise dominates p90)." if budget["gap_ratio"] < 1.25
           else ""), "",
        f"| candidate | {' | '.join(f'{p} p50/p90 ms' for p in precisions)} | deploy | "
        f"{sel['metric']} (95% interval) | s | status |",
        "|---|" + "---|" * (len(precisions) + 4),
    ]
    for c in sel["candidates"]:
        lat = " | ".join(f"{c['latency'][p]['p50_ms']:.2f}/{c['latency'][p]['p90_ms']:.2f}"
                         if p in c["latency"] else "-"
                         for p in precisions)
        val = "-" if not c["val"] else \
            f"{c['val']['value']:.4f} ({c['val']['ci95'][0]:.4f}-{c['val']['ci95'][1]:.4f})"
        secs = "-" if not c["val"] else f"{c['val']['seconds']:.0f}"
        status = "PICK" if c["id"] == sel["pick"]["id"] else c["status"]
        lines.append(f"| {c['id']} | {lat} | {c['deploy_precision'] or '-'} | {val} | {secs} |"
                     f" {status} |")
    t, v = acc["test"], acc["val"]
    lines += [
        "", f"- {acc['above_budget_backbone']} above the budget excluded: "
        f"{acc['above_budget_excluded']} (every backbone above it: "
        f"{acc['every_backbone_above_budget_excluded']})",
        f"- pick {sel['pick']['id']} as {sel['pick']['format']}; validation {v['metric']} "
        f"{v['value']:.4f} ({v['ci95'][0]:.4f}-{v['ci95'][1]:.4f}, n={v['n']})",
        f"- the written recipe fine-tuned as is: test {t['metric']} {t['value']:.4f}"
        + (f" ({t['ci95'][0]:.4f}-{t['ci95'][1]:.4f}, n={t['n']})" if t["ci95"] else "")
        + f"; within the validation interval: **{acc['test_within_val_interval']}**",
        f"- deployed {dep['format']}: verify exit {dep['verify_exit']}; bench p50/p90 "
        f"{dep['bench_p50_ms']:.3f}/{dep['bench_p90_ms']:.3f} ms against the untrained probe's "
        f"{dep['probe_p50_ms']:.3f}/{dep['probe_p90_ms']:.3f} ms",
        f"- time budget: {sel['time_budget']}",
        "", "Commands:", "", *[f"    {c}" for c in result["commands"]], "",
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    main()
