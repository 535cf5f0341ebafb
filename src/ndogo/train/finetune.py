"""Fine-tuning an encoder for a task (NER, POS, topic, sentiment): AdamW, best epoch on the task's dev metric.

The loop is written out rather than using transformers' `Trainer` because the
compression stages need to reach inside it (pruning holds masks after every
optimizer step, distillation swaps the loss) and because on a 2-core CPU the
length-bucketed batches here waste far less time on padding. It stays small:
one function that a reader can follow top to bottom.

Resume: a checkpoint (model, optimizer, scheduler, RNG, position in the epoch)
is written every `save_every` steps and at each epoch's end. Each epoch's batch
order comes from `seed + epoch`, so a resumed run skips exactly the batches it
had done and continues as if never stopped. Ctrl-C or SIGTERM saves a checkpoint
at the next step and stops. Checkpoints are safetensors + JSON (`train/checkpoint.py`),
never pickles; a finished run removes its checkpoint unless `keep_checkpoint`.
"""

from __future__ import annotations

import json
import math
import os
import platform
import random
import shutil
import signal
import threading
import time
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm.auto import tqdm
from transformers import get_linear_schedule_with_warmup

from ndogo.data.corpus import Corpus
from ndogo.device import autocast, check_precision, device_name, grad_scaler, resolve_device, to_device
from ndogo.locks import file_lock
from ndogo.models.loading import (
    load_for_head,
    load_tokenizer,
    model_window,
    resolve_model,
    write_meta,
)
from ndogo.models.windowing import length_batches
from ndogo.tasks import Task, resolve_task
from ndogo.train.checkpoint import has_checkpoint, load_checkpoint, refuse_pickle
from ndogo.train.checkpoint import save_checkpoint as write_checkpoint
from ndogo.train.config import LATER_DEFAULTS, FinetuneConfig, check_finetune
from ndogo.train.optim import adamw, describe

CHECKPOINT = "checkpoint"


# Settings that change how a run is executed, not what it computes: a resume may change them.
OPERATIONAL = ("threads", "save_every", "eval_batch_size", "keep_checkpoint", "device")


MISSING = object()


def config_differences(saved: dict[str, Any], current: dict[str, Any]) -> list[str]:
    """The settings in which a saved run's configuration differs from this run's, each with both values.

    Operational settings are ignored. Without naming them, "a different configuration"
    leaves the user to diff two JSON files to learn that one flag was mistyped.
    """
    def strip(config: dict[str, Any]) -> dict[str, Any]:
        # a later field at its default is what a run saved before the field existed did
        return {k: v for k, v in config.items() if k not in OPERATIONAL
                and not (k in LATER_DEFAULTS and v == LATER_DEFAULTS[k])}

    def shown(config: dict[str, Any], key: str) -> str:
        return repr(config[key]) if key in config else "unset"

    before, now = strip(saved), strip(current)
    return [f"{key} {shown(before, key)} there, {shown(now, key)} now"
            for key in sorted(set(before) | set(now)) if before.get(key, MISSING) != now.get(key, MISSING)]


def same_run(saved: dict[str, Any], current: dict[str, Any]) -> bool:
    """Whether a checkpoint's configuration is this run's, ignoring operational settings."""
    return not config_differences(saved, current)


def finished_run(out: Path, cfg: FinetuneConfig) -> dict[str, Any] | None:
    """The metrics of a completed run of this configuration in `out`, if there is one.

    A finished run keeps no checkpoint, so without this a rerun of the same command
    would train again from scratch over the saved model. A completed run of another
    configuration is refused rather than overwritten.
    """
    path = out / "metrics.json"
    if not path.is_file():
        return None
    try:
        metrics = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as err:
        raise ValueError(f"{path}: not readable ({err}); use another --out or delete it") from None
    if not isinstance(metrics, dict) or not metrics.get("complete"):
        return None
    differences = config_differences(metrics.get("config", {}), json.loads(json.dumps(asdict(cfg))))
    if differences:
        raise ValueError(f"{out}: holds a finished run of a different configuration ({'; '.join(differences)}); "
                         "use another --out")
    return metrics


class TrainingInterrupted(KeyboardInterrupt):
    """Ctrl-C or SIGTERM during training, after the checkpoint was saved (a KeyboardInterrupt,
    so that no `except Exception` in a sweep mistakes it for a failed experiment)."""


class InterruptFlag:
    """While active, SIGINT and SIGTERM only set a flag, which the loop reads after each step.

    The loop then saves a checkpoint and stops, so Ctrl-C in the first epoch no longer
    loses it. A second signal acts as usual (the handlers are restored on the first).
    """

    def __init__(self) -> None:
        self.signal: int | None = None
        self.previous: dict[int, Any] = {}

    @property
    def name(self) -> str:
        return signal.Signals(self.signal).name if self.signal is not None else ""

    def _handle(self, signum: int, frame: Any) -> None:
        self.signal = signum
        self._restore()

    def _restore(self) -> None:
        for sig, handler in self.previous.items():
            signal.signal(sig, handler)
        self.previous = {}

    def __enter__(self) -> InterruptFlag:
        if threading.current_thread() is threading.main_thread():  # signals reach the main thread only
            for sig in (signal.SIGINT, signal.SIGTERM):
                self.previous[sig] = signal.signal(sig, self._handle)
        return self

    def __exit__(self, *exc: Any) -> None:
        self._restore()


def hold_run_lock(out: Path) -> ExitStack:
    """Refuse to train when another process is training into the same directory.

    Two runs writing one checkpoint would corrupt it; the lock is held until the
    returned object is released (at the latest when the process ends, even on kill -9).
    """
    held = ExitStack()  # .close() releases it; so does the garbage collector, at the latest
    held.enter_context(file_lock(out / ".lock", wait=False,
                                 busy=ValueError(f"{out}: another process is training into this directory")))
    return held


def set_seed(seed: int) -> None:
    """Seed every RNG a run touches."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def load_languages(data: str | None, langs: list[str], task: str | Task | None = None) -> list[Corpus]:
    """Corpora for each language, in order, read as `task` reads them (default: detected from `data`)."""
    task = task if isinstance(task, Task) else resolve_task(task, data, langs[0])
    return [task.load(data, lang) for lang in langs]


def dev_score(
    task: Task,
    model: torch.nn.Module,
    encoded: list[Any],
    examples: list[Any],
    labels: list[str],
    pad_id: int,
    batch_size: int,
) -> dict[str, Any]:
    """The task's metrics of the model on pre-encoded dev examples (batches go to the model's device)."""
    model.eval()
    device = next(model.parameters()).device
    pred = task.predict(lambda b: model(**to_device(b, device)).logits, encoded, examples, labels, pad_id,
                        batch_size)
    model.train()
    return task.score(task.gold(examples), pred)


def finetune(
    cfg: FinetuneConfig,
    step_hooks: list[Callable[[torch.nn.Module], None]] | None = None,
    model_transform: Callable[[torch.nn.Module], torch.nn.Module] | None = None,
    show_progress: bool = True,
    start_hooks: list[Callable[[torch.nn.Module, int, int], None]] | None = None,
    keep_if: Callable[[torch.nn.Module], bool] | None = None,
    loss_fn: Callable[[torch.nn.Module, dict[str, torch.Tensor]], torch.Tensor] | None = None,
    extra_train: list[Any] | None = None,
) -> dict[str, Any]:
    """Fine-tune `cfg.model` on `cfg.langs` and save the best dev-F1 model in `cfg.out`.

    `model_transform` is applied to the freshly loaded model (e.g. pruning it
    before fine-tuning); `step_hooks` run after every optimizer step (e.g. to
    hold a pruning mask). Both keep working after a resume. `start_hooks` get
    (model, step the run starts or resumes at, total steps) before training,
    so a schedule (gradual pruning) knows where it is; with `keep_if`, an epoch's
    model is only saved as the best when `keep_if(model)` holds (e.g. once the
    final sparsity is reached). `loss_fn(model, batch)` replaces the model's own
    cross-entropy (task distillation adds a teacher's soft targets).
    Returns the metrics also written to `<out>/metrics.json`.
    """
    check_finetune(cfg)
    device = resolve_device(cfg.device)
    check_precision(cfg.precision, device)
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    out = Path(cfg.out)
    ckpt_dir = out / CHECKPOINT
    refuse_pickle(ckpt_dir)
    finished = finished_run(out, cfg)
    if finished is not None:
        if show_progress:
            tqdm.write(f"{out}: already trained with this configuration (best dev {finished.get('metric', 'f1')} "
                       f"{finished.get('best_dev', finished.get('best_dev_f1')):.4f})")
        return finished
    set_seed(cfg.seed)

    task = resolve_task(cfg.task, cfg.data, cfg.langs[0])
    corpora = load_languages(cfg.data, cfg.langs, task)
    labels = task.labels(corpora)
    label2id = {lab: i for i, lab in enumerate(labels)}
    train = [s for c in corpora for s in c.require("train", "fine-tuning")]
    if cfg.max_train_sentences:
        train = train[: cfg.max_train_sentences]
    # e.g. teacher-labelled raw text for a student (its identity is in cfg.extra, so a resume checks it)
    train += list(extra_train or [])
    dev = [s for c in corpora for s in c.splits.get("dev", [])]
    if not dev:  # the first language's dev file, named: missing, or empty
        corpora[0].require("dev", f"choosing the best epoch (on dev {task.metric_label})")

    tokenizer = load_tokenizer(cfg.model)
    model = load_for_head(cfg.model, task.head, labels)
    # --out is created only now, so a mistyped language, corpus or model leaves no empty run behind.
    out.mkdir(parents=True, exist_ok=True)
    lock = hold_run_lock(out)  # noqa: F841  (held until this function returns)
    if model_transform is not None:
        model = model_transform(model)
    # before the optimizer is built, so its state is created beside the parameters
    model.to(device)
    max_length = cfg.max_length or model_window(tokenizer, model.config)
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0

    train_w = task.encode(tokenizer, train, max_length, label2id)
    dev_w = task.encode(tokenizer, dev, max_length)
    steps_per_epoch = math.ceil(len(train_w) / cfg.batch_size)
    total = cfg.max_steps or steps_per_epoch * cfg.epochs
    epochs = math.ceil(total / steps_per_epoch)

    no_decay = ("bias", "LayerNorm.weight", "layer_norm.weight", "norm.weight")
    groups = [
        {"params": [p for n, p in model.named_parameters() if not n.endswith(no_decay)],
         "weight_decay": cfg.weight_decay},
        {"params": [p for n, p in model.named_parameters() if n.endswith(no_decay)], "weight_decay": 0.0},
    ]
    optimizer = adamw(groups, lr=cfg.lr)
    # ema_loss: the running loss shown and recorded per epoch, kept in checkpoints so a resumed
    # run records the same per-epoch loss as an uninterrupted one; lr_scale: plateau's halvings so far
    state: dict[str, Any] = {"step": 0, "epoch": 0, "batch_in_epoch": 0, "best_f1": -1.0,
                             "best_epoch": None, "history": [], "train_seconds": 0.0, "ema_loss": float("nan"),
                             "lr_scale": 1.0, "decay_from": None}
    warmup = int(cfg.warmup_ratio * total)
    if cfg.schedule == "wsd":
        # warm-up, then stable at the peak until dev stops improving (or --epochs), then one epoch decaying
        # from half the peak to zero from the best epoch's weights; `decay_from` (in checkpoints) is its start
        def wsd(step: int) -> float:
            if state["decay_from"] is None:
                return min(1.0, (step + 1) / max(1, warmup))
            return 0.5 * max(0.0, 1.0 - (step - state["decay_from"]) / steps_per_epoch)

        scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, wsd)
        # the decay epoch may come after the last stable one
        epochs, total = epochs + 1, total + steps_per_epoch
    elif cfg.schedule == "plateau":
        # the scale lives in `state`, which checkpoints keep, so a resumed run continues at its rate
        scheduler = torch.optim.lr_scheduler.LambdaLR(
            optimizer, lambda step: state["lr_scale"] * min(1.0, (step + 1) / max(1, warmup)))
    else:
        scheduler = get_linear_schedule_with_warmup(optimizer, warmup, total)
    if has_checkpoint(ckpt_dir):
        saved = load_checkpoint(ckpt_dir)
        differences = config_differences(saved["config"], json.loads(json.dumps(asdict(cfg))))
        if differences:
            raise ValueError(f"{ckpt_dir}: a checkpoint of a different configuration is there "
                             f"({'; '.join(differences)}); use another --out or delete it")
        model.load_state_dict(saved["model"])
        optimizer.load_state_dict(saved["optimizer"])
        scheduler.load_state_dict(saved["scheduler"])
        state = {**state, **saved["state"]}
        torch.set_rng_state(saved["torch_rng"])
        if show_progress:
            tqdm.write(f"resuming {out} at step {state['step']} (epoch {state['epoch'] + 1})")

    def save_checkpoint() -> None:
        state["ema_loss"] = last_loss
        write_checkpoint(ckpt_dir, {"config": asdict(cfg), "model": model.state_dict(),
                                    "optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict(),
                                    "state": state, "torch_rng": torch.get_rng_state()})

    for start_hook in start_hooks or []:
        start_hook(model, state["step"], total)
    if cfg.precision == "bf16" and device.type == "cpu":
        from ndogo.train.mlm import resolve_precision

        resolve_precision("bf16")  # refused on a CPU without native bf16, where it would be slower
    scaler = grad_scaler(cfg.precision, device)  # fp16 only: its gradients underflow unless the loss is scaled
    model.train()
    bar = tqdm(total=total, initial=state["step"], desc=f"finetune {','.join(cfg.langs)}",
               unit="step", disable=not show_progress, dynamic_ncols=True)
    last_loss = state["ema_loss"]
    stop = False
    interrupt = InterruptFlag()
    with interrupt:
        while state["epoch"] < epochs and state["step"] < total and not stop:
            epoch = state["epoch"]
            rng = np.random.default_rng(cfg.seed + epoch)
            t0 = time.perf_counter()
            for b, idx in enumerate(length_batches(train_w, cfg.batch_size, shuffle=True, rng=rng)):
                if b < state["batch_in_epoch"]:
                    continue  # done before the resume
                batch = to_device(task.collate([train_w[i] for i in idx], pad_id), device)
                with autocast(cfg.precision, device):
                    loss = loss_fn(model, batch) if loss_fn is not None else model(**batch).loss
                scaler.scale(loss.float()).backward()
                scaler.unscale_(optimizer)  # clip the true gradients, not the scaled ones
                torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
                scaler.step(optimizer)
                scaler.update()
                scheduler.step()
                optimizer.zero_grad(set_to_none=True)
                for hook in step_hooks or []:
                    hook(model)
                state["step"] += 1
                state["batch_in_epoch"] = b + 1
                last_loss = 0.9 * last_loss + 0.1 * loss.item() if not math.isnan(last_loss) else loss.item()
                bar.update(1)
                bar.set_postfix(epoch=epoch + 1, loss=f"{last_loss:.4f}", dev=f"{max(state['best_f1'], 0):.4f}")
                if state["step"] % cfg.save_every == 0:
                    state["train_seconds"] += time.perf_counter() - t0
                    t0 = time.perf_counter()
                    save_checkpoint()
                if interrupt.signal is not None:
                    state["train_seconds"] += time.perf_counter() - t0
                    save_checkpoint()
                    bar.close()
                    raise TrainingInterrupted(f"{interrupt.name}: stopped at step {state['step']} of {total}; "
                                              f"checkpoint saved in {ckpt_dir}. Run the same command to resume")
                if state["step"] >= total:
                    break
            state["train_seconds"] += time.perf_counter() - t0
            result = dev_score(task, model, dev_w, dev, labels, pad_id, cfg.eval_batch_size)
            state["history"].append({"epoch": epoch + 1, "step": state["step"],
                                     f"dev_{task.metric}": result[task.metric], "loss": last_loss,
                                     "train_seconds": state["train_seconds"],
                                     "lr": optimizer.param_groups[0]["lr"]})
            if result[task.metric] > state["best_f1"] and (keep_if is None or keep_if(model)):
                state["best_f1"], state["best_epoch"] = result[task.metric], epoch + 1
                save_model(model, tokenizer, out, labels, cfg, max_length, task)
            bar.set_postfix(epoch=epoch + 1, loss=f"{last_loss:.4f}", dev=f"{result[task.metric]:.4f}")
            tqdm.write(f"epoch {epoch + 1}: dev {task.metric_label} {result[task.metric]:.4f} "
                       f"(best {state['best_f1']:.4f}, "
                       f"epoch {state['best_epoch']}), {state['train_seconds']:.0f}s training so far")
            state["epoch"] += 1
            state["batch_in_epoch"] = 0
            if cfg.schedule == "wsd":
                stop = wsd_step(state, epoch + 1, epochs - 1, cfg.patience, model, out, optimizer, cfg.lr,
                                task.metric_label)
            elif cfg.patience and state["best_epoch"] and epoch + 1 - state["best_epoch"] >= cfg.patience:
                tqdm.write(f"no dev {task.metric_label} gain for {cfg.patience} epochs: stopping")
                stop = True
            elif cfg.schedule == "plateau" and state["best_epoch"] and state["best_epoch"] != epoch + 1:
                restore_best(model, out)
                state["lr_scale"] /= 2
                for group in optimizer.param_groups:
                    group["lr"] /= 2  # now, not from the scheduler's next step
                tqdm.write(f"no dev {task.metric_label} gain: back to epoch {state['best_epoch']}'s weights, "
                           f"learning rate {cfg.lr * state['lr_scale']:.3g}")
            save_checkpoint()
            write_metrics(out, cfg, state, labels, max_length, task, device=device_name(device),
                          optimizer=describe(optimizer))
    bar.close()
    if state["best_epoch"] is None:
        raise ValueError(f"{out}: no epoch was eligible to keep (keep_if never held); train for longer")
    metrics = write_metrics(out, cfg, state, labels, max_length, task, complete=True, device=device_name(device),
                            optimizer=describe(optimizer))
    if not cfg.keep_checkpoint:
        shutil.rmtree(ckpt_dir, ignore_errors=True)
    return metrics


def wsd_step(state: dict[str, Any], done: int, stable_epochs: int, patience: int | None, model: torch.nn.Module,
             out: Path, optimizer: torch.optim.Optimizer, lr: float, metric: str) -> bool:
    """After epoch `done` of a wsd run: start the decay epoch when dev has stopped improving, or stop after it.

    Returns whether training stops (the decay epoch is over).
    """
    if state["decay_from"] is not None:
        tqdm.write("decay epoch done: stopping")
        return True
    stalled = bool(patience and state["best_epoch"] and done - state["best_epoch"] >= patience)
    if not stalled and done < stable_epochs:
        return False
    if state["best_epoch"] != done:
        restore_best(model, out)
    state["decay_from"] = state["step"]
    for group in optimizer.param_groups:
        group["lr"] = 0.5 * lr  # now, not from the scheduler's next step
    why = f"no dev {metric} gain for {patience} epoch(s)" if stalled else f"{done} stable epochs"
    tqdm.write(f"{why}: one epoch decaying from {0.5 * lr:.3g} to 0, from epoch {state['best_epoch']}'s weights")
    return False


def restore_best(model: torch.nn.Module, out: Path) -> None:
    """Load the best epoch's saved weights back into `model` (the plateau schedule's restart point)."""
    from safetensors.torch import load_file

    best = load_file(str(out / "model.safetensors"), device="cpu")
    missing, unexpected = model.load_state_dict(best, strict=False)
    if unexpected or [k for k in missing if k in dict(model.named_parameters())]:
        raise RuntimeError(f"{out}: the saved best model does not match the one training "
                           f"(missing {missing[:3]}, unexpected {unexpected[:3]})")


def save_model(model: torch.nn.Module, tokenizer: Any, out: Path, labels: list[str],
               cfg: FinetuneConfig, max_length: int, task: Task) -> None:
    """Save a Hugging Face directory (safetensors) that the task's transformers pipeline loads."""
    model.save_pretrained(out, safe_serialization=True)
    tokenizer.save_pretrained(out)
    write_meta(out, {"kind": "hf", "stage": "finetune", "task": task.name, "output": task.output,
                     "base_model": cfg.model,
                     "base_model_path": resolve_model(cfg.model), "langs": cfg.langs,
                     "labels": labels, "max_length": max_length, **cfg.extra})


def write_metrics(out: Path, cfg: FinetuneConfig, state: dict[str, Any], labels: list[str],
                  max_length: int, task: Task, complete: bool = False, device: str = "cpu",
                  optimizer: str = "AdamW") -> dict[str, Any]:
    """metrics.json beside the model: the dev metric per epoch, best epoch, time, settings, machine.

    `best_dev_<metric>` (best_dev_f1 for NER) and the task-free `best_dev` with `metric` naming it.
    """
    metrics = {
        "complete": complete,
        "task": task.name,
        "metric": task.metric,
        "best_dev": state["best_f1"],
        f"best_dev_{task.metric}": state["best_f1"],
        "best_epoch": state["best_epoch"],
        "steps": state["step"],
        "epochs_run": state["epoch"],
        "train_seconds": round(state["train_seconds"], 1),
        "history": state["history"],
        "labels": labels,
        "max_length": max_length,
        "config": asdict(cfg),
        "machine": {"cpu": platform.processor() or platform.machine(), "cores": os.cpu_count(),
                    "threads": torch.get_num_threads(), "torch": torch.__version__, "device": device,
                    "optimizer": optimizer},
    }
    (out / "metrics.json").write_text(json.dumps(metrics, indent=2) + "\n")
    return metrics


def labels_of(run: str | Path) -> list[str]:
    """Labels of a saved fine-tuned model."""
    from transformers import AutoConfig

    id2label = AutoConfig.from_pretrained(run, trust_remote_code=False).id2label
    return [id2label[i] for i in range(len(id2label))]
