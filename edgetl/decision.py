"""How a classifier's probabilities become one class: argmax, or an operating point.

An operating point is a threshold on one class's probability, chosen on the validation split
for a target the user states (`CLASS:recall=R`, `CLASS:precision=P`; see
`edgetl.metrics.operating_point`). An artifact that carries one is decided by this rule, the
only one, in `predict`, `evaluate ARTIFACT` and `verify` alike:

    predict CLASS when P(CLASS) >= threshold, otherwise the most probable other class.

So CLASS is predicted exactly when P(CLASS) >= threshold, and its one-vs-rest
precision-recall curve is the curve of the decisions; for two classes it is the usual binary
threshold. One class per artifact: two thresholds could both fire, and which should win is the
user's policy, not something to guess.

Pure Python and numpy (no torch): `predict` applies it on a device.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from edgetl.errors import UsageError

Kind = Literal["recall", "precision"]
DECISION_SCHEMA = "edgetl.decision/1"
RULE = "predict {cls} when P({cls}) >= threshold, otherwise the most probable other class"
ARGMAX_RULE = "the most probable class (argmax)"
_TARGET = re.compile(r"^(?P<cls>.+):(?P<kind>recall|precision)=(?P<value>\S+)$")


@dataclass(frozen=True)
class Target:
    """What the user asks for: a recall or precision for one class (`CLASS:recall=0.95`)."""

    class_name: str
    kind: Kind
    value: float

    @classmethod
    def parse(cls, text: str) -> Target:
        """`CLASS:recall=R` or `CLASS:precision=P`, R and P in (0, 1]."""
        match = _TARGET.match(str(text).strip())
        if match is None:
            raise UsageError(f"operating point {text!r} is not CLASS:recall=R or "
                             "CLASS:precision=P", "for example defective:recall=0.95")
        try:
            value = float(match["value"])
        except ValueError:
            raise UsageError(f"operating point {text!r}: {match['value']!r} is not a number",
                             "for example defective:recall=0.95") from None
        if not 0.0 < value <= 1.0:
            raise UsageError(f"operating point {text!r}: the target must lie in (0, 1]",
                             "for example defective:recall=0.95")
        return cls(match["cls"].strip(), match["kind"], value)  # type: ignore[arg-type]

    def index_in(self, names: tuple[str, ...] | list[str]) -> int:
        """The class's output index; an unknown class is a usage error naming the classes."""
        if self.class_name not in names:
            raise UsageError(f"operating point class {self.class_name!r} is not one of the "
                             f"model's classes {list(names)}")
        return list(names).index(self.class_name)

    def text(self) -> str:
        return f"{self.class_name}:{self.kind}={self.value:g}"


def decide(probs: np.ndarray, class_index: int, threshold: float) -> np.ndarray:
    """The rule: `class_index` where its probability >= threshold, else the argmax of the
    other classes (ties to the lower index, as argmax)."""
    probs = np.asarray(probs)
    others = probs.astype(np.float64, copy=True)
    others[:, class_index] = -np.inf
    pred = others.argmax(axis=1)
    pred[probs[:, class_index] >= threshold] = class_index
    return pred


@dataclass(frozen=True)
class OperatingPoint:
    """A chosen threshold for one class: what an artifact carries and `predict` applies."""

    class_name: str
    class_index: int
    threshold: float
    target: Target
    chosen_on: dict[str, Any]

    @property
    def rule(self) -> str:
        return RULE.format(cls=self.class_name)

    def decide(self, probs: np.ndarray) -> np.ndarray:
        return decide(probs, self.class_index, self.threshold)

    def why(self, probability: float) -> str:
        """Which side of the threshold one image fell on, in words."""
        p = f"P({self.class_name}) {probability:.4f}"
        if probability >= self.threshold:
            return f"{p} >= threshold {self.threshold:.4f}"
        return f"{p} < threshold {self.threshold:.4f}: the most probable other class"

    def to_dict(self) -> dict[str, Any]:
        return {"schema": DECISION_SCHEMA, "rule": "operating_point",
                "class": self.class_name, "class_index": self.class_index,
                "threshold": self.threshold, "target": self.target.text(),
                "description": self.rule, "chosen_on": self.chosen_on}

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True, separators=(",", ":"))

    @classmethod
    def from_dict(cls, data: dict[str, Any], names: tuple[str, ...] | list[str]
                  ) -> OperatingPoint:
        """Read back a recorded point; ValueError when it does not fit `names`."""
        if not isinstance(data, dict) or data.get("rule") != "operating_point":
            raise ValueError("not an operating point record")
        target = Target.parse(data["target"])
        index = int(data["class_index"])
        if not 0 <= index < len(names) or names[index] != data["class"]:
            raise ValueError(f"its class {data['class']!r} at index {index} does not match "
                             f"the labels {list(names)}")
        threshold = float(data["threshold"])
        if not 0.0 <= threshold <= 1.0:
            raise ValueError(f"its threshold {threshold} is not a probability")
        return cls(data["class"], index, threshold, target, dict(data.get("chosen_on") or {}))


def softmax64(logits: np.ndarray) -> np.ndarray:
    """Row-wise softmax in float64 (stable)."""
    shifted = np.asarray(logits, dtype=np.float64)
    shifted = shifted - shifted.max(axis=1, keepdims=True)
    exp = np.exp(shifted)
    return exp / exp.sum(axis=1, keepdims=True)


def logits_decider(point: OperatingPoint | None) -> Callable[[np.ndarray], np.ndarray]:
    """Logits -> decided classes: argmax, or the operating point's rule on the softmax."""
    if point is None:
        return lambda logits: np.asarray(logits).argmax(axis=1)
    return lambda logits: point.decide(softmax64(logits))
