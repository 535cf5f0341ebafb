"""NER: MasakhaNER-style CoNLL (`token TAG`, IOB2 over PER, ORG, LOC, DATE), entity-level F1 (seqeval)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any, ClassVar

from ndogo.data.conll import TAG_RE, Problem
from ndogo.data.corpus import SPLITS, Corpus, labels_for_types, load_corpus, read_ner_file
from ndogo.metrics.entity import score
from ndogo.tasks import register
from ndogo.tasks._tokens import TokenTask


class NER(TokenTask):
    name: ClassVar[str] = "ner"
    metric: ClassVar[str] = "f1"
    metric_label: ClassVar[str] = "F1"
    metrics: ClassVar[tuple[str, ...]] = ("f1", "precision", "recall")
    pipeline_tag: ClassVar[str] = "token-classification"
    output: ClassVar[str] = "entities"
    title: ClassVar[str] = "Named Entity Recognition"
    metric_names: ClassVar[dict[str, str]] = {"f1": "F1 (entity-level, seqeval)", "precision": "Precision",
                                              "recall": "Recall"}
    card_tags: ClassVar[tuple[str, ...]] = ("ner", "masakhaner")
    results_note: ClassVar[str] = "Entity-level F1 (seqeval's default mode, as MasakhaNER reports it), in points."
    licence: ClassVar[str] = "cc-by-nc-4.0"
    data_note: ClassVar[str] = ("whose annotations are licensed CC BY-NC 4.0 (Adelani et al. 2021, 2022): the model "
                                "inherits the non-commercial restriction, hence `license: cc-by-nc-4.0`. Cite the "
                                "MasakhaNER papers in anything that reports results with it.")
    hub_dataset: ClassVar[str] = ""  # the card's dataset id (NER: MasakhaNER 1.0 or 2.0, by language)
    summary: ClassVar[str] = "named entities (MasakhaNER: IOB2 tags per word; entity F1, seqeval)"

    def read_split(self, path: Path) -> tuple[list[Any], list[Problem], str]:
        return read_ner_file(path)

    def load(self, data: str | None, lang: str, splits: tuple[str, ...] = SPLITS) -> Corpus:
        return load_corpus(data, lang, splits)  # a local folder, or MasakhaNER from the hub

    def looks_like(self, folder: Path) -> bool:
        return _last_columns(folder, self.ext, lambda tag: bool(TAG_RE.match(tag)))

    def labels(self, corpora: Sequence[Corpus]) -> list[str]:
        types = {t[2:] for c in corpora for sents in c.splits.values() for s in sents for t in s.tags if t != "O"}
        return labels_for_types(types)

    def categories(self, example: Any) -> list[str]:
        return [t[2:] for t in example.tags if t.startswith("B-")]

    def score(self, gold: list[list[str]], pred: list[list[str]]) -> dict[str, Any]:
        return score(gold, pred)


def _last_columns(folder: Path, ext: str, accept: Any, lines: int = 400) -> bool:
    """Whether the tags (last column) of a split file's first lines are all accepted."""
    for split in SPLITS:
        path = folder / f"{split}.{ext}"
        if not path.is_file():
            continue
        tags = []
        with path.open(encoding="utf-8-sig", errors="replace") as f:
            for _, line in zip(range(lines), f, strict=False):
                parts = line.split()
                if len(parts) >= 2:
                    tags.append(parts[-1])
        if tags:
            return all(accept(t) for t in tags)
    return False


register(NER())
