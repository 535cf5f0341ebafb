"""Named entities (or POS tags, or a text's label) in raw text, from any model ndogo saves.

What a prediction holds is the model's task's (`ndogo.tasks`, its `output`):
entities with offsets for NER, a tag per word for POS, one label per text for
topic and sentiment. The rest of this docstring is about entities.

`load(run).predict(["Musa ya je Kano."])` splits each text into words
(`ndogo.data.words`), tags the words exactly as evaluation does (same
windowing of long sentences, same first-sub-word reading, through
`ndogo.models.tagging.predict_tags`), and turns the IOB2 tags into entities with
character offsets into the text, a label and a score. Because it goes through
`load_runner`, it works for every kind of model: dense, pruned, distilled,
quantized, trimmed or exported.

Entities and their scores come from `ndogo.deploy.entities`, which the
torch-free runtime (`ndogo.deploy.runtime`) shares: an entity's score is the
mean probability of its words' tags, and tags are read into entities exactly as
seqeval's `get_entities` reads them, so a predicted entity is one F1 counts.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np
import torch

from ndogo.data.conll import TAG_RE, DataError, check_file, decode, is_boundary, shown, split_columns, split_lines
from ndogo.data.words import Word, check_texts, split_words
from ndogo.deploy import entities as _entities
from ndogo.deploy.entities import Entity, Label, word_tags
from ndogo.models.runner import Runner, load_runner
from ndogo.models.tagging import predict_tags
from ndogo.models.windowing import Window, encode_sentences, window_probs

INPUT_FORMATS = ("text", "conll", "tsv")
OUTPUT_FORMATS = ("jsonl", "conll")


@dataclass
class Sentence:
    """One input sentence: its text, its words with offsets, and where it came from (1-based line)."""

    text: str
    words: list[Word]
    line: int = 0


@dataclass
class Prediction:
    """Tags and entities of one sentence (a tagger), or its label (a text classifier)."""

    sentence: Sentence
    tags: list[str]
    scores: list[float]
    entities: list[Entity]
    output: str = "entities"  # the task's: entities, tags or label
    label: Label | None = None

    def result(self) -> Any:
        """What `predict` returns for this text: its entities, its words' tags, or its label."""
        if self.output == "label":
            return self.label
        if self.output == "tags":
            return word_tags(self.sentence.words, [w.text for w in self.sentence.words], self.tags, self.scores)
        return self.entities

    def to_json(self) -> dict[str, Any]:
        """The JSON-lines record: line, text, then entities (offsets are into `text`), words or label."""
        record: dict[str, Any] = {"line": self.sentence.line, "text": self.sentence.text}
        if self.output == "label":
            record.update(asdict(self.label) if self.label is not None else {"label": None, "score": None})
        elif self.output == "tags":
            record["words"] = [asdict(w) for w in self.result()]
        else:
            record["entities"] = [asdict(e) for e in self.entities]
        return record


def entities_from_tags(sentence: Sentence, tags: Sequence[str], scores: Sequence[float]) -> list[Entity]:
    """Entities (seqeval's reading of IOB2 tags) with character offsets and mean word probability."""
    return _entities.entities_from_tags(sentence.text, sentence.words, tags, scores)


class Predictor:
    """A loaded model that finds entities in raw text (see the module docstring)."""

    def __init__(self, runner: Runner, batch_size: int = 32) -> None:
        from ndogo.tasks import task_of_model

        self.runner = runner
        self.batch_size = batch_size
        self.task = task_of_model(runner.meta)

    @property
    def output(self) -> str:
        """What the model predicts: entities, a tag per word, or a label per text (its task's `output`)."""
        return self.task.output

    def predict(self, texts: str | Sequence[str]) -> list[Any]:
        """Entities of each text (a single string counts as one text); a POS tagger gives each word's tag
        (`WordTag`), a text classifier each text's `Label`.

        Raises ValueError on an empty text: there is nothing to tag, and an
        empty line in a one-sentence-per-line file is usually a mistake.
        """
        texts = check_texts(texts)
        sentences = [text_sentence(t, i + 1) for i, t in enumerate(texts)]
        return [p.result() for p in self.predict_sentences(sentences)]

    @property
    def labels(self) -> list[str]:
        return self.runner.labels

    def windows(self, sentences: Sequence[Sequence[str]]) -> list[Window]:
        """The model inputs of pre-split sentences: `ndogo serve` schedules these one by one across requests."""
        return encode_sentences(self.runner.tokenizer, sentences, self.runner.max_length)

    def window_probs(self, windows: Sequence[Window]) -> np.ndarray:
        """Label probabilities (batch, length, labels) of a batch of windows, padded to its longest."""
        return window_probs(self.runner.forward, windows, self.runner.pad_id)

    def predict_sentences(self, sentences: Sequence[Sentence], show_progress: bool = False) -> list[Prediction]:
        """Tags, word scores and entities of already split sentences (empty ones get none); labels of texts."""
        if self.task.head == "sequence":
            return self.label_sentences(sentences)
        words = [[w.text for w in s.words] for s in sentences]
        nonempty = [i for i, w in enumerate(words) if w]
        tags: list[list[str]] = [[] for _ in sentences]
        scores: list[list[float]] = [[] for _ in sentences]
        if nonempty:
            got_tags, got_scores = predict_tags(self.runner, [words[i] for i in nonempty], self.batch_size,
                                                show_progress)
            for i, t, s in zip(nonempty, got_tags, got_scores, strict=True):
                tags[i], scores[i] = t, s
        spans = self.task.output == "entities"  # POS tags are not IOB: no entities are read from them
        return [Prediction(s, t, p, entities_from_tags(s, t, p) if spans else [], self.task.output)
                for s, t, p in zip(sentences, tags, scores, strict=True)]

    def label_sentences(self, sentences: Sequence[Sentence]) -> list[Prediction]:
        """Each text's label and its probability (a text classifier); an empty text gets none."""
        from ndogo.data.texts import Text

        texts = [Text(s.text, "") for s in sentences]
        nonempty = [i for i, s in enumerate(sentences) if s.text.strip()]
        encoded = self.task.encode(self.runner.tokenizer, [texts[i] for i in nonempty], self.runner.max_length)
        labels: list[Label | None] = [None] * len(sentences)
        batch_size = max(1, self.batch_size)
        for k in range(0, len(encoded), batch_size):
            chunk = encoded[k : k + batch_size]
            with torch.inference_mode():
                logits = self.runner.forward(self.task.collate(chunk, self.runner.pad_id, with_labels=False))
            probs = torch.softmax(torch.as_tensor(logits).float(), dim=-1).cpu()
            for j, row in enumerate(probs):
                best = int(row.argmax())
                labels[nonempty[k + j]] = Label(self.runner.labels[best], round(float(row[best]), 4))
        return [Prediction(s, [], [], [], "label", lab) for s, lab in zip(sentences, labels, strict=True)]


def load(run: str | Path, batch_size: int = 32, threads: int | None = None) -> Predictor:
    """Load any saved ndogo model for prediction on raw text.

    Example:
        >>> import ndogo
        >>> ndogo.load("runs/minilm-hau").predict(["Musa ya je Kano ranar Litinin."])
        [[Entity(text='Musa', label='PER', start=0, end=4, score=0.98), ...]]
    """
    if threads:
        torch.set_num_threads(threads)
    return Predictor(load_runner(run), batch_size)


def text_sentence(text: str, line: int) -> Sentence:
    """A raw-text sentence split into words; an empty one is an error naming its line."""
    if not text.strip():
        raise ValueError(f"text {line} is empty: give one non-empty sentence per text")
    return Sentence(text, split_words(text), line)


def conll_sentence(words: list[str], line: int) -> Sentence:
    """A pre-split sentence (CoNLL input): its text is the words joined by single spaces."""
    spans, pos = [], 0
    for w in words:
        spans.append(Word(w, pos, pos + len(w)))
        pos += len(w) + 1
    return Sentence(" ".join(words), spans, line)


def read_text(source: str | Path | BinaryIO) -> tuple[str, str]:
    """(name, text) of a file or binary stream, as UTF-8 (a BOM is allowed)."""
    if isinstance(source, str | Path):
        path = Path(source)
        if path.exists() and not path.is_dir() and not path.is_file():
            check_file(path, "a text or CoNLL file")  # a FIFO would block forever; a folder is named below
        return str(source), decode(source)
    raw = source.read()
    try:
        return "<stdin>", raw.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        line = raw[: err.start].count(b"\n") + 1
        raise DataError("<stdin>", line, f"bytes that are not UTF-8 at byte {err.start} "
                                         f"({raw[err.start:err.start + 4]!r})") from None


def read_sentences(source: str | Path | BinaryIO, input_format: str = "text",
                   skip_empty: bool = False, keep_empty: bool = False,
                   text_columns: Sequence[str] = ("text",)) -> list[Sentence]:
    """Sentences of an input file or stream.

    `text`: one sentence per line. An empty line is an error naming its line;
    with `skip_empty` it is left out (each record keeps its input `line`), with
    `keep_empty` it is a sentence with no entities, so output lines stay aligned
    with input lines. `conll`: one word per line in the first column (other
    columns, such as gold tags, are ignored), a blank line between sentences.
    `tsv`: a header, then one text per line in the first of `text_columns` the
    header names (a SIB-200 or AfriSenti split file; its other columns, the gold
    label among them, are ignored).

    A first line that is a TSV header naming one of `text_columns` is refused as
    `text`: read as a sentence, each line's id and gold label would be labelled
    with its text.
    """
    if skip_empty and keep_empty:
        raise ValueError("--skip-empty leaves empty lines out, --keep-empty passes them through: choose one")
    if input_format not in INPUT_FORMATS:
        raise ValueError(f"input format {input_format!r}: use one of {', '.join(INPUT_FORMATS)}")
    name, text = read_text(source)
    lines = split_lines(Path(name), text, [])  # \n, \r\n and a lone \r end a line; U+2028 does not
    if lines and lines[-1] == "":
        lines.pop()  # the newline that ends the last line does not open a new one
    if input_format == "conll":
        sentences = list(conll_sentences(lines))
    else:
        lines = [line.rstrip("\r") for line in lines]
        first = lines[0] if lines else ""
        column = tsv_text_column(first, text_columns, header_only=input_format == "tsv")
        if input_format == "tsv" and lines:
            if column is None:
                raise DataError(name, 1, f"no text column in the header {shown(first)}; expected one of "
                                f"{', '.join(text_columns)} (columns are separated by tabs)")
            width = len(first.split("\t"))
        elif column is not None:
            found = first.split("\t")[column].strip()
            raise DataError(name, 1, f"a TSV header ({shown(first)}), not a sentence: pass --input-format tsv "
                            f"to label its {found!r} column alone (as text, every line's other columns, "
                            "its gold label among them, would be read as part of the sentence)")
        sentences = []
        for lineno, line in enumerate(lines, start=1):
            if input_format == "tsv":
                if lineno == 1:
                    continue
                fields = line.split("\t")
                if line.strip() and len(fields) != width:
                    raise DataError(name, lineno, f"{len(fields)} tab-separated fields, the header has {width} "
                                    f"(a tab or a line break inside a text?): {shown(line)}")
                line = fields[column or 0].strip() if line.strip() else ""
            if not line.strip():
                if skip_empty:
                    continue
                if not keep_empty:
                    raise DataError(name, lineno, "empty line: give one sentence per line (--skip-empty leaves "
                                                  "empty lines out, --keep-empty passes them through)")
                sentences.append(Sentence(line, [], lineno))
                continue
            sentences.append(Sentence(line, split_words(line), lineno))
    if not sentences:
        raise DataError(name, None, "no sentences in the input")
    return sentences


def tsv_text_column(header: str, text_columns: Sequence[str], header_only: bool = False) -> int | None:
    """Where the first of `text_columns` is in a tab-separated header line; None if it is not one.

    A line without a tab is a sentence (one that reads `text` is not a header), unless the
    line can only be a header (`header_only`: a one-column TSV).
    """
    if "\t" not in header and not header_only:
        return None
    names = [name.strip() for name in header.split("\t")]
    return next((names.index(c) for c in text_columns if c in names), None)


def conll_sentences(lines: Sequence[str]) -> Iterator[Sentence]:
    """Sentences of CoNLL lines: first column is the word, blank lines separate sentences."""
    words: list[str] = []
    start = 0
    for lineno, line in enumerate(lines, start=1):
        if is_boundary(line):
            if words:
                yield conll_sentence(words, start)
                words = []
            continue
        if not words:
            start = lineno
        fields = split_columns(line)  # ASCII spaces and tabs only: a no-break space stays inside its token
        if len(fields) == 1 and line[:1] in (" ", "\t") and TAG_RE.match(fields[0]):
            # " O": a gold line whose token is empty (MasakhaNER 2.0 xho), as `read_conll`
            # reads it; taking the tag for the word would misalign `ndogo score` later.
            words.append("")
        else:
            words.append(fields[0])
    if words:
        yield conll_sentence(words, start)


def write_predictions(predictions: Sequence[Prediction], output_format: str, stream: Any = None) -> None:
    """JSON lines (one record per sentence) or CoNLL (`word TAG`, which `ndogo score` reads)."""
    stream = stream or sys.stdout
    if output_format not in OUTPUT_FORMATS:
        raise ValueError(f"output format {output_format!r}: use one of {', '.join(OUTPUT_FORMATS)}")
    if output_format == "conll" and any(p.output == "label" for p in predictions):
        raise ValueError("conll output holds a tag per word; a text classifier's labels come as jsonl")
    for p in predictions:
        if output_format == "jsonl":
            stream.write(json.dumps(p.to_json(), ensure_ascii=False) + "\n")
        else:
            for w, tag in zip(p.sentence.words, p.tags, strict=True):
                stream.write(f"{w.text} {tag}\n")
            stream.write("\n")
