"""Wall-clock budgets: a duration given on the command line, and the deadline it sets.

Shared by `edgetl select --time-budget` (which candidates to train) and `edgetl finetune
--time-budget` (how long each phase trains), so both read '5m' alike and count time alike.
Pure Python, no torch: the lowest layer.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass, field

from edgetl.errors import UsageError

_DURATION = re.compile(r"(\d+(?:\.\d*)?|\.\d+)\s*([hms]?)")
_UNIT = {"h": 3600.0, "m": 60.0, "s": 1.0, "": 1.0}


def parse_duration(text: str, option: str = "--time-budget") -> float:
    """'30m' -> 1800.0; '1h30m', '90s', '1.5h', '45' (seconds) are accepted too; anything else,
    or zero, is a usage error naming `option`."""
    cleaned = text.strip().lower().replace(" ", "")
    if not cleaned:
        raise UsageError(f"{option} is empty", "use e.g. 30m")
    pos, total = 0, 0.0
    while pos < len(cleaned):
        match = _DURATION.match(cleaned, pos)
        if match is None or match.end() == pos:
            raise UsageError(f"{option} {text!r} is not a duration",
                             "use e.g. 30m, 1h30m, 90s or a number of seconds")
        total += float(match.group(1)) * _UNIT[match.group(2)]
        pos = match.end()
    if not total > 0:
        raise UsageError(f"{option} must be > 0, got {text!r}", "e.g. 30m")
    return total


@dataclass
class Deadline:
    """`seconds` from the moment it is made (None: no budget, never over)."""

    seconds: float | None
    started: float = field(default_factory=time.perf_counter)

    def elapsed(self) -> float:
        return time.perf_counter() - self.started

    def remaining(self) -> float | None:
        """Seconds left (negative once past), None without a budget."""
        return None if self.seconds is None else self.seconds - self.elapsed()

    def fits(self, estimate_s: float | None) -> bool:
        """Whether work of `estimate_s` seconds ends before the deadline (unknown work fits)."""
        left = self.remaining()
        return left is None or estimate_s is None or estimate_s <= left
