"""POS tagging: MasakhaPOS-style CoNLL (`token UPOS`), word accuracy and macro-F1 over tags."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any, ClassVar

from ndogo.data.conll import Problem, read_sentences
from ndogo.data.corpus import Corpus
from ndogo.metrics.labels import tag_scores
from ndogo.tasks import register
from ndogo.tasks._tokens import TokenTask
from ndogo.tasks.ner import _last_columns

# The 17 Universal Dependencies tags, in the UD documentation's order (the label ids' order)
UPOS = ("ADJ", "ADP", "ADV", "AUX", "CCONJ", "DET", "INTJ", "NOUN", "NUM", "PART", "PRON", "PROPN", "PUNCT",
        "SCONJ", "SYM", "VERB", "X")


def upos_problem(tag: str) -> str | None:
    """Why `tag` is not a UPOS tag, or None."""
    return None if tag in UPOS else f"tag {tag!r} is not a Universal Dependencies POS tag ({', '.join(UPOS)})"


class POS(TokenTask):
    name: ClassVar[str] = "pos"
    metric: ClassVar[str] = "accuracy"
    metric_label: ClassVar[str] = "accuracy"
    metrics: ClassVar[tuple[str, ...]] = ("accuracy", "macro_f1")
    pipeline_tag: ClassVar[str] = "token-classification"
    output: ClassVar[str] = "tags"
    title: ClassVar[str] = "Part-of-Speech Tagging"
    metric_names: ClassVar[dict[str, str]] = {"accuracy": "Accuracy (words)", "macro_f1": "Macro-F1 (tags)"}
    card_tags: ClassVar[tuple[str, ...]] = ("pos", "masakhapos")
    results_note: ClassVar[str] = "Word-level accuracy and macro-F1 over the UPOS tags (and F1 per tag), in points."
    licence: ClassVar[str] = "cc-by-nc-4.0"
    data_note: ClassVar[str] = ("whose annotations are licensed CC BY-NC 4.0 (Dione et al. 2023): the model inherits "
                                "the non-commercial restriction, hence `license: cc-by-nc-4.0`. Cite the MasakhaPOS "
                                "paper in anything that reports results with it.")
    hub_dataset: ClassVar[str] = "masakhane/masakhapos"  # the card's dataset id
    summary: ClassVar[str] = "parts of speech (MasakhaPOS: a UPOS tag per word; word accuracy, macro-F1)"

    def read_split(self, path: Path) -> tuple[list[Any], list[Problem], str]:
        sentences, problems = read_sentences(path, check_tag=upos_problem)
        return sentences, problems, "UPOS"

    def looks_like(self, folder: Path) -> bool:
        return _last_columns(folder, self.ext, lambda tag: tag in UPOS)

    def labels(self, corpora: Sequence[Corpus]) -> list[str]:
        return list(UPOS)  # all 17 always: a tag missing from one language's training set stays predictable

    def categories(self, example: Any) -> list[str]:
        return list(example.tags)

    def score(self, gold: list[list[str]], pred: list[list[str]]) -> dict[str, Any]:
        return tag_scores(gold, pred)


register(POS())
