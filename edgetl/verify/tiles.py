"""Verify's golden test over tiles: for an artifact whose spec has a tile rule, each verified
image is cut by the run's spec and by the artifact's (`artifact.reference.decoded_tiles`, what
training's evaluation and `predict` / `evaluate` cut), the two sets of windows must be equal,
and every tile goes through both preprocessing paths (torchvision and the numpy/PIL
reference) into the golden comparison, as whole images do."""

from __future__ import annotations

from typing import Any

from edgetl.verify.checks import CheckResult


class TileGolden:
    """The windows both sides cut, image by image, and each tile added to the golden test."""

    def __init__(self, art_spec: Any, run_spec: Any, golden: Any) -> None:
        self.art_spec, self.run_spec, self.golden = art_spec, run_spec, golden
        self.images: list[dict[str, Any]] = []

    @property
    def active(self) -> bool:
        return self.art_spec.tile is not None or self.run_spec.tile is not None

    def add(self, path: str, geometry: Any, to_tensor_norm: Any) -> None:
        """Cut `path` by both specs; compare the windows and feed each tile to the golden
        test (`geometry`, `to_tensor_norm`: the run's torchvision halves)."""
        from edgetl.artifact.reference import apply_geometry, decoded_tiles, normalize, to_hwc3

        _, run_windows, run_crops = decoded_tiles(path, self.run_spec)
        _, art_windows, art_crops = decoded_tiles(path, self.art_spec)
        self.images.append({"image": path, "windows": [list(w) for w in art_windows],
                            "same": run_windows == art_windows})
        if run_windows != art_windows:
            return
        for window, run_crop, art_crop in zip(run_windows, run_crops, art_crops, strict=True):
            tv_pixels = geometry(run_crop)
            tv_norm = to_tensor_norm(tv_pixels)
            img, _ = apply_geometry(art_crop, self.art_spec)
            ref_pixels = to_hwc3(img, self.art_spec.color_mode)
            self.golden.add(f"{path} tile {list(window)}", ref_pixels,
                            normalize(ref_pixels, self.art_spec),
                            tv_pixels.permute(1, 2, 0).numpy(), tv_norm.numpy())

    def result(self) -> CheckResult:
        """The `tiles` check: every image cut into the same windows on both sides."""
        differ = [row["image"] for row in self.images if not row["same"]]
        rule = self.art_spec.tile.to_dict() if self.art_spec.tile is not None else None
        windows = sum(len(row["windows"]) for row in self.images)
        summary = (f"{len(self.images)} image(s) cut into the same {windows} windows by the run's "
                   f"and the artifact's tile rule; each tile is in the golden test"
                   if not differ else
                   f"{len(differ)} of {len(self.images)} image(s) are cut into other windows "
                   f"by the artifact's spec than by its run's (first: {differ[0]})")
        return CheckResult("tiles", not differ, summary,
                           {"rule": rule, "run_rule": (self.run_spec.tile.to_dict()
                                                       if self.run_spec.tile else None),
                            "images": self.images})
