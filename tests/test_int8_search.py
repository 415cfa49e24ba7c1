"""The int8 search's stopping rule: the agreement's one-sided lower confidence bound."""

from __future__ import annotations

import math

import pytest

from edgetl.export.int8_judges import agreement_lower_bound


def wilson_low(agreed: int, n: int, z: float) -> float:
    """The Wilson score interval's lower end, written out (Wilson 1927)."""
    p = agreed / n
    centre = p + z * z / (2 * n)
    spread = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    return (centre - spread) / (1 + z * z / n)


@pytest.mark.parametrize(("agreed", "n"), [(393, 393), (390, 393), (297, 300), (50, 64)])
def test_lower_bound_is_wilsons_one_sided_95(agreed: int, n: int) -> None:
    assert agreement_lower_bound(agreed, n) == pytest.approx(wilson_low(agreed, n, 1.6448536),
                                                             abs=1e-6)


def test_the_case_that_a_fixed_margin_let_through() -> None:
    """99.0% of 300 validation images (3 flips) cleared 'budget + 1 point' but was 97.26% on the
    test split. Its lower bound is below the 98% budget, so the search goes on; 1 flip in 393
    clears it, and fewer images mean a wider interval."""
    assert agreement_lower_bound(297, 300) < 0.98
    assert agreement_lower_bound(392, 393) > 0.98
    assert agreement_lower_bound(99, 100) < agreement_lower_bound(990, 1000) < 0.99


def test_small_validation_splits_cannot_clear_the_bound() -> None:
    """Why the search falls back to the measured agreement below ~130 images (98% budget)."""
    assert agreement_lower_bound(120, 120) < 0.98 <= agreement_lower_bound(140, 140)


# --------------------------------------------------------------------------- sensitivity
@pytest.fixture(scope="module")
def tiny_graph(tmp_path_factory: pytest.TempPathFactory) -> dict:
    import onnx
    import torch
    from int8gen import tiny_inputs, tiny_int8_classifier

    from edgetl.export.int8_quantise import Quantiser
    from edgetl.export.onnx_fp32 import trace_to_onnx
    from edgetl.export.onnx_int8 import _pre_process

    work = tmp_path_factory.mktemp("tiny_int8")
    fp32 = trace_to_onnx(tiny_int8_classifier(), torch.zeros(1, 3, 16, 16), 17)
    fp32_path, pre_path = work / "fp32.onnx", work / "pre.onnx"
    onnx.save(fp32, str(fp32_path))
    _pre_process(fp32_path, pre_path)
    calibration, validation = tiny_inputs()
    graph = onnx.load(str(pre_path)).graph
    return {"work": work, "fp32": fp32_path, "pre": pre_path, "validation": validation,
            "calibration": calibration, "graph": graph,
            "quantiser": Quantiser(pre_path, calibration, "minmax", work)}


def test_calibration_cache_gives_the_same_graph(tiny_graph: dict) -> None:
    """Reusing the calibration ranges must not change what the quantiser writes."""
    import onnx

    from edgetl.export.int8_quantise import Quantiser, quantise, quiet

    work = tiny_graph["work"]
    with quiet():
        quantise(tiny_graph["pre"], work / "fresh.onnx", tiny_graph["calibration"], "minmax",
                 ["/c3/Conv"])
    cached = Quantiser(tiny_graph["pre"], tiny_graph["calibration"], "minmax", work / "c")
    (work / "c").mkdir()
    assert cached.reuses_calibration
    cached(work / "first.onnx")  # writes the cache
    cached(work / "second.onnx", ["/c3/Conv"])  # reads it
    fresh, second = onnx.load(str(work / "fresh.onnx")), onnx.load(str(work / "second.onnx"))
    assert fresh.graph.SerializeToString() == second.graph.SerializeToString()


def _sensitivity(tiny_graph: dict):
    from edgetl.export.int8_sensitivity import (
        Sensitivity,
        compute_neighbours,
        file_logits,
        run_logits,
        subset,
    )

    graph, quantiser = tiny_graph["graph"], tiny_graph["quantiser"]
    compute = [(n.name, n.op_type) for n in graph.node if n.op_type in ("Conv", "Gemm")]
    batches = subset(tiny_graph["validation"], 64)
    return Sensitivity(compute, compute_neighbours(graph, [name for name, _ in compute]),
                       file_logits(lambda names, out: quantiser(out, names), batches,
                                   tiny_graph["work"]),
                       run_logits(tiny_graph["fp32"], batches))


def test_neighbours_skip_what_computes_nothing(tiny_graph: dict) -> None:
    from edgetl.export.int8_sensitivity import compute_neighbours

    graph = tiny_graph["graph"]
    compute = [n.name for n in graph.node if n.op_type in ("Conv", "Gemm")]
    assert compute == ["/c1/Conv", "/c2/Conv", "/c3/Conv", "/c4/Conv", "/fc/Gemm"]
    near = compute_neighbours(graph, compute)  # through Relu, ReduceMean
    assert near["/c3/Conv"] == {"/c2/Conv", "/c4/Conv"}
    assert near["/c1/Conv"] == {"/c2/Conv"} and near["/fc/Gemm"] == {"/c4/Conv"}


def test_ranking_puts_the_damaged_layer_first(tiny_graph: dict) -> None:
    chooser = _sensitivity(tiny_graph)
    ranking = chooser.rank()
    first, second = ranking.layers[:2]
    assert first.node == "/c3/Conv"
    assert first.gain > 10 * second.gain and first.relative > 0.5
    assert first.flipped < first.flipped_before
    assert ranking.images == 64 and len(ranking.layers) == 5
    assert ranking.helpful[0] is first
    assert "rank 1 of 5" in first.why(1, 5)
    # the next choice is measured with c3 already float: its neighbours are in the pool
    (second_choice,) = chooser.add([first], 1) or (None,)
    if second_choice is not None:
        assert second_choice.given == ("/c3/Conv",) and second_choice.gain > 0
    step = chooser.steps[-1]
    assert step["given_float"] == ["/c3/Conv"] and step["measured"] == 4


def test_search_keeps_float_only_the_damaged_layer(tiny_graph: dict) -> None:
    """Everything int8 misses; the ranking's first node alone meets the target, although it
    is the third convolution (a prefix search would keep the two before it float too)."""
    from edgetl.export.int8_judges import TopOneJudge
    from edgetl.export.int8_search import search

    quantiser = tiny_graph["quantiser"]
    graph = tiny_graph["graph"]
    compute = [n for n in graph.node if n.op_type in ("Conv", "Gemm", "MatMul")]
    judge = TopOneJudge.on_inputs(tiny_graph["fp32"], tiny_graph["validation"], 0.95,
                                  by_bound=False)
    found = search(lambda out, exclude: quantiser(out, exclude), tiny_graph["work"],
                   [n.name for n in graph.node], [n.name for n in compute], [], judge,
                   lambda: _sensitivity(tiny_graph))
    assert found.met and found.strategy == "sensitivity"
    assert [n["node"] for n in found.float_nodes] == ["/c3/Conv"]
    assert found.exclude == ["/c3/Conv"]
    everything, kept = found.rounds
    assert everything["strategy"] == "all-int8" and everything["val_agreement"] < 0.95
    assert kept["val_agreement"] >= 0.95 and kept["float_nodes"] == ["/c3/Conv"]
    assert found.ranking["layers"][0]["node"] == "/c3/Conv"


@pytest.mark.slow
def test_export_ranks_then_falls_back_to_the_prefix(fixture_run, tmp_path) -> None:
    """A target nothing can meet runs every round through the real export: all int8, the
    ranking's 1..16 most damaging nodes, then the leading-node prefix, each recorded."""
    import json

    from edgetl.artifact.manifest import manifest_path
    from edgetl.export import ExportOptions, export_run
    from edgetl.export.int8_search import SENSITIVE_STEPS

    path = export_run(fixture_run, "onnx-int8", tmp_path / "m.onnx",
                      ExportOptions(int8_target_agreement=1.01)).path
    quant = json.loads(manifest_path(path).read_text())["details"]["quantization"]
    search = quant["accuracy_search"]
    strategies = [row["strategy"] for row in search["rounds"]]
    chosen = [row["float_nodes"] for row in search["rounds"] if row["strategy"] ==
              "sensitivity"]
    assert chosen, "no node's float version helped: the ranking was not exercised"
    assert strategies[0] == "all-int8"
    assert strategies[1:1 + len(chosen)] == ["sensitivity"] * len(chosen)
    assert set(strategies[1 + len(chosen):]) == {"prefix"}
    # greedy: each round keeps the previous round's nodes and adds to them
    for before, after in zip(chosen, chosen[1:], strict=False):
        assert after[:len(before)] == before and len(after) > len(before)
    assert len(chosen[-1]) <= max(SENSITIVE_STEPS)
    ranking = search["sensitivity"]
    assert ranking["nodes"] >= 40 and chosen[0] == [ranking["layers"][0]["node"]]
    assert not search["met"] and quant["float_nodes"]["strategy"] == "prefix"
    assert f"after the sensitivity ranking's top {len(chosen[-1])} missed" in quant[
        "float_nodes"]["nodes"][0]["why"]
