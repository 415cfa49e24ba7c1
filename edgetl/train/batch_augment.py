"""Augmentation of whole batches on the training device (GPU), same semantics as the CPU presets.

A PIL DataLoader cannot feed a GPU that trains Lite0 at thousands of images/s; with the
decode-once cache the images already sit in memory as uint8 tensors of one size, so a batch can
be cropped, flipped, turned, jittered and normalised in a few tensor ops on the device.

Semantics follow `data/transforms.py`: random-resized-crop boxes are sampled as torchvision does
(area fraction in `scale`, log-uniform aspect in `ratio`, 10 tries, then a centre crop clamped to
the ratio range) and resampled in the spec's interpolation with one batched affine `grid_sample`
(no antialias: crops are close to the cached size, so this is a small difference, checked
statistically by the tests; roi_align's bilinear box averaging was measured blurrier); flips,
90-degree turns, small rotations (bilinear, zero fill), brightness/contrast/saturation factors
drawn as ColorJitter draws them (applied in a fixed order); hue is not supported here (the
presets that use it run on the CPU path).
The evaluation path (centre crop + normalisation) is exactly the CPU one.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from edgetl.data.transforms import AugmentSettings
from edgetl.spec import PreprocessSpec


def _center_box(height: int, width: int, crop: tuple[int, int]) -> tuple[int, int]:
    return int(round((height - crop[0]) / 2.0)), int(round((width - crop[1]) / 2.0))


class BatchAugment:
    """uint8 [N, 3, H, W] batch -> normalised float [N, 3, h, w] on the batch's device."""

    def __init__(self, spec: PreprocessSpec, aug: AugmentSettings) -> None:
        if aug.hue:
            raise ValueError("hue jitter is not supported by the batched augmentation")
        self.spec, self.aug = spec, aug
        self.out_h, self.out_w = spec.input_size

    # ------------------------------------------------------------------ pieces
    def normalize(self, x: torch.Tensor) -> torch.Tensor:
        mean = torch.tensor(self.spec.mean, device=x.device).view(1, 3, 1, 1)
        std = torch.tensor(self.spec.std, device=x.device).view(1, 3, 1, 1)
        return (x.float() * self.spec.scale - mean) / std

    def evaluate(self, images: torch.Tensor) -> torch.Tensor:
        """Centre crop + normalisation: the evaluation input, identical to the CPU path."""
        height, width = images.shape[-2:]
        crop = self.spec.crop_size or (height, width)
        top, left = _center_box(height, width, crop)
        return self.normalize(images[..., top:top + crop[0], left:left + crop[1]])

    def sample_boxes(self, n: int, height: int, width: int,
                     generator: torch.Generator | None = None) -> torch.Tensor:
        """[n, 4] crop boxes (x1, y1, x2, y2) drawn as torchvision's RandomResizedCrop draws."""
        tries = 10
        area = height * width
        scale = torch.empty(n, tries).uniform_(*self.aug.scale, generator=generator)
        log_lo, log_hi = math.log(self.aug.ratio[0]), math.log(self.aug.ratio[1])
        ratio = torch.exp(torch.empty(n, tries).uniform_(log_lo, log_hi, generator=generator))
        w = torch.round(torch.sqrt(area * scale * ratio))
        h = torch.round(torch.sqrt(area * scale / ratio))
        ok = (w > 0) & (h > 0) & (w <= width) & (h <= height)
        first = torch.where(ok.any(1), ok.float().argmax(1), torch.full((n,), -1))
        rows = torch.arange(n)
        pick = first.clamp(min=0)
        w, h = w[rows, pick], h[rows, pick]
        top = torch.floor(torch.rand(n, generator=generator) * (height - h + 1))
        left = torch.floor(torch.rand(n, generator=generator) * (width - w + 1))
        # Fallback, as torchvision: the whole image's centre, aspect clamped to the ratio range.
        fallback = first < 0
        if fallback.any():
            in_ratio = width / height
            if in_ratio < self.aug.ratio[0]:
                fw, fh = width, round(width / self.aug.ratio[0])
            elif in_ratio > self.aug.ratio[1]:
                fh, fw = height, round(height * self.aug.ratio[1])
            else:
                fw, fh = width, height
            w[fallback], h[fallback] = float(fw), float(fh)
            top[fallback], left[fallback] = (height - fh) // 2, (width - fw) // 2
        return torch.stack([left, top, left + w, top + h], dim=1)

    def _crop(self, x: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
        n, _, height, width = x.shape
        if not self.aug.random_resized_crop:
            crop = self.spec.crop_size or (height, width)
            top, left = _center_box(height, width, crop)
            return x[..., top:top + crop[0], left:left + crop[1]]
        boxes = self.sample_boxes(n, height, width, generator).to(x.device, x.dtype)
        # Crop + resize as one affine resample per image (normalised coordinates, corners not
        # aligned, like a pixel-centre resize), in the spec's interpolation.
        x1, y1, x2, y2 = boxes.unbind(1)
        theta = torch.zeros(n, 2, 3, device=x.device, dtype=x.dtype)
        theta[:, 0, 0] = (x2 - x1) / width
        theta[:, 0, 2] = (x1 + x2) / width - 1
        theta[:, 1, 1] = (y2 - y1) / height
        theta[:, 1, 2] = (y1 + y2) / height - 1
        grid = F.affine_grid(theta, [n, x.shape[1], self.out_h, self.out_w], align_corners=False)
        mode = self.spec.interpolation if self.spec.interpolation != "nearest" else "nearest"
        return F.grid_sample(x, grid, mode=mode, padding_mode="border",
                             align_corners=False).clamp(0, 255)

    def _geometry(self, x: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
        n = x.shape[0]

        def coin() -> torch.Tensor:
            return (torch.rand(n, generator=generator) < 0.5).to(x.device).view(n, 1, 1, 1)

        if self.aug.hflip:
            x = torch.where(coin(), x.flip(-1), x)
        if self.aug.vflip:
            x = torch.where(coin(), x.flip(-2), x)
        if self.aug.rot90 and x.shape[-1] == x.shape[-2]:
            # One rot90 per group of equal turns, indices chosen on the host: no device syncs.
            turns = torch.randint(0, 4, (n,), generator=generator)
            x = x.clone()
            for k in (1, 2, 3):
                index = (turns == k).nonzero().flatten()
                if len(index):
                    index = index.to(x.device)
                    x[index] = torch.rot90(x[index], k, (-2, -1))
        if self.aug.rotate_degrees > 0:
            angle = torch.empty(n).uniform_(-self.aug.rotate_degrees, self.aug.rotate_degrees,
                                            generator=generator).to(x.device) * math.pi / 180
            cos, sin = torch.cos(angle), torch.sin(angle)
            theta = torch.zeros(n, 2, 3, device=x.device)
            theta[:, 0, 0], theta[:, 0, 1], theta[:, 1, 0], theta[:, 1, 1] = cos, -sin, sin, cos
            grid = F.affine_grid(theta, list(x.shape), align_corners=False)
            x = F.grid_sample(x, grid, mode="bilinear", padding_mode="zeros",
                              align_corners=False)
        return x

    def _photometric(self, x: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
        n = x.shape[0]

        def factor(amount: float) -> torch.Tensor:
            f = torch.empty(n).uniform_(max(0.0, 1 - amount), 1 + amount, generator=generator)
            return f.to(x.device).view(n, 1, 1, 1)

        gray_weights = torch.tensor([0.299, 0.587, 0.114], device=x.device).view(1, 3, 1, 1)
        if self.aug.brightness:
            x = (x * factor(self.aug.brightness)).clamp(0, 255)
        if self.aug.contrast:
            mean = (x * gray_weights).sum(1, keepdim=True).mean((2, 3), keepdim=True)
            x = ((x - mean) * factor(self.aug.contrast) + mean).clamp(0, 255)
        if self.aug.saturation and self.spec.color_mode != "grayscale3":
            gray = (x * gray_weights).sum(1, keepdim=True)
            x = ((x - gray) * factor(self.aug.saturation) + gray).clamp(0, 255)
        return x

    def __call__(self, images: torch.Tensor,
                 generator: torch.Generator | None = None) -> torch.Tensor:
        """Random training views of a uint8 batch (all images of one size)."""
        x = self._crop(images.float(), generator)
        x = self._geometry(x, generator)
        x = self._photometric(x, generator)
        out = self.normalize(x)
        if self.aug.random_erasing > 0:
            out = _random_erasing(out, self.aug.random_erasing, generator)
        return out


def _random_erasing(x: torch.Tensor, p: float, generator: torch.Generator | None) -> torch.Tensor:
    """Erase one rectangle (2-33% of the area, aspect 0.3-3.3) with zeros, with probability p.

    Boxes are drawn on the host (the same draws, image by image, as before) and applied as one
    mask on the device, so a batch costs a few kernels instead of one per image."""
    n, _, height, width = x.shape
    boxes = torch.zeros(n, 4, dtype=torch.long)  # top, bottom, left, right; empty = no erase
    for i in range(n):
        if float(torch.rand(1, generator=generator)) >= p:
            continue
        area = height * width * float(torch.empty(1).uniform_(0.02, 0.33, generator=generator))
        ratio = math.exp(float(torch.empty(1).uniform_(math.log(0.3), math.log(3.3),
                                                       generator=generator)))
        h = min(height, int(round(math.sqrt(area * ratio))))
        w = min(width, int(round(math.sqrt(area / ratio))))
        top = int(torch.randint(0, height - h + 1, (1,), generator=generator))
        left = int(torch.randint(0, width - w + 1, (1,), generator=generator))
        boxes[i] = torch.tensor([top, top + h, left, left + w])
    boxes = boxes.to(x.device)
    rows = torch.arange(height, device=x.device).view(1, height, 1)
    cols = torch.arange(width, device=x.device).view(1, 1, width)
    top, bottom, left, right = (b.view(n, 1, 1) for b in boxes.unbind(1))
    erase = (rows >= top) & (rows < bottom) & (cols >= left) & (cols < right)
    return x.masked_fill(erase.unsqueeze(1), 0.0)
