"""Speed and memory, measured the same way for every kind of model.

Latency is the model's forward pass on already-tokenized input (tokenizing is
the same for every compressed variant of a model, so leaving it out makes the
ratios between variants sharper). It is measured after warm-up, per sentence,
over a fixed sample, repeated, and the median taken, which on a quiet machine
repeats within a few percent. Throughput runs the same sample in batches of 32.
"""

from __future__ import annotations

import platform
import resource
import statistics
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import torch

from ndogo.device import device_name, synchronize, to_device
from ndogo.models.windowing import Window, collate

Forward = Callable[[dict[str, torch.Tensor]], torch.Tensor]


def group_by_sentence(windows: Sequence[Window]) -> list[list[Window]]:
    """Windows of each sentence together (a long sentence is one request of several windows)."""
    groups: dict[int, list[Window]] = {}
    for w in windows:
        groups.setdefault(w.sent, []).append(w)
    return [groups[k] for k in sorted(groups)]


def latency_ms(forward: Forward, windows: Sequence[Window], pad_id: int, repeats: int = 3,
               warmup: int = 20, device: torch.device | None = None) -> float:
    """Median milliseconds to run one sentence at batch size 1.

    On a GPU the batches are moved there before timing (on a CPU they are already where the model
    reads them), and each timed forward ends with `synchronize`: a CUDA call returns as soon as
    its kernels are queued, so without it the timer would measure the queueing alone.
    """
    device = device or torch.device("cpu")
    sentences = group_by_sentence(windows)
    batches = [to_device(collate(g, pad_id, with_labels=False), device) for g in sentences]
    times: list[float] = []
    with torch.inference_mode():
        for b in batches[:warmup]:  # CUDA also loads its kernels and tunes cuBLAS here
            forward(b)
        synchronize(device)
        for _ in range(repeats):
            for b in batches:
                t0 = time.perf_counter()
                forward(b)
                synchronize(device)
                times.append(time.perf_counter() - t0)
    return 1000 * statistics.median(times)


def throughput(forward: Forward, windows: Sequence[Window], pad_id: int, batch_size: int = 32,
               repeats: int = 3, device: torch.device | None = None) -> float:
    """Sentences per second at the given batch size (batches in corpus order, padded; on `device`)."""
    device = device or torch.device("cpu")
    sentences = group_by_sentence(windows)
    batches = []
    for k in range(0, len(sentences), batch_size):
        group = [w for g in sentences[k : k + batch_size] for w in g]
        batches.append(to_device(collate(group, pad_id, with_labels=False), device))
    rates = []
    with torch.inference_mode():
        forward(batches[0])
        synchronize(device)
        for _ in range(repeats):
            t0 = time.perf_counter()
            for b in batches:
                forward(b)
            synchronize(device)
            rates.append(len(sentences) / (time.perf_counter() - t0))
    return statistics.median(rates)


def peak_rss_mb() -> float:
    """Peak resident memory of this process so far, in MiB (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def measure(forward: Forward, windows: Sequence[Window], pad_id: int, sample: int = 200,
            repeats: int = 3, latency: bool = True, device: torch.device | None = None) -> dict[str, Any]:
    """latency_ms_b1, throughput_b32, threads and device (`cpu` or the GPU's name) on the first `sample` sentences.

    `latency=False` leaves latency_ms_b1 out, for a caller that times it in one pass with
    the end-to-end latency (`ndogo.evaluate.latency_columns`).
    """
    device = device or torch.device("cpu")
    keep = {w.sent for w in windows}
    first = sorted(keep)[:sample]
    chosen = set(first)
    sub = [w for w in windows if w.sent in chosen]
    result: dict[str, Any] = {}
    if latency:
        result["latency_ms_b1"] = round(latency_ms(forward, sub, pad_id, repeats=repeats, device=device), 3)
    result.update({
        "throughput_b32": round(throughput(forward, sub, pad_id, repeats=repeats, device=device), 2),
        "threads": torch.get_num_threads(),
        "latency_sentences": len(chosen),
        "device": device_name(device),
    })
    return result


def cpu_model() -> str:
    """The CPU's name, recorded with every row: latencies from different CPUs do not compare."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()
