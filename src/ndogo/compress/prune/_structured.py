"""Structured pruning (the `heads` and `ffn` methods): remove whole heads or FFN neurons, so the matrices shrink.

Unstructured zeros make a model smaller on disk but not faster on a CPU (dense
kernels multiply the zeros too). Removing a head drops its rows of the query,
key and value projections and its columns of the attention output projection;
removing an FFN neuron drops its row of the intermediate projection and its
column of the output projection. The smaller model then runs faster with the
same dense kernels, and `ndogo evaluate` times that smaller model.

transformers 5 no longer has `PreTrainedModel.prune_heads` (nor the
`pruned_heads` config field that re-applied it on load), so heads are removed
here with transformers' own `prune_linear_layer`. Its attention reshapes by
head size (`view(..., -1, head_size)`), so fewer heads need no other change.
A per-layer head count and FFN width cannot be written in a plain config.json,
so the result is kind `structured`: the original config.json, the shrunk
weights, and the kept sizes per layer in ndogo.json, from which the loader
rebuilds the smaller modules before loading the weights.

Importance of a head or neuron is either the norm of its weights (`weight`)
or a first-order Taylor score from gradients on a few training batches
(`gradient`): |Σ W ⊙ ∂L/∂W| over the group's columns of the output projection,
summed over batches. That sum equals ∂L/∂g for a gate g multiplying the
group's output, i.e. the head-importance score of Michel et al. (2019) and the
Taylor criterion of Molchanov et al. (2019), without patching a gate into the model.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors.torch import load_file, save_file
from torch import nn
from tqdm.auto import tqdm
from transformers.pytorch_utils import prune_linear_layer

from ndogo.compress.prune._common import build_model, load_module, recover, runner_for
from ndogo.models.loading import ModelError, write_meta
from ndogo.models.runner import count_params, register_kind, size_on_disk

WEIGHTS_FILE = "structured.safetensors"


@dataclass
class Plan:
    """Which attention heads and FFN neurons each encoder layer keeps (sorted indices)."""

    heads: list[list[int]]
    neurons: list[list[int]]

    def sizes(self) -> list[dict[str, int]]:
        return [{"heads": len(h), "ffn": len(n)} for h, n in zip(self.heads, self.neurons, strict=True)]


def encoder_layers(model: nn.Module) -> list[nn.Module]:
    """The transformer layers of a BERT-style encoder (bert, roberta, xlm-roberta, ... as in transformers)."""
    base = getattr(model, "base_model", model)
    layers = getattr(getattr(base, "encoder", None), "layer", None)
    needed = ("attention.self.query", "attention.self.key", "attention.self.value", "attention.output.dense",
              "intermediate.dense", "output.dense")
    if not layers or not all(_has(layer, p) for layer in layers for p in needed):
        raise ModelError(f"{type(model).__name__}: structured pruning needs BERT-style layers "
                         f"(encoder.layer[i] with {', '.join(needed)})")
    return list(layers)


def _has(module: nn.Module, path: str) -> bool:
    try:
        return isinstance(module.get_submodule(path), nn.Linear)
    except AttributeError:
        return False


def full_plan(model: nn.Module) -> Plan:
    """A plan that keeps everything (the model as it is)."""
    layers = encoder_layers(model)
    return Plan([list(range(layer.attention.self.num_attention_heads)) for layer in layers],
                [list(range(layer.intermediate.dense.out_features)) for layer in layers])


def _head_columns(layer: nn.Module, heads: list[int]) -> torch.Tensor:
    """Indices of the projection rows/columns that belong to these heads."""
    d = layer.attention.self.attention_head_size
    if not heads:
        return torch.zeros(0, dtype=torch.long)
    return torch.cat([torch.arange(h * d, (h + 1) * d) for h in heads])


def weight_scores(model: nn.Module) -> tuple[torch.Tensor, torch.Tensor]:
    """L2 norm of each head's (q, k, v rows; output columns) and each neuron's (in row; out column) weights."""
    head_scores, neuron_scores = [], []
    with torch.no_grad():
        for layer in encoder_layers(model):
            att = layer.attention
            n_heads, d = att.self.num_attention_heads, att.self.attention_head_size
            rows = sum(getattr(att.self, p).weight.view(n_heads, d, -1).pow(2).sum((1, 2))
                       for p in ("query", "key", "value"))
            cols = att.output.dense.weight.view(-1, n_heads, d).pow(2).sum((0, 2))
            head_scores.append((rows + cols).sqrt())
            neuron_scores.append((layer.intermediate.dense.weight.pow(2).sum(1)
                                  + layer.output.dense.weight.pow(2).sum(0)).sqrt())
    return torch.stack(head_scores), torch.stack(neuron_scores)


def gradient_scores(model: nn.Module, batches: Iterator[dict[str, torch.Tensor]], n_batches: int,
                    show_progress: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
    """Σ over batches of |Σ W ⊙ ∂L/∂W| over each head's / neuron's columns of its output projection."""
    layers = encoder_layers(model)
    heads = torch.zeros(len(layers), layers[0].attention.self.num_attention_heads)
    neurons = torch.zeros(len(layers), layers[0].intermediate.dense.out_features)
    was_training = model.training
    model.eval()  # no dropout: the scores describe the model as it will run
    for batch in tqdm(batches, total=n_batches, desc="importance", unit="batch", disable=not show_progress):
        model.zero_grad(set_to_none=True)
        model(**batch).loss.backward()
        with torch.no_grad():
            for i, layer in enumerate(layers):
                att = layer.attention
                w = att.output.dense.weight
                heads[i] += (w * w.grad).view(w.shape[0], att.self.num_attention_heads, -1).sum((0, 2)).abs()
                w = layer.output.dense.weight
                neurons[i] += (w * w.grad).sum(0).abs()
    model.zero_grad(set_to_none=True)
    model.train(was_training)
    return heads, neurons


def plan_pruning(head_scores: torch.Tensor, neuron_scores: torch.Tensor, method: str, fraction: float) -> Plan:
    """Drop the lowest-scoring `fraction` of heads (method heads) or FFN neurons (method ffn) in every layer.

    The same number goes from every layer, and every layer keeps at least one,
    so no layer is cut out entirely and the model stays a plain stack of layers.
    """
    if method not in ("heads", "ffn"):
        raise ValueError(f"structured method must be heads or ffn, got {method!r}")
    if not 0 <= fraction < 1:
        raise ValueError(f"fraction to remove must be in [0, 1), got {fraction}")

    def keep(scores: torch.Tensor, drop: bool) -> list[list[int]]:
        n = scores.shape[1]
        k = max(n - round(fraction * n), 1) if drop else n
        return [sorted(row.topk(k).indices.tolist()) for row in scores]

    return Plan(keep(head_scores, method == "heads"), keep(neuron_scores, method == "ffn"))


def shrink(model: nn.Module, plan: Plan) -> nn.Module:
    """Physically remove what `plan` drops, in place; the logits equal those of `mask(model, plan)`."""
    layers = encoder_layers(model)
    if len(plan.heads) != len(layers):
        raise ModelError(f"plan has {len(plan.heads)} layers, the model {len(layers)}")
    for layer, heads, neurons in zip(layers, plan.heads, plan.neurons, strict=True):
        sa = layer.attention.self
        if len(heads) < sa.num_attention_heads:
            idx = _head_columns(layer, heads)
            sa.query = prune_linear_layer(sa.query, idx, dim=0)
            sa.key = prune_linear_layer(sa.key, idx, dim=0)
            sa.value = prune_linear_layer(sa.value, idx, dim=0)
            layer.attention.output.dense = prune_linear_layer(layer.attention.output.dense, idx, dim=1)
            sa.num_attention_heads = len(heads)
            sa.all_head_size = len(heads) * sa.attention_head_size
        if len(neurons) < layer.intermediate.dense.out_features:
            idx = torch.tensor(neurons, dtype=torch.long)
            layer.intermediate.dense = prune_linear_layer(layer.intermediate.dense, idx, dim=0)
            layer.output.dense = prune_linear_layer(layer.output.dense, idx, dim=1)
    return model


def mask(model: nn.Module, plan: Plan) -> nn.Module:
    """Zero, in place, everything `plan` drops but keep the shapes: the masked model `shrink` must agree with."""
    with torch.no_grad():
        for layer, heads, neurons in zip(encoder_layers(model), plan.heads, plan.neurons, strict=True):
            sa = layer.attention.self
            gone = sorted(set(range(sa.num_attention_heads)) - set(heads))
            idx = _head_columns(layer, gone)
            for proj in (sa.query, sa.key, sa.value):
                proj.weight[idx] = 0
                proj.bias[idx] = 0
            layer.attention.output.dense.weight[:, idx] = 0
            cut = sorted(set(range(layer.intermediate.dense.out_features)) - set(neurons))
            layer.intermediate.dense.weight[cut] = 0
            layer.intermediate.dense.bias[cut] = 0
            layer.output.dense.weight[:, cut] = 0
    return model


def resize_to(sizes: list[dict[str, int]]) -> Any:
    """A `reshape` for `build_model`: give each layer these head counts and FFN widths (weights loaded after)."""

    def reshape(model: nn.Module) -> None:
        shrink(model, Plan([list(range(s["heads"])) for s in sizes], [list(range(s["ffn"])) for s in sizes]))

    return reshape


def training_batches(model: nn.Module, tokenizer: Any, data: str | None, lang: str, max_length: int,
                     batch_size: int, n_batches: int, seed: int) -> Iterator[dict[str, torch.Tensor]]:
    """The first `n_batches` shuffled training batches of `lang`, labelled for the model's labels."""
    from ndogo.data.corpus import load_corpus
    from ndogo.models.loading import model_labels
    from ndogo.models.windowing import collate, encode_sentences, length_batches

    sents = [s for code in lang.split(",")
             for s in load_corpus(data, code.strip(), ("train",)).require("train", "importance scoring")]
    label2id = {lab: i for i, lab in enumerate(model_labels(model))}
    windows = encode_sentences(tokenizer, [s.tokens for s in sents], max_length, [s.tags for s in sents], label2id)
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    for b, idx in enumerate(length_batches(windows, batch_size, shuffle=True, rng=np.random.default_rng(seed))):
        if b >= n_batches:
            return
        yield collate([windows[i] for i in idx], pad_id)


def save_structured(model: nn.Module, tokenizer: Any, out: Path, plan: Plan, meta: dict[str, Any]) -> Path:
    """Write a `structured` directory: the unpruned config, the shrunk weights, the kept sizes per layer.

    `shrink` leaves `model.config` as it was, which is what the loader builds from before resizing.
    """
    out.mkdir(parents=True, exist_ok=True)
    save_file({k: v.detach().contiguous().clone() for k, v in model.state_dict().items()}, out / WEIGHTS_FILE)
    model.config.save_pretrained(out)
    tokenizer.save_pretrained(out)
    write_meta(out, {**meta, "kind": "structured", "weights": WEIGHTS_FILE, "layers": plan.sizes()})
    return out


def load_structured(path: Path, meta: dict[str, Any]) -> Any:
    """Loader of kind `structured`: rebuild the smaller layers, then load the weights strictly."""
    if "layers" not in meta or not (path / WEIGHTS_FILE).is_file():
        raise ModelError(f"{path}: a structured model needs {WEIGHTS_FILE} and per-layer sizes in ndogo.json")
    model = build_model(path, load_file(path / WEIGHTS_FILE), reshape=resize_to(meta["layers"]))
    return runner_for(path, "structured", model, meta)


register_kind("structured", load_structured)


def prune_structured(run: str | Path, out: str | Path, config: Any, method: str) -> Path:
    """Remove `config.sparsity` of the heads or FFN neurons (`method`) of every layer; save kind `structured`."""
    out = Path(out)
    model, runner = load_module(run)
    if runner.kind != "hf":
        raise ModelError(f"{run}: structured pruning starts from a dense hf model, not {runner.kind!r}")
    if config.importance == "gradient":
        batches = training_batches(model, runner.tokenizer, config.data, config.lang or "", runner.max_length,
                                   config.batch_size, config.importance_batches, config.seed)
        heads, neurons = gradient_scores(model, batches, config.importance_batches, config.show_progress)
    else:
        heads, neurons = weight_scores(model)
    plan = plan_pruning(heads, neurons, method, config.sparsity)
    params_before = count_params(model)[0]
    source_meta = {**runner.meta, "source": str(run)}
    recovery = None
    if config.recover_epochs:
        work = out.with_name(f".{out.name}.recover")
        sizes = plan.sizes()
        # Fine-tuning starts from the dense model and shrinks it on load, because a
        # plain Hugging Face directory cannot describe the smaller layers.
        model, recovery = recover(
            model, runner.tokenizer, source_meta, work, config, step_hooks=[],
            model_transform=lambda m: shrink(m, plan),
            load_best=lambda d: build_model(d, load_file(d / "model.safetensors"), reshape=resize_to(sizes)))
        shutil.rmtree(work)
    else:
        shrink(model, plan)
    params = count_params(model)[0]
    meta = {k: v for k, v in runner.meta.items() if k not in ("kind", "weights", "layers")}
    meta.update({
        "stage": "prune", "source": str(run),
        "prune": config.record(),
        "sparsity_requested": config.sparsity, "method": method,
        "params_before": params_before, "params": params, "param_reduction": round(1 - params / params_before, 6),
        "kept_heads": plan.heads, "recovery": recovery, "max_length": runner.max_length, "labels": runner.labels,
    })
    save_structured(model, runner.tokenizer, out, plan, meta)
    meta = {**meta, "kind": "structured", "weights": WEIGHTS_FILE, "layers": plan.sizes(),
            "size_bytes": size_on_disk(out)}
    write_meta(out, meta)
    return out
