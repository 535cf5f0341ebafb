"""`ndogo bench`: models measured side by side on this machine (latency, F1 against references, serving, cold start)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer

from ndogo.bench import BENCH_LOCK as LOCK
from ndogo.commands._common import Group, emit, quiet_libraries, user_errors

LockOption = Annotated[str, typer.Option(help="The timing lock held while measuring (the sweeps' `[evaluate] lock`), "
                                              "so no other timing on this machine overlaps; '' holds none.")]
CsvOption = Annotated[Path | None, typer.Option(help="Also write the rows here as CSV.")]
JsonOption = Annotated[bool, typer.Option("--json", help="Machine-readable output.")]

bench_app = typer.Typer(help="Measure models on this machine: side by side (latency), against their references with F1 "
                        "(compare), behind `ndogo serve` (serve-load), from a cold process (cold-start), and whether "
                        "their predictions depend on the batch (batch-invariance).\n\nExample: ndogo bench latency "
                        "runs/minilm-hau runs/quantize/hau-onnx-int8 --lang hau --data ../shared/data/masakhaner",
                        no_args_is_help=True,
                        rich_markup_mode=None, cls=Group)


def latency(
    models: Annotated[list[Path], typer.Argument(help="Model directories (any kind ndogo saves); the first is the reference the ratios are against.")],
    lang: Annotated[str, typer.Option(help="Language whose sentences are timed.")],
    data: Annotated[str | None, typer.Option(help="Local corpus folder (<data>/<lang>/<split>.txt or .tsv: any task's) or hub corpus; default $NDOGO_DATA or `masakhaner`.")] = None,
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


def _counts(text: str, option: str) -> list[int]:
    """`1,8,32` as [1, 8, 32]; anything but positive whole numbers is an error naming the option."""
    try:
        values = [int(x) for x in text.split(",") if x.strip()]
    except ValueError:
        values = []
    if not values or min(values) < 1:
        raise ValueError(f"{option} {text!r}: expected positive whole numbers separated by commas, e.g. 1,8,32")
    return values


def _show(rows: list[dict[str, Any]], title: str, columns: dict[str, str], as_json: bool, csv: Path | None) -> None:
    """Write the rows as CSV (every column), then print them as JSON or as a table of `columns` (key: heading)."""
    from rich.table import Table

    if csv is not None:
        from ndogo.bench import write_csv

        write_csv(rows, csv)
    table = Table(title=title)
    for key, heading in columns.items():
        table.add_column(heading, overflow="fold", justify="right" if all(
            isinstance(r.get(key), int | float) or r.get(key) == "" for r in rows) else "left")
    for r in rows:
        table.add_row(*(str(r.get(key, "")) for key in columns))
    emit({"rows": rows}, as_json, table)
    if csv is not None and not as_json:
        typer.echo(f"wrote {csv}")


def serve_load(
    bundle: Annotated[Path, typer.Argument(help="A bundle from `ndogo ship`, or any model directory ndogo saved.")],
    lang: Annotated[str, typer.Option(help="Language whose test sentences (or texts) are sent, one a request.")],
    data: Annotated[str | None, typer.Option(help="Local corpus folder of the bundle's task (<data>/<lang>/test.txt or .tsv), or hub corpus; default $NDOGO_DATA or `masakhaner`.")] = None,
    workers: Annotated[str, typer.Option(help="Worker counts to serve with, one after the other (comma-separated).")] = "1,2",
    clients: Annotated[str, typer.Option(help="Concurrent closed-loop clients, one level after the other (comma-separated).")] = "1,8,32",
    requests: Annotated[int, typer.Option(min=1, help="Most requests per concurrency level.")] = 600,
    seconds: Annotated[float, typer.Option(min=0.1, help="Most seconds per concurrency level.")] = 40,
    bare_seconds: Annotated[float, typer.Option(min=0, help="Seconds of each bare-model mode (batch 1, batch 32: the model in this process, no server); 0: none.")] = 15,
    max_batch: Annotated[int, typer.Option(min=1, help="The server's largest micro-batch (`ndogo serve --max-batch`).")] = 4,
    max_wait_ms: Annotated[float, typer.Option(min=0, help="`ndogo serve --max-wait-ms`.")] = 5,
    lock: LockOption = LOCK,
    csv: CsvOption = None,
    as_json: JsonOption = False,
) -> None:
    """`ndogo serve` under load: throughput and p50/p99 latency at each concurrency level and worker count, beside the bare model.

    For each worker count the server is started on a free loopback port (one model thread per
    worker), each level of closed-loop clients sends one test text a request, read as the bundle's
    task reads its corpus, to the bundle's endpoint (POST /v1/entities, /v1/tags or /v1/labels) until --requests
    are done or --seconds pass, and the server is stopped; the bare model (this process, batch
    1 and 32) is the ceiling the server is read against (vs_bare_b32), and several workers are
    read against one (vs_1_worker). Each row says how much CPU the load generator and the
    server took, and the machine. Timing wants a quiet machine: run it under bench/quiet.sh.

    Example: ndogo bench serve-load bundles/luo-int8 --lang luo --data ../shared/data/masakhaner --workers 1,2 --csv serve-workers.csv
    """
    quiet_libraries()
    from ndogo.bench.serve_load import serve_load as run_it

    rows = run_it(bundle, data, lang, _counts(workers, "--workers"), _counts(clients, "--clients"), requests, seconds,
                  bare_seconds, max_batch, max_wait_ms, lock or None, progress=lambda line: typer.echo(line, err=True))
    columns = {"workers": "workers", "mode": "mode", "clients": "clients", "requests": "requests", "errors": "errors",
               "throughput_per_s": "per s", "p50_ms": "p50 ms", "p99_ms": "p99 ms", "vs_bare_b32": "×bare b32",
               "vs_1_worker": "×1 worker"}
    _show(rows, f"ndogo serve {bundle}, {lang}, on {rows[0]['cpu']} ({rows[0]['cores']} cores)", columns, as_json, csv)


def cold_start(
    bundle: Annotated[Path, typer.Argument(help="A bundle from `ndogo ship`, or any model directory ndogo saved (an ONNX one shows the torch-free runtime).")],
    repeats: Annotated[int, typer.Option(min=1, help="Fresh processes per path, the two paths alternating; the median is shown.")] = 5,
    timeout: Annotated[float, typer.Option(min=1, help="Longest one process may take, in seconds.")] = 300,
    text: Annotated[str, typer.Option(help="The sentence each process tags.")] = "Musa Aliyu ya je Kano ranar Litinin.",
    lock: LockOption = LOCK,
    csv: CsvOption = None,
    as_json: JsonOption = False,
) -> None:
    """Cold start (process start to the first prediction's entities) and peak memory, torch-free runtime against PyTorch.

    Each measurement is a fresh Python process that imports ndogo, loads the bundle
    (`ndogo.load`: the torch-free runtime for ONNX kinds, or `runtime="torch"`) and tags one
    sentence; the two paths alternate, after one warm-up pair that fills the page cache.
    Each row says whether that path imported torch and transformers, and the machine.

    Example: ndogo bench cold-start bundles/luo-int8 --repeats 5 --csv docs/bench/runtime-cold.csv
    """
    from ndogo.bench.cold_start import cold_start as run_it

    rows = run_it(bundle, repeats, timeout, lock or None, text)
    columns = {"path": "path", "runs": "runs", "cold_start_s_median": "cold start s (median)",
               "cold_start_s_min": "min", "cold_start_s_max": "max", "peak_rss_mb_median": "peak RSS MB",
               "imports_torch": "torch", "predictor": "predictor", "entities": "entities"}
    _show(rows, f"{bundle}: median of {repeats} on {rows[0]['cpu']}", columns, as_json, csv)


def batch_invariance(
    models: Annotated[list[Path], typer.Argument(help="Model directories or bundles (any kind ndogo saves).")],
    lang: Annotated[str, typer.Option(help="Language whose sentences (or texts) are run.")],
    data: Annotated[str | None, typer.Option(help="Local corpus folder of the models' task (<data>/<lang>/<split>.txt or .tsv), or hub corpus; default $NDOGO_DATA or `masakhaner`.")] = None,
    split: Annotated[str, typer.Option(help="train, dev or test.")] = "test",
    f1: Annotated[bool, typer.Option(help="Also score the task's headline metric (F1 for NER, accuracy for POS and topic, macro-F1 for sentiment) at batch size 1 and 32 (as `ndogo evaluate --batch-size`).")] = True,
    csv: CsvOption = None,
    as_json: JsonOption = False,
) -> None:
    """How often a model's predictions for a text change with the batch it runs in: alone against in batches of 32.

    What is compared is the task's prediction: a NER model's entities (label and span), a POS
    tagger's tag of each word, a classifier's label of each text; the corpus is read as the
    model's task reads it (as `ndogo evaluate`). A float model's predictions do not depend on the
    other texts of its batch; ONNX Runtime's dynamic int8 computes one activation scale per batch,
    so an int8 model's can. `ndogo serve` batches concurrent requests, so this is what a served
    model's answers may differ by from `ndogo predict`'s, with the task's headline metric (F1,
    accuracy or macro-F1) at both batch sizes beside it.

    Example: ndogo bench batch-invariance bundles/luo-int8 runs/minilm-luo --lang luo --data ../shared/data/masakhaner --csv batch-invariance.csv
    """
    quiet_libraries()
    from ndogo.bench.batch_invariance import batch_invariance as run_it
    from ndogo.bench.batch_invariance import shown_columns

    rows = [run_it(m, data, lang, split, f1) for m in models]
    unit, columns = shown_columns(rows[0], split)  # named after what the task predicts, and its metric
    _show(rows, f"{lang}/{split}: {unit} alone against in batches of 32", columns, as_json, csv)


def compare(
    row: Annotated[list[str], typer.Option(help="LANG|LABEL|MODEL|REFERENCE: one line of the table (repeatable), e.g. \"hau|distil3|runs/distill/hau-l3|runs/minilm-hau\".")],
    data: Annotated[str | None, typer.Option(help="Local corpus folder (<data>/<lang>/<split>.txt or .tsv: any task's) or hub corpus (the test split is used); default $NDOGO_DATA or `masakhaner`.")] = None,
    work: Annotated[Path | None, typer.Option(help="Cache of measurements: a rerun reuses them, so an interrupted table resumes (default: a temporary folder, not kept).")] = None,
    threads: Annotated[int, typer.Option(min=1, help="CPU threads for timing (F1 is always scored at 1).")] = 1,
    repeats: Annotated[int, typer.Option(min=1, help="Timing repeats per model, each in a fresh process, in alternating order; the median is shown.")] = 3,
    sample: Annotated[int, typer.Option(min=1, help="Test sentences timed (the first of the split), as a sweep's rows time 200.")] = 200,
    device: Annotated[str, typer.Option(help="auto, cpu, cuda or cuda:N (as `ndogo evaluate --device`).")] = "cpu",
    f1_only: Annotated[bool, typer.Option(help="Score F1, size and parameters only, no timing (a busy machine can); a later run with the same --work times.")] = False,
    csv: CsvOption = None,
    markdown: Annotated[Path | None, typer.Option(help="Also write the markdown table (machine and command above it) here.")] = None,
    as_json: JsonOption = False,
) -> None:
    """Models against their references, several pairs in one table: test F1 and ΔF1, parameters, size and speed-ups.

    Students against their teachers, pruned models against the dense one they came from: each
    pair on its language, every measurement in a fresh process as `ndogo evaluate` makes it (F1
    at one thread; then batch-1 latency and batch-32 throughput --repeats times, model and
    reference alternating, the median shown), cached under --work. `ndogo bench latency` times
    models of one language against the first without F1. Timing wants a quiet machine: run it
    under bench/quiet.sh.

    Example: ndogo bench compare --data ../shared/data/masakhaner --work runs/bench/students --row "hau|distil3|runs/distill/minilm-l3-hau|runs/minilm-hau" --csv students.csv --markdown students.md
    """
    import shlex
    import tempfile

    from ndogo.bench.compare import compare as run_it
    from ndogo.bench.compare import f1_only as score_only
    from ndogo.bench.compare import markdown as as_markdown
    from ndogo.bench.compare import parse_pair

    pairs = [parse_pair(r) for r in row]
    with tempfile.TemporaryDirectory(prefix="ndogo-bench-compare-") as tmp:
        cache = work if work is not None else Path(tmp)
        if f1_only:
            score_only(pairs, cache, data, device)
            typer.echo(f"F1 measured for {len(pairs)} pair(s) under {cache}; timing not run (--f1-only)")
            return
        rows = []
        for p in pairs:
            rows.append(run_it(p, cache, data, threads, repeats, sample, device))
            typer.echo(f"{p.lang} {p.label}: ΔF1 {rows[-1]['delta_f1_pts']:+.2f}, {rows[-1]['speedup_b1']:.2f}× b1, "
                       f"{rows[-1]['speedup_b32']:.2f}× b32", err=True)
    argv = [*(["--data", data] if data else []), *(["--work", str(work)] if work else []), "--threads", str(threads),
            "--repeats", str(repeats), *(["--sample", str(sample)] if sample != 200 else []),
            *(["--device", device] if device != "cpu" else []), *(a for r in row for a in ("--row", r))]
    text = as_markdown(rows, "ndogo bench compare " + shlex.join(argv))
    if markdown is not None:
        markdown.parent.mkdir(parents=True, exist_ok=True)
        markdown.write_text(text, encoding="utf-8")
    if csv is not None:
        from ndogo.bench import write_csv

        write_csv(rows, csv)
    typer.echo(json.dumps({"rows": rows}, indent=2, ensure_ascii=False) if as_json else text)


def register(app: typer.Typer) -> None:
    """Add the `ndogo bench` group and its commands to the `ndogo` app."""
    bench_app.command("latency")(user_errors(latency))
    bench_app.command("compare")(user_errors(compare))
    bench_app.command("serve-load")(user_errors(serve_load))
    bench_app.command("cold-start")(user_errors(cold_start))
    bench_app.command("batch-invariance")(user_errors(batch_invariance))
    app.add_typer(bench_app, name="bench")
