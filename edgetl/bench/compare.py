"""The regression gate: compare a new bench report with a baseline report, row by row.

Rows match on (backend, precision, batch, mode). For each matched row, with o and n the
baseline's and the new run's p50 and s_o, s_n their slow-side spreads (p90 - p50):

    regressed  if  n > o * (1 + R) + k * sqrt(s_o**2 + s_n**2)        (R = --max-regression,
                                                                       k = SPREAD_K = 1)

Why this rule: the median is robust to the occasional preempted call; the allowance R is what
the user accepts; the spread term is what the two runs themselves say about their noise, so a
busy or noisy machine widens the allowance instead of failing the build, while a real slowdown
(a larger model, half the threads, a lost kernel: tens of percent or more) is far above both.
p90 - p50 rather than the standard deviation because latency is skewed to the slow side and a
few very slow calls would inflate a standard deviation without moving the median; it uses only
fields every report has. Each row also reports `detectable`, the relative slowdown it could
catch, so a gate too noisy to mean much says so.

With `--normalize` in both reports, rows compare `p50_norm` (p50 / the reference workload's
p50, measured in the same run) and the spread terms are propagated into ratio units, so a
baseline from a faster or slower machine compares by ratio. With it on one side only, raw
milliseconds are compared and the report says so.

Rows the baseline has and the new run lacks FAIL the gate (unless `allow_missing`): a CI job
that silently stops measuring something is how regressions slip through. Rows only in the new
run are listed as new. A baseline of another artifact (different sha256) is compared and the
difference is stated (re-exported or retrained models are what CI gates); a baseline with a
different preprocessing spec fingerprint FAILS unless `allow_different_spec`, because a
different input size or layout makes the latencies incomparable.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from edgetl.bench import REPORT_SCHEMA
from edgetl.errors import UsageError

SPREAD_K = 1.0
ROW_KEY = ("backend", "precision", "batch", "mode")

GATE_RULE = ("regressed if new_p50 > old_p50 * (1 + R) + k * sqrt(old_spread^2 + new_spread^2), "
             "spread = p90 - p50, k = 1; baseline rows missing from the new run fail")


def row_key(row: dict[str, Any]) -> tuple[Any, ...]:
    return tuple(row.get(k) for k in ROW_KEY)


def key_text(key: tuple[Any, ...]) -> str:
    backend, precision, batch, mode = key
    return f"{backend} {precision} batch {batch} {mode}"


def load_report(path: str | Path) -> dict[str, Any]:
    """A bench JSON report, checked for the fields the gate needs."""
    path = Path(path)
    if not path.is_file():
        raise UsageError(f"baseline report not found: {path}",
                         "pass a JSON file written by 'edgetl bench --json'")
    try:
        report = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise UsageError(f"baseline {path} is not valid JSON: {exc}") from exc
    if not isinstance(report, dict) or report.get("schema") != REPORT_SCHEMA:
        raise UsageError(f"baseline {path} is not an edgetl bench report (schema "
                         f"{report.get('schema') if isinstance(report, dict) else None!r}, "
                         f"expected {REPORT_SCHEMA!r})")
    for row in report.get("rows") or []:
        missing = [k for k in (*ROW_KEY, "p50_ms", "p90_ms") if k not in row]
        if missing:
            raise UsageError(f"baseline {path} has a row without {', '.join(missing)}")
    return report


@dataclass
class RowComparison:
    key: tuple[Any, ...]
    status: str  # ok, regressed, faster, missing, new
    metric: str = "p50_ms"
    old: float | None = None
    new: float | None = None
    ratio: float | None = None  # new / old
    threshold: float | None = None  # the largest new value that still passes
    detectable: float | None = None  # threshold / old - 1: the smallest slowdown it can catch
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["key"] = dict(zip(ROW_KEY, self.key, strict=True))
        for name in ("old", "new", "ratio", "threshold", "detectable"):
            if data[name] is not None:
                data[name] = round(data[name], 6)
        return data


@dataclass
class Comparison:
    max_regression: float
    spread_k: float
    metric: str
    rows: list[RowComparison]
    notes: list[str]
    failures: list[str]
    baseline_path: str | None = None

    @property
    def passed(self) -> bool:
        return not self.failures

    def to_dict(self) -> dict[str, Any]:
        return {
            "baseline": self.baseline_path, "passed": self.passed, "rule": GATE_RULE,
            "max_regression": self.max_regression, "spread_k": self.spread_k,
            "metric": self.metric, "notes": self.notes, "failures": self.failures,
            "rows": [r.to_dict() for r in self.rows],
        }

    def failure_line(self) -> str:
        return "bench regression gate failed: " + "; ".join(self.failures)


def _value_and_spread(row: dict[str, Any], report: dict[str, Any], normalized: bool
                      ) -> tuple[float, float]:
    p50 = float(row["p50_ms"])
    spread = max(float(row.get("spread_ms", row["p90_ms"] - row["p50_ms"])), 0.0)
    if not normalized:
        return p50, spread
    ref = report["normalization"]
    ref_p50 = float(ref["p50_ms"])
    ref_spread = max(float(ref.get("spread_ms", 0.0)), 0.0)
    value = p50 / ref_p50
    relative = math.hypot(spread / p50 if p50 else 0.0, ref_spread / ref_p50)
    return value, value * relative


def _artifact_notes(old: dict[str, Any], new: dict[str, Any], allow_different_spec: bool
                    ) -> tuple[list[str], list[str]]:
    notes: list[str] = []
    failures: list[str] = []
    a, b = old.get("artifact") or {}, new.get("artifact") or {}
    if a.get("spec_fingerprint") != b.get("spec_fingerprint"):
        text = (f"different preprocessing spec: baseline {str(a.get('spec_fingerprint'))[:12]} "
                f"vs new {str(b.get('spec_fingerprint'))[:12]} (input size or layout may differ)")
        if allow_different_spec:
            notes.append(text + "; compared anyway (--allow-different-spec)")
        else:
            failures.append(text + "; pass --allow-different-spec to compare anyway")
    if a.get("sha256") != b.get("sha256"):
        notes.append(f"different artifact: baseline {a.get('name')} sha256 "
                     f"{str(a.get('sha256'))[:12]} ({a.get('architecture')}, {a.get('format')}) "
                     f"vs new {b.get('name')} sha256 {str(b.get('sha256'))[:12]} "
                     f"({b.get('architecture')}, {b.get('format')})")
    return notes, failures


def _env_notes(old: dict[str, Any], new: dict[str, Any]) -> list[str]:
    notes = []
    ea, eb = old.get("env") or {}, new.get("env") or {}
    cpu_a, cpu_b = (ea.get("cpu") or {}).get("model"), (eb.get("cpu") or {}).get("model")
    if cpu_a != cpu_b:
        notes.append(f"different CPU: baseline {cpu_a!r} vs new {cpu_b!r} (use --normalize on "
                     "both runs to compare machines by ratio)")
    gpus_a = [g.get("name") for g in ea.get("gpus") or []]
    gpus_b = [g.get("name") for g in eb.get("gpus") or []]
    if gpus_a != gpus_b:
        notes.append(f"different GPUs: baseline {gpus_a or 'none'} vs new {gpus_b or 'none'}")
    va, vb = ea.get("versions") or {}, eb.get("versions") or {}
    changed = [f"{k} {va.get(k)} -> {vb.get(k)}" for k in sorted(set(va) | set(vb))
               if k != "edgetl" and va.get(k) != vb.get(k)]
    if changed:
        notes.append("different versions: " + ", ".join(changed))
    return notes


def compare_reports(baseline: dict[str, Any], new: dict[str, Any], max_regression: float,
                    *, spread_k: float = SPREAD_K, allow_missing: bool = False,
                    allow_different_spec: bool = False, baseline_path: str | None = None
                    ) -> Comparison:
    """Apply the gate rule (module docstring) to every row; nothing raises here."""
    if max_regression < 0:
        raise UsageError(f"--max-regression must be >= 0, got {max_regression}")
    normalized = bool(baseline.get("normalization")) and bool(new.get("normalization"))
    notes, failures = _artifact_notes(baseline, new, allow_different_spec)
    notes += _env_notes(baseline, new)
    if bool(baseline.get("normalization")) != bool(new.get("normalization")):
        notes.append("--normalize was used on one side only: comparing raw milliseconds")
    metric = "p50_norm" if normalized else "p50_ms"
    old_rows = {row_key(r): r for r in baseline.get("rows") or []}
    new_rows = {row_key(r): r for r in new.get("rows") or []}
    rows: list[RowComparison] = []
    for key, old in old_rows.items():
        cur = new_rows.get(key)
        if cur is None:
            rows.append(RowComparison(key, "missing", metric, old=old.get(metric)))
            text = f"{key_text(key)} is in the baseline but was not measured"
            if allow_missing:
                notes.append(text + " (--allow-missing)")
            else:
                failures.append(text)
            continue
        o, s_o = _value_and_spread(old, baseline, normalized)
        n, s_n = _value_and_spread(cur, new, normalized)
        noise = spread_k * math.hypot(s_o, s_n)
        threshold = o * (1 + max_regression) + noise
        status = "ok"
        if n > threshold:
            status = "regressed"
        elif n < o * (1 - max_regression) - noise:
            status = "faster"
        comp = RowComparison(key, status, metric, old=o, new=n, ratio=n / o if o else None,
                             threshold=threshold, detectable=threshold / o - 1 if o else None)
        if old.get("threads") != cur.get("threads"):
            comp.notes.append(f"threads {old.get('threads')} -> {cur.get('threads')}")
        rows.append(comp)
        if status == "regressed":
            unit = "" if normalized else " ms"
            failures.append(f"{key_text(key)} regressed: p50 {o:.4g}{unit} -> {n:.4g}{unit} "
                            f"(x{n / o:.2f}; allowed up to {threshold:.4g}{unit} = "
                            f"+{max_regression:.0%} and the runs' spread)")
    for key in new_rows:
        if key not in old_rows:
            rows.append(RowComparison(key, "new", metric, new=new_rows[key].get(metric)))
    return Comparison(max_regression=max_regression, spread_k=spread_k, metric=metric,
                      rows=rows, notes=notes, failures=failures, baseline_path=baseline_path)
