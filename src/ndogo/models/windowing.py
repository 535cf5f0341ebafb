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
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

import numpy as np
import torch
from transformers import PreTrainedTokenizerBase

IGNORE = -100


@dataclass
class Window:
    """One model input: sub-word ids, first-sub-word labels, and which words it holds."""

    sent: int  # index of the sentence
    word_start: int  # first word of the window
    word_end: int  # one past the last word
    input_ids: list[int]
    labels: list[int]  # IGNORE except at first sub-words
    first_pos: list[int]  # position in input_ids of each word's first sub-word, word_start..word_end


def special_layout(tokenizer: PreTrainedTokenizerBase) -> tuple[list[int], list[int]]:
    """The special token ids a tokenizer puts before and after a single sequence.

    Read off a real encoding because transformers 5 no longer exposes
    `build_inputs_with_special_tokens` on fast tokenizers.
    """
    with_special = tokenizer("a", add_special_tokens=True)["input_ids"]
    plain = tokenizer("a", add_special_tokens=False)["input_ids"]
    for i in range(len(with_special) - len(plain) + 1):
        if with_special[i : i + len(plain)] == plain:
            return with_special[:i], with_special[i + len(plain) :]
    raise ValueError(f"cannot find how {type(tokenizer).__name__} wraps a sequence in special tokens")


def word_pieces(tokenizer: PreTrainedTokenizerBase, words: Sequence[str]) -> list[list[int]]:
    """Sub-word ids of each word; a word with none (empty, or only control characters) becomes UNK.

    Every word must own at least one sub-word, or it could never be predicted.
    """
    if not words:
        return []
    enc = tokenizer(list(words), is_split_into_words=True, add_special_tokens=False)
    pieces: list[list[int]] = [[] for _ in words]
    for tid, wid in zip(enc["input_ids"], enc.word_ids(), strict=True):
        if wid is not None:
            pieces[wid].append(tid)
    unk = tokenizer.unk_token_id if tokenizer.unk_token_id is not None else tokenizer.pad_token_id
    return [p if p else [unk] for p in pieces]


def plan_windows(lengths: Sequence[int], capacity: int) -> list[tuple[int, int]]:
    """Cut words (with these sub-word lengths) into windows of at most `capacity` sub-words.

    Consecutive windows overlap by about half a window so every word has context.
    A single word longer than the window gets a window of its own (its tail is
    cut there; its first sub-word, which carries its label, is kept).
    """
    n = len(lengths)
    if sum(lengths) <= capacity:
        return [(0, n)]
    windows = []
    start = 0
    while True:
        end, used = start, 0
        while end < n and (used + lengths[end] <= capacity or end == start):
            used += lengths[end]
            end += 1
        windows.append((start, end))
        if end >= n:
            return windows
        # Next window starts so that about half a window of context overlaps.
        nxt, back = end, 0
        while nxt - 1 > start and back + lengths[nxt - 1] <= capacity // 2:
            nxt -= 1
            back += lengths[nxt]
        start = max(nxt, start + 1)


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
    prefix, suffix = special_layout(tokenizer)
    before, n_special = len(prefix), len(prefix) + len(suffix)
    capacity = max_length - n_special
    if capacity < 1:
        raise ValueError(f"max_length {max_length} leaves no room beside {n_special} special tokens")
    windows: list[Window] = []
    for si, words in enumerate(sentences):
        pieces = word_pieces(tokenizer, words)
        for ws, we in plan_windows([len(p) for p in pieces], capacity):
            ids: list[int] = []
            labels: list[int] = []
            first: list[int] = []
            for wi in range(ws, we):
                p = pieces[wi][: capacity - len(ids)] if we - ws == 1 else pieces[wi]
                first.append(before + len(ids))
                ids.extend(p)
                lab = IGNORE
                if tags is not None and label2id is not None:
                    lab = label2id.get(tags[si][wi], IGNORE)
                labels.extend([lab] + [IGNORE] * (len(p) - 1))
            full_labels = [IGNORE] * before + labels + [IGNORE] * len(suffix)
            windows.append(Window(si, ws, we, prefix + ids + suffix, full_labels, first))
    return windows


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


def length_batches(
    windows: Sequence[Window], batch_size: int, shuffle: bool, rng: np.random.Generator | None = None
) -> Iterator[list[int]]:
    """Batches of window indices grouped by length, so little time goes into padding.

    For training, windows are shuffled, sorted by length within pools of 50
    batches, and the batches shuffled: similar lengths together, order still random.
    """
    order = np.arange(len(windows))
    if not shuffle:
        order = sorted(order, key=lambda i: len(windows[i].input_ids))
        for k in range(0, len(order), batch_size):
            yield [int(i) for i in order[k : k + batch_size]]
        return
    rng = rng or np.random.default_rng()
    rng.shuffle(order)
    pool = batch_size * 50
    batches = []
    for k in range(0, len(order), pool):
        chunk = sorted(order[k : k + pool], key=lambda i: len(windows[i].input_ids))
        batches.extend(chunk[j : j + batch_size] for j in range(0, len(chunk), batch_size))
    for b in rng.permutation(len(batches)):
        yield [int(i) for i in batches[b]]


Forward = Callable[[dict[str, torch.Tensor]], torch.Tensor]


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
    probs: list[np.ndarray | None] = [None] * len(sentence_lengths)
    best_ctx: list[np.ndarray] = [np.full(n, -1, dtype=np.int64) for n in sentence_lengths]
    for idx in length_batches(windows, batch_size, shuffle=False):
        batch = collate([windows[i] for i in idx], pad_id, with_labels=False)
        with torch.inference_mode():
            logits = forward(batch).float()
        p = torch.softmax(logits, dim=-1).numpy()
        for row, i in enumerate(idx):
            w = windows[i]
            if probs[w.sent] is None:
                probs[w.sent] = np.zeros((sentence_lengths[w.sent], p.shape[-1]), dtype=np.float32)
            for k, pos in enumerate(w.first_pos):
                wi = w.word_start + k
                ctx = min(k, w.word_end - w.word_start - 1 - k)
                if ctx > best_ctx[w.sent][wi]:
                    best_ctx[w.sent][wi] = ctx
                    probs[w.sent][wi] = p[row, pos]
        if progress:
            progress(len(idx))
    n_labels = probs[0].shape[-1] if probs and probs[0] is not None else 1
    return [p if p is not None else np.zeros((0, n_labels), dtype=np.float32) for p in probs]
