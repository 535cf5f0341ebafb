"""`ndogo score`: entity-level scores of any system's predictions against gold CoNLL."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from ndogo.commands._common import emit, user_errors


def score(
    gold: Annotated[Path, typer.Argument(help="Gold CoNLL file (`token TAG` per line).")],
    pred: Annotated[Path, typer.Argument(help="Predictions, `token predicted_tag` per line, same sentences.")],
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
    pred_column: Annotated[int | None, typer.Option(min=2, help="Column of the predicted tag (1 is the token) in a predictions file with more than two columns, e.g. 2 for `token PRED GOLD`. Without it such a file is refused.")] = None,
) -> None:
    """Entity-level precision, recall and F1 (seqeval default mode, as MasakhaNER reports).

    Scores any system's output, not only ndogo's, so numbers compare with published ones.
    The files must hold the same sentences and tokens; the first difference is named.

    Example (predictions from ndogo, then scored):

      ndogo predict runs/minilm-hau -i ../shared/data/masakhaner/hau/test.txt --input-format conll --format conll > pred.txt

      ndogo score ../shared/data/masakhaner/hau/test.txt pred.txt --json
    """
    from rich.table import Table

    from ndogo.data.conll import DataError, read_conll, read_predictions
    from ndogo.metrics.entity import AlignmentError, score_sentences

    gold_sentences = read_conll(gold).sentences
    if not gold_sentences:
        # F1 0.0 would read as "the system found nothing", not "there was nothing to find"
        raise DataError(gold, None, "no sentences in this file")
    try:
        result = score_sentences(gold_sentences, read_predictions(pred, pred_column))
    except AlignmentError as err:
        # Name both files: the message alone says which sentence, not of which pair.
        raise AlignmentError(f"{pred} does not match {gold}: {err}") from None
    table = Table(title=f"{pred} against {gold}")
    for col in ("type", "precision", "recall", "f1", "support"):
        table.add_column(col, justify="left" if col == "type" else "right")
    for name, v in result["per_type"].items():
        table.add_row(name, f"{v['precision']:.4f}", f"{v['recall']:.4f}", f"{v['f1']:.4f}", str(v["support"]))
    table.add_row("[b]all[/b]", f"{result['precision']:.4f}", f"{result['recall']:.4f}", f"{result['f1']:.4f}", "")
    emit(result, as_json, table)


def register(app: typer.Typer) -> None:
    """Add `ndogo score` to the `ndogo` app."""
    app.command("score")(user_errors(score))
