"""`ndogo pretrain`: tokenizer, exact resume, and a result that `ndogo finetune` takes."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file
from typer.testing import CliRunner

from ndogo.cli import app
from ndogo.models.windowing import encode_sentences
from ndogo.train.finetune import FinetuneConfig, finetune
from ndogo.train.pretrain import PretrainConfig, pretrain, tokenizer_repeats, train_tokenizer

from .conftest import SHARED

runner = CliRunner()


@pytest.fixture(scope="module")
def text_corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Two languages of raw text: the start of the real monolingual files where present, else synthetic."""
    root = tmp_path_factory.mktemp("text")
    for lang in ("hau", "yor"):
        real = SHARED / "monolingual" / f"{lang}.txt"
        if real.is_file():
            lines = real.read_text(encoding="utf-8").splitlines()[:150]
        else:
            lines = [f"{lang} sentence number {i} about Kano , Lagos and Musa ." for i in range(150)]
        (root / f"{lang}.txt").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return root


def config(corpus: Path, out: Path, **kw) -> PretrainConfig:
    base = dict(corpus=str(corpus), out=str(out), layers=2, hidden=32, heads=2, vocab_size=600, seq_len=32,
                max_steps=12, batch_size=8, grad_accum=2, save_every=4, log_every=2, eval_every=4,
                held_out_blocks=8, threads=1)
    base.update(kw)
    return PretrainConfig(**base)


class Crash(RuntimeError):
    pass


def test_tokenizer_is_an_xlmr_unigram_that_aligns_words(text_corpus: Path) -> None:
    texts = {p.stem: p.read_text(encoding="utf-8").splitlines() for p in text_corpus.glob("*.txt")}
    tok = train_tokenizer(texts, vocab_size=600, seq_len=32, alpha=0.3)
    assert type(tok).__name__ == "XLMRobertaTokenizer" and tok.is_fast
    assert tok.convert_ids_to_tokens([0, 1, 2, 3]) == ["<s>", "<pad>", "</s>", "<unk>"] and tok.mask_token_id
    assert len(tok) <= 600 and tok.backend_tokenizer.model.__class__.__name__ == "Unigram"
    windows = encode_sentences(tok, [["Musa", "ya", "je", "Kano"]], 32, [["B-PER", "O", "O", "B-LOC"]],
                               {"O": 0, "B-PER": 1, "B-LOC": 2})
    assert [windows[0].labels[p] for p in windows[0].first_pos] == [1, 0, 0, 2]


def test_tokenizer_sees_small_languages_more_often() -> None:
    texts = {"big": ["x" * 100] * 64, "small": ["y" * 100] * 1}
    assert tokenizer_repeats(texts, alpha=1.0) == {"big": 1, "small": 1}
    # q = 64/65 and 1/65; p ∝ q^0.5, so the small language is boosted by (p/q)_small / (p/q)_big = sqrt(64) = 8
    assert tokenizer_repeats(texts, alpha=0.5) == {"big": 1, "small": 8}


def test_resume_after_crash_reaches_identical_weights(text_corpus: Path, tmp_path: Path) -> None:
    straight = pretrain(config(text_corpus, tmp_path / "a"), show_progress=False)

    def crash_at_6(step: int) -> None:
        if step == 6:
            raise Crash

    cfg = config(text_corpus, tmp_path / "b")
    # The Unigram trainer is not bit-reproducible (the `tokenizers` library's hash maps iterate in a random
    # order), so a run trains its tokenizer once and reuses it on resume; the second run starts from the first's.
    (tmp_path / "b").mkdir()
    for name in ("tokenizer.json", "tokenizer_config.json", "ndogo.json"):
        shutil.copy(tmp_path / "a" / name, tmp_path / "b" / name)
    with pytest.raises(Crash):
        pretrain(cfg, show_progress=False, step_hooks=[crash_at_6])
    assert (tmp_path / "b" / "checkpoint" / "state.json").is_file()  # saved at step 4; steps 5-6 are redone
    resumed = pretrain(cfg, show_progress=False)
    a, b = load_file(tmp_path / "a" / "model.safetensors"), load_file(tmp_path / "b" / "model.safetensors")
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    strip = ("seconds",)
    assert [{k: v for k, v in h.items() if k not in strip} for h in resumed["history"]] == \
           [{k: v for k, v in h.items() if k not in strip} for h in straight["history"]]
    assert resumed["evals"] == straight["evals"] and resumed["tokens"] == straight["tokens"]
    # a different configuration is refused rather than mixed with the old checkpoint
    with pytest.raises(ValueError, match="different run"):
        pretrain(config(text_corpus, tmp_path / "b", lr=1e-3), show_progress=False)


def test_pretrained_model_learns_and_fine_tunes(text_corpus: Path, tiny_corpus: Path, tmp_path: Path) -> None:
    metrics = pretrain(config(text_corpus, tmp_path / "m", max_steps=40, lr=2e-3, grad_accum=1, eval_every=40),
                       show_progress=False)
    losses = [h["loss"] for h in metrics["history"]]
    assert losses[-1] < losses[0] - 0.5  # from ln(600) = 6.4 at random init
    meta = json.loads((tmp_path / "m" / "ndogo.json").read_text())
    assert meta["kind"] == "hf" and meta["stage"] == "pretrain" and meta["params"] == metrics["params"]
    assert set(metrics["data"]["langs"]) == {"hau", "yor"} and metrics["tokens_per_s"] > 0
    ft = finetune(FinetuneConfig(model=str(tmp_path / "m"), data=str(tiny_corpus), langs=["hau"],
                                 out=str(tmp_path / "ft"), epochs=1, batch_size=8, threads=1), show_progress=False)
    assert ft["steps"] > 0 and ft["max_length"] == 32


def test_cli_pretrain(text_corpus: Path, tmp_path: Path) -> None:
    out = tmp_path / "cli"
    result = runner.invoke(app, ["pretrain", "--corpus", str(text_corpus), "--out", str(out), "--layers", "1",
                                 "--hidden", "16", "--heads", "2", "--vocab-size", "400", "--seq-len", "16",
                                 "--max-steps", "3", "--batch-size", "4", "--threads", "1"])
    assert result.exit_code == 0, result.output
    assert "tokens/s" in result.output and (out / "model.safetensors").is_file()
    bad = runner.invoke(app, ["pretrain", "--corpus", str(tmp_path / "nowhere"), "--out", str(tmp_path / "x")])
    assert bad.exit_code == 2 and "no such corpus folder" in bad.output
    help_text = runner.invoke(app, ["pretrain", "--help"]).output
    assert "Example" in help_text and "--vocab-size" in help_text


def test_non_utf8_raw_text_names_file_and_line(tmp_path: Path) -> None:
    (tmp_path / "hau.txt").write_bytes(b"Musa ya je Kano\nKano \xff\n")
    result = runner.invoke(app, ["pretrain", "--corpus", str(tmp_path), "--out", str(tmp_path / "x")])
    assert result.exit_code == 2 and f"{tmp_path / 'hau.txt'}:2: bytes that are not UTF-8" in result.output


@pytest.mark.parametrize(("option", "value"), [("--precision", "fp8"), ("--mask-prob", "1.5"), ("--lr", "-1")])
def test_bad_optimisation_settings_fail_before_the_tokenizer_is_trained(text_corpus: Path, tmp_path: Path,
                                                                        option: str, value: str) -> None:
    out = tmp_path / "out"
    result = runner.invoke(app, ["pretrain", "--corpus", str(text_corpus), "--out", str(out), option, value])
    assert result.exit_code == 2 and "error:" in result.output and "Traceback" not in result.output
    assert not out.exists()  # nothing trained or written


def test_a_missing_corpus_leaves_no_empty_out_behind(tmp_path: Path) -> None:
    result = runner.invoke(app, ["pretrain", "--corpus", str(tmp_path / "nowhere"), "--out", str(tmp_path / "x")])
    assert result.exit_code == 2 and not (tmp_path / "x").exists()
