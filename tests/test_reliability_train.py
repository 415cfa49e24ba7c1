"""Issue 16 on `finetune`: resume that says what it can do (3, 4), damaged training state and a
full disk (5), failed starts that do not block a retry (8), feasibility before training (11),
empty recipes (12), phases with 0 epochs (13). Real runs of a few seconds each."""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
import time
from pathlib import Path

import numpy as np
import pytest
from reliability_common import EDGETL, copy_run, edgetl, last_line, tiny_recipe


def metrics_text(run: Path) -> str:
    return (run / "metrics.jsonl").read_text()


def epochs_of(run: Path) -> list[int]:
    return [json.loads(x)["epoch"] for x in metrics_text(run).splitlines() if x.strip()]


@pytest.fixture(scope="module")
def manifest(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from fixtures_runs import make_image_list

    return make_image_list(tmp_path_factory.mktemp("rel_data"),
                               {"train": 6, "val": 3, "test": 3}, seed=7)


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory, manifest: Path) -> tuple[Path, Path]:
    """(recipe, run) of a finished two-epoch run; tests copy the run before changing it."""
    root = tmp_path_factory.mktemp("rel_trained")
    recipe = tiny_recipe(root / "r.yaml", manifest, epochs=2)
    done = edgetl("finetune", recipe, "--out", root / "run")
    assert done.returncode == 0, done.stderr
    return recipe, root / "run"


def killed_before_the_report(run: Path) -> Path:
    """The run as if killed after its last epoch, before the test report: not finished, so
    --resume has work to do (a finished run is left as it is)."""
    for name in ("summary.json", "test_metrics.json"):
        (run / name).unlink(missing_ok=True)
    return run


# --------------------------------------------------------------------------- item 3
@pytest.mark.parametrize("lose", ["last", "last/train_state.json"])
def test_resume_without_last_says_it_cannot(trained: tuple[Path, Path], tmp_path: Path,
                                            lose: str) -> None:
    recipe, source = trained
    run = killed_before_the_report(copy_run(source, tmp_path / "run"))
    target = run / lose
    shutil.rmtree(target) if target.is_dir() else target.unlink()
    before = metrics_text(run)
    best = (run / "best" / "model.safetensors").read_bytes()
    proc = edgetl("finetune", recipe, "--out", run, "--resume")
    assert proc.returncode == 2, proc.stderr
    line = last_line(proc.stderr)
    assert line.startswith(f"error: cannot resume {run}: it logged 2 epoch(s)")
    assert ("last/ is missing" if lose == "last" else "has no train_state.json") in line
    assert metrics_text(run) == before  # no epoch 1 appended again
    assert (run / "best" / "model.safetensors").read_bytes() == best


# --------------------------------------------------------------------------- item 4
@pytest.fixture(scope="module")
def interrupted(tmp_path_factory: pytest.TempPathFactory, manifest: Path) -> tuple[Path, Path]:
    """(recipe, run) of a four-epoch run stopped by a real Ctrl-C after its first epoch."""
    from reliability_common import interrupt_when_ready

    root = tmp_path_factory.mktemp("rel_interrupted")
    recipe = tiny_recipe(root / "r.yaml", manifest, epochs=4)
    rc, _, stderr = interrupt_when_ready(["finetune", recipe, "--out", root / "run"],
                                         "epoch   1 ")
    assert rc == 130, stderr
    return recipe, root / "run"


def saved_epoch(run: Path) -> int:
    return json.loads((run / "last" / "train_state.json").read_text())["global_epoch"]


def test_torn_metrics_line_is_dropped_on_resume(interrupted: tuple[Path, Path],
                                                tmp_path: Path) -> None:
    recipe, source = interrupted
    run = copy_run(source, tmp_path / "run")
    with open(run / "metrics.jsonl", "a") as handle:
        handle.write('{"epoch": 9, "phase": "A", "train_lo')  # an append cut short
    proc = edgetl("finetune", recipe, "--out", run, "--resume")
    assert proc.returncode == 0, proc.stderr
    assert "warning: " in proc.stderr and "dropped its last line" in proc.stderr
    assert epochs_of(run) == [1, 2, 3, 4]
    assert json.loads((run / "summary.json").read_text())["best_epoch"] in (1, 2, 3, 4)


def test_a_torn_line_of_a_saved_epoch_is_written_back(interrupted: tuple[Path, Path],
                                                      tmp_path: Path) -> None:
    """Issue 26, item 10: the torn line was an epoch last/ had saved; resuming goes on after
    it, so it used to be missing from metrics.jsonl for good."""
    recipe, source = interrupted
    run = copy_run(source, tmp_path / "run")
    saved = saved_epoch(run)
    lines = metrics_text(run).splitlines()
    original = json.loads(lines[saved - 1])
    (run / "metrics.jsonl").write_text("".join(x + "\n" for x in lines[:saved - 1])
                                       + lines[saved - 1][:25])
    proc = edgetl("finetune", recipe, "--out", run, "--resume")
    assert proc.returncode == 0, proc.stderr
    assert f"wrote back the line of epoch {saved} from last/" in proc.stderr
    assert epochs_of(run) == [1, 2, 3, 4]
    assert json.loads(metrics_text(run).splitlines()[saved - 1]) == original


def test_resume_of_a_finished_run_changes_nothing(trained: tuple[Path, Path],
                                                  tmp_path: Path) -> None:
    """Issue 26, item 7: it used to rewrite summary.json with train_seconds 0.0."""
    recipe, source = trained
    run = copy_run(source, tmp_path / "run")
    before = {p: p.read_bytes() for p in run.rglob("*") if p.is_file()}
    proc = edgetl("finetune", recipe, "--out", run, "--resume")
    assert proc.returncode == 0, proc.stderr
    assert last_line(proc.stderr) == (
        f"warning: {run} is a finished run (summary.json, best epoch "
        f"{json.loads((run / 'summary.json').read_text())['best_epoch']}): nothing to resume, "
        "nothing was changed; to train again, start a new run with another --out")
    assert {p: p.read_bytes() for p in run.rglob("*") if p.is_file()} == before


# --------------------------------------------------------------------------- item 5
@pytest.mark.parametrize("damage", ["last/model.safetensors", "last/optimizer.pt",
                                    "last/train_state.json"])
def test_damaged_training_state_is_one_line(trained: tuple[Path, Path], tmp_path: Path,
                                            damage: str) -> None:
    recipe, source = trained
    run = killed_before_the_report(copy_run(source, tmp_path / "run"))
    state = json.loads((run / "last" / "train_state.json").read_text())
    state["done"] = False  # as if killed: resume must load everything
    (run / "last" / "train_state.json").write_text(json.dumps(state))
    file = run / damage
    file.write_bytes(file.read_bytes()[: file.stat().st_size // 2])
    before = metrics_text(run)
    proc = edgetl("finetune", recipe, "--out", run, "--resume")
    assert proc.returncode == 2, proc.stderr
    line = last_line(proc.stderr)
    assert line.startswith(f"error: {file}") and "corrupt or truncated" in line
    assert proc.stderr.count("\n") == 1 and "Traceback" not in proc.stderr
    assert metrics_text(run) == before


def test_full_disk_during_finetune_is_exit_2_and_blocks_no_retry(tmp_path: Path,
                                                                 manifest: Path) -> None:
    from reliability_common import mount_tmpfs, unmount

    disk = tmp_path / "disk"
    if not mount_tmpfs(disk, "2m"):
        pytest.skip("mounting a tmpfs is not permitted here")
    try:
        recipe = tiny_recipe(tmp_path / "r.yaml", manifest)
        proc = edgetl("finetune", recipe, "--out", disk / "run")
        assert proc.returncode == 2, proc.stderr
        line = last_line(proc.stderr)
        assert line.startswith(f"error: no space left on the device holding {disk / 'run'}")
        assert "Traceback" not in proc.stderr
        # The checkpoint did not fit: nothing of the failed start is left to block a retry.
        assert [p.name for p in (disk / "run").iterdir()] == [".edgetl-run"]
    finally:
        unmount(disk)


# --------------------------------------------------------------------------- item 8
def test_failed_start_does_not_block_the_corrected_command(tmp_path: Path,
                                                          manifest: Path) -> None:
    run = tmp_path / "run"
    # The manifest gives its val and test splits: without its test rows there is no test split.
    rows = [r for r in manifest.read_text().splitlines() if not r.endswith(",test")]
    no_test = tmp_path / "no_test.csv"
    no_test.write_text("\n".join(rows) + "\n")
    bad = tiny_recipe(tmp_path / "bad.yaml", no_test, data={"test_fraction": 0.0})
    failed = edgetl("finetune", bad, "--out", run)
    assert failed.returncode == 2 and "the test split is empty" in last_line(failed.stderr)
    fixed = tiny_recipe(tmp_path / "fixed.yaml", manifest)  # another recipe, same --out
    done = edgetl("finetune", fixed, "--out", run)
    assert done.returncode == 0, done.stderr
    assert epochs_of(run) == [1] and (run / "summary.json").is_file()


def test_killed_start_does_not_block_a_different_recipe(tmp_path: Path, manifest: Path) -> None:
    run = tmp_path / "run"
    first = tiny_recipe(tmp_path / "a.yaml", manifest)
    proc = subprocess.Popen([*EDGETL, "finetune", str(first), "--out", str(run)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 120
    while not (run / "split.csv").is_file() and time.time() < deadline:
        time.sleep(0.01)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert (run / "recipe.yaml").is_file() and not (run / "metrics.jsonl").exists()
    second = tiny_recipe(tmp_path / "b.yaml", manifest, train={"seed": 3})
    done = edgetl("finetune", second, "--out", run)
    assert done.returncode == 0, done.stderr
    assert "ended before its first epoch: starting afresh" in done.stdout
    assert "seed: 3" in (run / "recipe.yaml").read_text() and epochs_of(run) == [1]


def test_resume_of_a_start_with_no_epoch_starts_from_the_first(tmp_path: Path,
                                                              manifest: Path) -> None:
    recipe = tiny_recipe(tmp_path / "r.yaml", manifest)
    run = tmp_path / "run"
    (run).mkdir()
    (run / ".edgetl-run").write_text("x\n")
    shutil.copy(recipe, run / "recipe.yaml")  # what a start killed at once leaves
    done = edgetl("finetune", recipe, "--out", run, "--resume")
    assert done.returncode == 0, done.stderr
    assert "nothing to resume in" in done.stdout and "no epoch was saved" in done.stdout
    assert epochs_of(run) == [1]


# --------------------------------------------------------------------------- item 11
def test_four_images_fail_before_training(tmp_path: Path) -> None:
    from imagegen import make_class_tree

    make_class_tree(tmp_path / "data", {"a": 2, "b": 2}, np.random.default_rng(0))
    recipe = tiny_recipe(tmp_path / "r.yaml", tmp_path / "data")
    proc = edgetl("finetune", recipe, "--out", tmp_path / "run")
    assert proc.returncode == 2, proc.stderr
    assert last_line(proc.stderr).startswith("error: the test split is empty (4 images")
    assert not (tmp_path / "run" / "metrics.jsonl").exists()


def test_a_class_no_split_can_score_is_named(tmp_path: Path, manifest: Path) -> None:
    rows = manifest.read_text().splitlines()
    keep = [rows[0]] + [r for r in rows[1:] if ",blobs," not in r or ",train" in r]
    lonely = tmp_path / "data.csv"
    lonely.write_text("\n".join(keep) + "\n")  # blobs only in train
    proc = edgetl("finetune", tiny_recipe(tmp_path / "r.yaml", lonely), "--out",
                  tmp_path / "run")
    assert proc.returncode == 0, proc.stderr
    for split, what in (("val", "the validation metric val_accuracy"),
                        ("test", "the test report")):
        assert (f"warning: the {split} split has no image of class(es) blobs: {what} cannot "
                "score them") in proc.stderr


# --------------------------------------------------------------------------- items 12, 13
def test_empty_recipe_is_an_error(tmp_path: Path) -> None:
    (tmp_path / "empty.yaml").write_text("# nothing yet\n")
    proc = edgetl("finetune", tmp_path / "empty.yaml", "--out", tmp_path / "run")
    assert proc.returncode == 2
    assert last_line(proc.stderr) == (f"error: {tmp_path / 'empty.yaml'} is empty: a recipe "
                                      "file must say what to train (start from one in recipes/)")
    assert not (tmp_path / "run").exists()


def test_zero_epochs_everywhere_is_an_error_not_still_running(tmp_path: Path,
                                                             manifest: Path) -> None:
    recipe = tiny_recipe(tmp_path / "r.yaml", manifest, epochs=0)
    proc = edgetl("finetune", recipe, "--out", tmp_path / "run")
    assert proc.returncode == 2
    line = last_line(proc.stderr)
    assert "every phase (A) has 0 epochs: nothing would be trained" in line
    assert "still be running" not in proc.stderr and not (tmp_path / "run").exists()
