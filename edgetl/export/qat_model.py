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


def insert_quantisers(model: Any, calibration: Iterable[Any], images: int) -> Any:
    """NNCF's fake quantisers on `model` (already in its deployed shape), their ranges
    calibrated on `calibration` (single-image tensors)."""
    import nncf
    from nncf.quantization.advanced_parameters import (
        AdvancedQuantizationParameters,
        QuantizationParameters,
    )

    per_tensor = AdvancedQuantizationParameters(
        activations_quantization_params=QuantizationParameters(per_channel=False))
    return nncf.quantize(model, nncf.Dataset(list(calibration)), subset_size=images,
                         preset=nncf.QuantizationPreset.MIXED,
                         advanced_parameters=per_tensor)


def set_qdq_export(model: Any) -> int:
    """Switch every quantiser to QuantizeLinear/DequantizeLinear export; returns how many."""
    from nncf.torch.quantization.layers import BaseQuantizer, QuantizerExportMode

    count = 0
    for module in model.modules():
        if isinstance(module, BaseQuantizer):
            module.set_export_mode(QuantizerExportMode.ONNX_QUANTIZE_DEQUANTIZE_PAIRS)
            count += 1
    return count


def quantiser_config(model: Any) -> dict[str, Any]:
    """Where NNCF put the quantisers (JSON), to rebuild the model from its checkpoint."""
    import nncf.torch

    return nncf.torch.get_config(model)


def load_qat_model(skeleton: Any, example: Any, config: dict[str, Any], state: dict[str, Any]
                   ) -> Any:
    """A QAT checkpoint's model: the float skeleton in its deployed shape, NNCF's quantisers
    where `config` puts them, then the trained weights and quantiser parameters (strict)."""
    import nncf.torch

    deployed_shape(skeleton, example)
    model = nncf.torch.load_from_config(skeleton, config)
    model.load_state_dict(state, strict=True)
    return model.eval()
