"""Semantic segmentation data: mask folders, palettes, COCO polygons, split files, inspection.

`load_semantic` opens a source, `read_mask` turns one sample's mask into class indices (the
same code for training, evaluation and predict), `inspect_semantic` reports on a data set,
`print_semantic_report` renders that report, and `write_split_file` saves the split a run used.
"""

from edgetl.data.semantic.decode import MaskError, read_mask
from edgetl.data.semantic.inspect import inspect_semantic
from edgetl.data.semantic.load import SemanticDataSet, load_semantic
from edgetl.data.semantic.record import MaskRecord
from edgetl.data.semantic.render import print_semantic_report
from edgetl.data.semantic.splitfile import read_split_file, write_split_file

__all__ = ["MaskError", "MaskRecord", "SemanticDataSet", "inspect_semantic", "load_semantic",
           "print_semantic_report", "read_mask", "read_split_file", "write_split_file"]
