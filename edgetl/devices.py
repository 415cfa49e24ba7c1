"""Where torch work runs: the device a command asked for, and the memory format that suits it.

Shared by training, evaluation and benchmarks, so a rule decided once (measured, see
docs/ARCHITECTURE.md) is not restated. torch is imported inside the functions.
"""

from __future__ import annotations

from edgetl.errors import BackendUnavailableError

# On CUDA, channels_last trains Lite0 1.6x faster per step (bf16, batch 64, H200: 20.7 vs
# 32.9 ms) but each new shape first costs seconds (first step 13.1 s vs 0.7 s; cuDNN 9.19 builds
# channels_last plans at run time). Break-even: about 100,000 training images.
CHANNELS_LAST_MIN_IMAGES = 100_000


def resolve_device(requested: str) -> str:
    """'auto' -> cuda when visible, else cpu; 'cuda' without a GPU is exit 3."""
    # not at the top: importing this module loads no torch
    import torch

    if requested == "cuda" and not torch.cuda.is_available():
        raise BackendUnavailableError("--device cuda was asked for but no CUDA device is visible",
                                      "use --device cpu or auto")
    if requested == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    return requested


def use_channels_last(choice: str, device: str, planned_images: int) -> bool:
    """The recipe's memory format; auto decides by device and planned run length (0 for
    inference: channels_last on the CPU, where oneDNN runs it 2x faster, NCHW on CUDA)."""
    if choice != "auto":
        return choice == "channels_last"
    return device != "cuda" or planned_images >= CHANNELS_LAST_MIN_IMAGES
