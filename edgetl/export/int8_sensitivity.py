"""int8 layer by layer: which compute nodes to leave float32, chosen by measurement.

Why: the prefix search (keep the first N convolutions float32 until the agreement bound
clears verify's budget) met the budget on the ELPV quickstart by keeping 24 convolutions
float, and the artifact ran 1.40x faster than float32 at batch 1 against 1.86-2.06x fully
quantised. The damage is not where a layer sits, so it is measured.

What is measured: an int8 graph with a set of nodes left float32 runs a stratified subset of
validation images on the artifact's runtime (onnx-int8: ONNX Runtime, calibration ranges
computed once, `int8_quantise`; openvino-int8: ov-cpu, `openvino_int8`), and
its mean squared logit error against float32 is the damage that remains (the decisions still
flipped are counted beside it). The measurement is paired (the same images for every
candidate), so a continuous error ranks reliably on ~100 images where flips are mostly 0.

How the nodes are chosen (`Sensitivity`):
1. rank: every candidate node (Conv, Gemm, MatMul outside embedded preprocessing) left float
   alone, everything else int8; its gain is how much that lowers the error of the fully
   quantised graph;
2. choose greedily: the first node is the best-ranked one; each further node is the one
   whose float version lowers the error most *given the nodes already chosen*, measured on a
   pool of the best-ranked remaining nodes and the graph neighbours of the chosen ones. Only
   nodes that lower the error are chosen.

Why leave-one-float and not "quantise only this node": quantising a node alone also quantises
its pre-activation output with a range the full graph never uses (there the ReLU6 folds into
the next quantisation), so it measures a graph that is never shipped. Why greedy with
neighbours: nodes interact. On the ELPV quickstart the first depthwise convolution left float
alone made the graph worse (94.7% validation agreement against 99.0% fully quantised:
onnxruntime's optimised kernels at that int8/float boundary; with graph optimisations off it
helped), while with the stem float as well it was the best second choice (99.75%).

Cost: one quantisation without calibration and one session per measured set, each on at most
`SENSITIVITY_IMAGES` images (a model with many nodes gets fewer per node, `IMAGE_PASSES`
bounds nodes x images, never fewer than `MIN_IMAGES`), plus at most `POOL` + neighbours per
greedy step. About 80 s for Lite0 (50 nodes, 96 images) on 2 CPU cores.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

SENSITIVITY_IMAGES = 96  # validation images per measured set at most
MIN_IMAGES = 32
IMAGE_PASSES = 96 * 64  # nodes x images: the ranking's bound
BATCH = 32
POOL = 8  # best-ranked remaining nodes re-measured at each greedy step (plus neighbours)


@dataclass(frozen=True)
class LayerDamage:
    """What leaving one more node float32 did, given the nodes left float before it."""

    node: str
    op_type: str
    gain: float  # logit MSE before minus logit MSE with this node float too
    relative: float  # gain / logit MSE before
    logit_mse: float  # against float32, with this node float too
    flipped: int  # decisions that still differ from float32's with this node float
    flipped_before: int  # decisions that differed before
    images: int
    given: tuple[str, ...] = ()  # the nodes already float when this was measured

    def to_dict(self) -> dict[str, Any]:
        return {"node": self.node, "op_type": self.op_type, "gain": self.gain,
                "relative_gain": self.relative, "logit_mse": self.logit_mse,
                "flipped": self.flipped, "flipped_before": self.flipped_before,
                "images": self.images, "given_float": list(self.given)}

    def why(self, rank: int | None = None, of: int | None = None) -> str:
        first = (f"rank {rank} of {of}: left float alone, it lowers the int8 graph's"
                 if not self.given else
                 f"with {len(self.given)} node(s) chosen before it float, it lowers the")
        return (f"{first} logit MSE against float32 by {self.relative:.1%} (to "
                f"{self.logit_mse:.3g}) and the flipped decisions from {self.flipped_before} "
                f"to {self.flipped} of {self.images} validation images")


@dataclass(frozen=True)
class Ranking:
    """Every node left float alone, most helpful first, and how it was measured."""

    layers: list[LayerDamage]
    images: int
    seconds: float
    baseline_mse: float

    @property
    def helpful(self) -> list[LayerDamage]:
        """The nodes whose float version lowers the error (the only ones worth choosing)."""
        return [layer for layer in self.layers if layer.gain > 0]

    def to_dict(self) -> dict[str, Any]:
        return {"measure": "fully quantised graph with one node left float32: how much it "
                           "lowers the mean squared logit error against float32 on validation "
                           "images (decisions still flipped beside it)",
                "images": self.images, "nodes": len(self.layers),
                "helpful_nodes": len(self.helpful), "all_int8_logit_mse": self.baseline_mse,
                "seconds": round(self.seconds, 2),
                "layers": [layer.to_dict() for layer in self.layers]}


def images_per_node(nodes: int, available: int) -> int:
    """How many images each node is measured on: the budget shared out, within bounds."""
    share = IMAGE_PASSES // max(nodes, 1)
    return max(1, min(available, SENSITIVITY_IMAGES, max(MIN_IMAGES, share)))


def subset(batches: list[np.ndarray], count: int) -> list[np.ndarray]:
    """The first `count` images of `batches` (already a stratified, seeded pick), rebatched."""
    if not batches:
        return []
    images = np.concatenate(batches)[:count]
    return [images[i:i + BATCH] for i in range(0, len(images), BATCH)]


def run_logits(path: Path, batches: list[np.ndarray]) -> np.ndarray:
    """The graph's first output for the batches, on the CPU (`int8_judges.open_graph`: ONNX
    Runtime's CPU provider with default graph optimisations for .onnx, ov-cpu for .xml: what
    the artifact will run with)."""
    from edgetl.export.int8_judges import open_graph

    _, infer = open_graph(path)
    return np.concatenate([np.asarray(infer(b)[0]) for b in batches])


def file_logits(quantise_without: Callable[[list[str], Path], None],
                batches: list[np.ndarray], workdir: Path, suffix: str = ".onnx"
                ) -> Callable[[list[str]], np.ndarray]:
    """A `Sensitivity` measure that quantises each set into a file (`quantise_without(names,
    path)`), runs it on `batches` (`run_logits`) and deletes it."""
    count = iter(range(1 << 30))

    def logits(names: list[str]) -> np.ndarray:
        path = workdir / f"sensitivity-{next(count)}{suffix}"
        quantise_without(names, path)
        try:
            return run_logits(path, batches)
        finally:
            path.unlink(missing_ok=True)
            path.with_suffix(".bin").unlink(missing_ok=True)

    return logits


def compute_neighbours(graph: Any, compute: Iterable[str]) -> dict[str, set[str]]:
    """For each compute node, the compute nodes next to it in the graph: those its output
    reaches, and those its input comes from, through nodes that compute nothing (activations,
    additions, reshapes, ...). `graph.node`: nodes with `name`, `input` and `output` (tensor
    names), as in an ONNX GraphProto."""
    names = set(compute)
    consumers: dict[str, list[Any]] = {}
    for node in graph.node:
        for tensor in node.input:
            consumers.setdefault(tensor, []).append(node)

    def downstream(node: Any) -> set[str]:
        found, todo, seen = set(), list(node.output), set()
        while todo:
            tensor = todo.pop()
            for nxt in consumers.get(tensor, []):
                if nxt.name in seen:
                    continue
                seen.add(nxt.name)
                if nxt.name in names:
                    found.add(nxt.name)
                else:
                    todo.extend(nxt.output)
        return found

    out: dict[str, set[str]] = {name: set() for name in names}
    for node in graph.node:
        if node.name in names:
            for after in downstream(node):
                out[node.name].add(after)
                out[after].add(node.name)
    return out


class Sensitivity:
    """Measures int8 graphs with chosen nodes left float32, and chooses the nodes."""

    def __init__(self, nodes: list[tuple[str, str]], neighbours: dict[str, set[str]],
                 logits_without: Callable[[list[str]], np.ndarray], reference: np.ndarray,
                 decide: Callable[[np.ndarray], np.ndarray] | None = None) -> None:
        """`logits_without(names)`: the int8 graph's logits on the measured images with
        `names` left float32 (`file_logits` for graphs built as files); `reference`: the
        float32 graph's logits on the same images."""
        self.nodes = nodes
        self.op_type = dict(nodes)
        self.order = {name: i for i, (name, _) in enumerate(nodes)}
        self.neighbours = neighbours
        self.logits_without = logits_without
        self.decide = decide or (lambda logits: logits.argmax(axis=1))
        self.reference = np.asarray(reference).astype(np.float64)
        self.top = self.decide(self.reference)
        self.cache: dict[frozenset[str], tuple[float, int]] = {}
        self.ranking: Ranking | None = None
        self.steps: list[dict[str, Any]] = []
        self.seconds = 0.0

    @property
    def images(self) -> int:
        return len(self.reference)

    def measure(self, float_nodes: Iterable[str]) -> tuple[float, int]:
        """(logit MSE against float32, decisions flipped) of the int8 graph with
        `float_nodes` left float32; each set is measured once."""
        key = frozenset(float_nodes)
        if key not in self.cache:
            started = time.perf_counter()
            logits = np.asarray(self.logits_without(sorted(key, key=self.order.get)),
                                dtype=np.float64)
            self.cache[key] = (float(((logits - self.reference) ** 2).mean()),
                               int((self.decide(logits) != self.top).sum()))
            self.seconds += time.perf_counter() - started
        return self.cache[key]

    def _gain(self, name: str, given: list[str]) -> LayerDamage:
        before_mse, before_flips = self.measure(given)
        mse, flips = self.measure([*given, name])
        gain = before_mse - mse
        return LayerDamage(name, self.op_type[name], gain, gain / (before_mse or 1.0), mse,
                           flips, before_flips, self.images, tuple(given))

    def rank(self) -> Ranking:
        """Every node left float alone, most helpful first (ties: fewer flips, graph order)."""
        layers = [self._gain(name, []) for name, _ in self.nodes]
        layers.sort(key=lambda d: (-d.gain, d.flipped, self.order[d.node]))
        self.ranking = Ranking(layers, self.images, self.seconds, self.measure([])[0])
        return self.ranking

    def add(self, chosen: list[LayerDamage], count: int) -> list[LayerDamage]:
        """Up to `count` more nodes to leave float, one at a time, each the most helpful given
        the ones before it; fewer (or none) when no remaining node lowers the error."""
        ranking = self.ranking or self.rank()
        picked = list(chosen)
        for _ in range(count):
            names = [d.node for d in picked]
            if not names:
                best = ranking.helpful[0] if ranking.helpful else None
            else:
                taken = set(names)
                pool = [d.node for d in ranking.layers if d.node not in taken][:POOL]
                pool += sorted({n for name in names for n in self.neighbours.get(name, ())}
                               - taken - set(pool), key=self.order.get)
                scored = sorted((self._gain(name, names) for name in pool),
                                key=lambda d: (-d.gain, d.flipped, self.order[d.node]))
                self.steps.append({"given_float": names, "measured": len(pool),
                                   "best": scored[0].to_dict() if scored else None})
                best = scored[0] if scored and scored[0].gain > 0 else None
            if best is None:
                break
            picked.append(best)
        return picked[len(chosen):]

    def to_dict(self) -> dict[str, Any]:
        ranking = (self.ranking or self.rank()).to_dict()
        return {**ranking, "seconds": round(self.seconds, 2), "measured_sets": len(self.cache),
                "greedy_steps": self.steps}
