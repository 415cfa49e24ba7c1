"""The checks `verify` runs. Each returns a `CheckResult`; none raises on a failed gate.

- spec: the artifact's embedded spec has the run's fingerprint (graph_input aside for
  embedded-preprocessing artifacts), else the differing fields are named;
- labels: same class names in the same order;
- source: the artifact came from this run's checkpoint weights and is byte-identical to what
  export wrote (sha256 against its manifest);
- preprocessing: the deployment reference (numpy/PIL, what `predict` runs) against the
  training evaluation transform (torchvision), per image, in 0-255 units, before and after
  normalisation;
- parity: artifact logits against the PyTorch model's on the same images;
- accuracy: artifact against PyTorch model on the split, McNemar's exact test on the
  discordant pairs, per-class deltas.
Parity and accuracy judge decisions: argmax, or the operating point an artifact carries
(`edgetl.decision`), applied to both sides alike.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from edgetl.artifact.manifest import META_SPEC_FINGERPRINT, ArtifactInfo
from edgetl.checkpoint import CheckpointInfo
from edgetl.decision import OperatingPoint, logits_decider
from edgetl.io import sha256_file
from edgetl.spec import PreprocessSpec, TaskRecord

GOLDEN_MEAN_BUDGET = 0.5  # mean absolute error per image, 0-255 units
GOLDEN_MAX_BUDGET = 3.0  # max absolute error per image, 0-255 units
WORST_KEPT = 10  # per-image rows kept in the report (the worst ones)


@dataclass
class CheckResult:
    """One row of the verify report."""

    name: str
    passed: bool
    summary: str
    details: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "passed": self.passed, "summary": self.summary,
                "details": self.details}


@dataclass(frozen=True)
class Budgets:
    """Gates; defaults come from the format table (precision) and may be overridden by flags."""

    top1_agreement: float
    accuracy_points: float
    golden_mean: float = GOLDEN_MEAN_BUDGET
    golden_max: float = GOLDEN_MAX_BUDGET

    def to_dict(self) -> dict[str, float]:
        return {"top1_agreement": self.top1_agreement, "accuracy_points": self.accuracy_points,
                "golden_mean_255": self.golden_mean, "golden_max_255": self.golden_max}


def failed(name: str, message: str, **details: Any) -> CheckResult:
    """A check that could not be computed counts as failed, with the reason."""
    return CheckResult(name, False, message, {"error": message, **details})


# --------------------------------------------------------------------------- static checks
def check_spec(artifact: ArtifactInfo, run: CheckpointInfo) -> CheckResult:
    """Fingerprints equal (graph_input ignored for embedded artifacts), else name the fields."""
    mine = artifact.spec
    ignore = {"graph_input"} if mine.graph_input == "uint8_raw" else set()
    compared = mine.with_overrides(graph_input=run.spec.graph_input) if ignore else mine
    fields = compared.diff(run.spec)
    details = {
        "artifact_fingerprint": mine.fingerprint(),
        "artifact_fingerprint_compared": compared.fingerprint(),
        "run_fingerprint": run.spec.fingerprint(),
        "ignored_fields": sorted(ignore),
        "differing_fields": fields,
        "differences": {f: {"artifact": getattr(mine, f), "run": getattr(run.spec, f)}
                        for f in fields},
    }
    recorded = artifact.metadata.get(META_SPEC_FINGERPRINT)
    consistent = recorded is None or recorded == mine.fingerprint()
    details["recorded_fingerprint_consistent"] = consistent
    if compared.fingerprint() == run.spec.fingerprint() and consistent:
        note = " (graph_input uint8_raw: embedded preprocessing)" if ignore else ""
        return CheckResult("spec", True, f"fingerprint {run.spec.short_fingerprint()} "
                                         f"matches{note}", details)
    problems = [f"{f}: artifact {details['differences'][f]['artifact']} != run "
                f"{details['differences'][f]['run']}" for f in fields]
    if not consistent:
        problems.append(f"the recorded fingerprint {str(recorded)[:12]} does not match the "
                        f"embedded spec {mine.short_fingerprint()} (edited after export)")
    return CheckResult("spec", False, "spec differs from the run's: " + "; ".join(problems),
                       details)


def check_labels(artifact: ArtifactInfo, run: CheckpointInfo) -> CheckResult:
    """The run's class names in its order, and the task record fingerprinted at export."""
    from edgetl.spec import LABELS_FINGERPRINT_KEY, edited_record

    mine, theirs = list(artifact.task_record.names), list(run.task_record.names)
    edited = edited_record(artifact.path, "labels (edgetl.labels)",
                           artifact.task_record.fingerprint(),
                           [(artifact.metadata.get(LABELS_FINGERPRINT_KEY), "recorded in it"),
                            ((artifact.manifest or {}).get("labels_fingerprint"),
                             "in its manifest")])
    details = {"artifact": mine, "run": theirs, "edited_after_export": edited is not None,
               "fingerprinted": LABELS_FINGERPRINT_KEY in artifact.metadata}
    problems = [] if mine == theirs else [f"labels differ: artifact {mine} vs run {theirs}"]
    if edited:
        problems.append(edited)
    if problems:
        return CheckResult("labels", False, "; ".join(problems), details)
    return CheckResult("labels", True, f"{len(mine)} classes in the same order", details)


def check_source(artifact: ArtifactInfo, run: CheckpointInfo) -> CheckResult:
    """Same checkpoint weights; file unchanged since export (when the manifest is there)."""
    run_sha = run.record.get("weights_sha256") or run.weights_sha256()
    art_sha = artifact.source_weights_sha256
    details: dict[str, Any] = {"checkpoint": artifact.source_checkpoint,
                               "artifact_source_weights_sha256": art_sha,
                               "run_weights_sha256": run_sha}
    problems = []
    if art_sha != run_sha:
        problems.append(f"the artifact was exported from other weights ({str(art_sha)[:12]}) "
                        f"than {artifact.source_checkpoint}/ of this run ({run_sha[:12]})")
    if artifact.manifest is None:
        details["manifest"] = "missing (file integrity not checked)"
    else:
        actual = sha256_file(artifact.path)
        details.update(artifact_sha256=actual, manifest_sha256=artifact.manifest.get("sha256"))
        if actual != artifact.manifest.get("sha256"):
            problems.append("the artifact file changed after export (its sha256 differs from "
                            "its manifest)")
    if problems:
        return CheckResult("source", False, "; ".join(problems), details)
    return CheckResult("source", True, f"exported from {artifact.source_checkpoint}/ weights "
                                       f"{run_sha[:12]}; file unchanged since export", details)


# --------------------------------------------------------------------------- preprocessing
class GoldenAccumulator:
    """Per-image reference-vs-torchvision errors, in 0-255 units, before and after normalising."""

    def __init__(self, artifact_spec: PreprocessSpec, run_spec: PreprocessSpec) -> None:
        self.artifact_spec = artifact_spec
        self.run_spec = run_spec
        # normalised difference * std / scale = difference in 0-255 units
        self.to_255 = (np.asarray(run_spec.std, dtype=np.float64) / run_spec.scale)
        self.rows: list[dict[str, Any]] = []
        self.problems: list[str] = []

    def add(self, image: str, ref_pixels: np.ndarray, ref_norm: np.ndarray,
            tv_pixels: np.ndarray, tv_norm: np.ndarray) -> None:
        """ref_*: deployment reference (HWC uint8, spec-layout float); tv_*: torchvision (CHW)."""
        if ref_pixels.shape != tv_pixels.shape or ref_norm.shape != tv_norm.shape:
            self.problems.append(f"{image}: shapes differ, reference {ref_norm.shape} vs "
                                 f"torchvision {tv_norm.shape}")
            return
        raw = np.abs(ref_pixels.astype(np.int16) - tv_pixels.astype(np.int16))
        norm = np.abs(ref_norm.astype(np.float64) - tv_norm.astype(np.float64))
        channel_axis = 0 if norm.shape[0] == 3 else -1
        shape = [1, 1, 1]
        shape[channel_axis] = 3
        norm255 = norm * self.to_255.reshape(shape)
        self.rows.append({
            "image": image,
            "max_255": float(raw.max()), "mean_255": float(raw.mean()),
            "max_255_normalised": float(norm255.max()),
            "mean_255_normalised": float(norm255.mean()),
        })

    def result(self, mean_budget: float = GOLDEN_MEAN_BUDGET,
               max_budget: float = GOLDEN_MAX_BUDGET) -> CheckResult:
        budgets = Budgets(0.0, 0.0, golden_mean=mean_budget, golden_max=max_budget)
        if not self.rows:
            return failed("preprocessing", "no image could be compared", problems=self.problems)
        stats = {}
        for stage, suffix in (("before_normalisation", ""), ("after_normalisation", "_normalised")):
            means = [r[f"mean_255{suffix}"] for r in self.rows]
            maxes = [r[f"max_255{suffix}"] for r in self.rows]
            stats[stage] = {
                "mean_of_image_means": float(np.mean(means)),
                "worst_image_mean": float(np.max(means)),
                "worst_image_max": float(np.max(maxes)),
                "images_over_max_budget": int(sum(m > budgets.golden_max for m in maxes)),
            }
        worst = sorted(self.rows, key=lambda r: -r["max_255_normalised"])[:WORST_KEPT]
        over = [stage for stage, s in stats.items()
                if s["worst_image_mean"] >= budgets.golden_mean
                or s["worst_image_max"] > budgets.golden_max]
        passed = not over and not self.problems
        after = stats["after_normalisation"]
        summary = (f"{len(self.rows)} images: worst max {after['worst_image_max']:.2f}, worst mean "
                   f"{after['worst_image_mean']:.3f} (0-255 units, after normalisation; budget "
                   f"mean < {budgets.golden_mean}, max <= {budgets.golden_max})")
        if over:
            summary = f"over budget {', '.join(over)}: " + summary
        if self.problems:
            summary = f"{len(self.problems)} image(s) could not be compared; " + summary
        return CheckResult("preprocessing", passed, summary, {
            "images": len(self.rows),
            "units": "absolute difference in 0-255 units (normalised differences * std / scale)",
            "reference": "edgetl.artifact.reference with the artifact's spec",
            "training_eval": "torchvision eval_transform with the run's spec",
            **stats,
            "worst_images": worst,
            "problems": self.problems,
        })


# --------------------------------------------------------------------------- outputs
def check_outputs(reference: dict[str, np.ndarray], candidate: dict[str, np.ndarray]
                  ) -> CheckResult:
    """Every named output of the torch model is in the artifact, with its shape and kind
    (floating or integer) and finite values; per-output differences are reported (the task's
    parity check judges them, since rows of a detector may legitimately reorder)."""
    problems, per_output = [], {}
    for name, ref in reference.items():
        art = candidate.get(name)
        if art is None:
            problems.append(f"{name} missing")
            continue
        row: dict[str, Any] = {"shape": list(art.shape), "dtype": str(art.dtype)}
        if art.shape != ref.shape:
            problems.append(f"{name} shape {list(art.shape)} != torch {list(ref.shape)}")
        elif (art.dtype.kind == "f") != (ref.dtype.kind == "f"):
            problems.append(f"{name} dtype {art.dtype} vs torch {ref.dtype}")
        elif art.dtype.kind == "f" and not np.isfinite(art).all():
            problems.append(f"{name} has non-finite values")
        else:
            diff = np.abs(ref.astype(np.float64) - art.astype(np.float64))
            row.update(max_abs_diff=float(diff.max(initial=0.0)),
                       mean_abs_diff=float(diff.mean()) if diff.size else 0.0,
                       equal_share=float((diff == 0).mean()) if diff.size else 1.0)
        per_output[name] = row
    extra = sorted(set(candidate) - set(reference))
    if extra:
        problems.append(f"unexpected outputs {extra}")
    summary = "; ".join(problems) if problems else (
        f"{len(per_output)} named output(s) match in shape and kind: "
        + ", ".join(f"{n} {r['shape']}" for n, r in per_output.items()))
    return CheckResult("outputs", not problems, summary, {"outputs": per_output,
                                                          "problems": problems})


def _softmax(logits: np.ndarray) -> np.ndarray:
    shifted = logits - logits.max(axis=1, keepdims=True)
    exp = np.exp(shifted)
    return exp / exp.sum(axis=1, keepdims=True)


def decision_words(point: OperatingPoint | None) -> dict[str, Any]:
    """The rule that decided, for a check's details."""
    if point is None:
        return {"rule": "argmax"}
    return {"rule": "operating_point", "target": point.target.text(),
            "threshold": point.threshold, "description": point.rule}


def check_parity(reference: np.ndarray, candidate: np.ndarray, labels: TaskRecord,
                 budgets: Budgets, conversion_only: np.ndarray | None = None,
                 point: OperatingPoint | None = None) -> CheckResult:
    """Logit differences, cosine similarity, top-1 agreement and flips (reference = PyTorch).

    `candidate` is the artifact end to end (deployment preprocessing); the gate is on it.
    `conversion_only` (the artifact fed torchvision's tensors) is reported to tell conversion
    error from preprocessing error. With an operating point `point`, "top-1" is the decision
    its rule makes, on both sides.
    """
    if reference.shape != candidate.shape:
        return failed("parity", f"output shapes differ: PyTorch {reference.shape}, artifact "
                                f"{candidate.shape}")
    if not np.isfinite(candidate).all():
        return failed("parity", "the artifact produced non-finite logits")
    diff = np.abs(reference.astype(np.float64) - candidate.astype(np.float64))
    dot = (reference * candidate).sum(axis=1)
    norms = np.linalg.norm(reference, axis=1) * np.linalg.norm(candidate, axis=1)
    cosine = dot / np.maximum(norms, 1e-12)
    decide = logits_decider(point)
    top_ref, top_art = decide(reference), decide(candidate)
    agree = float((top_ref == top_art).mean())
    flips: dict[str, int] = {}
    per_class: dict[str, int] = {name: 0 for name in labels.names}
    for a, b in zip(top_ref[top_ref != top_art], top_art[top_ref != top_art], strict=True):
        key = f"{labels.names[a]} -> {labels.names[b]}"
        flips[key] = flips.get(key, 0) + 1
        per_class[labels.names[a]] += 1
    prob_diff = np.abs(_softmax(reference) - _softmax(candidate))
    details = {
        "images": int(len(reference)),
        "top1_agreement": agree,
        "top1_agreement_budget": budgets.top1_agreement,
        "flipped": int((top_ref != top_art).sum()),
        "flips": flips,
        "flips_by_pytorch_class": per_class,
        "max_abs_logit_diff": float(diff.max()),
        "mean_abs_logit_diff": float(diff.mean()),
        "max_abs_prob_diff": float(prob_diff.max()),
        "cosine_min": float(cosine.min()),
        "cosine_mean": float(cosine.mean()),
        "decision": decision_words(point),
    }
    if conversion_only is not None and conversion_only.shape == reference.shape:
        conv = np.abs(reference.astype(np.float64) - conversion_only.astype(np.float64))
        details["conversion_only"] = {
            "input": "torchvision eval transform output (same tensors as PyTorch)",
            "top1_agreement": float((decide(conversion_only) == top_ref).mean()),
            "max_abs_logit_diff": float(conv.max()),
            "mean_abs_logit_diff": float(conv.mean()),
        }
    passed = agree >= budgets.top1_agreement
    what = "top-1" if point is None else f"decision ({point.target.text()})"
    summary = (f"{what} agreement {agree:.2%} (budget >= {budgets.top1_agreement:.2%}), "
               f"{details['flipped']} flipped; max |dlogit| {details['max_abs_logit_diff']:.4g}, "
               f"cosine min {details['cosine_min']:.6f}")
    return CheckResult("parity", passed, summary, details)


def mcnemar_exact_p(reference_correct: np.ndarray, candidate_correct: np.ndarray
                    ) -> tuple[int, int, float]:
    """Discordant counts (b: only PyTorch right, c: only artifact right) and the exact p-value."""
    from scipy.stats import binomtest

    b = int((reference_correct & ~candidate_correct).sum())
    c = int((~reference_correct & candidate_correct).sum())
    p = 1.0 if b + c == 0 else float(binomtest(b, b + c, 0.5).pvalue)
    return b, c, p


def check_accuracy(targets: np.ndarray, reference: np.ndarray, candidate: np.ndarray,
                   labels: TaskRecord, budgets: Budgets, point: OperatingPoint | None = None
                   ) -> CheckResult:
    """Artifact accuracy may not fall more than the budget (points) below PyTorch's (both
    decided by argmax, or by the artifact's operating point `point`)."""
    if reference.shape != candidate.shape or len(targets) != len(reference):
        return failed("accuracy", "outputs and targets do not line up")
    decide = logits_decider(point)
    ref_ok = decide(reference) == targets
    art_ok = decide(candidate) == targets
    acc_ref, acc_art = float(ref_ok.mean()), float(art_ok.mean())
    delta = (acc_art - acc_ref) * 100.0
    b, c, p = mcnemar_exact_p(ref_ok, art_ok)
    per_class = {}
    for index, name in enumerate(labels.names):
        mask = targets == index
        if not mask.any():
            continue
        r, a = float(ref_ok[mask].mean()), float(art_ok[mask].mean())
        per_class[name] = {"n": int(mask.sum()), "pytorch": r, "artifact": a,
                           "delta_points": (a - r) * 100.0}
    details = {
        "images": int(len(targets)),
        "pytorch_accuracy": acc_ref,
        "artifact_accuracy": acc_art,
        "delta_points": delta,
        "budget_points": budgets.accuracy_points,
        "mcnemar": {"only_pytorch_correct": b, "only_artifact_correct": c, "exact_p": p},
        "per_class": per_class,
        "decision": decision_words(point),
    }
    passed = -delta <= budgets.accuracy_points + 1e-9
    summary = (f"PyTorch {acc_ref:.2%}, artifact {acc_art:.2%}, delta {delta:+.2f} points "
               f"(budget -{budgets.accuracy_points}); McNemar p={p:.3g} ({b} vs {c})")
    return CheckResult("accuracy", passed, summary, details)
