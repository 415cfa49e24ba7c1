"""Multi-process training under torchrun (PyTorch DDP): the same recipe with 1 or N processes.

torchrun sets WORLD_SIZE/RANK/LOCAL_RANK; without them everything here is a no-op. Each process
trains on its shard of every epoch (DistributedSampler) with `batch_size / world` images, so the
global batch equals the recipe's; gradients are averaged by DDP; validation runs identically on
every rank, so early stopping decides the same everywhere; only rank 0 writes files.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist
from torch import nn

from edgetl.errors import RecipeError


@dataclass(frozen=True)
class DistContext:
    world: int = 1
    rank: int = 0
    local_rank: int = 0

    @property
    def enabled(self) -> bool:
        return self.world > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def barrier(self) -> None:
        if self.enabled:
            dist.barrier()

    def mean(self, value: float, device: torch.device) -> float:
        """The mean of a per-rank scalar over all ranks."""
        if not self.enabled:
            return value
        t = torch.tensor([value], dtype=torch.float64, device=device)
        dist.all_reduce(t)
        return float(t.item()) / self.world

    def sum(self, value: float, device: torch.device) -> float:
        if not self.enabled:
            return value
        t = torch.tensor([value], dtype=torch.float64, device=device)
        dist.all_reduce(t)
        return float(t.item())

    def per_rank_batch(self, batch: int) -> int:
        if batch % self.world:
            raise RecipeError(f"train.batch_size {batch} does not split evenly over "
                              f"{self.world} processes", "pick a multiple of the process count")
        return batch // self.world


def init_from_env(device: str) -> DistContext:
    """Join the process group torchrun prepared (gloo on CPU, nccl on CUDA)."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return DistContext()
    rank, local = int(os.environ["RANK"]), int(os.environ.get("LOCAL_RANK", "0"))
    if not dist.is_initialized():
        dist.init_process_group("nccl" if device == "cuda" else "gloo")
    if device == "cuda":
        torch.cuda.set_device(local)
    return DistContext(world, rank, local)


class SuffixModule(nn.Module):
    """Wraps the trainable part (a closure over the model's layers) so DDP can sync its grads."""

    def __init__(self, model: nn.Module, forward_fn) -> None:  # noqa: ANN001
        super().__init__()
        self.model = model
        self.forward_fn = forward_fn

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_fn(x)


def wrap(model: nn.Module, forward_fn, ctx: DistContext, device: torch.device):  # noqa: ANN001, ANN201
    """The forward to train with: DDP around the trainable part when distributed."""
    if not ctx.enabled:
        return forward_fn
    module = model if forward_fn is model else SuffixModule(model, forward_fn)
    ids = [device.index] if device.type == "cuda" else None
    return nn.parallel.DistributedDataParallel(module, device_ids=ids,
                                               broadcast_buffers=False)


def shutdown(ctx: DistContext) -> None:
    if ctx.enabled and dist.is_initialized():
        dist.barrier()
        dist.destroy_process_group()
