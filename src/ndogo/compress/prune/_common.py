"""What the pruning methods share: rebuilding a model from stored weights, and recovery fine-tuning."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from torch import nn
from transformers import AutoConfig
from transformers.initialization import no_init_weights

from ndogo.compress.prune import PruneConfig
from ndogo.models.loading import ModelError, load_tokenizer, model_from_config, model_labels, run_window, write_meta
from ndogo.models.runner import Runner, load_runner
from ndogo.tasks import task_of_model
from ndogo.train.finetune import FinetuneConfig, finetune, load_languages


def build_model(path: str | Path, state: dict[str, torch.Tensor],
                reshape: Callable[[nn.Module], None] | None = None) -> nn.Module:
    """A tagger or text classifier (as `path`'s config.json says) with exactly these weights.

    Built without random initialisation (every tensor is then loaded, strictly),
    so it takes milliseconds; `reshape` first shrinks layers for structured pruning.
    """
    config = AutoConfig.from_pretrained(path, trust_remote_code=False)
    with no_init_weights():
        model = model_from_config(config)
    if reshape is not None:
        reshape(model)
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as err:
        raise ModelError(f"{path}: stored weights do not fit its config.json ({str(err).splitlines()[0]})") from None
    return model.eval()


def runner_for(path: Path, kind: str, model: nn.Module, meta: dict[str, Any]) -> Runner:
    """A `Runner` over an in-memory model saved at `path`."""
    tokenizer = load_tokenizer(path)
    max_length = run_window(path, meta, tokenizer, model.config)
    return Runner(path=path, kind=kind, tokenizer=tokenizer, labels=model_labels(model), max_length=max_length,
                  forward=lambda batch: model(**batch).logits, module=model, meta=meta, devices=("cpu", "cuda"))


def load_module(run: str | Path) -> tuple[nn.Module, Runner]:
    """The torch module of a saved hf or sparse model (other kinds, e.g. quantized, cannot be pruned)."""
    runner = load_runner(run)
    if runner.module is None or runner.kind not in ("hf", "sparse"):
        raise ModelError(f"{run}: can only prune hf or sparse models, this one is {runner.kind!r}")
    return runner.module, runner


def recover(model: nn.Module, tokenizer: Any, source_meta: dict[str, Any], work: Path, cfg: PruneConfig,
            step_hooks: list[Callable[[nn.Module], None]],
            model_transform: Callable[[nn.Module], nn.Module] | None = None,
            load_best: Callable[[Path], nn.Module] | None = None) -> tuple[nn.Module, dict[str, Any]]:
    """Fine-tune a pruned model for `cfg.recover_epochs` with its pruning held by `step_hooks`.

    The pruned model is written to `work/start` as a Hugging Face directory so
    the ordinary fine-tuning loop (with its checkpoints and resume) can start
    from it; its head is kept because the corpus gives the same labels, which is checked first.
    """
    langs = [x.strip() for x in (cfg.lang or "").split(",") if x.strip()]
    task = task_of_model(source_meta)
    corpora = load_languages(cfg.data, langs, task)
    if task.labels(corpora) != model_labels(model):
        raise ValueError(f"{','.join(langs)} has labels {task.labels(corpora)}, the model "
                         f"{model_labels(model)}: recover on the language(s) it was fine-tuned on")
    start = work / "start"
    if not (start / "config.json").is_file():
        model.save_pretrained(start, safe_serialization=True)
        tokenizer.save_pretrained(start)
        write_meta(start, {**source_meta, "kind": "hf"})
    train_dir = work / "train"
    ft = FinetuneConfig(model=str(start), data=cfg.data, langs=langs, out=str(train_dir), epochs=cfg.recover_epochs,
                        lr=cfg.lr, batch_size=cfg.batch_size, seed=cfg.seed, threads=cfg.threads,
                        device=cfg.device, max_length=source_meta.get("max_length"),
                        extra={"recovery_of": source_meta.get("source")})
    metrics = finetune(ft, step_hooks=step_hooks, model_transform=model_transform, show_progress=cfg.show_progress)
    best = load_best(train_dir) if load_best else load_module(train_dir)[0]
    summary = {"epochs": cfg.recover_epochs, "lr": cfg.lr, "batch_size": cfg.batch_size,
               "best_dev": metrics["best_dev"], f"best_dev_{metrics['metric']}": metrics["best_dev"],
               "metric": metrics["metric"], "best_epoch": metrics["best_epoch"],
               "train_seconds": metrics["train_seconds"]}
    return best.eval(), summary
