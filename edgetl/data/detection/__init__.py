"""Detection and instance-segmentation data: readers, sniffing, split files, inspection.

Pure Python with numpy, PIL and pycocotools (no torch). `load_detection` opens a source,
`write_split_file` saves the split a run trained on, `inspect.inspect_detection` reports on a
set, `sniff_task` tells which format and task a path looks like.
"""

from edgetl.data.detection.load import load_detection
from edgetl.data.detection.sniff import Sniffed, sniff_task
from edgetl.data.detection.splitfile import write_split_file

__all__ = ["Sniffed", "load_detection", "sniff_task", "write_split_file"]
