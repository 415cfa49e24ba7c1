"""`edgetl select`: the most accurate model that fits a latency budget and a training-time budget.

Steps (`run.run_select`):
1. candidates: backbones whose pretrained weights load offline (the registry's, and the
   recipe's own) at a few input sizes (`candidates.py`);
2. latency first: each candidate's untrained network is exported per precision with the
   ordinary exporters and timed with `edgetl bench`'s own runner and statistics; candidates
   whose budget statistic (p90 unless asked for p50) is over budget in every precision are
   dropped, with their figures (`latency.py`; each task's probe in `classification.py`,
   `dense.py`);
3. accuracy next, cheapest first, within the time budget: the same short recipe for each
   survivor on one shared leakage-safe split, scored on the validation split with the
   selection metric and a bootstrap interval (`accuracy.py`);
4. the Pareto front, the pick, a recipe `edgetl finetune` runs as is, `select.json`, a table
   and a scatter PNG (`rules.py`, `report.py`).

What differs per task is the task's `select_*` slots (`edgetl.tasks`; `tasks.task_for` here).
"""

from __future__ import annotations

SELECT_SCHEMA = "edgetl.select/1"

__all__ = ["SELECT_SCHEMA"]
