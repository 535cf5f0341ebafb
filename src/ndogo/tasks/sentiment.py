"""Sentiment classification: AfriSenti-style TSV (`tweet label`: negative, neutral, positive), macro-F1."""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar

from ndogo.tasks import register
from ndogo.tasks._sequence import SequenceTask


class Sentiment(SequenceTask):
    name: ClassVar[str] = "sentiment"
    # the classes are unbalanced per language (hau: twice as many negative as neutral), so macro-F1
    # chooses: accuracy would reward a model that favours the largest class
    metric: ClassVar[str] = "macro_f1"
    metric_label: ClassVar[str] = "macro-F1"
    metrics: ClassVar[tuple[str, ...]] = ("macro_f1", "accuracy")
    pipeline_tag: ClassVar[str] = "text-classification"
    title: ClassVar[str] = "Sentiment Analysis"
    metric_names: ClassVar[dict[str, str]] = {"macro_f1": "Macro-F1", "accuracy": "Accuracy"}
    card_tags: ClassVar[tuple[str, ...]] = ("sentiment-analysis", "afrisenti")
    results_note: ClassVar[str] = "Macro-F1 and accuracy over the three classes (and F1 per class), in points."
    licence: ClassVar[str] = "cc-by-4.0"
    data_note: ClassVar[str] = ("whose tweets and labels are licensed CC BY 4.0 (Muhammad et al. 2023), hence "
                                "`license: cc-by-4.0`. Cite the AfriSenti paper in anything that reports results "
                                "with it.")
    hub_dataset: ClassVar[str] = "shmuhammad/AfriSenti-twitter-sentiment"  # the card's dataset id
    summary: ClassVar[str] = "sentiment of a tweet (AfriSenti: negative, neutral, positive; macro-F1, accuracy)"
    text_columns: ClassVar[tuple[str, ...]] = ("tweet", "text")
    label_columns: ClassVar[tuple[str, ...]] = ("label",)
    label_order: ClassVar[tuple[str, ...]] = ("negative", "neutral", "positive")

    def looks_like(self, folder: Path) -> bool:
        return self.header_has(folder, ("tweet",)) or (
            self.header_has(folder, self.label_columns) and not (folder / self.labels_file).is_file())


register(Sentiment())
