"""PreprocessSpec / TaskRecord: round trip, fingerprint stability, validation, words."""

from __future__ import annotations

import json

import pytest

from edgetl.errors import RecipeError, SpecError
from edgetl.spec import PreprocessSpec, TaskRecord


def lite0_spec() -> PreprocessSpec:
    return PreprocessSpec.from_crop_pct(224, 0.875, "bicubic", (0.5,) * 3, (0.5,) * 3)


def test_crop_pct_rule_matches_timm() -> None:
    spec = lite0_spec()
    assert spec.resize_size == (256, 256) and spec.crop_size == (224, 224)
    assert PreprocessSpec.from_crop_pct(240, 0.882, "bicubic", (0.5,) * 3, (0.5,) * 3
                                        ).resize_size[0] == 272


def test_json_round_trip_and_fingerprint() -> None:
    spec = lite0_spec()
    again = PreprocessSpec.from_json(spec.to_json())
    assert again == spec
    assert again.fingerprint() == spec.fingerprint()
    assert len(spec.fingerprint()) == 64
    changed = spec.with_overrides(mean=(0.485, 0.456, 0.406))
    assert changed.fingerprint() != spec.fingerprint()
    assert changed.diff(spec) == ["mean"]


def test_canonical_json_is_key_order_independent() -> None:
    spec = lite0_spec()
    shuffled = dict(reversed(list(spec.to_dict().items())))
    assert PreprocessSpec.from_dict(shuffled).canonical_json() == spec.canonical_json()


@pytest.mark.parametrize(
    "changes, word",
    [
        ({"std": (0.5, 0.0, 0.5)}, "std"),
        ({"crop_size": (300, 300), "input_size": (300, 300)}, "larger"),
        ({"input_size": (100, 100)}, "input_size"),
        ({"mean": (0.5, 0.5)}, "mean"),
    ],
)
def test_validation_names_the_problem(changes: dict, word: str) -> None:
    with pytest.raises(SpecError, match=word):
        lite0_spec().with_overrides(**changes)


def test_unknown_field_rejected() -> None:
    data = lite0_spec().to_dict() | {"gamma": 2.2}
    with pytest.raises(SpecError, match="gamma"):
        PreprocessSpec.from_dict(data)


def test_describe_mentions_every_step() -> None:
    text = lite0_spec().with_overrides(color_mode="grayscale3").describe()
    for needle in ("grayscale", "repeat", "256", "224", "bicubic", "antialias", "0.5"):
        assert needle in text


def test_at_size_keeps_ratio() -> None:
    small = lite0_spec().at_size(192)
    assert small.crop_size == (192, 192) and small.resize_size == (219, 219)


def test_label_spec() -> None:
    labels = TaskRecord(("functional", "defective"))
    assert labels.index("defective") == 1
    assert TaskRecord.from_dict(json.loads(json.dumps(labels.to_dict()))) == labels
    with pytest.raises(SpecError):
        TaskRecord(("a",))
    with pytest.raises(SpecError):
        TaskRecord(("a", "a"))


def test_recipe_crop_pct_changes_only_the_crop_rule() -> None:
    """preprocess.crop_pct=1.0 keeps the whole (square) image: resize straight to the input."""
    from edgetl.models.specs import training_spec
    from edgetl.recipe import load_recipe

    weights = PreprocessSpec.from_crop_pct(224, 0.875, "bicubic", (0.5,) * 3, (0.5,) * 3)
    spec = training_spec(load_recipe(None, ["preprocess.crop_pct=1.0"]), weights)
    assert (spec.resize_size, spec.crop_size, spec.input_size) == ((224, 224), (224, 224),
                                                                   (224, 224))
    assert spec.mean == weights.mean and spec.interpolation == weights.interpolation
    assert "crop_pct=1.0" in spec.source
    assert training_spec(load_recipe(None, ["preprocess.crop_pct=0.9"]), weights).resize_size == \
        (248, 248)  # floor(224 / 0.9), timm's rule
    with pytest.raises(RecipeError, match="crop_pct"):
        load_recipe(None, ["preprocess.crop_pct=1.5"])


def test_memory_format_rule() -> None:
    """channels_last on the CPU always; on CUDA only for long runs (cuDNN's per-shape start-up
    cost); an explicit choice wins."""
    from edgetl.devices import CHANNELS_LAST_MIN_IMAGES, use_channels_last

    assert use_channels_last("auto", "cpu", 10)
    assert not use_channels_last("auto", "cuda", 1549 * 26)
    assert use_channels_last("auto", "cuda", CHANNELS_LAST_MIN_IMAGES)
    assert not use_channels_last("contiguous", "cpu", 10)
    assert use_channels_last("channels_last", "cuda", 10)
