"""A plain torchvision reference for object detection: what edgetl's detector must beat.

    python benchmarks/detect_reference.py RUN --name raccoon [--minutes 25] [--epochs 10]

Trains torchvision's FCOS with its default head (4-conv towers of 256 channels, GroupNorm) and
its own `GeneralizedRCNNTransform` (images resized to `--size`), on the same backbone edgetl's
run used (its timm `features_only` body with the offline ImageNet weights, torchvision's FPN
with P6/P7), on the run's own train split (`split.csv`), with the recipe of torchvision's
object detection tutorial: SGD lr 0.005, momentum 0.9, weight decay 5e-4, batch 2, random
horizontal flip, a linear warm-up over the first epoch, StepLR (x0.1 every 3 epochs), the
stem and first stages frozen and batch norm frozen throughout (torchvision's
`trainable_backbone_layers=3`, `FrozenBatchNorm2d`). No phases, no letterbox, no weight
average. Training stops after `--epochs` or at the end of the epoch that crosses `--minutes`.
The test split is scored with edgetl's pycocotools evaluator (boxes in original pixels,
bootstrap intervals), and torch CPU latency is measured at batch 1 on a `--size` square.
Writes `benchmarks/results/detect-reference-<name>-cpu-<date>.json` and `.md`.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import math
import os
import platform
import random
import statistics
import time
from pathlib import Path

import numpy as np
import torch
from machine_info import cpu_name
from PIL import Image

RESULTS = Path(__file__).resolve().parent / "results"


def build_reference(arch: str, num_classes: int, size: int) -> torch.nn.Module:
    """torchvision FCOS (default head) over the arch's pretrained features body."""
    from torchvision.models.detection.fcos import FCOS

    from edgetl.models import registry
    from edgetl.models.detector import TimmPyramid, _features_body, _load_body

    body, channels = _features_body(arch)
    pretrained, _ = registry.create_backbone(arch, None)
    _load_body(body, pretrained.state_dict(), arch)
    cfg = registry.timm_pretrained_cfg(arch)
    model = FCOS(TimmPyramid(body, channels, 256, 2), num_classes=num_classes,
                 min_size=size, max_size=size, image_mean=list(cfg["mean"]),
                 image_std=list(cfg["std"]))
    freeze_like_torchvision(model.backbone.body, trainable_stages=3)
    return model


def freeze_like_torchvision(body: torch.nn.Module, trainable_stages: int) -> None:
    """Only the last `trainable_stages` block stages train; every batch norm is frozen."""
    stages = len(body.blocks)  # timm EfficientNet / MobileNet bodies
    trainable = tuple(f"blocks.{i}." for i in range(stages - trainable_stages, stages))
    for name, param in body.named_parameters():
        param.requires_grad = name.startswith(trainable)
    for module in body.modules():
        if isinstance(module, torch.nn.modules.batchnorm._BatchNorm):
            for param in module.parameters():
                param.requires_grad = False


def keep_bn_frozen(model: torch.nn.Module) -> None:
    for module in model.modules():
        if isinstance(module, torch.nn.modules.batchnorm._BatchNorm):
            module.eval()


def to_tensor(path: str) -> torch.Tensor:
    with Image.open(path) as img:
        array = np.asarray(img.convert("RGB"), dtype=np.float32) / 255.0
    return torch.from_numpy(array).permute(2, 0, 1).contiguous()


def train_item(sample, names: list[str], flip: bool) -> tuple[torch.Tensor, dict]:
    image = to_tensor(sample.path)
    keep = [i for i, crowd in enumerate(sample.target.crowd) if not crowd]
    boxes = torch.tensor([sample.target.boxes[i] for i in keep], dtype=torch.float32)
    boxes = boxes.reshape(-1, 4)
    labels = torch.tensor([names.index(sample.target.labels[i]) for i in keep],
                          dtype=torch.int64)
    if flip:
        image = image.flip(-1)
        width = image.shape[-1]
        boxes = torch.stack([width - boxes[:, 2], boxes[:, 1], width - boxes[:, 0],
                             boxes[:, 3]], dim=1) if len(boxes) else boxes
    return image, {"boxes": boxes, "labels": labels}


def train(model: torch.nn.Module, samples: list, names: list[str], epochs: int,
          minutes: float, seed: int, make_item=train_item) -> dict[str, object]:
    """The tutorial's loop; `make_item(sample, names, flip)` gives (image, target)."""
    rng = random.Random(seed)
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.SGD(params, lr=0.005, momentum=0.9, weight_decay=5e-4)
    scheduler = torch.optim.lr_scheduler.StepLR(optimizer, step_size=3, gamma=0.1)
    batch = 2
    steps = math.ceil(len(samples) / batch)
    warmup_iters = min(1000, steps - 1)
    start = time.perf_counter()
    history = []
    for epoch in range(epochs):
        model.train()
        keep_bn_frozen(model)
        order = list(range(len(samples)))
        rng.shuffle(order)
        losses = []
        for step in range(steps):
            if epoch == 0:  # the tutorial's linear warm-up from 0.001x
                alpha = step / max(1, warmup_iters)
                factor = 0.001 * (1 - alpha) + alpha
                for group in optimizer.param_groups:
                    group["lr"] = 0.005 * factor
            items = [make_item(samples[i], names, rng.random() < 0.5)
                     for i in order[step * batch:(step + 1) * batch]]
            loss_terms = model([i for i, _ in items], [t for _, t in items])
            loss = sum(loss_terms.values())
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            losses.append(loss.item())
        scheduler.step()
        elapsed = time.perf_counter() - start
        history.append({"epoch": epoch + 1, "loss": statistics.fmean(losses),
                        "minutes": elapsed / 60})
        print(f"epoch {epoch + 1}: loss {history[-1]['loss']:.4f}  {elapsed / 60:.1f} min",
              flush=True)
        if elapsed / 60 >= minutes:
            break
    return {"epochs": history, "training_minutes": (time.perf_counter() - start) / 60}


@torch.no_grad()
def evaluate(model: torch.nn.Module, samples: list, record) -> dict[str, object]:
    from edgetl.artifact.postprocess import Detections
    from edgetl.metrics.detection import DetectionEvaluator

    model.eval()
    evaluator = DetectionEvaluator(record)
    for sample in samples:
        out = model([to_tensor(sample.path)])[0]
        found = Detections(boxes=out["boxes"].numpy(), scores=out["scores"].numpy(),
                           labels=out["labels"].numpy())
        evaluator.update([sample], [found])
    report = evaluator.compute(bootstrap=1000)
    data = report.to_dict()
    return {k: data[k] for k in ("map", "map50", "map75", "ar100", "map_ci95", "map50_ci95",
                                 "n_images", "n_boxes")}


@torch.no_grad()
def latency_ms(model: torch.nn.Module, size: int, rounds: int = 50, warmup: int = 5
               ) -> dict[str, float]:
    model.eval()
    image = [torch.rand(3, size, size)]
    for _ in range(warmup):
        model(image)
    times = []
    for _ in range(rounds):
        start = time.perf_counter()
        model(image)
        times.append((time.perf_counter() - start) * 1000)
    return {"p50": statistics.median(times), "p90": float(np.percentile(times, 90)),
            "threads": torch.get_num_threads()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run", type=Path, help="an edgetl detection run (its split and arch)")
    parser.add_argument("--name", required=True)
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--minutes", type=float, default=25.0)
    parser.add_argument("--size", type=int, default=320)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    from edgetl.runfolder import RunFolder

    torch.manual_seed(args.seed)
    run = RunFolder(args.run)
    record = run.task_record()
    arch = run.recipe().model.architecture
    train_samples, test_samples = run.samples("train"), run.samples("test")
    model = build_reference(arch, len(record.names) + 1, args.size)
    # torchvision detectors reserve label 0 for background: edgetl's class i is i + 1.
    names = ["__background__", *record.names]
    trained = train(model, train_samples, names, args.epochs, args.minutes, args.seed)
    shifted = _ShiftLabels(model)
    metrics = evaluate(shifted, test_samples, record)
    result = {
        "what": "plain torchvision FCOS reference (tutorial recipe) on an edgetl run's split",
        "run": str(args.run), "architecture": arch, "size": args.size,
        "head": "torchvision FCOSHead defaults: 4 convs x 256 channels, GroupNorm",
        "n_train": len(train_samples), "n_test": len(test_samples),
        "parameters_m": sum(p.numel() for p in model.parameters()) / 1e6,
        **trained, "test": metrics, "torch_cpu_latency_ms": latency_ms(model, args.size),
        "machine": _machine(), "date": dt.date.today().isoformat(),
        "command": f"python benchmarks/detect_reference.py {args.run} --name {args.name} "
                   f"--epochs {args.epochs} --minutes {args.minutes} --size {args.size}",
    }
    stem = RESULTS / f"detect-reference-{args.name}-cpu-{result['date']}"
    stem.with_suffix(".json").write_text(json.dumps(result, indent=2) + "\n")
    stem.with_suffix(".md").write_text(_markdown(result))
    print(json.dumps(result["test"], indent=2))


class _ShiftLabels(torch.nn.Module):
    """The reference's outputs with edgetl's 0-based class indices."""

    def __init__(self, model: torch.nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, images: list[torch.Tensor]) -> list[dict[str, torch.Tensor]]:
        return [{**o, "labels": o["labels"] - 1} for o in self.model(images)]


def _machine() -> dict[str, object]:
    import torchvision

    return {"cpu": cpu_name(), "cores": os.cpu_count(), "python": platform.python_version(),
            "torch": torch.__version__, "torchvision": torchvision.__version__,
            "load_average": list(os.getloadavg())}


def _markdown(result: dict) -> str:
    test = result["test"]
    return (f"# torchvision detection reference ({result['date']})\n\n"
            f"{result['what']}: `{result['architecture']}` body, {result['head']}, "
            f"{result['size']} px, {result['n_train']} train / {result['n_test']} test "
            f"images, {len(result['epochs'])} epochs in {result['training_minutes']:.1f} min "
            f"on {result['machine']['cpu']} ({result['machine']['cores']} cores).\n\n"
            f"| mAP | mAP 95% CI | AP50 | AP50 95% CI | AP75 | AR@100 | torch p50 ms |\n"
            f"|---|---|---|---|---|---|---|\n"
            f"| {test['map']:.3f} | {_ci(test['map_ci95'])} | {test['map50']:.3f} | "
            f"{_ci(test['map50_ci95'])} | {test['map75']:.3f} | {test['ar100']:.3f} | "
            f"{result['torch_cpu_latency_ms']['p50']:.1f} |\n\n"
            f"Command: `{result['command']}`\n")


def _ci(interval: list[float]) -> str:
    return f"{interval[0]:.3f}-{interval[1]:.3f}"


if __name__ == "__main__":
    main()
