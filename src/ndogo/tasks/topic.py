"""Topic classification: SIB-200-style TSV (`index_id category text`, labels.txt), accuracy and macro-F1."""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar

from ndogo.tasks import register
from ndogo.tasks._sequence import SequenceTask


class Topic(SequenceTask):
    name: ClassVar[str] = "topic"
    metric: ClassVar[str] = "accuracy"  # what SIB-200 reports
    metric_label: ClassVar[str] = "accuracy"
    metrics: ClassVar[tuple[str, ...]] = ("accuracy", "macro_f1")
    pipeline_tag: ClassVar[str] = "text-classification"
    title: ClassVar[str] = "Topic Classification"
    metric_names: ClassVar[dict[str, str]] = {"accuracy": "Accuracy", "macro_f1": "Macro-F1"}
    card_tags: ClassVar[tuple[str, ...]] = ("topic-classification", "sib-200")
    results_note: ClassVar[str] = "Accuracy and macro-F1 over the topics (and F1 per topic), in points."
    licence: ClassVar[str] = "cc-by-sa-4.0"
    data_note: ClassVar[str] = ("whose sentences are FLORES-200's, licensed CC BY-SA 4.0 (Adelani et al. 2024, "
                                "SIB-200), hence `license: cc-by-sa-4.0`. Cite the SIB-200 paper in anything that "
                                "reports results with it.")
    hub_dataset: ClassVar[str] = "Davlan/sib200"  # the card's dataset id
    summary: ClassVar[str] = "topic of a sentence (SIB-200: 7 topics; accuracy, macro-F1)"
    text_columns: ClassVar[tuple[str, ...]] = ("text",)
    label_columns: ClassVar[tuple[str, ...]] = ("category",)

    def looks_like(self, folder: Path) -> bool:
        return self.header_has(folder, self.label_columns)


register(Topic())
