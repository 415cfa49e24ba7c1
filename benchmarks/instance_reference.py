"""A plain torchvision reference for instance segmentation: what edgetl's instance model must beat.

    python benchmarks/instance_reference.py RUN --name nuclei [--minutes 30] [--epochs 10]

Trains torchvision's Mask R-CNN with its default heads (RPN, two-layer 1024-wide box head, four
3x3 convs of 256 channels and a 28x28 mask predictor) and its own `GeneralizedRCNNTransform`
(images resized so that their longer side is `--size`, as edgetl's letterbox does), on the
same backbone edgetl's run used (its timm `features_only` body at strides 8/16/32 with the
offline ImageNet weights, torchvision's 256-channel FPN with its max-pool level), on the run's
own train split (`split.csv`), with the recipe of torchvision's instance segmentation tutorial:
SGD lr 0.005, momentum 0.9, weight decay 5e-4, batch 2, random horizontal flip, a linear
warm-up over the first epoch, StepLR (x0.1 every 3 epochs), the stem and first stages frozen
and batch norm frozen throughout. Two settings follow the data rather than the tutorial, as
edgetl's recipe does: anchors of 16-128 px (one size per level, three aspect ratios) because
nuclei are small, and up to `--max-det` detections per image because images hold hundreds.
Training stops after `--epochs` or at the end of the epoch that crosses `--minutes`.

The test split is scored with edgetl's pycocotools evaluator: the reference's boxes in the
file's pixels and its 28x28 mask probabilities pasted by edgetl's own `paste_mask`, so both
models are judged by one paste and one evaluator. torch CPU latency is measured at batch 1 on a
`--size` square (network and post-processing, without the paste, as edgetl's compute figure).
Writes `benchmarks/results/instance-reference-<name>-cpu-<date>.json` and `.md`.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
from pathlib import Path

import torch
from detect_reference import _ci, _machine, freeze_like_torchvision, latency_ms, to_tensor, train

RESULTS = Path(__file__).resolve().parent / "results"
ANCHOR_SIZES = (16, 32, 64, 128)  # per level: strides 8, 16, 32 and the max-pool level 64


def build_reference(arch: str, num_classes: int, size: int, max_det: int) -> torch.nn.Module:
    """torchvision Mask R-CNN (default heads) over the arch's pretrained features body."""
    from torchvision.models.detection.anchor_utils import AnchorGenerator
    from torchvision.models.detection.mask_rcnn import MaskRCNN
    from torchvision.ops import MultiScaleRoIAlign
    from torchvision.ops.feature_pyramid_network import LastLevelMaxPool

    from edgetl.models import registry
    from edgetl.models.detector import TimmPyramid, _features_body, _load_body

    body, channels = _features_body(arch)
    pretrained, _ = registry.create_backbone(arch, None)
    _load_body(body, pretrained.state_dict(), arch)
    pyramid = TimmPyramid(body, channels, 256, 0)
    pyramid.fpn.extra_blocks = LastLevelMaxPool()
    cfg = registry.timm_pretrained_cfg(arch)
    levels = ["0", "1", "2"]
    model = MaskRCNN(
        pyramid, num_classes=num_classes, min_size=size, max_size=size,
        image_mean=list(cfg["mean"]), image_std=list(cfg["std"]),
        rpn_anchor_generator=AnchorGenerator(tuple((s,) for s in ANCHOR_SIZES),
                                             ((0.5, 1.0, 2.0),) * len(ANCHOR_SIZES)),
        box_roi_pool=MultiScaleRoIAlign(levels, 7, 2),
        mask_roi_pool=MultiScaleRoIAlign(levels, 14, 2),
        box_detections_per_img=max_det)
    freeze_like_torchvision(model.backbone.body, trainable_stages=3)
    _keep_head_resolution(model)
    return model


def _keep_head_resolution(model: torch.nn.Module) -> None:
    """Eval outputs keep the 28x28 mask probabilities (boxes mapped to the file's pixels):
    pasting them is edgetl's job in both pipelines, and 400 full-image masks would not fit."""
    from torchvision.models.detection.transform import resize_boxes

    transform = model.transform

    def postprocess(result, image_shapes, original_image_sizes):  # noqa: ANN001, ANN202
        if transform.training:
            return result
        for prediction, shape, original in zip(result, image_shapes, original_image_sizes,
                                               strict=True):
            prediction["boxes"] = resize_boxes(prediction["boxes"], shape, original)
        return result

    transform.postprocess = postprocess


def train_item(sample, names: list[str], flip: bool) -> tuple[torch.Tensor, dict]:
    """One image and its boxes and masks (one class: `names` is unused)."""
    from edgetl.data.detection.masks import instance_id_map

    image = to_tensor(sample.path)
    size = (image.shape[1], image.shape[2])
    keep = [i for i, crowd in enumerate(sample.target.crowd) if not crowd]
    boxes = torch.tensor([sample.target.boxes[i] for i in keep],
                         dtype=torch.float32).reshape(-1, 4)
    ids = torch.from_numpy(instance_id_map(sample.target.masks, size))  # one read per image
    masks = (ids[None] == torch.tensor([i + 1 for i in keep]).view(-1, 1, 1)).to(torch.uint8)
    labels = torch.ones(len(keep), dtype=torch.int64)  # one class; label 0 is background
    if flip:
        image, masks = image.flip(-1), masks.flip(-1)
        width = image.shape[-1]
        boxes = torch.stack([width - boxes[:, 2], boxes[:, 1], width - boxes[:, 0],
                             boxes[:, 3]], dim=1) if len(boxes) else boxes
    wide = (boxes[:, 2] > boxes[:, 0]) & (boxes[:, 3] > boxes[:, 1])
    return image, {"boxes": boxes[wide], "labels": labels[wide], "masks": masks[wide]}


@torch.no_grad()
def evaluate(model: torch.nn.Module, samples: list, record, max_det: int) -> dict[str, object]:
    from edgetl.artifact.postprocess import Instances
    from edgetl.metrics.instance import InstanceEvaluator, truth_masks

    model.eval()
    evaluator = InstanceEvaluator(record, max_det)
    for sample in samples:
        image = to_tensor(sample.path)
        out = model([image])[0]
        boxes = out["boxes"].numpy()
        found = Instances(boxes=boxes, scores=out["scores"].numpy(),
                          labels=out["labels"].numpy() - 1,  # edgetl's 0-based classes
                          masks=out["masks"][:, 0].numpy(), paste_boxes=boxes,
                          size=(image.shape[1], image.shape[2]))
        evaluator.update([sample], [found], truth_masks([sample], [found.size]))
    data = evaluator.compute(bootstrap=1000).to_dict()
    keys = ("mask_map", "mask_map50", "mask_map75", "mask_map_ci95", "mask_map50_ci95",
            "box_map", "box_map50", "box_map_ci95", "n_images", "n_instances")
    return {k: data[k] for k in keys}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run", type=Path, help="an edgetl instance run (its split and arch)")
    parser.add_argument("--name", required=True)
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--minutes", type=float, default=30.0)
    parser.add_argument("--size", type=int, default=384)
    parser.add_argument("--max-det", type=int, default=400)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--limit", type=int, default=0,
                        help="only the first N train and test images (a smoke run)")
    args = parser.parse_args()

    from edgetl.runfolder import RunFolder

    torch.manual_seed(args.seed)
    run = RunFolder(args.run)
    record = run.task_record()
    if len(record.names) != 1:
        raise SystemExit("the reference trains one class (nuclei); this run has "
                         f"{len(record.names)}")
    arch = run.recipe().model.architecture
    train_samples, test_samples = run.samples("train"), run.samples("test")
    if args.limit:
        train_samples, test_samples = train_samples[:args.limit], test_samples[:args.limit]
    model = build_reference(arch, 2, args.size, args.max_det)
    trained = train(model, train_samples, [], args.epochs, args.minutes, args.seed,
                    make_item=train_item)
    metrics = evaluate(model, test_samples, record, args.max_det)
    result = {
        "what": "plain torchvision Mask R-CNN reference (tutorial recipe) on an edgetl run's "
                "split",
        "run": str(args.run), "architecture": arch, "size": args.size,
        "head": "torchvision Mask R-CNN defaults: RPN, TwoMLPHead 1024, MaskRCNNHeads 4x256, "
                "28x28 masks; FPN 256 with max-pool level; anchors "
                f"{list(ANCHOR_SIZES)} x ratios 0.5/1/2",
        "max_detections": args.max_det,
        "n_train": len(train_samples), "n_test": len(test_samples),
        "parameters_m": sum(p.numel() for p in model.parameters()) / 1e6,
        **trained, "test": metrics,
        "torch_cpu_latency_ms": latency_ms(model, args.size, rounds=30, warmup=3),
        "machine": _machine(), "date": dt.date.today().isoformat(),
        "command": f"python benchmarks/instance_reference.py {args.run} --name {args.name} "
                   f"--epochs {args.epochs} --minutes {args.minutes} --size {args.size} "
                   f"--max-det {args.max_det}",
    }
    stem = RESULTS / f"instance-reference-{args.name}-cpu-{result['date']}"
    if args.limit:
        stem = Path(os.environ.get("TMPDIR", "/tmp")) / stem.name
    stem.with_suffix(".json").write_text(json.dumps(result, indent=2) + "\n")
    stem.with_suffix(".md").write_text(_markdown(result))
    print(json.dumps(result["test"], indent=2))


def _markdown(result: dict) -> str:
    test = result["test"]
    return (f"# torchvision instance segmentation reference ({result['date']})\n\n"
            f"{result['what']}: `{result['architecture']}` body, {result['head']}, "
            f"{result['size']} px, up to {result['max_detections']} detections, "
            f"{result['n_train']} train / {result['n_test']} test images, "
            f"{len(result['epochs'])} epochs in {result['training_minutes']:.1f} min on "
            f"{result['machine']['cpu']} ({result['machine']['cores']} cores).\n\n"
            f"| mask mAP | 95% CI | mask AP50 | 95% CI | box mAP | 95% CI | box AP50 | "
            f"torch p50 ms |\n|---|---|---|---|---|---|---|---|\n"
            f"| {test['mask_map']:.3f} | {_ci(test['mask_map_ci95'])} | "
            f"{test['mask_map50']:.3f} | {_ci(test['mask_map50_ci95'])} | "
            f"{test['box_map']:.3f} | {_ci(test['box_map_ci95'])} | {test['box_map50']:.3f} | "
            f"{result['torch_cpu_latency_ms']['p50']:.1f} |\n\n"
            f"Command: `{result['command']}`\n")


if __name__ == "__main__":
    main()
