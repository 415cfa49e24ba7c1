"""The instance model: mask targets, the mask branch's losses, export to ONNX with masks."""

from __future__ import annotations

import io
import warnings

import numpy as np
import pytest
import torch

from edgetl.models.instance import InstanceSettings, build_instance_model, project_masks


def test_project_masks_matches_a_hand_computed_crop() -> None:
    idmap = torch.zeros(16, 16)
    idmap[:, :8] = 3  # instance 3: the left half
    idmap[:, 12:] = 5  # another instance, never part of 3's target
    target = project_masks(idmap, torch.tensor([3]), torch.tensor([[0.0, 0.0, 16.0, 16.0]]), 4)
    # 4 bins of 4 px, 4 bilinear samples each at x = 0.5, 1.5, ... (RoIAlign, aligned=False):
    # bin 1 samples x = 4.5 .. 7.5, and x = 7.5 is half pixel 7 (in), half pixel 8 (out).
    expected = torch.tensor([1.0, 0.875, 0.0, 0.0]).expand(4, 4)
    torch.testing.assert_close(target[0], expected)


def test_project_masks_on_a_crop_equals_the_full_image() -> None:
    from torchvision.ops import roi_align

    rng = np.random.default_rng(0)
    idmap = torch.from_numpy(rng.integers(0, 4, size=(40, 50))).float()
    boxes = torch.tensor([[3.3, 7.6, 21.2, 30.9], [0.0, 0.0, 50.0, 40.0], [30.5, 20.0, 49.9, 39.5]])
    ids = torch.tensor([1, 2, 3])
    crops = project_masks(idmap, ids, boxes, 14)
    for k, (value, box) in enumerate(zip(ids.tolist(), boxes, strict=True)):
        full = (idmap == value).float()[None, None]
        rois = torch.cat([torch.zeros(1), box])[None]
        torch.testing.assert_close(crops[k], roi_align(full, rois, (14, 14), 1.0)[0, 0])


@pytest.fixture(scope="module")
def tiny() -> torch.nn.Module:
    torch.manual_seed(0)
    settings = InstanceSettings(fpn_channels=32, head_convs=1, max_detections=12,
                                mask_resolution=14, mask_channels=16, score_threshold=0.0)
    model, _ = build_instance_model("mobilenetv2_100", 2, settings, (96, 96), "random")
    return model


def test_losses_include_the_mask_term_and_train_the_mask_branch(tiny: torch.nn.Module) -> None:
    idmap = torch.zeros(96, 96)
    idmap[10:30, 10:40], idmap[50:80, 40:90] = 1, 2
    targets = [{"boxes": torch.tensor([[10.0, 10, 40, 30], [40, 50, 90, 80]]),
                "labels": torch.tensor([0, 1]), "ids": torch.tensor([1, 2]), "idmap": idmap}]
    tiny.train()
    terms = tiny.losses(torch.randn(1, 3, 96, 96), targets)
    assert set(terms) == {"classification", "bbox_regression", "bbox_ctrness", "mask"}
    assert np.isfinite(float(terms["mask"])) and float(terms["mask"]) > 0
    sum(terms.values()).backward()
    grad = tiny.roi_heads.mask_predictor.mask_fcn_logits.weight.grad
    assert grad is not None and float(grad.abs().sum()) > 0
    tiny.zero_grad()
    tiny.eval()


def test_onnx_export_keeps_masks_at_any_batch(tiny: torch.nn.Module) -> None:
    import onnxruntime as ort

    from edgetl.models.deployable import deployable

    module, names, record = deployable(tiny, "instance")
    assert names == ("boxes", "scores", "labels", "num_detections", "masks")
    assert record["mask_resolution"] == 14
    buffer = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(module, (torch.randn(2, 3, 96, 96),), buffer, dynamo=False,
                          opset_version=17, input_names=["input"], output_names=list(names),
                          dynamic_axes={"input": {0: "n"}, **{n: {0: "n"} for n in names}})
    session = ort.InferenceSession(buffer.getvalue(), providers=["CPUExecutionProvider"])
    for batch in (1, 3):
        x = torch.randn(batch, 3, 96, 96, generator=torch.Generator().manual_seed(batch))
        got = dict(zip(names, session.run(None, {"input": x.numpy()}), strict=True))
        with torch.no_grad():
            want = {k: v.numpy() for k, v in module(x).items()}
        assert got["masks"].shape == (batch, 12, 14, 14)
        np.testing.assert_array_equal(got["labels"], want["labels"])
        np.testing.assert_allclose(got["boxes"], want["boxes"], atol=1e-3)
        np.testing.assert_allclose(got["masks"], want["masks"], atol=1e-4)
        assert want["num_detections"].min() > 0  # score threshold 0: rows are real masks
        padding = want["labels"] < 0
        assert (want["masks"][padding] == 0).all()


def test_a_detector_checkpoint_loads_with_a_new_mask_branch(tmp_path, tiny) -> None:
    from safetensors.torch import save_file

    detector_keys = {k: v.clone() for k, v in tiny.state_dict().items()
                     if not k.startswith("roi_heads.")}
    path = tmp_path / "fcos.safetensors"
    save_file(detector_keys, str(path))
    model, _ = build_instance_model("mobilenetv2_100", 2, tiny.settings, (96, 96), str(path))
    state = model.state_dict()
    key = "head.classification_head.cls_logits.weight"
    torch.testing.assert_close(state[key], detector_keys[key])
    # an instance checkpoint with 3 classes into 2: the class layers are replaced
    three, _ = build_instance_model("mobilenetv2_100", 3, tiny.settings, (96, 96), "random")
    save_file({k: v.clone() for k, v in three.state_dict().items()}, str(path))
    two, _ = build_instance_model("mobilenetv2_100", 2, tiny.settings, (96, 96), str(path))
    assert two.roi_heads.mask_predictor.mask_fcn_logits.weight.shape[0] == 2
    torch.testing.assert_close(two.state_dict()["roi_heads.mask_head.0.0.weight"],
                               three.state_dict()["roi_heads.mask_head.0.0.weight"])


def test_recipe_keeps_instance_settings_in_model_instance(tmp_path) -> None:
    from edgetl.errors import RecipeError
    from edgetl.recipe import load_recipe

    recipe = load_recipe(None, ["task=instance", "model.instance.max_detections=500"])
    assert recipe.model.instance.max_detections == 500
    assert recipe.model.instance.mask_resolution == 14 and recipe.selection_metric == \
        "val_mask_map"
    with pytest.raises(RecipeError, match="model.instance"):
        load_recipe(None, ["task=instance", "model.detector.max_detections=500"])
    with pytest.raises(RecipeError, match="even"):
        InstanceSettings(mask_resolution=15)


def test_sanitize_drops_degenerate_boxes_and_their_ids_but_keeps_the_id_map() -> None:
    """A single box that degenerates must not take the image's one id map with it (torchvision's
    SanitizeBoundingBoxes indexes masks by box, which emptied it: nuclei training crashed)."""
    from torchvision import tv_tensors

    from edgetl.data.transforms_dense import SanitizePerBox

    idmap = torch.zeros((1, 20, 30))
    idmap[0, 2:6, 3:9] = 1.0
    sanitize = SanitizePerBox(("labels", "ids"))
    one = {"boxes": tv_tensors.BoundingBoxes([[3.0, 2.0, 3.5, 6.0]], format="XYXY",
                                             canvas_size=(20, 30)),
           "labels": torch.tensor([0]), "ids": torch.tensor([1]), "masks": tv_tensors.Mask(idmap)}
    out = sanitize(one)
    assert out["boxes"].shape == (0, 4) and out["ids"].numel() == 0
    assert out["labels"].numel() == 0
    assert torch.equal(out["masks"], idmap)  # untouched
    assert isinstance(out["boxes"], tv_tensors.BoundingBoxes)

    three = {"boxes": tv_tensors.BoundingBoxes([[3.0, 2.0, 9.0, 6.0], [10.0, 10.0, 10.5, 15.0],
                                                [29.5, 1.0, 35.0, 4.0]], format="XYXY",
                                               canvas_size=(20, 30)),
             "labels": torch.tensor([0, 1, 2]), "ids": torch.tensor([1, 2, 3]),
             "masks": tv_tensors.Mask(idmap)}
    out = sanitize(three)  # the second is 0.5 px wide; the third is 5.5 x 3: kept
    assert out["ids"].tolist() == [1, 3] and out["labels"].tolist() == [0, 2]
    assert out["boxes"].tolist() == [[3.0, 2.0, 9.0, 6.0], [29.5, 1.0, 35.0, 4.0]]
    assert out["masks"].shape == (1, 20, 30)
