"""The recipe-key reference (`edgetl recipes keys`, docs/recipe-keys.md), generated from the
schema in recipe.py, and the shipped recipes' summary (`edgetl recipes list`).

A key's description is its `Field(description=...)`, else the comment on its line or the
comment lines right above it in recipe.py: the schema stays the one place a key is explained.
"""

from __future__ import annotations

import inspect
import re
import types
import typing
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from edgetl.recipe import Recipe, load_recipe

MEASURED = re.compile(r"^#\s*Measured:\s*(.+)$", re.M)


@dataclass(frozen=True)
class Key:
    path: str
    type: str
    default: str
    description: str


def _model_of(annotation: Any) -> type[BaseModel] | None:
    """The pydantic model inside an annotation (`X`, `X | None`, `list[X]`), if any."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in typing.get_args(annotation):
        found = _model_of(arg)
        if found is not None:
            return found
    return None


def _type_text(annotation: Any) -> str:
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if origin is typing.Literal:
        return " | ".join(repr(a) if isinstance(a, str) else str(a) for a in args)
    if origin in (typing.Union, types.UnionType):
        return " | ".join(_type_text(a) for a in args)
    if origin in (list, tuple):
        inner = ", ".join(_type_text(a) for a in args if a is not Ellipsis)
        return f"{origin.__name__}[{inner}]"
    if annotation is type(None):
        return "null"
    if isinstance(annotation, type):
        return "section" if issubclass(annotation, BaseModel) else annotation.__name__
    return str(annotation)


def _default_text(field: Any) -> str:
    if field.is_required():
        return "(required)"
    value = field.get_default(call_default_factory=True)
    if isinstance(value, BaseModel):
        return "(section)"
    if isinstance(value, list) and value and isinstance(value[0], BaseModel):
        return "[" + ", ".join(v.model_dump_json(exclude_defaults=True) for v in value) + "]"
    if value is None:
        return "null"
    if isinstance(value, bool):
        return str(value).lower()
    return str(list(value)) if isinstance(value, tuple) else str(value)


def _comments(model: type[BaseModel]) -> dict[str, str]:
    """Field name -> the comment on its line, or the comment lines right above it."""
    try:
        lines = inspect.getsource(model).splitlines()
    except (OSError, TypeError):
        return {}
    found: dict[str, str] = {}
    above: list[str] = []
    for line in lines:
        stripped = line.strip()
        if stripped.startswith("#"):
            above.append(stripped.lstrip("#").strip())
            continue
        match = re.match(r"    (\w+):\s*\S.*?(?:#\s*(.*))?$", line)
        if match and match.group(1) in getattr(model, "__annotations__", {}):
            text = match.group(2) or " ".join(above)
            if text:
                found[match.group(1)] = text
        above = []
    return found


def schema_keys(model: type[BaseModel] = Recipe, prefix: str = "") -> list[Key]:
    """Every key of the schema, sections first listed then their keys (phases as phases.*)."""
    keys: list[Key] = []
    comments: dict[str, str] = {}
    for cls in reversed(model.__mro__):  # a subclass's comment wins over its base's
        if isinstance(cls, type) and issubclass(cls, BaseModel) and cls is not BaseModel:
            comments.update(_comments(cls))
    for name, field in model.model_fields.items():
        path = f"{prefix}{name}"
        inner = _model_of(field.annotation)
        description = field.description or comments.get(name, "")
        if not description and inner is not None and inner.__doc__:
            description = inspect.cleandoc(inner.__doc__).split("\n\n")[0]
        keys.append(Key(path, _type_text(field.annotation), _default_text(field), description))
        if inner is not None:
            listed = typing.get_origin(field.annotation) is list
            keys += schema_keys(inner, f"{path}.{'*.' if listed else ''}")
    return keys


def keys_markdown(keys: list[Key] | None = None) -> str:
    """docs/recipe-keys.md, as `edgetl recipes keys --markdown` writes it."""
    rows = keys if keys is not None else schema_keys()
    head = ("# Recipe keys\n\nGenerated from the recipe schema (edgetl/recipe.py) by "
            "`edgetl recipes keys --markdown docs/recipe-keys.md`; tests/test_recipe_keys.py "
            "fails when it is out of date. Override any key with `--set key=value` (phases by "
            "name: `phases.B.epochs=5`). `phases.*` are the keys of each phase.\n\n"
            "| Key | Type | Default | Description |\n|---|---|---|---|\n")

    def cell(text: str) -> str:
        return text.replace("|", "\\|").replace("\n", " ")

    return head + "".join(f"| `{k.path}` | {cell(k.type)} | {cell(k.default)} | "
                          f"{cell(k.description)} |\n" for k in rows)


@dataclass(frozen=True)
class RecipeSummary:
    path: str
    name: str
    task: str
    backbone: str
    input_size: str
    measured: str


def recipe_folder() -> Path:
    """recipes/ in the working directory, else the one beside this checkout's package."""
    here = Path("recipes")
    if here.is_dir():
        return here
    return Path(__file__).resolve().parents[1] / "recipes"


def summarize(folder: Path) -> list[RecipeSummary]:
    """Each recipe under `folder` (templates, then examples/): what it trains, and the measured
    figure its header's `# Measured:` line cites."""
    from edgetl.errors import UsageError

    paths = sorted(folder.glob("*.yaml")) + sorted(folder.glob("*/*.yaml"))
    if not paths:
        raise UsageError(f"no recipes (*.yaml) in {folder}", "give the recipes folder")
    out = []
    for path in paths:
        recipe = load_recipe(path)
        measured = MEASURED.search(path.read_text(encoding="utf-8"))
        size = recipe.model.input_size
        out.append(RecipeSummary(
            path=str(path), name=recipe.name, task=recipe.task,
            backbone=recipe.model.architecture,
            input_size=str(size) if size else "the weights' own",
            measured=measured.group(1).strip() if measured else "-"))
    return out
