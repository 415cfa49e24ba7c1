"""Every command's help, walked through the real app: right for every task it serves, and flags
without value placeholders (issue 29)."""

from __future__ import annotations

import re

import pytest
from cli_help import commands, help_text

# What names each task in a help text: its name, and its headline metric.
TASK_WORDS = {
    "classification": r"(?i:\bclassif(ication|ier))",
    "detection": r"(?i:\bdetect(ion|or)\b)",
    "semantic": r"(?i:\bsemantic\b)",
    "instance": r"(?i:\binstances?\b)",
}
METRIC_WORDS = {
    "classification": r"(?i:\baccuracy\b)",
    "detection": r"(?<!mask )\bmAP\b",
    "semantic": r"\bmIoU\b",
    "instance": r"\bmask mAP\b",
}
COMMANDS = sorted(commands())


def test_every_command_is_walked() -> None:
    """The walk sees the whole CLI (a command missing here would go unchecked)."""
    assert {"evaluate", "predict", "bench", "export", "verify", "finetune", "select",
            "data inspect", "data split", "models list"} <= set(COMMANDS)


def named(text: str, words: dict[str, str]) -> set[str]:
    return {task for task, pattern in words.items() if re.search(pattern, text)}


@pytest.mark.parametrize("command", COMMANDS)
def test_help_names_every_task_or_none(command: str) -> None:
    text = help_text(command)
    for kind, words in (("task", TASK_WORDS), ("metric", METRIC_WORDS)):
        seen = named(text, words)
        assert not seen or seen == set(words), (
            f"edgetl {command} --help names the {kind} of {sorted(seen)} but not of "
            f"{sorted(set(words) - seen)}")


@pytest.mark.parametrize("command", COMMANDS)
def test_flags_show_no_value_placeholder(command: str) -> None:
    text = help_text(command)
    assert "<bool>" not in text
    assert re.search(r"--help\s+Show this message", text), text


def test_the_check_catches_a_single_task_help() -> None:
    """The words the test looks for do tell one task from four."""
    old_evaluate = ("Accuracy with a bootstrap interval, per-class P/R/F1, confusion matrix, "
                    "ROC-AUC")
    assert named(old_evaluate, METRIC_WORDS) == {"classification"}
    assert named("mask mAP and box mAP", METRIC_WORDS) == {"detection", "instance"}
    assert named("mask mAP", METRIC_WORDS) == {"instance"}


def test_version_is_the_package_version() -> None:
    """`edgetl --version` and pyproject.toml say the same release (0.2.0: the four tasks)."""
    import tomllib
    from pathlib import Path

    from reliability_common import edgetl

    project = tomllib.loads((Path(__file__).resolve().parents[1] / "pyproject.toml")
                            .read_text())["project"]["version"]
    proc = edgetl("--version")
    assert proc.returncode == 0 and proc.stdout.strip() == f"edgetl {project}"
    assert project == "0.2.0"
