"""Rebuild a fine-tuned model from its checkpoint: the task's module tree, then its own weights.

Which module tree a checkpoint needs is the task's business (its `skeleton` slot, found by the
task record's task name; it builds the randomly initialised model from the checkpoint's
`architecture` and `head` settings without reading any pretrained file). Loading is strict:
a checkpoint that does not fit is an error, never a partial load.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from edgetl import tasks
from edgetl.checkpoint import BEST, CheckpointInfo, check_weights, read_checkpoint_info
from edgetl.errors import ArtifactError


def build_skeleton(info: CheckpointInfo) -> Any:
    """The randomly initialised model a checkpoint's weights belong to."""
    task = info.task_record.task
    unknown = ArtifactError(f"{info.folder}: this edgetl cannot load {task} models",
                            "upgrade edgetl or export the run with the version that trained it")
    # imported only when a checkpoint of the task is read
    return tasks.get(task, unknown).load("skeleton")(info)


def load_model(path: str | Path, which: str = BEST) -> tuple[Any, CheckpointInfo]:
    """Rebuild the model of a run's (or checkpoint folder's) weights, strictly, eval mode, CPU."""
    # not at the top: importing this module loads no torch
    from safetensors.torch import load_file

    info = read_checkpoint_info(path, which)
    check_weights(info)
    model = build_skeleton(info)
    try:
        state = load_file(str(info.weights_path))
    except Exception as exc:  # safetensors raises its own untyped errors on damaged files
        raise ArtifactError(f"{info.weights_path} cannot be read: {exc}",
                            "the checkpoint is damaged; re-run or resume the training") from exc
    missing, unexpected = model.load_state_dict(state, strict=False)
    if missing or unexpected:
        raise ArtifactError(
            f"{info.weights_path} does not fit {info.architecture} ({info.task_record.task}, "
            f"{info.num_classes} classes): missing {len(missing)}, unexpected {len(unexpected)} "
            "keys")
    model.eval()
    return model, info
