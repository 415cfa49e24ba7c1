"""Issue 26, item 3: every model value the recipe schema accepts builds. Each task's model is
built, through its trainer's own `build_model`, at both bounds of every numeric key of the
model section it reads, and run once on a small input through its deployable module (what
export traces). The keys come from the schema itself, so a new key is covered automatically;
a numeric key without both bounds fails here, since "every value" could then not be tried."""

from __future__ import annotations

import math
import typing
from types import SimpleNamespace
from typing import Any

import annotated_types as at
import pytest
import torch
from pydantic import BaseModel
from reliability_common import edgetl, last_line

from edgetl import tasks
from edgetl.recipe import ModelConfig, Recipe
from edgetl.spec import TaskRecord

# Which settings section of `model` each task's model is built from (input_size: every task).
SECTION = {"classification": "head", "detection": "detector", "semantic": "segmenter",
           "instance": "instance"}
SMALL_INPUT = 64  # every other key is tried at this input size
LARGE_INPUT = 256  # a larger input_size runs for seconds: slow tests


def numeric_keys(model: type[BaseModel], prefix: str = "") -> dict[str, list[Any]]:
    """dotted key -> the values to try: both bounds of a number, every member of a Literal."""
    found: dict[str, list[Any]] = {}
    for name, field in model.model_fields.items():
        key = prefix + name
        annotation = field.annotation
        args = [a for a in typing.get_args(annotation) if a is not type(None)]
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            found.update(numeric_keys(annotation, key + "."))
            continue
        if typing.get_origin(annotation) is typing.Literal:
            if all(isinstance(a, (int, float)) and not isinstance(a, bool) for a in args):
                found[key] = list(args)
            continue
        kinds = [a for a in (args or [annotation]) if a in (int, float)]
        if not kinds:
            continue
        found[key] = bounds(key, kinds[0], field.metadata)
    return found


def bounds(key: str, kind: type, metadata: list[Any]) -> list[Any]:
    """The smallest and largest value the schema accepts (an open bound: one step inside)."""
    low = high = None
    step = 1 if kind is int else 1e-3
    for item in metadata:
        if isinstance(item, at.Ge):
            low = item.ge
        elif isinstance(item, at.Gt):
            low = item.gt + step
        elif isinstance(item, at.Le):
            high = item.le
        elif isinstance(item, at.Lt):
            high = item.lt - step
    assert low is not None and high is not None and math.isfinite(high), (
        f"model.{key} has no upper or lower bound in the recipe schema: give it both, so that "
        "every value it accepts can be shown to build")
    return [kind(low), kind(high)]


KEYS = numeric_keys(ModelConfig)


def cases() -> list[Any]:
    out = []
    for task, section in SECTION.items():
        for key, values in KEYS.items():
            if key == "input_size" or key.startswith(section + "."):
                out += [pytest.param(task, key, value, marks=[pytest.mark.slow]
                                     if key == "input_size" and value > LARGE_INPUT else [])
                        for value in values]
    return out


def test_every_settings_section_belongs_to_a_task() -> None:
    sections = {k.split(".")[0] for k in KEYS if "." in k}
    assert sections <= set(SECTION.values()), sections - set(SECTION.values())
    assert set(SECTION) == set(tasks.names())


def recipe_with(task: str, key: str, value: Any) -> Recipe:
    model: dict[str, Any] = {"architecture": "tf_efficientnet_lite0", "weights": "random",
                             "input_size": SMALL_INPUT}
    node = model
    *path, last = key.split(".")
    for part in path:
        node = node.setdefault(part, {})
    node[last] = value
    return Recipe.model_validate({"task": task, "model": model})


@pytest.mark.parametrize(("task", "key", "value"), cases())
def test_each_accepted_value_builds(task: str, key: str, value: Any) -> None:
    from edgetl.models.deployable import deployable
    from edgetl.train.trainer import trainer_for

    recipe = recipe_with(task, key, value)
    hooks = SimpleNamespace(recipe=recipe, task_record=TaskRecord(task=task,
                                                                  names=["a", "b", "c"]))
    torch.manual_seed(0)
    model, _ = trainer_for(recipe).build_model(hooks)
    module, _, _ = deployable(model.eval(), task)
    size = recipe.model.input_size
    with torch.no_grad():
        out = module(torch.zeros(1, 3, size, size))
    assert out is not None


def test_the_reported_width_trains_through_the_cli(tmp_path) -> None:  # noqa: ANN001
    """The issue's case: detection with fpn_channels 16 exited 70 (GroupNorm's 32 groups)."""
    import detgen

    data = detgen.make_voc(tmp_path / "voc", 16, seed=3)
    recipe = tmp_path / "r.yaml"
    recipe.write_text(
        "task: detection\ndata: {val_fraction: 0.2, test_fraction: 0.25}\n"
        "model: {architecture: tf_efficientnet_lite0, input_size: 64,\n"
        "        detector: {fpn_channels: 16, head_convs: 1}}\naugment: {preset: none}\n"
        "train: {batch_size: 8, eval_batch_size: 8, num_threads: 1}\n"
        "phases: [{name: A, epochs: 1, lr: 0.005}]\n")
    proc = edgetl("finetune", recipe, "--data", data, "--out", tmp_path / "run")
    assert proc.returncode == 0, proc.stderr
    record = (tmp_path / "run" / "best" / "checkpoint.json").read_text()
    assert '"fpn_channels": 16' in record


def test_an_odd_mask_resolution_is_refused_by_the_schema(tmp_path) -> None:  # noqa: ANN001
    recipe = tmp_path / "r.yaml"
    recipe.write_text("task: instance\nmodel: {instance: {mask_resolution: 15}}\n"
                      "phases: [{name: A, epochs: 1}]\n")
    proc = edgetl("finetune", recipe, "--out", tmp_path / "run")
    assert proc.returncode == 2, proc.stderr
    assert "mask_resolution" in last_line(proc.stderr) and "even" in last_line(proc.stderr)
    assert not (tmp_path / "run").exists()
