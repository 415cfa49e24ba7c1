"""Geometry: boxes and masks into the model input and back, numpy against torchvision."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torchvision import tv_tensors

from edgetl.data.transforms import Letterbox, geometry_transform
from edgetl.geometry import geometry_for
from edgetl.models.registry import PACKAGED
from edgetl.spec import PreprocessSpec

BASE = PACKAGED["tf_efficientnet_lite0"].spec


def letterbox(size: int = 320) -> PreprocessSpec:
    return BASE.for_dense((size, size))


@pytest.mark.parametrize("source", [(333, 500), (500, 333), (77, 1000), (320, 320), (31, 17)])
def test_letterbox_geometry_by_hand(source: tuple[int, int]) -> None:
    height, width = source
    geo = geometry_for(height, width, letterbox())
    scale = min(320 / height, 320 / width)
    expected = (round(height * scale), round(width * scale))
    assert geo.resized == expected
    assert geo.offset == ((320 - expected[0]) // 2, (320 - expected[1]) // 2)
    boxes = np.array([[0, 0, width, height], [width * 0.25, height * 0.5, width * 0.5,
                                              height * 0.75]])
    forward = geo.forward_boxes(boxes)
    np.testing.assert_allclose(forward[0], [geo.offset[1], geo.offset[0],
                                            geo.offset[1] + expected[1],
                                            geo.offset[0] + expected[0]], atol=1e-9)
    np.testing.assert_allclose(geo.inverse_boxes(forward), boxes, atol=1e-9)


def test_crop_geometry_matches_centre_crop_offsets() -> None:
    geo = geometry_for(300, 400, BASE)  # shorter side 256, centre crop 224
    assert geo.resized == (256, 341)
    assert geo.offset == (-16, -58)  # torchvision: round((256-224)/2), round((341-224)/2)
    inside = geo.inverse_boxes(np.array([[0, 0, 224, 224]]))
    np.testing.assert_allclose(inside, [[58 * 400 / 341, 16 * 300 / 256, 282 * 400 / 341,
                                         240 * 300 / 256]], atol=1e-9)


@pytest.mark.parametrize("source", [(333, 500), (120, 640), (400, 90)])
def test_torchvision_boxes_agree_with_numpy_within_half_a_pixel(source: tuple[int, int]) -> None:
    rng = np.random.default_rng(0)
    height, width = source
    x = np.sort(rng.uniform(0, width, (20, 2)), axis=1)
    y = np.sort(rng.uniform(0, height, (20, 2)), axis=1)
    boxes = np.stack([x[:, 0], y[:, 0], x[:, 1], y[:, 1]], axis=1)
    spec = letterbox()
    moved = Letterbox(spec)(tv_tensors.BoundingBoxes(torch.as_tensor(boxes), format="XYXY",
                                                     canvas_size=source))
    moved = moved.as_subclass(torch.Tensor).numpy()
    geo = geometry_for(height, width, spec)
    assert np.abs(moved - geo.forward_boxes(boxes)).max() <= 0.5
    assert np.abs(geo.inverse_boxes(moved, clip=False) - boxes).max() <= 0.5


def test_letterbox_pixels_torch_equal_reference(tmp_path) -> None:
    from PIL import Image

    from edgetl.artifact.reference import pixels_and_geometry
    from edgetl.data.transforms import load_image

    rng = np.random.default_rng(1)
    path = tmp_path / "wide.png"
    Image.fromarray(rng.integers(0, 255, (90, 250, 3), dtype=np.uint8)).save(path)
    spec = letterbox(128)
    torch_pixels = geometry_transform(spec)(load_image(str(path), spec)).permute(1, 2, 0).numpy()
    reference, geo = pixels_and_geometry(path, spec)
    assert np.array_equal(torch_pixels, reference)
    top = geo.offset[0]
    assert (reference[:top] == 114).all() and (reference[top + geo.resized[0]:] == 114).all()


def test_inverse_mask_is_exact_nearest() -> None:
    geo = geometry_for(60, 100, letterbox(40))  # resized 24x40, offset top 8
    labels = np.full((40, 40), 255, dtype=np.uint8)  # padding: never sampled
    labels[8:32, :20] = 1
    labels[8:32, 20:] = 2
    labels[8:20, 10] = 7  # input column 10 covers image columns 25 and 26 (centres 25.5, 26.5)
    back = geo.inverse_mask(labels)
    assert back.shape == (60, 100)
    assert set(np.unique(back)) == {1, 2, 7}
    assert (back[:, :20] == 1).all() and (back[:, 50:] == 2).all()
    assert (back[:30, 25:27] == 7).all() and (back[30:, 20:50] == 1).all()
