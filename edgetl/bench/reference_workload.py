"""A fixed reference workload, timed beside every row: the machine's speed at that moment.

The workload is a small ONNX graph built in memory with `onnx.helper` (two 3x3 convolutions of
64 channels at 28x28 with ReLU, then a matmul to 256 and a mean), weights from a fixed seed,
run by ONNX Runtime on the CPU with the row's thread count. Right before and right after each
row it runs for `PROBE_SECONDS`; the row records `ref_ms`, the mean wall time per reference
call over those windows. The mean, not the median, on purpose: a 1 ms call fits in one
scheduler time slice, so its median ignores the time the process waits for a CPU while a 12 ms
model call does not; the mean over a window includes that waiting, so `ref_ms` rises with
machine load as the rows do (measured here: with 1-3 competing busy processes, a Lite0 row's
p50 varied 3.5x while p50 / ref_ms varied by about 15%).

Uses: (1) the regression gate widens its allowance by ref_new / ref_old when the machine was
measured slower during the new run (never tightens it); (2) `--normalize` compares
`p50_norm = p50_ms / ref_ms` instead of milliseconds, so a baseline from another machine of the
same kind compares by ratio. When to use `--normalize`: baselines made on one machine and
checked on another (CI runners that vary between cloud CPU generations). It cancels overall CPU
speed and load, not differences in ISA (VNNI/AMX for int8), memory bandwidth or GPUs; for GPU
rows it only reflects the host. On one dedicated machine the plain gate is tighter.
"""

from __future__ import annotations

import time

import numpy as np

WORKLOAD_ID = "edgetl.refwork/1"
WORKLOAD_DESCRIPTION = ("conv3x3 64->64 at 28x28, ReLU, twice; matmul 28->256; mean "
                        "(onnxruntime CPU, fp32, seed 0)")
PROBE_SECONDS = 0.25  # reference window right before and right after each row
WARMUP_CALLS = 10


def build_reference_model() -> bytes:
    """The fixed reference graph, serialised (deterministic bytes for a given onnx version)."""
    # not at the top: onnx loads only when used (fast --help)
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
    """An open session of the reference graph for one thread count."""

    def __init__(self, threads: int | None) -> None:
        from edgetl.runtime.onnxrt import open_session

        self.session = open_session(build_reference_model(), threads=threads,
                                    inter_op_threads=1)
        self.threads = threads
        x = np.random.default_rng(1).standard_normal((1, 64, 28, 28)).astype(np.float32)
        self._feed = {"x": x}
        for _ in range(WARMUP_CALLS):
            self.session.run(None, self._feed)

    def window_ms(self, seconds: float = PROBE_SECONDS) -> float:
        """Mean wall milliseconds per reference call over a window of `seconds`."""
        calls = 0
        start = time.perf_counter_ns()
        deadline = start + int(seconds * 1e9)
        while True:
            self.session.run(None, self._feed)
            calls += 1
            now = time.perf_counter_ns()
            if now >= deadline:
                return (now - start) / calls / 1e6


class LoadProbe:
    """Reference sessions per thread count; `before()`/`after()` bracket one row."""

    def __init__(self) -> None:
        self._sessions: dict[int | None, ReferenceWorkload] = {}
        self._before = 0.0

    def _session(self, threads: int | None) -> ReferenceWorkload:
        if threads not in self._sessions:
            self._sessions[threads] = ReferenceWorkload(threads)
        return self._sessions[threads]

    def before(self, threads: int | None) -> None:
        self._before = self._session(threads).window_ms()

    def after(self, threads: int | None) -> dict[str, float]:
        after = self._session(threads).window_ms()
        return {"ref_ms": round((self._before + after) / 2, 6),
                "ref_before_ms": round(self._before, 6), "ref_after_ms": round(after, 6)}


def describe() -> dict[str, object]:
    """The report's `normalization`/probe description."""
    return {"workload": WORKLOAD_ID, "description": WORKLOAD_DESCRIPTION,
            "statistic": f"mean wall ms per call over {PROBE_SECONDS} s before and after each row"}
