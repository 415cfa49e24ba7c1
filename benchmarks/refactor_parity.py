"""Same seed, same figures: one phase-A epoch per dense task, exported and verified, compared.

    python benchmarks/refactor_parity.py --data-root ../shared/datasets --out /tmp/parity-before
    python benchmarks/refactor_parity.py --data-root ../shared/datasets --out /tmp/parity-after \
        --compare /tmp/parity-before/parity.json --name refactor-parity

A refactor must change no figure. For raccoon (detection), CamVid (semantic) and nuclei
(instance) this trains each shipped recipe for one phase-A epoch on its fixed seed, exports
onnx and onnx-int8, verifies both against the run, and keeps every figure that is not a clock
reading: validation lines of metrics.jsonl, test metrics, verify checks and exit codes, and the
int8 manifest's float-node choice. With --compare it lists every difference against an earlier
record and writes `benchmarks/results/<name>-cpu-<date>.{json,md}`. Not a timed test.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

from machine_info import cpu_name

RESULTS = Path(__file__).resolve().parent / "results"
REPO = Path(__file__).resolve().parents[1]
# Each data set with its shipped recipe; later names first, so the script outlives a rename.
CASES = {
    "raccoon": ("raccoon", ["recipes/detection-lite0.yaml", "recipes/detect-lite0.yaml"]),
    "camvid": ("camvid", ["recipes/semantic-lite0.yaml"]),
    "nuclei": ("nuclei", ["recipes/instance-mobilenetv2.yaml"]),
}
ONE_EPOCH = ["phases.A.epochs=1", "phases.B.epochs=0", "phases.C.epochs=0"]
FORMATS = {"onnx": "model.onnx", "onnx-int8": "model.int8-qdq.onnx"}
# Clock readings, paths, versions, and the artifact file's own bytes (a newer commit may write
# one more metadata field): none of them is a figure of the model.
CLOCK = re.compile(r"(second|_s$|_ms$|time|date|elapsed|duration|load_average|path|created|"
                   r"started|finished|host|version|commit|^run$|^artifact$|^out|^data$|^target$|"
                   r"sha256|size_bytes)", re.I)


def edgetl(*args: object) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "edgetl.cli.main", *map(str, args)]
    print("$", " ".join(command[2:]), flush=True)
    return subprocess.run(command, capture_output=True, text=True, cwd=REPO,
                          env={**os.environ, "COLUMNS": "160"})


def without_clocks(value: Any) -> Any:
    """The value with every clock reading, path and version left out, recursively."""
    if isinstance(value, dict):
        return {k: without_clocks(v) for k, v in value.items() if not CLOCK.search(str(k))}
    if isinstance(value, list):
        return [without_clocks(v) for v in value]
    return value


def read_json(path: Path) -> Any:
    return json.loads(path.read_text()) if path.is_file() else None


def int8_choice(export: Path) -> Any:
    """What the int8 manifest says was kept float, whatever the manifest's file name."""
    for path in sorted(export.glob("model.int8-qdq*.json")):
        data = read_json(path)
        if isinstance(data, dict):
            return without_clocks({k: v for k, v in data.items()
                                   if "float" in k or "int8" in k or "quant" in k})
    return None


def run_case(name: str, data: Path, recipes: list[str], out: Path) -> dict[str, Any]:
    recipe = next(r for r in recipes if (REPO / r).is_file())
    run = out / name
    sets = [a for s in ONE_EPOCH for a in ("--set", s)]
    done = edgetl("finetune", recipe, "--data", data, "--out", run, *sets)
    record: dict[str, Any] = {"recipe": recipe, "finetune_exit": done.returncode}
    if done.returncode:
        record["error"] = (done.stderr.strip().splitlines() or [""])[-1]
        return record
    lines = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()
             if line.strip()]
    record["metrics"] = without_clocks(lines)
    record["test"] = without_clocks(read_json(run / "test_metrics.json"))
    verified: dict[str, Any] = {}
    for fmt, filename in FORMATS.items():
        exported = edgetl("export", run, "--format", fmt)
        artifact = run / "export" / filename
        report = run / "export" / f"verify-{fmt}.json"
        checked = edgetl("verify", artifact, "--against", run, "--json", report)
        verified[fmt] = {"export_exit": exported.returncode, "verify_exit": checked.returncode,
                         "report": without_clocks(read_json(report))}
    verified["onnx-int8"]["manifest"] = int8_choice(run / "export")
    record["verify"] = verified
    return record


# Modules that moved between the two commits: a path named in a report is not a figure.
MOVED = {"edgetl.data.reference": "edgetl.artifact.reference",
         "edgetl.export.manifest": "edgetl.artifact.manifest",
         "edgetl.export.formats": "edgetl.artifact.formats"}
ABSENT = object()


def _same_text(value: Any) -> Any:
    if isinstance(value, str):
        for old, new in MOVED.items():
            value = value.replace(old, new)
    return value


def differences(old: Any, new: Any, where: str = "") -> list[str]:
    """Every place where two records differ, as `path: old -> new`; a key only the newer
    record has is listed as `path: added` (a new field is not a changed figure)."""
    if isinstance(old, dict) and isinstance(new, dict):
        found: list[str] = []
        for key in sorted(set(old) | set(new)):
            if key not in old:
                found.append(f"{where}.{key}: added")
                continue
            found += differences(old[key], new.get(key, ABSENT), f"{where}.{key}")
        return found
    if isinstance(old, list) and isinstance(new, list) and len(old) == len(new):
        return [d for i, (a, b) in enumerate(zip(old, new, strict=True))
                for d in differences(a, b, f"{where}[{i}]")]
    if new is ABSENT:
        return [f"{where}: removed"]
    if _same_text(old) == _same_text(new):
        return []
    return [f"{where}: {json.dumps(old)[:120]} -> {json.dumps(new)[:120]}"]


def changed(found: list[str]) -> list[str]:
    """The differences that are changed values, not added fields."""
    return [d for d in found if not d.endswith(": added")]


def commit() -> str:
    done = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True,
                          text=True, cwd=REPO)
    return done.stdout.strip()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-root", type=Path, required=True)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--cases", default=",".join(CASES))
    parser.add_argument("--compare", type=Path, help="an earlier parity.json")
    parser.add_argument("--name", default="refactor-parity")
    parser.add_argument("--recorded", action="store_true",
                        help="compare OUT/parity.json as it is, without running anything")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    record = {"date": dt.date.today().isoformat(), "commit": commit(), "cpu": cpu_name(),
              "cores": os.cpu_count(), "cases": {}}
    if args.recorded:
        record = json.loads((args.out / "parity.json").read_text())
    for name in [] if args.recorded else args.cases.split(","):
        folder, recipes = CASES[name]
        record["cases"][name] = run_case(name, (args.data_root / folder).resolve(), recipes,
                                         args.out)
        (args.out / "parity.json").write_text(json.dumps(record, indent=2) + "\n")
    if not args.compare:
        print(f"wrote {args.out / 'parity.json'}")
        return
    before = json.loads(args.compare.read_text())
    before["cases"] = without_clocks(before["cases"])
    record["cases"] = without_clocks(record["cases"])
    diff = {name: differences({k: v for k, v in before["cases"].get(name, {}).items()
                               if k != "recipe"},
                              {k: v for k, v in case.items() if k != "recipe"})
            for name, case in record["cases"].items()}
    result = {"before": {"commit": before["commit"], "date": before["date"]},
              "after": {"commit": record["commit"], "date": record["date"]},
              "cpu": record["cpu"], "cores": record["cores"], "differences": diff,
              "cases": record["cases"]}
    RESULTS.mkdir(exist_ok=True)
    stem = RESULTS / f"{args.name}-cpu-{record['date']}"
    stem.with_suffix(".json").write_text(json.dumps(result, indent=2) + "\n")
    lines = [f"# {args.name}: commit {before['commit']} against {record['commit']}", "",
             f"{record['cpu']}, {record['cores']} cores, {record['date']}. Each case: the "
             "shipped recipe, one phase-A epoch (`--set " + " ".join(ONE_EPOCH) + "`), "
             "seed 0, exported to onnx and onnx-int8 and verified against the run.", ""]
    for name, found in diff.items():
        case = record["cases"][name]
        lines.append(f"## {name} ({case.get('recipe')})")
        lines.append("- verify exits: " + ", ".join(
            f"{fmt} {v['verify_exit']}" for fmt, v in case.get("verify", {}).items()))
        lines.append(f"- changed values: {len(changed(found))}; fields only the newer commit "
                     f"writes: {len(found) - len(changed(found))}")
        lines += [f"  - {d}" for d in found[:60]]
        lines.append("")
    stem.with_suffix(".md").write_text("\n".join(lines))
    print(stem.with_suffix(".md").read_text())
    sys.exit(1 if any(changed(found) for found in diff.values()) else 0)


if __name__ == "__main__":
    main()
