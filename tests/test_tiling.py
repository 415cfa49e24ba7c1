"""The tiling rule (`edgetl.tiling`): windows, the chosen tile size, boxes cut at tile borders,
the merge across tiles, and the rule's place in the spec (fingerprint, old specs)."""

from __future__ import annotations

import numpy as np
import pytest

from edgetl.errors import SpecError
from edgetl.spec import PreprocessSpec
from edgetl.tiling import (
    TileRule,
    choose_rule,
    clip_boxes,
    image_windows,
    merge_detections,
    nms,
    tile_windows,
)


def test_windows_overlap_and_end_flush_with_the_border() -> None:
    # 250 x 120 image, tiles of 100 with 25% overlap: stride 75; x starts 0, 75, 150 (150 + 100
    # = 250 ends at the border), y starts 0 then 20 (shifted inward to end at 120)
    rule = TileRule(100, 0.25)
    assert tile_windows(250, 120, rule) == [
        (0, 0, 100, 100), (75, 0, 175, 100), (150, 0, 250, 100),
        (0, 20, 100, 120), (75, 20, 175, 120), (150, 20, 250, 120)]
    # 260 wide: starts 0, 75, 150 and the last one shifted inward to 160
    assert [w[0] for w in tile_windows(260, 100, rule)] == [0, 75, 150, 160]


def test_small_image_is_one_window_and_whole_image_is_added_once() -> None:
    assert tile_windows(80, 60, TileRule(100)) == [(0, 0, 80, 60)]
    assert image_windows(80, 60, TileRule(100, whole_image=True)) == [(0, 0, 80, 60)]
    assert image_windows(200, 100, TileRule(100, 0.0, whole_image=True)) == [
        (0, 0, 100, 100), (100, 0, 200, 100), (0, 0, 200, 100)]
    assert image_windows(200, 100, None) == [(0, 0, 200, 100)]


def test_rule_refuses_bad_values() -> None:
    with pytest.raises(SpecError, match="overlap"):
        TileRule(100, 0.95)
    with pytest.raises(SpecError, match="size"):
        TileRule(8)
    with pytest.raises(SpecError):
        TileRule.from_value({"size": 100, "stride": 3})


def test_choose_rule_makes_the_small_third_reach_the_target() -> None:
    # sides 8..: the smallest third's largest is 12 (index 3 of 9): 320 * 12 / 24 = 160
    sides = [8, 10, 11, 12, 20, 30, 40, 50, 60]
    rule = choose_rule(sides, 320)
    assert rule.size == 160
    assert 320 / rule.size * 12 >= 24
    # tiny objects: never below input / 4
    assert choose_rule([1, 1, 1], 320).size == 80
    # no objects: the input size itself
    assert choose_rule([], 320).size == 320


def test_clip_boxes_keeps_the_min_visible_share() -> None:
    boxes = np.array([[10, 10, 30, 30],     # inside
                      [90, 10, 110, 30],    # half inside: kept at 0.5, clipped
                      [95, 10, 115, 30],    # a quarter inside: dropped
                      [200, 200, 210, 210]])  # outside
    kept, rows = clip_boxes(boxes, (0, 0, 100, 100), 0.5)
    assert rows.tolist() == [0, 1]
    assert kept.tolist() == [[10, 10, 30, 30], [90, 10, 100, 30]]
    # in the window's own pixels
    kept, rows = clip_boxes(boxes, (50, 0, 150, 100), 0.5)
    assert rows.tolist() == [1, 2]
    assert kept.tolist() == [[40, 10, 60, 30], [45, 10, 65, 30]]


def test_nms_is_class_wise_and_across_windows_only() -> None:
    boxes = np.array([[0, 0, 10, 10], [1, 0, 11, 10], [0, 0, 10, 10], [50, 50, 60, 60],
                      [0, 0, 4, 10]])
    scores = np.array([0.9, 0.8, 0.7, 0.6, 0.5])
    labels = np.array([0, 0, 1, 0, 0])
    # row 4 lies inside row 0 (intersection over the smaller box 1.0): suppressed too
    assert nms(boxes, scores, labels).tolist() == [0, 2, 3]
    # rows 0, 1 from one window: the model's own NMS kept both, they stay
    assert nms(boxes, scores, labels, np.array([0, 0, 0, 0, 1])).tolist() == [0, 1, 2, 3]


def test_merge_shifts_to_image_pixels_and_suppresses_duplicates() -> None:
    # one object at x 90..110 seen by both tiles of a 200-wide image (windows start 0 and 80)
    parts = [((0, 0, 100, 100), np.array([[90, 10, 100, 30]]), np.array([0.6]), np.array([1])),
             ((80, 0, 180, 100), np.array([[10, 10, 30, 30], [50, 50, 60, 60]]),
              np.array([0.9, 0.5]), np.array([1, 0]))]
    boxes, scores, labels, keep = merge_detections(parts)
    assert boxes.tolist() == [[90, 10, 110, 30], [130, 50, 140, 60]]
    assert scores.tolist() == [0.9, 0.5]
    assert labels.tolist() == [1, 0]
    assert keep.tolist() == [1, 2]
    empty = merge_detections([])
    assert empty[0].shape == (0, 4)


def test_rule_in_the_spec_changes_its_fingerprint_old_specs_keep_theirs() -> None:
    base = PreprocessSpec(input_size=(224, 224)).for_dense((64, 64))
    assert "tile" not in base.to_dict()  # a spec without tiles: as before, same fingerprint
    tiled = base.with_overrides(tile=TileRule(128, 0.25, True))
    assert tiled.fingerprint() != base.fingerprint()
    again = PreprocessSpec.from_json(tiled.to_json())
    assert again == tiled and again.fingerprint() == tiled.fingerprint()
    assert again.tile == TileRule(128, 0.25, True)
    assert "128x128 px tiles" in tiled.describe()
    with pytest.raises(SpecError, match="tile"):
        PreprocessSpec(input_size=(224, 224), tile=TileRule(128))


def test_semantic_tile_flag_and_recorded_rule_cut_windows_the_same_way() -> None:
    """`predict --tile` on a segmenter: input-sized tiles sharing --tile-overlap pixels (the
    windows it always cut: stride tile - overlap, last flush), unless the artifact records a
    rule, which then decides."""
    from types import SimpleNamespace

    from edgetl.errors import UsageError
    from edgetl.predict.segment import tile_rule

    spec = PreprocessSpec(input_size=(224, 224)).for_dense((96, 96))
    rule = tile_rule(SimpleNamespace(spec=spec), 32)
    assert sorted({w[0] for w in tile_windows(250, 120, rule)}) == [0, 64, 128, 154]
    assert sorted({w[1] for w in tile_windows(250, 120, rule)}) == [0, 24]
    recorded = TileRule(128, 0.5, True)
    assert tile_rule(SimpleNamespace(spec=spec.with_overrides(tile=recorded)), 32) == recorded
    with pytest.raises(UsageError, match="tile-overlap"):
        tile_rule(SimpleNamespace(spec=spec), 95)


def test_small_objects_are_counted_at_the_tile_scale() -> None:
    """A 12 px object in a 960 px image is 1.6 px at a 128 px input, 9.6 px on 160 px tiles."""
    from types import SimpleNamespace

    from edgetl.data.detection.small import small_objects, small_objects_advice

    target = SimpleNamespace(image_size=(960, 960), boxes=[(0, 0, 12, 12), (100, 100, 140, 140)])
    samples = [SimpleNamespace(path="x.png", target=target)]
    whole = small_objects(samples, 128)
    assert whole["small"] == 2 and "tiles (`tile: {size: auto}`)" in small_objects_advice(whole)
    tiled = small_objects(samples, 128, tile=160)
    assert tiled["small"] == 1 and tiled["tile"] == 160  # 40 px object: 32 px on a tile
    assert "on 160 px tiles" in small_objects_advice(tiled)
