"""Labels on first sub-words, and windows that cover every word of long sentences."""

from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from ndogo.models.loading import load_tokenizer
from ndogo.models.windowing import IGNORE, encode_sentences, plan_windows, predict_words, word_pieces


@given(st.lists(st.integers(1, 9), min_size=1, max_size=80), st.integers(4, 30))
@settings(max_examples=200, deadline=None)
def test_windows_cover_every_word_within_capacity(lengths: list[int], capacity: int) -> None:
    windows = plan_windows(lengths, capacity)
    covered = set()
    for start, end in windows:
        assert end > start
        assert sum(lengths[start:end]) <= capacity or end - start == 1
        covered.update(range(start, end))
    assert covered == set(range(len(lengths)))
    assert windows[0][0] == 0 and windows[-1][1] == len(lengths)
    starts = [s for s, _ in windows]
    assert starts == sorted(set(starts))  # always moves forward


def test_labels_sit_on_first_subwords(tiny_model) -> None:
    tok = load_tokenizer(tiny_model)
    words = ["Abdulhamid", "Umaisha", "ya", "je", "Kano"]
    tags = ["B-PER", "I-PER", "O", "O", "B-LOC"]
    label2id = {"O": 0, "B-PER": 1, "I-PER": 2, "B-LOC": 5}
    (w,) = encode_sentences(tok, [words], 64, [tags], label2id)
    pieces = word_pieces(tok, words)
    assert any(len(p) > 1 for p in pieces)
    assert [w.input_ids[p] for p in w.first_pos] == [p[0] for p in pieces]
    assert [w.labels[p] for p in w.first_pos] == [label2id[t] for t in tags]
    assert sum(lab != IGNORE for lab in w.labels) == len(words)
    assert w.input_ids[0] == tok.cls_token_id and w.input_ids[-1] == tok.sep_token_id


def test_word_without_subwords_gets_unk(tiny_model) -> None:
    tok = load_tokenizer(tiny_model)
    assert word_pieces(tok, ["", "\u200b", "Kano"])[:2] == [[tok.unk_token_id], [tok.unk_token_id]]


def test_long_sentence_windowed_prediction_matches_context_free_model(tiny_model) -> None:
    """With a model whose output depends only on the token id, windowing must not change any prediction."""
    tok = load_tokenizer(tiny_model)
    words = [f"word{i} Kano" if i % 7 == 0 else f"w{i}" for i in range(150)]
    windows = encode_sentences(tok, [words, ["short", "one"]], max_length=32)
    assert len([w for w in windows if w.sent == 0]) > 4
    n_labels = 9

    def forward(batch: dict[str, torch.Tensor]) -> torch.Tensor:
        return torch.nn.functional.one_hot(batch["input_ids"] % n_labels, n_labels).float()

    probs = predict_words(forward, windows, [len(words), 2], tok.pad_token_id, batch_size=3)
    assert probs[0].shape == (150, n_labels) and probs[1].shape == (2, n_labels)
    expected = [p[0] % n_labels for p in word_pieces(tok, words)]
    assert list(probs[0].argmax(-1)) == expected


def _through_transformers(tok, words: list[str]) -> list[list[int]]:
    """word_pieces as transformers' own call gives them (the path before the direct backend call)."""
    from ndogo.models.align import group_pieces

    enc = tok(list(words), is_split_into_words=True, add_special_tokens=False)
    unk = tok.unk_token_id if tok.unk_token_id is not None else tok.pad_token_id
    return group_pieces(enc["input_ids"], enc.word_ids(), len(words), unk)


@pytest.mark.parametrize("name", ["minilm", "me5s"])
def test_word_pieces_from_the_rust_backend_equal_transformers_call(name: str, shared_data) -> None:
    """The direct backend call (0.3 ms less per `ndogo predict` sentence) gives every word the sub-words
    transformers' call gives it, on the real test sentences of every MasakhaNER language, WordPiece and
    SentencePiece alike; with padding set on the backend it steps aside and still agrees."""
    from ndogo.data.conll import read_conll
    from ndogo.models.windowing import _plain_backend

    try:
        tok = load_tokenizer(name)
    except Exception as err:  # the me5s extra may be absent
        pytest.skip(f"{name} tokenizer not available: {err}")
    assert _plain_backend(tok) is not None
    sentences = [["", "\u200b", "Kano", "ẹ̀kọ́", "N'Djamena"]]
    for test in sorted((shared_data / "masakhaner").glob("*/test.txt")):
        sentences += [list(s.tokens) for s in read_conll(test).sentences[:150]]
    assert len(sentences) > 1000
    for words in sentences:
        assert word_pieces(tok, words) == _through_transformers(tok, words), words
    tok.backend_tokenizer.enable_padding(length=8)
    try:
        assert _plain_backend(tok) is None
        assert word_pieces(tok, sentences[1]) == _through_transformers(tok, sentences[1])
    finally:
        tok.backend_tokenizer.no_padding()
