"""Real test images made on the fly: textured photos-like images, broken files, resized copies.

Textures are sums of smooth random fields at several scales plus fine noise, so perceptual
hashes behave as on photographs (pure per-pixel noise has no low-frequency structure, which is
not what real images or near-duplicate detectors see).
"""

from __future__ import annotations

import io
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np
from PIL import Image

SIZES: tuple[tuple[int, int], ...] = ((64, 48), (96, 96), (120, 80), (80, 112), (160, 120))


def textured_array(rng: np.random.Generator, width: int, height: int,
                   channels: int = 3) -> np.ndarray:
    """uint8 HxWxC (or HxW when channels == 1) image with structure at several scales."""
    total = np.zeros((height, width, channels), dtype=np.float32)
    for cells, weight in ((2, 1.0), (4, 0.6), (8, 0.35), (16, 0.2)):
        for c in range(channels):
            grid = rng.random((cells, cells)).astype(np.float32)
            field = Image.fromarray(grid, mode="F").resize((width, height),
                                                           Image.Resampling.BICUBIC)
            total[:, :, c] += weight * np.asarray(field)
    total += 0.05 * rng.standard_normal(total.shape).astype(np.float32)
    low, high = total.min(), total.max()
    arr = ((total - low) / max(high - low, 1e-6) * 255.0).round().astype(np.uint8)
    return arr[:, :, 0] if channels == 1 else arr


def textured_image(rng: np.random.Generator, size: tuple[int, int] = (96, 96),
                   mode: str = "RGB") -> Image.Image:
    """A textured PIL image of `size` (W, H) in mode 'RGB' or 'L'."""
    channels = 1 if mode == "L" else 3
    return Image.fromarray(textured_array(rng, size[0], size[1], channels),
                           mode="L" if channels == 1 else "RGB")


def save(img: Image.Image, path: str | Path, quality: int = 90) -> Path:
    """Save with the format implied by the suffix (JPEG quality applies to .jpg/.jpeg)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix.lower() in (".jpg", ".jpeg"):
        img.convert("RGB").save(path, format="JPEG", quality=quality)
    else:
        img.save(path)
    return path


def write_textured(path: str | Path, rng: np.random.Generator,
                   size: tuple[int, int] = (96, 96), mode: str = "RGB") -> Path:
    return save(textured_image(rng, size, mode), path)


def write_truncated_jpeg(path: str | Path, rng: np.random.Generator,
                         size: tuple[int, int] = (96, 96), keep: float = 0.5) -> Path:
    """A JPEG cut after `keep` of its bytes: the header parses, decoding fails."""
    buffer = io.BytesIO()
    textured_image(rng, size).save(buffer, format="JPEG", quality=90)
    data = buffer.getvalue()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data[: int(len(data) * keep)])
    return path


def write_text_as_image(path: str | Path) -> Path:
    """A text file wearing an image extension."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("this is not an image\n")
    return path


def resized_copy(src: str | Path, dst: str | Path, scale: float, quality: int = 85) -> Path:
    """`src` resized by `scale` (bilinear) and re-encoded in `dst`'s format."""
    with Image.open(src) as img:
        img.load()
        size = (max(8, round(img.width * scale)), max(8, round(img.height * scale)))
        return save(img.resize(size, Image.Resampling.BILINEAR), dst, quality=quality)


def make_class_tree(root: str | Path, counts: dict[str, int], rng: np.random.Generator, *,
                    sizes: Sequence[tuple[int, int]] = SIZES,
                    exts: Iterable[str] = ("jpg", "png")) -> dict[str, list[Path]]:
    """`root/<class>/<class>_<i>.<ext>` textured images; sizes and extensions cycle."""
    ext_list = list(exts)
    made: dict[str, list[Path]] = {}
    for label, n in counts.items():
        made[label] = [
            write_textured(Path(root) / label / f"{label}_{i:03d}.{ext_list[i % len(ext_list)]}",
                           rng, sizes[i % len(sizes)])
            for i in range(n)
        ]
    return made
