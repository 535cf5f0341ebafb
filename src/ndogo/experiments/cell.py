"""One cell of a sweep: run its chain of stages, evaluate the result, return one row.

`run_cell` is a plain function of picklable arguments so the same code runs in
the sweep's own process (local executor) and in a Ray worker; it never writes
to the store (one writer, the driver, does) and never raises for a failure of
the experiment itself: a failed cell is a row with its error, and the sweep goes on.
"""

from __future__ import annotations

import io
import os
import platform
import re
import shutil
import socket
import sys
import time
import traceback
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager, nullcontext, redirect_stderr, redirect_stdout
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from ndogo.compress.recipe import ChainResult, bind_recipe, run_chain
from ndogo.experiments.config import BASELINE, Cell
from ndogo.experiments.row import DEFAULT_METRIC, headline, metric_label, metric_of
from ndogo.locks import file_lock
from ndogo.metrics.perf import cpu_model

if TYPE_CHECKING:
    from ndogo.models.runner import Runner

PACKAGES = ("ndogo", "torch", "transformers", "tokenizers", "seqeval", "onnxruntime", "torchao", "bitsandbytes",
            "ray")


@dataclass(frozen=True)
class CellSettings:
    """Where a cell writes: shared stage outputs (so cells reuse each other's) and its log.

    `echo`, where the cell runs in the sweep's own process, also gets each line of the log
    that reports progress worth seeing on the console (a finished training epoch): a
    baseline trains for many minutes, and its log is the only other place that says how far.
    """

    artifacts: str
    logs: str
    echo: Callable[[str], None] | None = field(default=None, compare=False)
    # (path, token) of the sweep's shared-folder probe on a Ray cluster: a cell on a node that does not
    # read the token there is on a node that does not share the folder, and fails before building anything
    probe: tuple[str, str] | None = None
    device: str = "auto"  # where the cell's stages train and its model is evaluated (a stage's own option wins)


# Lines of a cell's log that `echo` also gets: the end of each training epoch (finetune's loop,
# which distillation and recovery run too), early stopping and a resumed run.
PROGRESS_LINE = re.compile(r"^(epoch \d+: |no dev [\w-]+ gain|resuming )")  # F1, accuracy, macro-F1


class LogTee(io.TextIOBase):
    """The cell's log file as its stdout and stderr, handing PROGRESS_LINE lines to `echo` too."""

    def __init__(self, log: TextIO, echo: Callable[[str], None] | None) -> None:
        self.log, self.echo, self.pending = log, echo, ""

    def writable(self) -> bool:
        return True

    def write(self, text: str) -> int:
        self.log.write(text)
        if self.echo is not None:
            # tqdm's bar redraws with carriage returns: only whole lines are read
            *lines, self.pending = (self.pending + text).replace("\r", "\n").split("\n")
            for line in lines:
                if PROGRESS_LINE.match(line.strip()):
                    self.echo(line.strip())
        return len(text)

    def flush(self) -> None:
        self.log.flush()


def versions() -> dict[str, str]:
    """Installed versions of the packages that decide a result."""
    out = {}
    for name in PACKAGES:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return out


def machine(threads: int | None = None) -> dict[str, Any]:
    """The machine a row was measured on: latency means nothing without it."""
    import torch

    return {"cpu": cpu_model(), "cores": os.cpu_count(), "threads": threads or torch.get_num_threads(),
            "host": socket.gethostname(), "python": platform.python_version(), "platform": platform.platform(),
            "cuda": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None}


def time_model(runner: Runner, cell: Cell) -> dict[str, Any]:
    """Latency and throughput as `ndogo evaluate` measures them, holding the timing lock only while timing.

    Scoring needs no lock and takes far longer than timing, so it runs first
    and other jobs' timings are not kept waiting behind it. The corpus is read as the model's task reads it.
    """
    from ndogo.evaluate import speed_columns
    from ndogo.tasks import task_of_model

    corpus = task_of_model(runner.meta).load(cell.data, cell.lang, (cell.evaluate.split,))
    sentences = corpus.require(cell.evaluate.split, "evaluation")
    with file_lock(Path(cell.evaluate.lock)) if cell.evaluate.lock else nullcontext():
        # forward-only and end-to-end latency on the same sentences, in one pass, checked against each other
        return speed_columns(runner, [s.tokens for s in sentences], cell.evaluate.sample)


def ray_node() -> str | None:
    """The Ray node id this process runs on (a row says where its cell ran), or None outside a Ray worker."""
    ray = sys.modules.get("ray")
    if ray is None or not ray.is_initialized():
        return None
    return str(ray.get_runtime_context().get_node_id())


def _sees_probe(path: str, token: str) -> bool:
    try:
        return Path(path).read_text() == token
    except OSError:
        return False


def describe(cell: Cell) -> dict[str, Any]:
    """The columns that say which cell a row is."""
    return {"cell_id": cell.id, "model": cell.model.name, "model_source": cell.model.model, "lang": cell.lang,
            "recipe": cell.recipe.name, "recipe_spec": cell.recipe.recipe.one_line(),
            "start": cell.recipe.recipe.start, "chain": cell.chain.one_line(), "seed": cell.seed,
            "data": cell.data, "split": cell.evaluate.split}


KEPT_STAGES = ("finetune", "distill")  # outputs that cost a training run: never deleted


def drop_model(result: ChainResult, artifacts: Path) -> bool:
    """Delete a scored cell's model (`keep_models = false`) unless training made it or it is not ours.

    Only the last stage's output goes, under that stage's lock; its marker then
    points at nothing, so a later cell that needs it builds it again.
    """
    if not result.stages or result.stages[-1].stage in KEPT_STAGES:
        return False
    path = Path(result.stages[-1].path)
    if path.parent.resolve() != artifacts.resolve() or not path.is_dir():
        return False  # an adopted run or a user's directory
    with file_lock(artifacts / f".{path.name}.lock"):
        shutil.rmtree(path, ignore_errors=True)
    return True


def training_record(stages: list[Any]) -> dict[str, Any]:
    """Each trained stage's chosen epoch and dev curve (from its metrics.json), keyed by stage number.

    A teacher's row must show that it trained until dev stopped improving: the epoch dev chose,
    how many ran, and the dev metric that chose (metrics.json's `metric`: f1 for NER) after each.
    """
    import json

    record: dict[str, Any] = {}
    for i, stage in enumerate(stages):
        if stage.stage not in KEPT_STAGES:
            continue
        try:
            metrics = json.loads((Path(stage.path) / "metrics.json").read_text())
        except (OSError, ValueError):
            continue
        key = f"dev_{metrics.get('metric') or DEFAULT_METRIC}"  # metrics.json from before tasks: NER's f1
        record[f"{i + 1}-{stage.stage}"] = {
            "best_epoch": metrics.get("best_epoch"), "epochs_run": metrics.get("epochs_run"),
            "max_epochs": (metrics.get("config") or {}).get("epochs"),
            "patience": (metrics.get("config") or {}).get("patience"),
            "dev_curve": [round(h[key], 5) for h in metrics.get("history", []) if key in h]}
    return record


def build(cell: Cell, settings: CellSettings) -> ChainResult:
    """Run the cell's chain, reusing every stage another cell (or an earlier run) already finished."""
    bound = bind_recipe(cell.chain, {**cell.context(), "device": settings.device})
    adopt = 0 if (not cell.model.train and cell.model.finetuned is None
                  and cell.recipe.recipe.start == "finetuned") else None
    return run_chain(cell.source, bound, settings.artifacts, reuse=cell.model.baselines,
                     on_stage=lambda i, b: print(f"   stage {i + 1}: {b.call.one_line()}", flush=True),
                     adopt_only=adopt)


def score(runner: Runner, cell: Cell) -> dict[str, Any]:
    """The task's metrics on the cell's split and on dev, and zero-shot on each transfer language, all from
    one loaded model (the task is the model's own: entity F1 for NER, accuracy and macro-F1 for POS...)."""
    from ndogo.evaluate import evaluate_runner
    from ndogo.tasks import task_of_model

    task = task_of_model(runner.meta)
    split, batch = cell.evaluate.split, cell.evaluate.batch_size
    metrics = evaluate_runner(runner, cell.data, cell.lang, split, batch, speed=False)
    metrics.update(task=task.name, metric=task.metric)
    # Every choice made from rows (recommend, the atlas's "what to ship") is made on dev;
    # test is only reported beside it, so each row carries both.
    dev = metrics if split == "dev" else evaluate_runner(runner, cell.data, cell.lang, "dev", batch, speed=False)
    metrics.update({f"dev_{m}": dev[m] for m in task.metrics})
    if split != "dev":
        metrics["dev_per_type"] = dev.get("per_type")
    transfer = {}
    for other in cell.evaluate.transfer:
        if other == cell.lang:
            continue
        # zero-shot: the model never saw this language's labels (the study's transfer table)
        r = evaluate_runner(runner, cell.data, other, split, batch, speed=False)
        transfer[other] = {k: r.get(k) for k in (*task.metrics, "per_type")}
        print(f"   zero-shot {other}: {task.metric_label} {r[task.metric]:.4f}", flush=True)
    if transfer:
        metrics["transfer"] = transfer
    return metrics


def baseline_facts(runner: Runner, cell: Cell) -> dict[str, Any]:
    """What the driver needs to judge a baseline that found nothing, measured here so it loads nothing.

    `dev_unknown_words`: the share of the language's dev words the model's tokenizer reads
    as its unknown token (a model that cannot read the script). Only a hint in the reason
    a baseline is refused, so a tokenizer or corpus it cannot be computed from leaves it out.
    """
    try:
        from ndogo.data.tokenization import tokenizer_facts
        from ndogo.tasks import task_of_model

        corpus = task_of_model(runner.meta).load(cell.data, cell.lang, ("dev",))
        words = [s.tokens for s in corpus.splits.get("dev", [])]
        return {"dev_unknown_words": float(tokenizer_facts(runner.tokenizer, words, words)["unknown_words_test"])}
    except Exception:  # a hint, never a reason for the cell to fail
        return {}


def measure(path: str | Path, cell: Cell, device: str) -> dict[str, Any]:
    """Every measured column of the row, from the model loaded once (F1s first, then its timing)."""
    from ndogo.evaluate import load_on

    runner = load_on(path, device)
    metrics = score(runner, cell)
    if cell.recipe.name == BASELINE:
        metrics.update(baseline_facts(runner, cell))
    if cell.evaluate.speed:
        metrics.update(time_model(runner, cell))
    return metrics


def record(cell: Cell, result: ChainResult, durations: dict[str, float]) -> dict[str, Any]:
    """The columns that say how the model was built: its stages, their training and their time."""
    return {"status": "done", "path": str(result.path),
            "baseline_path": next((s.path for s in result.stages if s.stage == "finetune"), None),
            "stages": [vars(s) for s in result.stages], "training": training_record(result.stages),
            "durations": {"stages": {f"{i + 1}-{s.stage}": s.seconds for i, s in enumerate(result.stages)},
                          **durations},
            "model": cell.model.name, "lang": cell.lang}  # evaluate's own "model" is the path


def unseen_folder_row(row: dict[str, Any], cell: Cell, folder: Path) -> dict[str, Any]:
    """The failed row of a cell on a node that does not see the sweep's shared folder."""
    return {**row, "status": "failed", "finished": time.time(), "seconds": 0.0, "versions": versions(),
            "machine": machine(cell.recipe.cpus),
            "error": f"node {socket.gethostname()} does not see the sweep's folder ({folder}); every Ray "
                     "node must mount --out at the same path"}


@contextmanager
def cell_log(cell: Cell, settings: CellSettings, log_path: Path) -> Iterator[None]:
    """The cell's stdout and stderr into its log (progress lines echoed), its threads set, bars off."""
    import torch

    from ndogo.console import quiet_libraries

    progress_was = os.environ.get("NDOGO_PROGRESS")
    os.environ["NDOGO_PROGRESS"] = "0"  # stages' progress bars would only clutter the log
    torch.set_num_threads(cell.recipe.cpus)
    quiet_libraries()
    try:
        with open(log_path, "a", encoding="utf-8", buffering=1) as log, ExitStack() as stack:  # line-buffered
            tee = LogTee(log, None if settings.echo is None
                         else lambda line: settings.echo(f"{cell.label()}: {line}"))
            stack.enter_context(redirect_stdout(tee))
            stack.enter_context(redirect_stderr(tee))
            print(f"== {cell.label()} ({cell.id}) {time.strftime('%Y-%m-%d %H:%M:%S')}\n   chain: {cell.chain}",
                  flush=True)
            yield
    finally:
        if progress_was is None:
            os.environ.pop("NDOGO_PROGRESS", None)
        else:
            os.environ["NDOGO_PROGRESS"] = progress_was


def run_cell(cell: Cell, settings: CellSettings) -> dict[str, Any]:
    """Build the cell's model (reusing finished stages), measure it, describe it; always returns a row.

    The steps, in order: `build` runs the chain; `measure` loads the model once and from that
    one runner `score`s it (split, dev, each transfer language), takes a baseline's
    `baseline_facts` and times it (`time_model`); `record` says how it was built.
    """
    row: dict[str, Any] = {**describe(cell), "started": time.time()}
    node = ray_node()
    if node is not None:
        row["node"] = node
    if settings.probe is not None and not _sees_probe(*settings.probe):
        # a node that joined after the sweep's check and mounts nothing at --out: building here would
        # leave models and logs no other node can see
        return unseen_folder_row(row, cell, Path(settings.probe[0]).parent)
    log_path = Path(settings.logs) / f"{cell.id}.log"
    log_path.parent.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    with cell_log(cell, settings, log_path):
        try:
            result = build(cell, settings)
            built = time.perf_counter()
            row.update(measure(result.path, cell, settings.device))
            row.update(record(cell, result, {"build": round(built - t0, 3),
                                             "evaluate": round(time.perf_counter() - built, 3)}))
            if not cell.evaluate.keep_models and drop_model(result, Path(settings.artifacts)):
                row["model_deleted"] = True
            print(f"   done: {metric_label(metric_of(row))} {headline(row):.4f}", flush=True)
        except Exception as err:  # any failure of the experiment is the row's result, not the sweep's end
            row.update(status="failed", error=f"{type(err).__name__}: {err}",
                       traceback=traceback.format_exc(limit=-8))
            print(row["traceback"], flush=True)
    row.update(seconds=round(time.perf_counter() - t0, 3), finished=time.time(), log=str(log_path),
               versions=versions(), machine=machine(cell.recipe.cpus), is_baseline=cell.recipe.name == BASELINE)
    return row
