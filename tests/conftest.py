"""Shared, session-scoped fixtures: one small real run folder and its exported artifacts.

Both are built once per test session (lazily, only when a test asks for them).
"""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def fixture_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A real run folder (packaged Lite0 weights, fitted head, best/, last/, split.csv)."""
    from fixtures_runs import make_fixture_run

    return make_fixture_run(tmp_path_factory.mktemp("fixture_run"))


@pytest.fixture(scope="session")
def artifacts(fixture_run: Path) -> dict[str, Path]:
    """The fixture run exported as onnx, onnx-fp16, onnx-int8 and embedded-preprocessing onnx."""
    from edgetl.export import ExportOptions, export_run

    out = {}
    for key, fmt, embed in (("onnx", "onnx", False), ("onnx-fp16", "onnx-fp16", False),
                            ("onnx-int8", "onnx-int8", False), ("onnx-embed", "onnx", True)):
        out[key] = export_run(fixture_run, fmt,
                              options=ExportOptions(embed_preprocessing=embed)).path
    return out
