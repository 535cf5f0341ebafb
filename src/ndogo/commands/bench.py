"""`ndogo bench latency`: several saved models' size and speed side by side, measured as `ndogo evaluate` does."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from ndogo.commands._common import Group, emit, user_errors

bench_app = typer.Typer(help="Measure models side by side on this machine.\n\nExample: ndogo bench latency "
                        "runs/minilm-hau runs/quantize/hau-onnx-int8 --lang hau --data ../shared/data/masakhaner",
                        no_args_is_help=True,
                        rich_markup_mode=None, cls=Group)


def latency(
    models: Annotated[list[Path], typer.Argument(help="Model directories (any kind ndogo saves); the first is the reference the ratios are against.")],
    lang: Annotated[str, typer.Option(help="Language whose sentences are timed.")],
    data: Annotated[str | None, typer.Option(help="Local MasakhaNER-layout folder or hub corpus; default $NDOGO_DATA or `masakhaner`.")] = None,
    split: Annotated[str, typer.Option(help="train, dev or test.")] = "test",
    sample: Annotated[int, typer.Option(min=1, help="Sentences timed (the first of the split), as a sweep's rows time 200.")] = 200,
    threads: Annotated[int, typer.Option(min=1, help="CPU threads per measurement (1: repeatable on a shared machine).")] = 1,
    repeats: Annotated[int, typer.Option(min=1, help="Fresh processes per model, in alternating order; the median is shown.")] = 3,
    device: Annotated[str, typer.Option(help="auto, cpu, cuda or cuda:N (as `ndogo evaluate --device`).")] = "cpu",
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
) -> None:
    """Size, parameters, batch-1 latency (forward pass and end to end) and batch-32 throughput of several models, as ratios to the first.

    Each model is timed in a fresh process (`--repeats` times, in alternating order, so a change in
    the machine's load falls on every model alike), on the same sentences and with the same
    measurement as `ndogo evaluate`'s speed columns; F1 is not computed (run `ndogo evaluate`).
    Timing wants a quiet machine: on a shared one, run it under bench/quiet.sh.

    Example: ndogo bench latency runs/minilm-hau runs/quantize/hau-onnx-int8 --lang hau --data ../shared/data/masakhaner
    """
    from rich.table import Table

    from ndogo.evaluate import side_by_side

    rows = side_by_side(models, data, lang, split, sample, threads, repeats, device)
    table = Table(title=f"{lang}/{split}, {rows[0]['latency_sentences']} sentences, {threads} thread(s), "
                        f"median of {repeats} on {rows[0]['cpu']}")
    for col in ("model", "kind", "MB", "params", "b1 ms", "e2e ms", "b32 sent/s", "×size", "×b1", "×b32"):
        table.add_column(col, justify="left" if col in ("model", "kind") else "right")
    for r in rows:
        table.add_row(r["model"], r["kind"], f"{r['size_bytes'] / 1e6:.1f}", f"{r['params']:,}",
                      f"{r['latency_ms_b1']:.2f}", f"{r['latency_e2e_ms_b1']:.2f}", f"{r['throughput_b32']:.1f}",
                      f"{r['size_ratio']:.2f}", f"{r['latency_ratio']:.2f}", f"{r['throughput_ratio']:.2f}")
    emit({"rows": rows}, as_json, table)


def register(app: typer.Typer) -> None:
    """Add the `ndogo bench` group and its commands to the `ndogo` app."""
    bench_app.command("latency")(user_errors(latency))
    app.add_typer(bench_app, name="bench")
