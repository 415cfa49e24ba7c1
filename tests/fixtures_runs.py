"""A small but real run folder for export/verify/predict tests, made in seconds.

Real parts: the packaged tf_efficientnet_lite0 ImageNet weights, the training evaluation
transform, `save_checkpoint`, a `split.csv` manifest. Shortcut: instead of training, the new
head's Linear layer is fitted by multinomial logistic regression on the pooled features of the
training images (the backbone stays pretrained). The images are generated with PIL: three
visually distinct pattern classes at varied sizes and aspect ratios (so resize and centre crop
matter), saved as PNG and JPEG.
"""

from __future__ import annotations

import csv
import json
import math
import random
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageDraw

CLASSES = ("blobs", "checks", "stripes")


def _noise(rng: np.random.Generator, h: int, w: int, amount: float) -> np.ndarray:
    return rng.normal(0.0, amount, (h, w, 1))


def draw_image(label: str, seed: int) -> Image.Image:
    """One RGB image of `label`, different for each seed."""
    rnd = random.Random(seed)
    rng = np.random.default_rng(seed)
    w, h = rnd.randint(180, 330), rnd.randint(160, 300)
    if label == "stripes":
        period = rnd.uniform(10, 28)
        angle = rnd.uniform(-0.4, 0.4)
        yy, xx = np.mgrid[0:h, 0:w]
        wave = np.sin(2 * math.pi * (yy * math.cos(angle) + xx * math.sin(angle)) / period)
        base = np.array([220, rnd.randint(90, 150), 40], dtype=np.float64)
        arr = base * (0.55 + 0.45 * wave[..., None]) + _noise(rng, h, w, 12)
    elif label == "checks":
        cell = rnd.randint(12, 30)
        yy, xx = np.mgrid[0:h, 0:w]
        board = ((yy // cell + xx // cell) % 2).astype(np.float64)
        dark = np.array([20, 40, rnd.randint(90, 130)], dtype=np.float64)
        light = np.array([170, 200, 250], dtype=np.float64)
        arr = dark + (light - dark) * board[..., None] + _noise(rng, h, w, 10)
    else:
        img = Image.new("RGB", (w, h), (rnd.randint(10, 40), rnd.randint(30, 60), 20))
        draw = ImageDraw.Draw(img)
        for _ in range(rnd.randint(6, 12)):
            r = rnd.randint(10, 40)
            x, y = rnd.randint(0, w), rnd.randint(0, h)
            draw.ellipse((x - r, y - r, x + r, y + r),
                         fill=(rnd.randint(60, 120), rnd.randint(170, 250), rnd.randint(40, 90)))
        arr = np.asarray(img, dtype=np.float64) + _noise(rng, h, w, 8)
    return Image.fromarray(np.clip(arr, 0, 255).astype(np.uint8), "RGB")


def make_images(root: Path, per_split: dict[str, int], seed: int = 0) -> list[dict[str, str]]:
    """Write images for every class and split; rows of a `path,label,group,split` manifest."""
    rows = []
    counter = 0
    for split, count in per_split.items():
        for label in CLASSES:
            folder = root / label
            folder.mkdir(parents=True, exist_ok=True)
            for i in range(count):
                counter += 1
                img = draw_image(label, seed * 100_000 + counter)
                ext = "jpg" if counter % 3 == 0 else "png"
                path = folder / f"{split}_{i:03d}.{ext}"
                img.save(path, quality=92) if ext == "jpg" else img.save(path)
                rows.append({"path": str(path.resolve()), "label": label,
                             "group": f"{label}-{split}-{i}", "split": split})
    return rows


def make_image_list(root: Path, per_split: dict[str, int], seed: int = 0) -> Path:
    """Generated images for every class and split plus ROOT/data.csv listing them (a manifest)."""
    rows = make_images(root / "images", per_split, seed=seed)
    return _write_csv(root / "data.csv", rows, ("path", "label", "group", "split"))


def _write_csv(path: Path, rows: list[dict[str, str]], columns: tuple[str, ...]) -> Path:
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(columns), extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)
    return path


def _features(model, spec, paths: list[str]):
    """Inputs of the head's last Linear for each image (eval transform, eval mode)."""
    import torch

    from edgetl.data.transforms import eval_transform, load_image

    transform = eval_transform(spec)
    fc = model.get_classifier().fc
    captured = []
    handle = fc.register_forward_pre_hook(lambda _m, args: captured.append(args[0].detach()))
    try:
        with torch.inference_mode():
            for start in range(0, len(paths), 16):
                batch = torch.stack([transform(load_image(p, spec))
                                     for p in paths[start:start + 16]])
                model(batch)
    finally:
        handle.remove()
    return torch.cat(captured)


def _fit_linear(features, targets, num_classes: int, steps: int = 200):
    """Multinomial logistic regression (L2) with LBFGS: returns (weight, bias)."""
    import torch

    x = features.float().clone()
    y = torch.as_tensor(targets, dtype=torch.long)
    w = torch.zeros(num_classes, x.shape[1], requires_grad=True)
    b = torch.zeros(num_classes, requires_grad=True)
    opt = torch.optim.LBFGS([w, b], lr=0.5, max_iter=steps, line_search_fn="strong_wolfe")

    def closure():
        opt.zero_grad()
        loss = torch.nn.functional.cross_entropy(x @ w.T + b, y) + 1e-3 * (w * w).sum()
        loss.backward()
        return loss

    opt.step(closure)
    return w.detach(), b.detach()


INT8_OUTLIER_NODE = "/blocks/blocks.2/blocks.2.0/conv_pwl/Conv"  # `plant_int8_outlier`'s layer


def plant_int8_outlier(model) -> None:
    """Make one layer of a Lite0 classifier one that int8 destroys and float32 never notices
    (as tests/test_int8_search.py's tiny model): the projection convolution of block 2.0 gets,
    in every output channel, one weight 100x the largest, on an input channel that is always 0
    (its BatchNorm gives -1 there, which ReLU6 clips to 0). Each output channel's symmetric
    int8 weight scale then rounds every other weight to 0. Block 2.0 has no skip connection,
    so the damage reaches the logits; the layer is not near the start of the network."""
    import torch

    block = model.blocks[2][0]
    with torch.no_grad():
        block.bn2.weight[0] = 0.0
        block.bn2.bias[0] = -1.0
        block.conv_pwl.weight[:, 0] = 100.0 * block.conv_pwl.weight.abs().max()


def make_fixture_run(root: str | Path, *, arch: str = "tf_efficientnet_lite0",
                     per_split: dict[str, int] | None = None, seed: int = 0,
                     prepare: Callable[[Any], None] | None = None) -> Path:
    """Create ROOT/images, ROOT/data.csv and the run folder ROOT/run; return the run folder.
    `prepare(model)` changes the network before its head is fitted (`plant_int8_outlier`)."""
    import torch

    from edgetl.checkpoint import save_checkpoint
    from edgetl.models import HeadConfig, build_classifier
    from edgetl.spec import TaskRecord

    root = Path(root)
    per_split = per_split or {"train": 8, "val": 3, "test": 10}
    rows = make_images(root / "images", per_split, seed)
    data_csv = _write_csv(root / "data.csv", rows, ("path", "label", "group"))
    run = root / "run"
    run.mkdir(parents=True, exist_ok=True)
    _write_csv(run / "split.csv", rows, ("path", "label", "group", "split"))

    head = HeadConfig(dropout=0.2, hidden=0)
    torch.manual_seed(seed)
    model, spec = build_classifier(arch, len(CLASSES), head)
    model.eval()
    if prepare is not None:
        prepare(model)
    index = {name: i for i, name in enumerate(CLASSES)}
    train = [r for r in rows if r["split"] == "train"]
    feats = _features(model, spec, [r["path"] for r in train])
    weight, bias = _fit_linear(feats, [index[r["label"]] for r in train], len(CLASSES))
    fc = model.get_classifier().fc
    with torch.no_grad():
        fc.weight.copy_(weight)
        fc.bias.copy_(bias)

    extra = {
        "data": {"origin": str(data_csv.resolve()), "split_file": "split.csv"},
        "phase": "head-logistic-regression",
        "epoch": 0,
        "metrics": {},
    }
    task_record = TaskRecord(names=CLASSES)
    (run / "labels.json").write_text(json.dumps(task_record.to_dict()))
    for which in ("best", "last"):
        save_checkpoint(run / which, model, architecture=arch, head=asdict(head), spec=spec,
                        task_record=task_record, extra=extra)
    return run
