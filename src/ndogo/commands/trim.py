"""`ndogo trim-vocab`: keep only the sub-words a language uses (ndogo.compress.trim)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

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
    from ndogo.compress.recipe import run_stage
    from ndogo.compress.trim import TrimConfig
    from ndogo.models.runner import size_on_disk

    refuse_used_out(out)
    cfg = config_from_options(TrimConfig, options, {"show_progress": True})
    run_stage("trim", run, out, cfg)
    from ndogo.models.loading import read_meta

    info = read_meta(out)["trim"]
    if info["dropped_eval_lines"]:
        typer.echo(f"left out {info['dropped_eval_lines']:,} monolingual lines that contain dev/test sentences")
    typer.echo(f"kept {info['vocab_after']:,} of {info['vocab_before']:,} sub-words "
               f"({info['counted']:,} counted, {info['alphabet']} single characters, {info['special']} special); "
               f"{size_on_disk(run) / 1e6:.1f} MB -> {size_on_disk(out) / 1e6:.1f} MB in {out}")


def register(app: typer.Typer) -> None:
    """Add `ndogo trim-vocab` to the `ndogo` app, its options generated from TrimConfig."""
    from ndogo.commands._options import config_options, parameters, with_signature
    from ndogo.compress.trim import TrimConfig

    command = with_signature(trim_vocab, "trim-vocab", TRIM_DOC, parameters(_trim_fixed),
                             config_options(TrimConfig, skip=("show_progress",)))
    app.command("trim-vocab")(user_errors(command))
