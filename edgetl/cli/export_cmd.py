"""`edgetl export RUN --format F`."""

from __future__ import annotations

from pathlib import Path

import typer

from edgetl.cli.common import console
from edgetl.runfolder import BEST


def _format_help() -> str:
    from edgetl.artifact.formats import FORMATS

    return "; ".join(f"{f.name}: {f.description}" for f in FORMATS.values()) + "."


_FORMAT_HELP = _format_help()
_ROUND_WORDS = {"all-int8": "compute nodes", "sensitivity": "most sensitive compute nodes",
                "prefix": "leading compute nodes", "qat": "compute nodes (quantisation-aware)"}


def _quantised_words(quant: dict) -> str:
    """What the int8 record counts: QDQ nodes (onnx-int8) or FakeQuantize nodes (NNCF)."""
    if "quantize_linear_nodes" in quant:
        return (f"{quant['quantize_linear_nodes']} QuantizeLinear, "
                f"{quant['dequantize_linear_nodes']} DequantizeLinear, "
                f"{quant['int8_initializers']} int8 initialisers")
    return (f"{quant['fake_quantize_nodes']} FakeQuantize, "
            f"{quant['quantised_compute_nodes']} compute nodes int8, "
            f"{quant['float_compute_nodes']} float")


def register(app: typer.Typer) -> None:
    @app.command("export")
    def export(
        run: Path = typer.Argument(..., help="Run folder written by finetune."),
        fmt: str = typer.Option("onnx", "--format", help=_FORMAT_HELP),
        out: Path | None = typer.Option(None, "--out", help="Artifact path, or a folder for "
                                        "it (default RUN/export/)."),
        embed_preprocessing: bool = typer.Option(
            False, "--embed-preprocessing",
            help="The graph takes uint8 NHWC images at the model's input size and normalises "
                 "inside: classification images resized and centre-cropped to it, detection "
                 "and segmentation (semantic, instance) images letterboxed to it."),
        calibration_images: int = typer.Option(
            256, "--calibration-images", help="int8: training images to calibrate on."),
        calibration_method: str = typer.Option(
            "minmax", "--calibration-method",
            help="int8 (ONNX): minmax, entropy, percentile, or auto (each method quantises, "
                 "the validation judge picks; ties go to minmax)."),
        opset: int = typer.Option(17, "--opset", help="ONNX opset (17 or newer)."),
        max_batch: int = typer.Option(32, "--max-batch",
                                      help="TensorRT: largest batch of the optimisation profile."),
        checkpoint: str = typer.Option(BEST, "--checkpoint", help="best or last."),
        raw: bool = typer.Option(False, "--raw", help="The head's raw outputs, without the "
                                 "post-processing the graph carries by default: detection "
                                 "without box decoding and NMS, semantic segmentation logits "
                                 "instead of the class map. Classification (its logits are "
                                 "raw already) and instance segmentation (masks need their "
                                 "boxes) refuse it."),
        operating_point: str | None = typer.Option(
            None, "--operating-point",
            help="Classification: CLASS:recall=R or CLASS:precision=P; the threshold is chosen "
                 "on the run's validation split and recorded in the artifact, which predict, "
                 "evaluate and verify then apply (default: the recipe's operating_point; "
                 "'none': argmax)."),
        qat: bool | None = typer.Option(
            None, "--qat/--no-qat",
            help="onnx-int8: --qat trains the int8 graph itself (quantisation-aware, from the "
                 "best checkpoint, distilled from the float model; kept in RUN/qat/ and reused) "
                 "and exports it with nothing in the network kept float; --no-qat never does. "
                 "Default: the recipe's quantize: section decides (QAT when post-training int8 "
                 "keeps more than its max_float_nodes float)."),
        force: bool = typer.Option(
            False, "--force", help="Replace another artifact (or its manifest) at the target; "
            "without it export refuses to, unless it is the same artifact made again."),
    ) -> None:
        """Export a run as an ONNX or TensorRT artifact that carries its preprocessing.

        A checkpoint of any task (classification, detection, semantic or instance segmentation)
        becomes an artifact with its preprocessing spec and task record embedded: ONNX
        fp32/fp16/int8 or a TensorRT engine; int8 keeps the run's accuracy, mAP, mIoU or mask mAP
        within verify's budget."""
        from edgetl.artifact.manifest import manifest_path
        from edgetl.export import ExportOptions, export_run, get_format, resolve_target
        from edgetl.export.int8_method import choice_words
        from edgetl.interrupt import activity
        from edgetl.io import outputs_together, require_writable

        options = ExportOptions(
            opset=opset, embed_preprocessing=embed_preprocessing,
            calibration_images=calibration_images, calibration_method=calibration_method,  # type: ignore[arg-type]
            max_batch=max_batch, checkpoint=checkpoint, raw=raw, operating_point=operating_point,
            qat=qat,
        )
        options.validate()
        target = resolve_target(run, get_format(fmt), out, embed_preprocessing)
        require_writable(target, "--out")
        _check_replace(run, fmt, target, manifest_path(target), checkpoint, embed_preprocessing,
                       force)
        with activity(f"export of {run} as {fmt}",
                      f"no artifact or manifest was left at {target}: run the same command "
                      "again"), outputs_together(target, manifest_path(target)):
            console.print(f"exporting {run} ({checkpoint} checkpoint) as {fmt} -> {target}",
                          highlight=False)
            result = export_run(run, fmt, out, options)
        console.print(f"[green]exported[/green] {result.format} ({result.precision}) -> "
                      f"{result.path} ({result.size_bytes / 1e6:.2f} MB)")
        console.print(f"manifest: {result.manifest}")
        _print_decision(result.path)
        quant = result.details.get("quantization")
        if quant:
            console.print(f"quantised: {_quantised_words(quant)}; calibrated on "
                          f"{quant['calibration_images']} training images "
                          f"({choice_words(quant)})",
                          highlight=False)
            search = quant.get("accuracy_search") or {}
            ranking = search.get("sensitivity")
            if ranking:
                console.print(f"  sensitivity: the int8 graph with each of {ranking['nodes']} "
                              f"compute nodes left float32, on {ranking['images']} validation "
                              f"images ({ranking['seconds']:.0f} s)", highlight=False)
            for row in search.get("rounds", []):
                console.print(
                    f"  {row['float_compute_nodes']:>2} {_ROUND_WORDS[row['strategy']]} kept "
                    f"float32 ({row['size_bytes'] / 1e6:.2f} MB): {row['text']}",
                    highlight=False)
            _print_qat(quant)
            for node in (quant.get("float_nodes") or {}).get("nodes", [])[:16]:
                console.print(f"  float32: {node['node']}: {node['why']}", highlight=False)
            if search and not search.get("met"):
                console.print(f"[yellow]warning[/]: the int8 graph missed its search target "
                              f"({search.get('judged_on')}); verify will judge it")
        io = result.details.get("io")
        if io:
            outputs = ", ".join(f"{o['name']} {o['dtype']} {o['shape']}" for o in io["outputs"])
            console.print(f"input {io['input']['name']} {io['input']['dtype']} "
                          f"{io['input']['shape']}; outputs {outputs}; compute "
                          f"{result.details.get('compute_dtype')}")


def _print_qat(quant: dict) -> None:
    """What post-training int8 kept float, and what the quantisation-aware phase did."""
    if "network_compute_nodes" in quant:
        console.print(f"  network compute nodes: {quant['int8_compute_nodes']} int8, "
                      f"{quant['float_compute_nodes']} float32", highlight=False)
    before, qat = quant.get("post_training"), quant.get("quantisation_aware")
    if before:
        console.print(f"  post-training int8 kept {before['float_compute_nodes']} compute nodes "
                      f"float32 (the recipe allows {before['allowed_float_nodes']}): "
                      "quantisation-aware training took over", highlight=False)
    if not qat:
        return
    start, end = qat["validation_before"], qat["validation_after"]

    def figures(row: dict) -> str:
        if row.get("val_accuracy") is not None:
            return (f"val accuracy {row['val_accuracy']:.2%}, agreement with float32 "
                    f"{row['val_agreement']:.2%}")
        shown = [f"{key.removeprefix('val_').replace('_', ' ')} {value:.4f}"
                 for key, value in row.items() if key.startswith("val_") and value is not None]
        return "val " + ", ".join(shown) if shown else "no validation split"

    how = ("reused" if qat["reused"] else
           f"{qat['steps']} steps ({qat['epochs']:.2f} epochs, {qat['ended_by']}) in "
           f"{qat['seconds'] / 60:.1f} min")
    console.print(f"  QAT checkpoint {qat['checkpoint']} ({how}): before training "
                  f"{figures(start)}; kept (epoch {qat['chosen_epoch']}) {figures(end)}",
                  highlight=False)


def _check_replace(run: Path, fmt: str, target: Path, manifest: Path, checkpoint: str,
                   embed: bool, force: bool) -> None:
    """Refuse to write over another artifact (edgetl.export.replace), before any work."""
    from edgetl.checkpoint import read_checkpoint_info
    from edgetl.export.replace import check_replace, existing_artifact

    if existing_artifact(target, manifest) is None or force:
        return
    info = read_checkpoint_info(run, checkpoint)
    check_replace(target, manifest, run, fmt, checkpoint, embed, info.weights_sha256(), force)


def _print_decision(artifact: Path) -> None:
    """The operating point the artifact records, and what it gave on validation."""
    from edgetl.artifact.manifest import read_artifact

    point = read_artifact(artifact).decision
    if point is None:
        return
    seen = point.chosen_on

    def share(key: str) -> str:
        value = seen.get(key)
        return "-" if value is None else f"{value:.1%}"

    console.print(
        f"operating point {point.target.text()}: threshold {point.threshold:.4f} on "
        f"P({point.class_name}), chosen on {seen.get('images')} validation images (recall "
        f"{share('recall')}, precision {share('precision')}, false-alarm rate "
        f"{share('false_alarm_rate')}); predict, evaluate and verify {point.rule}",
        highlight=False)
