"""The regression gate: compare a new bench report with a baseline report, row by row.

Rows match on (backend, precision, batch, mode). For each matched row, with o and n the
baseline's and the new run's p50, s_o and s_n their slow-side spreads (p90 - p50), and
f = max(1, ref_new / ref_old) the load factor from the reference workload timed beside each
row (see reference_workload.py; f = 1 when either report lacks it):

    regressed  if  n > o * f * (1 + R) + k * sqrt(s_o**2 + s_n**2)    (R = --max-regression,
                                                                     k = SPREAD_K = 1)

Why this rule:
- the median is robust to the occasional preempted call; R is what the user accepts;
- the spread term is what the two runs say about their own noise, so a jittery run widens the
  allowance instead of failing the build. p90 - p50 rather than the standard deviation because
  latency is skewed to the slow side and a few very slow calls inflate a standard deviation
  without moving the median;
- the load factor covers what no single run can see: the whole machine being slower during the
  new run than during the baseline (another job on a shared CI runner or dev box). On this
  2-core machine shared by other jobs, Lite0's single-thread p50 swung from 12 to 22 ms between
  two back-to-back runs of the same file; the reference workload sees such swings (its mean per
  call rises with load), so they widen the allowance by exactly the measured slowdown. It only
  ever widens: a machine that looks faster never makes the gate stricter than R;
- a real slowdown (a larger model, half the threads on a quiet machine, a lost kernel) moves
  the row's p50 but not the reference, so it stays above the threshold.
Each row reports `detectable`, the smallest relative slowdown it could have caught, so a gate
that a noisy run made toothless says so.

With `--normalize` in both reports, rows compare `p50_norm` (p50 / ref_ms) both ways, with the
spreads carried into ratio units; that is how a baseline from a faster or slower machine
compares. With it on one side only, milliseconds are compared and the report says so.

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

GATE_RULE = ("regressed if new_p50 > old_p50 * f * (1 + R) + k * sqrt(old_spread^2 + "
             "new_spread^2); spread = p90 - p50, k = 1, f = max(1, new ref_ms / old ref_ms) "
             "(machine load measured beside each row); baseline rows missing from the new run "
             "fail")


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
    load_factor: float | None = None  # max(1, new ref_ms / old ref_ms)
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["key"] = dict(zip(ROW_KEY, self.key, strict=True))
        for name in ("old", "new", "ratio", "threshold", "detectable", "load_factor"):
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


def _value_and_spread(row: dict[str, Any], normalized: bool) -> tuple[float, float]:
    p50 = float(row["p50_ms"])
    spread = max(float(row.get("spread_ms", row["p90_ms"] - row["p50_ms"])), 0.0)
    if not normalized:
        return p50, spread
    ref = float(row["ref_ms"])
    ref_spread = abs(float(row.get("ref_before_ms", ref)) - float(row.get("ref_after_ms", ref))) / 2
    value = p50 / ref
    relative = math.hypot(spread / p50 if p50 else 0.0, ref_spread / ref)
    return value, value * relative


def load_factor(old: dict[str, Any], new: dict[str, Any]) -> float:
    """max(1, new ref_ms / old ref_ms): how much slower the machine measured during the new row."""
    try:
        return max(1.0, float(new["ref_ms"]) / float(old["ref_ms"]))
    except (KeyError, TypeError, ValueError, ZeroDivisionError):
        return 1.0


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
    normalized = all(bool(r.get("normalization")) and all("ref_ms" in row for row in r["rows"])
                     for r in (baseline, new))
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
        o, s_o = _value_and_spread(old, normalized)
        n, s_n = _value_and_spread(cur, normalized)
        noise = spread_k * math.hypot(s_o, s_n)
        factor = 1.0 if normalized else load_factor(old, cur)
        threshold = o * factor * (1 + max_regression) + noise
        status = "ok"
        if n > threshold:
            status = "regressed"
        elif n < o * (1 - max_regression) - noise:
            status = "faster"
        comp = RowComparison(key, status, metric, old=o, new=n, ratio=n / o if o else None,
                             threshold=threshold, detectable=threshold / o - 1 if o else None)
        comp.load_factor = factor
        if factor > 1.2:
            comp.notes.append(f"load x{factor:.2f}")
        if old.get("threads") != cur.get("threads"):
            comp.notes.append(f"threads {old.get('threads')} -> {cur.get('threads')}")
        rows.append(comp)
        if status == "regressed":
            unit = "" if normalized else " ms"
            failures.append(f"{key_text(key)} regressed: p50 {o:.4g}{unit} -> {n:.4g}{unit} "
                            f"(x{n / o:.2f}; allowed up to {threshold:.4g}{unit} = "
                            f"+{max_regression:.0%}"
                            + (f" x{factor:.2f} machine load" if factor > 1.0 else "")
                            + " and the runs' spread)")
    for key in new_rows:
        if key not in old_rows:
            rows.append(RowComparison(key, "new", metric, new=new_rows[key].get(metric)))
    if not failures and not any(r.status in ("ok", "regressed", "faster") for r in rows):
        # --allow-missing with no row in common: nothing was compared, so nothing passed
        failures.append("no row of this run matches a baseline row (backend, precision, batch, "
                        "mode): the gate compared nothing")
    return Comparison(max_regression=max_regression, spread_k=spread_k, metric=metric,
                      rows=rows, notes=notes, failures=failures, baseline_path=baseline_path)
