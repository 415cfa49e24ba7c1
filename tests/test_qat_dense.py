"""Quantisation-aware int8 for the dense tasks through the real CLI: a tiny one-epoch run of
each task, `export --format onnx-int8 --qat` with two QAT steps, the graph's network all int8,
ONNX Runtime runs it, and verify judges it with the task's checks (each takes minutes: marked
slow). The default suite checks the pieces: the distillation terms and which parts of a dense
model get quantisers."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest

pytest.importorskip("nncf")

REPO = Path(__file__).resolve().parents[1]
HEADS = {
    "semantic": ("tf_efficientnet_lite0", "segmenter: {inter_channels: 16}"),
    "detection": ("tf_efficientnet_lite0", "detector: {fpn_channels: 16, head_convs: 1}"),
    "instance": ("mobilenetv2_100", "instance: {fpn_channels: 16, head_convs: 1, "
                 "mask_channels: 8, mask_resolution: 14}"),
}
QUANTIZE = "quantize: {max_steps: 2, batch_size: 4, calibration_images: 8}\n"


def cli(*args: object) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "edgetl.cli.main", *map(str, args)],
                          capture_output=True, text=True, cwd=REPO, timeout=600,
                          env={**os.environ, "COLUMNS": "160"})


def _data(task: str, root: Path) -> Path:
    import detgen
    import instgen
    import seggen

    makers = {"detection": lambda: detgen.make_voc(root, 16, seed=3),
              "semantic": lambda: seggen.make_masks(root, 16, seed=1),
              "instance": lambda: instgen.make_id_masks(root, 16, seed=1)}
    return makers[task]()


def test_kl_to_teacher_is_zero_on_equal_logits_and_averages_over_positions() -> None:
    import torch
    import torch.nn.functional as F

    from edgetl.export.qat_loop import kl_to_teacher

    torch.manual_seed(0)
    teacher = torch.randn(2, 3, 4, 5)
    assert float(kl_to_teacher(teacher, teacher, 2.0)) == pytest.approx(0.0, abs=1e-6)
    student = torch.randn(2, 3, 4, 5)
    # per pixel: the classifier's batch-mean KL over the 2 x 4 x 5 pixels as rows
    def rows(x: torch.Tensor) -> torch.Tensor:
        return x.permute(0, 2, 3, 1).reshape(-1, 3)

    expected = 4.0 * F.kl_div(F.log_softmax(rows(student) / 2, 1),
                              F.softmax(rows(teacher) / 2, 1), reduction="batchmean")
    assert float(kl_to_teacher(student, teacher, 2.0)) == pytest.approx(float(expected), rel=1e-5)


def test_detection_head_distillation_weights_boxes_by_the_teachers_score() -> None:
    import torch

    from edgetl.export.qat_detection import head_distillation

    torch.manual_seed(0)
    teacher = {"cls_logits": torch.full((1, 2, 3), -40.0), "bbox_ctrness": torch.zeros(1, 2, 1),
               "bbox_regression": torch.zeros(1, 2, 4)}
    teacher["cls_logits"][0, 0, 1] = 40.0  # anchor 0 is an object, anchor 1 background
    student = {k: v.clone() for k, v in teacher.items()}
    base = float(head_distillation(student, teacher, 1.0))
    student["bbox_regression"][0, 1] += 5.0  # background anchor's box: does not count
    assert float(head_distillation(student, teacher, 1.0)) == pytest.approx(base, abs=1e-6)
    student["bbox_regression"][0, 0] += 5.0  # the object's box: smooth-L1 (beta 0.1) x 4
    assert float(head_distillation(student, teacher, 1.0)) == pytest.approx(
        base + 4 * (5.0 - 0.05), rel=1e-4)


def test_only_the_network_gets_quantisers() -> None:
    from edgetl import tasks
    from edgetl.export.qat_model import network_parts
    from edgetl.models.detector import DetectorSettings, build_detector
    from edgetl.models.instance import InstanceSettings, build_instance_model

    dense = [t for t in tasks.names() if tasks.get(t).int8_float_postprocess]
    assert dense
    for name in tasks.names():
        if not tasks.get(name).int8_float_postprocess:
            assert network_parts(None, name) == [""]  # the whole model
    detector, _ = build_detector("tf_efficientnet_lite0", 3,
                                 DetectorSettings(fpn_channels=16, head_convs=1), (64, 64))
    instance, _ = build_instance_model("mobilenetv2_100", 3,
                                       InstanceSettings(fpn_channels=16, head_convs=1,
                                                        mask_channels=8), (64, 64))
    for model in (detector, instance):
        parts = network_parts(model, dense[0])
        assert parts[:2] == ["backbone", "head"]
    assert network_parts(instance, dense[0])[2:] == ["roi_heads.mask_head",
                                                     "roi_heads.mask_predictor"]


def test_mask_distillation_pulls_the_student_to_the_float_masks() -> None:
    import torch

    from edgetl.export.qat_instance import mask_distillation, training_rois

    torch.manual_seed(0)
    teacher = torch.randn(3, 2, 7, 7)
    student = teacher.clone().requires_grad_(True)
    mask_distillation(student, teacher, 2.0).backward()
    assert float(student.grad.abs().max()) < 1e-7  # the minimum: the float model's masks
    student = (teacher + 1.0).requires_grad_(True)
    mask_distillation(student, teacher, 2.0).backward()
    # d/dz of T^2 BCE(z/T, sigmoid(t/T)) = T (sigmoid(z/T) - sigmoid(t/T)), averaged
    expected = 2.0 * (torch.sigmoid((teacher + 1) / 2) - torch.sigmoid(teacher / 2)) \
        / teacher.numel()
    assert torch.allclose(student.grad, expected, atol=1e-7)
    targets = [{"boxes": torch.tensor([[0.0, 0, 4, 4], [1, 1, 5, 5], [2, 2, 6, 6]])},
               {"boxes": torch.zeros(0, 4)}, {"boxes": torch.tensor([[3.0, 3, 9, 9]])}]
    rois = training_rois(targets, 2)  # at most two boxes of each image
    assert rois.tolist() == [[0, 0, 0, 4, 4], [0, 1, 1, 5, 5], [2, 3, 3, 9, 9]]


def test_the_mask_branch_is_quantised_through_a_wrapper_and_reloads() -> None:
    """NNCF's hook storage is a child of the module it quantises: a mask head (an
    nn.Sequential) quantised bare runs it as a layer; wrapped, it trains and reloads."""
    import torch
    from nncf.torch.quantization.layers import BaseQuantizer

    from edgetl.export.qat_model import (
        deployed_shape,
        insert_quantisers,
        load_qat_model,
        network_parts,
        quantiser_config,
    )
    from edgetl.models.deployable import instance_deployable
    from edgetl.models.instance import InstanceSettings, build_instance_model

    def build() -> torch.nn.Module:
        torch.manual_seed(0)
        settings = InstanceSettings(fpn_channels=16, head_convs=1, mask_channels=8)
        return build_instance_model("mobilenetv2_100", 2, settings, (64, 64))[0]

    example = torch.zeros(1, 3, 64, 64)
    model = build()
    deployed_shape(model, example)
    parts = network_parts(model, "instance")
    network = instance_deployable(model, raw=False)[0]
    calibration = [torch.rand(1, 3, 64, 64) for _ in range(4)]
    model = insert_quantisers(model, calibration, 4, parts, network)
    for name in parts:
        assert any(isinstance(m, BaseQuantizer) for m in model.get_submodule(name).modules())
    assert not any(isinstance(m, BaseQuantizer)
                   for m in model.roi_heads.mask_roi_pool.modules())
    rois = torch.tensor([[0.0, 4, 4, 40, 40], [1, 10, 8, 60, 50]])
    x = torch.rand(2, 3, 64, 64)
    model.train()
    _, features = model.head_outputs(x)
    logits = model.mask_logits(features, rois)
    assert logits.shape == (2, 2, 14, 14)
    logits.sum().backward()
    assert model.roi_heads.mask_head.part[0][0].weight.grad.abs().sum() > 0
    model.eval()
    with torch.no_grad():
        expected = model.mask_logits(model.head_outputs(x)[1], rois)
    config = json.loads(json.dumps(quantiser_config(model, parts)))
    reloaded = load_qat_model(build(), example, config, model.state_dict())
    with torch.no_grad():
        got = reloaded.mask_logits(reloaded.head_outputs(x)[1], rois)
    assert torch.allclose(got, expected, atol=1e-6)


def _qat_export(task: str, root: Path) -> dict:
    arch, head = HEADS[task]
    data = _data(task, root / "data")
    (root / "recipe.yaml").write_text(
        f"name: qat-{task}\ntask: {task}\n"
        "data: {val_fraction: 0.25, test_fraction: 0.25}\n"
        f"model:\n  architecture: {arch}\n  input_size: 64\n  {head}\n"
        "train: {batch_size: 8, eval_batch_size: 8, num_threads: 2}\n"
        "phases:\n  - {name: A, epochs: 1, unfreeze: head, lr: 5.0e-3}\n" + QUANTIZE)
    done = cli("finetune", root / "recipe.yaml", "--data", data, "--out", root / "run")
    assert done.returncode == 0, done.stderr
    run, out = root / "run", root / "m.int8.onnx"
    first = cli("export", run, "--format", "onnx-int8", "--qat", "--out", out)
    assert first.returncode == 0, first.stderr
    manifest = json.loads(Path(str(out) + ".manifest.json").read_text())
    return {"run": run, "out": out, "manifest": manifest}


def _check_graph(export: dict) -> dict:
    """The checks every task shares; returns the report's quantisation record."""
    from edgetl.export.onnx_int8_qat import compute_node_counts

    run, out = export["run"], export["out"]
    quant = export["manifest"]["details"]["quantization"]
    assert quant["network_compute_nodes"] > 0 and quant["float_compute_nodes"] == 0
    assert quant["int8_compute_nodes"] == quant["network_compute_nodes"]
    assert quant["float_nodes"]["nodes"] == [] and quant["weight_quantisers_folded"] > 0
    qat = json.loads((run / "qat" / "checkpoint.json").read_text())["quantisation_aware"]
    assert qat["steps"] == 2 and qat["ended_by"] == "max_steps"
    lines = [json.loads(x) for x in (run / "qat" / "metrics.jsonl").read_text().splitlines()]
    assert [(x["phase"], x["epoch"], x["steps"]) for x in lines] == [("QAT", 0, 0),
                                                                   ("QAT", 1, 2)]
    assert np.isfinite(lines[1]["train_loss"])
    assert quant["quantisation_aware"]["validation_before"] == qat["validation_before"]
    graph = onnx.load(str(out))
    assert compute_node_counts(graph, set())["int8_compute_nodes"] >= \
        quant["int8_compute_nodes"]
    session = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    feed = session.get_inputs()[0]
    shape = [1 if not isinstance(d, int) else d for d in feed.shape]
    dtype = np.uint8 if "uint8" in feed.type else np.float32
    outputs = session.run(None, {feed.name: np.zeros(shape, dtype)})
    assert outputs and all(o is not None for o in outputs)
    return quant


def _verify(export: dict, tmp_path: Path, gates: tuple[str, ...]) -> dict:
    report_path = tmp_path / "v.json"
    done = cli("verify", export["out"], "--against", export["run"], "--json", report_path)
    assert done.returncode in (0, 1), done.stderr  # 1: a gate the one-epoch model misses
    report = json.loads(report_path.read_text())
    checks = {c["name"]: c for c in report["checks"]}
    assert set(gates) <= set(checks)
    return checks


@pytest.mark.slow
def test_semantic_qat_export_is_all_int8_and_verifies(tmp_path: Path) -> None:
    export = _qat_export("semantic", tmp_path)
    quant = _check_graph(export)
    lines = [json.loads(x) for x in
             (export["run"] / "qat" / "metrics.jsonl").read_text().splitlines()]
    assert lines[0]["images"] == 4 and 0.0 <= lines[1]["val_pixel_agreement"] <= 1.0
    assert 0.0 <= lines[1]["val_miou"] <= 1.0
    assert quant["network_compute_nodes"] >= 50  # the encoder's and LR-ASPP's convolutions
    checks = _verify(export, tmp_path, ("parity", "miou"))
    assert checks["parity"]["details"]


@pytest.mark.slow
def test_detection_qat_export_quantises_the_network_only_and_verifies(tmp_path: Path) -> None:
    export = _qat_export("detection", tmp_path)
    quant = _check_graph(export)
    qat = quant["quantisation_aware"]
    assert qat["quantised_parts"] == ["backbone", "head"]
    assert set(qat["validation_before"]) == {"val_map", "val_map50", "val_loss", "images"}
    # decoding and NMS stay float: no quantiser between the head's outputs and the boxes
    graph = onnx.load(str(export["out"]))
    assert any(n.op_type == "NonMaxSuppression" for n in graph.graph.node)
    from edgetl.export.int8_graph import postprocess_nodes

    post = set(postprocess_nodes(graph.graph.node, "detection"))
    assert post and not [n for n in graph.graph.node if n.name in post
                         and n.op_type in ("QuantizeLinear", "DequantizeLinear")]
    checks = _verify(export, tmp_path, ("parity", "map"))
    assert checks["parity"]["details"]



@pytest.mark.slow
def test_instance_qat_export_quantises_the_network_only_and_verifies(tmp_path: Path) -> None:
    export = _qat_export("instance", tmp_path)
    quant = _check_graph(export)
    qat = quant["quantisation_aware"]
    assert qat["quantised_parts"] == ["backbone", "head", "roi_heads.mask_head",
                                      "roi_heads.mask_predictor"]
    assert set(qat["validation_before"]) == {"val_mask_map", "val_map", "val_loss", "images"}
    assert qat["validation_before"]["images"] == 4
    assert 0.0 <= qat["validation_after"]["val_mask_map"] <= 1.0
    graph = onnx.load(str(export["out"]))
    nodes = graph.graph.node
    assert any(n.op_type == "NonMaxSuppression" for n in nodes)
    assert any(n.op_type == "RoiAlign" for n in nodes)
    from edgetl.export.int8_graph import postprocess_nodes

    # decoding, NMS and RoI pooling stay float; the mask head's convolutions run int8
    post = set(postprocess_nodes(nodes, "instance"))
    assert post and not [n for n in nodes if n.name in post
                         and n.op_type in ("QuantizeLinear", "DequantizeLinear")]
    assert not [n for n in nodes if n.op_type == "RoiAlign" and n.name not in post]
    mask_convs = [n for n in nodes if n.op_type in ("Conv", "ConvTranspose")
                  and ("mask_head" in n.name or "mask_predictor" in n.name)]
    assert len(mask_convs) >= 3
    producers = {out: n.op_type for n in nodes for out in n.output}
    for node in mask_convs:  # input and weight dequantised (ConvTranspose is not counted)
        assert [producers.get(i) for i in node.input[:2]] == ["DequantizeLinear"] * 2, node.name
    checks = _verify(export, tmp_path, ("parity", "mask_parity", "mask_map"))
    assert checks["parity"]["details"] and checks["mask_parity"]["details"]
