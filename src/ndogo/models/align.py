"""The torch-free half of windowing: windows over words, padding, and reading words back out.

`ndogo.models.windowing` (training, evaluation, the PyTorch path) and
`ndogo.deploy.runtime` (ONNX Runtime with no torch) must cut sentences into
windows and read each word's prediction from its first sub-word in exactly the
same way, or the two paths would tag the same text differently. So the logic
lives here once, over plain lists and numpy arrays, and each path plugs in its
own tokenizer (a transformers fast tokenizer, or a bare `tokenizers.Tokenizer`)
through two small functions: the sub-word ids of a list of words, and the ids
of one text with or without special tokens.

Nothing here may import torch or transformers: `tests/test_runtime.py` runs the
runtime in a process where importing them fails.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

import numpy as np

IGNORE = -100

# sub-word ids of each word of a pre-split sentence (every word owns at least one id)
PiecesFn = Callable[[Sequence[str]], list[list[int]]]
# ids of one text, with (True) or without (False) the tokenizer's special tokens
EncodeFn = Callable[[str, bool], list[int]]


@dataclass
class Window:
    """One model input: sub-word ids, first-sub-word labels, and which words it holds."""

    sent: int  # index of the sentence
    word_start: int  # first word of the window
    word_end: int  # one past the last word
    input_ids: list[int]
    labels: list[int]  # IGNORE except at first sub-words
    first_pos: list[int]  # position in input_ids of each word's first sub-word, word_start..word_end


def layout_from(encode: EncodeFn) -> tuple[list[int], list[int]]:
    """The special token ids a tokenizer puts before and after a single sequence, read off a real encoding."""
    with_special = encode("a", True)
    plain = encode("a", False)
    for i in range(len(with_special) - len(plain) + 1):
        if with_special[i : i + len(plain)] == plain:
            return with_special[:i], with_special[i + len(plain) :]
    raise ValueError("cannot find how the tokenizer wraps a sequence in special tokens")


def group_pieces(ids: Sequence[int], word_ids: Sequence[int | None], n_words: int, unk: int) -> list[list[int]]:
    """Sub-word ids of each word from a flat encoding and its word ids; a word with none becomes `unk`.

    Every word must own at least one sub-word, or it could never be predicted.
    """
    pieces: list[list[int]] = [[] for _ in range(n_words)]
    for tid, wid in zip(ids, word_ids, strict=True):
        if wid is not None:
            pieces[wid].append(tid)
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


def build_windows(
    pieces_of: PiecesFn,
    layout: tuple[list[int], list[int]],
    sentences: Sequence[Sequence[str]],
    max_length: int,
    tags: Sequence[Sequence[str]] | None = None,
    label2id: dict[str, int] | None = None,
) -> list[Window]:
    """Windows for every sentence, with labels when `tags` are given.

    A gold tag the model has no label for is encoded as IGNORE (it still counts
    against recall when scoring, which uses the gold strings).
    """
    prefix, suffix = layout
    before, n_special = len(prefix), len(prefix) + len(suffix)
    capacity = max_length - n_special
    if capacity < 1:
        raise ValueError(f"max_length {max_length} leaves no room beside {n_special} special tokens")
    windows: list[Window] = []
    for si, words in enumerate(sentences):
        pieces = pieces_of(words) if words else []
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


def pad_batch(windows: Sequence[Window], pad_id: int) -> dict[str, np.ndarray]:
    """`input_ids` and `attention_mask` (int64) of a batch of windows, padded to its longest member."""
    width = max(len(w.input_ids) for w in windows)
    ids = np.full((len(windows), width), pad_id, dtype=np.int64)
    mask = np.zeros((len(windows), width), dtype=np.int64)
    for i, w in enumerate(windows):
        n = len(w.input_ids)
        ids[i, :n] = w.input_ids
        mask[i, :n] = 1
    return {"input_ids": ids, "attention_mask": mask}


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


class WordMerger:
    """Per-word label probabilities of every sentence, collected window by window by max context.

    Each word is read from its first sub-word in the window where it has the most
    context on both sides (the "max context" rule of BERT's SQuAD code).
    """

    def __init__(self, sentence_lengths: Sequence[int]) -> None:
        self.lengths = list(sentence_lengths)
        self.probs: list[np.ndarray | None] = [None] * len(self.lengths)
        self.best_ctx = [np.full(n, -1, dtype=np.int64) for n in self.lengths]

    def add(self, windows: Sequence[Window], probs: np.ndarray) -> None:
        """Take the probabilities (batch, length, labels) the model gave these windows, row by row."""
        for row, w in enumerate(windows):
            if self.probs[w.sent] is None:
                self.probs[w.sent] = np.zeros((self.lengths[w.sent], probs.shape[-1]), dtype=np.float32)
            target, best = self.probs[w.sent], self.best_ctx[w.sent]
            for k, pos in enumerate(w.first_pos):
                wi = w.word_start + k
                ctx = min(k, w.word_end - w.word_start - 1 - k)
                if ctx > best[wi]:
                    best[wi] = ctx
                    target[wi] = probs[row, pos]

    def result(self) -> list[np.ndarray]:
        """(words, labels) probabilities per sentence; a sentence with no words gets an empty array."""
        n_labels = next((p.shape[-1] for p in self.probs if p is not None), 1)
        return [p if p is not None else np.zeros((0, n_labels), dtype=np.float32) for p in self.probs]


def softmax(logits: np.ndarray) -> np.ndarray:
    """Softmax over the last axis in float32, shifted by the maximum so large logits do not overflow."""
    z = logits.astype(np.float32, copy=False)
    z = np.exp(z - z.max(axis=-1, keepdims=True))
    return z / z.sum(axis=-1, keepdims=True)
