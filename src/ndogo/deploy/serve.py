"""`ndogo serve`: a bundle behind an HTTP JSON API (Starlette on uvicorn), with dynamic micro-batching.

Endpoints:

* `POST /v1/entities` with `{"text": "..."}` answers `{"entities": [...]}`; with
  `{"texts": ["...", ...]}` it answers `{"entities": [[...], ...]}`, one list per
  text. Each entity is what `ndogo predict` gives: text, label, start and end
  (character offsets into the text) and score.
* A POS tagger is served on `POST /v1/tags` instead, answering `{"words": [...]}` (each word's text,
  start, end, tag and score), and a text classifier on `POST /v1/labels`, answering `{"label":
  {"label", "score"}}` for one text and `{"labels": [...]}` for several: the model's ndogo.json
  (`output`) says which. The same 4xx rules hold on every endpoint.
* `GET /healthz`: 200 `{"status": "ok", ...}` while serving, 503 while draining.
* `GET /metrics`: Prometheus text format (prometheus_client): requests by status,
  errors by reason, request latency and model-call batch-size histograms.

Why micro-batching: where a model call on several sentences costs less than as
many calls on one, concurrent requests should run together. The batcher takes
whatever is waiting when the model becomes free, and waits at most
`max_wait_ms` for more when it has fewer than `max_batch` windows. How large a
batch pays depends on the CPU: on the project's 2-core machine batches of 32
cost more per sentence than single sentences (padding, cache), so the default
`max_batch` is 4 (docs/lab/results-log-2026-11-to-12.md §8 measures both).

Why the unit of work is a window, not a request: a text longer than the model's
window (512 sub-words for most models) is cut into overlapping windows, and two
10,000-character texts are about 30 of them, seconds of model time. Run as one
call, they held every other client that long (issue 35). So each request is cut
into its windows before it joins the queue (by the predictor's own `windows`, so
the entities are the ones `predict` gives), and every model call takes windows
round-robin from the requests waiting: a short request waits for one call, not
for a long one to finish. What one request may ask for in all is bounded by
`max_request_tokens` (model input sub-words, window overlaps counted).
A predictor without `windows` and `window_probs` is scheduled text by text.

Bad input is the client's error and gets a 4xx with a one-line reason, never a
500: 400 malformed JSON (nested too deeply included), 413 a body, a text, a list
or a request's model input over its limit, 422 a body of the wrong shape or
types, an empty text or one with a lone surrogate. Each request is checked and
cut into windows on its own, before it shares a batch; if the model still fails
on a shared batch, each request in it is run on its own, so only the one that
fails gets a 500, and no answer carries another request's text. Unknown paths
(404) and methods (405) are JSON errors too, and `/metrics` counts every error.
The model runs on one worker thread, so a bad request can never take it down.

One model thread tops out near 110-135 sentences/s on the project's CPU while the
other core idles, so `workers` processes (the CLI's default: one per core) serve
the one port, each with its own model on one thread (see `Supervisor`, and
`bind_workers` for how connections are spread). /metrics in any of them sums all
of them, and the `X-Ndogo-Worker` header names the process that answered.

On SIGTERM (or Ctrl-C) uvicorn stops accepting connections, the requests in
flight are answered (up to `drain_s` seconds), the server says how many it
finished (with workers, all of them in one line), and the process exits 0 (1 if
the drain ran out of time).

The server binds loopback addresses only: it has no authentication or TLS, so
anything else belongs behind a reverse proxy that the operator configures. It
binds its port before loading the model, so a port in use is one line, at once.

ONNX bundles are served by the torch-free runtime (`ndogo.deploy.runtime`):
this module imports neither torch nor transformers for them.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import ipaddress
import json
import multiprocessing
import os
import shutil
import signal
import socket
import sys
import tempfile
import time
from collections import deque
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from ndogo.data.words import split_words
from ndogo.deploy.entities import entities_from_tags, word_tags
from ndogo.deploy.serve_config import ServeConfig
from ndogo.models.align import WordMerger

LOOPBACK_NAMES = ("localhost",)


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
        reason = (str(err).splitlines() or ["not JSON"])[0]
        if "integer string conversion" in reason:  # Python's own advice (set_int_max_str_digits) is not the client's
            reason = "an integer of over 4300 digits"
        raise BadInput(400, f"malformed JSON: {reason}") from None
    except RecursionError:  # the parser recurses once per level: [[[[...]]]] of 200 kB runs out of stack
        raise BadInput(400, "malformed JSON: nested too deeply (a request is an object of strings)") from None
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
        try:
            text.encode("utf-8")
        except UnicodeEncodeError as err:  # JSON's "\\ud800" escape: no tokenizer can encode it
            raise BadInput(422, f"{where} has a lone surrogate {text[err.start]!r} at character {err.start}: "
                                "not valid Unicode text") from None
    return texts, single


def text_names(texts: Sequence[str], single: bool) -> list[str]:
    """How a reason names each text of a request: `text` alone, `texts[i]` in a list."""
    return ["text"] if single else [f"texts[{i}]" for i in range(len(texts))]


class TextJob:
    """One request's texts, run through a plain `predict(texts)` a text at a time."""

    def __init__(self, texts: Sequence[str]) -> None:
        self.pending: deque[Any] = deque(enumerate(texts))
        self.found: list[Any] = [None] * len(texts)
        self.future: asyncio.Future[list[Any]] | None = None

    def accept(self, units: Sequence[Any], outputs: Sequence[Any]) -> None:
        for (i, _), out in zip(units, outputs, strict=True):
            self.found[i] = out

    def result(self) -> list[Any]:
        return self.found


class WindowJob:
    """One request cut into the model's windows, merged back into entities as predict does."""

    def __init__(self, texts: Sequence[str], words: list[Any], windows: list[Any], labels: Sequence[str],
                 output: str = "entities") -> None:
        self.texts, self.words, self.labels, self.output = texts, words, labels, output
        # shortest first, as predict batches them: less padding in calls shared with short requests
        self.pending: deque[Any] = deque(sorted(windows, key=lambda w: len(w.input_ids)))
        self.merger = WordMerger([len(ws) for ws in words])
        self.future: asyncio.Future[list[Any]] | None = None

    def accept(self, units: Sequence[Any], outputs: Any) -> None:
        self.merger.add(units, outputs)

    def result(self) -> list[Any]:
        found = []
        for text, ws, p in zip(self.texts, self.words, self.merger.result(), strict=True):
            tags = [self.labels[i] for i in p.argmax(-1)]
            scores = [float(x) for x in p.max(-1)]
            found.append(word_tags(ws, [w.text for w in ws], tags, scores) if self.output == "tags"
                         else entities_from_tags(text, ws, tags, scores))
        return found


class TextModel:
    """A plain `predict(texts)`: the unit of work is a text, and there is no tokenizer to count with."""

    def __init__(self, predict: Callable[[list[str]], list[Any]]) -> None:
        self.predict = predict

    def prepare(self, texts: Sequence[str], names: Sequence[str], max_tokens: int) -> TextJob:
        return TextJob(texts)

    def run(self, units: Sequence[Any]) -> list[Any]:
        return self.predict([text for _, text in units])


class WindowModel:
    """A predictor with `windows` and `window_probs` (both of ndogo's): the unit of work is a window."""

    def __init__(self, predictor: Any) -> None:
        self.predictor = predictor

    def prepare(self, texts: Sequence[str], names: Sequence[str], max_tokens: int) -> WindowJob:
        """The request's windows; BadInput 413 at the text that takes it over `max_tokens`."""
        words, windows, tokens = [], [], 0
        for i, (text, name) in enumerate(zip(texts, names, strict=True)):
            ws = split_words(text)
            mine = self.predictor.windows([[w.text for w in ws]])
            for w in mine:
                w.sent = i
            tokens += sum(len(w.input_ids) for w in mine)
            if tokens > max_tokens:  # stop here: the rest of a 1 MB body is not worth tokenizing
                grows = "needs" if len(texts) == 1 else "brings the request to"
                raise BadInput(413, f"{name} {grows} {tokens} model input tokens (sub-words); "
                                    f"the limit is {max_tokens} per request")
            words.append(ws)
            windows.extend(mine)
        return WindowJob(texts, words, windows, self.predictor.labels, getattr(self.predictor, "output", "entities"))

    def run(self, units: Sequence[Any]) -> Any:
        return self.predictor.window_probs(units)


def work_model(model: Any) -> TextModel | WindowModel:
    """How the batcher runs `model`: by windows where it can cut texts into them, else by texts."""
    if all(hasattr(model, name) for name in ("windows", "window_probs", "labels")) and \
            getattr(model, "output", "entities") != "label":  # a text classifier reads a text whole, not by windows
        return WindowModel(model)
    return TextModel(model.predict if hasattr(model, "predict") else model)


class Batcher:
    """Runs the waiting requests' windows (or texts) through the model, up to `max_batch` a call, round-robin.

    `model` is a predictor (`ndogo.load`'s) or any `predict(texts)` function. Requests are
    checked and cut up on a thread of their own, so the model thread only ever runs the model.
    """

    def __init__(self, model: Any, cfg: ServeConfig, on_batch: Any = None) -> None:
        self.model = work_model(model)
        self.cfg = cfg
        self.on_batch = on_batch
        self.queue: asyncio.Queue[Any] = asyncio.Queue()
        self.active: list[Any] = []
        self.pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="ndogo-model")
        self.prep = ThreadPoolExecutor(max_workers=1, thread_name_prefix="ndogo-prepare")
        self.task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self.task = asyncio.get_running_loop().create_task(self._run())

    async def submit(self, texts: list[str], single: bool = False) -> list[Any]:
        """Entities of each text, once all its windows have run; BadInput where the request asks too much."""
        loop = asyncio.get_running_loop()
        job = await loop.run_in_executor(self.prep, self.model.prepare, texts, text_names(texts, single),
                                         self.cfg.max_request_tokens)
        job.future = loop.create_future()
        await self.queue.put(job)
        return await job.future

    def _waiting(self) -> int:
        return sum(len(job.pending) for job in self.active)

    async def _collect(self) -> None:
        """Wait for work, then at most `max_wait_ms` for more while there is less than a batch."""
        if not self.active:
            self.active.append(await self.queue.get())
        deadline = time.monotonic() + self.cfg.max_wait_ms / 1000
        while self._waiting() < self.cfg.max_batch:
            try:
                job = self.queue.get_nowait()
            except asyncio.QueueEmpty:
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                try:
                    job = await asyncio.wait_for(self.queue.get(), left)
                except TimeoutError:
                    break
            self.active.append(job)
        while not self.queue.empty():  # everything already waiting joins the round-robin now
            self.active.append(self.queue.get_nowait())

    def _pick(self) -> list[tuple[Any, list[Any]]]:
        """One unit from each request in turn until the batch is full: no request waits behind another's."""
        self.active = [job for job in self.active if not job.future.done()]  # a cancelled client
        groups: dict[int, tuple[Any, list[Any]]] = {}
        taken = 0
        while taken < self.cfg.max_batch and self._waiting():
            for job in self.active:
                if job.pending and taken < self.cfg.max_batch:
                    groups.setdefault(id(job), (job, []))[1].append(job.pending.popleft())
                    taken += 1
        if self.active:  # the next call starts its round with the next request
            self.active.append(self.active.pop(0))
        return list(groups.values())

    async def _call(self, units: list[Any]) -> Any:
        out = await asyncio.get_running_loop().run_in_executor(self.pool, self.model.run, units)
        if self.on_batch:
            self.on_batch(len(units))
        return out

    def _fail(self, job: Any, err: BaseException) -> None:
        job.pending.clear()
        if not job.future.done():
            job.future.set_exception(err)

    async def _run(self) -> None:
        while True:
            await self._collect()
            groups = self._pick()
            if not groups:
                continue
            try:
                out = await self._call([u for _, units in groups for u in units])
                k = 0
                for job, units in groups:
                    job.accept(units, out[k : k + len(units)])
                    k += len(units)
            except Exception as err:
                if len(groups) == 1:
                    self._fail(groups[0][0], err)
                else:
                    # The model failed on a shared batch: run each request's part on its own, so only
                    # the one that fails gets the error, and its message names no one else's text.
                    for job, units in groups:
                        try:
                            job.accept(units, await self._call(units))
                        except Exception as own:
                            self._fail(job, own)
            for job, _ in groups:
                if not job.pending and not job.future.done():
                    try:
                        job.future.set_result(job.result())
                    except Exception as err:
                        job.future.set_exception(err)
            self.active = [job for job in self.active if job.pending and not job.future.done()]

    async def stop(self) -> None:
        if self.task is not None:
            self.task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self.task
        self.pool.shutdown(wait=True)
        self.prep.shutdown(wait=True)


def _metrics(shared: bool = False, endpoint: str = "/v1/entities") -> Any:
    """The server's metrics; `shared`: a worker's, exposed summed over every worker of its server.

    Their help names `endpoint`, the path the bundle is served on (`/v1/tags` for a POS tagger,
    `/v1/labels` for a classifier): a scraper's reader is told of the path that exists.

    A worker's metrics live in files of PROMETHEUS_MULTIPROC_DIR (prometheus_client's
    multiprocess mode, set before prometheus_client is imported), and its /metrics reads
    every worker's: counters and histograms add up, and the gauge of requests in flight
    is the sum over the workers alive. They are not registered where they are exposed,
    or each would be counted twice.
    """
    from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

    registry = CollectorRegistry()
    if shared:
        from prometheus_client.multiprocess import MultiProcessCollector

        MultiProcessCollector(registry)
    own = None if shared else registry
    return {
        "registry": registry,
        "requests": Counter("ndogo_requests", f"HTTP requests to {endpoint}, and errors on any path, by status",
                            ["status"], registry=own),
        "errors": Counter("ndogo_request_errors", "Requests answered with an error, by status", ["status"],
                          registry=own),
        "latency": Histogram("ndogo_request_latency_seconds", f"Time from request to response, {endpoint}",
                             buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10), registry=own),
        "batch": Histogram("ndogo_batch_size", "Windows per model call (a text up to the model's window is one)",
                           buckets=(1, 2, 4, 8, 16, 32, 64, 128, 256),
                           registry=own),
        "texts": Counter("ndogo_texts", f"Texts answered on {endpoint}", registry=own),
        "in_flight": Gauge("ndogo_requests_in_flight", "Requests being answered", registry=own,
                           multiprocess_mode="livesum"),
    }


def load_model(bundle: str | Path, threads: int | None) -> Any:
    """The bundle's predictor: torch-free for ONNX kinds, the PyTorch path for the others."""
    from ndogo.deploy import load

    return load(bundle, threads=threads)


def json_answer(payload: dict[str, Any], status: int, headers: dict[str, str] | None = None) -> Any:
    """A JSON response that can always be rendered: a stray lone surrogate is escaped, never a 500."""
    from starlette.responses import JSONResponse, Response

    try:
        return JSONResponse(payload, status_code=status, headers=headers)
    except UnicodeEncodeError:
        body = json.dumps(payload, ensure_ascii=True, separators=(",", ":")).encode()
        return Response(body, status_code=status, headers=headers, media_type="application/json")


# The endpoint of each kind of prediction and the key its answer is under: a NER model's entities, a POS
# tagger's words with their tags, a text classifier's labels (one per text)
ENDPOINTS = {"entities": ("/v1/entities", "entities", "entities"), "tags": ("/v1/tags", "words", "words"),
             "label": ("/v1/labels", "label", "labels")}


def endpoint_of(bundle: str | Path) -> str:
    """The path a bundle is served on, from what its ndogo.json says it outputs (before loading it)."""
    try:
        output = json.loads((Path(bundle) / "ndogo.json").read_text(encoding="utf-8")).get("output", "entities")
    except (OSError, ValueError, AttributeError):
        output = "entities"
    return ENDPOINTS.get(output, ENDPOINTS["entities"])[0]


def build_app(predictor: Any, cfg: ServeConfig, name: str = "model", shared_metrics: bool = False) -> Any:
    """The Starlette application around a loaded predictor (one of ndogo's, or anything with `predict(texts)`).

    `shared_metrics`: this is one worker of several, and /metrics sums them all (see `_metrics`).
    """
    from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
    from starlette.applications import Starlette
    from starlette.exceptions import HTTPException
    from starlette.requests import ClientDisconnect, Request
    from starlette.responses import JSONResponse, Response
    from starlette.routing import Route

    output = getattr(predictor, "output", "entities")
    endpoint, key_one, key_many = ENDPOINTS[output]
    metrics = _metrics(shared_metrics, endpoint)
    # which process answered: with --workers N, a client (or a test) can tell them apart
    worker = {"x-ndogo-worker": str(os.getpid())}
    # answered: the endpoint's answers since start; in_flight: being answered; cancelled: cut off by a drain timeout
    state: dict[str, Any] = {"draining": False, "batcher": None, "answered": 0, "in_flight": 0, "cancelled": 0}

    def count(status: int) -> None:
        metrics["requests"].labels(str(status)).inc()
        if status >= 400:
            metrics["errors"].labels(str(status)).inc()

    def answer(status: int, payload: dict[str, Any], t0: float) -> Response:
        count(status)
        state["answered"] += 1
        metrics["latency"].observe(time.perf_counter() - t0)
        return json_answer(payload, status, worker)

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
        state["in_flight"] += 1
        try:
            texts, single = parse_request(await read_body(request), cfg)
            found = await state["batcher"].submit(texts, single)
            metrics["texts"].inc(len(texts))
            # exactly predict's fields: a list of Entity or WordTag per text, or one Label
            rows = [asdict(one) if not isinstance(one, list) else [asdict(e) for e in one] for one in found]
            return answer(200, {key_one: rows[0]} if single else {key_many: rows}, t0)
        except BadInput as err:
            return answer(err.status, {"error": err.reason}, t0)
        except ClientDisconnect:
            return answer(499, {"error": "client closed the connection"}, t0)
        except asyncio.CancelledError:
            if not state["draining"]:
                raise
            # uvicorn cancels what is left when the drain runs out of time: say so, rather than a traceback
            state["cancelled"] += 1
            return answer(503, {"error": f"the server is shutting down and its drain time ({cfg.drain_s:g} s) "
                                         "ran out before this request's turn"}, t0)
        except Exception as err:  # the model's own failure on this request alone: one line, and the server goes on
            reason = (str(err).strip().splitlines() or [type(err).__name__])[0]
            return answer(500, {"error": f"model error: {reason}"}, t0)
        finally:
            metrics["in_flight"].dec()
            state["in_flight"] -= 1

    async def healthz(request: Request) -> Response:
        if state["draining"]:
            return JSONResponse({"status": "draining"}, status_code=503, headers=worker)
        return JSONResponse({"status": "ok", "model": name, "kind": getattr(predictor, "kind", None)
                             or getattr(getattr(predictor, "runner", None), "kind", None)}, headers=worker)

    async def prometheus(request: Request) -> Response:
        return Response(generate_latest(metrics["registry"]), media_type=CONTENT_TYPE_LATEST, headers=worker)

    routes = [Route(endpoint, entities, methods=["POST"]), Route("/healthz", healthz, methods=["GET"]),
              Route("/metrics", prometheus, methods=["GET"])]
    paths = ", ".join(f"{sorted(r.methods - {'HEAD'})[0]} {r.path}" for r in routes)

    async def http_error(request: Request, exc: Exception) -> Response:
        """Starlette's own 404 and 405, as JSON and counted like every other error."""
        status = getattr(exc, "status_code", 500)
        headers = getattr(exc, "headers", None)
        if status == 405:
            allowed = ", ".join(sorted(m.strip() for m in (headers or {}).get("Allow", "").split(",") if m.strip()))
            reason = f"{request.method} is not allowed on {request.url.path} (allowed: {allowed})"
        elif status == 404:
            reason = f"no such path {request.url.path} (paths: {paths})"
        else:
            reason = str(getattr(exc, "detail", "")) or type(exc).__name__
        count(status)
        return json_answer({"error": reason.splitlines()[0] if reason else str(status)}, status, headers)

    @contextlib.asynccontextmanager
    async def lifespan(app: Any) -> AsyncIterator[None]:
        batcher = Batcher(predictor, cfg, on_batch=metrics["batch"].observe)
        batcher.start()
        state["batcher"] = batcher
        try:
            yield
        finally:
            state["draining"] = True
            await batcher.stop()

    app = Starlette(routes=routes, lifespan=lifespan, exception_handlers={HTTPException: http_error})
    app.state.ndogo = state
    return app


def bind_port(host: str, port: int, reuse_port: bool = False) -> socket.socket:
    """A socket bound to (host, port), before the slow model load; a port in use is a one-line ValueError."""
    # proto IPPROTO_TCP, not the default 0: asyncio sets TCP_NODELAY on an accepted connection only
    # when its socket says it is TCP, and without it Nagle's algorithm meets the client's delayed ACK
    # and every answer waits ~40 ms (one client's p50 went from 10 to 56 ms when the socket was ours)
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn: a port in TIME_WAIT is free
    if reuse_port:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    try:
        sock.bind((host.strip("[]"), port))
    except OSError as err:
        sock.close()
        if err.errno == errno.EADDRINUSE:
            raise ValueError(f"port {port} is in use on {host}: stop what holds it or pick another --port") from None
        raise ValueError(f"cannot bind {host} port {port}: {err.strerror or err}") from None
    return sock


def bind_workers(host: str, port: int, workers: int) -> list[socket.socket]:
    """A bound socket for each worker, all on (host, port), before any model loads.

    Why not one socket that every worker accepts from: asyncio accepts every connection
    waiting when it wakes, so a burst of clients opening connections at once lands on
    one worker, which keeps them (keep-alive): 32 load-test clients sent 320 of 320
    requests to one worker in 2 of 5 tries. With SO_REUSEPORT (Linux) the kernel hashes
    each new connection to one of the workers' sockets. The first bind is a plain one,
    so a port that anything holds, even another server's SO_REUSEPORT sockets, is
    refused in one line as with one worker. Elsewhere the workers share one socket.
    """
    first = bind_port(host, port)
    if workers == 1 or not sys.platform.startswith("linux"):
        return [first] * workers
    port = first.getsockname()[1]  # port 0: the one the kernel chose
    first.close()
    socks: list[socket.socket] = []
    try:
        for _ in range(workers):
            socks.append(bind_port(host, port, reuse_port=True))
    except ValueError:
        for sock in socks:
            sock.close()
        raise
    return socks


@dataclass(frozen=True)
class Drained:
    """How one server (or worker) stopped: what it answered, and what the drain finished or cut off."""

    signal: str  # SIGTERM, SIGINT, or "stopped"
    answered: int  # requests to the served endpoint (/v1/entities, /v1/tags or /v1/labels) answered since start
    finished: int  # requests in flight at the signal, answered after it
    cancelled: int  # requests the drain ran out of time for (answered 503)


def _run_server(app: Any, cfg: ServeConfig, sock: socket.socket, worker: bool = False) -> Drained:
    """Serve `app` on the bound `sock` until a signal, drain, and say what was finished.

    A worker listens to SIGTERM alone: its supervisor takes Ctrl-C (which the terminal sends
    to every process of the group) and forwards SIGTERM, so a worker sees one signal, never
    the second SIGINT that makes uvicorn stop without draining.
    """
    import uvicorn

    state = app.state.ndogo
    stopped: list[int] = []
    signals = (signal.SIGTERM,) if worker else (signal.SIGINT, signal.SIGTERM)

    class Server(uvicorn.Server):
        def handle_exit(self, sig: int, frame: Any) -> None:
            if not stopped:
                stopped.append(sig)
                state["answered_at_signal"] = state["answered"]
            state["draining"] = True  # /healthz says 503 to a balancer from the first signal
            super().handle_exit(sig, frame)

        @contextlib.contextmanager
        def capture_signals(self) -> Iterator[None]:
            # uvicorn's own re-raises the signal after shutting down, so a clean drain would
            # exit 143; this one only installs the handlers, and serve() says how it went.
            originals = {sig: signal.signal(sig, self.handle_exit) for sig in signals}
            try:
                yield
            finally:
                for sig, handler in originals.items():
                    signal.signal(sig, handler)

    config = uvicorn.Config(app, log_level="warning", access_log=False,
                            timeout_graceful_shutdown=int(cfg.drain_s) or None, lifespan="on")
    Server(config).run(sockets=[sock])
    name = signal.Signals(stopped[0]).name if stopped else "stopped"
    finished = state["answered"] - state.get("answered_at_signal", state["answered"]) - state["cancelled"]
    return Drained(name, state["answered"], finished, state["cancelled"])


def _report(drained: Drained, cfg: ServeConfig, workers: int = 1) -> int:
    """Say how the drain went, in one line; the exit status: 0 clean, 1 when the drain ran out of time."""
    if drained.cancelled:
        print(f"error: {drained.signal}: the drain ran out of its {cfg.drain_s:g} s; {drained.cancelled} "
              f"request(s) in flight were answered 503, {drained.finished} finished", file=sys.stderr, flush=True)
        return 1
    plural = "" if drained.finished == 1 else "s"
    whom = f" {workers} workers" if workers > 1 else ""
    print(f"{drained.signal}: drained{whom}, finished the {drained.finished} request{plural} in flight "
          f"({drained.answered} answered in all); exiting", flush=True)
    return 0


def _address(host: str, sock: socket.socket) -> str:
    shown = f"[{host.strip('[]')}]" if ":" in host else host
    return f"http://{shown}:{sock.getsockname()[1]}"


def _one_line(err: BaseException) -> str:
    """An exception as the one line a user sees: ValueError and FileNotFoundError say it all themselves."""
    text = (str(err).strip().splitlines() or [""])[0]
    return text if isinstance(err, ValueError | FileNotFoundError) and text else f"{type(err).__name__}: {text}"


def _die_with_parent() -> None:
    """Have Linux send this worker SIGTERM (a drain) if its supervisor dies without stopping it."""
    try:
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):  # not Linux: the pipe's EOF still stops a worker that waits
        pass


def _worker(bundle: str, host: str, sock: socket.socket, cfg: ServeConfig, conn: Any, metrics_dir: str) -> None:
    """One worker process of `serve --workers N`: loads its own model, then serves the shared socket.

    It tells its supervisor ("ready", pid) once the model answers, and starts serving only
    on "go", which comes when every worker is ready: until then no client can connect
    (no worker listens), so the first connections do not all land on the first to load.
    """
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = metrics_dir  # before prometheus_client is imported: it reads it then
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C reaches the supervisor, which forwards SIGTERM
    _die_with_parent()
    try:
        predictor = load_model(bundle, cfg.threads or 1)
        predictor.predict(["Musa ya je Kano."])  # the first call allocates; no client should wait for it
        app = build_app(predictor, cfg, name=Path(bundle).name, shared_metrics=True)
    except Exception as err:
        conn.send(("error", _one_line(err)))
        sys.exit(2)
    conn.send(("ready", os.getpid()))
    try:
        if conn.recv() != "go":
            return
    except EOFError:  # the supervisor is gone
        return
    drained = _run_server(app, cfg, sock, worker=True)
    with contextlib.suppress(OSError):  # a supervisor that was killed hears nothing (SIGTERM came from Linux)
        conn.send(("done", drained))
    sys.exit(1 if drained.cancelled else 0)


def _how_it_ended(code: int | None) -> str:
    if code is not None and code < 0:
        with contextlib.suppress(ValueError):
            return f"killed by {signal.Signals(-code).name}"
    return f"exit code {code}"


class Supervisor:
    """Runs `cfg.workers` worker processes on the bound port; restarts one that dies while serving.

    Why a supervisor of its own rather than uvicorn's `workers`: uvicorn's needs the app as an
    import string, shares one socket among its workers (a burst of clients lands on one of
    them, see `bind_workers`), logs a dead worker at info level (unseen at warning) and a
    failed start without its reason, and drops what each worker finished in its drain and
    its exit status. Here the port is bound in this process, so a port in use is one line
    before any model loads; each worker loads the model itself, in a spawned interpreter
    (a fork copies whatever threads and locks the parent holds, and Python warns against
    forking a threaded process); SIGTERM or Ctrl-C is forwarded as SIGTERM to every worker,
    each drains, and one line sums them up. A worker that dies while serving is said on
    stderr and replaced, its counts kept in /metrics; one that fails while loading the
    model, or more than `RESTARTS_PER_MINUTE` deaths a minute, stop the server with a
    one-line error.
    """

    RESTARTS_PER_MINUTE = 5
    GRACE_S = 10.0  # beyond drain_s, before a worker that does not exit is killed

    def __init__(self, bundle: str | Path, host: str, socks: list[socket.socket], cfg: ServeConfig) -> None:
        self.bundle, self.host, self.socks, self.cfg = str(bundle), host, socks, cfg
        self.ctx = multiprocessing.get_context("spawn")
        # one fresh directory per server, removed at exit: no stale worker's counts are ever summed in
        self.metrics_dir = tempfile.mkdtemp(prefix="ndogo-serve-metrics-")
        self.procs: dict[int, Any] = {}  # slot -> process
        self.conns: dict[int, Any] = {}  # slot -> pipe end
        self.ready: set[int] = set()
        self.drained: dict[int, Drained] = {}  # slot -> what its worker finished in the drain
        self.deaths: deque[float] = deque()
        self.serving = False
        self.stop_sig: int | None = None
        self.stop_at = 0.0
        self.forced = False
        self.error: str | None = None
        self.lost = 0  # workers that died in the drain without saying what they finished

    def start(self, slot: int) -> None:
        ours, theirs = self.ctx.Pipe()
        proc = self.ctx.Process(target=_worker, name=f"ndogo-serve-{slot}",
                                args=(self.bundle, self.host, self.socks[slot], self.cfg, theirs, self.metrics_dir))
        proc.start()
        theirs.close()
        self.procs[slot], self.conns[slot] = proc, ours
        self.ready.discard(slot)

    def stop(self, sig: int) -> None:
        """Forward the stop to every worker (as SIGTERM) and stop listening; a second Ctrl-C kills them."""
        if self.stop_sig is not None:
            if sig == signal.SIGINT:
                self.forced = True
                self._kill_all(signal.SIGKILL)
            return
        self.stop_sig = sig
        self.stop_at = time.monotonic()
        self._kill_all(signal.SIGTERM)
        for sock in self.socks:  # no new connections wait for a worker that is stopping: the workers' copies
            sock.close()  # stay open until each has stopped accepting

    def _kill_all(self, sig: int) -> None:
        for proc in self.procs.values():
            if proc.exitcode is None and proc.pid:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(proc.pid, sig)

    def fail(self, reason: str) -> None:
        if self.error is None:
            self.error = reason
        self.stop(self.stop_sig or signal.SIGTERM)

    def _message(self, slot: int, msg: tuple[str, Any]) -> None:
        kind, value = msg
        if kind == "error":
            self.fail(value)
        elif kind == "done":
            self.drained[slot] = value
        elif kind == "ready":
            self.ready.add(slot)
            if self.stop_sig is not None:
                return
            if self.serving:  # a replacement
                self._go(slot)
                print(f"worker {slot} (pid {value}) is serving again ({len(self.ready)} workers)", flush=True)
            elif len(self.ready) == self.cfg.workers:
                self.serving = True
                for sock in self.socks:  # from this line on a client connects (and waits for its worker's "go")
                    sock.listen(2048)  # uvicorn's backlog
                pids = ", ".join(str(self.procs[k].pid) for k in sorted(self.procs))
                print(f"serving {self.bundle} on {_address(self.host, self.socks[0])} "
                      f"(POST {endpoint_of(self.bundle)}, GET /healthz, GET /metrics; {self.cfg.workers} workers, "
                      f"pids {pids})",
                      flush=True)
                for k in list(self.conns):
                    self._go(k)

    def _go(self, slot: int) -> None:
        with contextlib.suppress(OSError):  # it died since it was ready: its sentinel says so next
            self.conns[slot].send("go")

    def _ended(self, slot: int) -> None:
        proc, conn = self.procs.pop(slot), self.conns.pop(slot)
        with contextlib.suppress(EOFError, OSError):
            while conn.poll():
                self._message(slot, conn.recv())
        conn.close()
        proc.join()
        was_ready = slot in self.ready
        self.ready.discard(slot)
        with contextlib.suppress(Exception):  # its live gauge (requests in flight) leaves the sum
            from prometheus_client.multiprocess import mark_process_dead

            mark_process_dead(proc.pid, self.metrics_dir)
        how = _how_it_ended(proc.exitcode)
        if self.stop_sig is not None:
            if was_ready and self.serving and slot not in self.drained and not self.forced:
                self.lost += 1
                print(f"error: worker {slot} (pid {proc.pid}) ended in the drain ({how}) without saying what "
                      "it finished", file=sys.stderr, flush=True)
            return
        if not was_ready:
            self.fail(f"worker {slot} (pid {proc.pid}) ended while loading the model ({how})")
            return
        now = time.monotonic()
        self.deaths.append(now)
        while self.deaths and self.deaths[0] < now - 60:
            self.deaths.popleft()
        if len(self.deaths) > self.RESTARTS_PER_MINUTE:
            self.fail(f"worker {slot} (pid {proc.pid}) died ({how}), the {len(self.deaths)}th worker to die in a "
                      "minute; stopping rather than restarting again")
            return
        print(f"warning: worker {slot} (pid {proc.pid}) died while serving ({how}); starting another in its place "
              f"({len(self.ready)} of {self.cfg.workers} workers serving meanwhile)", file=sys.stderr, flush=True)
        self.drained.pop(slot, None)  # one sent SIGTERM on its own drained: the slot's next worker reports anew
        self.start(slot)

    def run(self) -> int:
        """Start the workers and supervise them until they have all stopped; the exit status."""
        from multiprocessing.connection import wait

        for slot in range(self.cfg.workers):
            if self.stop_sig is None:
                self.start(slot)
        while self.procs:
            by_conn = {id(conn): slot for slot, conn in self.conns.items()}
            for obj in wait([*self.conns.values(), *(proc.sentinel for proc in self.procs.values())], timeout=0.5):
                if isinstance(obj, int):
                    continue
                slot = by_conn[id(obj)]
                try:
                    self._message(slot, obj.recv())
                except (EOFError, OSError):  # it is exiting: its sentinel says how
                    pass
            for slot in list(self.procs):
                if self.procs[slot].exitcode is not None:
                    self._ended(slot)
            if self.stop_sig is not None and time.monotonic() - self.stop_at > self.cfg.drain_s + self.GRACE_S:
                self.fail(f"{len(self.procs)} worker(s) did not stop within the drain time; killed them")
                self._kill_all(signal.SIGKILL)
        return self._outcome()

    def _outcome(self) -> int:
        name = signal.Signals(self.stop_sig).name if self.stop_sig else "stopped"
        if self.forced:
            print(f"error: {name} twice: stopped without draining", file=sys.stderr, flush=True)
            return 1
        if self.error is not None:
            if not self.serving:  # the server never served: one line, as a bad bundle is without workers
                raise ValueError(self.error)
            print(f"error: {self.error}", file=sys.stderr, flush=True)
            return 1
        if not self.serving:
            print(f"{name}: stopped while the workers were loading the model; nothing was served", flush=True)
            return 0
        done = self.drained.values()
        total = Drained(name, sum(d.answered for d in done), sum(d.finished for d in done),
                        sum(d.cancelled for d in done))
        status = _report(total, self.cfg, self.cfg.workers)
        return 1 if self.lost else status

    def close(self) -> None:
        """Kill whatever still runs (only after an error in this process) and remove the metrics files."""
        self._kill_all(signal.SIGKILL)
        for proc in self.procs.values():
            proc.join(5)
        shutil.rmtree(self.metrics_dir, ignore_errors=True)


def serve(bundle: str | Path, host: str = "127.0.0.1", port: int = 8000, cfg: ServeConfig | None = None) -> int:
    """Load the bundle and serve it until SIGTERM or Ctrl-C, which drain the requests in flight.

    With `cfg.workers` above 1, as many worker processes serve the one port, each with its own
    model (`cfg.threads` threads, 1 by default): see `Supervisor`.
    Returns the exit status: 0 after a clean drain, 1 when the drain ran out of `drain_s`.
    """
    cfg = cfg or ServeConfig()
    host = check_loopback(host)
    if cfg.workers > 1:
        socks = bind_workers(host, port, cfg.workers)
        supervisor = Supervisor(bundle, host, socks, cfg)
        handlers = {sig: signal.signal(sig, lambda s, f: supervisor.stop(s)) for sig in (signal.SIGINT, signal.SIGTERM)}
        try:
            return supervisor.run()
        finally:
            for sig, handler in handlers.items():
                signal.signal(sig, handler)
            supervisor.close()
            for sock in socks:
                sock.close()
    sock = bind_port(host, port)
    try:
        predictor = load_model(bundle, cfg.threads)
        predictor.predict(["Musa ya je Kano."])  # the first call allocates; no client should wait for it
        app = build_app(predictor, cfg, name=Path(bundle).name)
        print(f"serving {bundle} on {_address(host, sock)} (POST {endpoint_of(bundle)}, GET /healthz, GET /metrics)",
              flush=True)
        drained = _run_server(app, cfg, sock)
    finally:
        sock.close()
    return _report(drained, cfg)
