"""`ndogo serve`: a shipped bundle behind a loopback HTTP JSON API."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer


def _fixed(
    bundle: Annotated[Path, typer.Argument(help="A bundle from `ndogo ship` (or any model directory ndogo saved).")],
    host: Annotated[str, typer.Option(help="Loopback address to bind (127.0.0.1, ::1 or localhost); others are refused.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=0, max=65535, help="TCP port.")] = 8000,
) -> None:
    """The hand-written part of the signature; every limit is generated from ServeConfig."""


def serve(bundle: Path, host: str = "127.0.0.1", port: int = 8000, **options: Any) -> None:
    """Serve a bundle over HTTP: POST /v1/entities (or /v1/tags, /v1/labels), GET /healthz, GET /metrics.

    A NER bundle is served on POST /v1/entities: it takes {"text": "..."} and answers {"entities": [...]}, or {"texts": [...]} and answers {"entities": [[...], ...]}; each entity has text, label, start, end (character offsets) and score, as `ndogo predict` gives them. A POS tagger is served the same way on POST /v1/tags, answering {"words": [...]} (each word's text, start, end, tag and score), and a text classifier (topic, sentiment) on POST /v1/labels, answering {"label": {"label": ..., "score": ...}} (or {"labels": [...]} for "texts"). /metrics is Prometheus's text format. Concurrent requests are batched together (up to --max-batch windows of the model's length a call, waiting at most --max-wait-ms), taking windows from the waiting requests in turn, so a long request does not hold a short one. Bad input gets a 4xx with {"error": "one-line reason"}: 400 malformed JSON, 404/405 a wrong path or method, 413 over a limit (--max-request-tokens bounds a request's model work), 422 wrong shape or types, an empty text or a lone surrogate. SIGTERM stops accepting connections, answers the requests in flight, says how many, and exits 0.

    With --workers N (default: one per core), N processes share the port, each with its own model on --threads threads (1 by default), so every core tags; SIGTERM or Ctrl-C drains them all, /metrics adds up their counts, and the X-Ndogo-Worker header names the process that answered.

    ONNX bundles run on ONNX Runtime without importing torch. Loopback only: there is no authentication or TLS.

    Example: ndogo serve bundles/hau-int8 --port 8000 --threads 1; curl -s localhost:8000/v1/entities -d '{"text": "Musa ya je Kano."}'
    """
    from ndogo.commands._options import config_from_options
    from ndogo.deploy.serve import ServeConfig, check_loopback
    from ndogo.deploy.serve import serve as run_server

    try:
        check_loopback(host)
        status = run_server(bundle, host, port, config_from_options(ServeConfig, options))
    except (ValueError, FileNotFoundError) as err:
        # Not ndogo.cli.user_errors: it imports torch, which serving an ONNX bundle must not.
        typer.echo(f"error: {err}", err=True)
        raise typer.Exit(2) from None
    if status:
        raise typer.Exit(status)


def register(app: typer.Typer) -> None:
    """Add `ndogo serve` to the `ndogo` app, its limits generated from ServeConfig."""
    from ndogo.commands._options import config_options, parameters, with_signature
    from ndogo.deploy.serve_config import ServeConfig

    app.command("serve")(with_signature(serve, "serve", serve.__doc__ or "", parameters(_fixed),
                                        config_options(ServeConfig)))
