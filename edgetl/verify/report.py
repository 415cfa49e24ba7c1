"""The verify report: one record with `passed` and the list of checks, as JSON and as a table."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from edgetl.io import atomic_write_json
from edgetl.verify.checks import CheckResult

REPORT_SCHEMA = "edgetl.verify/1"


@dataclass
class VerifyReport:
    artifact: str
    run: str
    split: str
    backend: str
    format: str
    precision: str
    budgets: dict[str, float]
    checks: list[CheckResult] = field(default_factory=list)
    context: dict[str, Any] = field(default_factory=dict)

    @property
    def passed(self) -> bool:
        return bool(self.checks) and all(c.passed for c in self.checks)

    @property
    def failures(self) -> list[CheckResult]:
        return [c for c in self.checks if not c.passed]

    def check(self, name: str) -> CheckResult:
        return next(c for c in self.checks if c.name == name)

    def to_dict(self) -> dict[str, Any]:
        return {
            "schema": REPORT_SCHEMA,
            "passed": self.passed,
            "artifact": self.artifact,
            "run": self.run,
            "split": self.split,
            "backend": self.backend,
            "format": self.format,
            "precision": self.precision,
            "budgets": self.budgets,
            "checks": [c.to_dict() for c in self.checks],
            **self.context,
        }

    def write_json(self, path: str | Path) -> Path:
        return atomic_write_json(path, self.to_dict())

    def failure_line(self) -> str:
        """One line naming every failed check, for the error the CLI prints."""
        return "; ".join(f"{c.name}: {c.summary}" for c in self.failures)

    def render(self, console: Any) -> None:
        """A rich table: one row per check with its verdict and summary."""
        from rich.table import Table

        table = Table(title=f"verify {Path(self.artifact).name} ({self.format}, {self.backend}) "
                            f"against {self.run} [{self.split}]")
        table.add_column("check")
        table.add_column("result")
        table.add_column("figures", overflow="fold")
        for c in self.checks:
            verdict = "[green]pass[/green]" if c.passed else "[bold red]FAIL[/bold red]"
            table.add_row(c.name, verdict, c.summary)
        console.print(table)
        verdict = "[green]PASSED[/green]" if self.passed else (
            f"[bold red]FAILED[/bold red] ({len(self.failures)} of {len(self.checks)} checks)")
        console.print(f"verify: {verdict}")
