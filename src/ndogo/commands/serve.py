"""`ndogo serve`: a shipped bundle behind a loopback HTTP JSON API."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer


def serve(
    bundle: Annotated[Path, typer.Argument(help="A bundle from `ndogo ship` (or any model directory ndogo saved).")],
    host: Annotated[str, typer.Option(help="Loopback address to bind (127.0.0.1, ::1 or localhost); others are refused.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=0, max=65535, help="TCP port.")] = 8000,
    max_batch: Annotated[int, typer.Option(min=1, help="Most windows in one model call (dynamic micro-batching; a text up to the model's window is one). 4 was best on a 2-core CPU, where batches of 32 cost more per sentence than single ones; try larger ones where batching pays.")] = 4,
    max_wait_ms: Annotated[float, typer.Option(min=0, help="Longest a text waits for others to fill its batch.")] = 5.0,
    max_body_bytes: Annotated[int, typer.Option(min=1, help="Largest request body; larger ones get 413.")] = 1_000_000,
    max_text_chars: Annotated[int, typer.Option(min=1, help="Longest text; longer ones get 413.")] = 10_000,
    max_texts: Annotated[int, typer.Option(min=1, help="Most texts in one request; more get 413.")] = 256,
    max_request_tokens: Annotated[int, typer.Option(min=1, help="Most model input one request may need, in sub-words (special tokens and window overlaps counted): it bounds how long one request holds the model. More get 413.")] = 16_384,
    threads: Annotated[int | None, typer.Option(min=1, help="CPU threads for the model in each worker (default: 1 with several workers; with --workers 1, the runtime's, one per core).")] = None,
    drain_s: Annotated[float, typer.Option(min=0, help="On SIGTERM, how long requests in flight may take to finish.")] = 30.0,
    workers: Annotated[int | None, typer.Option(help="Worker processes behind the one port, each loading its own model (default: one per core, os.cpu_count()). /metrics sums them all; one that dies is replaced, and said so on stderr. 1 serves in this one process.", show_default=False)] = None,
) -> None:
    """Serve a bundle over HTTP: POST /v1/entities, GET /healthz, GET /metrics (Prometheus).

    POST /v1/entities takes {"text": "..."} and answers {"entities": [...]}, or {"texts": [...]} and answers {"entities": [[...], ...]}; each entity has text, label, start, end (character offsets) and score, as `ndogo predict` gives them. Concurrent requests are batched together (up to --max-batch windows of the model's length a call, waiting at most --max-wait-ms), taking windows from the waiting requests in turn, so a long request does not hold a short one. Bad input gets a 4xx with {"error": "one-line reason"}: 400 malformed JSON, 404/405 a wrong path or method, 413 over a limit (--max-request-tokens bounds a request's model work), 422 wrong shape or types, an empty text or a lone surrogate. SIGTERM stops accepting connections, answers the requests in flight, says how many, and exits 0.

    With --workers N (default: one per core), N processes share the port, each with its own model on --threads threads (1 by default), so every core tags; SIGTERM or Ctrl-C drains them all, /metrics adds up their counts, and the X-Ndogo-Worker header names the process that answered.

    ONNX bundles run on ONNX Runtime without importing torch. Loopback only: there is no authentication or TLS.

    Example: ndogo serve bundles/hau-int8 --port 8000 --threads 1; curl -s localhost:8000/v1/entities -d '{"text": "Musa ya je Kano."}'
    """
    import os

    from ndogo.deploy.serve import ServeConfig, check_loopback
    from ndogo.deploy.serve import serve as run_server

    try:
        check_loopback(host)
        cfg = ServeConfig(max_batch=max_batch, max_wait_ms=max_wait_ms, max_body_bytes=max_body_bytes,
                          max_text_chars=max_text_chars, max_texts=max_texts,
                          max_request_tokens=max_request_tokens, threads=threads, drain_s=drain_s,
                          workers=(os.cpu_count() or 1) if workers is None else workers)
        status = run_server(bundle, host, port, cfg)
    except (ValueError, FileNotFoundError) as err:
        # Not ndogo.cli.user_errors: it imports torch, which serving an ONNX bundle must not.
        typer.echo(f"error: {err}", err=True)
        raise typer.Exit(2) from None
    if status:
        raise typer.Exit(status)


def register(app: typer.Typer) -> None:
    """Add `ndogo serve` to the `ndogo` app."""
    app.command("serve")(serve)
