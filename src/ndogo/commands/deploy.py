"""Commands that get a model ready to ship: `trim-vocab`, `export`, `predict` and `ship`."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Any, Literal

import typer

from ndogo.commands._common import quiet_libraries, refuse_used_out, user_errors


def _trim_fixed(
    run: Annotated[Path, typer.Argument(help="A fine-tuned Hugging Face model directory (kind 'hf').")],
    out: Annotated[Path, typer.Option(help="New model directory to write.")],
) -> None:
    """The hand-written part of `trim-vocab`'s signature; the rest comes from TrimConfig."""


TRIM_DOC = """Keep only the sub-words a language uses: a smaller embedding matrix and tokenizer.

Counts the sub-words the model's own tokenizer produces on the training text (and on monolingual text with --corpus), keeps the special tokens, the counted sub-words and the single characters of the text, slices the embedding rows (and any tied output layer) and saves a tokenizer numbered for them. The result is a normal Hugging Face directory.

On any text whose sub-words were all kept, the new tokenizer gives exactly the old tokens; another word falls back to a shorter split into kept sub-words (never the unknown token, unless it has a character the counted text never had).

Example: ndogo trim-vocab runs/minilm-hau --lang hau --data ../shared/data/masakhaner --corpus ../shared/data/monolingual --out runs/trim/minilm-hau-trim
"""


def trim_vocab(run: Path, out: Path, **options: Any) -> None:
    quiet_libraries()
    from ndogo.commands._options import config_from_options
    from ndogo.compress.trim import TrimConfig, trim
    from ndogo.models.runner import size_on_disk

    refuse_used_out(out)
    cfg = config_from_options(TrimConfig, options, {"show_progress": True})
    trim(run, out, cfg)
    from ndogo.models.loading import read_meta

    info = read_meta(out)["trim"]
    if info["dropped_eval_lines"]:
        typer.echo(f"left out {info['dropped_eval_lines']:,} monolingual lines that contain dev/test sentences")
    typer.echo(f"kept {info['vocab_after']:,} of {info['vocab_before']:,} sub-words "
               f"({info['counted']:,} counted, {info['alphabet']} single characters, {info['special']} special); "
               f"{size_on_disk(run) / 1e6:.1f} MB -> {size_on_disk(out) / 1e6:.1f} MB in {out}")


def predict(
    run: Annotated[Path, typer.Argument(help="Any model directory ndogo saved (dense, pruned, quantized, trimmed, ONNX).")],
    input: Annotated[str, typer.Option("--input", "-i", help="Input file, or - for standard input.")] = "-",
    input_format: Annotated[Literal["text", "conll"], typer.Option(help="text: one sentence per line; conll: one word per line (first column), blank line between sentences.")] = "text",
    format: Annotated[Literal["jsonl", "conll"], typer.Option("--format", "-f", help="jsonl: one JSON record per sentence with entities and character offsets; conll: `word TAG` lines.")] = "jsonl",
    batch_size: Annotated[int, typer.Option(min=1, help="Windows per forward pass.")] = 32,
    skip_empty: Annotated[bool, typer.Option(help="Leave empty lines out instead of failing (each JSON record keeps its input `line`).")] = False,
    keep_empty: Annotated[bool, typer.Option(help="Pass empty lines through as sentences with no entities, so output lines match input lines.")] = False,
    threads: Annotated[int | None, typer.Option(min=1, help="CPU threads (default: all cores).")] = None,
) -> None:
    """Find named entities in raw text; prints one JSON line per sentence (or CoNLL).

    Text is split into words like MasakhaNER's (punctuation apart, Yorùbá tone marks and Hausa apostrophes kept inside words; see ndogo.data.words). Each entity has its text, label, start and end (character offsets into the line) and score (mean probability of its words' tags). Long sentences are windowed as in evaluation. Works for every kind of model ndogo saves.

    Example: echo "Musa ya je Kano ranar Litinin." | ndogo predict runs/minilm-hau

    Example (CoNLL in and out, then scored): ndogo predict runs/minilm-hau -i ../shared/data/masakhaner/hau/test.txt --input-format conll --format conll > pred.txt; ndogo score ../shared/data/masakhaner/hau/test.txt pred.txt
    """
    quiet_libraries()
    from ndogo.deploy.predict import load, read_sentences, write_predictions

    predictor = load(run, batch_size=batch_size, threads=threads)
    sentences = read_sentences(sys.stdin.buffer if input == "-" else Path(input), input_format, skip_empty, keep_empty)
    predictions = predictor.predict_sentences(sentences, show_progress=sys.stderr.isatty())
    write_predictions(predictions, format)


def export(
    run: Annotated[Path, typer.Argument(help="onnx: a float model directory (dense, pruned, distilled or trimmed); ort: an ONNX model directory (exported or onnx-int8).")],
    out: Annotated[Path, typer.Option(help="Directory to write: model.onnx (or model.ort), tokenizer, config.json, ndogo.json.")],
    format: Annotated[Literal["onnx", "ort"], typer.Option("--format", help="onnx: ONNX, run by ONNX Runtime; ort: ONNX Runtime's mobile format (from an ONNX model).")] = "onnx",
    optimize: Annotated[bool, typer.Option(help="onnx: fuse attention, LayerNorm and GELU with ONNX Runtime's transformer optimizer.")] = True,
    platform: Annotated[Literal["arm", "amd64"], typer.Option(help="ort: the CPU the model is optimized for (arm for phones).")] = "arm",
) -> None:
    """Export a model to ONNX, or an ONNX model to ONNX Runtime's mobile .ort format, with its tokenizer.

    The ONNX export is checked against PyTorch on a padded batch before it is saved (largest logit difference recorded in ndogo.json). For an int8 ONNX model, quantize instead: `ndogo quantize RUN --method onnx-int8`, which exports and quantizes in one step. `--format ort` converts such a model with onnxruntime's own tool (checked against the ONNX model the same way) and keeps the operator list a minimal ONNX Runtime build needs (required_operators.config). `ndogo evaluate`, `ndogo predict` and `ndogo serve` run both formats.

    Example: ndogo export runs/trim/minilm-hau-trim --format onnx --out runs/trim/minilm-hau-trim-onnx

    Example: ndogo export runs/quantize/hau-onnx-int8 --format ort --out runs/export/hau-int8-ort
    """
    quiet_libraries()
    refuse_used_out(out)
    from ndogo.compress.export import export_onnx
    from ndogo.deploy.onnx import export_ort
    from ndogo.models.loading import read_meta
    from ndogo.models.runner import size_on_disk

    if format == "ort":
        export_ort(run, out, platform=platform)
        reference = "the ONNX model"
    else:
        export_onnx(run, out, optimize=optimize)
        reference = "PyTorch"
    diff = read_meta(out).get("export_max_abs_diff")
    typer.echo(f"exported {run} to {out} ({format}, {size_on_disk(out) / 1e6:.1f} MB; "
               f"largest logit difference from {reference} {diff:.2g})")


def ship(
    run: Annotated[Path, typer.Argument(help="Any model directory ndogo saved (a run, a compressed model, a sweep artifact).")],
    out: Annotated[Path, typer.Option(help="The bundle directory to write (new or empty).")],
    lang: Annotated[str | None, typer.Option(help="Language the model card reports (default: the first the model was trained on).")] = None,
    dataset: Annotated[str | None, typer.Option(help="Hub id of the corpus for the card (default: masakhaner for MasakhaNER 1.0 languages, else masakhane/masakhaner2).")] = None,
) -> None:
    """Write a self-contained bundle: exactly the files inference needs, every one 0644, and a model card.

    The bundle holds the weights (or ONNX graph and its external data), tokenizer, config.json and ndogo.json (labels, window, recipe) and nothing else: not what a run keeps for training (checkpoints, optimizer state, evaluation rows, locks), nor anything else lying in the folder. A model file linked from outside RUN is refused, and OUT may not lie inside RUN. Local paths in ndogo.json and the card are shown relative to the current folder, or by their name. README.md is a Hugging Face model card: YAML front matter (language, license, datasets, tags, model-index metrics), then test and dev F1 overall and per type, size, latency with the machine, the cost against the fine-tuned baseline, the recipe and the commands that rebuild it, usage and known limits. Its numbers come from the model's evaluation rows (<run>/evals/, written by `ndogo evaluate`); what was not measured is written as "not measured". The bundle is checked before the command returns: it loads alone and finds the same entities as RUN.

    Example: ndogo evaluate runs/hau-int8 --lang hau --split dev --no-speed; ndogo evaluate runs/hau-int8 --lang hau; ndogo ship runs/hau-int8 --out bundles/hau-int8
    """
    quiet_libraries()
    from ndogo.deploy.ship import read_evals
    from ndogo.deploy.ship import ship as write_bundle
    from ndogo.models.runner import size_on_disk

    write_bundle(run, out, lang=lang, dataset=dataset)
    measured = ", ".join(f"{k[0]}/{k[1]}" for k in sorted(read_evals(run))) or "none (run ndogo evaluate first)"
    typer.echo(f"shipped {run} to {out} ({size_on_disk(out) / 1e6:.1f} MB; evaluations in the card: {measured})")


def register(app: typer.Typer) -> None:
    """Add this module's commands to the `ndogo` app."""
    from ndogo.commands._options import config_options, parameters, with_signature
    from ndogo.compress.trim import TrimConfig

    command = with_signature(trim_vocab, "trim-vocab", TRIM_DOC, parameters(_trim_fixed),
                             config_options(TrimConfig, skip=("show_progress",)))
    app.command("trim-vocab")(user_errors(command))
    app.command("export")(user_errors(export))
    app.command("predict")(user_errors(predict))
    app.command("ship")(user_errors(ship))
