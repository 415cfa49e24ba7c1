"""edgetl's metadata in an OpenVINO IR: written into the model's rt_info, read from the .xml.

The exporter puts each embedded key (the same `META_*` keys as ONNX `metadata_props`) under
`rt_info["edgetl"][key]`; OpenVINO serialises them as `<rt_info><edgetl><KEY value="..."/>`
at the end of the .xml. Reading parses that XML with the standard library, so the artifact
layer needs neither openvino nor the .bin to say what an IR is (predict and verify trust it).
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from edgetl.errors import ArtifactError

RT_INFO_ROOT = "edgetl"  # the rt_info section edgetl's keys live in


def weights_path(xml: str | Path) -> Path:
    """The .bin an IR's .xml reads its weights from (same stem, beside it)."""
    return Path(xml).with_suffix(".bin")


def set_ir_metadata(model: Any, metadata: Mapping[str, str]) -> None:
    """Put every key/value into an `openvino.Model`'s rt_info under `edgetl`."""
    for key, value in metadata.items():
        model.set_rt_info(str(value), [RT_INFO_ROOT, key])


def ir_metadata(path: str | Path) -> dict[str, str]:
    """The `edgetl` section of an IR's rt_info ({} when it has none)."""
    try:
        root = ET.parse(path).getroot()
    except (ET.ParseError, OSError) as exc:
        raise ArtifactError(f"{path} is not a readable OpenVINO IR: {exc}") from exc
    if root.tag != "net":
        raise ArtifactError(f"{path} is not an OpenVINO IR (its root is <{root.tag}>)")
    section = root.find(f"rt_info/{RT_INFO_ROOT}")
    if section is None:
        return {}
    return {child.tag: child.get("value", "") for child in section}
