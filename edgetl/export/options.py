"""What the user may choose when exporting (`edgetl export`'s options), for any format.

Export-building settings, so they live with the exporters; the table of formats itself is the
artifact contract (`edgetl.artifact.formats`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from edgetl.errors import UsageError
from edgetl.runfolder import BEST, CHECKPOINT_NAMES

# auto: each method tried, the int8 judge picks (`edgetl.export.int8_method`)
CalibrationMethod = Literal["auto", "minmax", "entropy", "percentile"]

DEFAULT_OPSET = 17
DEFAULT_CALIBRATION_IMAGES = 256
DEFAULT_MAX_BATCH = 32


@dataclass(frozen=True)
class ExportOptions:
    """What the user may choose for any format; formats ignore what does not apply to them."""

    opset: int = DEFAULT_OPSET
    embed_preprocessing: bool = False
    calibration_images: int = DEFAULT_CALIBRATION_IMAGES
    calibration_method: CalibrationMethod = "minmax"
    max_batch: int = DEFAULT_MAX_BATCH
    checkpoint: str = BEST
    seed: int = 0
    # int8: minimum top-1 agreement with float32 on the run's validation split; early layers
    # stay float32 until it holds (None: the format's verify budget; 0: the fully quantised
    # graph, unjudged, for any task: select's latency probe of untrained networks).
    int8_target_agreement: float | None = None
    raw: bool = False  # detection: the head's outputs, no decoding or NMS in the graph
    # classification: CLASS:recall=R or CLASS:precision=P, its threshold chosen on validation
    # and recorded in the artifact; None: the run recipe's `operating_point`; "none": argmax
    operating_point: str | None = None
    # onnx-int8: True trains the quantisation-aware checkpoint (RUN/qat/) and exports it; False
    # never does; None: the run recipe's `quantize:` section decides (QAT when post-training
    # int8 keeps more than its max_float_nodes float).
    qat: bool | None = None

    def validate(self) -> None:
        if self.opset < 17:
            raise UsageError(f"--opset {self.opset} is too old", "use opset 17 or newer")
        if self.opset > max_opset():
            raise UsageError(f"--opset {self.opset} is newer than this torch's ONNX exporter "
                             f"writes", f"use opset 17 to {max_opset()}")
        if self.calibration_images < 1:
            raise UsageError("--calibration-images must be at least 1")
        if self.calibration_method not in ("auto", "minmax", "entropy", "percentile"):
            raise UsageError(
                f"unknown calibration method {self.calibration_method!r}",
                "use auto, minmax, entropy or percentile",
            )
        if self.max_batch < 1:
            raise UsageError("--max-batch must be at least 1")
        if self.checkpoint not in CHECKPOINT_NAMES:
            raise UsageError(f"unknown checkpoint {self.checkpoint!r}", "use best or last")
        if self.operating_point not in (None, "none"):
            from edgetl.decision import Target

            Target.parse(self.operating_point)


def max_opset() -> int:
    """The newest opset torch's TorchScript exporter writes (torch 2.14: 20); asked of torch so
    an unsupported --opset is a usage error before the export starts, not a RuntimeError."""
    try:
        from torch.onnx._constants import ONNX_TORCHSCRIPT_EXPORTER_MAX_OPSET
    except ImportError:  # a private constant: without it, the opset this code was tested with
        return 20
    return int(ONNX_TORCHSCRIPT_EXPORTER_MAX_OPSET)
