"""`ndogo evaluate`: the row of metrics every report and sweep compares, for any saved model."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from ndogo.commands._common import emit, quiet_libraries, user_errors


def evaluate(
    run: Annotated[Path, typer.Argument(help="A saved model directory (any kind ndogo saves).")],
    lang: Annotated[str, typer.Option(help="Language code to evaluate on (zero-shot if the model saw another).")],
    data: Annotated[str | None, typer.Option(help="Local corpus folder (<data>/<lang>/<split>.txt or .tsv) or hub corpus; default $NDOGO_DATA or `masakhaner`.")] = None,
    split: Annotated[str, typer.Option(help="train, dev or test.")] = "test",
    batch_size: Annotated[int, typer.Option(min=1, help="Batch size for scoring.")] = 32,
    speed: Annotated[bool, typer.Option(help="Measure latency and throughput (--no-speed to skip).")] = True,
    threads: Annotated[int | None, typer.Option(min=1, help="CPU threads (default: all cores).")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
    device: Annotated[str, typer.Option(help="auto (CUDA when present and the model's kind runs there, else the "
                                        "CPU; $NDOGO_DEVICE overrides), cpu, cuda or cuda:N.")] = "auto",
    task: Annotated[str | None, typer.Option(help="The task to score (ner, pos, topic, sentiment); default: the one "
                                             "the model was trained for.")] = None,
) -> None:
    """The task's metrics (NER: F1 overall and per type; POS: word accuracy and macro-F1; topic and
    sentiment: accuracy and macro-F1, per label too), parameters, size on disk, peak memory, latency and
    throughput.

    Reports and sweeps compare models on exactly these columns, measured the same way for
    every kind of model ndogo saves (dense, pruned, quantized, trimmed, ONNX).

    sparsity is the share of zeros in the whole model (embeddings and head too);
    sparsity_encoder_linear is the share among the encoder's Linear weights, the set
    `ndogo prune` prunes and reports (0.6 there is about 0.28 of minilm as a whole).

    latency_ms_b1 is the median forward time per sentence at batch 1 over the first 200
    sentences (after warm-up, 3 repeats); latency_e2e_ms_b1, raw sentence to entities, is timed
    in the same pass, each sentence right after its forward pass (should it come out below
    latency_ms_b1, the machine's load changed: timed again, then refused); throughput_b32 is
    sentences/s at batch 32.
    The row is also saved as <run>/evals/<lang>-<split>.json (not in a bundle from `ndogo ship`).

    Examples: ndogo evaluate runs/minilm-hau --data ../shared/data/masakhaner --lang hau --json
              ndogo evaluate runs/minilm-topic-hau --data ../shared/data/sib200 --lang hau_Latn
    """
    quiet_libraries()
    from rich.table import Table

    from ndogo.evaluate import evaluate as run_evaluate
    from ndogo.evaluate import save_eval

    result = run_evaluate(run, data, lang, split, batch_size, speed, threads, show_progress=not as_json,
                          device=device, task=task)
    if save_eval(run, result) is None:
        typer.echo(f"note: the row is not saved in {run}: a shipped bundle holds only the files inference reads",
                   err=True)
    table = Table(title=f"{run} on {lang}/{split}")
    table.add_column("metric")
    table.add_column("value", justify="right")
    for key, value in result.items():
        if key != "per_type":
            table.add_row(key, f"{value:.4f}" if isinstance(value, float) else str(value))
    for name, v in result["per_type"].items():
        table.add_row(f"f1 {name}", f"{v['f1']:.4f}")  # per entity type, tag or label
    emit(result, as_json, table)


def register(app: typer.Typer) -> None:
    """Add `ndogo evaluate` to the `ndogo` app."""
    app.command("evaluate")(user_errors(evaluate))
