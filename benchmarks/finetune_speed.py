"""edgetl's fine-tuning against the same recipe fed by a plain PIL DataLoader, in one run.

Both sides use the same data split, backbone, head, phases, freezing, learning rates, epochs and
loss. The baseline is what a careful user writes with timm + PyTorch: a Dataset that opens each
file with PIL every epoch, torchvision transforms, a DataLoader with workers, and the full model
forward every step (frozen layers included). edgetl decodes once and runs frozen layers once.

Writes benchmarks/results/finetune-speed-<machine>-<date>.json (+ .md) with images/s per phase,
time to the target validation accuracy, final test accuracy and wall times.

    python benchmarks/finetune_speed.py --recipe recipes/examples/elpv-quickstart.yaml --subset 600
    python benchmarks/finetune_speed.py --recipe recipes/examples/elpv-lite0.yaml \
        --device cuda --workers 16
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import timm
import torch
from torch.utils.data import DataLoader, Dataset
from torchvision.transforms import v2

from edgetl.data.sources import load_data
from edgetl.data.split import make_splits, write_image_list
from edgetl.data.transforms import augment_settings, eval_transform, load_image, train_transform
from edgetl.devices import use_channels_last
from edgetl.metrics.classification import quick_metrics
from edgetl.models import HeadConfig, build_classifier
from edgetl.models.specs import training_spec
from edgetl.recipe import Recipe, load_recipe
from edgetl.train.finetune import run_finetune
from edgetl.train.groups import apply_freeze, block_layout, param_groups, set_train_mode
from edgetl.train.losses import build_loss
from edgetl.train.schedule import lr_factor, set_lr


class FileImages(Dataset):
    """The baseline's data path: PIL decode + transform on every access."""

    def __init__(self, samples: list, classes: list[str], transform, spec) -> None:  # noqa: ANN001
        self.samples, self.classes, self.transform, self.spec = samples, classes, transform, spec

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int]:
        sample = self.samples[i]
        return self.transform(load_image(sample.path, self.spec)), self.classes.index(sample.label)


def recipe_model(recipe: Recipe, n_classes: int):  # noqa: ANN201 - (model, weights' spec)
    """The recipe's backbone with a fresh head, as edgetl builds it."""
    return build_classifier(recipe.model.architecture, n_classes,
                            HeadConfig(**recipe.model.head.model_dump()), recipe.model.weights)


def training_autocast(device: str) -> torch.autocast:
    """bf16 on CUDA, as edgetl trains; nothing on the CPU."""
    return torch.autocast("cuda", dtype=torch.bfloat16) if device == "cuda" else \
        torch.autocast("cpu", enabled=False)


def sync(device: str) -> None:
    if device == "cuda":
        torch.cuda.synchronize()


def stratified_keep(samples: list, classes: list[str], n: int, rng: np.random.Generator) -> set:
    """Paths of about `n` of `samples`, each class keeping its share (at least one image)."""
    keep: set = set()
    for label in classes:
        members = [s.path for s in samples if s.label == label]
        if members:
            share = max(1, round(n * len(members) / len(samples)))
            keep.update(rng.choice(members, size=min(share, len(members)), replace=False))
    return keep


def subset_manifest(recipe: Recipe, n_train: int | None, n_eval: int | None,
                    folder: Path) -> str:
    """The recipe's split, optionally with stratified subsets of the training images and of the
    validation and test images (a quick CPU run)."""
    data = make_splits(load_data(recipe.data.source), recipe.data.val_fraction,
                       recipe.data.test_fraction, recipe.train.seed,
                       recipe.data.near_duplicate_threshold)
    rng = np.random.default_rng(0)
    for split, n in (("train", n_train), ("val", n_eval), ("test", n_eval)):
        if not n:
            continue
        members = [s for s in data.samples if s.split == split]
        keep = stratified_keep(members, list(data.classes), n, rng)
        data = data.replace(samples=[s for s in data.samples
                                     if s.split != split or s.path in keep])
    path = folder / "split.csv"
    write_image_list(data, path)
    return str(path)


def baseline_run(recipe: Recipe, manifest: str, device: str, workers: int) -> dict:
    """The recipe's phases with a PIL DataLoader and full forwards (no caches), written as a
    careful user would: persistent workers, the recipe's early stopping, the best weights (by
    validation accuracy) kept in memory and tested at the end."""
    start = time.perf_counter()
    torch.manual_seed(recipe.train.seed)
    data = load_data(manifest)
    classes = list(data.classes)
    model, weights_spec = recipe_model(recipe, len(classes))
    spec = training_spec(recipe, weights_spec)
    model.to(device)
    layout = block_layout(model)
    train_s, val_s, test_s = (data.by_split(s) for s in ("train", "val", "test"))
    counts = [sum(s.label == c for s in train_s) for c in classes]
    criterion = build_loss(recipe.loss, counts)[0].to(device)
    # The training transform takes uint8 tensors: the file's PIL image is converted first
    # (the crop then works on the decoded image, as a torchvision pipeline does).
    aug = v2.Compose([v2.PILToTensor(), train_transform(
        spec, augment_settings(recipe.augment.preset, **recipe.augment.overrides()))])
    evaluate = eval_transform(spec)
    autocast = training_autocast(device)

    def loader(samples: list, tf, shuffle: bool, batch: int) -> DataLoader:  # noqa: ANN001
        return DataLoader(FileImages(samples, classes, tf, spec), batch_size=batch,
                          shuffle=shuffle, num_workers=workers, persistent_workers=workers > 0,
                          pin_memory=device == "cuda")

    eval_batch = recipe.train.eval_batch_size
    val_loader, test_loader = loader(val_s, evaluate, False, eval_batch), \
        loader(test_s, evaluate, False, eval_batch)

    def accuracy(batches: DataLoader) -> float:
        model.eval()
        probs, ys = [], []
        with torch.no_grad(), autocast:
            for x, y in batches:
                probs.append(torch.softmax(model(x.to(device)).float(), 1).cpu())
                ys.append(y)
        return quick_metrics(torch.cat(ys).numpy(), torch.cat(probs).numpy())["accuracy"]

    rows: list[dict] = []
    best_value, best_state = -1.0, None
    for phase in recipe.phases:
        apply_freeze(model, layout, phase)
        optimizer = torch.optim.AdamW(param_groups(model, layout, phase), lr=phase.lr)
        train_loader = loader(train_s, aug if phase.augment else evaluate, True,
                              recipe.train.batch_size)
        steps = len(train_loader) * phase.epochs
        step, phase_best, bad = 0, -1.0, 0
        for epoch in range(phase.epochs):
            set_train_mode(model, phase)
            t0, seen = time.perf_counter(), 0
            for x, y in train_loader:
                set_lr(optimizer, lr_factor(step, steps, int(phase.warmup_epochs *
                                                             len(train_loader)),
                                            phase.min_lr_ratio))
                step += 1
                with autocast:
                    loss = criterion(model(x.to(device)).float(), y.to(device))
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
                seen += len(y)
            sync(device)
            train_s_time = time.perf_counter() - t0
            val_accuracy = accuracy(val_loader)
            rows.append({"phase": phase.name, "epoch": epoch + 1,
                         "images_per_s": seen / train_s_time, "train_seconds": train_s_time,
                         "val_accuracy": val_accuracy,
                         "wall_seconds": time.perf_counter() - start})
            if val_accuracy > best_value:
                best_value = val_accuracy
                best_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
            if val_accuracy > phase_best:
                phase_best, bad = val_accuracy, 0
            else:
                bad += 1
            if phase.early_stopping is not None and bad >= phase.early_stopping.patience:
                break
        del train_loader
    if best_state is not None:
        model.load_state_dict(best_state)
    return {"epochs": rows, "test_accuracy": accuracy(test_loader),
            "wall_seconds": time.perf_counter() - start}


def synthetic_rates(recipe: Recipe, n_classes: int, n_train: int, device: str,
                    steps: int = 20) -> dict:
    """Training images/s per phase on random inputs already on the device: the same model,
    freezing, parameter groups, batch size, memory format and autocast as edgetl, no data path.
    The ceiling a data pipeline can approach."""
    torch.manual_seed(0)
    model, _ = recipe_model(recipe, n_classes)
    model.to(device)
    planned = n_train * sum(p.epochs for p in recipe.phases)
    memory = torch.channels_last if use_channels_last(recipe.train.memory_format, device,
                                                      planned) else torch.contiguous_format
    model.to(memory_format=memory)
    layout = block_layout(model)
    criterion = torch.nn.CrossEntropyLoss()
    autocast = training_autocast(device)
    batch = recipe.train.batch_size
    size = model.pretrained_cfg.get("input_size", (3, 224, 224))[-1]
    if recipe.model.input_size:
        size = recipe.model.input_size
    x = torch.randn(batch, 3, size, size, device=device).contiguous(memory_format=memory)
    y = torch.randint(0, n_classes, (batch,), device=device)
    rates = {}
    for phase in recipe.phases:
        apply_freeze(model, layout, phase)
        optimizer = torch.optim.AdamW(param_groups(model, layout, phase), lr=phase.lr)
        set_train_mode(model, phase)
        warmup = 5
        for i in range(warmup + steps):
            if i == warmup:
                sync(device)
                t0 = time.perf_counter()
            with autocast:
                loss = criterion(model(x).float(), y)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
        sync(device)
        rates[phase.name] = steps * batch / (time.perf_counter() - t0)
    return rates


def edgetl_run(recipe: Recipe, manifest: str, device: str, folder: Path) -> dict:
    recipe = load_recipe(None, []).model_validate(
        {**recipe.model_dump(mode="json"), "data": {**recipe.data.model_dump(mode="json"),
                                                    "source": manifest}})
    start = time.perf_counter()
    result = run_finetune(recipe, folder / "run", device=device)
    wall = time.perf_counter() - start
    lines = [json.loads(x) for x in (folder / "run" / "metrics.jsonl").read_text().splitlines()]
    summary = json.loads((folder / "run" / "summary.json").read_text())
    return {"epochs": lines, "test_accuracy": result.test_report["accuracy"],
            "train_seconds": result.train_seconds, "fit_seconds": summary["fit_seconds"],
            "wall_seconds": wall}


def run_side(side: str, recipe: Recipe, manifest: str, device: str, workers: int,
             folder: Path) -> dict:
    if side == "edgetl":
        return edgetl_run(recipe, manifest, device, folder)
    if side == "baseline":
        return baseline_run(recipe, manifest, device, workers)
    split = load_data(manifest, check_images=False)
    return synthetic_rates(recipe, len(split.classes), len(split.by_split("train")), device)


def per_phase(epochs: list[dict]) -> dict:
    out: dict[str, dict] = {}
    for row in epochs:
        slot = out.setdefault(row["phase"], {"epochs": 0, "train_seconds": 0.0, "images": 0.0})
        slot["epochs"] += 1
        slot["train_seconds"] += row["train_seconds"]
        slot["images"] += row["images_per_s"] * row["train_seconds"]
    for slot in out.values():
        slot["images_per_s"] = slot.pop("images") / max(slot["train_seconds"], 1e-9)
    return out


def time_to(epochs: list[dict], target: float) -> float | None:
    for row in epochs:
        if row.get("val_accuracy", 0) >= target:
            return row["wall_seconds"]
    return None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--recipe", default="recipes/examples/elpv-quickstart.yaml")
    parser.add_argument("--subset", type=int, default=None, help="training images to keep")
    parser.add_argument("--eval-subset", type=int, default=None,
                        help="validation and test images to keep (each)")
    parser.add_argument("--skip-baseline", action="store_true",
                        help="edgetl and the synthetic rate only")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--workers", type=int, default=2, help="baseline DataLoader workers")
    parser.add_argument("--target", type=float, default=0.85, help="validation accuracy target")
    parser.add_argument("--set", dest="overrides", action="append", default=[])
    parser.add_argument("--results", default="benchmarks/results")
    parser.add_argument("--side", choices=["edgetl", "synthetic", "baseline"],
                        help=argparse.SUPPRESS)
    parser.add_argument("--manifest", help=argparse.SUPPRESS)
    parser.add_argument("--side-out", help=argparse.SUPPRESS)
    args = parser.parse_args()

    recipe = load_recipe(args.recipe, args.overrides)
    if args.side:  # one side in this (fresh) process: results as JSON to --side-out
        result = run_side(args.side, recipe, args.manifest, args.device, args.workers,
                          Path(args.side_out).parent)
        Path(args.side_out).write_text(json.dumps(result))
        return
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        manifest = subset_manifest(recipe, args.subset, args.eval_subset, folder)
        # Each side in its own process: GPU start-up costs (cuDNN plans, kernel loading) are
        # paid by each, and neither inherits the other's warm caches.
        sides = ["edgetl", "synthetic"] + ([] if args.skip_baseline else ["baseline"])
        results = {}
        for side in sides:
            out = folder / f"{side}.json"
            cmd = [sys.executable, __file__, "--recipe", args.recipe, "--device", args.device,
                   "--workers", str(args.workers), "--side", side, "--manifest", manifest,
                   "--side-out", str(out)] + [x for o in args.overrides for x in ("--set", o)]
            subprocess.run(cmd, check=True)
            results[side] = json.loads(out.read_text())
        ours, synthetic, base = results["edgetl"], results["synthetic"], results.get("baseline")
    machine = socket.gethostname().split(".")[0] if args.device == "cpu" else \
        torch.cuda.get_device_name(0).replace(" ", "-")
    edgetl_phases = per_phase(ours["epochs"])
    for name, slot in edgetl_phases.items():
        slot["synthetic_images_per_s"] = synthetic.get(name)
        slot["of_synthetic"] = slot["images_per_s"] / synthetic[name] if name in synthetic \
            else None
    report = {
        "schema": "edgetl.finetune-speed/2",
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "machine": {"platform": platform.platform(), "processor": platform.processor(),
                    "cpus": os.cpu_count(), "torch_threads": torch.get_num_threads(),
                    "device": args.device,
                    "gpu": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None},
        "versions": {"torch": torch.__version__, "timm": timm.__version__,
                     "python": platform.python_version()},
        "recipe": args.recipe, "overrides": args.overrides, "subset": args.subset,
        "eval_subset": args.eval_subset, "target_val_accuracy": args.target,
        "synthetic_images_per_s": synthetic,
        "edgetl": {"per_phase": edgetl_phases, "test_accuracy": ours["test_accuracy"],
                   "train_seconds": ours["train_seconds"], "fit_seconds": ours["fit_seconds"],
                   "wall_seconds": ours["wall_seconds"],
                   "time_to_target_s": time_to(ours["epochs"], args.target)},
    }
    if base is not None:
        report["pil_dataloader"] = {
            "per_phase": per_phase(base["epochs"]), "test_accuracy": base["test_accuracy"],
            "wall_seconds": base["wall_seconds"], "workers": args.workers,
            "time_to_target_s": time_to(base["epochs"], args.target)}
        report["speedup_wall"] = base["wall_seconds"] / ours["wall_seconds"]
    out = Path(args.results)
    out.mkdir(parents=True, exist_ok=True)
    stem = f"finetune-speed-{args.device}-{machine}-{dt.date.today().isoformat()}"
    (out / f"{stem}.json").write_text(json.dumps(report, indent=2) + "\n")
    lines = [f"# Fine-tuning speed, {report['date']} ({args.device}, {machine})", "",
             f"recipe `{args.recipe}` {' '.join(args.overrides)}, training subset {args.subset},"
             f" val/test subset {args.eval_subset}", "",
             "| pipeline | phase | images/s | of synthetic | train s | test acc | wall s |",
             "|---|---|---|---|---|---|---|"]
    for name in ("edgetl", "pil_dataloader"):
        side = report.get(name)
        if side is None:
            continue
        for phase, slot in side["per_phase"].items():
            ratio = slot["images_per_s"] / synthetic[phase] if phase in synthetic else None
            lines.append(f"| {name} | {phase} | {slot['images_per_s']:.0f} | "
                         + (f"{ratio:.2f}" if ratio else "-")
                         + f" | {slot['train_seconds']:.1f} | {side['test_accuracy']:.4f} | "
                         f"{side['wall_seconds']:.1f} |")
    lines.append("")
    lines.append("synthetic-data images/s (same model, freezing, batch, autocast): "
                 + ", ".join(f"{k} {v:.0f}" for k, v in synthetic.items()))
    lines.append(f"edgetl: training {ours['train_seconds']:.1f} s, phases end to end "
                 f"{ours['fit_seconds']:.1f} s, time to val accuracy {args.target}: "
                 f"{report['edgetl']['time_to_target_s']}")
    if base is not None:
        lines.append(f"PIL DataLoader: time to val accuracy {args.target}: "
                     f"{report['pil_dataloader']['time_to_target_s']}")
        lines.append(f"wall-clock speed-up: {report['speedup_wall']:.2f}x")
    (out / f"{stem}.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
