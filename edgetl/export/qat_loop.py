"""The training loop every task's `qat_trainer` shares: AdamW at the recipe's `lr` with a cosine
decay over the planned steps (`epochs`, capped by `max_steps`; `time_budget` stops at the next
step past it), validation before training and after each epoch logged to the phase's
`metrics.jsonl`, and the epoch that ranks best kept (before training included).

A task gives how many training items there are, the loss of a batch of their indices (its own
loss plus distillation to the float model) and its validation figures with their ranking.
"""

from __future__ import annotations

import copy
import math
import time
from collections.abc import Callable
from typing import Any

import numpy as np

from edgetl.export.qat_phase import QatJob, QatTraining
from edgetl.train.progress import progress_bar


def kl_to_teacher(student: Any, teacher: Any, temperature: float, dim: int = 1) -> Any:
    """T^2 x KL(teacher || student) on logits softened by T along `dim`, averaged over every
    position other than `dim` (images, and pixels or anchors for dense outputs)."""
    import torch.nn.functional as F

    log_p = F.log_softmax(student / temperature, dim=dim)
    soft = F.softmax(teacher / temperature, dim=dim)
    positions = student.numel() // student.shape[dim]
    return temperature ** 2 * F.kl_div(log_p, soft, reduction="sum") / max(1, positions)


def distil(job: QatJob, items: int, batch_loss: Callable[[np.ndarray], Any],
           validate: Callable[[], dict[str, Any]],
           rank: Callable[[dict[str, Any]], tuple[float, ...]],
           first_line: dict[str, Any] | None = None) -> QatTraining:
    """Train `job.student` on `items` training items in shuffled batches (module docstring);
    `first_line` adds fields to the metrics line before training."""
    import torch

    settings, student = job.settings, job.student
    before = validate()
    job.log({"epoch": 0, "train_loss": None, **before, **(first_line or {}), "steps": 0,
             "seconds": 0.0})
    per_epoch = math.ceil(items / job.batch_size)
    planned = max(1, math.ceil(settings.epochs * per_epoch))
    if settings.max_steps is not None:
        planned = min(planned, settings.max_steps)
    params = [p for p in student.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=settings.lr, weight_decay=0.0)
    schedule = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda step: 0.5 * (1.0 + math.cos(math.pi * min(step, planned) / planned)))
    best_state, best, chosen = copy.deepcopy(student.state_dict()), before, 0
    step, epoch, ended_by = 0, 0, "planned length"
    started = time.perf_counter()
    bar = progress_bar(job.console)
    bar.start()
    task = bar.add_task("quantisation-aware training", total=planned)
    while step < planned:
        epoch += 1
        order = np.random.default_rng(job.seed + epoch).permutation(items)
        student.train()
        losses = []
        for start in range(0, len(order), job.batch_size):
            loss = batch_loss(order[start:start + job.batch_size])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            schedule.step()
            losses.append(float(loss.detach()))
            step += 1
            bar.update(task, advance=1)
            if step >= planned:
                ended_by = "max_steps" if settings.max_steps == planned else "planned length"
                break
            if not job.deadline.fits(0.0):
                ended_by = "time budget"
                break
        student.eval()
        after = validate()
        job.log({"epoch": epoch, "train_loss": float(np.mean(losses)), **after, "steps": step,
                 "lr": optimizer.param_groups[0]["lr"],
                 "seconds": round(time.perf_counter() - started, 1)})
        if rank(after) > rank(best):
            best_state, best, chosen = copy.deepcopy(student.state_dict()), after, epoch
        if ended_by == "time budget":
            break
    bar.stop()
    student.eval()
    return QatTraining(state=best_state, before=before, after=best,
                       epochs=step / per_epoch, steps=step, ended_by=ended_by,
                       chosen_epoch=chosen)
