"""OpenVINO IR int8 (`openvino-int8`): NNCF post-training quantisation of the converted model,
with onnx-int8's accuracy search for the nodes that must stay float32.

The fp32 IR is built as `openvino_ir` builds it; `nncf.quantize` then calibrates on the same
stratified training images as onnx-int8 (`calibration`, through the deployment reference
transform) with the embedded preprocessing nodes and, where the task says so
(`int8_float_postprocess`), the post-processing outside the network's modules in NNCF's
`ignored_scope` (by pattern). The task's `int8_judge` scores each candidate IR on ov-cpu against
the fp32 ONNX graph on the validation split (never test), and `int8_search` runs the same rounds
as onnx-int8: everything int8, then (classifiers) the nodes the sensitivity ranking chooses,
then the leading compute nodes; the nodes a round keeps float go into `ignored_scope` by name.
When no round meets the target, the export is refused (nothing is written).

Node names: the converter names a Conv/Gemm's Convolution/MatMul after the ONNX node with
`/WithoutBiases` added (its bias becomes an Add carrying the ONNX name); the search, the
`ignored_scope` and the record use the IR's names. The ranking measures, for each set of nodes,
one NNCF graph quantised once with its weights left as FakeQuantize, in which the FakeQuantize
nodes feeding those nodes are bypassed (`leave_float`): no calibration per measured set. The
candidates the judge sees are real `nncf.quantize` runs with those names ignored.

The manifest records the judge's figures and every round, the float nodes and why
(`float_nodes`, as onnx-int8; also in the IR's rt_info under `edgetl.int8_float_nodes`), the
FakeQuantize count, the quantised/float compute nodes, calibration size, preset and nncf's
version.
"""

from __future__ import annotations

import logging
import re
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np

from edgetl import tasks
from edgetl.decision import logits_decider
from edgetl.errors import ArtifactError
from edgetl.export.calibration import (
    CALIBRATION_BATCH,
    calibration_batches,
    calibration_fingerprint,
    class_counts,
    select_calibration_samples,
    training_samples,
)
from edgetl.export.context import ExportContext, ExportResult
from edgetl.export.int8_graph import NETWORK_SCOPES, POSTPROCESS_RULE
from edgetl.export.int8_quantise import quiet
from edgetl.export.int8_search import (
    float_nodes_metadata,
    make_judge,
    ranking_inputs,
    ranks_nodes,
    search,
    search_record,
)
from edgetl.export.openvino_ir import export as export_ir
from edgetl.export.preprocess_graph import EMBEDDED_PREFIX

PRESET = "PERFORMANCE"  # symmetric int8 activations and weights (NNCF's CPU default)
COMPUTE_TYPES = ("Convolution", "GroupConvolution", "MatMul")
# Ops a FakeQuantize may sit behind on its way into a compute node (NNCF quantises a Gemm's
# input before the Reshape that flattens it); `leave_float` walks up through them.
PASS_THROUGH = ("Reshape", "Transpose", "Squeeze", "Unsqueeze", "Convert")


def ignored_patterns(task: str) -> list[str]:
    """Regexes of node names NNCF must leave float: embedded preprocessing, and for tasks with
    `int8_float_postprocess` every node outside NETWORK_SCOPES (as onnx-int8 keeps them)."""
    patterns = [f"^/{EMBEDDED_PREFIX}/.*"]
    if tasks.get(task).int8_float_postprocess:
        patterns.append("^(?!/(" + "|".join(NETWORK_SCOPES) + ")/).*")
    return patterns


def quantisation_counts(model: Any) -> dict[str, int]:
    """FakeQuantize nodes, and compute nodes with/without a FakeQuantize on their activation
    input: what shows the IR is really quantised."""
    ops = list(model.get_ordered_ops())
    quantised = 0
    compute = [op for op in ops if op.get_type_name() in COMPUTE_TYPES]
    for op in compute:
        source = op.input_value(0).get_node()
        if source.get_type_name() == "FakeQuantize":
            quantised += 1
    return {"fake_quantize_nodes": sum(op.get_type_name() == "FakeQuantize" for op in ops),
            "quantised_compute_nodes": quantised,
            "float_compute_nodes": len(compute) - quantised, "nodes": len(ops)}


class NncfQuantiser:
    """`nncf.quantize` of one converted model on the calibration batches, with the format's
    ignored patterns and the names a search round adds; the last candidate is kept."""

    def __init__(self, model: Any, batches: list[np.ndarray], patterns: list[str]) -> None:
        self.model = model
        self.batches = batches
        self.patterns = patterns
        self.latest: tuple[Path, Any] | None = None

    def quantise(self, names: Sequence[str] = (), compress_weights: bool = True) -> Any:
        """The quantised ov.Model (the converted model is left as it is)."""
        import nncf
        from nncf.common.logging import nncf_logger
        from nncf.quantization.advanced_parameters import AdvancedQuantizationParameters

        advanced = AdvancedQuantizationParameters(
            backend_params={"compress_weights": compress_weights})
        level = nncf_logger.level
        nncf.set_log_level(logging.WARNING)  # its per-node notes, once per candidate
        try:
            with quiet():  # and its progress bars
                return nncf.quantize(
                    self.model, nncf.Dataset(self.batches),
                    preset=getattr(nncf.QuantizationPreset, PRESET),
                    subset_size=len(self.batches),
                    ignored_scope=nncf.IgnoredScope(names=list(names), patterns=self.patterns,
                                                    validate=False),
                    advanced_parameters=advanced)
        except Exception as exc:  # nncf raises assorted untyped errors
            raise ArtifactError(f"NNCF quantisation failed: {exc}") from exc
        finally:
            nncf.set_log_level(level)

    def __call__(self, out_path: Path, exclude: Sequence[str] = ()) -> Path:
        """A candidate IR at `out_path` (float32 weights beside int8 ones, as exported)."""
        import openvino as ov

        model = self.quantise(exclude)
        ov.save_model(model, str(out_path), compress_to_fp16=False)
        self.latest = (out_path, model)
        return out_path


def graph_view(model: Any) -> Any:
    """An ov.Model as `int8_sensitivity.compute_neighbours` reads graphs: nodes with a name
    (the friendly name NNCF matches) and the tensors they read and write."""
    nodes = []
    for op in model.get_ordered_ops():
        inputs = [f"{port.get_source_output().get_node().get_name()}:"
                  f"{port.get_source_output().get_index()}" for port in op.inputs()]
        outputs = [f"{op.get_name()}:{i}" for i in range(op.get_output_size())]
        nodes.append(SimpleNamespace(name=op.get_friendly_name(), input=inputs,
                                     output=outputs))
    return SimpleNamespace(node=nodes)


def leave_float(model: Any, names: set[str]) -> None:
    """Bypass the FakeQuantize nodes on every input (activations and weights) of the named
    nodes, in place: those nodes compute in float32, the rest of the graph is unchanged."""
    for op in model.get_ordered_ops():
        if op.get_friendly_name() not in names:
            continue
        for port in op.inputs():
            source = port.get_source_output()
            while (source.get_node().get_type_name() in PASS_THROUGH
                   and source.get_node().get_input_size()):
                port = source.get_node().input(0)
                source = port.get_source_output()
            if source.get_node().get_type_name() == "FakeQuantize":
                port.replace_source_output(source.get_node().input_value(0))


def leave_float_logits(quantised: Any, batches: list[np.ndarray]
                       ) -> Callable[[list[str]], np.ndarray]:
    """A `Sensitivity` measure: `quantised` (weights as FakeQuantize) with the named nodes
    left float (`leave_float`), compiled for ov-cpu as artifacts run, on `batches`."""
    import openvino as ov

    from edgetl.runtime.openvino_runner import DEVICE, latency_config

    core = ov.Core()

    def logits(names: list[str]) -> np.ndarray:
        model = quantised.clone()
        leave_float(model, set(names))
        compiled = core.compile_model(model, DEVICE, latency_config(None))
        output = compiled.outputs[0]
        return np.concatenate([np.asarray(compiled(b)[output]) for b in batches])

    return logits


def sensitivity(quantiser: NncfQuantiser, compute: list[Any], fp32_onnx: Path,
                batches: list[np.ndarray], decide: Callable[[np.ndarray], np.ndarray] | None = None
                ) -> Any:
    """The `int8_sensitivity.Sensitivity` of an NNCF graph: each measured set is the graph
    quantised once (weights as FakeQuantize) with those nodes left float (`leave_float`), on
    ov-cpu, against the fp32 ONNX graph's logits on the same `batches`."""
    from edgetl.export.int8_sensitivity import Sensitivity, compute_neighbours, run_logits

    names = [op.get_friendly_name() for op in compute]
    return Sensitivity([(op.get_friendly_name(), op.get_type_name()) for op in compute],
                       compute_neighbours(graph_view(quantiser.model), names),
                       leave_float_logits(quantiser.quantise(compress_weights=False), batches),
                       run_logits(fp32_onnx, batches), decide)


def _sensitivity(ctx: ExportContext, quantiser: NncfQuantiser, fp32_onnx: Path,
                 compute: list[Any]) -> Callable[[], Any] | None:
    """What chooses float nodes by measurement, for classifiers with validation images (None
    otherwise: the search goes straight to the prefix rounds)."""
    if not ranks_nodes(ctx):
        return None
    return lambda: sensitivity(quantiser, compute, fp32_onnx,
                               ranking_inputs(ctx, len(compute)), logits_decider(ctx.decision))


def _quantise(model: Any, fp32_onnx: Path, ctx: ExportContext) -> tuple[Any, dict[str, Any]]:
    """The accuracy search over NNCF candidates; the accepted one, and its record."""
    import nncf

    options = ctx.options
    samples = select_calibration_samples(training_samples(ctx.run),
                                         options.calibration_images, options.seed)
    batches = list(calibration_batches(samples, ctx.spec, CALIBRATION_BATCH))
    patterns = ignored_patterns(ctx.info.task_record.task)
    skipped = re.compile("|".join(f"(?:{p})" for p in patterns))
    ops = list(model.get_ordered_ops())
    compute = [op for op in ops if op.get_type_name() in COMPUTE_TYPES
               and not skipped.match(op.get_friendly_name())]
    started = time.perf_counter()
    quantiser = NncfQuantiser(model, batches, patterns)
    judge = make_judge(ctx, fp32_onnx)
    with tempfile.TemporaryDirectory(dir=fp32_onnx.parent, prefix="judge-") as tmp:
        found = search(quantiser, Path(tmp), [op.get_friendly_name() for op in ops],
                       [op.get_friendly_name() for op in compute], [], judge,
                       _sensitivity(ctx, quantiser, fp32_onnx, compute), suffix=".xml")
    assert quantiser.latest is not None and quantiser.latest[0] == found.path
    quantised = quantiser.latest[1]
    counts = quantisation_counts(quantised)
    if not counts["fake_quantize_nodes"]:
        raise ArtifactError(f"NNCF quantised nothing ({counts})",
                            "this architecture may use ops NNCF cannot quantise; "
                            "use openvino or openvino-fp16")
    if not found.met:
        last = found.rounds[-1]
        raise ArtifactError(
            f"openvino-int8 misses the int8 accuracy target with {len(found.float_nodes)} "
            f"compute nodes float32 ({found.strategy}, {len(found.rounds)} candidates): "
            f"{last['text']} (target {judge.describe()})",
            "use openvino or openvino-fp16, or onnx-int8")
    record = {
        "tool": f"nncf.quantize {nncf.__version__}",
        "nncf": nncf.__version__,
        "preset": PRESET,
        "calibration_method": "nncf min-max (default range estimators)",
        "calibration_images": len(samples),
        "calibration_images_requested": options.calibration_images,
        "calibration_classes": class_counts(samples),
        "calibration_fingerprint": calibration_fingerprint(samples, ctx.spec),
        "calibration_transform": "edgetl.artifact.reference (deployment reference path)",
        "ignored_scope": {"patterns": patterns, "names": found.exclude,
                          "postprocess_float": {"rule": POSTPROCESS_RULE}
                          if len(patterns) > 1 else None},
        "excluded_nodes": found.exclude,
        **search_record(found, judge),
        "seconds": round(time.perf_counter() - started, 2),
        **counts,
    }
    return quantised, {"quantization": record, "extra_metadata": float_nodes_metadata(found)}


def export(ctx: ExportContext) -> ExportResult:
    """The IR of `openvino_ir`, quantised by NNCF and judged before anything is written."""
    return export_ir(ctx, transform=_quantise, weights_dtype="int8")
