"""verify's classification checks: top-1 parity and the test-accuracy gate.

- parity: logit differences and top-1 agreement of the artifact against the torch model, with
  the conversion error alone (the artifact fed torchvision's tensors) reported beside it;
- accuracy: the artifact's test accuracy may not fall more than the budget (points) below the
  torch model's; both decide by argmax, or by the artifact's operating point when it carries one.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from edgetl.tasks.classification import TASK
from edgetl.verify.budgets import BudgetTable
from edgetl.verify.checks import Budgets, CheckResult


class _FormatRows(Mapping[str, Budgets]):
    """A classifier's gates, read from the format table when asked: a format's row by its
    name, a precision's by its first format's."""

    def __getitem__(self, key: str) -> Budgets:
        from edgetl.artifact.formats import FORMATS

        row = FORMATS.get(key) or next((f for f in FORMATS.values() if f.precision == key),
                                       None)
        if row is None:
            raise KeyError(key)
        return Budgets(top1_agreement=row.top1_agreement_budget,
                       accuracy_points=row.accuracy_budget_points)

    def __iter__(self) -> Iterator[str]:
        from edgetl.artifact.formats import FORMATS

        return iter(FORMATS)

    def __len__(self) -> int:
        from edgetl.artifact.formats import FORMATS

        return len(FORMATS)


# A classifier's `verify_budgets`: its format's row (top-1 agreement, accuracy points).
BUDGETS = BudgetTable(rows=_FormatRows(), fallback="onnx", agreement="top1_agreement",
                      drop="accuracy_points", agreement_words="top-1 agreement",
                      drop_words="accuracy", task_words=TASK.name, record=Budgets.to_dict)


def default_budgets(fmt: str, precision: str, top1: float | None = None,
                    accuracy_points: float | None = None) -> Budgets:
    """The format table's budgets for this artifact, with any flag overrides applied."""
    return BUDGETS.pick(fmt, precision, top1, accuracy_points)


def verify_checks(side: Any, info: Any, samples: list[Any], budgets: Budgets, run: Path,
                  point: Any, reference: dict[str, Any], artifact: dict[str, Any],
                  outputs: CheckResult) -> list[CheckResult]:
    """A classifier's `verify_checks`: outputs, top-1 parity, accuracy. `point`: the
    artifact's operating point, which decides on both sides."""
    import numpy as np

    from edgetl.artifact.manifest import OUTPUT_NAME
    from edgetl.errors import DataError
    from edgetl.verify.checks import check_accuracy, check_parity

    unknown = sorted({s.label for s in samples} - set(info.task_record.names))
    if unknown:
        raise DataError(f"the split holds labels the run does not know: {unknown}")
    targets = np.array([info.task_record.index(s.label) for s in samples])
    ref, art = reference[OUTPUT_NAME], artifact[OUTPUT_NAME]
    conversion = side.joined("conversion")[OUTPUT_NAME]
    return [outputs,
            check_parity(ref, art, info.task_record, budgets, conversion_only=conversion,
                         point=point),
            check_accuracy(targets, ref, art, info.task_record, budgets, point=point)]
