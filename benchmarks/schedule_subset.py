"""Does a shipped recipe train enough on a small set? As-is against four times its length.

    python benchmarks/schedule_subset.py --data /path/to/raccoon \
        --recipe recipes/detection-lite0.yaml --name raccoon-detect-lite0 [--runs asis,long]

Issue 27's acceptance: on a 35-image training subset (validation and test exactly as in the
full run), the recipe as shipped reaches at least 95% of the test mAP (detection) or mask mAP
(instance) of the same recipe with every phase four times as long. The split is the one
`edgetl finetune` makes for the full data set (`edgetl data split` with the recipe's
fractions and seed); only its training images are cut, by a seeded sample, to
`--train-images`. Both runs use the real CLI (`edgetl finetune --data SPLIT_FILE`); the
figures come from each run's own test report (`test_metrics.json`) and `summary.json`
(`phases`: steps and `ended_by`). Runs are kept under `--work` and can be made one per call
(`--runs asis`, later `--runs long`); every call rewrites
`benchmarks/results/schedule-subset-<name>-cpu-<date>.json` and `.md` from all runs found.
`--label` names an as-is run made with a changed recipe (say, with `min_steps` floors).
"""

from __future__ import annotations

import argparse
import csv
import datetime as dt
import json
import math
import os
import platform
import random
import subprocess
import sys
import time
from pathlib import Path

import yaml
from machine_info import cpu_name

RESULTS = Path(__file__).resolve().parent / "results"
REPO = Path(__file__).resolve().parents[1]
METRIC = {"detection": "map", "instance": "mask_map"}
SPLIT_FILE = {"detection": ".csv", "instance": ".json"}
THRESHOLD = 0.95


def edgetl(*args: object, log: Path | None = None) -> int:
    """Run the real CLI from the repository root; output to `log` (or inherited)."""
    command = [sys.executable, "-m", "edgetl.cli.main", *map(str, args)]
    print("$", " ".join(command[2:]), flush=True)
    env = {**os.environ, "COLUMNS": "160", "PYTHONPATH": str(REPO)}
    if log is None:
        return subprocess.run(command, cwd=REPO, env=env).returncode
    with log.open("w") as out:
        return subprocess.run(command, cwd=REPO, env=env, stdout=out,
                              stderr=subprocess.STDOUT).returncode


def commit() -> str:
    done = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True,
                          text=True, cwd=REPO)
    dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"],
                           capture_output=True, text=True, cwd=REPO).stdout.strip()
    return done.stdout.strip() + (" (with uncommitted changes)" if dirty else "")


def machine() -> dict[str, object]:
    import torch

    return {"cpu": cpu_name(), "cores": os.cpu_count(), "python": platform.python_version(),
            "torch": torch.__version__, "load_average": list(os.getloadavg())}


def cut_csv(full: Path, out: Path, keep: int, seed: int) -> dict[str, int]:
    """A box/image CSV split file with its training images cut to a seeded sample."""
    with full.open(newline="") as handle:
        reader = csv.DictReader(handle)
        fields, rows = reader.fieldnames or [], list(reader)
    train = sorted({r["path"] for r in rows if r["split"] == "train"})
    chosen = set(random.Random(seed).sample(train, min(keep, len(train))))
    rows = [r for r in rows if r["split"] != "train" or r["path"] in chosen]
    tmp = out.with_suffix(".tmp")
    with tmp.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=fields)
        writer.writeheader()
        writer.writerows(rows)
    tmp.replace(out)
    sizes: dict[str, set[str]] = {}
    for r in rows:
        sizes.setdefault(r["split"], set()).add(r["path"])
    return {k: len(v) for k, v in sorted(sizes.items())}


def cut_coco(full: Path, out: Path, keep: int, seed: int) -> dict[str, int]:
    """A COCO split file (`split` on each image) with its training images cut."""
    data = json.loads(full.read_text())
    train = sorted(im["id"] for im in data["images"] if im.get("split") == "train")
    chosen = set(random.Random(seed).sample(train, min(keep, len(train))))
    data["images"] = [im for im in data["images"]
                      if im.get("split") != "train" or im["id"] in chosen]
    kept = {im["id"] for im in data["images"]}
    data["annotations"] = [a for a in data["annotations"] if a["image_id"] in kept]
    tmp = out.with_suffix(".tmp")
    tmp.write_text(json.dumps(data))
    tmp.replace(out)
    sizes: dict[str, int] = {}
    for im in data["images"]:
        sizes[im.get("split", "?")] = sizes.get(im.get("split", "?"), 0) + 1
    return dict(sorted(sizes.items()))


def full_sizes(full: Path) -> dict[str, int]:
    """Images per split of the full split file."""
    if full.suffix == ".json":
        images = json.loads(full.read_text())["images"]
        names = [(im.get("split", "?"), im["id"]) for im in images]
    else:
        with full.open(newline="") as handle:
            names = [(r["split"], r["path"]) for r in csv.DictReader(handle)]
    sizes: dict[str, set[object]] = {}
    for split, key in names:
        sizes.setdefault(split, set()).add(key)
    return {k: len(v) for k, v in sorted(sizes.items())}


def longer(recipe: dict, factor: int) -> list[str]:
    """`--set` options that make every phase `factor` times as long."""
    sets = []
    for phase in recipe["phases"]:
        for key in ("epochs", "steps", "min_steps", "max_steps"):
            if phase.get(key) is not None:
                sets += ["--set", f"phases.{phase['name']}.{key}={phase[key] * factor}"]
    return sets


def full_set_steps(recipe: dict, train_images: int) -> list[dict[str, object]]:
    """Each phase's steps on the full training split (epochs x steps per epoch)."""
    per_epoch = math.ceil(train_images / recipe["train"]["batch_size"])
    rows = []
    for phase in recipe["phases"]:
        steps = phase.get("steps") or phase.get("epochs", 0) * per_epoch
        rows.append({"phase": phase["name"], "steps": steps, "steps_per_epoch": per_epoch,
                     "min_steps": phase.get("min_steps"),
                     "floor_at_or_below": (phase.get("min_steps") or 0) <= steps})
    return rows


def finetune(recipe_path: Path, split: Path, run: Path, sets: list[str], seed: int
             ) -> dict[str, object]:
    """One real `edgetl finetune`; its figures from the run's own reports."""
    if not (run / "summary.json").is_file():
        run.parent.mkdir(parents=True, exist_ok=True)
        started = time.time()
        code = edgetl("finetune", recipe_path, "--data", split, "--out", run, "--seed", seed,
                      *sets, log=run.parent / f"{run.name}.log")
        (run.parent / f"{run.name}.seconds").write_text(f"{time.time() - started:.1f}\n")
        if code:
            raise SystemExit(f"finetune exited {code}: see {run.parent / (run.name + '.log')}")
    summary = json.loads((run / "summary.json").read_text())
    test = json.loads((run / "test_metrics.json").read_text())
    seconds = float((run.parent / f"{run.name}.seconds").read_text())
    return {"run": str(run), "sets": sets, "minutes": round(seconds / 60, 2),
            "test": test, "best_epoch": summary.get("best_epoch"),
            "train_seconds": summary.get("train_seconds"),
            "phases": [{k: p.get(k) for k in ("phase", "steps", "epochs", "steps_per_epoch",
                                              "planned_steps", "ended_by")}
                       for p in summary.get("phases", [])],
            "recipe": (run / "recipe.yaml").read_text()}


def write(result: dict[str, object]) -> Path:
    """The JSON record and its Markdown table, each written to a temp file then renamed."""
    stem = RESULTS / f"schedule-subset-{result['name']}-cpu-{result['date']}"
    metric = result["metric"]
    lines = [f"# schedule-subset {result['name']} ({result['date']}, commit {result['commit']})",
             "", f"Machine: {result['machine']['cpu']}, {result['machine']['cores']} cores, "
             f"torch {result['machine']['torch']}, python {result['machine']['python']}; "
             f"load average at start {result['machine']['load_average']}.", "",
             f"Recipe `{result['recipe']}`, data `{result['data_name']}`. Split: the full "
             f"run's (`edgetl data split --val {result['fractions'][0]} --test "
             f"{result['fractions'][1]} --seed {result['split_seed']}`, sizes "
             f"{result['full_split']}), training cut to {result['train_images']} images "
             f"(seeded sample, seed {result['subset_seed']}): {result['subset_split']}. "
             f"Training seed {result['split_seed']}. One seed per run.", "",
             f"| run | test {metric} | minutes | best epoch | phases: steps (ended_by) |",
             "|---|---|---|---|---|"]
    for label, run in result["runs"].items():
        phases = ", ".join(f"{p['phase']} {p['steps']} ({p['ended_by']})" for p in run["phases"])
        lines.append(f"| {label} | {run['test'].get(metric, float('nan')):.4f} | "
                     f"{run['minutes']} | {run['best_epoch']} | {phases} |")
    if not result["ratios"]:
        lines += ["", "No 4x run yet (`--runs long`): the ratio is not measured."]
    lines += [""] + [f"- {label}: {r['ratio']:.3f} of the 4x run's test {metric} "
                     f"({'meets' if r['meets'] else 'misses'} {THRESHOLD:.0%})."
                     for label, r in result["ratios"].items()]
    lines += ["", f"Full-set steps per phase (training split {result['full_split'].get('train')}"
              " images): " + ", ".join(
                  f"{p['phase']} {p['steps']} ({p['steps_per_epoch']}/epoch; min_steps "
                  f"{p['min_steps']})" for p in result["full_set_steps"]) + "."]
    lines += ["", "4x run options: `" + " ".join(result["runs"].get("4x", {}).get("sets", []))
              + "`."] if "4x" in result["runs"] else []
    for suffix, text in ((".json", json.dumps(result, indent=2) + "\n"),
                         (".md", "\n".join(lines) + "\n")):
        tmp = stem.with_suffix(suffix + ".tmp")
        tmp.write_text(text)
        tmp.replace(stem.with_suffix(suffix))
    return stem.with_suffix(".md")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, required=True)
    parser.add_argument("--recipe", type=Path, required=True)
    parser.add_argument("--name", required=True)
    parser.add_argument("--train-images", type=int, default=35)
    parser.add_argument("--subset-seed", type=int, default=0)
    parser.add_argument("--factor", type=int, default=4)
    parser.add_argument("--runs", default="asis,long", help="asis, long or both")
    parser.add_argument("--label", default="as-is", help="name of this as-is run")
    parser.add_argument("--work", type=Path, default=REPO / "runs" / "schedule-subset")
    args = parser.parse_args()
    recipe = yaml.safe_load(args.recipe.read_text())
    task = recipe["task"]
    seed = int(recipe.get("train", {}).get("seed", 0))
    fractions = (recipe["data"]["val_fraction"], recipe["data"]["test_fraction"])
    work = args.work / args.name
    work.mkdir(parents=True, exist_ok=True)
    suffix = SPLIT_FILE[task]
    full = work / f"split-full{suffix}"
    if not full.is_file():
        code = edgetl("data", "split", args.data, "--task", task, "--val", fractions[0],
                      "--test", fractions[1], "--seed", seed, "--out", full,
                      log=work / "split.log")
        if code:
            raise SystemExit(f"data split exited {code}: see {work / 'split.log'}")
    subset = work / f"split-{args.train_images}{suffix}"
    cut = cut_coco if suffix == ".json" else cut_csv
    subset_sizes = cut(full, subset, args.train_images, args.subset_seed)
    state_path = work / "runs.json"
    state = json.loads(state_path.read_text()) if state_path.is_file() else {}
    wanted = args.runs.split(",")
    if "asis" in wanted:
        folder = "asis" if args.label == "as-is" else args.label.replace(" ", "-")
        state[args.label] = finetune(args.recipe, subset, work / folder, [], seed)
    if "long" in wanted:
        state["4x"] = finetune(args.recipe, subset, work / "long",
                               longer(recipe, args.factor), seed)
    state_path.write_text(json.dumps(state, indent=2) + "\n")
    metric = METRIC[task]
    ratios = {}
    if "4x" in state:
        reference = state["4x"]["test"][metric]
        ratios = {label: {"ratio": run["test"][metric] / reference,
                          "meets": run["test"][metric] / reference >= THRESHOLD}
                  for label, run in state.items() if label != "4x"}
    sizes = full_sizes(full)
    result = {"name": args.name, "date": dt.date.today().isoformat(), "commit": commit(),
              "machine": machine(), "recipe": str(args.recipe), "task": task,
              "data_name": args.data.name, "metric": metric, "fractions": list(fractions),
              "split_seed": seed, "subset_seed": args.subset_seed,
              "train_images": args.train_images, "full_split": sizes,
              "subset_split": subset_sizes, "factor": args.factor, "runs": state,
              "ratios": ratios, "threshold": THRESHOLD,
              "full_set_steps": full_set_steps(recipe, sizes.get("train", 0))}
    print(write(result).read_text())


if __name__ == "__main__":
    main()
