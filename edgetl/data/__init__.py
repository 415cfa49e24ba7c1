"""Data layer: sources -> samples -> leakage-safe splits.

Import-light on purpose (no torch, no PIL here): `edgetl.data.sources.load_data` opens a data
set, `edgetl.data.split.make_splits` splits it, `edgetl.data.inspect.inspect_data` reports on it.
Only `transforms.py` uses torch, and nothing else in this package imports it.
"""

from edgetl.data.samples import SPLITS, DataSet, DataWarning, Sample

__all__ = ["SPLITS", "DataSet", "DataWarning", "Sample"]
