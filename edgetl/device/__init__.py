"""Proof on the device: a torch-free bundle (`build`) and the runner it carries (`runner`).

`runner` and what it imports at module level are copied into the bundle, so they stay on
numpy, Pillow, the standard library and the artifact's runtime; `build` and `readback` run on
the training machine.
"""
