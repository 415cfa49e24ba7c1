"""Quantisation-aware training of a classifier (the classification task's `qat_trainer`).

Loss: `task_loss` x cross-entropy on the labels plus `distillation` x T^2 x KL(student ||
float model) on logits softened by the temperature T, the float model's outputs being the soft
targets.
Inputs go through the deployment reference transform (no augmentation: a short phase at a low
learning rate that adapts the weights to their quantisation, not a new training), decoded once
and held in memory when they fit. The float model's logits are computed once. Validation before
training and after each epoch: accuracy, loss and top-1 agreement with the float model. The
epoch kept (before training included) is the one closest to passing verify's int8 gates on
validation: the fewest points short of the agreement and accuracy-drop budgets together, then
the best agreement, then the best accuracy.
"""

from __future__ import annotations

import math
import time
from typing import Any

import numpy as np

from edgetl.export.qat_phase import QatJob, QatTraining
from edgetl.train.progress import progress_bar

CACHE_BYTES = 2 * 1024 ** 3  # preprocessed inputs held in memory up to this size
EVAL_BATCH = 32


class _Inputs:
    """Model inputs of a list of samples by index, decoded once when they fit in memory."""

    def __init__(self, samples: list[Any], spec: Any) -> None:
        self.paths = [s.path for s in samples]
        self.spec = spec
        channels, (height, width) = 3, spec.input_size
        self.cached: np.ndarray | None = None
        if len(samples) * channels * height * width * 4 <= CACHE_BYTES:
            self.cached = self._decode(list(range(len(samples))))

    def _decode(self, index: list[int]) -> np.ndarray:
        from edgetl.artifact.reference import preprocess_batch

        parts = [preprocess_batch([self.paths[i] for i in index[s:s + EVAL_BATCH]], self.spec)
                 for s in range(0, len(index), EVAL_BATCH)]
        return np.concatenate(parts) if parts else np.zeros((0,), np.float32)

    def __len__(self) -> int:
        return len(self.paths)

    def take(self, index: list[int] | np.ndarray) -> np.ndarray:
        index = list(index)
        return self.cached[index] if self.cached is not None else self._decode(index)


def _logits(model: Any, inputs: _Inputs) -> Any:
    import torch

    model.eval()
    with torch.no_grad():
        return torch.cat([model(torch.from_numpy(inputs.take(range(s, min(s + EVAL_BATCH,
                                                                        len(inputs))))))
                          for s in range(0, len(inputs), EVAL_BATCH)])


def _figures(logits: Any, labels: Any, reference_top1: Any) -> dict[str, Any]:
    import torch.nn.functional as F

    if len(labels) == 0:
        return {"val_accuracy": None, "val_loss": None, "val_agreement": None, "images": 0}
    top1 = logits.argmax(1)
    return {"val_accuracy": float((top1 == labels).float().mean()),
            "val_loss": float(F.cross_entropy(logits, labels)),
            "val_agreement": float((top1 == reference_top1).float().mean()),
            "images": len(labels)}


def gate_shortfall(figures: dict[str, Any], float_accuracy: float | None,
                   budgets: Any) -> float:
    """Points by which validation figures miss verify's gates (agreement, accuracy drop)."""
    if budgets is None or figures["val_agreement"] is None or float_accuracy is None:
        return 0.0
    agreement_short = max(0.0, 100.0 * (budgets.top1_agreement - figures["val_agreement"]))
    drop = 100.0 * (float_accuracy - figures["val_accuracy"])
    return agreement_short + max(0.0, drop - budgets.accuracy_points)


def _rank(figures: dict[str, Any], float_accuracy: float | None,
          budgets: Any) -> tuple[float, float, float]:
    """Larger is better: closest to the gates, then agreement, then accuracy."""
    return (-gate_shortfall(figures, float_accuracy, budgets),
            figures["val_agreement"] or 0.0, figures["val_accuracy"] or 0.0)


def train_classifier(job: QatJob) -> QatTraining:
    """Distil the float classifier into its fake-quantised copy (module docstring)."""
    import copy

    import torch
    import torch.nn.functional as F

    settings = job.settings
    names = list(job.record.names)
    train = job.run.samples("train")
    val = job.run.dataset().by_split("val")
    train_inputs, val_inputs = _Inputs(train, job.spec), _Inputs(val, job.spec)
    train_labels = torch.tensor([names.index(s.label) for s in train])
    val_labels = torch.tensor([names.index(s.label) for s in val], dtype=torch.long)
    soft_targets = _logits(job.teacher, train_inputs)
    val_reference = _logits(job.teacher, val_inputs).argmax(1) if len(val) else None
    float_accuracy = float((val_reference == val_labels).float().mean()) if len(val) else None
    student = job.student

    def validate() -> dict[str, Any]:
        if not len(val):
            return _figures(torch.zeros(0), val_labels, None)
        return _figures(_logits(student, val_inputs), val_labels, val_reference)

    before = validate()
    job.log({"epoch": 0, "train_loss": None, **before, "float_val_accuracy": float_accuracy,
             "steps": 0, "seconds": 0.0})
    per_epoch = math.ceil(len(train) / job.batch_size)
    planned = max(1, math.ceil(settings.epochs * per_epoch))
    if settings.max_steps is not None:
        planned = min(planned, settings.max_steps)
    params = [p for p in student.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=settings.lr, weight_decay=0.0)
    schedule = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda step: 0.5 * (1.0 + math.cos(math.pi * min(step, planned) / planned)))
    temperature, weight = settings.temperature, settings.distillation
    best_state, best, chosen = copy.deepcopy(student.state_dict()), before, 0
    after, step, epoch, ended_by = before, 0, 0, "planned length"
    started = time.perf_counter()
    bar = progress_bar(job.console)
    bar.start()
    task = bar.add_task("quantisation-aware training", total=planned)
    while step < planned:
        epoch += 1
        order = np.random.default_rng(job.seed + epoch).permutation(len(train))
        student.train()
        losses = []
        for start in range(0, len(order), job.batch_size):
            index = order[start:start + job.batch_size]
            x = torch.from_numpy(train_inputs.take(index))
            out = student(x)
            loss = settings.task_loss * F.cross_entropy(out, train_labels[index])
            if weight > 0:
                soft = F.softmax(soft_targets[index] / temperature, dim=1)
                loss = loss + weight * temperature ** 2 * F.kl_div(
                    F.log_softmax(out / temperature, dim=1), soft, reduction="batchmean")
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
        after = validate()
        job.log({"epoch": epoch, "train_loss": float(np.mean(losses)), **after, "steps": step,
                 "lr": optimizer.param_groups[0]["lr"],
                 "seconds": round(time.perf_counter() - started, 1)})
        if _rank(after, float_accuracy, job.budgets) > _rank(best, float_accuracy, job.budgets):
            best_state, best, chosen = copy.deepcopy(student.state_dict()), after, epoch
        if ended_by == "time budget":
            break
    bar.stop()
    student.eval()
    return QatTraining(state=best_state, before=before, after=best,
                       epochs=step / per_epoch, steps=step, ended_by=ended_by,
                       chosen_epoch=chosen)
