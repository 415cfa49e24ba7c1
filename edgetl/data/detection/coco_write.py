"""COCO JSON written: a data set as one COCO file (the split files of instance-segmentation
runs), which `coco.read_coco` reads back.

Absolute `file_name`s, each image's `split` and `group` as extra fields, masks kept as polygons
or RLE (id-PNG masks become RLE). Split from `coco` (the reader) so each module has one job.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from edgetl.data.detection.geometry import Size, box_area, size_error
from edgetl.data.detection.masks import id_image_rles, mask_area, read_id_png
from edgetl.data.samples import DataSet
from edgetl.data.targets import InstanceMask
from edgetl.io import atomic_write_text, json_text


def coco_document(ds: DataSet) -> dict:
    """The COCO dict of an instance (or detection) data set; see `write_coco`."""
    class_id = {name: i + 1 for i, name in enumerate(ds.classes)}
    images, annotations = [], []
    id_pngs: dict[str, dict[int, dict]] = {}  # RLEs of each id PNG, made in one pass
    for image_id, sample in enumerate(ds.samples, start=1):
        target = sample.target
        size = target.image_size if target is not None and target.image_size else \
            size_error(sample.path)[0] or (0, 0)
        images.append({"id": image_id, "file_name": sample.path, "height": size[0],
                       "width": size[1], "split": sample.split, "group": sample.group})
        if target is None:
            continue
        masks = getattr(target, "masks", (None,) * len(target.boxes))
        for box, label, crowd, mask in zip(target.boxes, target.labels, target.crowd, masks,
                                           strict=True):
            ann = {"id": len(annotations) + 1, "image_id": image_id,
                   "category_id": class_id[label],
                   "bbox": [box[0], box[1], box[2] - box[0], box[3] - box[1]],
                   "area": box_area(box), "iscrowd": int(crowd)}
            if mask is not None:
                ann["segmentation"], ann["area"] = _segmentation(mask, size, id_pngs)
            annotations.append(ann)
    return {"info": {"description": f"edgetl split of {ds.origin}"},
            "images": images, "annotations": annotations,
            "categories": [{"id": i, "name": n} for n, i in class_id.items()]}


def _segmentation(mask: InstanceMask, size: Size, id_pngs: dict[str, dict[int, dict]]
                  ) -> tuple[Any, float]:
    if mask.polygons is not None:
        return [list(p) for p in mask.polygons], float(mask_area(mask, size))
    if mask.rle is not None:
        return mask.rle, float(mask_area(mask, size))
    key = str(mask.id_png)
    if key not in id_pngs:
        id_pngs[key] = id_image_rles(read_id_png(key))
    rle = id_pngs[key][int(mask.id_value)]
    return rle, float(mask_area(InstanceMask(rle=rle), size))


def write_coco(ds: DataSet, path: str | Path) -> Path:
    """Write `ds` as one COCO file that `load_detection(path, 'instance')` reads back (atomic).

    id-PNG masks become RLE (the same pixels); polygons and RLE are written as they are.
    """
    return atomic_write_text(path, json_text(coco_document(ds)) + "\n")
