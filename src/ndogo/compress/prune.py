"""Magnitude pruning, before or after fine-tuning, and a sparse file format that makes it smaller on disk.

`prune(run, out, config)` follows the stage contract of `ndogo.compress`: it
reads a saved model, zeroes the smallest-magnitude weights of every encoder
Linear layer (optionally the embeddings too), layer by layer or over the whole
encoder at once, optionally fine-tunes for a few epochs with the pruned weights
held at zero ("recovery"), and saves the result as kind `sparse`.

Why a file format of our own: a masked dense model is exactly as large as the
dense one, and safetensors has no sparse tensor type (torch's sparse tensors
only save through pickle, which ndogo never loads). So each tensor that is
mostly zeros is stored as a bitmask of its non-zero positions (numpy.packbits,
one bit per weight) plus its non-zero values in row-major order. A bitmask
costs a fixed 1/32 of the dense fp32 size and beats CSR's 16- or 32-bit column
index per non-zero at every sparsity below ~97%, which is the range studied.
The bitmask is taken on the bit pattern, so even -0.0 survives: a reload gives
bit-identical tensors, and `densify` writes a plain Hugging Face directory.

Pruning *before* fine-tuning (`ndogo finetune --prune-sparsity`) uses
`finetune_pruning`: the pretrained encoder is pruned once (`oneshot`) or
step by step on the cubic schedule of Zhu & Gupta (2017) (`gradual`), and a
step hook puts the zeros back after every optimizer step.
"""

from __future__ import annotations

import json
import math
import shutil
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors import safe_open
from safetensors.torch import save_file
from torch import nn
from torch.nn.utils import prune as torch_prune
from transformers import AutoConfig, AutoModelForTokenClassification
from transformers.initialization import no_init_weights

from ndogo.data.corpus import labels_for_types
from ndogo.models.loading import (
    ModelError,
    load_tokenizer,
    model_labels,
    read_meta,
    run_window,
    write_meta,
)
from ndogo.models.runner import Runner, count_params, load_runner, register_kind, size_on_disk
from ndogo.train.finetune import FinetuneConfig, finetune, load_languages

SPARSE_FILE = "sparse.safetensors"
SPARSE_FORMAT = "ndogo-bitmask-v1"
SCOPES = ("layer", "global")
METHODS = ("magnitude", "heads", "ffn")
# Integer types of the same width, to read a float tensor's bit pattern.
_BITS = {1: torch.uint8, 2: torch.int16, 4: torch.int32, 8: torch.int64}


@dataclass
class PruneConfig:
    """What `prune` does to a saved model (kept in the output's ndogo.json).

    `sparsity` is the fraction of weights zeroed (magnitude) or of attention
    heads / FFN neurons removed in every layer (heads, ffn). Recovery
    fine-tuning needs `data` and `lang` (the language(s) the model was tuned on).
    """

    sparsity: float
    method: str = "magnitude"
    scope: str = "layer"
    include_embeddings: bool = False
    importance: str = "weight"  # heads/ffn only: weight magnitude or gradient (Taylor) scores
    importance_batches: int = 8  # training batches for gradient scores
    recover_epochs: int = 0
    data: str | None = None
    lang: str | None = None
    lr: float = 5e-5
    batch_size: int = 16
    seed: int = 42
    threads: int | None = None
    save_format: str = "sparse"  # sparse (bitmask file) or hf (plain, masked dense); magnitude only
    show_progress: bool = True

    def check(self) -> None:
        """Refuse settings that cannot work before any model is loaded."""
        if not 0 <= self.sparsity < 1:
            raise ValueError(f"sparsity must be in [0, 1), got {self.sparsity}")
        if self.method not in METHODS:
            raise ValueError(f"method must be one of {', '.join(METHODS)}, got {self.method!r}")
        if self.scope not in SCOPES:
            raise ValueError(f"scope must be one of {', '.join(SCOPES)}, got {self.scope!r}")
        if self.importance not in ("weight", "gradient"):
            raise ValueError(f"importance must be weight or gradient, got {self.importance!r}")
        if self.save_format not in ("sparse", "hf"):
            raise ValueError(f"format must be sparse or hf, got {self.save_format!r}")
        if self.recover_epochs < 0:
            raise ValueError(f"recover_epochs must be >= 0, got {self.recover_epochs}")
        needs_data = self.recover_epochs > 0 or (self.method != "magnitude" and self.importance == "gradient")
        if needs_data and not self.lang:
            raise ValueError("recovery fine-tuning and gradient importance need --lang (and --data)")


# ---------------------------------------------------------------- unstructured magnitude pruning


def prunable(model: nn.Module, include_embeddings: bool = False) -> list[tuple[str, nn.Module]]:
    """(name, module) of every encoder Linear layer, and of the embeddings if asked.

    The task head is left alone: it is tiny and fresh, and pruning it costs F1 for nothing.
    """
    base = getattr(model, "base_model", model)
    names = {id(m): n for n, m in model.named_modules()}
    kinds: tuple[type[nn.Module], ...] = (nn.Linear, nn.Embedding) if include_embeddings else (nn.Linear,)
    found = [(names[id(m)], m) for m in base.modules() if isinstance(m, kinds)]
    if not found:
        raise ModelError(f"{type(model).__name__}: no Linear layers to prune in its encoder")
    return found


def magnitude_prune(model: nn.Module, sparsity: float, scope: str = "layer",
                    include_embeddings: bool = False) -> dict[str, torch.Tensor]:
    """Zero the smallest-magnitude weights in place; return the kept-weight masks by parameter name.

    torch.nn.utils.prune does the ranking (`l1_unstructured` per layer,
    `global_unstructured` over all of them); the pruning is then made permanent
    with `prune.remove` so the model keeps plain `weight` parameters that
    Hugging Face can save and that the fine-tuning loop can see by name.
    Weights that are already zero rank lowest, so pruning an already-pruned
    model to the same sparsity keeps its mask.
    """
    if not 0 <= sparsity < 1:
        raise ValueError(f"sparsity must be in [0, 1), got {sparsity}")
    if scope not in SCOPES:
        raise ValueError(f"scope must be one of {', '.join(SCOPES)}, got {scope!r}")
    targets = prunable(model, include_embeddings)
    if scope == "layer":
        for _, module in targets:
            torch_prune.l1_unstructured(module, "weight", amount=sparsity)
    else:
        torch_prune.global_unstructured([(m, "weight") for _, m in targets],
                                        pruning_method=torch_prune.L1Unstructured, amount=sparsity)
    masks = {}
    for name, module in targets:
        mask = module.weight_mask.bool()
        torch_prune.remove(module, "weight")
        with torch.no_grad():
            # weight_orig * mask leaves -0.0 where a negative weight was cut; store a clean +0.0.
            module.weight.masked_fill_(~mask, 0.0)
        masks[f"{name}.weight"] = mask
    return masks


def masks_from_zeros(model: nn.Module, names: list[str]) -> dict[str, torch.Tensor]:
    """Masks read off the weights themselves (after a resume, the zeros are the mask)."""
    return {n: model.get_parameter(n).detach() != 0 for n in names}


def achieved_sparsity(masks: dict[str, torch.Tensor]) -> float:
    """Fraction of the masked weights that are zero."""
    total = sum(m.numel() for m in masks.values())
    kept = sum(int(m.sum()) for m in masks.values())
    return 1 - kept / total if total else 0.0


def apply_masks(model: nn.Module, masks: dict[str, torch.Tensor]) -> None:
    """Put the pruned weights back to exactly zero."""
    with torch.no_grad():
        for name, mask in masks.items():
            model.get_parameter(name).masked_fill_(~mask, 0.0)


class HoldMasks:
    """A step hook for `ndogo.train.finetune.finetune`: pruned weights stay zero after every optimizer step.

    Masking the weights after the step (rather than torch's forward-pre-hook
    reparametrisation `weight = weight_orig * mask`) keeps parameter names
    unchanged, so checkpoints, resume and `save_pretrained` work as for a dense model.
    """

    def __init__(self, masks: dict[str, torch.Tensor]) -> None:
        self.masks = masks

    def __call__(self, model: nn.Module) -> None:
        apply_masks(model, self.masks)


def cubic_sparsity(step: int, final: float, begin: int, end: int, initial: float = 0.0) -> float:
    """Zhu & Gupta (2017), eq. 1: s_t = s_f + (s_i - s_f)(1 - (t - t0)/(n Δt))^3, clamped to [t0, t0 + n Δt]."""
    if end <= begin:
        return final if step >= begin else initial
    progress = min(max((step - begin) / (end - begin), 0.0), 1.0)
    return final + (initial - final) * (1 - progress) ** 3


@dataclass
class GradualPruning:
    """Raise sparsity from 0 to `final` on the cubic schedule while fine-tuning, holding the mask between updates.

    Pruning runs from `begin` to `end` (fractions of the training steps), every
    `(end - begin) / updates` steps; ending half-way leaves the other half of
    training (at a still useful learning rate) to recover, as Zhu & Gupta advise.
    The best dev-F1 epoch is only kept once the final sparsity is reached (`reached`).
    """

    final: float
    scope: str = "layer"
    include_embeddings: bool = False
    begin: float = 0.0
    end: float = 0.5
    updates: int = 20
    step: int = 0
    total: int = 0
    masks: dict[str, torch.Tensor] | None = field(default=None, repr=False)

    def start(self, model: nn.Module, step: int, total: int) -> None:
        """`finetune` calls this before the first step (and after a resume, with the step it resumes at).

        The mask is read off the zeros of the weights as they are now: after a
        resume, those of the checkpoint, which are exactly the pruned ones.
        """
        self.step, self.total = step, total
        names = [f"{n}.weight" for n, _ in prunable(model, self.include_embeddings)]
        self.masks = masks_from_zeros(model, names)

    @property
    def window(self) -> tuple[int, int]:
        return int(self.begin * self.total), max(int(self.end * self.total), 1)

    @property
    def every(self) -> int:
        t0, t1 = self.window
        return max((t1 - t0) // self.updates, 1)

    def __call__(self, model: nn.Module) -> None:
        self.step += 1
        if self.masks is None:
            raise RuntimeError("GradualPruning needs finetune(start_hooks=[gradual.start]) before its first step")
        apply_masks(model, self.masks)
        t0, t1 = self.window
        due = t0 <= self.step <= t1 and (self.step - t0) % self.every == 0
        if due or (self.step >= t1 and achieved_sparsity(self.masks) < self.target(self.step) - 1e-9):
            self.masks = magnitude_prune(model, self.target(self.step), self.scope, self.include_embeddings)

    def target(self, step: int) -> float:
        t0, t1 = self.window
        return cubic_sparsity(step, self.final, t0, t1)

    def reached(self, model: nn.Module) -> bool:
        """True once the final sparsity holds: only such epochs may be saved as the best."""
        return self.step >= self.window[1]


def finetune_pruning(cfg: FinetuneConfig, sparsity: float, schedule: str = "oneshot", scope: str = "layer",
                     include_embeddings: bool = False) -> dict[str, Any]:
    """Keyword arguments for `ndogo.train.finetune.finetune` that prune the pretrained encoder *before* fine-tuning.

    `cfg` (a FinetuneConfig) records the pruning in `cfg.extra["prune"]`, so it
    lands in the saved ndogo.json and a resume checks it. `oneshot` prunes once
    when the model is loaded; `gradual` follows Zhu & Gupta's cubic schedule.
    Either way a step hook re-zeroes the pruned weights after every optimizer step.
    """
    if not 0 < sparsity < 1:
        raise ValueError(f"--prune-sparsity must be in (0, 1), got {sparsity}")
    if schedule not in ("oneshot", "gradual"):
        raise ValueError(f"--prune-schedule must be oneshot or gradual, got {schedule!r}")
    cfg.extra["prune"] = {"sparsity": sparsity, "schedule": schedule, "scope": scope,
                          "include_embeddings": include_embeddings, "when": "before"}
    if schedule == "gradual":
        gradual = GradualPruning(sparsity, scope, include_embeddings)
        cfg.extra["prune"].update(begin=gradual.begin, end=gradual.end, updates=gradual.updates)
        return {"step_hooks": [gradual], "start_hooks": [gradual.start], "keep_if": gradual.reached}
    hold = HoldMasks({})

    def transform(model: nn.Module) -> nn.Module:
        hold.masks = magnitude_prune(model, sparsity, scope, include_embeddings)
        return model

    return {"model_transform": transform, "step_hooks": [hold]}


# ---------------------------------------------------------------- sparse storage


def _bits(t: torch.Tensor) -> torch.Tensor:
    """The tensor's bit pattern as integers (so -0.0 counts as non-zero and survives)."""
    return t.view(_BITS[t.element_size()]) if t.is_floating_point() else t


def _worth_sparse(t: torch.Tensor, nonzero: int) -> bool:
    """Store bitmask + values only where that is smaller than the dense tensor."""
    if not t.is_floating_point() or t.dim() < 2:
        return False
    return nonzero * t.element_size() + math.ceil(t.numel() / 8) < t.numel() * t.element_size()


def encode_sparse(state: dict[str, torch.Tensor]) -> tuple[dict[str, torch.Tensor], dict[str, list[int]]]:
    """Tensors for the safetensors file, and the shapes of those stored as bitmask + values."""
    tensors: dict[str, torch.Tensor] = {}
    layout: dict[str, list[int]] = {}
    for name, tensor in state.items():
        t = tensor.detach().cpu().contiguous()
        keep = _bits(t) != 0
        if _worth_sparse(t, int(keep.sum())):
            tensors[f"{name}:bitmask"] = torch.from_numpy(np.packbits(keep.numpy().ravel()))
            tensors[f"{name}:values"] = t[keep].contiguous()
            layout[name] = list(t.shape)
        else:
            tensors[name] = t.clone()  # clone: safetensors refuses tensors that share memory
    return tensors, layout


def decode_sparse(tensors: dict[str, torch.Tensor], layout: dict[str, list[int]]) -> dict[str, torch.Tensor]:
    """The dense state dict back from what `encode_sparse` stored."""
    state = {k: v for k, v in tensors.items() if not k.endswith((":bitmask", ":values"))}
    for name, shape in layout.items():
        values = tensors[f"{name}:values"]
        numel = math.prod(shape)
        keep = torch.from_numpy(np.unpackbits(tensors[f"{name}:bitmask"].numpy(), count=numel).astype(bool))
        dense = torch.zeros(numel, dtype=values.dtype)
        dense[keep] = values
        state[name] = dense.view(shape)
    return state


def save_sparse(model: nn.Module, tokenizer: Any, out: str | Path, meta: dict[str, Any]) -> Path:
    """Write a `sparse` model directory: config, tokenizer, bitmask safetensors and ndogo.json."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    tensors, layout = encode_sparse(model.state_dict())
    save_file(tensors, out / SPARSE_FILE, metadata={"format": SPARSE_FORMAT, "sparse": json.dumps(layout)})
    model.config.save_pretrained(out)
    tokenizer.save_pretrained(out)
    write_meta(out, {**meta, "kind": "sparse", "weights": SPARSE_FILE})
    return out


def load_sparse_state(path: str | Path) -> dict[str, torch.Tensor]:
    """The dense state dict stored in a sparse model directory (or its safetensors file)."""
    path = Path(path)
    file = path / SPARSE_FILE if path.is_dir() else path
    if not file.is_file():
        raise ModelError(f"{path}: no {SPARSE_FILE}")
    with safe_open(str(file), framework="pt") as f:
        meta = f.metadata() or {}
        if meta.get("format") != SPARSE_FORMAT:
            raise ModelError(f"{file}: not an ndogo sparse file (format {meta.get('format')!r})")
        tensors = {k: f.get_tensor(k) for k in f.keys()}  # safe_open has no __iter__
    return decode_sparse(tensors, json.loads(meta["sparse"]))


def build_model(path: str | Path, state: dict[str, torch.Tensor],
                reshape: Callable[[nn.Module], None] | None = None) -> nn.Module:
    """A token-classification model from `path`'s config.json with exactly these weights.

    Built without random initialisation (every tensor is then loaded, strictly),
    so it takes milliseconds; `reshape` first shrinks layers for structured pruning.
    """
    config = AutoConfig.from_pretrained(path, trust_remote_code=False)
    with no_init_weights():
        model = AutoModelForTokenClassification.from_config(config)
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
                  forward=lambda batch: model(**batch).logits, module=model, meta=meta)


def load_sparse(path: Path, meta: dict[str, Any]) -> Runner:
    """Loader of kind `sparse`: rebuilds the dense (zero-filled) model; it runs at dense speed."""
    return runner_for(path, "sparse", build_model(path, load_sparse_state(path)), meta)


register_kind("sparse", load_sparse)


def densify(run: str | Path, out: str | Path) -> Path:
    """Write an hf or sparse model as a plain Hugging Face directory (kind `hf`): same weights, dense file."""
    runner = load_runner(run)
    if runner.module is None or runner.kind not in ("hf", "sparse"):
        raise ModelError(f"{run}: kind {runner.kind!r} has no plain Hugging Face form (only hf and sparse do)")
    out = Path(out)
    runner.module.save_pretrained(out, safe_serialization=True)
    runner.tokenizer.save_pretrained(out)
    meta = {k: v for k, v in runner.meta.items() if k != "weights"}
    write_meta(out, {**meta, "kind": "hf", "densified_from": str(run)})
    return out


# ---------------------------------------------------------------- the stage


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
    corpora = load_languages(cfg.data, langs)
    types = {t[2:] for c in corpora for sents in c.splits.values() for s in sents for t in s.tags if t != "O"}
    if labels_for_types(types) != model_labels(model):
        raise ValueError(f"{','.join(langs)} has labels {labels_for_types(types)}, the model "
                         f"{model_labels(model)}: recover on the language(s) it was fine-tuned on")
    start = work / "start"
    if not (start / "config.json").is_file():
        model.save_pretrained(start, safe_serialization=True)
        tokenizer.save_pretrained(start)
        write_meta(start, {**source_meta, "kind": "hf"})
    train_dir = work / "train"
    ft = FinetuneConfig(model=str(start), data=cfg.data, langs=langs, out=str(train_dir), epochs=cfg.recover_epochs,
                        lr=cfg.lr, batch_size=cfg.batch_size, seed=cfg.seed, threads=cfg.threads,
                        max_length=source_meta.get("max_length"), extra={"recovery_of": source_meta.get("source")})
    metrics = finetune(ft, step_hooks=step_hooks, model_transform=model_transform, show_progress=cfg.show_progress)
    best = load_best(train_dir) if load_best else load_module(train_dir)[0]
    summary = {"epochs": cfg.recover_epochs, "lr": cfg.lr, "batch_size": cfg.batch_size,
               "best_dev_f1": metrics["best_dev_f1"], "best_epoch": metrics["best_epoch"],
               "train_seconds": metrics["train_seconds"]}
    return best.eval(), summary


def prune(run: str | Path, out: str | Path, config: PruneConfig) -> Path:
    """Prune the model in `run` and save it in `out` (stage contract of `ndogo.compress`).

    Magnitude pruning saves kind `sparse` (or a masked `hf` directory with
    `save_format="hf"`); heads/ffn pruning saves kind `structured` (see
    `ndogo.compress.structured`). ndogo.json records the requested and the
    achieved sparsity, over the pruned tensors and over the whole model.
    """
    config.check()
    if config.threads:
        torch.set_num_threads(config.threads)
    if config.method != "magnitude":
        from ndogo.compress.structured import prune_structured

        return prune_structured(run, out, config)
    out = Path(out)
    if out.resolve() == Path(run).resolve():
        raise ValueError(f"--out must differ from the model being pruned ({run})")
    model, runner = load_module(run)
    masks = magnitude_prune(model, config.sparsity, config.scope, config.include_embeddings)
    source_meta = {**runner.meta, "source": str(run)}
    recovery = None
    if config.recover_epochs:
        work = out.with_name(f".{out.name}.recover")
        hold = HoldMasks(masks)
        model, recovery = recover(model, runner.tokenizer, source_meta, work, config, [hold])
        shutil.rmtree(work)
        if any(bool((model.get_parameter(n).detach()[~m] != 0).any()) for n, m in masks.items()):
            raise RuntimeError("recovery fine-tuning let pruned weights move: the mask was not held")
    params, nonzero = count_params(model)
    meta = {k: v for k, v in runner.meta.items() if k not in ("kind", "weights")}
    meta.update({
        "stage": "prune", "source": str(run),
        "prune": {k: v for k, v in asdict(config).items() if k != "show_progress"},
        "sparsity_requested": config.sparsity, "sparsity": round(achieved_sparsity(masks), 6),
        "pruned_params": sum(m.numel() for m in masks.values()),
        "model_sparsity": round(1 - nonzero / params, 6), "recovery": recovery,
        "max_length": runner.max_length, "labels": runner.labels,
    })
    if config.save_format == "hf":
        model.save_pretrained(out, safe_serialization=True)
        runner.tokenizer.save_pretrained(out)
        write_meta(out, {**meta, "kind": "hf"})
    else:
        save_sparse(model, runner.tokenizer, out, meta)
    meta = read_meta(out)
    meta["size_bytes"] = size_on_disk(out)
    write_meta(out, meta)
    return out
