"""Which compute nodes an int8 graph keeps in float32: the accuracy search.

Rounds, each a quantised candidate judged on the validation split (the task's `int8_judge`):
1. everything quantised;
2. classifiers: the nodes `int8_sensitivity` chooses stay float, 1, 2, 3, 4, 6, 8, 12, 16 of
   them (greedily, each the most helpful given the ones before it; only nodes whose float
   version measurably helps), wherever they sit in the graph; chosen by measurements on the
   validation images, these candidates must pass the judge's stricter test (`met_selected`:
   a 99% bound);
3. if the ranking cannot meet the target (or there is none: detectors, segmenters): the
   leading compute nodes stay float, 4, 8, 12, ... of them, with every node up to the last
   (so the activations between them stay float too), as before the ranking existed.
The first candidate the judge accepts wins; when none does, the last one is kept and the
search says it missed. The result names every float node and why it is float.

Shared by onnx-int8 (onnxruntime QDQ candidates, `.onnx`) and openvino-int8 (NNCF candidates,
`.xml`): each format supplies how a candidate is quantised and how the ranking measures one;
the judge, the rounds, their limits and the record (manifest `float_nodes` and
`accuracy_search`, the artifact's `META_INT8_FLOAT` key) are the same.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from edgetl import tasks
from edgetl.artifact.openvino_ir import weights_path
from edgetl.export.context import ExportContext

META_INT8_FLOAT = "edgetl.int8_float_nodes"  # JSON: which nodes stayed float32, and why

# Leading compute nodes kept float32, per round of the prefix search.
FLOAT_PREFIX_STEPS = (0, 4, 8, 12, 16, 20, 24, 28, 32, 40, 48)
# Most damaging nodes kept float32, per round of the sensitivity search.
SENSITIVE_STEPS = (1, 2, 3, 4, 6, 8, 12, 16)


@dataclass
class SearchResult:
    """The accepted (or last) candidate, every round, and the float nodes with reasons."""

    path: Path | None = None
    exclude: list[str] = field(default_factory=list)
    rounds: list[dict[str, Any]] = field(default_factory=list)
    strategy: str = "all-int8"
    float_nodes: list[dict[str, str]] = field(default_factory=list)
    ranking: dict[str, Any] | None = None
    met: bool = False

    def record(self) -> dict[str, Any]:
        """What the manifest and the artifact's metadata say about the float nodes."""
        return {"strategy": self.strategy, "met": self.met, "nodes": self.float_nodes}


def leading_nodes(node_names: list[str], compute_nodes: list[str]) -> list[str]:
    """Every node up to the last of `compute_nodes` (so activations between them stay float)."""
    if not compute_nodes:
        return []
    last = max(node_names.index(n) for n in compute_nodes)
    return node_names[: last + 1]


def candidate_size(path: Path) -> int:
    """Bytes of a candidate: the file, plus its weights for an OpenVINO IR."""
    size = path.stat().st_size
    if path.suffix == ".xml":
        size += weights_path(path).stat().st_size
    return size


def search(quantise: Callable[..., Path], workdir: Path, node_names: list[str],
           compute: list[str], embedded: list[str], judge: Any,
           sensitivity: Callable[[], Any] | None = None, suffix: str = ".onnx"
           ) -> SearchResult:
    """Run the rounds (module docstring). `quantise(out_path, exclude)` builds a candidate
    (a `suffix` file), `judge.row(path)` / `judge.met(row)` judge it, `sensitivity()` makes
    the `int8_sensitivity.Sensitivity` that chooses nodes (called only when everything
    quantised misses)."""
    result = SearchResult()

    def attempt(strategy: str, name: str, float_nodes: list[dict[str, str]],
                exclude: list[str]) -> bool:
        path = quantise(workdir / f"int8-{name}{suffix}", embedded + exclude)
        row = {"strategy": strategy, "float_compute_nodes": len(float_nodes),
               **judge.row(path), "size_bytes": candidate_size(path)}
        if strategy == "sensitivity":
            row["float_nodes"] = [n["node"] for n in float_nodes]
        result.rounds.append(row)
        result.path, result.exclude = path, embedded + exclude
        result.strategy, result.float_nodes = strategy, float_nodes
        # a ranked candidate was chosen on the judge's own images: its stricter test
        result.met = judge.met_selected(row) if strategy == "sensitivity" else judge.met(row)
        return result.met

    if attempt("all-int8", "all", [], []):
        return result
    tried = 0
    if sensitivity is not None:
        chooser = sensitivity()
        chooser.rank()
        chosen: list[Any] = []
        try:
            for keep in SENSITIVE_STEPS:
                more = chooser.add(chosen, keep - len(chosen))
                if not more:
                    break
                chosen += more
                tried = len(chosen)
                ranks = {d.node: i + 1 for i, d in enumerate(chooser.ranking.layers)}
                nodes = [{"node": d.node, "why": d.why(ranks[d.node], len(ranks))}
                         for d in chosen]
                if attempt("sensitivity", f"sensitive-{tried}", nodes,
                           [d.node for d in chosen]):
                    return result
        finally:
            result.ranking = chooser.to_dict()
    after = (f", after the sensitivity ranking's top {tried} missed the target" if tried
             else "")
    for keep in FLOAT_PREFIX_STEPS[1:]:
        if keep > len(compute):
            break
        chosen = [{"node": n, "why": f"among the first {keep} compute nodes (prefix search"
                                     f"{after})"} for n in compute[:keep]]
        if attempt("prefix", f"prefix-{keep}", chosen,
                   leading_nodes(node_names, compute[:keep])):
            return result
    return result


def make_judge(ctx: ExportContext, fp32_path: Path) -> Any:
    """The task's `int8_judge` against the fp32 ONNX graph, or `UnjudgedJudge` for
    `int8_target_agreement=0` (an untrained network's latency probe)."""
    from edgetl.export.int8_judges import UnjudgedJudge

    if ctx.options.int8_target_agreement == 0.0:
        return UnjudgedJudge(ctx, fp32_path)
    return tasks.get(ctx.info.task_record.task).load("int8_judge")(ctx, fp32_path)


def ranks_nodes(ctx: ExportContext) -> bool:
    """Whether the search may rank nodes by measurement: the task says so (classifiers) and
    the run has validation images to measure on."""
    return (tasks.get(ctx.info.task_record.task).int8_sensitivity_ranking
            and bool(ctx.run_folder.dataset().by_split("val")))


def ranking_inputs(ctx: ExportContext, nodes: int) -> list[Any]:
    """A stratified subset of the validation split for the sensitivity ranking, sized by
    `int8_sensitivity.images_per_node` (the cost bound)."""
    from edgetl.export.calibration import calibration_batches, stratified_subset
    from edgetl.export.int8_sensitivity import BATCH, images_per_node

    samples = ctx.run_folder.dataset().by_split("val")
    picked = stratified_subset(samples, images_per_node(nodes, len(samples)), ctx.options.seed)
    return list(calibration_batches(picked, ctx.spec, BATCH))


def search_record(found: SearchResult, judge: Any) -> dict[str, Any]:
    """The manifest's `float_nodes` and `accuracy_search` entries of the quantization record,
    the same for every int8 format."""
    return {"float_nodes": found.record(),
            "accuracy_search": {**judge.describe(), "strategy": found.strategy,
                                "rounds": found.rounds, "met": found.met,
                                **({"sensitivity": found.ranking} if found.ranking else {})}}


def float_nodes_metadata(found: SearchResult) -> dict[str, str]:
    """The artifact's own key naming its float nodes (ONNX metadata_props, IR rt_info)."""
    return {META_INT8_FLOAT: json.dumps(found.record(), sort_keys=True, separators=(",", ":"))}
