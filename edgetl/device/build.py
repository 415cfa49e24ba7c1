"""`edgetl bundle`: the folder to copy to a device, built on the training machine.

It holds the artifact (and its manifest), a stratified sample of the run's test split as image
files with their labels in arrays the device reads with numpy alone (`labels.npz`, written by
the task's `device_labels`), torchvision's preprocessed tensors for the first few (the golden
test), the torch model's outputs on all of them, the task's verify budgets, provenance, a
private copy of the torch-free modules the runner needs (`edgetl_device/`, copied as they
are: the runner's and the task's `device_checks` module, with what they import at module
level), `run.py` and a README. `bundle.json` lists every file's sha256, so an edited bundle
fails on the device.
"""

from __future__ import annotations

import ast
import shutil
import sys
from pathlib import Path
from typing import Any

import numpy as np

from edgetl.device.runner import BUNDLE_FILE, BUNDLE_SCHEMA
from edgetl.io import atomic_write_json, atomic_write_text, sha256_file

DEFAULT_SAMPLES = 24
TORCH_BATCH = 8
GOLDEN_IMAGES = 4
PACKAGE_DIR = "edgetl_device"
ROOT = Path(__file__).resolve().parents[1]  # the edgetl package
ENTRY = ("edgetl.device.runner", "edgetl.runtime.onnxrt", "edgetl.runtime.openvino_runner",
         "edgetl.runtime.litert_runner", "edgetl.runtime.tensorrt_runner")
# what the copied modules may import at module level, besides the standard library and edgetl
ALLOWED = frozenset({"numpy", "PIL"})

RUN_PY = '''"""Check this bundle's artifact on this machine: python run.py [--report PATH]."""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent / "{package}"))
from edgetl.device.runner import main  # noqa: E402  (the bundle's own copy)

sys.exit(main())
'''


def _module_path(module: str) -> Path | None:
    path = ROOT.parent.joinpath(*module.split("."))
    for candidate in (path / "__init__.py", path.with_suffix(".py")):
        if candidate.is_file():
            return candidate
    return None


def device_modules(entry: tuple[str, ...] = ENTRY) -> tuple[dict[str, Path], set[str]]:
    """The edgetl modules the runner needs (module-level imports, from `entry`, with their
    packages) and the outside packages they import at module level."""
    found: dict[str, Path] = {}
    outside: set[str] = set()
    todo = list(entry)
    while todo:
        module = todo.pop()
        path = _module_path(module)
        if module in found or path is None:
            continue
        found[module] = path
        parts = module.split(".")
        todo += [".".join(parts[:i]) for i in range(1, len(parts))]
        for node in ast.parse(path.read_text()).body:
            names: list[str] = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
            for name in names:
                if name.split(".")[0] == "edgetl":
                    todo.append(name)
                elif name != "__future__":
                    outside.add(name.split(".")[0])
    return found, outside


def check_imports(outside: set[str]) -> None:
    """The copy imports nothing heavier than numpy, Pillow and the standard library."""
    heavy = sorted(outside - ALLOWED - set(sys.stdlib_module_names))
    if heavy:
        raise RuntimeError(f"the device runner would import {heavy} at module level")


def task_entry(task: Any) -> tuple[str, ...]:
    """What the runner imports for `task`: its own modules and the task's device checks."""
    return (*ENTRY, task.device_checks.partition(":")[0])


def _copy_modules(out: Path, entry: tuple[str, ...]) -> list[str]:
    modules, outside = device_modules(entry)
    check_imports(outside)
    copied = []
    for path in sorted(set(modules.values())):
        rel = Path(PACKAGE_DIR) / path.relative_to(ROOT.parent)
        (out / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, out / rel)
        copied.append(rel.as_posix())
    return copied


def _torch_side(art: Any, info: Any, run: Path, samples: list[Any]) -> dict[str, Any]:
    """torchvision's tensors, the torch model's outputs on the sample (all its named outputs)
    and each image's geometry in the deployment reference (what verify computes)."""
    from edgetl.artifact.postprocess import concat_outputs
    from edgetl.artifact.reference import pixels_and_geometry
    from edgetl.data.transforms import geometry_transform, load_image, normalize_transform
    from edgetl.models.deployable import deployable
    from edgetl.models.loading import load_model
    from edgetl.runtime.torch_runner import TorchRunner

    model, _ = load_model(run, art.source_checkpoint)
    module, names, _ = deployable(model, info.task_record.task)
    torch_runner = TorchRunner(module, output_names=names)
    geometry, to_tensor = geometry_transform(info.spec), normalize_transform(info.spec)
    pixels, tensors, geometries = [], [], []
    for sample in samples:
        tv = geometry(load_image(sample.path, info.spec))
        pixels.append(tv.permute(1, 2, 0).numpy())
        tensors.append(to_tensor(tv).numpy())
        geometries.append(pixels_and_geometry(sample.path, art.spec)[1])
    outputs = concat_outputs([torch_runner.run(np.stack(tensors[i:i + TORCH_BATCH]))
                              for i in range(0, len(tensors), TORCH_BATCH)])
    return {"pixels": pixels, "tensors": tensors, "outputs": outputs, "geometries": geometries}


def build_bundle(artifact: str | Path, run: str | Path, out: str | Path,
                 samples: int = DEFAULT_SAMPLES, agreement: float | None = None,
                 drop: float | None = None) -> Path:
    """Write the bundle folder `out` (it must not exist or be empty); return it. `agreement` /
    `drop`: verify's budget overrides (None: the task's defaults for the artifact)."""
    from edgetl import __version__, tasks
    from edgetl.artifact.manifest import manifest_path, read_artifact
    from edgetl.checkpoint import read_checkpoint_info
    from edgetl.errors import UsageError
    from edgetl.verify import _split_samples
    from edgetl.verify.budgets import fields_record

    art = read_artifact(artifact)
    run, out = Path(run), Path(out)
    info = read_checkpoint_info(run, art.source_checkpoint)
    task = tasks.get(info.task_record.task)
    if out.exists() and any(out.iterdir()):
        raise UsageError(f"{out} is not empty", "give a new folder with --out")
    budgets, _ = task.load("verify_budgets")(art, agreement, drop)
    chosen = _split_samples(run, "test", samples)
    side = _torch_side(art, info, run, chosen)
    out.mkdir(parents=True, exist_ok=True)
    (out / "images").mkdir()
    images = []
    for i, sample in enumerate(chosen):
        name = f"images/{i:04d}{Path(sample.path).suffix.lower()}"
        shutil.copyfile(sample.path, out / name)
        images.append(name)
    shutil.copyfile(art.path, out / art.path.name)
    extra = [art.path.name]
    if manifest_path(art.path).is_file():
        shutil.copyfile(manifest_path(art.path), out / manifest_path(art.path).name)
        extra.append(manifest_path(art.path).name)
    golden = min(GOLDEN_IMAGES, len(chosen))
    np.savez(out / "golden.npz", pixels=np.stack(side["pixels"][:golden]),
             tensors=np.stack(side["tensors"][:golden]))
    np.savez(out / "torch_outputs.npz", **{k: np.asarray(v) for k, v in side["outputs"].items()})
    arrays, fields = task.load("device_labels")(chosen, info, run, side["geometries"])
    np.savez_compressed(out / "labels.npz", **arrays)
    copied = _copy_modules(out, task_entry(task))
    atomic_write_text(out / "run.py", RUN_PY.format(package=PACKAGE_DIR))
    atomic_write_text(out / "README.md", README.format(artifact=art.path.name))
    split_file = run / task.split_file
    files = [*images, *extra, "golden.npz", "torch_outputs.npz", "labels.npz", *copied, "run.py",
             "README.md"]
    record = {
        "schema": BUNDLE_SCHEMA, "task": task.name, "artifact": art.path.name,
        "format": art.format, "precision": art.precision,
        "spec": art.spec.to_dict(), "task_record": info.task_record.to_dict(),
        "budgets": fields_record(budgets),
        "budget_overrides": {"agreement": agreement, "drop": drop},
        "images": images, **fields,
        "golden": images[:golden],
        "provenance": {
            "artifact_sha256": sha256_file(art.path),
            "source_checkpoint": art.source_checkpoint,
            "source_weights_sha256": art.source_weights_sha256,
            "spec_fingerprint": art.spec.fingerprint(),
            "labels_fingerprint": info.task_record.fingerprint(),
            "recipe_sha256": info.record.get("recipe_sha256"),
            "split_sha256": sha256_file(split_file) if split_file.is_file() else None,
            "edgetl_version": __version__,
        },
        "files": {name: sha256_file(out / name) for name in files},
    }
    atomic_write_json(out / BUNDLE_FILE, record)
    return out


README = """# Device bundle for {artifact}

Copy this folder to the device. It needs Python 3.10+, numpy, Pillow and the artifact's runtime
(onnxruntime for an ONNX file); no torch and no edgetl install.

    python run.py --report device_report.json

The runner checks every file against `bundle.json` (integrity), the artifact's embedded
record against the bundle's (artifact), the preprocessing against
torchvision's stored tensors (golden test), the artifact's outputs against the torch model's
(parity) and the task's metric on the labelled sample (accuracy, mAP, mIoU or mask mAP, with
verify's budgets), and times it, on every backend it finds. It writes one
JSON report and exits 1 when a check fails, naming it. Bring the report back and run

    edgetl verify --device-report device_report.json --against RUN
"""
