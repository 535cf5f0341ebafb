"""From words to model inputs and back: first-sub-word labels and overlapping windows.

NER data is labelled per word; models see sub-words. Each word's label goes on
its first sub-word (the others get -100, ignored by the loss), and each word's
prediction is read from its first sub-word.

A sentence longer than the model's window is cut into overlapping windows at
word boundaries, never truncated: truncation would silently drop gold entities
from scoring. Each word is predicted from the window where it has the most
context on both sides (the "max context" rule of BERT's SQuAD code).
Hugging Face's `return_overflowing_tokens` windows by sub-word and can split a
word across windows, which breaks first-sub-word alignment, so we window here.

The windowing itself (planning, building windows, merging words back) lives in
`ndogo.models.align`, which imports neither torch nor transformers, so the
torch-free ONNX runtime (`ndogo.deploy.runtime`) windows exactly as this does.
This module adds what the PyTorch path needs: a transformers tokenizer and torch tensors.
"""

from __future__ import annotations

import weakref
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch
from transformers import PreTrainedTokenizerBase

from ndogo.models.align import (  # noqa: F401  (re-exported: the names every stage imports from here)
    IGNORE,
    Window,
    WordMerger,
    build_windows,
    group_pieces,
    layout_from,
    length_batches,
    plan_windows,
)

# a tokenizer's layout, read once: reading it costs two encodings per call (about 0.05 ms of a 3 ms
# `ndogo predict` sentence on a small student, measured), and predict encodes one sentence per call
_LAYOUTS: weakref.WeakKeyDictionary[PreTrainedTokenizerBase, tuple[list[int], list[int]]] = \
    weakref.WeakKeyDictionary()


def special_layout(tokenizer: PreTrainedTokenizerBase) -> tuple[list[int], list[int]]:
    """The special token ids a tokenizer puts before and after a single sequence.

    Read off a real encoding because transformers 5 no longer exposes
    `build_inputs_with_special_tokens` on fast tokenizers; once per tokenizer object.
    """
    try:
        return _LAYOUTS[tokenizer]
    except (KeyError, TypeError):  # TypeError: an object weak references cannot hold; read it every time
        pass
    try:
        layout = layout_from(lambda text, special: tokenizer(text, add_special_tokens=special)["input_ids"])
    except ValueError:
        raise ValueError(f"cannot find how {type(tokenizer).__name__} wraps a sequence in special tokens") from None
    try:
        _LAYOUTS[tokenizer] = layout
    except TypeError:
        pass
    return layout


def word_pieces(tokenizer: PreTrainedTokenizerBase, words: Sequence[str]) -> list[list[int]]:
    """Sub-word ids of each word; a word with none (empty, or only control characters) becomes UNK.

    Every word must own at least one sub-word, or it could never be predicted.
    """
    if not words:
        return []
    unk = tokenizer.unk_token_id if tokenizer.unk_token_id is not None else tokenizer.pad_token_id
    backend = _plain_backend(tokenizer)
    if backend is not None:
        # the Rust tokenizer itself, as transformers' own call ends up running it: the Python wrapper around it
        # cost about 0.08 ms of a 3 ms `ndogo predict` sentence on a small student (measured)
        enc = backend.encode(list(words), is_pretokenized=True, add_special_tokens=False)
        return group_pieces(enc.ids, enc.word_ids, len(words), unk)
    enc = tokenizer(list(words), is_split_into_words=True, add_special_tokens=False)
    return group_pieces(enc["input_ids"], enc.word_ids(), len(words), unk)


def _plain_backend(tokenizer: PreTrainedTokenizerBase) -> Any:
    """A fast tokenizer's Rust backend where calling it directly is what transformers' call would do (no
    truncation or padding set on it, special tokens read as transformers reads them); else None."""
    backend = getattr(tokenizer, "backend_tokenizer", None)
    if backend is None or backend.truncation is not None or backend.padding is not None:
        return None
    if backend.encode_special_tokens != bool(getattr(tokenizer, "split_special_tokens", False)):
        return None
    return backend


def encode_sentences(
    tokenizer: PreTrainedTokenizerBase,
    sentences: Sequence[Sequence[str]],
    max_length: int,
    tags: Sequence[Sequence[str]] | None = None,
    label2id: dict[str, int] | None = None,
) -> list[Window]:
    """Windows for every sentence, with labels when `tags` are given.

    A gold tag the model has no label for is encoded as IGNORE (it still counts
    against recall when scoring, which uses the gold strings).
    """
    return build_windows(lambda words: word_pieces(tokenizer, words), special_layout(tokenizer), sentences,
                         max_length, tags, label2id)


def collate(windows: Sequence[Window], pad_id: int, with_labels: bool = True) -> dict[str, torch.Tensor]:
    """Pad a batch of windows to its longest member."""
    width = max(len(w.input_ids) for w in windows)
    ids = torch.full((len(windows), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(windows), width), dtype=torch.long)
    labels = torch.full((len(windows), width), IGNORE, dtype=torch.long)
    for i, w in enumerate(windows):
        n = len(w.input_ids)
        ids[i, :n] = torch.tensor(w.input_ids)
        mask[i, :n] = 1
        labels[i, :n] = torch.tensor(w.labels)
    batch = {"input_ids": ids, "attention_mask": mask}
    if with_labels:
        batch["labels"] = labels
    return batch


Forward = Callable[[dict[str, torch.Tensor]], torch.Tensor]


def window_probs(forward: Forward, windows: Sequence[Window], pad_id: int) -> np.ndarray:
    """Label probabilities (batch, length, labels) of one batch of windows, padded to its longest."""
    batch = collate(windows, pad_id, with_labels=False)
    with torch.inference_mode():
        logits = forward(batch).float()
    return torch.softmax(logits, dim=-1).cpu().numpy()  # from any device


def predict_words(
    forward: Forward,
    windows: Sequence[Window],
    sentence_lengths: Sequence[int],
    pad_id: int,
    batch_size: int = 32,
    progress: Callable[[int], None] | None = None,
) -> list[np.ndarray]:
    """Per-word label probabilities for every sentence, merged over windows by max context.

    `forward` maps a padded batch to logits (batch, length, labels); any model
    kind (PyTorch, quantized, ONNX) plugs in through it.
    """
    merger = WordMerger(sentence_lengths)
    for idx in length_batches(windows, batch_size, shuffle=False):
        chosen = [windows[i] for i in idx]
        merger.add(chosen, window_probs(forward, chosen, pad_id))
        if progress:
            progress(len(idx))
    return merger.result()
