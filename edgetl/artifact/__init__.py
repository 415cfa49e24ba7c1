"""The artifact contract: what an exported file is and how it is read, without the exporters.

`runtime`, `predict`, `bench`, `verify` and `evaluate` depend on this package, never on
`edgetl.export`, which builds artifacts:
- manifest.py: the metadata embedded in an artifact and the manifest beside it (read and write);
- formats.py: the table of formats (names, file names, precisions, verify's default budgets;
  each row names its builder module as a string, imported only by `edgetl.export`);
- reference.py: the numpy/PIL preprocessing every deployment runs (no torch);
- postprocess.py: an artifact's named outputs -> results in each file's pixels (numpy).

Importing it imports neither torch nor onnxruntime (`predict` relies on that).
"""
