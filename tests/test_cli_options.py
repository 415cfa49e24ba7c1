"""docs/cli-options.md is the CLI's option vocabulary: its table matches the real commands."""

from __future__ import annotations

import re
from collections import defaultdict
from pathlib import Path

import pytest
from cli_help import commands, hidden_options, visible_options
from reliability_common import edgetl

DOC = Path(__file__).resolve().parents[1] / "docs" / "cli-options.md"
COMMANDS = commands()


def table_rows(heading_words: str) -> list[list[str]]:
    """The rows (cells stripped) of the first table after the heading holding these words."""
    lines = DOC.read_text(encoding="utf-8").splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("#")
                 and heading_words in line)
    rows, seen_table = [], False
    for line in lines[start + 1:]:
        if line.startswith("|"):
            seen_table = True
            cells = [c.strip() for c in re.split(r"(?<!\\)\|", line)[1:-1]]
            if not set("".join(cells)) <= set("-: "):
                rows.append(cells)
        elif seen_table:
            break
    return rows[1:]  # without the header


def code(cell: str) -> str:
    return cell.strip().strip("`")


VOCABULARY = table_rows("one vocabulary")
OLD = table_rows("Old spellings")


def test_table_is_read() -> None:
    assert len(VOCABULARY) >= 15 and len(OLD) >= 5


@pytest.mark.parametrize("row", VOCABULARY, ids=lambda r: f"{r[0]} {r[3]}")
def test_each_row_matches_its_commands(row: list[str]) -> None:
    option, value, default, names = code(row[0]), row[1], row[2], row[3]
    for name in (n.strip() for n in names.split(",")):
        assert name in COMMANDS, f"{name} is not a command"
        options = visible_options(COMMANDS[name])
        assert option in options, f"edgetl {name} has no {option}"
        param = options[option]
        assert param.is_flag == (value == "flag"), f"{name} {option}: flag or value?"
        if re.fullmatch(r"`[^`]+`", default):
            assert str(param.default) == code(default), f"{name} {option} default"


def test_every_shared_option_is_in_the_table() -> None:
    """An option two commands share has rows naming every command that has it."""
    listed: dict[str, set[str]] = defaultdict(set)
    for row in VOCABULARY:
        listed[code(row[0])] |= {n.strip() for n in row[3].split(",")}
    having: dict[str, set[str]] = defaultdict(set)
    for name, command in COMMANDS.items():
        for option in visible_options(command):
            having[option].add(name)
    for option, names in having.items():
        if len(names) > 1 and option != "--help":
            assert listed.get(option) == names, (option, sorted(names))


@pytest.mark.parametrize("row", OLD, ids=lambda r: code(r[0]))
def test_old_spellings_are_hidden_aliases(row: list[str]) -> None:
    old, new, name = code(row[0]), code(row[1]), row[2].strip()
    assert old in hidden_options(COMMANDS[name])
    assert new in visible_options(COMMANDS[name])


def test_select_old_timing_names_still_work_with_a_note(tmp_path: Path) -> None:
    """An old spelling reaches the same check as the new one, with the note on stderr."""
    proc = edgetl("select", tmp_path / "none.yaml", "--budget-ms", "5", "--bench-iters", "0")
    assert proc.returncode == 2
    assert "note: --bench-iters is deprecated" in proc.stderr
    assert "--iters must be >= 1" in proc.stderr


def test_json_dash_is_the_report_alone_on_stdout(tmp_path: Path) -> None:
    """`--json -`: standard output parses as the report; the table went to standard error."""
    import json

    import numpy as np
    from imagegen import make_class_tree

    make_class_tree(tmp_path / "tree", {"a": 4, "b": 4}, np.random.default_rng(0))
    proc = edgetl("data", "inspect", tmp_path / "tree", "--json", "-")
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout)
    assert report["classes"] == {"a": 4, "b": 4} and report["n_images"] == 8
    assert "readable images" in proc.stderr
    bad = edgetl("data", "inspect", tmp_path / "tree", "--near-dup-threshold", "65")
    assert bad.returncode == 2 and "outside -1-64" in bad.stderr


def test_recipe_near_duplicate_threshold_has_the_cli_unit() -> None:
    """The recipe key accepts exactly what --near-dup-threshold accepts (-1 to 64)."""
    from edgetl.errors import RecipeError
    from edgetl.recipe import load_recipe

    for value in (-1, 0, 40, 64):
        recipe = load_recipe(None, [f"data.near_duplicate_threshold={value}"])
        assert recipe.data.near_duplicate_threshold == value
    for value in (-2, 65):
        with pytest.raises(RecipeError):
            load_recipe(None, [f"data.near_duplicate_threshold={value}"])


def test_evaluate_json_dash_and_device_auto(fixture_run: Path) -> None:
    """evaluate --json - (the default --device auto resolves to this machine's device)."""
    import json

    proc = edgetl("evaluate", fixture_run, "--data", fixture_run / "split.csv", "--json", "-")
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout)
    assert report["split"] == "test" and 0.0 <= report["accuracy"] <= 1.0
    assert "accuracy" in proc.stderr  # the summary went to standard error
