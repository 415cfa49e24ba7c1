"""A torch model's outputs for image files, through the training evaluation transform.

One loop (`batched_outputs`) serves every place that runs a torch model over files in batches:
a classifier's softmax (`torch_probs`: `evaluate`, `finetune`'s closing test figures, the
validation probabilities `export` chooses an operating point on), a dense model's deployable
outputs (`torch_outputs`: `evaluate` of a checkpoint, its worst-images figures) and the torch
side of `verify`. So all of them see the same numbers.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from typing import Any, TypeVar

import numpy as np

from edgetl.geometry import Geometry

EVAL_BATCH = 8  # a dense model's evaluation batch (torch_outputs)

Item = TypeVar("Item")
Read = TypeVar("Read")


def batched_outputs(module: Callable[[Any], Any], items: Sequence[Item],
                    prepare: Callable[[Item], Any], read: Callable[[Any], Read], *, batch: int,
                    device: str = "cpu", layout: Any = None) -> Iterator[Read]:
    """`read(module(x))` for each batch `x` of `batch` prepared items (stacked, moved to
    `device` in memory `layout`, contiguous by default), in order, under inference mode."""
    # not at the top: importing this module loads no torch
    import torch

    layout = torch.contiguous_format if layout is None else layout
    for start in range(0, len(items), batch):
        with torch.inference_mode():
            x = torch.stack([prepare(item) for item in items[start:start + batch]])
            found = read(module(x.to(device).contiguous(memory_format=layout)))
        yield found


def torch_probs(model: Any, spec: Any, paths: list[str], device: str = "cpu",
                batch: int | None = None) -> np.ndarray:
    """Softmax outputs of a torch model through the spec's torchvision evaluation transform.

    channels_last and small CPU batches: measured 3x faster than NCHW batches of 64 on 2 cores.
    """
    import torch

    from edgetl.data.transforms import eval_transform, load_image
    from edgetl.devices import use_channels_last

    batch = batch or (8 if device == "cpu" else 128)
    tf = eval_transform(spec)
    layout = torch.channels_last if use_channels_last("auto", device, 0) else \
        torch.contiguous_format
    model = model.to(device, memory_format=layout).eval()
    out = list(batched_outputs(model, paths, lambda p: tf(load_image(p, spec)),
                               lambda y: torch.softmax(y.float(), dim=1).cpu(),
                               batch=batch, device=device, layout=layout))
    return torch.cat(out).numpy()


def torch_outputs(model: Any, spec: Any, samples: Sequence[Any], task: str, device: str = "cpu",
                  tiles: bool = False) -> Any:
    """A dense model's deployable outputs (the task's, what its artifact is made of) for the
    samples' files, and each image's geometry: the torch twin of `predict.run_files`.

    With `tiles`, (outputs, geometries, windows): a spec with a tile rule runs each file's
    windows (`artifact.reference.decoded_tiles`, the twin of `predict.files.run_tiles`), one
    row per window; windows is None when the spec has no rule (one row per image)."""
    if tiles and spec.tile is not None:
        return _tiled_outputs(model, spec, samples, task, device)
    from edgetl.artifact.postprocess import concat_outputs
    from edgetl.data.transforms import geometry_transform, load_image, normalize_transform
    from edgetl.geometry import geometry_for
    from edgetl.models.deployable import deployable

    module = deployable(model, task)[0].to(device).eval()
    to_input, normalize = geometry_transform(spec), normalize_transform(spec)
    geometries: list[Geometry] = []

    def prepare(sample: Any) -> Any:
        image = load_image(sample.path, spec)
        geometries.append(geometry_for(image.height, image.width, spec))
        return normalize(to_input(image))

    parts = list(batched_outputs(module, samples, prepare,
                                 lambda found: {k: v.cpu().numpy() for k, v in found.items()},
                                 batch=EVAL_BATCH, device=device))
    if tiles:
        return concat_outputs(parts), geometries, None
    return concat_outputs(parts), geometries


def _tiled_outputs(model: Any, spec: Any, samples: Sequence[Any], task: str, device: str
                   ) -> tuple[dict[str, np.ndarray], list[Geometry], list[list[Any]]]:
    """`torch_outputs` window by window: (outputs, geometries, windows per file)."""
    from edgetl.artifact.postprocess import concat_outputs
    from edgetl.artifact.reference import decoded_tiles
    from edgetl.data.transforms import geometry_transform, normalize_transform
    from edgetl.geometry import geometry_for
    from edgetl.models.deployable import deployable

    module = deployable(model, task)[0].to(device).eval()
    to_input, normalize = geometry_transform(spec), normalize_transform(spec)
    parts, geometries, windows = [], [], []
    for sample in samples:
        _, wins, crops = decoded_tiles(sample.path, spec)
        windows.append(wins)
        geometries += [geometry_for(c.height, c.width, spec) for c in crops]
        parts += batched_outputs(module, crops, lambda c: normalize(to_input(c)),
                                 lambda found: {k: v.cpu().numpy() for k, v in found.items()},
                                 batch=EVAL_BATCH, device=device)
    return concat_outputs(parts), geometries, windows
