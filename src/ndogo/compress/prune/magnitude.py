"""Magnitude pruning: zero the smallest weights of every encoder Linear layer, before or after fine-tuning.

After fine-tuning (this method of the prune stage) the smallest-magnitude weights are zeroed
layer by layer or over the whole encoder at once (torch.nn.utils.prune ranks them), optionally
followed by a few epochs of recovery fine-tuning with the zeros held, and the model is saved in
the sparse format (`_sparse.py`), so it is smaller on disk roughly in proportion to its density.

Before fine-tuning (`ndogo finetune --prune-sparsity`, `finetune_pruning`) the pretrained encoder
is pruned once (`oneshot`) or step by step on the cubic schedule of Zhu & Gupta (2017)
(`gradual`), and a step hook puts the zeros back after every optimizer step.

torch is imported inside the functions: listing the methods must not need it.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ndogo.compress.methods import option
from ndogo.compress.prune import PRUNE, PruneConfig

if TYPE_CHECKING:
    import torch
    from torch import nn

    from ndogo.train.finetune import FinetuneConfig

SCOPES = ("layer", "global")


@PRUNE.register("magnitude")
@dataclass
class MagnitudeConfig(PruneConfig):
    """Unstructured magnitude pruning: the smallest weights zeroed, saved sparse (smaller on disk, same speed)."""

    scope: str = option("layer", choices=SCOPES, help="layer: the same sparsity in every Linear layer; global: "
                                                      "one magnitude threshold over the whole encoder")
    include_embeddings: bool = option(False, help="prune the embedding tables too; they are half of a small model")
    save_format: str = option("sparse", choices=("sparse", "hf"), flag="--format",
                              help="sparse (bitmask file, size ∝ density) or hf (plain masked dense directory)")


# ---------------------------------------------------------------- the algorithm


def prunable(model: nn.Module, include_embeddings: bool = False) -> list[tuple[str, nn.Module]]:
    """(name, module) of every encoder Linear layer, and of the embeddings if asked.

    The task head is left alone: it is tiny and fresh, and pruning it costs F1 for nothing.
    """
    from torch import nn

    from ndogo.models.loading import ModelError

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
    import torch
    from torch.nn.utils import prune as torch_prune

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
    import torch

    with torch.no_grad():
        for name, mask in masks.items():
            weight = model.get_parameter(name)
            if mask.device != weight.device:  # the model moved to its training device after pruning
                masks[name] = mask = mask.to(weight.device)
            weight.masked_fill_(~mask, 0.0)


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


# ---------------------------------------------------------------- the stage


class Magnitude:
    """The prune stage for magnitude pruning."""

    def prune(self, run: Path, out: Path, config: MagnitudeConfig) -> Path:
        from ndogo.compress.prune._common import load_module, recover
        from ndogo.compress.prune._sparse import save_sparse
        from ndogo.models.loading import read_meta, write_meta
        from ndogo.models.runner import count_params, size_on_disk

        model, runner = load_module(run)
        masks = magnitude_prune(model, config.sparsity, config.scope, config.include_embeddings)
        source_meta = {**runner.meta, "source": str(run)}
        recovery = None
        if config.recover_epochs:
            work = out.with_name(f".{out.name}.recover")
            hold = HoldMasks(masks)
            model, recovery = recover(model, runner.tokenizer, source_meta, work, config, [hold])
            shutil.rmtree(work)
            if any(bool((model.get_parameter(n).detach()[~m.cpu()] != 0).any()) for n, m in masks.items()):
                raise RuntimeError("recovery fine-tuning let pruned weights move: the mask was not held")
        params, nonzero = count_params(model)
        meta = {k: v for k, v in runner.meta.items() if k not in ("kind", "weights")}
        meta.update({
            "stage": "prune", "source": str(run),
            "prune": config.record(),
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


PRUNE.handler(MagnitudeConfig)(Magnitude())
