"""`ndogo serve`: predict's entities over HTTP under concurrency, a 4xx for every bad input, SIGTERM drains."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict
from pathlib import Path
from typing import Any

import httpx
import pytest

from conftest import BLOCK_TORCH
from ndogo.deploy.runtime import load as runtime_load
from ndogo.deploy.serve import Batcher, ServeConfig, build_app, check_loopback

TEXTS = ["Musa Aliyu ya je Kano ranar Litinin.", "Shugaba Buhari ya gana da gwamnan jihar Legas a Abuja.",
         "Amina ta dawo daga Kaduna jiya.", "Kamfanin Dangote ya bude masana'anta a Lagos ranar 3 ga Mayu."]
LIMITS = ServeConfig(max_batch=8, max_wait_ms=20, max_body_bytes=4000, max_text_chars=300, max_texts=10)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def server(tiny_model: Path, tmp_path_factory: pytest.TempPathFactory) -> Any:
    """The app on a real uvicorn server in a thread of this process (loopback, a free port).

    The model is the float ONNX export: int8 dynamic quantization scales activations over the
    whole batch, so an int8 model's scores for a text depend slightly on what it is batched
    with (see test_int8_alone_matches_predict); a float model's do not.
    """
    import uvicorn

    from ndogo.deploy.onnx import export_onnx

    predictor = runtime_load(export_onnx(tiny_model, tmp_path_factory.mktemp("serve") / "onnx"), threads=1)
    port = free_port()
    srv = uvicorn.Server(uvicorn.Config(build_app(predictor, LIMITS, "tiny"), host="127.0.0.1", port=port,
                                        log_level="warning", lifespan="on"))
    thread = threading.Thread(target=srv.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 60
    while not srv.started:
        assert time.monotonic() < deadline and thread.is_alive(), "server did not start"
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}", predictor
    srv.should_exit = True
    thread.join(30)


def rows(found: list) -> list[list[dict[str, Any]]]:
    return [[asdict(e) for e in ents] for ents in found]


def test_concurrent_requests_get_predicts_entities(server: Any) -> None:
    url, predictor = server
    want = dict(zip(TEXTS, rows(predictor.predict(TEXTS)), strict=True))
    assert sum(map(len, want.values())) > 0
    jobs = [TEXTS[i % len(TEXTS)] for i in range(48)]
    with httpx.Client(base_url=url, timeout=60) as client, ThreadPoolExecutor(16) as pool:
        answers = list(pool.map(lambda t: client.post("/v1/entities", json={"text": t}), jobs))
        many = client.post("/v1/entities", json={"texts": TEXTS})
        metrics = client.get("/metrics").text
    assert [a.status_code for a in answers] == [200] * len(jobs)
    assert [a.json()["entities"] for a in answers] == [want[t] for t in jobs]
    assert many.status_code == 200 and many.json()["entities"] == [want[t] for t in TEXTS]
    assert 'ndogo_requests_total{status="200"}' in metrics
    batch_count = next(float(line.split()[-1]) for line in metrics.splitlines()
                       if line.startswith("ndogo_batch_size_count"))
    batch_sum = next(float(line.split()[-1]) for line in metrics.splitlines()
                     if line.startswith("ndogo_batch_size_sum"))
    assert batch_sum >= len(jobs) + len(TEXTS) and batch_count <= batch_sum
    assert "ndogo_request_latency_seconds_bucket" in metrics


BAD = [
    (b"{not json", 400, "malformed JSON"),
    (b"\xff\xfe\x00", 400, "malformed JSON"),
    (b"[1, 2]", 422, "expected a JSON object"),
    (b"{}", 422, "exactly one of"),
    (b'{"text": "a", "texts": ["b"]}', 422, "exactly one of"),
    (b'{"text": "a", "lang": "hau"}', 422, "unknown field 'lang'"),
    (b'{"text": 3}', 422, '"text" must be a string'),
    (b'{"text": null}', 422, '"text" must be a string'),
    (b'{"texts": "Musa"}', 422, '"texts" must be a list'),
    (b'{"texts": []}', 422, '"texts" is empty'),
    (b'{"texts": ["Musa", 7]}', 422, "texts[1] must be a string"),
    (b'{"text": "   "}', 422, "text is empty"),
    (b'{"texts": ["Musa", ""]}', 422, "texts[1] is empty"),
    (json.dumps({"text": "a" * 301}).encode(), 413, "301 characters; the limit is 300"),
    (json.dumps({"texts": ["a"] * 11}).encode(), 413, "the limit is 10 per request"),
    (json.dumps({"text": "a " * 2500}).encode(), 413, "over the limit of 4000"),
]


@pytest.mark.parametrize(("body", "status", "reason"), BAD, ids=[b[2] for b in BAD])
def test_bad_input_gets_a_4xx_with_one_line_and_the_server_survives(server: Any, body: bytes, status: int,
                                                                   reason: str) -> None:
    url, _ = server
    with httpx.Client(base_url=url, timeout=30) as client:
        answer = client.post("/v1/entities", content=body, headers={"content-type": "application/json"})
        assert answer.status_code == status
        error = answer.json()["error"]
        assert reason in error and "\n" not in error
        assert client.post("/v1/entities", json={"text": TEXTS[0]}).status_code == 200


def test_health_methods_and_loopback(server: Any) -> None:
    url, _ = server
    with httpx.Client(base_url=url, timeout=30) as client:
        assert client.get("/healthz").json() == {"status": "ok", "model": "tiny", "kind": "onnx"}
        assert client.get("/v1/entities").status_code == 405
    for host in ("127.0.0.1", "::1", "localhost", "127.0.0.2"):
        assert check_loopback(host) == host
    for host in ("0.0.0.0", "192.168.1.4", "::", "example.com"):
        with pytest.raises(ValueError, match="loopback addresses only"):
            check_loopback(host)


def test_int8_alone_matches_predict(int8_model: Path) -> None:
    """An int8 model's text sent on its own (a batch of one) gets exactly predict's entities for it alone."""
    import uvicorn

    predictor = runtime_load(int8_model, threads=1)
    port = free_port()
    srv = uvicorn.Server(uvicorn.Config(build_app(predictor, LIMITS, "int8"), host="127.0.0.1", port=port,
                                        log_level="warning", lifespan="on"))
    thread = threading.Thread(target=srv.run, daemon=True)
    thread.start()
    try:
        while not srv.started:
            assert thread.is_alive()
            time.sleep(0.05)
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30) as client:
            for text in TEXTS:
                assert client.post("/v1/entities", json={"text": text}).json()["entities"] == \
                    rows(predictor.predict([text]))[0]
    finally:
        srv.should_exit = True
        thread.join(30)


def test_batcher_fills_batches_up_to_its_limit() -> None:
    seen: list[int] = []

    def predict(texts: list[str]) -> list[list[str]]:
        seen.append(len(texts))
        return [[t.upper()] for t in texts]

    async def main() -> list[Any]:
        batcher = Batcher(predict, ServeConfig(max_batch=4, max_wait_ms=50))
        batcher.start()
        try:
            return await asyncio.gather(*(batcher.submit([f"t{i}"]) for i in range(10)))
        finally:
            await batcher.stop()

    assert asyncio.run(main()) == [[[f"T{i}"]] for i in range(10)]
    assert sum(seen) == 10 and max(seen) <= 4 and len(seen) < 10


def test_sigterm_drains_requests_in_flight_torch_free(int8_model: Path) -> None:
    """`ndogo serve` in a process that cannot import torch; a request waiting in a batch is answered after SIGTERM."""
    port = free_port()
    script = BLOCK_TORCH + "import sys\nfrom ndogo.cli import app\nsys.argv = ['ndogo'] + sys.argv[1:]\napp()\n"
    proc = subprocess.Popen([sys.executable, "-c", script, "serve", str(int8_model), "--port", str(port),
                             "--threads", "1", "--max-wait-ms", "3000", "--max-batch", "64"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 120
        while True:
            assert proc.poll() is None, proc.stderr.read()[-2000:]
            try:
                if httpx.get(f"{url}/healthz", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, "server did not start"
            time.sleep(0.2)
        with ThreadPoolExecutor(1) as pool:
            pending = pool.submit(httpx.post, f"{url}/v1/entities", json={"text": TEXTS[0]}, timeout=60)
            time.sleep(1.0)  # the request now waits in the batcher (max wait 3 s)
            assert not pending.done()
            os.kill(proc.pid, signal.SIGTERM)
            answer = pending.result()
        assert answer.status_code == 200 and "entities" in answer.json()
        # uvicorn re-raises the signal once it has shut down, so the exit status says SIGTERM
        assert proc.wait(30) in (0, -signal.SIGTERM)
        assert "Traceback" not in proc.stderr.read()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_serve_command_refuses_other_interfaces_and_bad_bundles(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from ndogo.cli import app

    result = CliRunner().invoke(app, ["serve", str(tmp_path), "--host", "0.0.0.0"])
    assert result.exit_code == 2 and "loopback addresses only" in result.output
    result = CliRunner().invoke(app, ["serve", str(tmp_path / "missing")])
    assert result.exit_code == 2 and "no such model directory" in result.output
