"""Latency benchmarking: timing, statistics, environment capture, reports, baseline comparison.

`run_bench(BenchConfig(...))` (in `runner.py`) is the library entry point the CLI and
`benchmarks/bench_matrix.py` call; `compare_reports` (in `compare.py`) is the regression gate.
Importing this package imports neither torch nor onnxruntime.
"""

from __future__ import annotations

REPORT_SCHEMA = "edgetl.bench/1"

__all__ = ["REPORT_SCHEMA"]
