"""The spec a run uses: the weights' own spec, overridden only by what the recipe says.

Every override is written into `spec.source`, so a spec always says where its values came from.
"""

from __future__ import annotations

from edgetl import tasks
from edgetl.recipe import Recipe
from edgetl.spec import PreprocessSpec

DENSE_INPUT_SIZE = 320  # the dense tasks' square input when the recipe names none


def training_spec(recipe: Recipe, weights_spec: PreprocessSpec) -> PreprocessSpec:
    """The weights' spec, overridden only by what the recipe says (recorded in `source`).

    Classification keeps the weights' resize/crop rule (at the recipe's input size). The dense
    tasks keep the weights' colour, interpolation and normalisation but fit the whole image into
    a fixed square input (`model.input_size`, default 320) by letterbox (or stretch)."""
    if tasks.get(recipe.task).dense:
        return _dense_spec(recipe, weights_spec)
    spec = weights_spec
    changes: list[str] = []
    if recipe.model.input_size and recipe.model.input_size != spec.input_size[0]:
        spec = spec.at_size(recipe.model.input_size)
        changes.append(f"input_size={recipe.model.input_size}")
    overrides = {k: v for k, v in recipe.preprocess.model_dump().items() if v is not None}
    crop_pct = overrides.pop("crop_pct", None)
    if crop_pct is not None:
        spec = spec.with_crop_pct(crop_pct)
        changes.append(f"crop_pct={crop_pct}")
    geometry, fill = overrides.pop("geometry", None), overrides.pop("fill", None)
    if geometry is not None:  # no centre crop: the whole image, letterboxed or stretched
        from edgetl.spec import DEFAULT_LETTERBOX_FILL

        spec = spec.for_dense(spec.input_size, geometry, tuple(fill or DEFAULT_LETTERBOX_FILL))
        changes.append(f"geometry={geometry}")
    elif fill is not None:
        from edgetl.errors import RecipeError

        raise RecipeError("preprocess.fill pads a letterbox: set preprocess.geometry: letterbox")
    if overrides:
        spec = spec.with_overrides(**overrides)
        changes.extend(f"{k}={v}" for k, v in overrides.items())
    if changes:
        spec = spec.with_overrides(source=f"{weights_spec.source}; recipe: {', '.join(changes)}")
    return spec


def _dense_spec(recipe: Recipe, weights_spec: PreprocessSpec) -> PreprocessSpec:
    from edgetl.errors import RecipeError
    from edgetl.spec import DEFAULT_LETTERBOX_FILL

    overrides = {k: v for k, v in recipe.preprocess.model_dump().items() if v is not None}
    if "crop_pct" in overrides:
        raise RecipeError(f"preprocess.crop_pct crops the image: {recipe.task} fits the whole "
                          "image instead", "remove crop_pct (preprocess.geometry: letterbox or "
                          "stretch)")
    size = recipe.model.input_size or DENSE_INPUT_SIZE
    geometry = overrides.pop("geometry", "letterbox")
    fill = tuple(overrides.pop("fill", DEFAULT_LETTERBOX_FILL))
    spec = weights_spec.for_dense((size, size), geometry, fill)
    changes = [f"input_size={size}", f"geometry={geometry}"]
    if geometry == "letterbox":
        changes.append(f"fill={list(fill)}")
    if overrides:
        spec = spec.with_overrides(**overrides)
        changes.extend(f"{k}={v}" for k, v in overrides.items())
    return spec.with_overrides(source=f"{weights_spec.source}; recipe: {', '.join(changes)}")
