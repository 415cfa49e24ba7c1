"""The candidates: backbones whose pretrained weights load offline, at a few input sizes.

Default backbones are the registry's packaged ones whose weight files are installed, plus the
recipe's own architecture and weights when they differ (a timm architecture from the cache or a
weights file). `--backbones` names them instead; a named backbone without offline weights is an
error, a default one is left out with a note.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from edgetl.errors import WeightsError
from edgetl.recipe import Recipe


@dataclass(frozen=True)
class Candidate:
    """One backbone (with its weights source) at one square input size."""

    architecture: str
    weights: str | None
    input_size: int

    @property
    def id(self) -> str:
        return f"{self.architecture}@{self.input_size}"

    @property
    def folder(self) -> str:
        """A file-system-safe name for its folders."""
        return f"{self.architecture}-{self.input_size}".replace("/", "_")

    def recipe(self, base: Recipe, phases: list[dict[str, Any]]) -> Recipe:
        """`base` with this backbone, weights and input size, training these phases; the name
        says which candidate it is (finetune's default run folder is runs/<name>)."""
        data = base.model_dump(mode="json")
        data["name"] = f"{base.name}-{self.architecture}-{self.input_size}"
        # the base's words describe its own backbone; say which candidate this recipe is
        data["description"] = (f"{base.name} with {self.architecture} at {self.input_size} px "
                               "(a candidate of edgetl select)")
        data["model"].update(architecture=self.architecture, weights=self.weights,
                             input_size=self.input_size)
        data["phases"] = phases
        return Recipe.model_validate(data)


def discover(base: Recipe, backbones: tuple[str, ...], sizes: tuple[int, ...]
             ) -> tuple[list[Candidate], list[str]]:
    """The candidates (backbone order, then size) and notes on backbones left out."""
    from edgetl.models.registry import PACKAGED, weights_unavailable

    own = (base.model.architecture, base.model.weights)
    notes: list[str] = []
    chosen: list[tuple[str, str | None]] = []
    if backbones:
        for arch in backbones:
            weights = base.model.weights if arch == own[0] else None
            why = weights_unavailable(arch, weights)
            if why is not None:
                raise WeightsError(f"--backbones {arch}: no offline weights ({why})",
                                   "install them or leave it out of --backbones")
            chosen.append((arch, weights))
    else:
        for name in PACKAGED:
            why = weights_unavailable(name)
            if why is None:
                chosen.append((name, None))
            else:
                notes.append(f"{name} left out: {why}")
        if own not in chosen:
            why = weights_unavailable(*own)
            if why is None:
                chosen.append(own)
            else:
                notes.append(f"the recipe's {own[0]} left out: {why}")
    return [Candidate(arch, weights, size) for arch, weights in chosen for size in sizes], notes
