"""The model quantisation-aware training trains: the deployed graph's shape, with NNCF's fake
quantisers on it.

What the deployed int8 graph needs, applied before the quantisers go in (docs/qat.md):
- batch norm folded into its convolution and frozen there (timm's `BatchNormAct2d` keeps its
  activation), since ONNX Runtime cannot fuse a convolution whose weight comes out of a
  DequantizeLinear with a following BatchNorm;
- TF-"same" padding made static (`static_padding`), as every edgetl export does;
- NNCF's MIXED preset with per-tensor activation quantisers: uint8 asymmetric activations,
  int8 symmetric per-channel weights, the scheme `onnx-int8` calibrates and ORT's QLinearConv
  runs;
- quantisers exported as QuantizeLinear/DequantizeLinear pairs (NNCF's default is OpenVINO's
  FakeQuantize, which ONNX Runtime cannot load).

A QAT checkpoint is the model's state dict (weights and quantiser parameters) plus NNCF's
config of where the quantisers sit (`nncf.torch.get_config`); `load_qat_model` rebuilds it
from the float checkpoint's skeleton with the same steps.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

SCHEME = {
    "tool": "nncf (torch, quantisation-aware training)",
    "preset": "MIXED",
    "activations": "uint8 asymmetric, per tensor",
    "weights": "int8 symmetric, per channel",
    "batch_norm": "folded into the convolutions",
    "export": "QuantizeLinear/DequantizeLinear pairs",
}


def fold_batch_norms(module: Any) -> int:
    """Fold every Conv2d -> BatchNorm2d child pair into the convolution (in place), keeping a
    timm `BatchNormAct2d`'s dropout and activation; returns how many were folded."""
    # not at the top: importing this module loads no torch
    import torch
    from torch.nn.utils.fusion import fuse_conv_bn_eval

    try:
        from timm.layers import BatchNormAct2d
    except ImportError:  # no timm: plain BatchNorm2d only
        BatchNormAct2d = ()  # noqa: N806

    children = list(module.named_children())
    folded = 0
    for (conv_name, conv), (bn_name, bn) in zip(children, children[1:], strict=False):
        if isinstance(conv, torch.nn.Conv2d) and isinstance(bn, torch.nn.BatchNorm2d):
            setattr(module, conv_name, fuse_conv_bn_eval(conv.eval(), bn.eval()))
            after = (torch.nn.Sequential(bn.drop, bn.act) if isinstance(bn, BatchNormAct2d)
                     else torch.nn.Identity())
            setattr(module, bn_name, after)
            folded += 1
    return folded + sum(fold_batch_norms(child) for _, child in module.named_children())


def deployed_shape(model: Any, example: Any) -> dict[str, int]:
    """Fold batch norm, then make TF-same padding static (the order matters: a `Conv2dSame`
    must still be a Conv2d when its batch norm is folded into it)."""
    from edgetl.export.static_padding import make_same_padding_static

    model.eval()
    folded = fold_batch_norms(model)
    return {"batch_norms_folded": folded,
            "static_same_padding_layers": make_same_padding_static(model, example)}


PARTS_KEY = "edgetl_parts"  # several quantised parts: {part name: {"nncf": config, "levels"}}


def network_parts(model: Any, task: str) -> list[str]:
    """The submodules that get quantisers: the whole model (''), or, for a task whose
    post-processing stays float (`int8_float_postprocess`), the network's modules named in
    `int8_graph.NETWORK_SCOPES` (outermost first), so box decoding, NMS and RoI arithmetic
    carry none."""
    from edgetl import tasks
    from edgetl.export.int8_graph import NETWORK_SCOPES

    if not tasks.get(task).int8_float_postprocess:
        return [""]
    parts: list[str] = []
    for name, _ in model.named_modules():
        inside = any(name.startswith(part + ".") for part in parts)
        if name and not inside and name.rsplit(".", 1)[-1] in NETWORK_SCOPES:
            parts.append(name)
    return parts


def _set_part(model: Any, name: str, part: Any) -> None:
    parent, _, child = name.rpartition(".")
    setattr(model.get_submodule(parent) if parent else model, child, part)


def _levels_adapter(part: Any) -> Any:
    """`part` (called with one list of tensors: a detection head's pyramid levels) as a module
    called the same way whose inner module (`.inner`, what NNCF quantises) takes the levels as
    separate arguments: NNCF puts input quantisers on a module's tensor arguments, not on the
    tensors inside a list, and without them the head's first convolutions stay float (at most
    eight levels)."""
    from torch import nn

    class Levels(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.part = part

        # named arguments: NNCF hooks a module's named tensor arguments only (not *args)
        def forward(self, l0: Any, l1: Any = None, l2: Any = None, l3: Any = None,
                    l4: Any = None, l5: Any = None, l6: Any = None, l7: Any = None) -> Any:
            levels = [l0, l1, l2, l3, l4, l5, l6, l7]
            return self.part([x for x in levels if x is not None])

    class ListCall(nn.Module):
        takes_levels = True

        def __init__(self) -> None:
            super().__init__()
            self.inner = Levels()

        def forward(self, levels: Any) -> Any:
            return self.inner(*levels)

        def __getattr__(self, name: str) -> Any:
            """What the part offers besides its forward (a head's `compute_loss`)."""
            try:
                return super().__getattr__(name)
            except AttributeError:
                if name == "inner":
                    raise
                return getattr(self.inner.part, name)

    return ListCall()


def _call_adapter(part: Any) -> Any:
    """`part` (an `nn.Sequential`: a mask head) inside a module whose forward calls it. NNCF
    adds its hook storage as a child of the module it quantises, and a Sequential would run
    that child as one of its layers; the wrapper keeps it out of the Sequential."""
    from torch import nn

    class Call(nn.Module):
        wrapped = True

        def __init__(self) -> None:
            super().__init__()
            self.part = part

        def forward(self, x: Any) -> Any:
            return self.part(x)

    return Call()


def _needs_call_adapter(part: Any) -> bool:
    from torch import nn

    return isinstance(part, nn.Sequential)


def _takes_levels(args: tuple[Any, ...]) -> bool:
    return len(args) == 1 and isinstance(args[0], list | tuple)


def _part_inputs(model: Any, parts: list[str], run: Any, calibration: Iterable[Any]
                 ) -> dict[str, list[tuple[Any, ...]]]:
    """Each part's positional inputs while `run` (the deployable module) sees each image."""
    import torch

    captured: dict[str, list[tuple[Any, ...]]] = {name: [] for name in parts}
    hooks = [model.get_submodule(name).register_forward_pre_hook(
        lambda _m, args, name=name: captured[name].append(args)) for name in parts]
    try:
        with torch.no_grad():
            for x in calibration:
                run(x)
    finally:
        for hook in hooks:
            hook.remove()
    return captured


def insert_quantisers(model: Any, calibration: Iterable[Any], images: int,
                      parts: list[str] | None = None, run: Any = None) -> Any:
    """NNCF's fake quantisers on `model` (already in its deployed shape), their ranges
    calibrated on `calibration` (single-image tensors). With `parts` other than the whole
    model, each part is quantised on its own inputs as `run(image)` (the deployable module)
    feeds them, in place (NNCF wraps a module's forward)."""
    import nncf
    from nncf.quantization.advanced_parameters import (
        AdvancedQuantizationParameters,
        QuantizationParameters,
    )

    per_tensor = AdvancedQuantizationParameters(
        activations_quantization_params=QuantizationParameters(per_channel=False))

    def quantise(module: Any, items: list[Any]) -> Any:
        return nncf.quantize(module, nncf.Dataset(items), subset_size=len(items),
                             preset=nncf.QuantizationPreset.MIXED,
                             advanced_parameters=per_tensor)

    if not parts or parts == [""]:
        return quantise(model, list(calibration)[:images])
    captured = _part_inputs(model, parts, run, list(calibration)[:images])
    for name in parts:
        items, part = captured[name], model.get_submodule(name)
        if items and _takes_levels(items[0]):
            adapter = _levels_adapter(part)
            adapter.inner = quantise(adapter.inner, [tuple(args[0]) for args in items])
            _set_part(model, name, adapter)
        elif _needs_call_adapter(part):
            _set_part(model, name, quantise(_call_adapter(part), items))
        else:
            _set_part(model, name, quantise(part, items))
    return model


def set_qdq_export(model: Any) -> int:
    """Switch every quantiser to QuantizeLinear/DequantizeLinear export; returns how many."""
    from nncf.torch.quantization.layers import BaseQuantizer, QuantizerExportMode

    count = 0
    for module in model.modules():
        if isinstance(module, BaseQuantizer):
            module.set_export_mode(QuantizerExportMode.ONNX_QUANTIZE_DEQUANTIZE_PAIRS)
            count += 1
    return count


def quantiser_config(model: Any, parts: list[str] | None = None) -> dict[str, Any]:
    """Where NNCF put the quantisers (JSON), to rebuild the model from its checkpoint."""
    import nncf.torch

    if not parts or parts == [""]:
        return nncf.torch.get_config(model)
    config = {}
    for name in parts:
        part = model.get_submodule(name)
        levels = getattr(part, "takes_levels", False)
        config[name] = {"nncf": nncf.torch.get_config(part.inner if levels else part),
                        "levels": levels, "wrapped": getattr(part, "wrapped", False)}
    return {PARTS_KEY: config}


def load_qat_model(skeleton: Any, example: Any, config: dict[str, Any], state: dict[str, Any]
                   ) -> Any:
    """A QAT checkpoint's model: the float skeleton in its deployed shape, NNCF's quantisers
    where `config` puts them, then the trained weights and quantiser parameters (strict)."""
    import nncf.torch

    deployed_shape(skeleton, example)
    if PARTS_KEY in config:
        for name, part in config[PARTS_KEY].items():
            module = skeleton.get_submodule(name)
            if part["levels"]:
                adapter = _levels_adapter(module)
                adapter.inner = nncf.torch.load_from_config(adapter.inner, part["nncf"])
                module = adapter
            elif part.get("wrapped"):
                module = nncf.torch.load_from_config(_call_adapter(module), part["nncf"])
            else:
                module = nncf.torch.load_from_config(module, part["nncf"])
            _set_part(skeleton, name, module)
        model = skeleton
    else:
        model = nncf.torch.load_from_config(skeleton, config)
    model.load_state_dict(state, strict=True)
    return model.eval()
