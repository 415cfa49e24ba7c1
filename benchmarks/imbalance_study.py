"""Recipe variants on an imbalanced classification tree: test figures per variant and seed.

    python benchmarks/imbalance_study.py --name synthetic-defects-lite0 \\
        --recipe RECIPE.yaml [--data TREE] [--seeds 0,1,2] [--set key=value ...] \\
        --variant "old:loss.class_weights=balanced,train.select_metric=val_balanced_accuracy" \\
        --variant "new:"

Each variant is `label:` plus a comma-separated list of `--set` overrides applied on top of the
recipe and the common `--set`s. Without `--data` the tree is made here, as the tests make it
(`tests/clsgen.py`: grey surfaces, `ok` with a faint benign mark on 30% of them, `defect` with a
scratch; overlapping contrasts; train 120:8, val 40:6, test 80:12). For every run: test
accuracy (95% CI), balanced accuracy, macro-F1, per-class precision and recall, the
majority-class baseline, the report's warnings, the best epoch, spikes. Writes
`benchmarks/results/<name>-<date>.json` and `.md`.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results"
REPO = Path(__file__).resolve().parents[1]


def synthetic_tree(root: Path) -> Path:
    sys.path.insert(0, str(REPO / "tests"))
    from clsgen import make_defect_tree

    return make_defect_tree(root, {"train": (120, 8), "val": (40, 6), "test": (80, 12)}, seed=2)


def run_variant(recipe: str, data: Path, overrides: list[str], seed: int, out: Path) -> dict:
    command = [sys.executable, "-m", "edgetl.cli.main", "finetune", recipe, "--data", str(data),
               "--seed", str(seed), "--out", str(out)]
    for item in overrides:
        command += ["--set", item]
    print("$", " ".join(command[2:]), flush=True)
    proc = subprocess.run(command, capture_output=True, text=True, cwd=REPO,
                          env={**os.environ, "COLUMNS": "160"})
    if proc.returncode != 0:
        raise SystemExit(f"finetune failed ({proc.returncode}): {proc.stderr.strip()[-500:]}")
    summary = json.loads((out / "summary.json").read_text())
    test = json.loads((out / "test_metrics.json").read_text())
    return {
        "seed": seed, "overrides": overrides, "best_epoch": summary["best_epoch"],
        "selection": summary["selection"]["metric"],
        "accuracy": test["accuracy"], "accuracy_ci95": test["accuracy_ci95"],
        "balanced_accuracy": test["balanced_accuracy"], "macro_f1": test["macro_f1"],
        "per_class": {k: {"precision": v["precision"], "recall": v["recall"],
                          "support": v["support"]} for k, v in test["per_class"].items()},
        "majority_baseline": test["majority_baseline"], "warnings": test["warnings"],
        "spikes": [{k: s[k] for k in ("phase", "epoch", "reason", "action")}
                   for s in summary["spikes"]],
        "class_weights": summary.get("class_weights"),
        "train_seconds": summary["train_seconds"],
    }


def markdown(report: dict) -> str:
    lines = [f"# {report['name']} ({report['date']})", "",
             f"Recipe `{report['recipe']}`, data `{report['data']}`, common overrides "
             f"`{' '.join(report['common']) or '-'}`; commit {report['commit']}; "
             f"{report['machine']}.", "",
             "| variant | seed | accuracy (95% CI) | baseline | balanced | macro-F1 | "
             "per class P / R | warnings | best epoch | spikes |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for label, runs in report["variants"].items():
        for r in runs:
            lo, hi = r["accuracy_ci95"]
            per = "; ".join(f"{k} {v['precision']:.2f} / {v['recall']:.2f}"
                            for k, v in r["per_class"].items())
            spikes = ", ".join(f"{s['phase']}:{s['action']}" for s in r["spikes"]) or "-"
            lines.append(
                f"| {label} | {r['seed']} | {r['accuracy']:.1%} ({lo:.1%}-{hi:.1%}) | "
                f"{r['majority_baseline']['accuracy']:.1%} | {r['balanced_accuracy']:.1%} | "
                f"{r['macro_f1']:.3f} | {per} | {len(r['warnings'])} | {r['best_epoch']} | "
                f"{spikes} |")
    lines += ["", "| variant | mean accuracy | mean balanced | mean macro-F1 | runs below "
              "baseline |", "|---|---|---|---|---|"]
    for label, runs in report["variants"].items():
        below = sum(r["accuracy"] < r["majority_baseline"]["accuracy"] for r in runs)
        lines.append(f"| {label} | {statistics.mean(r['accuracy'] for r in runs):.1%} | "
                     f"{statistics.mean(r['balanced_accuracy'] for r in runs):.1%} | "
                     f"{statistics.mean(r['macro_f1'] for r in runs):.3f} | {below}/{len(runs)} |")
    lines += ["", "Variants:", ""] + [f"- `{label}`: `{' '.join(o) or '(the recipe as is)'}`"
                                      for label, o in report["overrides"].items()]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--name", required=True)
    parser.add_argument("--recipe", required=True)
    parser.add_argument("--data", type=Path)
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--set", dest="common", action="append", default=[])
    parser.add_argument("--variant", action="append", required=True)
    args = parser.parse_args()
    variants = {}
    for text in args.variant:
        label, _, rest = text.partition(":")
        variants[label] = [item for item in rest.split(",") if item]
    seeds = [int(s) for s in args.seeds.split(",")]
    with tempfile.TemporaryDirectory() as tmp:
        data = args.data or synthetic_tree(Path(tmp) / "tree")
        results = {label: [run_variant(args.recipe, data, args.common + overrides, seed,
                                       Path(tmp) / f"{label}-{seed}")
                           for seed in seeds]
                   for label, overrides in variants.items()}
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True,
                            text=True, cwd=REPO).stdout.strip()
    report = {"name": args.name, "date": dt.date.today().isoformat(), "recipe": args.recipe,
              "data": str(args.data) if args.data else "tests/clsgen.py synthetic defect tree",
              "common": args.common, "overrides": variants, "variants": results,
              "commit": commit,
              "machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, "
                         f"load {os.getloadavg()[0]:.2f}"}
    RESULTS.mkdir(exist_ok=True)
    stem = RESULTS / f"{args.name}-{report['date']}"
    stem.with_suffix(".json").write_text(json.dumps(report, indent=2) + "\n")
    stem.with_suffix(".md").write_text(markdown(report))
    print(markdown(report))


if __name__ == "__main__":
    main()
