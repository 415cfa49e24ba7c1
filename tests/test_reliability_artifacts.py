"""Issue 26, items 6 and 7: edited class names in an artifact are refused wherever its spec is
checked; an export does not silently replace another artifact; bench does not silently bench
other images than it was given. Real artifacts of the fixture run, through the real CLI."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import onnx
from reliability_common import copy_run, edgetl, last_line

from edgetl.artifact.manifest import META_LABELS, manifest_path
from edgetl.spec import LABELS_FINGERPRINT_KEY


def relabelled(src: Path, dst: Path, *, fingerprint: bool = True) -> Path:
    """A copy of an ONNX artifact (and manifest) whose embedded class names were swapped;
    `fingerprint=False`: as exported before task records were fingerprinted (no edit)."""
    model = onnx.load(str(src))
    meta = {p.key: p.value for p in model.metadata_props}
    manifest = json.loads(manifest_path(src).read_text())
    if fingerprint:
        labels = json.loads(meta[META_LABELS])
        labels["names"] = labels["names"][::-1]
        meta[META_LABELS] = json.dumps(labels)
    else:
        meta.pop(LABELS_FINGERPRINT_KEY)
        manifest.pop("labels_fingerprint")
        manifest["metadata"].pop(LABELS_FINGERPRINT_KEY)
    del model.metadata_props[:]
    onnx.helper.set_model_props(model, meta)
    onnx.save(model, str(dst))
    manifest["sha256"] = None  # the file changed; predict does not look at it
    manifest_path(dst).write_text(json.dumps(manifest))
    return dst


def split_test_image(run: Path) -> str:
    rows = (run / "split.csv").read_text().splitlines()
    return next(r.split(",")[0] for r in rows[1:] if r.endswith(",test"))


# --------------------------------------------------------------------------- item 6
def test_edited_labels_are_refused_wherever_the_spec_is_checked(
        artifacts: dict[str, Path], fixture_run: Path, tmp_path: Path) -> None:
    bad = relabelled(artifacts["onnx"], tmp_path / "model.onnx")
    expected = f"error: {bad}: its embedded labels (edgetl.labels)"
    for args in (["predict", bad, split_test_image(fixture_run)],
                 ["bench", bad, "--backend", "ort-cpu", "--iters", "3", "--json",
                  tmp_path / "bench.json"],
                 ["evaluate", bad, "--json", tmp_path / "eval.json"]):
        proc = edgetl(*args)
        assert proc.returncode == 2, (args[0], proc.stderr)
        line = last_line(proc.stderr)
        assert line.startswith(expected) and "edited after export" in line, (args[0], line)
    assert not (tmp_path / "bench.json").exists() and not (tmp_path / "eval.json").exists()
    # verify runs (it is there to show what differs) and fails its labels check: exit 1
    proc = edgetl("verify", bad, "--against", fixture_run, "--json", tmp_path / "v.json")
    assert proc.returncode == 1, proc.stderr
    assert "edited after export" in last_line(proc.stderr)
    labels = next(c for c in json.loads((tmp_path / "v.json").read_text())["checks"]
                  if c["name"] == "labels")
    assert labels["passed"] is False and labels["details"]["edited_after_export"] is True


def test_an_artifact_without_a_labels_fingerprint_runs_with_a_warning(
        artifacts: dict[str, Path], fixture_run: Path, tmp_path: Path) -> None:
    old = relabelled(artifacts["onnx"], tmp_path / "model.onnx", fingerprint=False)
    proc = edgetl("predict", old, split_test_image(fixture_run), "--json", "-")
    assert proc.returncode == 0, proc.stderr
    assert last_line(proc.stderr) == (
        f"warning: {old} records no fingerprint of its class names (exported by an older "
        "edgetl): an edit of its labels after export cannot be detected; re-export it to have "
        "them checked")
    assert json.loads(proc.stdout)["predictions"][0]["image"] == split_test_image(fixture_run)


# --------------------------------------------------------------------------- item 7
def test_export_does_not_replace_another_artifact(fixture_run: Path, tmp_path: Path) -> None:
    run = copy_run(fixture_run, tmp_path / "run")
    shutil.rmtree(run / "export", ignore_errors=True)
    first = edgetl("export", run)
    assert first.returncode == 0, first.stderr
    target = run / "export" / "model.onnx"
    again = edgetl("export", run)  # the same artifact made again: allowed
    assert again.returncode == 0, again.stderr
    before = {p: p.read_bytes() for p in (target, manifest_path(target))}
    proc = edgetl("export", run, "--format", "onnx-fp16", "--out", target)
    assert proc.returncode == 2, proc.stderr
    line = last_line(proc.stderr)
    assert line.startswith(f"error: --out {target} already holds a onnx (fp32) artifact of "
                           f"{run.resolve()} (best checkpoint)"), line
    assert "pass --force to replace it" in line
    assert {p: p.read_bytes() for p in before} == before  # untouched
    stray = tmp_path / "mine.onnx"
    stray.write_bytes(b"not an edgetl artifact")
    proc = edgetl("export", run, "--out", stray)
    assert proc.returncode == 2 and "a file that has no readable edgetl manifest" in \
        last_line(proc.stderr)
    assert stray.read_bytes() == b"not an edgetl artifact"
    forced = edgetl("export", run, "--format", "onnx-fp16", "--out", target, "--force")
    assert forced.returncode == 0, forced.stderr
    assert json.loads(manifest_path(target).read_text())["format"] == "onnx-fp16"


def test_bench_with_an_empty_images_folder_is_exit_2(artifacts: dict[str, Path],
                                                    tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "notes.txt").write_text("no images here\n")
    proc = edgetl("bench", artifacts["onnx"], "--backend", "ort-cpu", "--mode", "e2e",
                  "--images", empty, "--iters", "3", "--json", tmp_path / "b.json")
    assert proc.returncode == 2, proc.stderr
    assert last_line(proc.stderr).startswith(f"error: {empty} holds no files with an image "
                                             "extension")
    assert not (tmp_path / "b.json").exists()
