"""One training epoch and batched prediction, on images or on cached frozen features."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset


class CachedImages(Dataset):
    """In-memory uint8 images (from the decode-once cache) with a transform per access."""

    def __init__(self, images: list[torch.Tensor], labels: list[int], transform: Callable) -> None:
        self.images, self.labels, self.transform = images, labels, transform

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        return self.transform(self.images[index]), self.labels[index]


class FeatureSet(Dataset):
    """Cached outputs of the frozen prefix: [views, N, ...]; each access picks a random view."""

    def __init__(self, features: torch.Tensor, labels: list[int]) -> None:
        self.features = features
        self.labels = torch.as_tensor(labels)
        self.views = features.shape[0]

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        view = int(torch.randint(self.views, (1,))) if self.views > 1 else 0
        return self.features[view, index], self.labels[index]


VIEWS: dict[str, Callable[[torch.Tensor], torch.Tensor]] = {
    "identity": lambda x: x,
    "hflip": lambda x: x.flip(-1),
    "vflip": lambda x: x.flip(-2),
    "rot180": lambda x: x.flip(-1).flip(-2),
    "rot90": lambda x: x.rot90(1, (-2, -1)),
    "rot270": lambda x: x.rot90(3, (-2, -1)),
    "transpose": lambda x: x.transpose(-2, -1),
    "antitranspose": lambda x: x.rot90(1, (-2, -1)).flip(-1),
}


def epoch_order(n: int, generator: torch.Generator | None, shard: tuple[int, int],
                shuffle: bool = True) -> torch.Tensor:
    """This process's indices for one epoch: a permutation (or 0..n-1), every world-th entry
    from `rank`, as DistributedSampler shards."""
    rank, world = shard
    order = torch.randperm(n, generator=generator) if shuffle else torch.arange(n)
    return order[rank::world]


def sharded_batches(n: int, batch: int, shard: tuple[int, int]) -> int:
    return max(1, -(-n // shard[1] // batch))


class AugmentedBatches:
    """Shuffled batches augmented as whole tensors (`BatchAugment`) where the images live.

    Stands in for a DataLoader: iterating yields (inputs, targets); `shard` = (rank, world)
    gives each process its share of every epoch's permutation, as DistributedSampler does.
    """

    def __init__(self, images: torch.Tensor, labels: list[int], batch: int, augment: Callable,
                 device: torch.device, generator: torch.Generator,
                 shard: tuple[int, int] = (0, 1)) -> None:
        self.images, self.labels = images, torch.as_tensor(labels, device=images.device)
        self.batch, self.augment, self.device = batch, augment, device
        self.generator, self.shard = generator, shard

    def __len__(self) -> int:
        return sharded_batches(len(self.labels), self.batch, self.shard)

    def __iter__(self):  # noqa: ANN204 - a generator of (inputs, targets)
        order = epoch_order(len(self.labels), self.generator, self.shard)
        for start in range(0, len(order), self.batch):
            index = order[start:start + self.batch].to(self.images.device)
            batch = self.images[index].to(self.device, non_blocking=True)
            yield self.augment(batch), self.labels[index].to(self.device)


class FeatureBatches:
    """Batches of cached features where they live (the GPU): the device-side twin of a
    DataLoader over FeatureSet. Per epoch: one permutation (sharded like DistributedSampler)
    and one random view per image, all drawn on the host from `generator`."""

    def __init__(self, features: torch.Tensor, labels: list[int], batch: int,
                 generator: torch.Generator | None, shuffle: bool,
                 shard: tuple[int, int] = (0, 1)) -> None:
        self.features, self.labels = features, torch.as_tensor(labels)
        self.batch, self.generator, self.shuffle, self.shard = batch, generator, shuffle, shard

    def __len__(self) -> int:
        return sharded_batches(len(self.labels), self.batch, self.shard)

    def __iter__(self):  # noqa: ANN204 - a generator of (features, targets)
        n, views = len(self.labels), self.features.shape[0]
        order = epoch_order(n, self.generator, self.shard, self.shuffle)
        view = torch.randint(views, (n,), generator=self.generator) if views > 1 and \
            self.shuffle else torch.zeros(n, dtype=torch.long)
        device = self.features.device
        for start in range(0, len(order), self.batch):
            index = order[start:start + self.batch]
            yield (self.features[view[index].to(device), index.to(device)],
                   self.labels[index])


class TensorBatches:
    """Batches of a stacked uint8 tensor in a fixed order, mapped by `transform` where the images
    live: the evaluation twin of AugmentedBatches (no per-image work on the host)."""

    def __init__(self, images: torch.Tensor, labels: list[int], batch: int, transform: Callable,
                 device: torch.device) -> None:
        self.images, self.labels = images, torch.as_tensor(labels)
        self.batch, self.transform, self.device = batch, transform, device

    def __len__(self) -> int:
        return -(-len(self.labels) // self.batch)

    def __iter__(self):  # noqa: ANN204 - a generator of (inputs, targets)
        for start in range(0, len(self.labels), self.batch):
            chunk = self.images[start:start + self.batch].to(self.device, non_blocking=True)
            yield self.transform(chunk), self.labels[start:start + self.batch]


@dataclass
class Placement:
    """Where and how tensors run: device, autocast dtype, memory format."""

    device: torch.device
    autocast_dtype: torch.dtype | None = None
    channels_last: bool = False

    def autocast(self) -> contextlib.AbstractContextManager:
        if self.autocast_dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(self.device.type, dtype=self.autocast_dtype)

    def move(self, x: torch.Tensor) -> torch.Tensor:
        x = x.to(self.device, non_blocking=True)
        if self.channels_last and x.ndim == 4:
            x = x.contiguous(memory_format=torch.channels_last)
        return x


def classification_loss(forward: Callable[[torch.Tensor], torch.Tensor], criterion: nn.Module,
                        rt: Placement) -> Callable[[torch.Tensor, torch.Tensor], torch.Tensor]:
    """The step loss of a classifier: forward under autocast, criterion in float32."""

    def loss(inputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        with rt.autocast():
            logits = forward(inputs)
        return criterion(logits.float(), targets)

    return loss


def train_one_epoch(
    compute_loss: Callable[[Any, Any], torch.Tensor],
    loader: Iterable,
    optimizer: torch.optim.Optimizer,
    on_step: Callable[[], None],
    rt: Placement,
    progress: Callable[[int], None] | None = None,
    after_step: Callable[[], None] | None = None,
    move: Callable[[Any], tuple[Any, Any]] | None = None,
) -> dict[str, float]:
    """One pass over `loader`: `move(batch)` -> (inputs, targets) on the device (default: a
    tensor pair), `compute_loss(inputs, targets)` -> the step's loss. Loss is accumulated on the
    device; one host sync at the end of the epoch. `first_step_loss`: the loss of the first step,
    on the weights the epoch started from (the divergence check's reference)."""
    move = move or (lambda b: (rt.move(b[0]), b[1].to(rt.device, non_blocking=True)))
    total = torch.zeros((), device=rt.device)
    first: torch.Tensor | None = None
    seen = 0
    start = time.perf_counter()
    for batch in loader:
        inputs, targets = move(batch)
        on_step()
        loss = compute_loss(inputs, targets)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        if after_step:
            after_step()
        total += loss.detach() * len(targets)
        if first is None:
            first = loss.detach().clone()
        seen += len(targets)
        if progress:
            progress(len(targets))
    total_loss = float(total.item())  # the epoch's one sync: queued device work ends here
    seconds = time.perf_counter() - start
    return {
        "train_loss": total_loss / max(1, seen),
        "images_per_s": seen / seconds if seconds > 0 else 0.0,
        "train_seconds": seconds,
        "first_step_loss": float(first.item()) if first is not None else float("nan"),
    }


@torch.no_grad()
def predict(
    forward: Callable[[torch.Tensor], torch.Tensor],
    loader: DataLoader,
    rt: Placement,
    progress: Callable[[int], None] | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Softmax probabilities and labels for everything in `loader`."""
    probs, labels = [], []
    for inputs, targets in loader:
        with rt.autocast():
            logits = forward(rt.move(inputs))
        probs.append(torch.softmax(logits.float(), dim=1).cpu())
        labels.append(torch.as_tensor(targets).cpu())
        if progress:
            progress(len(targets))
    if not probs:
        return np.zeros((0, 0)), np.zeros((0,), dtype=np.int64)
    return torch.cat(probs).numpy(), torch.cat(labels).numpy().astype(np.int64)


@torch.no_grad()
def map_features(fn: Callable[[torch.Tensor], torch.Tensor], features: torch.Tensor, rt: Placement,
                 batch: int = 64) -> torch.Tensor:
    """Apply `fn` (eval mode) to cached features in batches, keeping the leading view axis."""
    out = []
    for view in features:
        parts = [fn(rt.move(view[i:i + batch])).float() for i in range(0, len(view), batch)]
        out.append(torch.cat(parts))
    return torch.stack(out)


@torch.no_grad()
def compute_features(
    prefix: Callable[[torch.Tensor], torch.Tensor],
    loader: DataLoader,
    rt: Placement,
    progress: Callable[[int], None] | None = None,
    views: tuple[str, ...] = ("identity",),
) -> torch.Tensor:
    """Run the frozen prefix once per view over `loader`: a [views, N, ...] tensor."""
    out: list[list[torch.Tensor]] = [[] for _ in views]
    for inputs, _ in loader:
        inputs = rt.move(inputs)
        for slot, view in zip(out, views, strict=True):
            with rt.autocast():
                slot.append(prefix(VIEWS[view](inputs)).float())
        if progress:
            progress(len(inputs))
    return torch.stack([torch.cat(slot) for slot in out])
