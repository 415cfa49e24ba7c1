"""int8 layer by layer: how much each compute node hurts when it alone is quantised.

Why: the prefix search (keep the first N convolutions float32 until the agreement bound
clears verify's budget) met the budget on the ELPV quickstart by keeping 24 convolutions
float, and the artifact ran 1.40x faster than float32 at batch 1 against 1.86-2.06x fully
quantised. The damage is not where a layer sits, so it is measured.

How: each candidate node (Conv, Gemm, MatMul outside embedded preprocessing) is quantised on
its own (onnxruntime's `nodes_to_quantize`, with the calibration ranges computed once; see
`Quantiser`), a stratified subset of validation images runs through it on ONNX Runtime, and
its logits are compared with float32's: the mean squared logit error is the noise that layer
alone adds at the output, and the decisions it flips are counted beside it. Layers are ranked
by that error. Quantisation noise from different layers adds up roughly independently at the
output, so keeping float the layers with the largest own error lowers the total the most; the
search then keeps float the top 1, 2, 3, ... until its judge is met (`int8_search`).

Cost: one quantisation without calibration and one session per node, each on at most
`SENSITIVITY_IMAGES` images, with `IMAGE_PASSES` (nodes x images) as the bound: a model with
more nodes gets fewer images per node, never fewer than `MIN_IMAGES`.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from edgetl.export.manifest import INPUT_NAME

SENSITIVITY_IMAGES = 96  # validation images per node at most
MIN_IMAGES = 32
IMAGE_PASSES = 96 * 64  # nodes x images: the measurement's bound
BATCH = 32


@dataclass(frozen=True)
class LayerDamage:
    """What quantising one node alone did to the outputs on the measured images."""

    node: str
    op_type: str
    logit_mse: float  # mean squared logit difference against float32
    relative: float  # logit_mse / variance of the float32 logits
    flipped: int  # decisions that changed
    images: int

    def to_dict(self) -> dict[str, Any]:
        return {"node": self.node, "op_type": self.op_type, "logit_mse": self.logit_mse,
                "relative_mse": self.relative, "flipped": self.flipped, "images": self.images}

    def why(self, rank: int, of: int) -> str:
        return (f"rank {rank} of {of} by output error when only it is int8: logit MSE "
                f"{self.logit_mse:.3g} ({self.relative:.2%} of the float32 logits' variance), "
                f"{self.flipped} of {self.images} decisions flipped")


@dataclass(frozen=True)
class Ranking:
    """Nodes by damage, most damaging first, and how the measurement was made."""

    layers: list[LayerDamage]
    images: int
    seconds: float

    def to_dict(self) -> dict[str, Any]:
        return {"measure": "each node quantised alone: mean squared logit error against "
                           "float32 on validation images (decisions flipped beside it)",
                "images": self.images, "nodes": len(self.layers),
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
    """The graph's first output for the batches, on ONNX Runtime's CPU provider."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.log_severity_level = 3
    session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    return np.concatenate([session.run(None, {INPUT_NAME: b})[0] for b in batches])


def rank_layers(nodes: list[tuple[str, str]], quantise_only: Callable[[str, Path], None],
                fp32_path: Path, batches: list[np.ndarray], workdir: Path,
                decide: Callable[[np.ndarray], np.ndarray] | None = None) -> Ranking:
    """Quantise each (name, op_type) node alone with `quantise_only(name, out_path)`, measure
    it on `batches`, and rank by logit MSE (most damaging first; flips break ties, then the
    graph order). `decide`: logits -> decisions (default argmax)."""
    decide = decide or (lambda logits: logits.argmax(axis=1))
    started = time.perf_counter()
    reference = run_logits(fp32_path, batches).astype(np.float64)
    variance = float(reference.var()) or 1.0
    top = decide(reference)
    measured = []
    for index, (name, op_type) in enumerate(nodes):
        path = workdir / f"only-{index}.onnx"
        quantise_only(name, path)
        logits = run_logits(path, batches).astype(np.float64)
        path.unlink(missing_ok=True)
        mse = float(((logits - reference) ** 2).mean())
        measured.append((index, LayerDamage(name, op_type, mse, mse / variance,
                                            int((decide(logits) != top).sum()),
                                            len(reference))))
    measured.sort(key=lambda item: (-item[1].logit_mse, -item[1].flipped, item[0]))
    return Ranking([damage for _, damage in measured], len(reference),
                   time.perf_counter() - started)
