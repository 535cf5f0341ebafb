"""Structured pruning shrinks the matrices and computes exactly what the masked model computes."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from conftest import make_tiny_model
from ndogo.compress.prune import prune, prune_config
from ndogo.compress.prune._structured import (
    Plan,
    encoder_layers,
    gradient_scores,
    mask,
    plan_pruning,
    shrink,
    training_batches,
    weight_scores,
)
from ndogo.models.loading import load_for_tokens, load_tokenizer, read_meta
from ndogo.models.runner import load_runner


@pytest.fixture(scope="module")
def four_heads(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Two layers of four heads (head size 8) and 64 FFN neurons."""
    return make_tiny_model(tmp_path_factory.mktemp("heads") / "model", layers=2, hidden=32, heads=4, seed=3)


def sample_batch(path: Path) -> dict[str, torch.Tensor]:
    tok = load_tokenizer(path)
    enc = tok(["Musa ya je Kano ranar Litinin .", "Aminu Bello"], padding=True, return_tensors="pt")
    return {"input_ids": enc["input_ids"], "attention_mask": enc["attention_mask"]}


@pytest.mark.parametrize(("method", "fraction"), [("heads", 0.5), ("heads", 0.75), ("ffn", 0.5), ("ffn", 0.9)])
def test_shrunk_model_is_smaller_and_matches_masked(four_heads: Path, method: str, fraction: float) -> None:
    masked = load_for_tokens(four_heads).eval()
    heads, neurons = weight_scores(masked)
    plan = plan_pruning(heads, neurons, method, fraction)
    small = shrink(load_for_tokens(four_heads).eval(), plan)
    mask(masked, plan)
    for layer in encoder_layers(small):
        if method == "heads":
            assert layer.attention.self.query.weight.shape == (8 * round(4 * (1 - fraction)), 32)
            assert layer.attention.output.dense.weight.shape == (32, 8 * round(4 * (1 - fraction)))
        else:
            assert layer.intermediate.dense.weight.shape[0] == 64 - round(64 * fraction)
            assert layer.output.dense.weight.shape[1] == 64 - round(64 * fraction)
    assert sum(p.numel() for p in small.parameters()) < sum(p.numel() for p in masked.parameters())
    batch = sample_batch(four_heads)
    with torch.no_grad():
        assert torch.allclose(small(**batch).logits, masked(**batch).logits, atol=1e-5)
        assert not torch.allclose(load_for_tokens(four_heads).eval()(**batch).logits, masked(**batch).logits,
                                  atol=1e-5)  # the pruning did change the model


def test_lowest_scores_go_and_every_layer_keeps_one() -> None:
    heads = torch.tensor([[0.1, 0.9, 0.5, 0.3], [4.0, 3.0, 2.0, 1.0]])
    plan = plan_pruning(heads, torch.ones(2, 8), "heads", 0.5)
    assert plan.heads == [[1, 2], [0, 1]] and plan.neurons == [list(range(8))] * 2
    assert plan_pruning(heads, torch.ones(2, 8), "heads", 0.99).heads == [[1], [0]]


def test_gradient_scores_from_training_batches(four_heads: Path, tiny_corpus: Path) -> None:
    model = load_for_tokens(four_heads)
    batches = training_batches(model, load_tokenizer(four_heads), str(tiny_corpus), "hau", 64, 8, 3, seed=0)
    heads, neurons = gradient_scores(model, batches, 3)
    assert heads.shape == (2, 4) and neurons.shape == (2, 64)
    assert bool((heads > 0).all()) and bool((neurons >= 0).all()) and float(neurons.sum()) > 0
    assert all(p.grad is None for p in model.parameters())


def test_saved_structured_model_reloads_small_and_identical(four_heads: Path, tiny_corpus: Path,
                                                            tmp_path: Path) -> None:
    out = prune(four_heads, tmp_path / "h50", prune_config("heads", sparsity=0.5, importance="gradient",
                                                           importance_batches=2, data=str(tiny_corpus), lang="hau"))
    meta = read_meta(out)
    assert meta["kind"] == "structured" and [s["heads"] for s in meta["layers"]] == [2, 2]
    loaded = load_runner(out)
    reference = load_for_tokens(four_heads).eval()
    mask(reference, Plan(meta["kept_heads"], [list(range(64))] * 2))
    batch = sample_batch(four_heads)
    with torch.no_grad():
        assert torch.allclose(loaded.forward(batch), reference(**batch).logits, atol=1e-5)
    params, _ = loaded.params()
    assert params == meta["params"] < meta["params_before"]


def test_structured_recovery_keeps_the_smaller_shape(four_heads: Path, tiny_corpus: Path, tmp_path: Path) -> None:
    out = prune(four_heads, tmp_path / "f50r", prune_config("ffn", sparsity=0.5, recover_epochs=1, lr=5e-3,
                                                            data=str(tiny_corpus), lang="hau", threads=1,
                                                            show_progress=False))
    meta = read_meta(out)
    assert [s["ffn"] for s in meta["layers"]] == [32, 32] and meta["recovery"]["epochs"] == 1
    small = load_runner(out).module
    assert all(layer.intermediate.dense.out_features == 32 for layer in encoder_layers(small))
    oneshot = load_runner(prune(four_heads, tmp_path / "f50", prune_config("ffn", sparsity=0.5))).module
    assert not torch.equal(small.classifier.weight, oneshot.classifier.weight)  # it was trained


def test_structured_refuses_what_it_cannot_do(four_heads: Path, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="scope"):
        prune(four_heads, tmp_path / "x", prune_config("heads", sparsity=0.5, scope="global"))
    with pytest.raises(ValueError, match="lang"):
        prune(four_heads, tmp_path / "x", prune_config("ffn", sparsity=0.5, importance="gradient"))
