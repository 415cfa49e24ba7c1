"""`--normalize`: a fixed reference workload timed in the same run, to compare machines by ratio.

The workload is a small ONNX graph built in memory with `onnx.helper` (two 3x3 convolutions of
64 channels at 28x28 with ReLU, then a matmul to 256 and a mean), with weights from a fixed seed,
run by ONNX Runtime on the CPU with the same thread count as the bench. It is timed before and
after the rows and its samples pooled, so load that changes during the run is seen by both.
Each row then also carries `p50_norm = p50_ms / reference p50_ms`.

When to use it: baselines made on one machine and checked on another of the same kind (CI
runners that vary between cloud CPU generations, a laptop vs a desktop). It cancels the overall
speed of the CPU, not differences in ISA (int8 on VNNI vs not), memory bandwidth or GPUs: for
GPU rows it only reflects the host. Do not use it when baseline and check run on the same
dedicated machine: the ratio then adds the reference's own noise and hides nothing.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from edgetl.bench.stats import summarize_ns
from edgetl.bench.timing import HostClock, measure, warm_up

WORKLOAD_ID = "edgetl.refwork/1"
WORKLOAD_DESCRIPTION = ("conv3x3 64->64 at 28x28, ReLU, twice; matmul 28->256; mean "
                        "(onnxruntime CPU, fp32, seed 0)")
MIN_TIME_EACH = 0.5  # seconds before and after the rows


def build_reference_model() -> bytes:
    """The fixed reference graph, serialised (deterministic bytes for a given onnx version)."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(0)
    w1 = (rng.standard_normal((64, 64, 3, 3)) * 0.05).astype(np.float32)
    w2 = (rng.standard_normal((64, 64, 3, 3)) * 0.05).astype(np.float32)
    w3 = (rng.standard_normal((28, 256)) * 0.1).astype(np.float32)
    shape = np.array([64 * 28, 28], dtype=np.int64)
    nodes = [
        helper.make_node("Conv", ["x", "w1"], ["c1"], pads=[1, 1, 1, 1]),
        helper.make_node("Relu", ["c1"], ["r1"]),
        helper.make_node("Conv", ["r1", "w2"], ["c2"], pads=[1, 1, 1, 1]),
        helper.make_node("Relu", ["c2"], ["r2"]),
        helper.make_node("Reshape", ["r2", "shape"], ["flat"]),
        helper.make_node("MatMul", ["flat", "w3"], ["m"]),
        helper.make_node("ReduceMean", ["m"], ["y"], keepdims=0),
    ]
    graph = helper.make_graph(
        nodes, "edgetl_reference_workload",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 64, 28, 28])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [])],
        initializer=[numpy_helper.from_array(w1, "w1"), numpy_helper.from_array(w2, "w2"),
                     numpy_helper.from_array(w3, "w3"), numpy_helper.from_array(shape, "shape")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    return model.SerializeToString()


class ReferenceWorkload:
    """An open session of the reference graph; `sample()` times one batch of calls."""

    def __init__(self, threads: int | None) -> None:
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.log_severity_level = 3
        options.inter_op_num_threads = 1
        if threads is not None:
            options.intra_op_num_threads = threads
        self.session = ort.InferenceSession(build_reference_model(), options,
                                            providers=["CPUExecutionProvider"])
        self.threads = threads
        x = np.random.default_rng(1).standard_normal((1, 64, 28, 28)).astype(np.float32)
        self._feed = {"x": x}
        self.samples: list[int] = []
        self.p50s: list[float] = []

    def _step(self) -> object:
        return self.session.run(None, self._feed)

    def sample(self, min_time: float = MIN_TIME_EACH) -> None:
        clock = HostClock()
        warm_up(clock, self._step, None)
        taken = measure(clock, self._step, min_time)
        self.samples.extend(taken)
        self.p50s.append(summarize_ns(taken).p50_ms)

    def summary(self) -> dict[str, Any]:
        stats = summarize_ns(self.samples)
        return {
            "workload": WORKLOAD_ID,
            "description": WORKLOAD_DESCRIPTION,
            "threads": self.threads,
            "p50_ms": round(stats.p50_ms, 6),
            "p90_ms": round(stats.p90_ms, 6),
            "spread_ms": round(stats.spread_ms, 6),
            "cv": round(stats.cv, 6),
            "iters": stats.n,
            "p50_each_ms": [round(v, 6) for v in self.p50s],
        }
