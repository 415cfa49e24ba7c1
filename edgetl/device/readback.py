"""`edgetl verify --device-report`: a device's report read back on the training machine.

The report must be sealed (its sha256 over its own content), belong to the run (the weights
the artifact came from, the spec and labels fingerprints), and pass verify's gates re-applied
here with this machine's budget table, not the device's copy of them. Its latency rows take the
shape of `edgetl bench` rows, so `bench --baseline` and `--max-regression` gate them too.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from edgetl.device.runner import REPORT_SCHEMA, canonical_sha256
from edgetl.errors import UsageError
from edgetl.verify.checks import CheckResult


def load_device_report(path: str | Path) -> dict[str, Any]:
    """The report, checked as JSON of the device schema (else a usage error, exit 2)."""
    path = Path(path)
    try:
        report = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise UsageError(f"cannot read device report {path}: {exc}") from exc
    if not isinstance(report, dict) or report.get("schema") != REPORT_SCHEMA:
        raise UsageError(f"{path} is not an edgetl device report",
                         "pass the JSON the bundle's run.py wrote")
    return report


def check_report(report: dict[str, Any], run: str | Path, agreement: float | None = None,
                 drop: float | None = None) -> list[CheckResult]:
    """Seal, provenance against the run, then every device check re-judged with this
    machine's budgets (`agreement` / `drop`: verify's flags, None for the defaults)."""
    from edgetl import tasks
    from edgetl.checkpoint import read_checkpoint_info

    checks = []
    sealed = report.get("report_sha256") == canonical_sha256(report, "report_sha256")
    checks.append(CheckResult("report", sealed, "sealed by the device" if sealed else
                              "the report was edited after the device wrote it (its sha256 "
                              "differs)", {}))
    prov = report["provenance"]
    info = read_checkpoint_info(run, prov["source_checkpoint"])
    problems = []
    weights = info.record.get("weights_sha256") or info.weights_sha256()
    theirs = str(prov["source_weights_sha256"])
    if theirs != weights:
        problems.append(f"the artifact came from other weights ({theirs[:12]}) than this "
                        f"run's {prov['source_checkpoint']}/ ({weights[:12]})")
    if prov["labels_fingerprint"] != info.task_record.fingerprint():
        problems.append("the labels differ from the run's")
    checks.append(CheckResult("provenance", not problems, "; ".join(problems) or
                              f"artifact {prov['artifact_sha256'][:12]} from this run's "
                              f"{prov['source_checkpoint']}/ weights {weights[:12]}", prov))
    task = tasks.get(info.task_record.task)
    table, judge = task.load("verify_budgets"), task.load("device_judge")
    budgets = table.pick(report["format"], report["precision"], agreement, drop)
    for row in report["checks"]:
        checks.append(CheckResult(row["name"], row["passed"], row["summary"], row["details"]))
    if not report["backends"]:
        checks.append(CheckResult("backends", False, "the device ran no backend", {}))
    for backend, result in report["backends"].items():
        for row in result["checks"]:
            here = "error" in row["details"] or judge(row["name"], row["details"], budgets)
            summary = row["summary"] if here else (
                f"{row['summary']}; fails this machine's budget (give verify the "
                "--agreement-budget / --metric-drop-budget the bundle was made with)")
            checks.append(CheckResult(f"{backend}/{row['name']}", row["passed"] and here,
                                      summary, row["details"]))
    return checks


def as_bench_report(report: dict[str, Any]) -> dict[str, Any]:
    """The device's latency as an `edgetl bench` report (batch 1, compute mode)."""
    from edgetl.bench import REPORT_SCHEMA as BENCH_SCHEMA

    prov, env = report["provenance"], report["environment"]
    rows = [{"backend": backend, "precision": report["precision"], "batch": 1,
             "mode": "compute", **row["latency"],
             "spread_ms": row["latency"]["p90_ms"] - row["latency"]["p50_ms"]}
            for backend, row in report["backends"].items() if "latency" in row]
    return {"schema": BENCH_SCHEMA, "rows": rows,
            "artifact": {"sha256": prov["artifact_sha256"], "format": report["format"],
                         "spec_fingerprint": prov["spec_fingerprint"]},
            "env": env}


def load_baseline(path: str | Path) -> dict[str, Any]:
    """A bench baseline: a bench report, or a device report read as one."""
    from edgetl.bench.compare import load_report

    try:
        schema = json.loads(Path(path).read_text()).get("schema")
    except (OSError, ValueError, AttributeError):
        schema = None
    if schema == REPORT_SCHEMA:
        return as_bench_report(load_device_report(path))
    return load_report(path)


def environment_line(report: dict[str, Any]) -> str:
    """The device in one line: CPU, OS, Python, runtimes."""
    env = report["environment"]
    cpu = env.get("cpu") or {}
    gpus = ", ".join(g.get("name", "?") for g in env.get("gpus") or []) or "no GPU"
    versions = env.get("versions") or {}
    packages = ", ".join(f"{k} {v}" for k, v in versions.items() if v and k != "python")
    return (f"device: {cpu.get('model')} ({cpu.get('usable_cores')} usable cores, "
            f"{' '.join(cpu.get('flags') or [])}), {gpus}, {env.get('platform')}, Python "
            f"{versions.get('python')}; {packages}")
