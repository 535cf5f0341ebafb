"""Entities from word tags, with character offsets: shared by the PyTorch path and the torch-free runtime.

An entity's score is the mean, over its words, of the probability the model
gave the word's predicted tag: the same "average" aggregation as the Hugging
Face token-classification pipeline, so scores read the way users expect.

Tags are read into entities exactly as seqeval's `get_entities` reads them (the
function entity-level F1 is scored with), so a predicted entity here is exactly
an entity that F1 counts. `get_entities` is ported below rather than imported
because importing seqeval imports scikit-learn (and with it scipy): about
100 MB of memory and seconds of start-up that the torch-free runtime exists to
avoid. `tests/test_runtime.py` checks the port against seqeval on random tag
sequences, invalid ones included.

Nothing here imports torch, transformers or seqeval.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol


@dataclass
class Label:
    """A text's predicted label and its probability (a text classifier's prediction)."""

    label: str
    score: float


@dataclass
class WordTag:
    """A word, where it is in the text, its predicted tag and the tag's probability (a POS tagger's)."""

    text: str
    start: int
    end: int
    tag: str
    score: float


def word_tags(words: Sequence[Span], texts: Sequence[str], tags: Sequence[str],
              scores: Sequence[float]) -> list[WordTag]:
    """Each word with its tag: what a tagger whose tags are not spans (POS) predicts."""
    return [WordTag(t, w.start, w.end, tag, round(float(s), 4))
            for w, t, tag, s in zip(words, texts, tags, scores, strict=True)]


class Span(Protocol):
    """A word of the text: its characters are `text[start:end]`."""

    start: int
    end: int


@dataclass(frozen=True)
class Entity:
    """One entity: `text == source[start:end]`, its label (PER, LOC, ...) and score in [0, 1]."""

    text: str
    label: str
    start: int
    end: int
    score: float


def _end_of_chunk(prev_tag: str, tag: str, prev_type: str, type_: str) -> bool:
    """seqeval's `end_of_chunk`: did a chunk end between the previous word and this one?"""
    if prev_tag in ("E", "S"):
        return True
    if prev_tag in ("B", "I") and tag in ("B", "S", "O"):
        return True
    return prev_tag not in ("O", ".") and prev_type != type_


def _start_of_chunk(prev_tag: str, tag: str, prev_type: str, type_: str) -> bool:
    """seqeval's `start_of_chunk`: does a chunk start at this word?"""
    if tag in ("B", "S"):
        return True
    if prev_tag in ("E", "S", "O") and tag in ("E", "I"):
        return True
    return tag not in ("O", ".") and prev_type != type_


def get_entities(tags: Sequence[str]) -> list[tuple[str, int, int]]:
    """(type, first word, last word) of each chunk, as `seqeval.metrics.sequence_labeling.get_entities` gives.

    Prefix style (B-PER), seqeval's default mode; a stray I- opens a chunk, as in seqeval.
    """
    prev_tag, prev_type, begin = "O", "", 0
    chunks = []
    for i, chunk in enumerate([*tags, "O"]):
        tag = chunk[0]
        type_ = chunk[1:].split("-", maxsplit=1)[-1] or "_"
        if _end_of_chunk(prev_tag, tag, prev_type, type_):
            chunks.append((prev_type, begin, i - 1))
        if _start_of_chunk(prev_tag, tag, prev_type, type_):
            begin = i
        prev_tag, prev_type = tag, type_
    return chunks


def entities_from_tags(text: str, words: Sequence[Span], tags: Sequence[str],
                       scores: Sequence[float]) -> list[Entity]:
    """Entities (seqeval's reading of IOB2 tags) with character offsets into `text` and mean word probability."""
    found = []
    for label, first, last in get_entities(list(tags)):
        start, end = words[first].start, words[last].end
        score = sum(scores[first : last + 1]) / (last - first + 1)
        found.append(Entity(text[start:end], label, start, end, round(score, 6)))
    return found
