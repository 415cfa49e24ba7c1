"""onnxruntime static quantisation (QDQ, uint8 activations, per-channel int8 weights), with
the calibration done once per export.

Calibration ranges depend on the float graph and the calibration images only, not on which
nodes are quantised, so every candidate of the accuracy search and of the sensitivity
ranking reuses the first one through onnxruntime's calibration cache (a JSON file
of the tensor ranges; `quantize_static(calibration_cache_path=)`, onnxruntime >= 1.23). The
graphs are the same as with a fresh calibration each time (tested). An onnxruntime without the
cache calibrates every time, and the ranking, which quantises once per node, is skipped.
"""

from __future__ import annotations

import contextlib
import inspect
import io
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from edgetl.artifact.manifest import INPUT_NAME
from edgetl.errors import ArtifactError

METHODS = ("minmax", "entropy", "percentile")


def _reader(batches: list[Any]) -> Any:
    # not at the top: onnxruntime loads only when used (fast --help)
    from onnxruntime.quantization import CalibrationDataReader

    class Reader(CalibrationDataReader):
        def __init__(self) -> None:
            self._items = iter(batches)

        def get_next(self) -> dict[str, Any] | None:
            batch = next(self._items, None)
            return None if batch is None else {INPUT_NAME: batch}

        def rewind(self) -> None:
            self._items = iter(batches)

    return Reader()


def has_calibration_cache() -> bool:
    """Whether this onnxruntime's `quantize_static` can reuse computed ranges."""
    # not at the top: onnxruntime loads only when used (fast --help)
    from onnxruntime.quantization import quantize_static

    return "calibration_cache_path" in inspect.signature(quantize_static).parameters


def quantise(fp32_path: Path, out_path: Path, batches: list[Any], method: str,
             exclude: Sequence[str], cache: Path | None = None) -> None:
    """Static QDQ quantisation of `fp32_path` (already through quant_pre_process) into
    `out_path` (onnxruntime.quantization); nodes in `exclude` stay float32. `cache`: the
    calibration cache file (written by the first call, read by the next)."""
    # not at the top: onnxruntime loads only when used (fast --help)
    from onnxruntime.quantization import (
        CalibrationMethod,
        QuantFormat,
        QuantType,
        quantize_static,
    )
    methods = {"minmax": CalibrationMethod.MinMax, "entropy": CalibrationMethod.Entropy,
               "percentile": CalibrationMethod.Percentile}
    extra = {"calibration_cache_path": str(cache)} if cache is not None else {}
    quantize_static(
        str(fp32_path), str(out_path), _reader(batches),
        quant_format=QuantFormat.QDQ,
        per_channel=True,
        activation_type=QuantType.QUInt8,
        weight_type=QuantType.QInt8,
        calibrate_method=methods[method],
        nodes_to_exclude=list(exclude),
        # No CalibMaxIntermediateOutputs: onnxruntime 1.32's MinMax calibrater clears each full
        # chunk without folding it into the ranges, so only the last partial chunk would count
        # (and an exact multiple fails with "No data is collected").
        extra_options={"CalibPercentile": 99.999},
        **extra,
    )


@contextlib.contextmanager
def quiet() -> Any:
    """The quantiser logs per-tensor chatter and prints progress to stdout."""
    level = logging.getLogger().level
    logging.getLogger().setLevel(logging.ERROR)
    try:
        with contextlib.redirect_stdout(io.StringIO()):
            yield
    finally:
        logging.getLogger().setLevel(level)


class Quantiser:
    """Quantises one pre-processed float graph many ways, calibrating once."""

    def __init__(self, pre_path: Path, batches: list[Any], method: str, workdir: Path) -> None:
        self.pre_path = pre_path
        self.batches = batches
        self.method = method
        self.cache = (workdir / f"calibration-ranges-{method}.json" if has_calibration_cache()
                      else None)

    @property
    def reuses_calibration(self) -> bool:
        return self.cache is not None

    def __call__(self, out_path: Path, exclude: Sequence[str] = ()) -> Path:
        try:
            with quiet():
                quantise(self.pre_path, out_path, self.batches, self.method, exclude,
                         self.cache)
        except Exception as exc:  # the quantiser raises assorted untyped errors
            raise ArtifactError(f"onnxruntime static quantisation failed: {exc}") from exc
        return out_path
