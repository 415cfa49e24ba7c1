"""edgetl: fine-tune compact pretrained vision backbones and ship them to edge devices.

The package is import-light on purpose: nothing here imports torch, so the CLI's help and the
deployment-side `predict` stay fast and torch-free.
"""

__version__ = "0.2.0"
