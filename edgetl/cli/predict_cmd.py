"""`edgetl predict ARTIFACT IMAGE...` (never imports torch for ONNX artifacts)."""

from __future__ import annotations

from pathlib import Path

import typer

from edgetl.cli.common import DEFAULT_BACKEND, backend_help, console
from edgetl.runtime import ARTIFACT_BACKENDS


def register(app: typer.Typer) -> None:
    @app.command("predict")
    def predict(
        artifact: Path = typer.Argument(..., help="Exported artifact (.onnx, .xml or .engine)."),
        images: list[Path] = typer.Argument(..., help="Image files and folders (searched "
                                            "recursively for image files, or --glob)."),
        glob: str | None = typer.Option(None, "--glob", metavar="PATTERN", help="In folders, "
                                        "the files to predict on, e.g. '*.jpg' or "
                                        "'cam1/*.png' (default: every file with an image "
                                        "extension: .jpg .jpeg .png .bmp .tif .tiff .webp)."),
        top_k: int = typer.Option(3, "--top-k", help="Classification: classes per image."),
        min_score: float = typer.Option(0.3, "--min-score", help="Detection and instance "
                                        "segmentation: the lowest score kept."),
        json_out: str | None = typer.Option(None, "--json", metavar="FILE|-",
                                            help="Write the predictions as JSON to this file "
                                                 "('-': standard output)."),
        draw: Path | None = typer.Option(None, "--draw",
                                         help="Detection and segmentation (semantic, "
                                              "instance): write each image with its boxes, "
                                              "class colours or instances into this folder "
                                              "(as NAME.png)."),
        masks: Path | None = typer.Option(None, "--masks",
                                          help="Semantic and instance segmentation: write each "
                                               "mask as a PNG into this folder (pixel value: "
                                               "class index; instance models: instance id)."),
        tile: bool = typer.Option(False, "--tile", help="Semantic segmentation: predict images "
                                  "larger than the input tile by tile, at their own scale. "
                                  "An artifact whose spec records a tile rule (recipe tile:) "
                                  "always predicts by that rule."),
        overlap: int = typer.Option(32, "--tile-overlap", help="Pixels neighbouring tiles "
                                    "share (--tile)."),
        backend: str | None = typer.Option(None, "--backend",
                                           help=backend_help(ARTIFACT_BACKENDS, DEFAULT_BACKEND)),
        threads: int | None = typer.Option(None, "--threads",
                                           help="onnxruntime intra-op threads."),
        force: bool = typer.Option(False, "--force", help="Run an artifact whose embedded spec "
                                   "was edited after export (with a warning)."),
    ) -> None:
        """Predict with an artifact and its embedded spec only (no torch).

        In each image's own pixels: top-k classes (classification), boxes (detection), class masks
        (semantic segmentation), instances with boxes and masks (instance segmentation)."""
        from edgetl import tasks
        from edgetl.cli.common import check_backend
        from edgetl.errors import UsageError
        from edgetl.interrupt import activity
        from edgetl.io import atomic_write_text, json_text
        from edgetl.predict import predict_artifact
        from edgetl.predict.image_paths import image_files, same_stems
        from edgetl.runtime.backends import default_backend

        backend = check_backend(backend or default_backend(artifact), ARTIFACT_BACKENDS,
                                "predict")
        images = image_files(images, glob)
        clash = same_stems(images) if (draw is not None or masks is not None) else None
        if clash is not None:
            raise UsageError(f"{clash[0]} and {clash[1]} would both be written as "
                             f"{clash[0].stem}.png", "predict them in two runs, or rename one")

        with activity(f"predict with {artifact}", "nothing was printed: run it again"):
            info, results = predict_artifact(artifact, images, top_k=top_k, backend=backend,
                                             threads=threads, min_score=min_score, force=force,
                                             tile=tile, overlap=overlap)
        task = tasks.get(info.task_record.task)
        if (draw is not None and not task.predict_draws) or \
                (masks is not None and not task.predict_masks):
            raise UsageError("--draw applies to detection and segmentation artifacts, --masks "
                             "to segmentation (semantic and instance)")
        if draw is not None or masks is not None:
            task.load("prediction_writer")(artifact, results, draw, masks)
        if json_out is not None:
            text = json_text({"artifact": str(artifact),
                               "predictions": [r.to_dict() for r in results]}, indent=2)
            if json_out == "-":
                typer.echo(text)
                return
            atomic_write_text(json_out, text + "\n")
        task.load("prediction_printer")(artifact, results, top_k)
        if draw is not None:
            console.print(f"drawn: {len(results)} image(s) in {draw}")


def print_shares(artifact: Path, results: list, top_k: int) -> None:
    """A segmenter's `prediction_printer`: each image's class shares of its pixels."""
    from rich.markup import escape
    from rich.table import Table

    table = Table(title=f"predict {artifact.name}")
    table.add_column("image", overflow="fold")
    table.add_column("size")
    table.add_column("class shares of the image's pixels", overflow="fold")
    for r in results:
        shares = ", ".join(f"{name} {share:.1%}" for name, share in r.shares().items()
                           if share > 0)
        height, width = r.mask.shape
        table.add_row(escape(r.image), f"{width}x{height}", escape(shares))
    console.print(table)


def print_classes(artifact: Path, results: list, top_k: int) -> None:
    """A classifier's `prediction_printer`: each image's decision (with an operating point) and
    top-k classes."""
    from rich.table import Table

    table = Table(title=f"predict {artifact.name}")
    table.add_column("image", overflow="fold")
    thresholded = bool(results) and (results[0].decision or {}).get("rule") == "operating_point"
    if thresholded:
        table.add_column(f"decision ({results[0].decision['target']})", overflow="fold")
    for rank in range(1, min(top_k, len(results[0].labels) if results else 1) + 1):
        table.add_column(f"#{rank}")
    for r in results:
        cells = [f"{label} {prob:.1%}"
                 for label, prob in zip(r.labels, r.probabilities, strict=True)]
        if thresholded:
            d = r.decision
            side = ">=" if d["score"] >= d["threshold"] else "<"
            cells.insert(0, f"{d['label']} ({d['score']:.3f} {side} {d['threshold']:.3f})")
        table.add_row(r.image, *cells)
    console.print(table)


def print_detections(artifact: Path, results: list, top_k: int) -> None:
    """A detector's or instance model's `prediction_printer`: each image's boxes."""
    from rich.markup import escape
    from rich.table import Table

    table = Table(title=f"predict {artifact.name}")
    table.add_column("image", overflow="fold")
    table.add_column("detections: label score (x1, y1, x2, y2) in image pixels", overflow="fold")
    for r in results:
        text = "; ".join(f"{d['label']} {d['score']:.2f} ("
                         + ", ".join(f"{v:.0f}" for v in d["box"]) + ")"
                         for d in r.detections) or "none"
        table.add_row(escape(r.image), escape(text))
    console.print(table)
