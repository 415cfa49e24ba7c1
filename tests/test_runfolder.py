"""`RunFolder` owns every name in a run folder: no other module spells one, `resume` derives its
list from it, and a run's split file is the one the folder names for its task."""

from __future__ import annotations

import ast
import json
from pathlib import Path

import edgetl
from edgetl import checkpoint, runfolder
from edgetl.data.splitfile import SPLIT_FILE_NAMES
from edgetl.runfolder import RunFolder

PACKAGE = Path(edgetl.__file__).parent
# Modules that define the names (the recipe schema speaks of `best`/`last` as its own words).
# Each task's module names its split file (RunFolder asks the task); data/splitnames.py names
# the files a split writer puts beside it.
OWNERS = {"runfolder.py", "checkpoint.py", "recipe.py", "recipe_sections.py", "data/splitnames.py",
          *(f"tasks/{name}.py" for name in ("classification", "detection", "semantic",
                                            "instance"))}
# (module, literal): why the same text there is not a run-file name.
NOT_RUN_FILES = {
    ("models/weights.py", "model.safetensors"): "a pretrained weights file on the model hub",
    ("cli/export_cmd.py", "export"): "the command's name",
}
# Words that are also ordinary values (`keep: best`, `unfreeze: last`, a JSON key, the export
# command, the `qat` int8 strategy): a run-file name only when joined to a path (`out / "best"`),
# passed to a call (`load_model(run, "best")`) or a parameter's default (`which: str = "best"`).
WORDS = {runfolder.BEST, runfolder.LAST, runfolder.EXPORT_FOLDER, checkpoint.QAT}


def run_file_names() -> set[str]:
    """Every name RunFolder and the checkpoint folder define (bare words apart)."""
    names = set(RunFolder.run_entries()) | {
        runfolder.EXPORT_FOLDER, runfolder.SELECT_RECORD_FILE, runfolder.SELECT_SCATTER_FILE,
        checkpoint.WEIGHTS_FILE, checkpoint.RECORD_FILE, checkpoint.TRAIN_STATE_FILE,
        checkpoint.OPTIMIZER_FILE, checkpoint.EMA_FILE}
    return names


def spelled_names(source: str, names: set[str]) -> list[tuple[int, str]]:
    """(line, literal) of each string constant in `source` that is one of `names`: anywhere
    for a file name, only as a path component (`x / "best"`) for a bare word. Prose (text
    with spaces: help, messages, docstrings) never matches."""
    found: list[tuple[int, str]] = []
    tree = ast.parse(source)
    joined = {id(node.right) for node in ast.walk(tree)
              if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Div)}
    for node in ast.walk(tree):  # call arguments and parameter defaults
        if isinstance(node, ast.Call):
            joined |= {id(a) for a in node.args} | {id(k.value) for k in node.keywords}
        elif isinstance(node, ast.arguments):
            joined |= {id(d) for d in node.defaults} | {id(d) for d in node.kw_defaults}
        elif isinstance(node, ast.AnnAssign) and node.value is not None:
            joined.add(id(node.value))
    for node in ast.walk(tree):
        if not (isinstance(node, ast.Constant) and isinstance(node.value, str)):
            continue
        text = node.value
        if text not in names:
            continue
        if text in WORDS and id(node) not in joined:
            continue
        found.append((node.lineno, text))
    return sorted(found)


def test_the_scan_finds_a_spelled_name_and_ignores_prose_and_words() -> None:
    names = run_file_names()
    source = ('a = out / "summary.json"\nb = "see summary.json for the figures"\n'
              'c = out / "last" / "train_state.json"\nd = {"best": 1}\nkeep = "last"\n'
              'load_model(run, "best")\ndef f(which="last"): pass\nwhich: str = "best"\n'
              'if unfreeze == "last": pass\n')
    assert spelled_names(source, names) == [(1, "summary.json"), (3, "last"),
                                            (3, "train_state.json"), (6, "best"), (7, "last"),
                                            (8, "best")]


def test_no_module_spells_a_run_file_name() -> None:
    names = run_file_names()
    offenders = []
    for path in sorted(PACKAGE.rglob("*.py")):
        rel = path.relative_to(PACKAGE).as_posix()
        if rel in OWNERS:
            continue
        for line, text in spelled_names(path.read_text(), names):
            if (rel, text) not in NOT_RUN_FILES:
                offenders.append(f"edgetl/{rel}:{line}: {text!r}")
    assert not offenders, "ask RunFolder (or the checkpoint) for these names:\n" + \
        "\n".join(offenders)


def test_resume_derives_its_entries_from_the_run_folder() -> None:
    from edgetl.train.resume import RUN_ENTRIES

    assert RunFolder.run_entries() == RUN_ENTRIES
    assert set(SPLIT_FILE_NAMES.values()) <= RUN_ENTRIES
    for name in ("best", "last", "last.tmp", "best.old", "summary.json", "test_metrics.json",
                 "metrics.jsonl", "recipe.yaml", "phase_start.safetensors", ".edgetl-run"):
        assert name in RUN_ENTRIES, name
    # the export folder and select's outputs are not written by finetune: never cleared
    assert not {"export", "select.json"} & RUN_ENTRIES


def test_the_split_file_follows_the_task() -> None:
    run = RunFolder(Path("/r"))
    assert run.split_path("instance").name == "split.json"
    assert run.split_path("classification").name == "split.csv"
    assert run.train_state_path == Path("/r/last/train_state.json")


INSTANCE_RECIPE = """\
name: inst-probe
task: instance
data: {{source: {data}, val_fraction: 0.25, test_fraction: 0.2}}
model:
  architecture: mobilenetv2_100
  input_size: 64
  instance: {{fpn_channels: 32, head_convs: 1, mask_channels: 16, mask_resolution: 14,
             max_detections: 10}}
train: {{batch_size: 4, eval_batch_size: 4, num_threads: 1}}
phases:
  - {{name: A, epochs: 1, unfreeze: head, lr: 5.0e-3}}
"""


def test_an_instance_probe_records_and_exports_its_own_split_file(tmp_path: Path) -> None:
    """select's latency probe of an instance recipe keeps a COCO split (`split.json`): its
    checkpoint and the artifact exported from it name that file, not a CSV the folder lacks."""
    import instgen

    from edgetl.export import export_run
    from edgetl.recipe import load_recipe
    from edgetl.select.latency import write_probe
    from edgetl.select.tasks import task_for
    from edgetl.train.rundata import make_split

    data = instgen.make_id_masks(tmp_path / "cells", 12, seed=2)
    (tmp_path / "inst.yaml").write_text(INSTANCE_RECIPE.format(data=data))
    recipe = load_recipe(tmp_path / "inst.yaml")
    probe, _ = write_probe(task_for("instance"), recipe, make_split(recipe), tmp_path / "probe",
                           calibration_images=2)
    recorded = probe.checkpoint().record["data"]["split_file"]
    assert recorded == "split.json" and (probe.path / recorded).is_file()
    assert not (probe.path / "split.csv").exists()
    exported = export_run(probe.path, "onnx")
    manifest = json.loads(exported.manifest.read_text())
    assert manifest["source"]["split_file"] == "split.json"
    # a probe written before the fix recorded a CSV: export asks the run folder, not the record
    record_path = probe.best_path / checkpoint.RECORD_FILE
    record = json.loads(record_path.read_text())
    record["data"]["split_file"] = "split.csv"
    record_path.write_text(json.dumps(record))
    manifest = json.loads(export_run(probe.path, "onnx").manifest.read_text())
    assert manifest["source"]["split_file"] == "split.json"
