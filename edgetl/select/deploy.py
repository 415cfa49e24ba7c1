"""Confirm the pick: export the trained candidate as it would be deployed, and time that.

The latency probe times untrained networks, fully quantised for int8. A trained network can
quantise worse: the int8 export's accuracy search may keep layers float (slower) or miss
verify's agreement budget altogether. So before a candidate is named the pick, its trained run
is exported in the chosen precision with the ordinary exporter, the search's verdict is read
from the manifest, and the artifact is timed with the same bench settings as the probe. A
candidate that fails either test falls back to its next precision within budget, or out.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from edgetl.select.config import SelectConfig

DEPLOY_FOLDER = "deploy"


def confirm_deployment(run: Path, precision: str, fmt: str, folder: Path,
                       config: SelectConfig) -> dict[str, Any]:
    """Export `run` as `fmt`, time it; the record says whether it is deployable and why not."""
    from edgetl.bench.report import write_json
    from edgetl.bench.runner import run_bench
    from edgetl.export import ExportOptions, export_run

    folder.mkdir(parents=True, exist_ok=True)
    # the export's own defaults (256 calibration images, the accuracy search): what
    # `edgetl export` would ship, not the probe's 16-image calibration
    exported = export_run(run, fmt, out=folder, options=ExportOptions())
    manifest = json.loads(Path(f"{exported.path}.manifest.json").read_text())
    search = ((manifest.get("details") or {}).get("quantization") or {}).get("accuracy_search")
    timing = config.bench_config(exported.path)
    stat = config.budget_on
    result = run_bench(timing)
    row = result.report["rows"][0]
    retimed = None
    if row.get("noisy") and row[f"{stat}_ms"] > config.budget_ms:
        # a noisy measurement over budget is timed once more; the quieter one counts (a busy
        # machine only ever adds time), and both are recorded
        again = run_bench(timing)
        retimed = {"first_p50_ms": row["p50_ms"], "first_p90_ms": row["p90_ms"],
                   "first_cv": row.get("cv")}
        if again.report["rows"][0][f"{stat}_ms"] < row[f"{stat}_ms"]:
            result, row = again, again.report["rows"][0]
    report = write_json(result.report, folder / f"bench-{precision}.json")
    record: dict[str, Any] = {
        "precision": precision, "format": fmt, "artifact": str(exported.path),
        "p50_ms": row["p50_ms"], "p90_ms": row["p90_ms"], "cv": row.get("cv"),
        "retimed": retimed, "bench_report": str(report),
        "accuracy_search_met": None if search is None else bool(search.get("met")),
        "float_nodes": None,
    }
    if search is not None:
        float_nodes = manifest["details"]["quantization"].get("float_nodes") or {}
        record["float_nodes"] = len(float_nodes.get("nodes") or [])
    record["deployable"], record["reason"] = deployment_verdict(record, config.budget_ms, stat)
    return record


def deployment_verdict(record: dict[str, Any], budget_ms: float, stat: str
                       ) -> tuple[bool, str | None]:
    """(deployable, why not): the int8 search must have met verify's agreement budget and the
    trained artifact must still be within the latency budget."""
    if record.get("accuracy_search_met") is False:
        return False, (f"its trained {record['precision']} export misses verify's top-1 "
                       "agreement budget (the int8 accuracy search did not meet it)")
    measured = record[f"{stat}_ms"]
    if measured > budget_ms:
        return False, (f"its trained {record['precision']} artifact measured {stat} "
                       f"{measured:.2f} ms > {budget_ms:.2f} ms")
    return True, None
