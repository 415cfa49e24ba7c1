"""`--calibration-method auto`: which activation calibration an int8 export uses, chosen by the
task's int8 judge on the validation split.

Each method (min-max, percentile, entropy) quantises the graph with nothing kept float; the
judge the float-layer search uses (`int8_search.make_judge`) scores each candidate, and the
best one is kept for the search. Near-ties (within `NEAR_TIE_POINTS`) go to the earlier method
of `PREFERENCE`, so a run where min-max is as good keeps the graph min-max gives. Without a
figure to compare (no validation split, or `int8_target_agreement` 0) min-max is used
unmeasured. Each method calibrates once (its own calibration cache): onnxruntime's min-max
calibrator reduces each tensor inside the augmented graph while the histogram calibrators read
whole activations, so the passes over the calibration images cannot be shared.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

AUTO = "auto"
PREFERENCE = ("minmax", "percentile", "entropy")  # also the tie order
NEAR_TIE_POINTS = 0.1  # judge figures (points) this close count as equal
META_INT8_CALIBRATION = "edgetl.int8_calibration_method"  # the method the artifact used


@dataclass
class MethodChoice:
    """The method used, and what each candidate method scored (empty: nothing compared)."""

    method: str
    candidates: list[dict[str, Any]] = field(default_factory=list)
    why: str = "given (--calibration-method)"

    def record(self) -> dict[str, Any]:
        """The export report's entries (details.quantization)."""
        return {"calibration_method": self.method, "calibration_choice": self.why,
                "calibration_candidates": self.candidates}

    def metadata(self) -> dict[str, str]:
        """The artifact's own key (ONNX metadata_props, IR rt_info)."""
        return {META_INT8_CALIBRATION: self.method}


def choose_method(requested: str, candidate: Callable[[str], Path], judge: Any,
                  methods: tuple[str, ...] = PREFERENCE) -> MethodChoice:
    """The method to quantise with: `requested` unless it is `auto`; then every method's
    fully quantised graph (`candidate(method)`, which writes it) scored by `judge.row` and
    `judge.score`, the best kept (near-ties to the earlier of `methods`)."""
    if requested != AUTO:
        return MethodChoice(requested)
    if not judge.compares:
        return MethodChoice(methods[0], why="auto, not compared (the graph is not judged)")
    rows = []
    for method in methods:
        started = time.perf_counter()
        row = judge.row(candidate(method))
        rows.append({"method": method, "score_points": judge.score(row), **row,
                     "seconds": round(time.perf_counter() - started, 2)})
    scored = [r for r in rows if r["score_points"] is not None]
    if not scored:
        return MethodChoice(methods[0], rows, "auto, not compared (no validation figures)")
    best = max(r["score_points"] for r in scored)
    chosen = next(r for r in scored if r["score_points"] >= best - NEAR_TIE_POINTS)
    return MethodChoice(chosen["method"], rows,
                        f"auto, best {judge.score_words} on validation")


def choice_words(quantization: dict[str, Any]) -> str:
    """The CLI summary's words for the method of an export report's quantization record."""
    method = quantization["calibration_method"]
    why = quantization.get("calibration_choice")
    candidates = quantization.get("calibration_candidates") or []
    if not why:
        return method
    figures = ", ".join(f"{c['method']} {c['score_points']:.2f}"
                        if c["score_points"] is not None else f"{c['method']} -"
                        for c in candidates)
    return f"{method}, {why}" + (f": {figures}" if figures else "")
