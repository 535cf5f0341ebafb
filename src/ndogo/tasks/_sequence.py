"""The shared half of tasks that give one label to a whole text (topic, sentiment).

A text is encoded once, truncated to the model's window: SIB-200's sentences and
AfriSenti's tweets are far shorter than 512 sub-words, and a classifier reads
the first window of a longer text (the pipeline does the same). The model is
`AutoModelForSequenceClassification`; decoding is the arg-max label.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import torch

from ndogo.data.conll import Problem
from ndogo.data.corpus import Corpus
from ndogo.data.texts import Text, read_label_list, read_texts
from ndogo.models.align import IGNORE, length_batches
from ndogo.tasks import Task


@dataclass
class TextInput:
    """One encoded text: sub-word ids and its label id (IGNORE when unlabelled)."""

    sent: int
    input_ids: list[int]
    label: int = IGNORE


class SequenceTask(Task):
    """A task with one label per text, read from TSV files with a header."""

    head: ClassVar[str] = "sequence"
    output: ClassVar[str] = "label"
    ext: ClassVar[str] = "tsv"
    text_columns: ClassVar[tuple[str, ...]] = ("text",)
    label_columns: ClassVar[tuple[str, ...]] = ("label",)
    label_order: ClassVar[tuple[str, ...]] = ()  # the label ids' order; else labels.txt's, else sorted
    labels_file: ClassVar[str] = "labels.txt"

    def read_split(self, path: Path) -> tuple[list[Any], list[Problem], str]:
        known = self.known_labels(path.parent)
        texts, problems = read_texts(path, self.text_columns, self.label_columns, known)
        return texts, problems, ""

    def known_labels(self, folder: Path) -> list[str] | None:
        """The corpus's declared label set: `labels.txt` beside the splits, else the task's own list."""
        if (folder / self.labels_file).is_file():
            return read_label_list(folder / self.labels_file)
        return list(self.label_order) or None

    def header_has(self, folder: Path, columns: Sequence[str]) -> bool:
        for split in ("train", "dev", "test"):
            path = folder / f"{split}.{self.ext}"
            if path.is_file():
                with path.open(encoding="utf-8-sig", errors="replace") as f:
                    header = f.readline().rstrip("\r\n").split("\t")
                if header != [""]:
                    return any(c in header for c in columns)
        return False

    def labels(self, corpora: Sequence[Corpus]) -> list[str]:
        found = {t.label for c in corpora for texts in c.splits.values() for t in texts}
        declared = self.known_labels(Path(corpora[0].folder)) if corpora and corpora[0].folder else None
        order = declared or sorted(found)
        return list(order) + sorted(found - set(order))

    def text_of(self, example: Text) -> str:
        return example.text  # as the corpus holds it: a tweet's own spacing is what a user would send

    def categories(self, example: Text) -> list[str]:
        return [example.label]

    def gold(self, examples: Sequence[Text]) -> list[str]:
        return [t.label for t in examples]

    def encode(self, tokenizer: Any, examples: Sequence[Text], max_length: int,
               label2id: dict[str, int] | None = None) -> list[TextInput]:
        ids = tokenizer([t.text for t in examples], truncation=True, max_length=max_length)["input_ids"]
        return [TextInput(i, list(x), label2id.get(t.label, IGNORE) if label2id is not None else IGNORE)
                for i, (x, t) in enumerate(zip(ids, examples, strict=True))]

    def collate(self, encoded: Sequence[TextInput], pad_id: int, with_labels: bool = True) -> dict[str, Any]:
        width = max(len(e.input_ids) for e in encoded)
        ids = torch.full((len(encoded), width), pad_id, dtype=torch.long)
        mask = torch.zeros((len(encoded), width), dtype=torch.long)
        for i, e in enumerate(encoded):
            ids[i, : len(e.input_ids)] = torch.tensor(e.input_ids)
            mask[i, : len(e.input_ids)] = 1
        batch: dict[str, Any] = {"input_ids": ids, "attention_mask": mask}
        if with_labels:
            batch["labels"] = torch.tensor([e.label for e in encoded], dtype=torch.long)
        return batch

    def predict(self, forward: Callable[[dict[str, Any]], Any], encoded: Sequence[TextInput],
                examples: Sequence[Any], labels: Sequence[str], pad_id: int, batch_size: int = 32,
                progress: Callable[[int], None] | None = None) -> list[str]:
        out: list[str] = [""] * len(encoded)
        for idx in length_batches(encoded, batch_size, shuffle=False):  # type: ignore[arg-type]
            chosen = [encoded[i] for i in idx]
            with torch.inference_mode():
                logits = forward(self.collate(chosen, pad_id, with_labels=False))
            for i, best in zip(idx, torch.as_tensor(logits).float().argmax(-1).tolist(), strict=True):
                out[i] = labels[best]
            if progress:
                progress(len(idx))
        return out

    def score(self, gold: list[str], pred: list[str]) -> dict[str, Any]:
        from ndogo.metrics.labels import label_scores

        return label_scores(gold, pred)
