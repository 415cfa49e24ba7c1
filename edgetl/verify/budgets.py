"""A task's default verify gates and the flags that override them, one logic for every task.

Each task's verify module holds a `BudgetTable` (its task record's `verify_budgets` slot names
it): the budgets record per format or precision, the two fields `--agreement-budget` and
`--metric-drop-budget` set, and how help text names them. Calling the table gives verify the
artifact's budgets and their record for the report; the CLI reads its rows for help text.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from typing import Any

PRECISIONS = ("fp32", "fp16", "int8")  # the order help text lists defaults in


def fields_record(budgets: Any) -> dict[str, Any]:
    """The report's record of budgets: every field by name."""
    return {**budgets.__dict__}


@dataclass(frozen=True)
class BudgetTable:
    """One task's default budgets (dataclass records) and how the two flags override them."""

    rows: Mapping[str, Any]  # budgets by format name, else by precision
    fallback: str  # the row for an artifact neither key finds
    agreement: str  # the field --agreement-budget sets (the parity gate)
    drop: str  # the field --metric-drop-budget sets (the dataset gate, in points)
    # help text: what the parity and dataset gates measure, and the task in words
    agreement_words: str
    drop_words: str
    task_words: str
    record: Callable[[Any], dict[str, Any]] = fields_record  # the budgets as the report has them

    def default(self, fmt: str, precision: str) -> Any:
        """The row for an artifact: its format's, else its precision's, else the fallback."""
        return self.rows.get(fmt) or self.rows.get(precision) or self.rows[self.fallback]

    def pick(self, fmt: str, precision: str, agreement: float | None,
             drop: float | None) -> Any:
        """The artifact's budgets with the flag overrides (None: the default) applied."""
        changes: dict[str, Any] = {}
        if agreement is not None:
            changes[self.agreement] = agreement
        if drop is not None:
            changes[self.drop] = drop
        return replace(self.default(fmt, precision), **changes)

    def __call__(self, art: Any, agreement: float | None, drop: float | None
                 ) -> tuple[Any, dict[str, Any]]:
        """A task's `verify_budgets`: the artifact's budgets and their record."""
        budgets = self.pick(art.format, art.precision, agreement, drop)
        return budgets, self.record(budgets)

    def per_precision(self, field: str) -> str:
        """`field`'s defaults for fp32/fp16/int8, as help text shows them ("1/0.995/0.98")."""
        return "/".join(f"{getattr(self.rows[p], field):g}" for p in PRECISIONS)
