"""Recipe schema (pydantic v2, unknown keys rejected), YAML loading and `--set` overrides.

A recipe is the whole description of a fine-tuning run. The resolved recipe (after overrides) is
written into the run folder and hashed into every checkpoint, so a run can be reproduced and
resumed with exactly the settings it started with.
"""

from __future__ import annotations

import difflib
import hashlib
import json
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, Field, ValidationError, field_validator, model_validator

from edgetl import tasks
from edgetl.errors import RecipeError, UsageError
from edgetl.recipe_sections import (
    AugmentConfig,
    DataConfig,
    DetectorConfig,
    EarlyStopping,
    HeadSettings,
    InstanceConfig,
    LossConfig,
    ModelConfig,
    PhaseConfig,
    PreprocessOverrides,
    QuantizeConfig,
    SegmenterConfig,
    SelectMetric,
    TileConfig,
    TrainConfig,
    _Strict,
)
from edgetl.spec import DEFAULT_TASK

# The sections stay importable from here, as before they moved to recipe_sections.
__all__ = [
    "AugmentConfig", "DataConfig", "DetectorConfig", "EarlyStopping", "HeadSettings",
    "InstanceConfig", "LossConfig", "ModelConfig", "PhaseConfig", "PreprocessOverrides",
    "QuantizeConfig", "Recipe", "SegmenterConfig", "SelectMetric", "TaskName", "TileConfig",
    "TrainConfig",
    "apply_override", "classification_rules", "detection_rules", "instance_rules", "load_recipe",
    "require_data_source", "semantic_rules", "yaml_error_words",
]

# The tasks a recipe may name, as a Literal so that the schema, its error words and the key
# reference list them as they always did (tasks known when the schema is built).
TaskName = Literal[tasks.names()]  # type: ignore[valid-type]


class Recipe(_Strict):
    # The run's name: the default run folder is runs/<name>.
    name: str = "run"
    # One line saying what the recipe is for.
    description: str = ""
    # What the model learns: classification, detection, semantic or instance (segmentation).
    task: TaskName = DEFAULT_TASK
    # Where the images come from and how they are split.
    data: DataConfig = DataConfig()
    # The backbone, its weights, the input size and each task's head.
    model: ModelConfig = ModelConfig()
    preprocess: PreprocessOverrides = PreprocessOverrides()
    # Training-time augmentation: a preset and its overrides.
    augment: AugmentConfig = AugmentConfig()
    # Detection and instance segmentation: train and predict on tiles of each image (absent:
    # whole images).
    tile: TileConfig | None = None
    # The training loss (classification and semantic segmentation).
    loss: LossConfig = LossConfig()
    # Batch sizes, seed, device, checkpoint selection and the spike guard.
    train: TrainConfig = TrainConfig()
    # The training phases in order (A head only, B last blocks, C all).
    phases: list[PhaseConfig] = Field(default_factory=lambda: [PhaseConfig(name="A", epochs=3)])
    # Classification: a target on one class, CLASS:recall=R or CLASS:precision=P. Reports pick
    # its threshold on the validation split; `export` records it in the artifact.
    operating_point: str | None = None
    # int8 export: quantisation-aware fine-tuning when post-training int8 keeps layers float.
    quantize: QuantizeConfig | None = None

    @field_validator("operating_point")
    @classmethod
    def _operating_point(cls, value: str | None) -> str | None:
        from edgetl.decision import Target

        if value is None:
            return None
        try:
            return Target.parse(value).text()
        except UsageError as exc:  # the same words, in the recipe's voice
            raise ValueError(exc.message) from None

    @field_validator("phases")
    @classmethod
    def _phase_order(cls, phases: list[PhaseConfig]) -> list[PhaseConfig]:
        names = [p.name for p in phases]
        if not names:
            raise ValueError("at least one phase is needed")
        if names != sorted(names) or len(set(names)) != len(names):
            raise ValueError(f"phases must be distinct and in order A, B, C; got {names}")
        return phases

    @model_validator(mode="after")
    def _task_settings(self) -> Recipe:
        task = tasks.get(self.task)
        allowed = task.select_metrics
        chosen = [("train.select_metric", self.train.select_metric)] + [
            (f"phases.{p.name}.early_stopping.metric", p.early_stopping.metric)
            for p in self.phases if p.early_stopping is not None]
        for where, metric in chosen:
            if metric is not None and metric not in allowed:
                raise ValueError(f"{where} {metric} does not apply to {self.task}; use one of "
                                 f"{', '.join(allowed)}")
        if self.tile is not None and not task.supports_tiles:
            raise ValueError(f"tile applies to the tasks that train on tiles; {self.task} "
                             "does not (remove the tile section)")
        task.load("recipe_rules")(self)
        return self

    @property
    def selection_metric(self) -> str:
        """The metric that picks the best checkpoint (the task's default unless set)."""
        return self.train.select_metric or tasks.get(self.task).select_metrics[0]

    def stopping_metric(self, phase: PhaseConfig) -> str | None:
        """The metric a phase's early stopping watches (None: no early stopping)."""
        if phase.early_stopping is None:
            return None
        return phase.early_stopping.metric or self.selection_metric

    def sha256(self) -> str:
        dump = self.model_dump(mode="json")
        for section in ("quantize", "tile"):  # sections added later: absent, hash as before
            if dump.get(section) is None:
                dump.pop(section, None)
        text = json.dumps(dump, sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(text.encode()).hexdigest()

    def to_yaml(self) -> str:
        return yaml.safe_dump(self.model_dump(mode="json"), sort_keys=False)


# --------------------------------------------------------------------------- task rules
# Each task's `recipe_rules`: the settings that do not apply to it, checked after its metrics.
def _own_losses(recipe: Recipe) -> None:
    if recipe.loss != LossConfig():
        raise ValueError(f"loss settings apply to classification and semantic; "
                         f"{recipe.task} trains with its head's own losses (remove the loss "
                         "section)")


def _no_operating_point(recipe: Recipe) -> None:
    if recipe.operating_point is not None:
        raise ValueError("operating_point applies to classification")


def classification_rules(recipe: Recipe) -> None:
    """A classifier takes no segmentation loss."""
    if recipe.loss.type in ("dice", "ce_dice"):
        raise ValueError(f"loss.type {recipe.loss.type} applies to semantic segmentation")


def detection_rules(recipe: Recipe) -> None:
    """A detector trains with its head's losses and has no operating point."""
    _own_losses(recipe)
    _no_operating_point(recipe)


def instance_rules(recipe: Recipe) -> None:
    """As a detector, and its detector settings live in model.instance."""
    _own_losses(recipe)
    if recipe.model.detector != DetectorConfig():
        raise ValueError("task instance takes its detector settings in model.instance "
                         "(the same keys as model.detector, plus the mask branch's)")
    _no_operating_point(recipe)


def semantic_rules(recipe: Recipe) -> None:
    """No operating point, and only the class weights and losses a pixel classifier uses."""
    _no_operating_point(recipe)
    if recipe.loss.class_weights in ("sqrt", "effective"):
        raise ValueError(f"loss.class_weights {recipe.loss.class_weights} applies to "
                         "classification; semantic takes balanced or a list")
    if recipe.loss.label_smoothing or recipe.loss.balanced_sampler:
        raise ValueError("label_smoothing and balanced_sampler apply to classification")
        # (never reached, as before this moved here: kept as it was, see the seam-a report)
        if any(p.cached_views != ["identity"] for p in recipe.phases):
            raise ValueError("cached_views apply to classification only")


# --------------------------------------------------------------------------- errors in words
def _valid_keys(model: type[BaseModel], loc: tuple[Any, ...]) -> list[str]:
    """The field names allowed at the place `loc` points to (for suggestions)."""
    current: Any = model
    for part in loc[:-1]:
        if isinstance(part, int):
            continue
        if not (isinstance(current, type) and issubclass(current, BaseModel)):
            return []
        field = current.model_fields.get(str(part))
        if field is None:
            return []
        annotation = field.annotation
        args = getattr(annotation, "__args__", ())
        candidates = [annotation, *args]
        current = next(
            (c for c in candidates if isinstance(c, type) and issubclass(c, BaseModel)), None
        )
    if isinstance(current, type) and issubclass(current, BaseModel):
        return list(current.model_fields)
    return []


def _explain(exc: ValidationError, origin: str) -> RecipeError:
    first = exc.errors()[0]
    loc = tuple(first.get("loc", ()))
    where = ".".join(str(p) for p in loc) or "(top level)"
    if first.get("type") == "extra_forbidden":
        key = str(loc[-1]) if loc else ""
        close = difflib.get_close_matches(key, _valid_keys(Recipe, loc), n=1, cutoff=0.5)
        hint = f"did you mean '{'.'.join(str(p) for p in loc[:-1] + (close[0],))}'?" if close \
            else "see recipes/ for the valid keys"
        return RecipeError(f"{origin}: unknown recipe key '{where}'", hint)
    more = f" (+{len(exc.errors()) - 1} more)" if len(exc.errors()) > 1 else ""
    return RecipeError(f"{origin}: recipe key '{where}': {first.get('msg')}{more}")


# --------------------------------------------------------------------------- loading
def _parse_value(text: str) -> Any:
    """`--set` values are YAML scalars or flow collections: 3, 1e-3, true, [1, 2], null."""
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise RecipeError(f"cannot parse --set value {text!r}: {exc}") from exc


def apply_override(data: dict[str, Any], assignment: str) -> None:
    """Apply one `a.b.c=value` (list items by index: phases.1.epochs=5) to the raw recipe dict."""
    if "=" not in assignment:
        raise RecipeError(f"--set needs key=value, got {assignment!r}")
    key, raw = assignment.split("=", 1)
    parts = [p for p in key.strip().split(".") if p]
    if not parts:
        raise RecipeError(f"--set has an empty key in {assignment!r}")
    node: Any = data
    for i, part in enumerate(parts[:-1]):
        if isinstance(node, list):
            node = _list_item(node, part, parts[: i + 1])
        else:
            node = node.setdefault(part, {})
    last = parts[-1]
    if isinstance(node, list):
        index = _list_index(node, last, parts)
        node[index] = _parse_value(raw)
    elif isinstance(node, dict):
        node[last] = _parse_value(raw)
    else:
        raise RecipeError(f"--set {key}: '{'.'.join(parts[:-1])}' is not a section")


LENGTHS = ("epochs", "steps")  # a phase's length, one or the other


def _one_length(data: dict[str, Any], overrides: list[str]) -> None:
    """A `--set phases.X.steps` replaces the file's `epochs` of that phase, and the reverse, so
    a phase's length can be changed either way from the command line (both set: refused)."""
    named: dict[str, set[str]] = {}
    for assignment in overrides:
        parts = [p for p in assignment.split("=", 1)[0].strip().split(".") if p]
        if len(parts) == 3 and parts[0] == "phases" and parts[2] in LENGTHS:
            named.setdefault(parts[1], set()).add(parts[2])
    phases = data.get("phases")
    for which, keys in named.items():
        if len(keys) == 1 and isinstance(phases, list):
            phase = _list_item(phases, which, ["phases", which])
            if isinstance(phase, dict):
                phase.pop(next(k for k in LENGTHS if k not in keys), None)


def _list_index(node: list[Any], part: str, path: list[str]) -> int:
    if not part.isdigit() or int(part) >= len(node):
        raise RecipeError(f"--set {'.'.join(path)}: '{part}' is not an index below {len(node)}")
    return int(part)


def _list_item(node: list[Any], part: str, path: list[str]) -> Any:
    # phases may also be addressed by name: phases.B.epochs=5
    for item in node:
        if isinstance(item, dict) and item.get("name") == part:
            return item
    return node[_list_index(node, part, path)]


def yaml_error_words(exc: yaml.YAMLError) -> str:
    """PyYAML's error on one line, keeping where it is (1-based line and column)."""
    mark = getattr(exc, "problem_mark", None)
    problem = getattr(exc, "problem", None)
    if mark is None or problem is None:
        return " ".join(str(exc).split())
    text = f"line {mark.line + 1}, column {mark.column + 1}: {problem}"
    context, where = getattr(exc, "context", None), getattr(exc, "context_mark", None)
    if context:
        text += f" ({context}" + (f" at line {where.line + 1}, column {where.column + 1}"
                                  if where is not None else "") + ")"
    return text


def require_data_source(recipe: Recipe, origin: str | Path | None = None) -> str:
    """The recipe's data source; none is a recipe error (exit 2), never a silent default."""
    source = (recipe.data.source or "").strip()
    if not source:
        where = f"{origin} names" if origin is not None else "the recipe names"
        raise RecipeError(f"{where} no data: give --data PATH or set data.source in the recipe")
    return source


def load_recipe(path: str | Path | None, overrides: list[str] | None = None) -> Recipe:
    """Read YAML (or start from defaults when `path` is None), apply overrides, validate."""
    # Where the images come from and how they are split.
    data: dict[str, Any] = {}
    origin = "defaults"
    if path is not None:
        file = Path(path)
        origin = str(file)
        if not file.is_file():
            raise RecipeError(f"recipe not found: {file}", "see recipes/ for examples")
        try:
            text = file.read_text(encoding="utf-8")
        except UnicodeDecodeError as exc:
            raise RecipeError(f"{file} is not UTF-8 text (byte {exc.object[exc.start]:#04x} at "
                              f"offset {exc.start})", "save the recipe as UTF-8") from exc
        try:
            loaded = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            raise RecipeError(f"{file} is not valid YAML: {yaml_error_words(exc)}") from exc
        if loaded is None:
            raise RecipeError(f"{file} is empty: a recipe file must say what to train",
                              "start from one in recipes/")
        if not isinstance(loaded, dict):
            raise RecipeError(f"{file} must hold a mapping at the top level")
        data = loaded
    for assignment in overrides or []:
        apply_override(data, assignment)
    _one_length(data, overrides or [])
    try:
        return Recipe.model_validate(data)
    except ValidationError as exc:
        raise _explain(exc, origin) from None
