"""Backbones, offline pretrained weights, their preprocessing specs, and the head swap.

Importing this package is cheap (no torch, no timm): names are loaded from the submodules on
first use, so the CLI can import it at top level.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "HeadConfig": "edgetl.models.head",
    "build_classifier": "edgetl.models.head",
    "build_classifier_skeleton": "edgetl.models.head",
    "head_parameter_prefix": "edgetl.models.head",
    "PACKAGED": "edgetl.models.registry",
    "create_backbone": "edgetl.models.registry",
    "list_backbones": "edgetl.models.registry",
    "pretrained_spec": "edgetl.models.registry",
    "weights_info": "edgetl.models.registry",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'edgetl.models' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)
