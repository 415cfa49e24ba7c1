"""The spec a run uses: the weights' own spec, overridden only by what the recipe says.

Every override is written into `spec.source`, so a spec always says where its values came from.
"""

from __future__ import annotations

from edgetl.recipe import Recipe
from edgetl.spec import PreprocessSpec


def resolve_spec(recipe: Recipe, weights_spec: PreprocessSpec) -> PreprocessSpec:
    """The weights' spec, overridden only by what the recipe says (recorded in `source`)."""
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
    if overrides:
        spec = spec.with_overrides(**overrides)
        changes.extend(f"{k}={v}" for k, v in overrides.items())
    if changes:
        spec = spec.with_overrides(source=f"{weights_spec.source}; recipe: {', '.join(changes)}")
    return spec
