"""The recipe's sections (data, model, preprocess, augment, loss, train, phases): the pydantic v2
models `recipe.Recipe` is made of, unknown keys rejected.

Split from `recipe` (the whole recipe, its task rules, loading and `--set` overrides) so each
module has one job. A key's comment here is its description in docs/recipe-keys.md.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class DataConfig(_Strict):
    source: str | None = Field(None, description=(
        "The images and labels: a folder, a manifest, an annotation file or a built-in name "
        "(elpv, neon-trees); what each task reads: edgetl finetune --help. Required (here or "
        "as --data)."))
    val_fraction: float = Field(0.15, ge=0.0, lt=0.5, description=(
        "Validation share of the images when the source gives no val split."))
    test_fraction: float = Field(0.15, ge=0.0, lt=0.5, description=(
        "Test share of the images when the source gives no test split."))
    near_duplicate_threshold: int = Field(6, ge=-1, le=64, description=(
        "Perceptual-hash (phash) Hamming distance, 0-64, at or below which two images are "
        "near-duplicates kept in one split (-1: exact duplicates only); as data inspect/split "
        "--near-dup-threshold."))
    group_from_name: str | None = Field(None, description=(
        "Regular expression searched in each file's base name; its first capture group (or "
        "the whole match) is the image's group, and a group stays in one split "
        "(--group-from-name)."))
    label_conflicts: Literal["warn", "refuse"] = Field("warn", description=(
        "The same picture (identical files) under two labels: a warning, or with 'refuse' an "
        "error before any training."))
    cache_dir: str | None = Field(None, description=(
        "Keep the decoded-image cache on disk here (reused across runs)."))


class HeadSettings(_Strict):
    # Dropout before the classifier.
    dropout: float = Field(0.2, ge=0.0, lt=1.0)
    # Width of a hidden layer before the classifier (0: none).
    hidden: int = Field(0, ge=0, le=8192)


class DetectorConfig(_Strict):
    """The detector's neck, head and post-processing (task: detection)."""

    # The detector family.
    kind: Literal["fcos"] = "fcos"
    # Channels of the feature pyramid and the head towers.
    fpn_channels: int = Field(64, ge=8, le=512)
    # 3x3 convolutions in each head tower.
    head_convs: int = Field(2, ge=0, le=6)
    head_norm: Literal["group", "none"] = "group"  # the towers' norm (shared by all levels)
    extra_levels: int = Field(2, ge=0, le=2)  # P6, P7 above the backbone's P3-P5
    # FCOS centre sampling: points within this many strides of a box centre are positives.
    center_sampling_radius: float = Field(1.5, gt=0, le=10)
    score_threshold: float = Field(0.05, ge=0, lt=1)  # kept by NMS (predict shows >= 0.3)
    # IoU above which NMS drops the lower-scored box.
    nms_iou: float = Field(0.6, gt=0, le=1)
    max_detections: int = Field(100, ge=1, le=10000)  # K: rows of the artifact's outputs
    anchor_scale: float = Field(1.0, gt=0, le=16)  # point size relative to its level's stride


class InstanceConfig(DetectorConfig):
    """The instance model: the detector's settings plus the mask branch (task: instance).

    Defaults fit images with many small instances (hundreds of nuclei per image)."""

    max_detections: int = Field(400, ge=1, le=10000)  # K: rows of the artifact's outputs
    # M: masks are M x M over each box (even). 14, not Mask R-CNN's 28: on nuclei the same
    # validation mask mAP at a third of the latency (benchmarks/results/instance-*.md)
    mask_resolution: int = Field(14, ge=4, le=112)
    # 3x3 convolutions of the mask branch.
    mask_convs: int = Field(2, ge=1, le=8)
    # Channels of the mask branch.
    mask_channels: int = Field(64, ge=8, le=512)
    mask_weight: float = Field(1.0, gt=0, le=100)  # the mask loss's weight next to FCOS's
    mask_rois_per_image: int = Field(128, ge=1, le=10000)  # boxes the mask loss sees per image

    @field_validator("mask_resolution")
    @classmethod
    def _even(cls, value: int) -> int:
        """Refused here, not when the model is built after the data was read and split."""
        if value % 2:
            raise ValueError(f"mask_resolution must be even, got {value} (14 or 28, say)")
        return value


class SegmenterConfig(_Strict):
    """The semantic segmenter's decoder (task: semantic)."""

    # The decoder family.
    kind: Literal["lraspp"] = "lraspp"
    # Channels of LR-ASPP's context branch.
    inter_channels: int = Field(128, ge=8, le=1024)
    high_stride: Literal[16, 32] = 32  # the encoder level feeding LR-ASPP's context branch


class ModelConfig(_Strict):
    # The timm backbone (edgetl models list shows those with offline weights).
    architecture: str = "tf_efficientnet_lite0"
    # None: the packaged/offline default; a path (ImageNet weights, or for detection a
    # torchvision-format detector checkpoint); 'timm-cache'; 'random'
    weights: str | None = None
    # classification: keep the weights' resize/crop ratio at this size; dense tasks: the fixed
    # square input the image is letterboxed to (default 320)
    input_size: int | None = Field(None, ge=32, le=2048)
    # The classification head.
    head: HeadSettings = HeadSettings()
    detector: DetectorConfig = DetectorConfig()
    segmenter: SegmenterConfig = SegmenterConfig()
    instance: InstanceConfig = InstanceConfig()


class PreprocessOverrides(_Strict):
    """Only what a recipe may change about the weights' preprocessing (recorded in the spec)."""

    # How images are decoded: rgb, grayscale3 (gray copied to 3 channels) or bgr (default: the
    # weights').
    color_mode: Literal["rgb", "grayscale3", "bgr"] | None = None
    # Resize interpolation (default: the weights').
    interpolation: Literal["nearest", "bilinear", "bicubic"] | None = None
    # Normalisation mean per channel, 0-1 scale (default: the weights').
    mean: tuple[float, float, float] | None = None
    # Normalisation std per channel, 0-1 scale (default: the weights').
    std: tuple[float, float, float] | None = None
    crop_pct: float | None = Field(None, gt=0, le=1)  # centre-crop fraction (1.0: whole image)
    # dense tasks: how the image reaches the fixed input (default letterbox) and the padding
    geometry: Literal["letterbox", "stretch"] | None = None
    # dense tasks: the letterbox padding colour (RGB 0-255).
    fill: tuple[int, int, int] | None = None
    # 16-bit images: refuse them (the default), or scale 0..65535 to 0..255 (recorded in the spec)
    high_bit_depth: Literal["refuse", "scale"] | None = None


class AugmentConfig(_Strict):
    # none, light, standard, strong, or conservative (no flips or turns: oriented images).
    preset: Literal["none", "light", "standard", "strong", "conservative"] = "standard"
    # Classification: random resized crops instead of the evaluation crop.
    random_resized_crop: bool | None = None
    # Random resized crop: area range; dense tasks: scale-jitter range.
    scale: tuple[float, float] | None = None
    # Random resized crop: aspect-ratio range.
    ratio: tuple[float, float] | None = None
    # Random horizontal flips.
    hflip: bool | None = None
    # Random vertical flips.
    vflip: bool | None = None
    # Random quarter turns.
    rot90: bool | None = None
    # Random rotation up to this many degrees.
    rotate_degrees: float | None = Field(None, ge=0, le=180)
    # Colour jitter: brightness strength.
    brightness: float | None = Field(None, ge=0)
    # Colour jitter: contrast strength.
    contrast: float | None = Field(None, ge=0)
    # Colour jitter: saturation strength (0 for grayscale images).
    saturation: float | None = Field(None, ge=0)
    # Colour jitter: hue shift, up to 0.5.
    hue: float | None = Field(None, ge=0, le=0.5)
    # Probability of erasing a random rectangle.
    random_erasing: float | None = Field(None, ge=0, le=1)
    # dense tasks: a box (instance) stays a target only if this share of it is still visible
    # after a scale-jitter crop or (with tile:) a tile border
    min_visible: float | None = Field(None, ge=0, le=1)

    def overrides(self) -> dict[str, Any]:
        return {k: v for k, v in self.model_dump().items() if k != "preset" and v is not None}


class TileConfig(_Strict):
    """Training and prediction on tiles (detection, instance segmentation): each image is cut
    into square tiles of `size` source pixels and each tile is letterboxed to the input, so
    small objects are seen larger. The resolved rule is recorded in the run's spec and every
    artifact's."""

    # Tile side in the images' own pixels, or auto: chosen from the training boxes so the
    # smallest third of the objects reach 24 px at the input size (edgetl/tiling.py).
    size: int | Literal["auto"] = "auto"
    # Share of a tile its neighbours overlap, 0 to 0.9.
    overlap: float = Field(0.25, ge=0.0, le=0.9)
    # Also run the whole image, downscaled, as one more tile (large objects seen whole).
    whole_image: bool = False

    @field_validator("size")
    @classmethod
    def _size(cls, value: int | str) -> int | str:
        if isinstance(value, int) and value < 16:
            raise ValueError(f"tile.size must be at least 16 px or auto, got {value}")
        return value


class LossConfig(_Strict):
    # dice and ce_dice: semantic segmentation only
    type: Literal["cross_entropy", "focal", "dice", "ce_dice"] = "cross_entropy"
    # Classification: label smoothing of the targets.
    label_smoothing: float = Field(0.0, ge=0.0, lt=1.0)
    # balanced: n / (k n_c), inverse frequency (scikit-learn's rule); sqrt: inverse square root
    # of the frequency; effective: Cui et al.'s effective number of samples with effective_beta
    # (classification only). sqrt and effective stay sane at large ratios (README, Imbalance).
    class_weights: Literal["none", "balanced", "sqrt", "effective"] | list[float] = "none"
    # class_weights effective: beta of the effective number of samples.
    effective_beta: float = Field(0.99, gt=0.0, lt=1.0)
    # type focal: the focusing exponent.
    focal_gamma: float = Field(2.0, ge=0.0)
    # Classification: sample training images so each class is drawn equally often.
    balanced_sampler: bool = False


SelectMetric = Literal["val_accuracy", "val_balanced_accuracy", "val_macro_f1", "val_loss",
                       "val_map", "val_map50", "val_miou", "val_mask_map"]


class EarlyStopping(_Strict):
    metric: SelectMetric | None = None  # None: the run's selection metric
    # Epochs without improvement before the phase stops.
    patience: int = Field(3, ge=1)
    # The smallest change that counts as an improvement.
    min_delta: float = Field(0.0, ge=0.0)


class PhaseConfig(_Strict):
    # The phase: A, B or C, in this order.
    name: Literal["A", "B", "C"]
    # Epochs of this phase (0: the phase is skipped). Give epochs or steps, not both.
    epochs: int | None = Field(None, ge=0, le=1000)
    # Optimiser steps of this phase instead of epochs: the last epoch may be partial (it stops
    # mid-epoch and still validates).
    steps: int | None = Field(None, ge=1, le=10_000_000)
    # Floor: the phase trains at least this many optimiser steps (epochs x steps per epoch is
    # raised to it; the last epoch may be partial). Not applied to a phase of 0 epochs.
    min_steps: int | None = Field(None, ge=1, le=10_000_000)
    # Ceiling: the phase trains at most this many optimiser steps (cut mid-epoch if need be).
    max_steps: int | None = Field(None, ge=1, le=10_000_000)
    # What trains: the head, the last `blocks` body blocks and the head, or all.
    unfreeze: Literal["head", "last", "all"] = "head"
    blocks: int = Field(0, ge=0)  # with unfreeze=last: how many of the last body blocks train
    lr: float = Field(1e-3, gt=0)  # the head's learning rate; body groups get multipliers
    late_multiplier: float = Field(0.1, ge=0)  # the last `late_blocks` body blocks
    early_multiplier: float = Field(0.01, ge=0)  # every other trainable body block
    late_blocks: int | None = Field(None, ge=0)  # default: `blocks` (phase B) or 2 (phase C)
    layer_decay: float | None = Field(None, gt=0, le=1)  # instead of late/early multipliers
    # Linear learning-rate warm-up at the start of the phase.
    warmup_epochs: float = Field(0.0, ge=0)
    # The cosine schedule ends at lr times this.
    min_lr_ratio: float = Field(0.01, ge=0, le=1)
    # AdamW weight decay.
    weight_decay: float = Field(0.01, ge=0)
    freeze_bn: bool = False  # keep batch-norm statistics of trainable blocks fixed too
    augment: bool = True  # False: evaluation transform only (enables cached frozen features)
    cache_frozen: bool = True  # run the frozen part once per image when augment is False
    # With a cached frozen part: the views of each image computed once; each step picks one at
    # random (exact augmentation for flips/turns, where the domain allows them).
    cached_views: list[Literal["identity", "hflip", "vflip", "rot180", "rot90", "rot270",
                               "transpose", "antitranspose"]] = ["identity"]
    # Validate, checkpoint and end the phase with a moving average of its weights over about
    # this many epochs of steps (None: the weights as trained).
    ema_epochs: float | None = Field(None, gt=0)
    # Stop the phase when the metric has not improved for `patience` epochs.
    early_stopping: EarlyStopping | None = None

    @model_validator(mode="after")
    def _check_blocks(self) -> PhaseConfig:
        if self.unfreeze == "last" and self.blocks < 1:
            raise ValueError("unfreeze: last needs blocks >= 1")
        return self

    @model_validator(mode="after")
    def _check_length(self) -> PhaseConfig:
        """One length (epochs or steps) and a floor not above the ceiling."""
        if self.epochs is not None and self.steps is not None:
            raise ValueError(f"phase {self.name} gives both epochs ({self.epochs}) and steps "
                             f"({self.steps}): give one of them")
        if self.epochs is None and self.steps is None:
            raise ValueError(f"phase {self.name} needs its length: epochs or steps")
        if self.min_steps is not None and self.max_steps is not None and \
                self.min_steps > self.max_steps:
            raise ValueError(f"phase {self.name}: min_steps {self.min_steps} is above "
                             f"max_steps {self.max_steps}")
        return self

    @property
    def trains(self) -> bool:
        """Whether the phase trains at all (epochs 0 skips it, whatever min_steps says)."""
        return self.steps is not None or bool(self.epochs)


class TrainConfig(_Strict):
    # Training images per step.
    batch_size: int = Field(32, ge=1)
    # Images per step when validating and testing.
    eval_batch_size: int = Field(64, ge=1)
    # Seed of the split, the head's initialisation and the data order.
    seed: int = 0
    # Where training runs: auto (CUDA when visible), cpu or cuda.
    device: Literal["auto", "cpu", "cuda"] = "auto"
    # CPU threads for torch (default: torch's).
    num_threads: int | None = Field(None, ge=1)
    keep: Literal["best", "last"] = "best"  # which checkpoint `best/` reflects at the end
    select_metric: SelectMetric | None = None  # None: the task's default (its first select metric)
    # Augment whole batches on the training device (auto: on CUDA) instead of per image.
    batch_augment: Literal["auto", "on", "off"] = "auto"
    device_cache_mb: int = Field(8192, ge=0)  # decoded images kept on the GPU up to this size
    # torch.compile the training forward ("reduce-overhead" adds CUDA graphs). Off by default:
    # compiling takes longer than a short fine-tune on a small data set saves.
    compile: Literal["off", "default", "reduce-overhead", "max-autotune"] = "off"
    # Tensor layout for training. auto: channels_last on the CPU (oneDNN, 2x for Lite0); on CUDA
    # contiguous (NCHW) for short runs, channels_last from 100,000 planned training images: cuDNN
    # pays seconds per new shape in channels_last (measured on an H200, see ARCHITECTURE.md).
    memory_format: Literal["auto", "channels_last", "contiguous"] = "auto"
    # A phase whose first epochs validate far worse than it started (edgetl/train/spike.py):
    # lower_lr rolls back to the phase's starting weights and retries it at spike_lr_factor x the
    # learning rate (spike_retries times, then reverts); revert rolls back and skips the rest of
    # the phase; continue only reports it.
    on_spike: Literal["lower_lr", "revert", "continue"] = "lower_lr"
    # on_spike lower_lr: retries before reverting.
    spike_retries: int = Field(1, ge=0, le=5)
    # on_spike lower_lr: the learning-rate factor of a retry.
    spike_lr_factor: float = Field(0.1, gt=0.0, lt=1.0)

    @field_validator("batch_augment", "compile", mode="before")  # (memory_format: no on/off)
    @classmethod
    def _yaml_switches(cls, value: Any, info: Any) -> Any:
        """YAML reads an unquoted on/off/true/false as a boolean: take it as meant."""
        if isinstance(value, bool):
            if info.field_name == "compile":
                return "default" if value else "off"
            return "on" if value else "off"
        return value


class QuantizeConfig(_Strict):
    """Quantisation-aware fine-tuning (`edgetl export --format onnx-int8`): trains the int8
    graph itself, from the best checkpoint, when post-training quantisation has to keep more
    compute nodes float than `max_float_nodes` (or always with `--qat`)."""

    # auto: QAT when post-training int8 keeps more than max_float_nodes float; off: never
    # (export --qat still runs it).
    qat: Literal["auto", "off"] = "auto"
    # Network compute nodes post-training int8 may keep float32 before QAT takes over.
    max_float_nodes: int = Field(0, ge=0)
    # Passes over the training split (fractions allowed).
    epochs: float = Field(1.0, gt=0.0)
    # Most optimiser steps, whatever the epochs make (None: no cap).
    max_steps: int | None = Field(None, ge=1)
    # Wall-clock cap for the QAT training (e.g. 5m); it stops at the next step past it.
    time_budget: str | None = None
    # AdamW learning rate, decayed to zero by cosine over the planned steps.
    lr: float = Field(1.0e-5, gt=0.0)
    # Weight of the distillation term (KL to the float model's softened outputs) beside the
    # task loss.
    distillation: float = Field(4.0, ge=0.0)
    # Weight of the task's own loss on the labels (0: distillation alone, which aims at
    # agreement with the float model rather than at the labels).
    task_loss: float = Field(1.0, ge=0.0)
    # Softening temperature of the distillation.
    temperature: float = Field(2.0, gt=0.0)
    # Training images per step (None: train.batch_size).
    batch_size: int | None = Field(None, ge=1)
    # Training images the quantisers' ranges are initialised on.
    calibration_images: int = Field(256, ge=1)

    @model_validator(mode="after")
    def _check_loss(self) -> QuantizeConfig:
        if self.task_loss == 0 and self.distillation == 0:
            raise ValueError("quantize: task_loss and distillation are both 0: nothing to train")
        return self

    @field_validator("time_budget")
    @classmethod
    def _duration(cls, value: str | None) -> str | None:
        if value is None:
            return None
        from edgetl.clock import parse_duration
        from edgetl.errors import UsageError

        try:
            parse_duration(value, "quantize.time_budget")
        except UsageError as exc:
            raise ValueError(exc.message) from None
        return value
