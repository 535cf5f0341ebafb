"""`ndogo serve`: a bundle behind an HTTP JSON API (Starlette on uvicorn), with dynamic micro-batching.

Endpoints:

* `POST /v1/entities` with `{"text": "..."}` answers `{"entities": [...]}`; with
  `{"texts": ["...", ...]}` it answers `{"entities": [[...], ...]}`, one list per
  text. Each entity is what `ndogo predict` gives: text, label, start and end
  (character offsets into the text) and score.
* `GET /healthz`: 200 `{"status": "ok", ...}` while serving, 503 while draining.
* `GET /metrics`: Prometheus text format (prometheus_client): requests by status,
  errors by reason, request latency and model-call batch-size histograms.

Why micro-batching: where a model call on several sentences costs less than as
many calls on one, concurrent requests should run together. The batcher takes
whatever is waiting when the model becomes free, and waits at most
`max_wait_ms` for more when it has fewer than `max_batch` texts. How large a
batch pays depends on the CPU: on the project's 2-core machine batches of 32
cost more per sentence than single sentences (padding, cache), so the default
`max_batch` is 4 (docs/lab/results-log-2026-11-to-12.md §8 measures both).

Bad input is the client's error and gets a 4xx with a one-line reason, never a
500: 400 malformed JSON, 413 a body, a text or a list over its limit, 422 a
body of the wrong shape or types, or an empty text. The model runs on one
worker thread, so a bad request can never take it down.

On SIGTERM (or Ctrl-C) uvicorn stops accepting connections, the requests in
flight are answered (up to `drain_s` seconds), then the process exits.

The server binds loopback addresses only: it has no authentication or TLS, so
anything else belongs behind a reverse proxy that the operator configures.

ONNX bundles are served by the torch-free runtime (`ndogo.deploy.runtime`):
this module imports neither torch nor transformers for them.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import json
import time
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

LOOPBACK_NAMES = ("localhost",)


@dataclass(frozen=True)
class ServeConfig:
    """Limits and batching of one server."""

    # Texts per model call. Small on purpose: on the project's CPU one int8 minilm thread tags 54-65
    # sentences/s one at a time but 27-28/s in batches of 32, and 32 clients got 1.57x the bare
    # batch-32 throughput with batches of up to 4 against 0.71x with 32 (docs/lab/results-log-2026-11-to-12.md §8).
    max_batch: int = 4
    max_wait_ms: float = 5.0  # longest a text waits for others to join its batch
    max_body_bytes: int = 1_000_000
    max_text_chars: int = 10_000
    max_texts: int = 256  # texts in one request
    threads: int | None = None  # model threads (default: the runtime's)
    drain_s: float = 30.0  # longest SIGTERM waits for requests in flight

    def __post_init__(self) -> None:
        for name in ("max_batch", "max_body_bytes", "max_text_chars", "max_texts"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name.replace('_', '-')} must be at least 1, got {getattr(self, name)}")
        if self.max_wait_ms < 0 or self.drain_s < 0:
            raise ValueError("max-wait-ms and drain-s cannot be negative")


class BadInput(Exception):
    """A request the client must fix: an HTTP status and a one-line reason."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


def check_loopback(host: str) -> str:
    """`host` if it is a loopback address or name; anything else is refused (ValueError)."""
    if host in LOOPBACK_NAMES:
        return host
    try:
        if ipaddress.ip_address(host.strip("[]")).is_loopback:
            return host
    except ValueError:
        pass
    raise ValueError(f"--host {host}: ndogo serve binds loopback addresses only (127.0.0.1, ::1, localhost); "
                     "it has no authentication or TLS, so put a reverse proxy in front to expose it")


def parse_request(body: bytes, cfg: ServeConfig) -> tuple[list[str], bool]:
    """The texts of a request body and whether it was a single `text`; BadInput for anything else."""
    if len(body) > cfg.max_body_bytes:
        raise BadInput(413, f"body of {len(body)} bytes is over the limit of {cfg.max_body_bytes}")
    try:
        data = json.loads(body)
    except (ValueError, UnicodeDecodeError) as err:
        raise BadInput(400, f"malformed JSON: {str(err).splitlines()[0]}") from None
    if not isinstance(data, dict):
        raise BadInput(422, f'expected a JSON object with "text" or "texts", got {type(data).__name__}')
    keys = set(data) & {"text", "texts"}
    if len(keys) != 1:
        raise BadInput(422, 'give exactly one of "text" (a string) or "texts" (a list of strings)')
    if extra := sorted(set(data) - keys):
        raise BadInput(422, f"unknown field {extra[0]!r} (fields: text or texts)")
    single = "text" in data
    texts = [data["text"]] if single else data["texts"]
    if single and not isinstance(data["text"], str):
        raise BadInput(422, f'"text" must be a string, got {type(data["text"]).__name__}')
    if not single:
        if not isinstance(texts, list):
            raise BadInput(422, f'"texts" must be a list of strings, got {type(texts).__name__}')
        if not texts:
            raise BadInput(422, '"texts" is empty: give at least one text')
        if len(texts) > cfg.max_texts:
            raise BadInput(413, f'"texts" has {len(texts)} texts; the limit is {cfg.max_texts} per request')
    for i, text in enumerate(texts):
        where = "text" if single else f"texts[{i}]"
        if not isinstance(text, str):
            raise BadInput(422, f"{where} must be a string, got {type(text).__name__}")
        if not text.strip():
            raise BadInput(422, f"{where} is empty: give a sentence with at least one word")
        if len(text) > cfg.max_text_chars:
            raise BadInput(413, f"{where} has {len(text)} characters; the limit is {cfg.max_text_chars}")
    return texts, single


class Batcher:
    """Runs queued texts through the model in batches of up to `max_batch`, one model call at a time."""

    def __init__(self, predict: Any, cfg: ServeConfig, on_batch: Any = None) -> None:
        self.predict = predict
        self.cfg = cfg
        self.on_batch = on_batch
        self.queue: asyncio.Queue[tuple[list[str], asyncio.Future[list[Any]]]] = asyncio.Queue()
        self.pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="ndogo-model")
        self.task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self.task = asyncio.get_running_loop().create_task(self._run())

    async def submit(self, texts: list[str]) -> list[Any]:
        """Entities of each text, once the batch holding them has run."""
        future: asyncio.Future[list[Any]] = asyncio.get_running_loop().create_future()
        await self.queue.put((texts, future))
        return await future

    async def _collect(self) -> list[tuple[list[str], asyncio.Future[list[Any]]]]:
        items = [await self.queue.get()]
        size = len(items[0][0])
        deadline = time.monotonic() + self.cfg.max_wait_ms / 1000
        while size < self.cfg.max_batch:
            try:
                item = self.queue.get_nowait()
            except asyncio.QueueEmpty:
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                try:
                    item = await asyncio.wait_for(self.queue.get(), left)
                except TimeoutError:
                    break
            items.append(item)
            size += len(item[0])
        return items

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            items = await self._collect()
            texts = [t for batch, _ in items for t in batch]
            try:
                found = await loop.run_in_executor(self.pool, self.predict, texts)
            except Exception as err:  # the model failed: those requests fail, the server goes on
                for _, future in items:
                    if not future.done():
                        future.set_exception(err)
                continue
            if self.on_batch:
                self.on_batch(len(texts))
            k = 0
            for batch, future in items:
                if not future.done():
                    future.set_result(found[k : k + len(batch)])
                k += len(batch)

    async def stop(self) -> None:
        if self.task is not None:
            self.task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self.task
        self.pool.shutdown(wait=True)


def _metrics() -> Any:
    from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

    registry = CollectorRegistry()
    return {
        "registry": registry,
        "requests": Counter("ndogo_requests", "HTTP requests to /v1/entities, by status", ["status"],
                            registry=registry),
        "errors": Counter("ndogo_request_errors", "Requests answered with an error, by status", ["status"],
                          registry=registry),
        "latency": Histogram("ndogo_request_latency_seconds", "Time from request to response, /v1/entities",
                             buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10), registry=registry),
        "batch": Histogram("ndogo_batch_size", "Texts per model call", buckets=(1, 2, 4, 8, 16, 32, 64, 128, 256),
                           registry=registry),
        "texts": Counter("ndogo_texts", "Texts tagged", registry=registry),
        "in_flight": Gauge("ndogo_requests_in_flight", "Requests being answered", registry=registry),
    }


def load_model(bundle: str | Path, threads: int | None) -> Any:
    """The bundle's predictor: torch-free for ONNX kinds, the PyTorch path for the others."""
    import ndogo

    return ndogo.load(bundle, threads=threads)


def build_app(predictor: Any, cfg: ServeConfig, name: str = "model") -> Any:
    """The Starlette application around a loaded predictor (anything with `predict(texts)`)."""
    from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
    from starlette.applications import Starlette
    from starlette.requests import ClientDisconnect, Request
    from starlette.responses import JSONResponse, Response
    from starlette.routing import Route

    metrics = _metrics()
    state: dict[str, Any] = {"draining": False, "batcher": None}

    def answer(status: int, payload: dict[str, Any], t0: float) -> JSONResponse:
        metrics["requests"].labels(str(status)).inc()
        if status >= 400:
            metrics["errors"].labels(str(status)).inc()
        metrics["latency"].observe(time.perf_counter() - t0)
        return JSONResponse(payload, status_code=status)

    async def read_body(request: Request) -> bytes:
        declared = request.headers.get("content-length")
        if declared and declared.isdigit() and int(declared) > cfg.max_body_bytes:
            raise BadInput(413, f"body of {declared} bytes is over the limit of {cfg.max_body_bytes}")
        chunks, size = [], 0
        async for chunk in request.stream():
            size += len(chunk)
            if size > cfg.max_body_bytes:
                raise BadInput(413, f"body is over the limit of {cfg.max_body_bytes} bytes")
            chunks.append(chunk)
        return b"".join(chunks)

    async def entities(request: Request) -> Response:
        t0 = time.perf_counter()
        metrics["in_flight"].inc()
        try:
            texts, single = parse_request(await read_body(request), cfg)
            found = await state["batcher"].submit(texts)
            metrics["texts"].inc(len(texts))
            rows = [[asdict(e) for e in ents] for ents in found]  # exactly predict's Entity fields
            return answer(200, {"entities": rows[0] if single else rows}, t0)
        except BadInput as err:
            return answer(err.status, {"error": err.reason}, t0)
        except ClientDisconnect:
            return answer(499, {"error": "client closed the connection"}, t0)
        except Exception as err:  # the model's own failure, not the client's: one line, and the server goes on
            reason = (str(err).strip().splitlines() or [type(err).__name__])[0]
            return answer(500, {"error": f"model error: {reason}"}, t0)
        finally:
            metrics["in_flight"].dec()

    async def healthz(request: Request) -> Response:
        if state["draining"]:
            return JSONResponse({"status": "draining"}, status_code=503)
        return JSONResponse({"status": "ok", "model": name, "kind": getattr(predictor, "kind", None)
                             or getattr(getattr(predictor, "runner", None), "kind", None)})

    async def prometheus(request: Request) -> Response:
        return Response(generate_latest(metrics["registry"]), media_type=CONTENT_TYPE_LATEST)

    @contextlib.asynccontextmanager
    async def lifespan(app: Any) -> AsyncIterator[None]:
        batcher = Batcher(predictor.predict, cfg, on_batch=metrics["batch"].observe)
        batcher.start()
        state["batcher"] = batcher
        try:
            yield
        finally:
            state["draining"] = True
            await batcher.stop()

    app = Starlette(routes=[Route("/v1/entities", entities, methods=["POST"]),
                            Route("/healthz", healthz, methods=["GET"]),
                            Route("/metrics", prometheus, methods=["GET"])], lifespan=lifespan)
    app.state.ndogo = state
    return app


def serve(bundle: str | Path, host: str = "127.0.0.1", port: int = 8000, cfg: ServeConfig | None = None) -> None:
    """Load the bundle and serve it until SIGTERM or Ctrl-C (which drain the requests in flight)."""
    import uvicorn

    cfg = cfg or ServeConfig()
    host = check_loopback(host)
    predictor = load_model(bundle, cfg.threads)
    predictor.predict(["Musa ya je Kano."])  # the first call allocates; no client should wait for it
    app = build_app(predictor, cfg, name=Path(bundle).name)

    class Server(uvicorn.Server):
        def handle_exit(self, sig: int, frame: Any) -> None:
            app.state.ndogo["draining"] = True  # /healthz says 503 to a balancer from the first signal
            super().handle_exit(sig, frame)

    config = uvicorn.Config(app, host=host, port=port, log_level="warning", access_log=False,
                            timeout_graceful_shutdown=int(cfg.drain_s) or None, lifespan="on")
    print(f"serving {bundle} on http://{host}:{port} (POST /v1/entities, GET /healthz, GET /metrics)", flush=True)
    Server(config).run()
