"""`ndogo predict`: labels for raw text (or CoNLL) from any model ndogo saves, whatever its task."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Literal

import typer

from ndogo.commands._common import quiet_libraries, user_errors


def predict(
    run: Annotated[Path, typer.Argument(help="Any model directory ndogo saved (dense, pruned, quantized, trimmed, ONNX).")],
    input: Annotated[str, typer.Option("--input", "-i", help="Input file, or - for standard input.")] = "-",
    input_format: Annotated[Literal["text", "conll", "tsv"], typer.Option(help="text: one sentence per line; conll: one word per line (first column), blank line between sentences; tsv: a header, then a text per line in its text column (`text`, or AfriSenti's `tweet`), the other columns ignored: a SIB-200 or AfriSenti split file as it is.")] = "text",
    format: Annotated[Literal["jsonl", "conll"], typer.Option("--format", "-f", help="jsonl: one JSON record per sentence (entities with character offsets, tags, or a label); conll: `word TAG` lines (taggers).")] = "jsonl",
    batch_size: Annotated[int, typer.Option(min=1, help="Windows per forward pass.")] = 32,
    skip_empty: Annotated[bool, typer.Option(help="Leave empty lines out instead of failing (each JSON record keeps its input `line`).")] = False,
    keep_empty: Annotated[bool, typer.Option(help="Pass empty lines through as sentences with no entities, so output lines match input lines.")] = False,
    threads: Annotated[int | None, typer.Option(min=1, help="CPU threads (default: all cores).")] = None,
) -> None:
    """Label raw text with a saved model, whatever its task; prints one JSON line per sentence (or CoNLL).

    What a line holds is the model's task's: a NER model gives its entities, each with its text, label, start and end (character offsets into the line) and score (mean probability of its words' tags); a tagger (POS) gives each word with its tag; a text classifier (topic, sentiment) gives the sentence's label and its probability. Text is split into words like MasakhaNER's (punctuation apart, Yorùbá tone marks and Hausa apostrophes kept inside words; see ndogo.data.words). Long sentences are windowed as in evaluation. Works for every kind of model ndogo saves (dense, pruned, quantized, trimmed, ONNX).

    Example: echo "Musa ya je Kano ranar Litinin." | ndogo predict runs/minilm-hau

    Example (a topic classifier): echo "Kungiyar kwallon kafa ta Kano ta ci wasan." | ndogo predict runs/topic-hau

    Example (a corpus's own split file): ndogo predict runs/topic-hau -i ../shared/data/sib200/hau_Latn/test.tsv --input-format tsv

    Example (CoNLL in and out, then scored): ndogo predict runs/minilm-hau -i ../shared/data/masakhaner/hau/test.txt --input-format conll --format conll > pred.txt; ndogo score ../shared/data/masakhaner/hau/test.txt pred.txt
    """
    quiet_libraries()
    from ndogo.deploy.predict import load, read_sentences, write_predictions

    predictor = load(run, batch_size=batch_size, threads=threads)
    if format == "conll" and predictor.output == "label":  # said before the input is read and labelled
        raise ValueError("conll output holds a tag per word; a text classifier's labels come as jsonl")
    sentences = read_sentences(sys.stdin.buffer if input == "-" else Path(input), input_format, skip_empty, keep_empty,
                               predictor.task.text_columns)
    predictions = predictor.predict_sentences(sentences, show_progress=sys.stderr.isatty())
    write_predictions(predictions, format)


def register(app: typer.Typer) -> None:
    """Add `ndogo predict` to the `ndogo` app."""
    app.command("predict")(user_errors(predict))
