"""The int8 search's stopping rule: the agreement's one-sided lower confidence bound."""

from __future__ import annotations

import math

import pytest

from edgetl.export.onnx_int8 import agreement_lower_bound


def wilson_low(agreed: int, n: int, z: float) -> float:
    """The Wilson score interval's lower end, written out (Wilson 1927)."""
    p = agreed / n
    centre = p + z * z / (2 * n)
    spread = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    return (centre - spread) / (1 + z * z / n)


@pytest.mark.parametrize(("agreed", "n"), [(393, 393), (390, 393), (297, 300), (50, 64)])
def test_lower_bound_is_wilsons_one_sided_95(agreed: int, n: int) -> None:
    assert agreement_lower_bound(agreed, n) == pytest.approx(wilson_low(agreed, n, 1.6448536),
                                                             abs=1e-6)


def test_the_case_that_a_fixed_margin_let_through() -> None:
    """99.0% of 300 validation images (3 flips) cleared 'budget + 1 point' but was 97.26% on the
    test split. Its lower bound is below the 98% budget, so the search goes on; 1 flip in 393
    clears it, and fewer images mean a wider interval."""
    assert agreement_lower_bound(297, 300) < 0.98
    assert agreement_lower_bound(392, 393) > 0.98
    assert agreement_lower_bound(99, 100) < agreement_lower_bound(990, 1000) < 0.99


def test_small_validation_splits_cannot_clear_the_bound() -> None:
    """Why the search falls back to the measured agreement below ~130 images (98% budget)."""
    assert agreement_lower_bound(120, 120) < 0.98 <= agreement_lower_bound(140, 140)
