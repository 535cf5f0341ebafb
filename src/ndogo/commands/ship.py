"""`ndogo ship`: a self-contained bundle with its model card."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from ndogo.commands._common import quiet_libraries, user_errors


def ship(
    run: Annotated[Path, typer.Argument(help="Any model directory ndogo saved (a run, a compressed model, a sweep artifact).")],
    out: Annotated[Path, typer.Option(help="The bundle directory to write (new or empty).")],
    lang: Annotated[str | None, typer.Option(help="Language the model card reports (default: the first the model was trained on).")] = None,
    dataset: Annotated[str | None, typer.Option(help="Hub id of the corpus for the card (default: the task's corpus, e.g. Davlan/sib200 for topic; for NER masakhaner for MasakhaNER 1.0 languages, else masakhane/masakhaner2).")] = None,
) -> None:
    """Write a self-contained bundle: exactly the files inference needs, every one 0644, and a model card.

    The bundle holds the weights (or ONNX graph and its external data), tokenizer, config.json and ndogo.json (labels, window, recipe) and nothing else: not what a run keeps for training (checkpoints, optimizer state, evaluation rows, locks), nor anything else lying in the folder. A model file linked from outside RUN is refused, and OUT may not lie inside RUN. Local paths in ndogo.json and the card are shown relative to the current folder, or by their name. README.md is a Hugging Face model card: YAML front matter (language, license, datasets, tags, model-index metrics), then test and dev scores in the task's metrics overall and per entity type, tag or label, size, latency with the machine, the cost against the fine-tuned baseline, the recipe and the commands that rebuild it, usage and known limits. Its numbers come from the model's evaluation rows (<run>/evals/, written by `ndogo evaluate`); what was not measured is written as "not measured". The bundle is checked before the command returns: it loads alone and predicts what RUN predicts.

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
    """Add `ndogo ship` to the `ndogo` app."""
    app.command("ship")(user_errors(ship))
