"""ONNX export: same logits and entities as PyTorch, a complete reloadable model directory."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from ndogo.compress.export import export_onnx
from ndogo.data.corpus import load_corpus
from ndogo.evaluate import predict_tags
from ndogo.models.loading import ModelError
from ndogo.models.runner import load_runner


@pytest.fixture(scope="module")
def exported(tiny_model: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return export_onnx(tiny_model, tmp_path_factory.mktemp("onnx") / "model")


@pytest.mark.parametrize("shape", [(1, 5), (4, 23), (2, 64)])
def test_onnx_gives_torch_logits(exported: Path, tiny_model: Path, shape: tuple[int, int]) -> None:
    torch_runner, onnx_runner = load_runner(tiny_model), load_runner(exported)
    assert onnx_runner.kind == "onnx"
    gen = torch.Generator().manual_seed(shape[1])
    ids = torch.randint(1000, 30000, shape, generator=gen)
    mask = torch.ones_like(ids)
    if shape[0] > 1:  # a padded row checks the attention mask made it into the graph
        ids[-1, shape[1] // 2 :], mask[-1, shape[1] // 2 :] = 0, 0
    batch = {"input_ids": ids, "attention_mask": mask}
    with torch.inference_mode():
        ref = torch_runner.forward(batch)
    out = onnx_runner.forward(batch)
    assert out.shape == ref.shape
    assert torch.allclose(out[mask.bool()], ref[mask.bool()], atol=1e-4)


def test_onnx_predicts_the_same_entities(exported: Path, tiny_model: Path, tiny_corpus: Path) -> None:
    words = [s.tokens for s in load_corpus(str(tiny_corpus), "hau", ("test",)).splits["test"]]
    torch_tags, _ = predict_tags(load_runner(tiny_model), words, batch_size=4)
    onnx_tags, _ = predict_tags(load_runner(exported), words, batch_size=4)
    assert onnx_tags == torch_tags


def test_export_records_its_check_and_fusions(exported: Path, tiny_model: Path) -> None:
    meta = json.loads((exported / "ndogo.json").read_text())
    assert meta["kind"] == "onnx" and meta["source_kind"] == "hf"
    assert meta["export_max_abs_diff"] < 1e-3
    # BERT attention, layer norms and GELU fused by onnxruntime.transformers (2 layers).
    assert meta["fused_ops"].get("Attention") == 2
    runner = load_runner(exported)
    assert runner.params() == load_runner(tiny_model).params()
    assert runner.labels == load_runner(tiny_model).labels


def test_unoptimized_export_also_matches(tiny_model: Path, tmp_path: Path) -> None:
    out = export_onnx(tiny_model, tmp_path / "plain", optimize=False)
    meta = json.loads((out / "ndogo.json").read_text())
    assert meta["optimized"] is False and meta["fused_ops"] == {}
    assert meta["export_max_abs_diff"] < 1e-4


def test_export_refuses_what_it_cannot_export(tiny_model: Path, tmp_path: Path) -> None:
    from ndogo.compress.quantize import quant_config, quantize

    dynamic = quantize(tiny_model, tmp_path / "dyn", quant_config("dynamic-int8"))
    with pytest.raises(ModelError, match="quantized in torch"):
        export_onnx(dynamic, tmp_path / "x")
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "ndogo.json").write_text('{"kind": "onnx"}')
    with pytest.raises(ModelError, match=r"no model\.onnx"):
        load_runner(empty)


def test_a_corrupt_graph_is_a_model_error(exported: Path, tmp_path: Path) -> None:
    import shutil

    broken = tmp_path / "broken"
    shutil.copytree(exported, broken)
    (broken / "model.onnx").write_bytes(b"not a graph")
    with pytest.raises(ModelError, match=rf"{broken / 'model.onnx'}: ONNX Runtime cannot load this graph"):
        load_runner(broken)
