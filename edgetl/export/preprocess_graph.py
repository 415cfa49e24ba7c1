"""`--embed-preprocessing`: put the cast, scaling, normalisation and layout change into the graph.

The exported graph then takes what the deployment reference produces *before* normalisation:
uint8 NHWC images of the post-resize/crop size (`reference.pixels_uint8`). Decoding, resizing
and cropping stay outside, because they depend on the source image size. The artifact's spec gets
`graph_input='uint8_raw'` so `predict` and `verify` know to skip the numpy normalisation; every
other field (and so the arithmetic) is the run's.
"""

from __future__ import annotations

from typing import Any

from edgetl.spec import PreprocessSpec

EMBEDDED_PREFIX = "preprocess"  # module name inside the wrapper; its ONNX nodes start with it


def embedded_spec(spec: PreprocessSpec) -> PreprocessSpec:
    """The spec an embedded-preprocessing artifact carries."""
    return spec.with_overrides(graph_input="uint8_raw")


def wrap_with_preprocessing(model: Any, spec: PreprocessSpec) -> Any:
    """A torch module: uint8 [N, H, W, 3] -> model(normalised float32 in the spec's layout)."""
    # not at the top: importing this module loads no torch
    import torch
    from torch import nn

    class Normalise(nn.Module):
        """uint8 NHWC -> float32, the same operations in the same order as `reference.normalize`."""

        def __init__(self) -> None:
            super().__init__()
            mean = torch.tensor(spec.mean, dtype=torch.float32).view(1, 1, 1, 3)
            std = torch.tensor(spec.std, dtype=torch.float32).view(1, 1, 1, 3)
            self.register_buffer("mean", mean)
            self.register_buffer("std", std)
            self.scale = float(spec.scale)
            self.to_nchw = spec.layout == "NCHW"

        def forward(self, pixels: torch.Tensor) -> torch.Tensor:
            x = (pixels.to(torch.float32) * self.scale - self.mean) / self.std
            return x.permute(0, 3, 1, 2).contiguous() if self.to_nchw else x

    class WithPreprocessing(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            setattr(self, EMBEDDED_PREFIX, Normalise())
            self.model = model

        def forward(self, pixels: torch.Tensor) -> torch.Tensor:
            return self.model(getattr(self, EMBEDDED_PREFIX)(pixels))

    return WithPreprocessing().eval()


def example_input(spec: PreprocessSpec, batch: int = 2, embedded: bool = False) -> Any:
    """A real-shaped example tensor for tracing (values do not matter for the graph)."""
    # not at the top: importing this module loads no torch
    import torch

    height, width = spec.input_size
    if embedded:
        return torch.randint(0, 256, (batch, height, width, 3), dtype=torch.uint8)
    shape = (batch, 3, height, width) if spec.layout == "NCHW" else (batch, height, width, 3)
    return torch.zeros(shape, dtype=torch.float32)
