"""`ndogo evaluate`: the task's metrics (F1 per entity type for NER), size, parameters, memory and speed.

Every later comparison is made on these columns, so they are produced here, in
one place, for every kind of model through the `Runner` interface.
"""

from __future__ import annotations

import json
import statistics
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

from ndogo.device import resolve_device, synchronize, to_device
from ndogo.metrics.perf import group_by_sentence, measure, peak_rss_mb
from ndogo.models.loading import read_meta
from ndogo.models.runner import Runner, load_runner, on_device, size_on_disk
from ndogo.models.tagging import predict_tags
from ndogo.models.windowing import collate, encode_sentences
from ndogo.tasks import Task, check_corpus_fits, get_task, task_of_model


class TimingError(ValueError):
    """Latencies that contradict each other, so neither can be written into a row."""


def paired_latencies_ms(runner: Runner, words: list[list[str]], repeats: int = 3,
                        warmup: int = 20) -> tuple[float, float]:
    """(forward-pass, end-to-end) median milliseconds per sentence at batch 1, timed in one pass.

    `latency_ms_b1` times the forward pass alone, which is what compressions change;
    a user waits for everything around it too: splitting the text into words,
    tokenizing (slower with a trimmed vocabulary's tokenizer), windowing a long
    sentence into several forward passes, merging the windows and reading the
    entities, exactly `ndogo predict`'s path. Each sentence's forward pass and its
    whole path are timed back to back: timed one after the other over the whole
    sample, a change in the machine's load between the two (another job starting)
    once made a baseline's end-to-end latency half its forward pass's.
    """
    from ndogo.deploy.predict import Predictor

    predictor = Predictor(runner, batch_size=1)
    windows = encode_sentences(runner.tokenizer, words, runner.max_length)
    # each sentence's windows as one batch (as latency_ms_b1 always ran them) beside its raw text
    device = torch.device(runner.device)
    pairs = [(to_device(collate(g, runner.pad_id, with_labels=False), device), " ".join(words[g[0].sent]))
             for g in group_by_sentence(windows)]
    forward: list[float] = []
    e2e: list[float] = []
    with torch.inference_mode():
        for batch, text in pairs[:warmup]:
            runner.forward(batch)
            predictor.predict(text)
        for _ in range(repeats):
            for batch, text in pairs:
                t0 = time.perf_counter()
                runner.forward(batch)
                synchronize(device)
                t1 = time.perf_counter()
                predictor.predict(text)
                synchronize(device)  # (reading the entities has waited for the GPU already; this says so)
                t2 = time.perf_counter()
                forward.append(t1 - t0)
                e2e.append(t2 - t1)
    return 1000 * statistics.median(forward), 1000 * statistics.median(e2e)


def latency_columns(runner: Runner, words: list[list[str]], tries: int = 3) -> dict[str, float]:
    """latency_ms_b1 and latency_e2e_ms_b1 of the same sentences, checked against each other.

    The end-to-end path runs the same forward pass and more, so it cannot be faster;
    when it comes out faster the timing is repeated, and after `tries` the row is
    refused rather than written with numbers that contradict each other.
    """
    for _ in range(tries):
        forward, e2e = paired_latencies_ms(runner, words)
        if e2e >= forward:
            return {"latency_ms_b1": round(forward, 3), "latency_e2e_ms_b1": round(e2e, 3)}
    raise TimingError(f"{runner.path}: end-to-end latency ({e2e:.2f} ms) came out below the forward pass's "
                      f"({forward:.2f} ms) on the same {len(words)} sentences, {tries} times; it runs that forward "
                      "pass and more, so the machine's load changed while timing: time it again on a quieter "
                      "machine (a sweep: --resume reruns this cell)")


def speed_columns(runner: Runner, words: list[list[str]], sample: int = 200) -> dict[str, Any]:
    """The speed columns of a row, all on the first `sample` sentences (with the threads and device they ran on)."""
    words = words[:sample]
    windows = encode_sentences(runner.tokenizer, words, runner.max_length)
    result = measure(runner.forward, windows, runner.pad_id, sample=sample, latency=False,
                     device=torch.device(runner.device))
    result.update(latency_columns(runner, words))
    return result


def evaluate(run: str | Path, data: str | None, lang: str, split: str = "test", batch_size: int = 32,
             speed: bool = True, threads: int | None = None, sample: int = 200,
             show_progress: bool = False, device: str | None = "auto", task: str | None = None) -> dict[str, Any]:
    """Score a saved model on a language split and measure it; returns one row of metrics.

    With `speed`, the row has `latency_ms_b1` (forward pass only), `latency_e2e_ms_b1`
    (raw sentence in, entities out), `throughput_b32`, the threads they were timed with and
    `device` (`cpu` or the GPU's name). `device="auto"` runs on CUDA when present and the
    model's kind runs there (ONNX and torch.ao int8 stay on the CPU); `cuda[:N]` insists.
    """
    if threads:
        torch.set_num_threads(threads)
    runner = load_on(run, device)
    result = evaluate_runner(runner, data, lang, split, batch_size, speed, sample, show_progress, task)
    result["model"] = str(run)
    return result


def load_on(run: str | Path, device: str | None = "auto") -> Runner:
    """Load a model once and place it where it is evaluated (`auto`: CUDA when present and its kind runs there).

    Whoever scores one model several times (a sweep cell: its split, dev, each transfer
    language and its timing) loads it here once and hands the runner to `evaluate_runner`.
    """
    target = resolve_device(device)
    return on_device(load_runner(run), target, fall_back=(device or "auto").strip().lower() == "auto")


def evaluate_runner(runner: Runner, data: str | None, lang: str, split: str = "test", batch_size: int = 32,
                    speed: bool = True, sample: int = 200, show_progress: bool = False,
                    task: str | None = None) -> dict[str, Any]:
    """`evaluate`'s row for a model already loaded (and placed on its device) by `load_on`.

    The task is the one the model was trained for (its ndogo.json; NER for models saved
    before the task axis and for other Hugging Face models), unless `task` names another.
    """
    chosen = get_task(task) if task else task_of_model(runner.meta)
    if not task:
        check_corpus_fits(chosen, data, lang)
    corpus = chosen.load(data, lang, (split,))
    sentences = corpus.require(split, "evaluation")
    on = torch.device(runner.device)
    words = [s.tokens for s in sentences]
    pred = predict_examples(chosen, runner, sentences, batch_size, show_progress)
    result: dict[str, Any] = chosen.score(chosen.gold(sentences), pred)
    result["metric"] = chosen.metric
    params, nonzero = runner.params()
    result.update({
        "model": str(runner.path), "kind": runner.kind, "lang": lang, "split": split, "sentences": len(sentences),
        "params": params, "nonzero_params": nonzero,
        # of the whole model (embeddings and head included): what size and speed can gain from
        "sparsity": round(1 - nonzero / params, 6) if params else 0.0,
        # of the encoder's Linear weights, the set `ndogo prune` targets: what `prune` reports as its sparsity
        "sparsity_encoder_linear": encoder_linear_sparsity(runner.module),
        "size_bytes": size_on_disk(runner.path),
    })
    if speed:
        result.update(speed_columns(runner, words, sample))
        from ndogo.metrics.perf import cpu_model

        result["cpu"] = cpu_model()  # a latency means nothing without the machine it was timed on
    else:
        result["threads"] = torch.get_num_threads()
    if on.type == "cuda":
        result["device"] = torch.cuda.get_device_name(on)
        result["peak_gpu_mb"] = round(torch.cuda.max_memory_allocated(on) / 2**20, 1)
    result["peak_rss_mb"] = round(peak_rss_mb(), 1)
    return result


def predict_examples(task: Task, runner: Runner, examples: list[Any], batch_size: int = 32,
                     show_progress: bool = False) -> list[Any]:
    """The task's decoded predictions for `examples`, with a progress bar."""
    if task.head == "tokens":
        return predict_tags(runner, [e.tokens for e in examples], batch_size, show_progress)[0]
    from tqdm.auto import tqdm

    encoded = task.encode(runner.tokenizer, examples, runner.max_length)
    with tqdm(total=len(encoded), desc="predict", unit="text", disable=not show_progress) as bar:
        return task.predict(runner.forward, encoded, examples, runner.labels, runner.pad_id, batch_size, bar.update)


def speed_row(run: str | Path, data: str | None, lang: str, split: str = "test", sample: int = 200,
              threads: int | None = None, device: str | None = "auto") -> dict[str, Any]:
    """Size, parameters and the speed columns of `evaluate`, without scoring: what `ndogo bench latency` compares.

    The same measurement as a row's (`speed_columns` on the first `sample` sentences of the
    split), so a side-by-side table and a sweep's rows agree.
    """
    if threads:
        torch.set_num_threads(threads)
    target = resolve_device(device)
    runner = on_device(load_runner(run), target, fall_back=(device or "auto").strip().lower() == "auto")
    task = task_of_model(runner.meta)
    check_corpus_fits(task, data, lang)
    corpus = task.load(data, lang, (split,))
    words = [s.tokens for s in corpus.require(split, "timing")]
    params, _ = runner.params()
    from ndogo.metrics.perf import cpu_model

    return {"model": str(run), "kind": runner.kind, "size_bytes": size_on_disk(run), "params": params,
            **speed_columns(runner, words, sample), "cpu": cpu_model()}


SPEED_IN_A_FRESH_PROCESS = ("import json, sys; from ndogo.console import quiet_libraries; quiet_libraries(); "
                            "from ndogo.evaluate import speed_row; "
                            "print(json.dumps(speed_row(**json.loads(sys.argv[1]))))")


def side_by_side(models: Sequence[str | Path], data: str | None, lang: str, split: str = "test",
                 sample: int = 200, threads: int | None = 1, repeats: int = 3,
                 device: str | None = "auto") -> list[dict[str, Any]]:
    """Each model's `speed_row`, `repeats` times, each in a fresh process, in alternating order; medians.

    A fresh process per measurement keeps one model's thread pools, caches and memory from
    touching the next one's; alternating the order (A B C, C B A, ...) spreads a change in the
    machine's load over every model instead of landing on the last. The first model is the
    reference the others' ratios are against.
    """
    import subprocess
    import sys

    if not models:
        raise ValueError("give at least one model directory")
    for model in models:
        if not Path(model).is_dir():
            raise FileNotFoundError(2, "No such directory", str(model))
    runs: dict[str, list[dict[str, Any]]] = {str(m): [] for m in models}
    for i in range(repeats):
        for model in (models if i % 2 == 0 else list(reversed(models))):
            args = {"run": str(model), "data": data, "lang": lang, "split": split, "sample": sample,
                    "threads": threads, "device": device}
            done = subprocess.run([sys.executable, "-c", SPEED_IN_A_FRESH_PROCESS, json.dumps(args)],
                                  capture_output=True, text=True)
            if done.returncode != 0:
                last = (done.stderr.strip().splitlines() or ["no output"])[-1]
                raise ValueError(f"{model}: timing it failed: {last}")
            runs[str(model)].append(json.loads(done.stdout.strip().splitlines()[-1]))
    rows = []
    for measured in runs.values():
        row = dict(measured[0])
        for key in ("latency_ms_b1", "latency_e2e_ms_b1", "throughput_b32"):
            row[key] = round(statistics.median(m[key] for m in measured), 3)
        row["repeats"] = len(measured)
        rows.append(row)
    ref = rows[0]
    for row in rows:
        row["size_ratio"] = round(row["size_bytes"] / ref["size_bytes"], 4) if ref["size_bytes"] else None
        row["latency_ratio"] = round(row["latency_ms_b1"] / ref["latency_ms_b1"], 4)
        row["throughput_ratio"] = round(row["throughput_b32"] / ref["throughput_b32"], 4)
    return rows


def encoder_linear_sparsity(module: torch.nn.Module | None) -> float | None:
    """Zeros among the encoder's float Linear weights (the task head left out, as `prune` does).

    The whole-model `sparsity` of a model whose encoder Linears are 60% zero is about
    0.28 for minilm (embeddings hold half its weights); reported side by side, neither is
    mistaken for the other. None where the model has no such layers to count (ONNX, int8).
    A quantized weight held as a tensor subclass (torchao's int8 and int4 weights) is no float
    weight, although it says it is floating point, and cannot even be compared with 0.
    """
    if module is None:
        return None
    base = getattr(module, "base_model", module)
    total = zeros = 0
    for layer in base.modules():
        if isinstance(layer, torch.nn.Linear) and type(layer.weight) in (torch.Tensor, torch.nn.Parameter) \
                and layer.weight.is_floating_point():
            total += layer.weight.numel()
            zeros += int((layer.weight == 0).sum())
    return round(zeros / total, 6) if total else None


def is_bundle(run: str | Path) -> bool:
    """Whether `run` is a bundle `ndogo ship` wrote (its ndogo.json has a "bundle" record)."""
    return isinstance(read_meta(run).get("bundle"), dict)


# Columns only a speed measurement fills (threads: those it was timed with).
SPEED_KEYS = ("latency_ms_b1", "latency_e2e_ms_b1", "throughput_b32", "latency_sentences", "threads", "cpu", "device")
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
