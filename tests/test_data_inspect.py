"""`edgetl data inspect`: counts, sizes, modes, unreadable files, duplicates, imbalance."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import imagegen
import numpy as np
from typer.testing import CliRunner

from edgetl.cli.main import app
from edgetl.data.inspect import inspect_data
from edgetl.data.sources import load_data

ROOT = Path(__file__).resolve().parents[1]
REQUIRED = {"n_images", "classes", "splits", "sizes", "modes", "unreadable", "exact_duplicates",
            "near_duplicates", "cross_split_duplicates", "imbalance_ratio"}


def run_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "edgetl.cli.main", *args], cwd=ROOT,
                          capture_output=True, text=True, timeout=300)


def test_cli_inspect_folder_reports_everything(tmp_path: Path) -> None:
    rng = np.random.default_rng(3)
    data = tmp_path / "data"
    sizes = ((96, 96), (128, 96), (200, 150))
    made = imagegen.make_class_tree(data, {"many": 13, "few": 3}, rng, sizes=sizes)
    imagegen.write_textured(data / "few" / "gray.png", rng, (96, 96), mode="L")
    exact = shutil.copy(made["many"][1], data / "many" / "same_bytes.jpg")
    resized = imagegen.resized_copy(made["many"][2], data / "many" / "smaller.jpg", 0.75)
    bad = {str(imagegen.write_truncated_jpeg(data / "many" / "cut.jpg", rng)),
           str(imagegen.write_text_as_image(data / "few" / "text.jpeg"))}
    result = run_cli("data", "inspect", str(data), "--json", str(tmp_path / "r.json"))
    assert result.returncode == 0, result.stderr
    report = json.loads((tmp_path / "r.json").read_text())
    assert set(report) >= REQUIRED
    counts = {"few": 3 + 1, "many": 13 + 2}
    assert report["n_images"] == sum(counts.values()) and report["classes"] == counts
    assert report["splits"] is None and report["cross_split_duplicates"] is None
    assert {u["path"] for u in report["unreadable"]} == bad
    assert report["modes"] == {"RGB": sum(counts.values()) - 1, "L": 1}
    widths = [s[0] for s in sizes] + [round(sizes[2][0] * 0.75)]
    assert report["sizes"]["width"]["min"] == min(widths)
    assert report["sizes"]["width"]["max"] == max(widths)
    assert [set(g["paths"]) for g in report["exact_duplicates"]] == \
        [{str(made["many"][1]), str(exact)}]
    assert [set(c["paths"]) for c in report["near_duplicates"]] == \
        [{str(made["many"][2]), str(resized)}]
    assert report["imbalance_ratio"] == counts["many"] / counts["few"]
    assert report["imbalance_warning"] is True
    assert "imbalance" in result.stderr and "2 unreadable" in result.stderr


def test_inspect_flags_duplicates_across_given_splits(tmp_path: Path) -> None:
    rng = np.random.default_rng(4)
    imagegen.make_class_tree(tmp_path / "train", {"p": 5, "q": 5}, rng, sizes=((96, 96),))
    test = imagegen.make_class_tree(tmp_path / "test", {"p": 2, "q": 2}, rng, sizes=((96, 96),))
    copy = imagegen.resized_copy(test["q"][0], tmp_path / "train" / "q" / "again.png", 1.25)
    report = inspect_data(load_data(str(tmp_path)))
    assert report["splits"] == {"train": {"p": 5, "q": 6}, "test": {"p": 2, "q": 2}}
    assert [set(c["paths"]) for c in report["cross_split_duplicates"]] == \
        [{str(test["q"][0]), str(copy)}]
    assert report["imbalance_ratio"] == 8 / 7 and report["imbalance_warning"] is False


def test_cli_inspect_elpv_json(tmp_path: Path) -> None:
    """In-process, so the hashes cached here also serve the ELPV split test."""
    out = tmp_path / "r.json"
    result = CliRunner().invoke(app, ["data", "inspect", "elpv", "--json", str(out)])
    assert result.exit_code == 0, result.output
    report = json.loads(out.read_text())
    ds = load_data("elpv")
    assert report["n_images"] == 2624 == len(ds.samples)
    assert report["classes"] == {"functional": 1803, "defective": 821}
    assert report["splits"] == {"train": ds.counts("train"), "test": ds.counts("test")}
    assert report["modes"] == {"L": 2624} and report["unreadable"] == []
    assert report["sizes"]["distinct"] == 1 and report["sizes"]["width"]["max"] == 300
    assert report["imbalance_ratio"] == 1803 / 821
