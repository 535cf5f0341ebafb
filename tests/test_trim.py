"""Vocabulary trimming: same tokens and predictions where every token is kept, the
documented fallback elsewhere, and a size that shrinks by the removed rows."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors import safe_open
from tokenizers import Tokenizer, models, pre_tokenizers, processors, trainers
from transformers import BertConfig, BertForMaskedLM, PreTrainedTokenizerFast

from conftest import LABELS, make_tiny_model
from ndogo.compress.trim import TrimConfig, slice_vocab, trim
from ndogo.data.conll import read_conll
from ndogo.evaluate import predict_tags
from ndogo.models.loading import ModelError, load_tokenizer, read_meta
from ndogo.models.runner import load_runner, size_on_disk

# Words the trimming text never contains, whose letters it does contain: their old
# tokens are (partly) removed, so they must take the fallback path.
UNSEEN = ["Kanoranar", "Litininmusa", "jekano", "Musayaje", "ranarkano"]


def sentences(corpus: Path, split: str) -> list[list[str]]:
    return [s.tokens for s in read_conll(corpus / "hau" / f"{split}.txt").sentences]


def corpus_words(corpus: Path) -> list[str]:
    return sorted({w for split in ("train", "dev", "test") for s in sentences(corpus, split) for w in s})


def strip_marks(tokens: list[str], prefix: str = "##", space: str = "▁") -> str:
    return "".join(t.removeprefix(prefix) for t in tokens).replace(space, "")


def check_identity_and_fallback(old_dir: Path, new_dir: Path, words: list[str],
                                seen_text: list[list[str]]) -> tuple[int, int, int]:
    """Every word: all old tokens kept -> same tokens; else, if the trimming text had all its
    characters, kept pieces that spell the word; else the unknown token."""
    old, new = load_tokenizer(old_dir), load_tokenizer(new_dir)
    norm = old.backend_tokenizer.normalizer
    normalize = norm.normalize_str if norm else (lambda x: x)
    seen = set(normalize(" ".join(w for s in seen_text for w in s)))
    kept = set(new.get_vocab())
    same = fallback = unknown = 0
    for w in words:
        before, after = old.tokenize(w), new.tokenize(w)
        # Unigram shows an unknown piece as its text, so the unknown token is found by id.
        has_unk = new.unk_token_id in new.encode(w, add_special_tokens=False)
        if all(t in kept for t in before):
            assert after == before, w
            same += 1
        elif set(normalize(w)) <= seen:
            assert not has_unk and all(t in kept for t in after), (w, before, after)
            assert strip_marks(after) == normalize(w), (w, after)
            fallback += 1
        else:
            assert has_unk, (w, before, after)
            unknown += 1
    return same, fallback, unknown


@pytest.fixture(scope="module")
def trimmed(tiny_model: Path, tiny_corpus: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("trim") / "model"
    return trim(tiny_model, out, TrimConfig(lang="hau", data=str(tiny_corpus)))


def test_predictions_identical_where_all_tokens_kept(tiny_model: Path, trimmed: Path, tiny_corpus: Path) -> None:
    train = sentences(tiny_corpus, "train")
    old, new = load_runner(tiny_model), load_runner(trimmed)
    kept = set(new.tokenizer.get_vocab())
    assert all(t in kept for s in train for w in s for t in old.tokenizer.tokenize(w))
    tags_old, p_old = predict_tags(old, train)
    tags_new, p_new = predict_tags(new, train)
    assert tags_new == tags_old
    np.testing.assert_allclose(np.concatenate(p_new), np.concatenate(p_old), rtol=0, atol=1e-6)
    ids_old = old.tokenizer(train[0], is_split_into_words=True)["input_ids"]
    ids_new = new.tokenizer(train[0], is_split_into_words=True)["input_ids"]
    assert [old.tokenizer.convert_ids_to_tokens(i) for i in ids_old] == \
        [new.tokenizer.convert_ids_to_tokens(i) for i in ids_new]
    assert len(new.tokenizer) < len(old.tokenizer) // 10


def test_wordpiece_identity_and_fallback(tiny_model: Path, trimmed: Path, tiny_corpus: Path) -> None:
    train = sentences(tiny_corpus, "train")
    same, fallback, _ = check_identity_and_fallback(tiny_model, trimmed, corpus_words(tiny_corpus) + UNSEEN, train)
    assert same > 0 and fallback >= len(UNSEEN) // 2


def test_unseen_character_becomes_unknown(trimmed: Path) -> None:
    tok = load_tokenizer(trimmed)
    # 'ж' never occurs in Hausa text: the one case the documented fallback maps to [UNK].
    assert tok.tokenize("kanoж") == ["[UNK]"]


def test_size_shrinks_by_removed_rows(tiny_model: Path, trimmed: Path) -> None:
    meta = read_meta(trimmed)["trim"]
    removed = meta["vocab_before"] - meta["vocab_after"]
    with safe_open(str(tiny_model / "model.safetensors"), "pt") as f:
        hidden = f.get_slice("bert.embeddings.word_embeddings.weight").get_shape()[1]
    shrink = (tiny_model / "model.safetensors").stat().st_size - (trimmed / "model.safetensors").stat().st_size
    expected = removed * hidden * 4  # float32 rows
    assert abs(shrink - expected) < 256  # the safetensors header differs by a few bytes of offsets
    assert size_on_disk(trimmed) < size_on_disk(tiny_model) - expected  # the tokenizer shrinks too
    assert meta["fallback"] == "shorter-split" and meta["sources"][0].endswith("train.txt")


def test_keep_top_k_and_monolingual_corpus(tiny_model: Path, tiny_corpus: Path, tmp_path: Path) -> None:
    mono = tmp_path / "mono"
    mono.mkdir()
    test_line = " ".join(read_conll(tiny_corpus / "hau" / "test.txt").sentences[3].tokens)
    (mono / "hau.txt").write_text(f"Gwamnatin jihar Zamfara ta sanar.\n\nWani labari: {test_line.upper()}\n",
                                  encoding="utf-8")
    full = trim(tiny_model, tmp_path / "a", TrimConfig(lang="hau", data=str(tiny_corpus), corpus=str(mono)))
    tok = load_tokenizer(full)
    assert all(t in tok.get_vocab() for t in load_tokenizer(tiny_model).tokenize("Gwamnatin jihar Zamfara"))
    info = read_meta(full)["trim"]
    # The line holding a test sentence is not counted (case and spacing do not hide it).
    assert info["monolingual_lines"] == 1 and info["dropped_eval_lines"] == 1
    top = trim(tiny_model, tmp_path / "b", TrimConfig(lang="hau", data=str(tiny_corpus), keep=20))
    info = read_meta(top)["trim"]
    assert info["vocab_after"] == 20 + info["special"] + info["alphabet"]


def test_bad_input(tiny_model: Path, tiny_corpus: Path, tmp_path: Path, trimmed: Path) -> None:
    with pytest.raises(ModelError, match="no such model directory"):
        trim(tmp_path / "missing", tmp_path / "o1", TrimConfig(lang="hau", data=str(tiny_corpus)))
    with pytest.raises(ValueError, match="not empty"):
        trim(tiny_model, trimmed, TrimConfig(lang="hau", data=str(tiny_corpus)))
    with pytest.raises(FileNotFoundError, match="no monolingual text"):
        trim(tiny_model, tmp_path / "o2", TrimConfig(lang="hau", data=str(tiny_corpus),
                                                     corpus=str(tmp_path / "nowhere.txt")))
    with pytest.raises(ValueError, match="min-count"):
        trim(tiny_model, tmp_path / "o3", TrimConfig(lang="hau", data=str(tiny_corpus), min_count=0))


def test_a_folder_without_the_language_counts_its_training_text(tiny_model: Path, tiny_corpus: Path,
                                                                 tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    """Most MasakhaNER 2.0 languages have no monolingual text: trimming goes on, says so, records it."""
    folder = tmp_path / "mono"
    folder.mkdir()
    (folder / "yor.txt").write_text("Ade lọ sí ọjà .\n")
    out = trim(tiny_model, tmp_path / "o", TrimConfig(lang="hau", data=str(tiny_corpus), corpus=str(folder),
                                                      other_langs=True))
    info = read_meta(out)["trim"]
    assert info["monolingual_lines"] == 0 and info["other_lang_lines"] == 1
    assert info["monolingual_missing"] == str(folder / "hau.txt") and len(info["sources"]) == 1
    assert "no monolingual text for 'hau'" in capsys.readouterr().err
    alone = trim(tiny_model, tmp_path / "t", TrimConfig(lang="hau", data=str(tiny_corpus)))
    assert read_meta(alone)["trim"]["vocab_after"] < info["vocab_after"]  # the other language's words came in


def test_tied_output_layer_is_sliced_and_stays_tied() -> None:
    torch.manual_seed(0)
    model = BertForMaskedLM(BertConfig(vocab_size=50, hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
                                       intermediate_size=32, pad_token_id=0)).eval()
    keep = [0, 3, 7, 8, 20, 49]
    ids = torch.tensor([[0, 7, 20, 49]])
    before = model(input_ids=ids).logits[0][:, keep]
    slice_vocab(model, keep)
    assert model.get_output_embeddings().weight is model.get_input_embeddings().weight
    assert model.config.vocab_size == len(keep)
    after = model(input_ids=torch.tensor([[0, 2, 4, 5]])).logits[0]
    torch.testing.assert_close(after, before)


def make_spm_model(path: Path, texts: list[str], kind: str) -> Path:
    """A tiny token classifier over a Unigram (SentencePiece-style) or BPE tokenizer trained here."""
    specials = ["<s>", "<pad>", "</s>", "<unk>"]
    if kind == "unigram":
        tok = Tokenizer(models.Unigram())
        tok.pre_tokenizer = pre_tokenizers.Metaspace()
        trainer = trainers.UnigramTrainer(vocab_size=400, special_tokens=specials, unk_token="<unk>")
    else:
        tok = Tokenizer(models.BPE(unk_token="<unk>", continuing_subword_prefix="##"))
        tok.pre_tokenizer = pre_tokenizers.Whitespace()
        trainer = trainers.BpeTrainer(vocab_size=400, special_tokens=specials, continuing_subword_prefix="##")
    tok.train_from_iterator(texts, trainer)
    tok.post_processor = processors.RobertaProcessing(("</s>", 2), ("<s>", 0))
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, bos_token="<s>", eos_token="</s>", unk_token="<unk>",
                                   pad_token="<pad>", cls_token="<s>", sep_token="</s>")
    make_tiny_model(path, labels=LABELS)
    # Replace the WordPiece tokenizer and the embedding rows by ones for this vocabulary.
    from transformers import AutoModelForTokenClassification

    model = AutoModelForTokenClassification.from_pretrained(path)
    model.resize_token_embeddings(len(fast))
    model.config.pad_token_id = fast.pad_token_id
    for name in ("tokenizer.json", "tokenizer_config.json", "vocab.txt", "special_tokens_map.json"):
        (path / name).unlink(missing_ok=True)
    model.save_pretrained(path)
    fast.save_pretrained(path)
    return path


@pytest.mark.parametrize("kind", ["unigram", "bpe"])
def test_sentencepiece_and_bpe(kind: str, tiny_corpus: Path, tmp_path: Path) -> None:
    words = corpus_words(tiny_corpus)
    # The tokenizer learns the UNSEEN words (the trimming text never has them).
    texts = [" ".join(s) for split in ("train", "dev", "test") for s in sentences(tiny_corpus, split)]
    model_dir = make_spm_model(tmp_path / "m", texts + [" ".join(UNSEEN)] * 30, kind)
    out = trim(model_dir, tmp_path / "t", TrimConfig(lang="hau", data=str(tiny_corpus)))
    spec = json.loads((out / "tokenizer.json").read_text())
    assert spec["model"]["type"] == ("Unigram" if kind == "unigram" else "BPE")
    assert spec["post_processor"]["cls"] == ["<s>", 0] and spec["post_processor"]["sep"] == ["</s>", 2]
    train = sentences(tiny_corpus, "train")
    same, fallback, _ = check_identity_and_fallback(model_dir, out, words + UNSEEN, train)
    assert same > 0 and fallback > 0
    old_tags, old_p = predict_tags(load_runner(model_dir), train)
    new_tags, new_p = predict_tags(load_runner(out), train)
    assert new_tags == old_tags
    np.testing.assert_allclose(np.concatenate(new_p), np.concatenate(old_p), rtol=0, atol=1e-6)


def test_other_languages_rank_after_own(tiny_model: Path, tiny_corpus: Path, tmp_path: Path) -> None:
    mono = tmp_path / "mono"
    mono.mkdir()
    (mono / "hau.txt").write_text("Gwamnatin jihar Zamfara ta sanar.\n", encoding="utf-8")
    (mono / "swa.txt").write_text("Justin Trudeau alitembelea Atlanta na Denver.\n", encoding="utf-8")
    base = TrimConfig(lang="hau", data=str(tiny_corpus), corpus=str(mono))
    own = trim(tiny_model, tmp_path / "own", base)
    counted = read_meta(own)["trim"]["counted"]
    wide = trim(tiny_model, tmp_path / "wide", dataclasses.replace(base, other_langs=True))
    budget = trim(tiny_model, tmp_path / "budget", dataclasses.replace(base, other_langs=True, keep=counted))
    names = load_tokenizer(tiny_model).tokenize("Trudeau Atlanta Denver")
    assert all(t in load_tokenizer(wide).get_vocab() for t in names)
    assert not all(t in load_tokenizer(own).get_vocab() for t in names)
    assert read_meta(wide)["trim"]["other_lang_lines"] == 1
    # A budget of exactly the language's own sub-words leaves no room for the other language's.
    assert load_tokenizer(budget).get_vocab() == load_tokenizer(own).get_vocab()
    with pytest.raises(ValueError, match="give --corpus"):
        trim(tiny_model, tmp_path / "x", TrimConfig(lang="hau", data=str(tiny_corpus), other_langs=True))


def test_the_tokenizer_alone_rebuilds_what_trim_saves(tiny_model: Path, tiny_corpus: Path, tmp_path: Path) -> None:
    """The atlas's facts measure what trimming re-splits without the trimmed model on disk: the in-memory
    tokenizer of `trimmed_tokenizer` must split every test word as the saved one does."""
    from ndogo.compress.trim import trimmed_tokenizer
    from ndogo.data.tokenization import resplit_share

    config = TrimConfig(lang="hau", data=str(tiny_corpus), keep=20)
    saved = load_tokenizer(trim(tiny_model, tmp_path / "t", config))
    rebuilt = trimmed_tokenizer(load_tokenizer(tiny_model), config)
    words = [w for s in sentences(tiny_corpus, "test") for w in s] + UNSEEN
    assert [rebuilt.tokenize(w) for w in words] == [saved.tokenize(w) for w in words]
    test = sentences(tiny_corpus, "test")
    share = resplit_share(load_tokenizer(tiny_model), rebuilt, test)
    assert share == resplit_share(load_tokenizer(tiny_model), saved, test) and 0 < share < 1
