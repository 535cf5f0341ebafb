"""`ndogo evaluate`: F1 per entity type, size on disk, parameters, memory and speed of one model.

Every later comparison is made on these columns, so they are produced here, in
one place, for every kind of model through the `Runner` interface.
"""

from __future__ import annotations

import json
import statistics
import time
from pathlib import Path
from typing import Any

import torch

from ndogo.data.corpus import load_corpus
from ndogo.metrics.entity import score
from ndogo.metrics.perf import measure, peak_rss_mb
from ndogo.models.loading import read_meta
from ndogo.models.runner import Runner, load_runner, size_on_disk
from ndogo.models.tagging import predict_tags
from ndogo.models.windowing import encode_sentences


def latency_e2e_ms(runner: Runner, texts: list[str], repeats: int = 3, warmup: int = 20) -> float:
    """Median milliseconds from one raw sentence to its entities, at batch 1.

    `latency_ms_b1` times the forward pass alone, which is what compressions change;
    a user waits for everything around it too: splitting the text into words,
    tokenizing (slower with a trimmed vocabulary's tokenizer), windowing a long
    sentence into several forward passes, merging the windows and reading the
    entities. This times exactly `ndogo predict`'s path on each text.
    """
    from ndogo.deploy.predict import Predictor

    predictor = Predictor(runner, batch_size=1)
    times: list[float] = []
    with torch.inference_mode():
        for text in texts[:warmup]:
            predictor.predict(text)
        for _ in range(repeats):
            for text in texts:
                t0 = time.perf_counter()
                predictor.predict(text)
                times.append(time.perf_counter() - t0)
    return 1000 * statistics.median(times)


def evaluate(run: str | Path, data: str | None, lang: str, split: str = "test", batch_size: int = 32,
             speed: bool = True, threads: int | None = None, sample: int = 200,
             show_progress: bool = False) -> dict[str, Any]:
    """Score a saved model on a language split and measure it; returns one row of metrics.

    With `speed`, the row has `latency_ms_b1` (forward pass only), `latency_e2e_ms_b1`
    (raw sentence in, entities out), `throughput_b32` and the threads they were timed with.
    """
    if threads:
        torch.set_num_threads(threads)
    corpus = load_corpus(data, lang, (split,))
    sentences = corpus.require(split, "evaluation")
    runner = load_runner(run)
    words = [s.tokens for s in sentences]
    pred, _ = predict_tags(runner, words, batch_size, show_progress)
    result: dict[str, Any] = score([s.tags for s in sentences], pred)
    params, nonzero = runner.params()
    result.update({
        "model": str(run), "kind": runner.kind, "lang": lang, "split": split, "sentences": len(sentences),
        "params": params, "nonzero_params": nonzero,
        # of the whole model (embeddings and head included): what size and speed can gain from
        "sparsity": round(1 - nonzero / params, 6) if params else 0.0,
        # of the encoder's Linear weights, the set `ndogo prune` targets: what `prune` reports as its sparsity
        "sparsity_encoder_linear": encoder_linear_sparsity(runner.module),
        "size_bytes": size_on_disk(run),
    })
    if speed:
        windows = encode_sentences(runner.tokenizer, words, runner.max_length)
        result.update(measure(runner.forward, windows, runner.pad_id, sample=sample))
        result["latency_e2e_ms_b1"] = round(latency_e2e_ms(runner, [" ".join(w) for w in words[:sample]]), 3)
        from ndogo.metrics.perf import cpu_model

        result["cpu"] = cpu_model()  # a latency means nothing without the machine it was timed on
    else:
        result["threads"] = torch.get_num_threads()
    result["peak_rss_mb"] = round(peak_rss_mb(), 1)
    return result


def encoder_linear_sparsity(module: torch.nn.Module | None) -> float | None:
    """Zeros among the encoder's float Linear weights (the task head left out, as `prune` does).

    The whole-model `sparsity` of a model whose encoder Linears are 60% zero is about
    0.28 for minilm (embeddings hold half its weights); reported side by side, neither is
    mistaken for the other. None where the model has no such layers to count (ONNX, int8).
    """
    if module is None:
        return None
    base = getattr(module, "base_model", module)
    total = zeros = 0
    for layer in base.modules():
        if isinstance(layer, torch.nn.Linear) and layer.weight.is_floating_point():
            total += layer.weight.numel()
            zeros += int((layer.weight == 0).sum())
    return round(zeros / total, 6) if total else None


def is_bundle(run: str | Path) -> bool:
    """Whether `run` is a bundle `ndogo ship` wrote (its ndogo.json has a "bundle" record)."""
    return isinstance(read_meta(run).get("bundle"), dict)


# Columns only a speed measurement fills (threads: those it was timed with).
SPEED_KEYS = ("latency_ms_b1", "latency_e2e_ms_b1", "throughput_b32", "latency_sentences", "threads", "cpu")
# What must be unchanged for an earlier timing to still describe the model.
SAME_MODEL_KEYS = ("kind", "params", "nonzero_params", "size_bytes")


def save_eval(run: str | Path, result: dict[str, Any]) -> Path | None:
    """Keep the row beside the model as evals/<lang>-<split>.json for reports to reuse; None for a bundle.

    A row measured without speed (--no-speed, a quick F1 check) keeps the timing of an
    earlier row for the same model files instead of erasing it: timing takes minutes
    on a quiet machine and is not what the quick check was for.

    A bundle written by `ndogo ship` holds exactly the files inference reads (its card
    already carries the rows it was shipped with), so nothing is written into it.
    """
    if is_bundle(run):
        return None
    out = Path(run) / "evals"
    out.mkdir(exist_ok=True)
    path = out / f"{result['lang']}-{result['split']}.json"
    if "latency_ms_b1" not in result and path.is_file():
        try:
            before = json.loads(path.read_text(encoding="utf-8"))
        except (ValueError, OSError):
            before = {}
        if "latency_ms_b1" in before and all(before.get(k) == result.get(k) for k in SAME_MODEL_KEYS):
            result = {**result, **{k: before[k] for k in SPEED_KEYS if k in before}}
    path.write_text(json.dumps(result, indent=2, ensure_ascii=False) + "\n")
    return path
