"""Object detection on the phased trainer: boxes move with the pixels, mAP picks the epoch.

Hooks of `PhasedTrainer` for `EdgeFCOS` (edgetl.models.detector). Images are decoded once into
memory (uint8, shrunk when far larger than the input); every epoch augments image and boxes
together (`edgetl.data.transforms_dense`) into the fixed letterboxed input. Crowd / difficult
boxes are left out of the training targets (torchvision's FCOS has no ignore regions) and kept
as crowd regions in evaluation. Validation computes the losses and the deployable detections
(`DetectionOutputs`, the same module export traces) in one pass and scores them with
pycocotools in the original image pixels.

Cached features and whole-batch GPU augmentation are classification's: boxes move with every
augmentation here, so a frozen part's output cannot be reused across epochs.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset
from torchvision import tv_tensors

from edgetl.artifact.postprocess import Detections
from edgetl.data.samples import DataSet, Sample
from edgetl.data.transforms import load_uint8_tensor
from edgetl.data.transforms_dense import (
    dense_augment,
    dense_eval_transform,
    dense_train_transform,
)
from edgetl.errors import DataError, RecipeError
from edgetl.geometry import geometry_for
from edgetl.metrics.detection import DetectionEvaluator
from edgetl.models.specs import DENSE_INPUT_SIZE
from edgetl.spec import PreprocessSpec
from edgetl.train.loop import train_one_epoch
from edgetl.train.plan import PhasePlan
from edgetl.train.progress import progress_bar
from edgetl.train.trainer import PhasedTrainer

# Images are kept in memory at most this many times the input's longer side (boxes scaled
# with them): enough for the strongest zoom-in preset, bounded memory for large photos.
CACHE_SIDE_FACTOR = 2.0


class DecodedImage:
    """One image in memory: uint8 CHW tensor and its factor relative to the file's pixels."""

    def __init__(self, pixels: torch.Tensor, factor: float, source: tuple[int, int]) -> None:
        self.pixels, self.factor, self.source = pixels, factor, source


def decode_images(samples: list[Sample], spec: PreprocessSpec,
                  progress: Callable[[int], None] | None = None) -> list[DecodedImage]:
    """Decode every file once (threads), shrunk to `CACHE_SIDE_FACTOR` x the input side (with
    a tile rule: so that a tile is at most that many times the input side)."""
    from torchvision.transforms.v2 import functional as F

    limit = CACHE_SIDE_FACTOR * max(spec.input_size)

    def one(sample: Sample) -> DecodedImage:
        pixels = load_uint8_tensor(sample.path, spec)
        height, width = pixels.shape[-2:]
        factor = min(1.0, limit / (spec.tile.size if spec.tile else max(height, width)))
        if factor < 1.0:
            size = [max(1, round(height * factor)), max(1, round(width * factor))]
            pixels = F.resize(pixels, size, antialias=True)
        if progress:
            progress(1)
        return DecodedImage(pixels, factor, (height, width))

    with ThreadPoolExecutor(max_workers=min(8, os.cpu_count() or 1)) as pool:
        return list(pool.map(one, samples))


def _train_target(sample: Sample, image: DecodedImage, record_index: Callable[[str], int]
                  ) -> tuple[torch.Tensor, torch.Tensor]:
    """Non-crowd boxes (in the decoded image's pixels) and their class indices."""
    target = sample.target
    keep = [i for i, crowd in enumerate(target.crowd) if not crowd]
    boxes = torch.tensor([target.boxes[i] for i in keep], dtype=torch.float32).reshape(-1, 4)
    labels = torch.tensor([record_index(target.labels[i]) for i in keep], dtype=torch.int64)
    return boxes * image.factor, labels


class BoxSamples(Dataset):
    """Decoded images with their boxes through a v2 transform: (image, {boxes, labels}, index)."""

    def __init__(self, samples: list[Sample], images: list[DecodedImage], transform: Any,
                 record_index: Callable[[str], int]) -> None:
        self.samples, self.images, self.transform = samples, images, transform
        self.targets = [_train_target(s, img, record_index) for s, img in zip(samples, images,
                                                                              strict=True)]

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, dict[str, torch.Tensor], int]:
        out = self.transform(self.sample(index))
        return out["image"].as_subclass(torch.Tensor), self.target(out), index

    def sample(self, index: int) -> dict[str, Any]:
        """What the transform moves together: the image, its boxes and their labels."""
        image = self.images[index]
        boxes, labels = self.targets[index]
        return {"image": tv_tensors.Image(image.pixels),
                "boxes": tv_tensors.BoundingBoxes(boxes, format="XYXY",
                                                  canvas_size=tuple(image.pixels.shape[-2:])),
                "labels": labels}

    def target(self, out: dict[str, Any]) -> dict[str, torch.Tensor]:
        """The training target of a transformed sample."""
        return {"boxes": out["boxes"].as_subclass(torch.Tensor).float(), "labels": out["labels"]}


def collate(batch: list) -> tuple[torch.Tensor, list[dict[str, torch.Tensor]], list[int]]:
    images, targets, indices = zip(*batch, strict=True)
    return torch.stack(images), list(targets), list(indices)


def build_letterboxed(hooks: Any, settings_type: Any, section: Any,
                      build: Callable[..., Any]) -> tuple[torch.nn.Module, PreprocessSpec]:
    """A detector's or instance model's `build_model`: its settings from the recipe's
    `section` (kept on `hooks` for the head record), at the square input size. A function, as
    `edgetl select` calls `build_model` with a namespace of recipe and task record."""
    recipe = hooks.recipe
    hooks.settings = settings_type.from_dict(section.model_dump())
    size = recipe.model.input_size or DENSE_INPUT_SIZE
    return build(recipe.model.architecture, hooks.task_record.num_classes,
                 hooks.settings, (size, size), recipe.model.weights)


class DenseTrainer(PhasedTrainer):
    """What the letterboxed tasks' trainers share (detection's and semantic segmentation's):
    the model's settings are its head record, and a last batch of one image is dropped."""

    settings: Any

    @property
    def train_items(self) -> int:
        """Training items per epoch: images (a detector on tiles: its windows)."""
        return len(self.train_s)

    @property
    def _drop_last(self) -> bool:
        """Batch norm in the head (on the coarsest level, 1x1 at small inputs) or the decoder
        (after its global pooling) needs more than one value per channel: a last batch of one
        image is dropped (a different one each epoch, the order is shuffled)."""
        return self.train_items % self.recipe.train.batch_size == 1

    @property
    def train_size(self) -> int:
        return self.train_items - (1 if self._drop_last else 0)

    def head_record(self) -> dict[str, Any]:
        return self.settings.to_dict()


class DetectionTrainer(DenseTrainer):
    """An FCOS detector over a registry backbone, trained in phases."""

    # ------------------------------------------------------------------ hooks: set-up
    def check_data(self, data: DataSet) -> None:
        if self.dist.enabled:
            raise RecipeError("multi-process training runs classification only in this version",
                              "train detection in one process")
        boxes = sum(len(s.target.boxes) for s in self.train_s)
        if boxes == 0:
            raise DataError("the training split holds no boxes",
                            "check the annotations (edgetl data inspect DATA --task "
                            f"{self.recipe.task})")
        counts = dict.fromkeys(self.task_record.names, 0)
        for sample in self.train_s:
            for label, crowd in zip(sample.target.labels, sample.target.crowd, strict=True):
                counts[label] += not crowd
        missing = [name for name, n in counts.items() if n == 0]
        if missing:
            self.console.print(f"[yellow]warning[/]: class(es) {', '.join(missing)} have no "
                               "training boxes; the model cannot learn them")

    def build_model(self) -> tuple[torch.nn.Module, PreprocessSpec]:
        from edgetl.models.detector import DetectorSettings, build_detector

        return build_letterboxed(self, DetectorSettings, self.recipe.model.detector,
                                 build_detector)

    def training_spec(self, weights_spec: PreprocessSpec) -> PreprocessSpec:
        """The dense spec, with the recipe's `tile:` resolved into its rule (`auto`: from the
        training boxes) and recorded in the spec (checkpoints and artifacts carry it)."""
        spec = super().training_spec(weights_spec)
        tile = self.recipe.tile
        if tile is None:
            return spec
        from edgetl.data.detection.small import resolve_tile_rule
        from edgetl.train.tiles import tile_items

        rule = resolve_tile_rule(tile.size, tile.overlap, tile.whole_image, self.train_s,
                                 spec.input_size[0])
        self.train_tiles = len(tile_items(self.train_s, rule))
        self.val_tiles = len(tile_items(self.val_s, rule))
        self.console.print(f"tiles: {rule.size} px (tile.size {tile.size}), overlap "
                           f"{rule.overlap:g}{', plus the whole image' if rule.whole_image else ''}"
                           f": {self.train_tiles} training tiles from {len(self.train_s)} images")
        return spec.with_overrides(tile=rule, source=f"{spec.source}, tile={rule.to_dict()}")

    @property
    def train_items(self) -> int:
        return getattr(self, "train_tiles", None) or len(self.train_s)

    @property
    def epoch_items(self) -> int:
        """Progress units of one epoch: training and validation images, or their tiles."""
        if getattr(self, "train_tiles", None) is None:
            return super().epoch_items
        return self.train_tiles + self.val_tiles


    def prepare_data(self) -> None:
        t0 = time.perf_counter()
        everything = self.train_s + self.val_s
        with progress_bar(self.console) as bar:
            task = bar.add_task("decode (once)", total=len(everything))
            images = decode_images(everything, self.spec, lambda n: bar.advance(task, n))
        self.console.print(f"decoded {len(images)} images once in "
                           f"{time.perf_counter() - t0:.1f} s")
        self.train_images, self.val_images = images[:len(self.train_s)], images[len(self.train_s):]
        self.augment = dense_augment(self.recipe.augment.preset,
                                     **self.recipe.augment.overrides())

    def summary_of(self, report: dict[str, Any]) -> dict[str, Any]:
        return {"test_map": report["map"], "test_map_ci95": report.get("map_ci95"),
                "test_map50": report["map50"], "test_map50_ci95": report.get("map50_ci95")}

    # ------------------------------------------------------------------ hooks: phases
    def plan_phase(self, phase_index: int) -> PhasePlan:
        phase = self.recipe.phases[phase_index]
        trainable = self.freeze(phase)
        transform = self.train_transform() if phase.augment else self.eval_transform()
        train = DataLoader(self.samples_of(self.train_s, self.train_images, transform),
                           batch_size=self.recipe.train.batch_size, shuffle=True,
                           generator=self.generator, collate_fn=collate, num_workers=0,
                           pin_memory=self.dev == "cuda", drop_last=self._drop_last)
        val = None
        if self.val_s:
            val = DataLoader(self.samples_of(self.val_s, self.val_images, self.eval_transform()),
                             batch_size=self.recipe.train.eval_batch_size, shuffle=False,
                             collate_fn=collate, num_workers=0)
        return PhasePlan(phase, trainable, self.model, train, val, cached=False)

    # The dataset and transforms of a phase (the instance trainer adds masks to both).
    def train_transform(self) -> Any:
        return dense_train_transform(self.spec, self.augment)

    def eval_transform(self) -> Any:
        return dense_eval_transform(self.spec)

    def samples_of(self, samples: list[Sample], images: list[DecodedImage], transform: Any
                   ) -> Dataset:
        if self.spec.tile is not None:
            from edgetl.train.tiles import TileSamples

            return TileSamples(samples, images, transform, self.task_record.index,
                               self.spec.tile, self.augment.min_visible)
        return BoxSamples(samples, images, transform, self.task_record.index)

    def _targets(self, targets: list[dict[str, torch.Tensor]]) -> list[dict[str, torch.Tensor]]:
        return [{k: v.to(self.rt.device, non_blocking=True) for k, v in t.items()}
                for t in targets]

    def train_epoch(self, plan: PhasePlan, optimizer: torch.optim.Optimizer,
                    on_step: Callable[[], None], advance: Callable[[int], None]
                    ) -> dict[str, float]:
        def loss(images: torch.Tensor, targets: list[dict[str, torch.Tensor]]) -> torch.Tensor:
            with self.rt.autocast():
                terms = self.model.losses(images, targets)
            return sum(v.float() for v in terms.values())

        return train_one_epoch(loss, plan.train_loader, optimizer, on_step, self.rt, advance,
                               self.ema.update if self.ema is not None else None,
                               move=lambda b: (self.rt.move(b[0]), self._targets(b[1])))

    @torch.no_grad()
    def validate(self, plan: PhasePlan, advance: Callable[[int], None]) -> dict[str, float]:
        from edgetl.models.detection_outputs import DetectionOutputs
        from edgetl.train.tiles import TileMerger, TileSamples

        outputs = DetectionOutputs(self.model).to(self.rt.device).eval()
        evaluator = DetectionEvaluator(self.task_record)
        tiles = plan.val_loader.dataset
        merger = TileMerger(tiles) if isinstance(tiles, TileSamples) else None
        total, seen = 0.0, 0
        for images, targets, indices in plan.val_loader:
            images, targets = self.rt.move(images), self._targets(targets)
            with self.rt.autocast():
                head, features = self.model.head_outputs(images)
            per_level = [f.size(2) * f.size(3) for f in features]
            anchors = [outputs.anchors] * len(images)
            losses = self.model.compute_loss(targets, {k: v.float() for k, v in head.items()},
                                             anchors, per_level)
            total += float(sum(losses.values())) * len(images)
            seen += len(images)
            found = outputs.select(*outputs.decode(head))
            if merger is not None:  # windows' detections, merged per image below
                merger.add(indices, to_original(found, [tiles.crop(i) for i in indices],
                                                self.spec))
            else:
                evaluator.update([self.val_s[i] for i in indices],
                                 to_original(found, [self.val_images[i] for i in indices],
                                             self.spec))
            advance(len(images))
        if merger is not None:
            evaluator.update(self.val_s, merger.merged(),
                             [image.source for image in self.val_images])
        stats = evaluator.compute().stats
        return {"loss": total / max(1, seen), "map": stats["map"], "map50": stats["map50"]}


def to_original(found: dict[str, torch.Tensor], images: list[DecodedImage],
                spec: PreprocessSpec) -> list[Detections]:
    """Batched fixed-K detections -> per image, real rows only, boxes in the file's pixels."""
    out = []
    boxes = found["boxes"].float().cpu().numpy()
    scores = found["scores"].float().cpu().numpy()
    labels = found["labels"].cpu().numpy()
    counts = found["num_detections"].cpu().numpy()
    for row, (image, n) in enumerate(zip(images, counts, strict=True)):
        height, width = image.pixels.shape[-2:]
        geo = geometry_for(int(height), int(width), spec)
        kept = int(n)
        mapped = geo.inverse_boxes(boxes[row, :kept]) / image.factor
        out.append(Detections(mapped, scores[row, :kept], labels[row, :kept].astype(np.int64)))
    return out
