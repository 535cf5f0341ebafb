"""The shared MLM loop's parts: language sampling, packing, masking, masked-only loss, precision choice."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from transformers import AutoTokenizer, BertConfig, BertForMaskedLM

from ndogo.models.loading import resolve_model
from ndogo.train import mlm
from ndogo.train.mlm import LanguageSampler, Masker, PackedCorpus, mlm_objective, pack, sampling_probs

LINES = {
    "hau": ["Musa ya je Kano ranar Litinin .", "Gwamnatin jihar Kano ta ce za ta gina makarantu .",
            "Shugaban kasa ya isa Abuja da safe ."] * 30,
    "yor": ["Ọba náà lọ sí ìlú Èkó lánàá .", "Ìjọba ìpínlẹ̀ Ọ̀yọ́ ti kéde ètò tuntun ."] * 10,
}


@pytest.fixture(scope="module")
def tokenizer():
    return AutoTokenizer.from_pretrained(resolve_model("minilm"))


def test_sampling_probabilities_follow_exponential_smoothing() -> None:
    sizes = {"big": 900, "mid": 90, "small": 10}
    p = sampling_probs(sizes, alpha=0.3)
    q = np.array([0.9, 0.09, 0.01])
    expected = q**0.3 / (q**0.3).sum()
    assert np.allclose([p["big"], p["mid"], p["small"]], expected)
    assert p["small"] > 0.01 * 5  # a 1% language is up-sampled several times over
    assert sampling_probs(sizes, alpha=1.0) == pytest.approx({"big": 0.9, "mid": 0.09, "small": 0.01})
    with pytest.raises(ValueError, match="alpha"):
        sampling_probs(sizes, alpha=0)


def test_packing_keeps_every_token_in_fixed_length_blocks(tokenizer) -> None:
    lines = LINES["hau"][:7]
    blocks = pack(tokenizer, lines, seq_len=16)
    assert blocks.shape[1] == 16
    assert (blocks[:, 0] == tokenizer.cls_token_id).all()
    ids_per_line = tokenizer(lines, add_special_tokens=False)["input_ids"]
    stream = [t for ids in ids_per_line for t in [*ids, tokenizer.sep_token_id]]
    # each block ends with one added </s> after its body; drop those and the padding
    unpacked = []
    for row in blocks:
        body = row[1:][row[1:] != tokenizer.pad_token_id].tolist()
        unpacked.extend(body[:-1])
    assert unpacked == stream
    assert (blocks[:-1] != tokenizer.pad_token_id).all()  # only the last block is padded


def test_sampler_matches_probabilities_and_resumes_from_its_state(tokenizer) -> None:
    corpus = PackedCorpus.build(tokenizer, LINES, seq_len=16, alpha=0.5, held_out_blocks=4, seed=1)
    assert len(corpus.held_out) > 0
    sampler = LanguageSampler(corpus, seed=3)
    rng = np.random.default_rng(0)
    for _ in range(50):
        sampler.draw(40, rng)
    share = sampler.used["yor"] / sum(sampler.used.values())
    assert share == pytest.approx(corpus.probs["yor"], abs=0.03)
    # The draws after a state restore are the same as those of the uninterrupted sampler.
    state = sampler.state_dict()
    ahead = sampler.draw(10, np.random.default_rng(7))
    restored = LanguageSampler(corpus, seed=3)
    restored.load_state_dict(state)
    assert np.array_equal(restored.draw(10, np.random.default_rng(7)), ahead)


def test_masking_is_seeded_and_never_touches_special_tokens(tokenizer) -> None:
    blocks = pack(tokenizer, LINES["hau"], seq_len=32)
    masker = Masker(tokenizer, 0.15)
    a, b, c = masker(blocks, 5), masker(blocks, 5), masker(blocks, 6)
    assert torch.equal(a["input_ids"], b["input_ids"]) and not torch.equal(a["labels"], c["labels"])
    masked = a["labels"] != -100
    special = torch.isin(torch.from_numpy(blocks.astype(np.int64)), torch.tensor(tokenizer.all_special_ids))
    assert not (masked & special).any()
    assert 0.10 < masked.sum() / (~special).sum() < 0.20
    assert (a["input_ids"][masked] == tokenizer.mask_token_id).float().mean() > 0.6


def test_loss_at_masked_positions_equals_the_full_head_loss(tokenizer) -> None:
    torch.manual_seed(0)
    model = BertForMaskedLM(BertConfig(vocab_size=len(tokenizer), hidden_size=32, num_hidden_layers=2,
                                       num_attention_heads=2, intermediate_size=64,
                                       max_position_embeddings=64)).eval()
    batch = Masker(tokenizer, 0.15)(pack(tokenizer, LINES["hau"][:20], seq_len=32), 0)
    ours, parts = mlm_objective(model)(batch)
    full = model(**batch).loss  # logits at every position, then cross-entropy where labels != -100
    assert torch.allclose(ours, full, atol=1e-5) and parts["mlm"] == pytest.approx(full.item(), abs=1e-5)


def test_precision_choice(monkeypatch: pytest.MonkeyPatch) -> None:
    assert mlm.resolve_precision("fp32") == "fp32"
    monkeypatch.setattr(mlm, "_mkldnn_bf16", lambda: False)
    assert mlm.resolve_precision("auto") == "fp32"
    with pytest.raises(ValueError, match="no native bf16"):
        mlm.resolve_precision("bf16")
    with pytest.raises(ValueError, match="grad_accum"):
        mlm.MLMConfig(out="x", max_steps=1, batch_size=10, grad_accum=3)
