"""A plain torchvision reference for semantic segmentation on CamVid: what edgetl must beat.

    python benchmarks/semantic_reference.py --data ../shared/datasets/camvid --minutes 45

torchvision's segmentation reference recipe (references/segmentation: random resize 0.5-2.0x,
random crop, horizontal flip, SGD with momentum, poly learning-rate decay, cross-entropy with
ignore index 255) on the same encoder edgetl's `recipes/semantic-lite0.yaml` uses
(EfficientNet-Lite0 from timm with its offline ImageNet weights) and torchvision's LR-ASPP
head, on CamVid's standard train/val/test split, everything trainable from the first step (no
phases). Training stops at the end of the epoch that crosses `--minutes`; the test split is
scored at full resolution (480x360) from one confusion matrix (11 classes, void ignored).
Writes `benchmarks/results/semantic-reference-camvid-cpu-<date>.json` and `.md`.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import math
import os
import random
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from machine_info import cpu_name
from PIL import Image
from torch import nn

RESULTS = Path(__file__).resolve().parent / "results"
MEAN = (0.5, 0.5, 0.5)  # the Lite weights' normalisation
STD = (0.5, 0.5, 0.5)
VOID = 11
IGNORE = 255


def pairs(root: Path, split: str) -> list[tuple[Path, Path]]:
    images = sorted((root / split / "images").glob("*.jpg"))
    return [(p, root / split / "labels" / f"{p.stem}.png") for p in images]


def load(image: Path, label: Path) -> tuple[torch.Tensor, torch.Tensor]:
    x = torch.from_numpy(np.asarray(Image.open(image).convert("RGB"), dtype=np.uint8).copy())
    y = torch.from_numpy(np.asarray(Image.open(label), dtype=np.uint8).astype(np.int64))
    y[y == VOID] = IGNORE
    return x.permute(2, 0, 1), y


def augment(x: torch.Tensor, y: torch.Tensor, crop: int) -> tuple[torch.Tensor, torch.Tensor]:
    """torchvision reference: random resize 0.5-2.0 of the base size, random crop, flip."""
    scale = random.uniform(0.5, 2.0) * crop / min(x.shape[-2:])
    size = [max(1, round(x.shape[-2] * scale)), max(1, round(x.shape[-1] * scale))]
    x = F.interpolate(x[None].float(), size=size, mode="bilinear", align_corners=False)[0]
    y = F.interpolate(y[None, None].float(), size=size, mode="nearest")[0, 0].long()
    pad_h, pad_w = max(0, crop - size[0]), max(0, crop - size[1])
    if pad_h or pad_w:
        x = F.pad(x, (0, pad_w, 0, pad_h), value=0.0)
        y = F.pad(y, (0, pad_w, 0, pad_h), value=IGNORE)
    top = random.randint(0, x.shape[-2] - crop)
    left = random.randint(0, x.shape[-1] - crop)
    x, y = x[:, top:top + crop, left:left + crop], y[top:top + crop, left:left + crop]
    if random.random() < 0.5:
        x, y = x.flip(-1), y.flip(-1)
    return x, y


def normalise(x: torch.Tensor) -> torch.Tensor:
    mean = torch.tensor(MEAN).view(3, 1, 1)
    std = torch.tensor(STD).view(3, 1, 1)
    return (x.float() / 255.0 - mean) / std


class Reference(nn.Module):
    """timm Lite0 stride-8 and stride-32 features -> torchvision LRASPPHead -> logits."""

    def __init__(self, classes: int) -> None:
        super().__init__()
        import timm
        from torchvision.models.segmentation.lraspp import LRASPPHead

        from edgetl.models import registry

        self.body = timm.create_model("tf_efficientnet_lite0", features_only=True,
                                      out_indices=(2, 4))
        pretrained, _ = registry.create_backbone("tf_efficientnet_lite0")
        state = pretrained.state_dict()
        self.body.load_state_dict({k: state[k] for k in self.body.state_dict()})
        low, high = self.body.feature_info.channels()
        self.head = LRASPPHead(low, high, classes, 128)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        low, high = self.body(x)
        out = self.head({"low": low, "high": high})
        return F.interpolate(out, size=x.shape[-2:], mode="bilinear", align_corners=False)


def confusion(truth: np.ndarray, guess: np.ndarray, classes: int) -> np.ndarray:
    keep = truth != IGNORE
    index = truth[keep].astype(np.int64) * classes + guess[keep].astype(np.int64)
    return np.bincount(index, minlength=classes * classes).reshape(classes, classes)


def miou(matrix: np.ndarray) -> tuple[float, list[float]]:
    tp = np.diag(matrix).astype(float)
    union = matrix.sum(0) + matrix.sum(1) - tp
    iou = np.where(union > 0, tp / np.maximum(union, 1), np.nan)
    return float(np.nanmean(iou)), [float(v) for v in iou]


@torch.no_grad()
def evaluate(model: nn.Module, items: list[tuple[Path, Path]], classes: int
             ) -> tuple[np.ndarray, list[np.ndarray]]:
    model.eval()
    total = np.zeros((classes, classes), dtype=np.int64)
    per_image = []
    for image, label in items:
        x, y = load(image, label)
        guess = model(normalise(x)[None]).argmax(1)[0].numpy()
        matrix = confusion(y.numpy(), guess, classes)
        per_image.append(matrix)
        total += matrix
    return total, per_image


def ort_latency(model: nn.Module, size: int, threads: int = 2) -> dict[str, float]:
    """ort-cpu batch-1 p50 of the argmax graph at size x size (fp32)."""
    import io
    import warnings

    import onnxruntime as ort

    class Masked(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.model = model

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.model(x).argmax(1).to(torch.uint8)

    from edgetl.export.static_padding import fold_pads_into_convs, make_same_padding_static

    wrapped = Masked().eval()
    example = torch.zeros(1, 3, size, size)
    make_same_padding_static(wrapped, example)
    buffer = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(wrapped, (example,), buffer, dynamo=False, opset_version=17,
                          input_names=["input"], output_names=["mask"])
    import onnx

    graph = onnx.load_from_string(buffer.getvalue())
    fold_pads_into_convs(graph)
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    session = ort.InferenceSession(graph.SerializeToString(), options,
                                   providers=["CPUExecutionProvider"])
    feed = {"input": np.random.default_rng(0).normal(size=(1, 3, size, size)).astype(np.float32)}
    for _ in range(10):
        session.run(None, feed)
    times = []
    start = time.perf_counter()
    while time.perf_counter() - start < 5 or len(times) < 20:
        t0 = time.perf_counter()
        session.run(None, feed)
        times.append((time.perf_counter() - t0) * 1000)
    return {"p50_ms": float(np.median(times)), "p90_ms": float(np.percentile(times, 90)),
            "calls": len(times), "threads": threads}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=Path("../shared/datasets/camvid"))
    parser.add_argument("--minutes", type=float, default=45.0)
    parser.add_argument("--crop", type=int, default=384)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--lr", type=float, default=0.02)
    parser.add_argument("--epochs", type=int, default=200, help="upper bound; time decides")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    random.seed(args.seed)
    torch.manual_seed(args.seed)
    classes = len([n for n in (args.data / "classes.txt").read_text().splitlines()
                   if n.strip()]) - 1  # the last line is void
    train = [load(*p) for p in pairs(args.data, "train")]
    model = Reference(classes)
    optimizer = torch.optim.SGD(model.parameters(), lr=args.lr, momentum=0.9, weight_decay=1e-4)
    steps_per_epoch = math.ceil(len(train) / args.batch)
    load_start = list(os.getloadavg())
    started = time.perf_counter()
    history, step, epoch = [], 0, 0
    planned = steps_per_epoch * args.epochs
    while epoch < args.epochs and time.perf_counter() - started < args.minutes * 60:
        model.train()
        order = list(range(len(train)))
        random.shuffle(order)
        total = 0.0
        for i in range(0, len(order), args.batch):
            batch = [augment(*train[j], args.crop) for j in order[i:i + args.batch]]
            x = torch.stack([normalise(b[0]) for b in batch])
            y = torch.stack([b[1] for b in batch])
            # poly decay over the planned steps or the time box, whichever ends first
            progress = max(step / planned, (time.perf_counter() - started) / (args.minutes * 60))
            for group in optimizer.param_groups:
                group["lr"] = args.lr * max(0.0, 1 - progress) ** 0.9
            loss = F.cross_entropy(model(x), y, ignore_index=IGNORE)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            total += loss.item() * len(batch)
            step += 1
        epoch += 1
        history.append({"epoch": epoch, "train_loss": total / len(train),
                        "minutes": (time.perf_counter() - started) / 60})
        print(history[-1], flush=True)
    train_minutes = (time.perf_counter() - started) / 60
    matrix, per_image = evaluate(model, pairs(args.data, "test"), classes)
    score, per_class = miou(matrix)
    rng = np.random.default_rng(0)
    stack = np.stack(per_image)
    boots = [miou(stack[rng.integers(0, len(stack), len(stack))].sum(0))[0]
             for _ in range(1000)]
    import onnxruntime
    import torchvision

    result = {
        "name": "semantic-reference-camvid", "date": dt.date.today().isoformat(),
        "machine": {"cpu": cpu_name(), "cores": os.cpu_count(),
                    "load_average_start": load_start, "load_average_end": list(os.getloadavg())},
        "versions": {"torch": torch.__version__, "torchvision": torchvision.__version__,
                     "onnxruntime": onnxruntime.__version__},
        "recipe": {"model": "timm tf_efficientnet_lite0 (offline ImageNet) + torchvision "
                            "LRASPPHead(128)", "crop": args.crop, "batch": args.batch,
                   "optimizer": f"SGD lr {args.lr} momentum 0.9 wd 1e-4, poly 0.9",
                   "augment": "random resize 0.5-2.0, random crop, horizontal flip",
                   "loss": "cross-entropy, ignore 255 (void)", "epochs": epoch},
        "train_minutes": train_minutes, "history": history,
        "test": {"miou": score, "miou_ci95": [float(np.quantile(boots, 0.025)),
                                              float(np.quantile(boots, 0.975))],
                 "per_class_iou": per_class, "images": len(per_image)},
        "ort_cpu_fp32": ort_latency(model, args.crop),
    }
    RESULTS.mkdir(exist_ok=True)
    stem = RESULTS / f"semantic-reference-camvid-cpu-{result['date']}"
    stem.with_suffix(".json").write_text(json.dumps(result, indent=2) + "\n")
    stem.with_suffix(".md").write_text(
        f"# Plain torchvision LR-ASPP reference on CamVid ({result['date']})\n\n"
        f"{result['recipe']['model']}, {epoch} epochs in {train_minutes:.1f} min on "
        f"{result['machine']['cores']} cores (load {load_start} -> "
        f"{result['machine']['load_average_end']}): test mIoU {score:.4f} (95% CI "
        f"{result['test']['miou_ci95'][0]:.4f}-{result['test']['miou_ci95'][1]:.4f}), "
        f"{len(per_image)} images; ort-cpu fp32 batch-1 p50 at {args.crop}x{args.crop} "
        f"{result['ort_cpu_fp32']['p50_ms']:.1f} ms.\n")
    print(stem.with_suffix(".md").read_text())


if __name__ == "__main__":
    main()
