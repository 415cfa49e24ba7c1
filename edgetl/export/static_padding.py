"""Make TensorFlow-style 'SAME' padding static before export, then fold it into the convolutions.

timm's `tf_*` models (the EfficientNet-Lite family among them) pad stride-2 convolutions at run
time from the input's height and width (`Conv2dSame`). Traced to ONNX that becomes about 500
Shape/Gather/Ceil/Concat nodes that onnxruntime cannot fold away with a dynamic batch, which
makes the fp32 graph slower and breaks int8 quantisation (QOperator fails outright, QDQ is
slower). The input size is fixed by the spec, so each padding is a constant: we record each
layer's input size with one forward pass, swap in an explicit constant pad, and after export
merge each `Pad -> Conv` pair into the Conv's own (asymmetric) `pads` attribute. Verify's output
parity proves the result equal to the untouched model.
"""

from __future__ import annotations

from typing import Any


def make_same_padding_static(model: Any, example: Any) -> int:
    """Replace timm `Conv2dSame` layers in `model` (in place) by constant-padded ones."""
    # not at the top: importing this module loads no torch
    import torch
    import torch.nn.functional as F
    from torch import nn

    try:
        from timm.layers.conv2d_same import Conv2dSame
        from timm.layers.padding import pad_same_arg
    except ImportError:  # not a timm model: nothing to do
        return 0

    class _ConstantPad(torch.autograd.Function):
        """F.pad whose ONNX form is one Pad with a constant `pads` input (easy to fold)."""

        @staticmethod
        def forward(ctx: Any, x: torch.Tensor, pads: tuple[int, int, int, int]) -> torch.Tensor:
            ctx.pads = pads
            return F.pad(x, pads)

        @staticmethod
        def backward(ctx: Any, grad: torch.Tensor) -> tuple[torch.Tensor, None]:
            """The padding's gradient: the padded gradient's interior (QAT trains through it)."""
            left, right, top, bottom = ctx.pads
            height, width = grad.shape[-2:]
            return grad[..., top:height - bottom, left:width - right], None

        @staticmethod
        def symbolic(g: Any, x: Any, pads: tuple[int, int, int, int]) -> Any:
            left, right, top, bottom = pads
            onnx_pads = torch.tensor([0, 0, top, left, 0, 0, bottom, right], dtype=torch.int64)
            return g.op("Pad", x, g.op("Constant", value_t=onnx_pads), mode_s="constant")

    class StaticSameConv(nn.Module):
        def __init__(self, conv: nn.Conv2d, pads: list[int]) -> None:
            super().__init__()
            self.conv = conv
            self.pads = tuple(int(p) for p in pads)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            if any(self.pads):
                x = _ConstantPad.apply(x, self.pads)
            c = self.conv
            return F.conv2d(x, c.weight, c.bias, c.stride, 0, c.dilation, c.groups)

    targets = [name for name, m in model.named_modules() if isinstance(m, Conv2dSame)]
    if not targets:
        return 0
    sizes: dict[str, tuple[int, int]] = {}
    hooks = []
    for name in targets:
        def hook(_m: Any, args: tuple[Any, ...], name: str = name) -> None:
            sizes[name] = tuple(int(v) for v in args[0].shape[-2:])

        hooks.append(model.get_submodule(name).register_forward_pre_hook(hook))
    try:
        with torch.inference_mode():
            model(example)
    finally:
        for handle in hooks:
            handle.remove()
    for name in targets:
        conv = model.get_submodule(name)
        pads = pad_same_arg(sizes[name], conv.weight.shape[-2:], conv.stride, conv.dilation)
        model.set_submodule(name, StaticSameConv(conv, pads))
    return len(targets)


def _constant_ints(graph: Any, name: str) -> list[int] | None:
    # not at the top: onnx loads only when used (fast --help)
    from onnx import numpy_helper

    for init in graph.initializer:
        if init.name == name:
            return [int(v) for v in numpy_helper.to_array(init).ravel()]
    for node in graph.node:
        if node.op_type == "Constant" and node.output[0] == name:
            for attr in node.attribute:
                if attr.name == "value":
                    return [int(v) for v in numpy_helper.to_array(attr.t).ravel()]
    return None


def fold_pads_into_convs(model: Any) -> int:
    """Merge zero `Pad -> Conv` pairs of an `onnx.ModelProto` into Conv `pads` (in place)."""
    # not at the top: onnx loads only when used (fast --help)
    import onnx

    graph = model.graph
    outputs = {o.name for o in graph.output}
    consumers: dict[str, list[Any]] = {}
    for node in graph.node:
        for name in node.input:
            consumers.setdefault(name, []).append(node)
    removed = []
    for pad in [n for n in graph.node if n.op_type == "Pad"]:
        attrs = {a.name: onnx.helper.get_attribute_value(a) for a in pad.attribute}
        if attrs.get("mode", b"constant") not in (b"constant", "constant"):
            continue
        if len(pad.input) > 2 and any(pad.input[2:]):  # a fill value or axes: leave it
            continue
        pads = _constant_ints(graph, pad.input[1])
        users = consumers.get(pad.output[0], [])
        if pads is None or pad.output[0] in outputs or len(users) != 1:
            continue
        conv = users[0]
        rank = len(pads) // 2
        if conv.op_type != "Conv" or conv.input[0] != pad.output[0] or min(pads) < 0:
            continue
        if any(pads[:2]) or any(pads[rank:rank + 2]):  # padding batch or channels
            continue
        conv_attrs = {a.name: onnx.helper.get_attribute_value(a) for a in conv.attribute}
        if conv_attrs.get("auto_pad", b"NOTSET") not in (b"NOTSET", "NOTSET"):
            continue
        spatial = rank - 2
        old = list(conv_attrs.get("pads", [0] * (2 * spatial)))
        new = [old[i] + pads[2 + i] for i in range(spatial)]
        new += [old[spatial + i] + pads[rank + 2 + i] for i in range(spatial)]
        kept = [a for a in conv.attribute if a.name != "pads"]
        del conv.attribute[:]
        conv.attribute.extend([*kept, onnx.helper.make_attribute("pads", new)])
        conv.input[0] = pad.input[0]
        removed.append(pad)
    for pad in removed:
        graph.node.remove(pad)
    _drop_unused_constants(graph)
    return len(removed)


def _drop_unused_constants(graph: Any) -> None:
    used = {name for node in graph.node for name in node.input} | {o.name for o in graph.output}
    for node in [n for n in graph.node if n.op_type == "Constant" and n.output[0] not in used]:
        graph.node.remove(node)
    for init in [i for i in graph.initializer if i.name not in used]:
        graph.initializer.remove(init)
