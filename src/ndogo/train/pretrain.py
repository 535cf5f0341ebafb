"""Pretraining a small RoBERTa/XLM-R-style encoder from scratch on raw text, one file per language.

This is how a user builds their own small-data model (AfriBERTa's recipe at
laptop scale): a SentencePiece-style Unigram tokenizer trained with the
`tokenizers` library and wrapped as transformers' XLM-R tokenizer (AfriBERTa
is an XLM-R architecture with a SentencePiece unigram vocabulary), then
masked-language modelling with the shared loop in `ndogo.train.mlm`, sampling
languages by exponential smoothing (alpha = 0.3 by default, as AfriBERTa); the
tokenizer sees the languages with the same smoothing (XLM's practice).

The output is a plain Hugging Face directory (safetensors, tokenizer,
`ndogo.json` kind `hf`) that `ndogo finetune --model` takes as it is.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path
from typing import Any

import torch
from transformers import AutoTokenizer, PreTrainedTokenizerBase, XLMRobertaConfig, XLMRobertaForMaskedLM
from transformers import XLMRobertaTokenizer as XLMRobertaTokenizerFast  # transformers 5: one (fast) class

from ndogo.data.leakage import drop_eval_text
from ndogo.models.loading import NDOGO_META, read_meta, write_meta
from ndogo.models.runner import count_params, size_on_disk
from ndogo.train.config import PretrainConfig
from ndogo.train.mlm import PackedCorpus, mlm_objective, read_texts, sampling_probs, train_mlm


def tokenizer_repeats(texts: dict[str, list[str]], alpha: float) -> dict[str, int]:
    """How many times each language's lines are fed to the tokenizer trainer.

    XLM learned its vocabulary on text sampled with the same smoothed language
    distribution as pretraining, so small languages get their share of pieces;
    here that is done deterministically by repeating each language's lines
    about p_i / q_i times (relative to the largest language, which is seen once).
    """
    sizes = {lang: sum(len(line) for line in lines) for lang, lines in texts.items()}
    total = sum(sizes.values())
    probs = sampling_probs(sizes, alpha)
    boost = {lang: probs[lang] / (sizes[lang] / total) for lang in texts}
    base = min(boost.values())
    return {lang: max(1, round(b / base)) for lang, b in boost.items()}


def train_tokenizer(texts: dict[str, list[str]], vocab_size: int, seq_len: int,
                    alpha: float = 1.0) -> PreTrainedTokenizerBase:
    """A Unigram (SentencePiece-style) tokenizer, as an XLM-R tokenizer, languages weighted by `alpha`.

    `train_new_from_iterator` retrains the XLM-R tokenizer's own pipeline
    (whitespace split, ▁ metaspace, Unigram model, <s> … </s> template) with the
    `tokenizers` library's UnigramTrainer, so the vocabulary is learned on
    exactly the pre-tokenization it will be used with. The trainer is not
    bit-reproducible (its hash maps iterate in random order), so a run trains
    its tokenizer once and keeps it.
    """
    repeats = tokenizer_repeats(texts, alpha)
    lines = [line for lang, lang_lines in texts.items() for _ in range(repeats[lang]) for line in lang_lines]
    tokenizer = XLMRobertaTokenizerFast().train_new_from_iterator(lines, vocab_size=vocab_size)
    tokenizer.model_max_length = seq_len
    return tokenizer


def build_model(cfg: PretrainConfig, tokenizer: PreTrainedTokenizerBase) -> XLMRobertaForMaskedLM:
    """A freshly initialised XLM-R masked-LM of the configured shape (positions for seq_len tokens)."""
    config = XLMRobertaConfig(
        vocab_size=len(tokenizer), hidden_size=cfg.hidden, num_hidden_layers=cfg.layers,
        num_attention_heads=cfg.heads, intermediate_size=cfg.intermediate or 4 * cfg.hidden,
        # RoBERTa positions start after padding_idx, so seq_len tokens need seq_len + pad + 1 positions.
        max_position_embeddings=cfg.seq_len + tokenizer.pad_token_id + 1, type_vocab_size=1,
        pad_token_id=tokenizer.pad_token_id, bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id, tie_word_embeddings=True,
    )
    torch.manual_seed(cfg.seed)
    return XLMRobertaForMaskedLM(config)


def _tokenizer_for(cfg: PretrainConfig, texts: dict[str, list[str]], out: Path) -> PreTrainedTokenizerBase:
    """The run's tokenizer: trained once and saved in `out`, reloaded when the run resumes."""
    meta = read_meta(out)
    keys = ("corpus", "vocab_size", "seq_len", "alpha", "exclude_eval")
    if (out / "tokenizer.json").is_file() and meta.get("stage") == "pretrain":
        before = {k: meta.get("config", {}).get(k) for k in keys}
        if before != {k: getattr(cfg, k) for k in keys}:
            raise ValueError(f"{out}: holds a tokenizer trained with {before}; use another --out or delete it")
        return AutoTokenizer.from_pretrained(out)
    if (out / NDOGO_META).is_file() and meta.get("stage") != "pretrain":
        raise ValueError(f"{out}: already holds a {meta.get('stage', 'different')} model; use another --out")
    tokenizer = train_tokenizer(texts, cfg.vocab_size, cfg.seq_len, cfg.alpha)
    tokenizer.save_pretrained(out)
    write_meta(out, {"kind": "hf", "stage": "pretrain", "status": "training", "config": asdict(cfg)})
    return tokenizer


def pretrain(cfg: PretrainConfig, show_progress: bool = True,
             step_hooks: list[Callable[[int], None]] | None = None) -> dict[str, Any]:
    """Train a tokenizer and an encoder on `cfg.corpus`, save them in `cfg.out`; resumes an interrupted run.

    Returns the metrics also written to `<out>/metrics.json` (loss curve,
    held-out MLM loss, tokens/s, sampling probabilities per language).
    """
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    out = Path(cfg.out)
    texts = read_texts(cfg.corpus)
    dropped: dict[str, int] = {}
    if cfg.exclude_eval:
        texts, dropped = drop_eval_text(texts, cfg.exclude_eval)
    out.mkdir(parents=True, exist_ok=True)  # after the corpus is read: a bad one leaves no empty --out
    tokenizer = _tokenizer_for(cfg, texts, out)
    corpus = PackedCorpus.build(tokenizer, texts, cfg.seq_len, cfg.alpha, cfg.held_out_blocks, cfg.seed,
                                show_progress=show_progress)
    model = build_model(cfg, tokenizer)
    # the device is how the run executes: left out, so a run resumes on another device (and older checkpoints)
    settings = {k: v for k, v in asdict(cfg).items() if k != "device"}
    fingerprint = {"pretrain": settings, "model": model.config.to_diff_dict(), "data": corpus.describe()}
    run = train_mlm(cfg.mlm(), model, mlm_objective(model), corpus, tokenizer, fingerprint,
                    show_progress=show_progress, step_hooks=step_hooks)
    model.save_pretrained(out, safe_serialization=True)
    tokenizer.save_pretrained(out)
    params, _ = count_params(model)
    metrics = {**run.metrics(cfg.mlm()), "pretrain": asdict(cfg), "params": params,
               "eval_lines_dropped": dropped}
    write_meta(out, {"kind": "hf", "stage": "pretrain", "status": "done", "config": asdict(cfg),
                     "langs": list(corpus.blocks), "params": params, "size_bytes": size_on_disk(out),
                     "max_length": cfg.seq_len, "final_eval_loss": metrics["final_eval_loss"],
                     "steps": metrics["steps"], "seed": cfg.seed})
    (out / "metrics.json").write_text(json.dumps(metrics, indent=2) + "\n")
    return metrics
