"""`edgetl recipes keys` and docs/recipe-keys.md cover every key of the recipe schema;
`edgetl recipes list` shows each shipped recipe with the figure its header cites."""

from __future__ import annotations

import json
import re
import typing
from pathlib import Path

from pydantic import BaseModel
from reliability_common import edgetl

from edgetl.recipe import Recipe
from edgetl.recipe_keys import keys_markdown

ROOT = Path(__file__).resolve().parents[1]
DOC = ROOT / "docs" / "recipe-keys.md"


def every_key(model: type[BaseModel] = Recipe, prefix: str = "") -> list[str]:
    """The schema's key paths, walked here independently of the generator."""
    out = []
    for name, field in model.model_fields.items():
        out.append(prefix + name)
        annotation = field.annotation
        listed = typing.get_origin(annotation) is list
        candidates = [annotation, *typing.get_args(annotation)]
        inner = next((c for c in candidates
                      if isinstance(c, type) and issubclass(c, BaseModel)), None)
        if inner is not None:
            out += every_key(inner, f"{prefix}{name}.{'*.' if listed else ''}")
    return out


def documented(text: str) -> dict[str, list[str]]:
    rows = {}
    for line in text.splitlines():
        match = re.match(r"\| `([^`]+)` \|(.*)\|\s*$", line)
        if match:
            rows[match.group(1)] = [c.strip() for c in re.split(r"(?<!\\)\|", match.group(2))]
    return rows


def test_reference_names_every_schema_key_with_a_description() -> None:
    rows = documented(DOC.read_text(encoding="utf-8"))
    keys = every_key()
    assert len(keys) > 100 and "data.group_from_name" in keys
    missing = [k for k in keys if k not in rows]
    assert not missing, f"docs/recipe-keys.md lacks {missing}: run edgetl recipes keys " \
                        "--markdown docs/recipe-keys.md"
    assert set(rows) == set(keys), set(rows) - set(keys)
    assert all(cells[-1] for cells in rows.values()), [k for k, c in rows.items() if not c[-1]]
    assert rows["data.near_duplicate_threshold"][:2] == ["int", "6"]


def test_reference_file_is_what_the_command_writes(tmp_path: Path) -> None:
    assert DOC.read_text(encoding="utf-8") == keys_markdown(), \
        "docs/recipe-keys.md is out of date: run edgetl recipes keys --markdown " \
        "docs/recipe-keys.md"
    out = tmp_path / "keys.md"
    proc = edgetl("recipes", "keys", "--markdown", out)
    assert proc.returncode == 0, proc.stderr
    assert out.read_text(encoding="utf-8") == DOC.read_text(encoding="utf-8")
    listed = edgetl("recipes", "keys", "--json", "-")
    assert listed.returncode == 0, listed.stderr
    assert [k["path"] for k in json.loads(listed.stdout)] == every_key()


def test_recipes_list_shows_task_backbone_size_and_cited_figure() -> None:
    proc = edgetl("recipes", "list", ROOT / "recipes", "--json", "-")
    assert proc.returncode == 0, proc.stderr
    rows = {Path(r["path"]).stem: r for r in json.loads(proc.stdout)}
    assert set(rows) >= {"detection-lite0", "semantic-lite0", "instance-mobilenetv2",
                         "classification-lite0-cpu", "elpv-quickstart"}
    det = rows["detection-mobilenetv2"]
    assert (det["task"], det["backbone"], det["input_size"]) == \
        ("detection", "mobilenetv2_100", "320")
    assert "mAP 0.365" in det["measured"] and "select-raccoon" in det["measured"]
    assert "mask mAP 0.443" in rows["instance-mobilenetv2"]["measured"]
    assert all(r["measured"] != "-" for r in rows.values())
