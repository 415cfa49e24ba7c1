"""Models and inputs int8 destroys in a known place, for the int8 accuracy searches' tests
(tests/test_int8_search.py for onnx-int8, tests/test_openvino_int8.py for openvino-int8)."""

from __future__ import annotations

from typing import Any

import numpy as np

TINY_COMPUTE = ("/c1/Conv", "/c2/Conv", "/c3/Conv", "/c4/Conv", "/fc/Gemm")  # ONNX names
TINY_DAMAGED = "/c3/Conv"


def tiny_int8_classifier() -> Any:
    """A small classifier whose third convolution int8 destroys: every output channel has one
    weight 100x the others, on an input channel that is always 0, so float32 never sees it
    but each channel's int8 scale (per channel, symmetric) rounds every other weight to 0.
    It is the third of four convolutions, so position alone would not find it."""
    import torch
    from torch import nn

    class Tiny(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.c1 = nn.Conv2d(3, 8, 3, padding=1)
            self.c2 = nn.Conv2d(8, 16, 3, padding=1)
            self.c3 = nn.Conv2d(16, 16, 3, padding=1)
            self.c4 = nn.Conv2d(16, 16, 3, padding=1)
            self.fc = nn.Linear(16, 3)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            for conv in (self.c1, self.c2, self.c3, self.c4):
                x = torch.relu(conv(x))
            return self.fc(x.mean(dim=(2, 3)))

    torch.manual_seed(0)
    model = Tiny().eval()
    with torch.no_grad():
        model.c2.weight[0] = 0.0  # c3's input channel 0 is relu(0) = 0 on every image
        model.c2.bias[0] = 0.0
        model.c3.weight[:, 0, 1, 1] = 100.0 * model.c3.weight.abs().max()
        model.fc.weight.mul_(20.0)  # clear decisions: float noise alone flips few
    return model


def tiny_inputs() -> tuple[list[np.ndarray], list[np.ndarray]]:
    """(calibration batches of 8: 64 images, validation batches of 32: 256 images), 16x16."""
    rng = np.random.default_rng(0)
    images = rng.normal(0, 1, (320, 3, 16, 16)).astype(np.float32)
    return ([images[i:i + 8] for i in range(0, 64, 8)],
            [images[i:i + 32] for i in range(64, 320, 32)])


def tiny_outlier_classifier() -> Any:
    """A small classifier that reads its input closely (a strided convolution straight into the
    linear head, no pooling), for `outlier_inputs`' calibration outlier."""
    import torch
    from torch import nn

    class Patches(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.c1 = nn.Conv2d(3, 8, 4, stride=4)
            self.fc = nn.Linear(8 * 8 * 8, 3)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.fc(torch.relu(self.c1(x)).flatten(1))

    torch.manual_seed(0)
    return Patches().eval()


def outlier_inputs() -> tuple[list[np.ndarray], list[np.ndarray]]:
    """(calibration batches of 8: 64 images, one pixel of one at 1000; validation batches of
    32: 256 images), 32x32. Min-max stretches the input's range over the outlier, so every
    ordinary value rounds to a few levels; percentile (99.999) drops it (one value in 196608)."""
    rng = np.random.default_rng(0)
    images = rng.normal(0, 1, (320, 3, 32, 32)).astype(np.float32)
    calibration = images[:64].copy()
    calibration[0, 0, 5, 5] = 1000.0
    return ([calibration[i:i + 8] for i in range(0, 64, 8)],
            [images[i:i + 32] for i in range(64, 320, 32)])
