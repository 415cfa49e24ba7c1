"""Issue 16 on the other commands: ordinary situations are one line with exit 2 or 3 (5), split
folders in any case (6), `data split` keeps its input (7), gate options (9), tampered artifacts
(10), messages in the CLI's voice (13)."""

from __future__ import annotations

import csv
import json
import os
import shutil
import struct
import zlib
from pathlib import Path

import numpy as np
import onnx
import pytest
from PIL import Image
from reliability_common import edgetl, last_line, mount_tmpfs, unmount

from edgetl.artifact.manifest import META_SPEC, manifest_path


def one_error_line(proc, code: int) -> str:
    """The exit code, a single `error:` line last on stderr, no traceback; returns that line."""
    assert proc.returncode == code, proc.stdout + proc.stderr
    assert "Traceback" not in proc.stderr and "internal error" not in proc.stderr
    line = last_line(proc.stderr)
    assert line.startswith("error: ") and proc.stderr.count("error: ") == 1
    return line


def png_header_only(path: Path, width: int, height: int) -> Path:
    """A PNG whose header claims `width` x `height` (no pixel data): what a decompression
    bomb looks like before it is decoded."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return (struct.pack(">I", len(data)) + kind + data
                + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IEND", b""))
    return path


def tampered(src: Path, dst: Path) -> Path:
    """A copy of an ONNX artifact (and manifest) whose embedded spec's mean was edited."""
    model = onnx.load(str(src))
    meta = {p.key: p.value for p in model.metadata_props}
    spec = json.loads(meta[META_SPEC])
    spec["mean"] = [m + 0.1 for m in spec["mean"]]
    meta[META_SPEC] = json.dumps(spec)
    del model.metadata_props[:]
    onnx.helper.set_model_props(model, meta)
    onnx.save(model, str(dst))
    shutil.copy(manifest_path(src), manifest_path(dst))
    return dst


def csv_rows(path: Path) -> list[dict[str, str]]:
    with open(path, newline="") as handle:
        return list(csv.DictReader(handle))


def split_image(fixture_run: Path) -> str:
    rows = csv_rows(fixture_run / "split.csv")
    return next(r["path"] for r in rows if r["split"] == "test")


# --------------------------------------------------------------------------- item 5
def test_full_disk_export_is_exit_2_and_leaves_nothing(fixture_run: Path, tmp_path: Path) -> None:
    disk = tmp_path / "disk"
    if not mount_tmpfs(disk, "2m"):
        pytest.skip("mounting a tmpfs is not permitted here")
    try:
        line = one_error_line(edgetl("export", fixture_run, "--out", disk / "m.onnx"), 2)
        assert line.startswith(f"error: no space left on the device holding {disk / 'm.onnx'}")
        assert list(disk.iterdir()) == []  # no half-written artifact, no temporary file
    finally:
        unmount(disk)


def test_read_only_output_fails_before_any_work(artifacts: dict[str, Path], fixture_run: Path,
                                                tmp_path: Path) -> None:
    folder = tmp_path / "ro"
    if mount_tmpfs(folder, "1m", read_only=True):
        expected = "is on a read-only file system"
    else:  # chmod, where it binds (not for root)
        folder.mkdir()
        folder.chmod(0o555)
        if os.access(folder, os.W_OK):
            pytest.skip("neither a read-only mount nor permissions can stop this user")
        expected = "permission denied"
    try:
        proc = edgetl("verify", artifacts["onnx"], "--against", fixture_run, "--json",
                      folder / "r.json")
        line = one_error_line(proc, 2)
        assert expected in line and str(folder / "r.json") in line
        assert "verifying" not in proc.stdout  # refused before the checks ran
    finally:
        unmount(folder)
        folder.chmod(0o755)


def test_corrupt_checkpoint_is_detected_by_its_sha256(fixture_run: Path, tmp_path: Path) -> None:
    run = Path(shutil.copytree(fixture_run, tmp_path / "run"))
    weights = run / "best" / "model.safetensors"
    data = bytearray(weights.read_bytes())
    data[-100] ^= 0xFF  # one flipped byte: loads fine, computes garbage
    weights.write_bytes(bytes(data))
    for args in (("evaluate", run), ("export", run, "--out", tmp_path / "m.onnx")):
        line = one_error_line(edgetl(*args), 2)
        assert f"{weights} is corrupt or truncated" in line and "checkpoint.json records" in line
    assert not (tmp_path / "m.onnx").exists()


@pytest.mark.parametrize("args, code, words", [
    (("evaluate", "{run}", "--split", "foo"), 2, "--split 'foo' is not a split"),
    (("export", "{run}", "--opset", "99", "--out", "{tmp}/m.onnx"), 2,
     "--opset 99 is newer than"),
    (("bench", "{onnx}", "--batch", "100000", "--iters", "1"), 2, "use a smaller --batch"),
    (("finetune", "{file}"), 2, "is not UTF-8 text"),
    (("finetune", "{tmp}/r.yaml", "--out", "{file}"), 2, "is a file, not a folder"),
    (("export", "{run}", "--out", "{file}/m.onnx"), 2, "is a file, not a folder"),
    (("verify", "{onnx}", "--against", "{run}", "--json", "{tmp}"), 2,
     "is a folder, not a file"),
    (("predict", "{onnx}", "{bomb}"), 2, "is too large to decode safely"),
])
def test_ordinary_situations_are_one_line(artifacts: dict[str, Path], fixture_run: Path,
                                          tmp_path: Path, args: tuple, code: int,
                                          words: str) -> None:
    blob = tmp_path / "not-utf8.bin"
    blob.write_bytes(b"name: t\n\xff\xfe: 1\n")
    (tmp_path / "r.yaml").write_text("name: t\ndata: {source: elpv}\n")
    values = {"run": fixture_run, "onnx": artifacts["onnx"], "tmp": tmp_path, "file": blob,
              "bomb": png_header_only(tmp_path / "bomb.png", 20000, 20000)}
    line = one_error_line(edgetl(*[a.format(**values) for a in args]), code)
    assert words in line
    assert blob.read_bytes() == b"name: t\n\xff\xfe: 1\n"  # nothing written over it


def test_cuda_device_without_gpu_is_exit_3(fixture_run: Path) -> None:
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    line = one_error_line(edgetl("evaluate", fixture_run, "--device", "cuda"), 3)
    assert "no CUDA device is visible" in line


# --------------------------------------------------------------------------- item 6
@pytest.mark.parametrize("names, expected", [
    (("Train", "Validation", "Test"), {"train": 4, "val": 2, "test": 2}),
    (("TRAIN", "Valid", "test"), {"train": 4, "val": 2, "test": 2}),
    (("Train", "Val"), {"train": 4, "test": 2}),  # a lone val/ is the test split, as before
])
def test_capitalised_split_folders_are_splits(tmp_path: Path, names: tuple[str, ...],
                                              expected: dict[str, int]) -> None:
    from imagegen import make_class_tree

    rng = np.random.default_rng(0)
    for name, per_class in zip(names, (2, 1, 1), strict=False):
        make_class_tree(tmp_path / "data" / name, {"cat": per_class, "dog": per_class}, rng)
    proc = edgetl("data", "inspect", tmp_path / "data", "--json", tmp_path / "r.json")
    assert proc.returncode == 0, proc.stderr
    report = json.loads((tmp_path / "r.json").read_text())
    assert sorted(report["classes"]) == ["cat", "dog"]
    assert {k: sum(v.values()) for k, v in report["splits"].items()} == expected


# --------------------------------------------------------------------------- item 7
def test_data_split_keeps_its_input_and_its_columns(tmp_path: Path) -> None:
    from fixtures_runs import make_image_list

    source = make_image_list(tmp_path, {"train": 4})
    rows = csv_rows(source)
    with open(source, "w", newline="") as handle:
        writer = csv.DictWriter(handle, ["path", "label", "site", "note"])
        writer.writeheader()
        for i, row in enumerate(rows):
            writer.writerow({"path": row["path"], "label": row["label"], "site": f"s{i % 3}",
                             "note": f"n{i}"})
    before = source.read_bytes()
    line = one_error_line(edgetl("data", "split", source, "--out", source), 2)
    assert "is the input manifest itself" in line
    assert source.read_bytes() == before
    out = tmp_path / "split.csv"
    done = edgetl("data", "split", source, "--out", out, "--group-column", "site")
    assert done.returncode == 0, done.stderr
    written = csv_rows(out)
    assert list(written[0]) == ["path", "label", "group", "split", "site", "note"]
    notes = {r["path"]: r["note"] for r in csv_rows(source)}
    assert all(r["note"] == notes[r["path"]] and r["group"] == r["site"] for r in written)


# --------------------------------------------------------------------------- item 9
@pytest.mark.parametrize("option, words", [
    (("--agreement-budget", "2"), "--agreement-budget 2 is not a fraction"),
    (("--agreement-budget", "-0.5"), "--agreement-budget -0.5 is not a fraction"),
    (("--metric-drop-budget", "-1"), "--metric-drop-budget -1 is negative"),
    (("--max-images", "0"), "--max-images 0 checks nothing"),
])
def test_bad_gate_options_are_usage_errors(artifacts: dict[str, Path], fixture_run: Path,
                                           tmp_path: Path, option: tuple, words: str) -> None:
    report = tmp_path / "v.json"
    proc = edgetl("verify", artifacts["onnx"], "--against", fixture_run, "--json", report,
                  *option)
    assert words in one_error_line(proc, 2)
    assert not report.exists()


def test_old_budget_spellings_still_gate_with_a_note(artifacts: dict[str, Path],
                                                    fixture_run: Path, tmp_path: Path) -> None:
    """--top1-budget/--accuracy-budget are the new names' aliases for one release."""
    report = tmp_path / "v.json"
    proc = edgetl("verify", artifacts["onnx"], "--against", fixture_run, "--json", report,
                  "--top1-budget", "2")
    assert "--agreement-budget 2 is not a fraction" in one_error_line(proc, 2)
    assert "note: --top1-budget is deprecated" in proc.stderr
    proc = edgetl("verify", artifacts["onnx"], "--against", fixture_run, "--accuracy-budget",
                  "-1", "--metric-drop-budget", "0.5")
    assert "given twice" in one_error_line(proc, 2)


def test_bench_gate_that_compared_nothing_does_not_pass(artifacts: dict[str, Path],
                                                       tmp_path: Path) -> None:
    base = tmp_path / "base.json"
    first = edgetl("bench", artifacts["onnx"], "--backend", "ort-cpu", "--iters", "3",
                   "--warmup", "1", "--json", base)
    assert first.returncode == 0, first.stderr
    report = json.loads(base.read_text())
    for row in report["rows"]:
        row["batch"] = 7  # a baseline of rows this run does not measure
    report["artifact"]["spec_fingerprint"] = "0" * 64
    base.write_text(json.dumps(report))
    proc = edgetl("bench", artifacts["onnx"], "--backend", "ort-cpu", "--iters", "3",
                  "--warmup", "1", "--baseline", base, "--allow-missing",
                  "--allow-different-spec")
    line = one_error_line(proc, 1)
    assert "the gate compared nothing" in line and "gate passed" not in proc.stdout


# --------------------------------------------------------------------------- item 10
def test_predict_refuses_a_tampered_artifact_unless_forced(artifacts: dict[str, Path],
                                                           fixture_run: Path,
                                                           tmp_path: Path) -> None:
    bad = tampered(artifacts["onnx"], tmp_path / "model.onnx")
    image = split_image(fixture_run)
    line = one_error_line(edgetl("predict", bad, image), 2)
    assert "it was edited after export" in line and "--force" in line
    forced = edgetl("predict", bad, image, "--force", "--json", "-")
    assert forced.returncode == 0, forced.stderr
    assert "warning: " in forced.stderr and "running it anyway (--force)" in forced.stderr
    assert json.loads(forced.stdout)["predictions"][0]["image"] == image


# --------------------------------------------------------------------------- item 13
def test_yaml_error_keeps_line_and_column(tmp_path: Path) -> None:
    recipe = tmp_path / "r.yaml"
    recipe.write_text("name: t\nphases: [\n  {name: A\n")
    line = one_error_line(edgetl("finetune", recipe), 2)
    assert line == (f"error: {recipe} is not valid YAML: line 4, column 1: expected ',' or '}}', "
                    "but got '<stream end>' (while parsing a flow mapping at line 3, column 3)")


def test_data_warnings_speak_in_the_clis_voice(fixture_run: Path, tmp_path: Path) -> None:
    from fixtures_runs import make_image_list

    source = make_image_list(tmp_path, {"test": 1})
    with open(source, "a") as handle:
        handle.write(f"{tmp_path / 'gone.png'},blobs,g,test\n")
    proc = edgetl("evaluate", fixture_run, "--data", source)  # used to print Python's format
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == (f"warning: {source}: 1 row(s) skipped, e.g. {tmp_path / 'gone.png'}: "
                           "file not found\n")


def test_very_large_image_warning_names_the_file(artifacts: dict[str, Path],
                                                 tmp_path: Path) -> None:
    big = tmp_path / "big.png"
    Image.new("L", (10000, 9000), 128).save(big)  # 90 Mpixels: past PIL's warning limit
    proc = edgetl("predict", artifacts["onnx"], big)
    assert proc.returncode == 0, proc.stderr
    assert f"warning: {big} is very large (10000x9000 = 90,000,000 pixels" in proc.stderr
    assert "DecompressionBombWarning" not in proc.stderr
