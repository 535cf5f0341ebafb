"""The shared half of tasks that label every word (NER, POS): windows, word-level decoding.

Long sentences are cut into overlapping windows and each word's label is taken
from the window where it has the most context (models/align.py); that code is
the same whatever the labels mean, so token tasks differ only in reading,
labels and scoring.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, ClassVar

from ndogo.models.windowing import collate, encode_sentences, predict_words
from ndogo.tasks import Task


class TokenTask(Task):
    """A task with one label per word."""

    head: ClassVar[str] = "tokens"

    def gold(self, examples: Sequence[Any]) -> list[list[str]]:
        return [list(s.tags) for s in examples]

    def encode(self, tokenizer: Any, examples: Sequence[Any], max_length: int,
               label2id: dict[str, int] | None = None) -> list[Any]:
        tags = [s.tags for s in examples] if label2id is not None else None
        return encode_sentences(tokenizer, [s.tokens for s in examples], max_length, tags, label2id)

    def collate(self, encoded: Sequence[Any], pad_id: int, with_labels: bool = True) -> dict[str, Any]:
        return collate(encoded, pad_id, with_labels)

    def predict(self, forward: Callable[[dict[str, Any]], Any], encoded: Sequence[Any], examples: Sequence[Any],
                labels: Sequence[str], pad_id: int, batch_size: int = 32,
                progress: Callable[[int], None] | None = None) -> list[list[str]]:
        probs = predict_words(forward, encoded, [len(s.tokens) for s in examples], pad_id, batch_size, progress)
        return [[labels[i] for i in p.argmax(-1)] for p in probs]
