"""The moving average of a phase's weights: its arithmetic (a fine-tune using it: test_train)."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from edgetl.train.ema import WeightAverage


def small_model() -> nn.Module:
    model = nn.Sequential(nn.Linear(3, 2), nn.BatchNorm1d(2))
    model[0].bias.requires_grad_(False)  # frozen: not averaged
    return model


def test_average_follows_the_ramped_decay_by_hand() -> None:
    model = small_model()
    ema = WeightAverage(model, horizon_steps=4)  # decay 0.75, ramped: min(0.75, (1+t)/(10+t))
    assert len(ema.live) == 3 + 2  # linear weight, BN weight and bias; running mean and var
    w0 = model[0].weight.detach().clone()
    with torch.no_grad():
        model[0].weight.add_(1.0)
    ema.update()  # t=1: decay 2/11
    expected = (2 / 11) * w0 + (9 / 11) * (w0 + 1.0)
    assert torch.allclose(ema.shadow[0], expected)
    for _ in range(200):
        ema.update()
    assert ema.steps == 201
    assert torch.allclose(ema.shadow[0], w0 + 1.0, atol=1e-6)  # converges to constant weights


def test_applied_swaps_in_and_back_and_copy_to_model_keeps() -> None:
    model = small_model()
    ema = WeightAverage(model, horizon_steps=10)
    start = model[0].weight.detach().clone()
    with torch.no_grad():
        model[0].weight.mul_(3.0)
    trained = model[0].weight.detach().clone()
    ema.update()
    with ema.applied():
        inside = model[0].weight.detach().clone()
    assert torch.allclose(inside, (2 / 11) * start + (9 / 11) * trained)
    assert torch.equal(model[0].weight, trained)
    ema.copy_to_model()
    assert torch.equal(model[0].weight, inside)


def test_state_round_trip_and_mismatch() -> None:
    model = small_model()
    ema = WeightAverage(model, horizon_steps=5)
    with torch.no_grad():
        model[0].weight.add_(2.0)
    ema.update()
    other = WeightAverage(small_model(), horizon_steps=5)
    other.load_state_dict(ema.state_dict())
    assert other.steps == 1
    assert all(torch.equal(a, b) for a, b in zip(other.shadow, ema.shadow, strict=True))
    with pytest.raises(ValueError, match="does not match"):
        WeightAverage(nn.Linear(3, 2), 5).load_state_dict(ema.state_dict())
