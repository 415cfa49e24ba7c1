"""Issue 16, item 1: Ctrl-C exits 130 with one line saying what was interrupted and how to go on,
and leaves no report that looks complete. A real SIGINT to the real console script."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from reliability_common import interrupt_when_ready, last_line, tiny_recipe

from edgetl.artifact.manifest import manifest_path


@pytest.fixture(scope="module")
def manifest(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from fixtures_runs import make_image_list

    return make_image_list(tmp_path_factory.mktemp("int_data"),
                               {"train": 6, "val": 3, "test": 3}, seed=5)


def test_finetune_interrupt_exits_130_and_says_how_to_resume(tmp_path: Path,
                                                             manifest: Path) -> None:
    recipe = tiny_recipe(tmp_path / "r.yaml", manifest, epochs=400)
    run = tmp_path / "run"
    rc, _, stderr = interrupt_when_ready(["finetune", recipe, "--out", run], "epoch   1 ")
    assert rc == 130, stderr
    line = last_line(stderr)
    assert line.startswith(f"error: interrupted: finetune of {run}") and "--resume" in line
    state = json.loads((run / "last" / "train_state.json").read_text())
    logged = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]
    assert state["done"] is False and state["global_epoch"] >= 1
    assert state["global_epoch"] <= len(logged) <= state["global_epoch"] + 1
    assert not (run / "summary.json").exists() and not (run / "test_metrics.json").exists()


def test_export_interrupt_leaves_no_artifact(fixture_run: Path, tmp_path: Path) -> None:
    target = tmp_path / "m.onnx"
    rc, _, stderr = interrupt_when_ready(["export", fixture_run, "--out", target], "exporting")
    assert rc == 130, stderr
    assert last_line(stderr).startswith(f"error: interrupted: export of {fixture_run}")
    assert not target.exists() and not manifest_path(target).exists()
    assert list(tmp_path.iterdir()) == []  # no temporary file either


def test_verify_interrupt_is_not_a_pass(artifacts: dict[str, Path], fixture_run: Path,
                                        tmp_path: Path) -> None:
    report = tmp_path / "verify.json"
    rc, _, stderr = interrupt_when_ready(
        ["verify", artifacts["onnx"], "--against", fixture_run, "--json", report], "verifying")
    assert rc == 130, stderr
    line = last_line(stderr)
    assert line.startswith("error: interrupted: verify of") and "did not pass" in line
    assert not report.exists()


def test_bench_interrupt_is_not_a_pass(artifacts: dict[str, Path], tmp_path: Path) -> None:
    report = tmp_path / "bench.json"
    rc, _, stderr = interrupt_when_ready(
        ["bench", artifacts["onnx"], "--backend", "ort-cpu", "--min-time", "60", "--json",
         report], "benchmarking")
    assert rc == 130, stderr
    assert last_line(stderr).startswith("error: interrupted: bench of")
    assert list(tmp_path.iterdir()) == []  # neither the JSON nor its histogram


def test_a_ctrl_c_during_an_import_waits_for_the_import(tmp_path: Path) -> None:
    """An exception inside an extension's initialisation aborts the process (onnx's nanobind
    module did, exit -6): the interrupt is held back until the import has finished."""
    import subprocess
    import sys
    import textwrap

    (tmp_path / "slow_module.py").write_text(textwrap.dedent("""
        import os, signal, time
        os.kill(os.getpid(), signal.SIGINT)
        deadline = time.time() + 0.3
        while time.time() < deadline:
            sum(range(1000))
        FINISHED = True
    """))
    (tmp_path / "main.py").write_text(textwrap.dedent("""
        import sys, time
        from edgetl import interrupt
        interrupt.install()
        try:
            with interrupt.activity("the import test"):
                import slow_module
                time.sleep(5)
            print("no interrupt")
        except KeyboardInterrupt:
            # the held interrupt may land anywhere after the import: ask whether the module ran
            # to its end (an import cut short leaves no module behind)
            finished = getattr(sys.modules.get("slow_module"), "FINISHED", False)
            print("imported", finished, flush=True)
            print("interrupted after the import:", interrupt.interrupted_line())
    """))
    done = subprocess.run([sys.executable, "main.py"], cwd=tmp_path, capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == [
        "imported True", "interrupted after the import: interrupted: the import test"]


def test_a_held_ctrl_c_names_the_work_it_cuts_short(tmp_path: Path) -> None:
    """A Ctrl-C sent while an import ran before any activity began is raised once the import has
    finished, inside the command's activity: the message names that work, not "the command"."""
    import subprocess
    import sys
    import textwrap

    (tmp_path / "slow_module.py").write_text(textwrap.dedent("""
        import os, signal, time
        os.kill(os.getpid(), signal.SIGINT)
        deadline = time.time() + 0.3
        while time.time() < deadline:
            sum(range(1000))
    """))
    (tmp_path / "main.py").write_text(textwrap.dedent("""
        import time
        from edgetl import interrupt
        interrupt.install()
        try:
            import slow_module
            with interrupt.activity("bench of model.onnx"):
                time.sleep(5)
            print("no interrupt")
        except KeyboardInterrupt:
            print(interrupt.interrupted_line())
    """))
    done = subprocess.run([sys.executable, "main.py"], cwd=tmp_path, capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == ["interrupted: bench of model.onnx"]
