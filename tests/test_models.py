"""Models by short name, local path or hub id; SentencePiece (XLM-R/AfriBERTa-style) and BPE encoders; hub corpora."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

from ndogo.data.conll import read_conll
from ndogo.data.corpus import load_corpus, load_hub, load_local
from ndogo.evaluate import evaluate
from ndogo.models.loading import ModelError, load_for_tokens, load_tokenizer, model_window, resolve_model
from ndogo.models.windowing import encode_sentences
from ndogo.train.finetune import FinetuneConfig, finetune

from .conftest import LABELS, MASAKHANER

TEXT = [
    "Musa ya je Kano ranar Litinin", "Shugaba Muhammadu Buhari ya isa Abuja", "Rais Samia Suluhu Hassan wa Tanzania",
    "Ọjọ́ Ajé ni Olú lọ sí Èkó", "Kampuni ya Safaricom imetangaza faida", "Hukumar INEC ta sanar da sakamakon",
] * 20


def xlmr_like(path: Path) -> Path:
    """A tiny XLM-R encoder with a SentencePiece-style Unigram tokenizer, as AfriBERTa has."""
    from transformers import XLMRobertaConfig, XLMRobertaForTokenClassification, XLMRobertaTokenizerFast

    tok = Tokenizer(models.Unigram())
    tok.pre_tokenizer = pre_tokenizers.Metaspace()
    tok.decoder = decoders.Metaspace()
    tok.train_from_iterator(TEXT, trainers.UnigramTrainer(vocab_size=200, special_tokens=["<s>", "<pad>", "</s>",
                                                                                          "<unk>", "<mask>"],
                                                                      unk_token="<unk>"))
    fast = XLMRobertaTokenizerFast(tokenizer_object=tok, bos_token="<s>", eos_token="</s>", unk_token="<unk>",
                                   pad_token="<pad>", cls_token="<s>", sep_token="</s>", mask_token="<mask>")
    fast.save_pretrained(path)
    config = XLMRobertaConfig(vocab_size=len(fast), hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                              intermediate_size=64, max_position_embeddings=40, pad_token_id=fast.pad_token_id,
                              num_labels=len(LABELS), id2label=dict(enumerate(LABELS)))
    torch.manual_seed(0)
    XLMRobertaForTokenClassification(config).save_pretrained(path, safe_serialization=True)
    return path


def roberta_bpe(path: Path) -> Path:
    """A tiny RoBERTa with a byte-level BPE tokenizer (needs add_prefix_space for pre-split words)."""
    from transformers import RobertaConfig, RobertaForTokenClassification, RobertaTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    tok.train_from_iterator(TEXT, trainers.BpeTrainer(vocab_size=300, special_tokens=["<s>", "<pad>", "</s>",
                                                                                     "<unk>", "<mask>"]))
    fast = RobertaTokenizerFast(tokenizer_object=tok, bos_token="<s>", eos_token="</s>", unk_token="<unk>",
                                pad_token="<pad>", cls_token="<s>", sep_token="</s>", mask_token="<mask>")
    fast.save_pretrained(path)
    config = RobertaConfig(vocab_size=len(fast), hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                           intermediate_size=64, max_position_embeddings=40, pad_token_id=fast.pad_token_id,
                           num_labels=len(LABELS), id2label=dict(enumerate(LABELS)))
    RobertaForTokenClassification(config).save_pretrained(path, safe_serialization=True)
    return path


@pytest.mark.parametrize("make", [xlmr_like, roberta_bpe], ids=["xlmr-unigram", "roberta-bpe"])
def test_other_encoder_families_finetune_and_evaluate(make, tiny_corpus: Path, tmp_path: Path) -> None:
    model_dir = make(tmp_path / "base")
    tok = load_tokenizer(model_dir)
    model = load_for_tokens(model_dir)
    window = model_window(tok, model.config)
    assert window == 40 - (model.config.pad_token_id + 1)  # RoBERTa positions start after padding_idx
    sents = read_conll(tiny_corpus / "hau" / "train.txt").sentences
    windows = encode_sentences(tok, [s.tokens for s in sents], window)
    assert max(len(w.input_ids) for w in windows) <= window
    assert {w.sent for w in windows} == set(range(len(sents)))
    finetune(FinetuneConfig(model=str(model_dir), data=str(tiny_corpus), langs=["hau"], out=str(tmp_path / "run"),
                            max_steps=3, threads=1), show_progress=False)
    row = evaluate(tmp_path / "run", str(tiny_corpus), "hau", speed=False)
    assert row["sentences"] == 16 and 0.0 <= row["f1"] <= 1.0


def test_minilm_short_name_is_the_offline_package() -> None:
    path = Path(resolve_model("minilm"))
    assert (path / "model.safetensors").is_file() and (path / "config.json").is_file()


def test_missing_local_model_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ModelError, match="no such model directory"):
        resolve_model(str(tmp_path / "absent") + "/")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ModelError, match=r"no config\.json"):
        resolve_model(tmp_path / "empty")


def test_hub_id_is_passed_through() -> None:
    assert resolve_model("castorini/afriberta_large") == "castorini/afriberta_large"


def test_hub_corpus_gives_the_same_objects_as_local(monkeypatch: pytest.MonkeyPatch, shared_data: Path) -> None:
    """The hub path builds Corpus objects identical to the local reader's (datasets stubbed: no hub here)."""
    import datasets

    local = load_local(MASAKHANER, "hau")
    names = ["O", "B-PER", "I-PER", "B-ORG", "I-ORG", "B-LOC", "I-LOC", "B-DATE", "I-DATE"]
    features = datasets.Features({"tokens": datasets.Sequence(datasets.Value("string")),
                                  "ner_tags": datasets.Sequence(datasets.ClassLabel(names=names))})
    hub = datasets.DatasetDict({
        hub_split: datasets.Dataset.from_dict(
            {"tokens": [s.tokens for s in local.splits[split]],
             "ner_tags": [[names.index(t) for t in s.tags] for s in local.splits[split]]}, features=features)
        for split, hub_split in (("train", "train"), ("dev", "validation"), ("test", "test"))
    })
    calls = []
    monkeypatch.setattr(datasets, "load_dataset", lambda repo, lang: calls.append((repo, lang)) or hub)
    corpus = load_corpus("masakhaner", "hau")
    assert calls == [("masakhaner", "hau")]
    for split in ("train", "dev", "test"):
        assert [(s.tokens, s.tags) for s in corpus.splits[split]] == [(s.tokens, s.tags) for s in local.splits[split]]
    assert load_hub("masakhaner2", "hau").name == "masakhaner2" and calls[-1] == ("masakhane/masakhaner2", "hau")


def test_hub_failure_says_what_to_do(monkeypatch: pytest.MonkeyPatch) -> None:
    import datasets

    from ndogo.data.conll import DataError

    def offline(*a, **k):
        raise ConnectionError("no network")

    monkeypatch.setattr(datasets, "load_dataset", offline)
    with pytest.raises(DataError, match="--data or NDOGO_DATA"):
        load_corpus("masakhaner", "hau")


@pytest.mark.parametrize("damage", ["config", "meta", "weights"])
def test_damaged_model_directory_is_one_clear_error(tiny_model: Path, tmp_path: Path, damage: str) -> None:
    import shutil

    from ndogo.models.runner import load_runner

    broken = tmp_path / "broken"
    shutil.copytree(tiny_model, broken)
    if damage == "config":
        (broken / "config.json").write_text("{not json")
    elif damage == "meta":
        (broken / "ndogo.json").write_text("{not json")
    else:
        (broken / "model.safetensors").write_bytes((broken / "model.safetensors").read_bytes()[:500])
    with pytest.raises(ModelError, match=str(broken)):
        load_runner(broken)


def test_unreachable_hub_id_is_a_model_error() -> None:
    # HF_HUB_OFFLINE is set by conftest: the hub is never reached, as on an offline machine.
    with pytest.raises(ModelError, match="no-such-owner/no-such-model: not a local model directory"):
        load_tokenizer("no-such-owner/no-such-model")


def test_cli_keeps_hub_retry_warnings_off_the_terminal() -> None:
    """Offline, a hub model or corpus fails after retries; only ndogo's one error line should show."""
    import logging

    from ndogo.cli import quiet_libraries

    hub = logging.getLogger("huggingface_hub")
    before = hub.level
    try:
        hub.setLevel(logging.WARNING)
        quiet_libraries()
        assert not hub.isEnabledFor(logging.WARNING)
    finally:
        hub.setLevel(before)
