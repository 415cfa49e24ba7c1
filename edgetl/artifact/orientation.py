"""EXIF orientation: images are used the way viewers and labelling tools show them.

A phone stores a portrait photo as landscape pixels plus an EXIF Orientation tag (2-8) that
says how to turn it upright. Labelling tools draw boxes and masks on the upright picture, and a
person checks predictions on it, so every decode in edgetl turns the pixels upright first
(`upright`, PIL's `ImageOps.exif_transpose`) and every image size read from a header is the
upright size (`upright_size`). This is the decode step of every preprocessing spec, the torch
path and the numpy reference alike; it changes nothing for images without the tag (or with 1).
"""

from __future__ import annotations

from PIL import Image, ImageOps

ORIENTATION_TAG = 0x0112
_TURNS = {2: "mirrored", 3: "rotated 180°", 4: "flipped", 5: "mirrored and rotated 90°",
          6: "rotated 90°", 7: "mirrored and rotated 270°", 8: "rotated 270°"}


def orientation(img: Image.Image) -> int:
    """The image's EXIF Orientation (1 when absent or not one of 1-8)."""
    try:
        value = img.getexif().get(ORIENTATION_TAG, 1)
    except Exception:  # a damaged EXIF block: the pixels are used as stored
        return 1
    return value if isinstance(value, int) and value in range(1, 9) else 1


def turn_words(value: int) -> str | None:
    """'rotated 90°' for a tag that changes the picture; None for 1."""
    return _TURNS.get(value)


def upright(img: Image.Image) -> Image.Image:
    """The image turned as its EXIF Orientation says (the same image when there is none)."""
    if orientation(img) == 1:
        return img
    return ImageOps.exif_transpose(img)


def rotation_summary(infos: list) -> tuple[dict, str | None]:
    """`data inspect`'s count of images with an EXIF turn (scan `ImageInfo`s) and its note."""
    turned = [(i.path, i.orientation) for i in infos if turn_words(i.orientation)]
    report = {"count": len(turned), "paths": [p for p, _ in turned]}
    if not turned:
        return report, None
    path, value = turned[0]
    return report, (f"{len(turned)} image(s) carry an EXIF rotation (e.g. {path}: "
                    f"{turn_words(value)}): they are turned upright, as viewers and labelling "
                    "tools show them, in training, evaluation and predict; boxes and masks "
                    "must fit the upright picture")


def upright_size(img: Image.Image) -> tuple[int, int]:
    """(width, height) of the upright image, from the header (no pixel decode)."""
    if orientation(img) in (5, 6, 7, 8):
        return img.height, img.width
    return img.width, img.height
