"""Distillation: a smaller student, initialised from its teacher, trained to imitate it.

Two routes, as in the AfriBERTa distillation study ndogo reproduces:

- *agnostic*: on raw text (one file per language), with the shared MLM loop of
  `ndogo.train.mlm`: soft-target KL on the teacher's masked-LM distribution at
  temperature T (× T², Hinton et al.), the student's own MLM cross-entropy, and
  a cosine loss pulling the student's last hidden states towards the teacher's
  (DistilBERT's three losses and default weights 5 : 2 : 1). The result is a
  masked-LM to fine-tune with `ndogo finetune --model`.
- *task*: on NER training data, with the fine-tuning loop of
  `ndogo.train.finetune` (same windows, batches, dev-F1 model selection and
  resume) and its loss swapped for soft-target KL on the fine-tuned teacher's
  label distribution plus gold-label cross-entropy (0.5 : 0.5).

Student initialisation (both routes): the student keeps the teacher's
embeddings, heads and the encoder layers in `layer_map`, by default every other
layer (teacher layer i·N/K for student layer i: 6→3 keeps 0, 2, 4). A smaller
hidden size (`student_hidden`) slices the teacher's weights rather than
projecting them: the residual channels, attention heads (head size is kept, so
heads drop in proportion) and FFN neurons with the largest mean absolute
activation on a few batches of the distillation data are kept, the importance
criterion of Minitron (Muralidharan et al., 2024). Slicing keeps every kept
weight exactly as the teacher learned it, so the student starts close to the
teacher's function; a random projection would not. With a smaller hidden
size, the cosine loss compares the student's hidden states with the teacher's
on the kept channels, so no extra projection has to be trained.

A teacher without a masked-LM head (`minilm` is a sentence-embedding
checkpoint: encoder only) cannot give soft targets over the vocabulary; the
agnostic route then drops the KL term (recorded in ndogo.json) and trains the
student with its own MLM loss, its head starting from a fresh initialisation,
and the hidden-state cosine to the teacher.

The student is a plain Hugging Face model (kind `hf`); its ndogo.json records
the teacher, both parameter counts and sizes, the student's shape, the route,
loss weights, data and seed, so a report can set it against its teacher.
"""

from __future__ import annotations

import copy
import json
import re
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from transformers import AutoModelForMaskedLM, PreTrainedModel

from ndogo.compress.distill import DISTILL, DistillConfig
from ndogo.device import resolve_device, to_device
from ndogo.models.loading import (
    ModelError,
    load_saved,
    load_tokenizer,
    model_labels,
    model_window,
    read_meta,
    resolve_model,
    write_meta,
)
from ndogo.models.runner import count_params, size_on_disk
from ndogo.models.windowing import IGNORE

# ---------------------------------------------------------------- student initialisation


def default_layer_map(teacher_layers: int, student_layers: int) -> list[int]:
    """Every other layer, generalised: student layer i starts as teacher layer ⌊i·N/K⌋ (6→3: 0, 2, 4; 6→2: 0, 3)."""
    if not 1 <= student_layers <= teacher_layers:
        raise ValueError(f"a student of {student_layers} layers from a {teacher_layers}-layer teacher: "
                         f"choose 1 to {teacher_layers}")
    return [i * teacher_layers // student_layers for i in range(student_layers)]


def check_layer_map(layer_map: list[int], teacher_layers: int) -> list[int]:
    """A valid map: teacher layers in increasing order, each in range."""
    if not layer_map:
        raise ValueError("the layer map is empty")
    if any(not 0 <= i < teacher_layers for i in layer_map) or sorted(set(layer_map)) != list(layer_map):
        raise ValueError(f"layer map {layer_map}: need increasing, distinct teacher layers in 0..{teacher_layers - 1}")
    return list(layer_map)


@dataclass
class Importance:
    """Mean |activation| of each residual channel, each head (per layer) and each FFN neuron (per layer)."""

    channels: torch.Tensor  # (hidden,)
    heads: torch.Tensor  # (layers, heads)
    neurons: torch.Tensor  # (layers, intermediate)


def _layers(model: nn.Module) -> list[nn.Module]:
    layers = getattr(getattr(getattr(model, "base_model", model), "encoder", None), "layer", None)
    if layers is None or not len(layers) or not hasattr(layers[0], "attention") \
            or not hasattr(layers[0], "intermediate"):
        raise ModelError(f"{type(model).__name__}: distillation needs a BERT-style encoder "
                         "(bert, roberta, xlm-roberta: base_model.encoder.layer[i] with attention and intermediate)")
    return list(layers)


def activation_importance(model: nn.Module, batches: list[dict[str, torch.Tensor]]) -> Importance:
    """Minitron's width importance: mean |activation| over real tokens, gathered with forward hooks.

    Channels: LayerNorm outputs (the residual stream) of the embeddings and every
    layer, summed; heads: each head's slice of the attention context; neurons:
    the FFN's activations after the non-linearity.
    """
    layers = _layers(model)
    cfg = model.config
    n_heads, head_dim = cfg.num_attention_heads, cfg.hidden_size // cfg.num_attention_heads
    device = next(model.parameters()).device  # summed where the activations are, read back once at the end
    channels = torch.zeros(cfg.hidden_size, device=device)
    heads = torch.zeros(len(layers), n_heads, device=device)
    neurons = torch.zeros(len(layers), cfg.intermediate_size, device=device)
    keep: dict[str, torch.Tensor] = {}

    def tokens(x: torch.Tensor) -> torch.Tensor:  # (real tokens, features), padding left out
        return x.detach().float()[keep["mask"]].abs()

    def on_norm(_m: nn.Module, _i: Any, out: torch.Tensor) -> None:
        channels.add_(tokens(out).mean(0))

    def on_heads(li: int):
        def hook(_m: nn.Module, _i: Any, out: Any) -> None:
            ctx = out[0] if isinstance(out, tuple) else out
            heads[li].add_(tokens(ctx).view(-1, n_heads, head_dim).sum(-1).mean(0))
        return hook

    def on_neurons(li: int):
        def hook(_m: nn.Module, _i: Any, out: torch.Tensor) -> None:
            neurons[li].add_(tokens(out).mean(0))
        return hook

    base = model.base_model
    handles = [base.embeddings.LayerNorm.register_forward_hook(on_norm)]
    for li, layer in enumerate(layers):
        handles += [layer.attention.output.LayerNorm.register_forward_hook(on_norm),
                    layer.output.LayerNorm.register_forward_hook(on_norm),
                    layer.attention.self.register_forward_hook(on_heads(li)),
                    layer.intermediate.register_forward_hook(on_neurons(li))]
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            for batch in batches:
                batch = to_device(batch, device)
                keep["mask"] = batch["attention_mask"].bool()
                base(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"])
    finally:
        for h in handles:
            h.remove()
        model.train(was_training)
    return Importance(channels.cpu(), heads.cpu(), neurons.cpu())


@dataclass
class Shape:
    """What the student keeps of the teacher: layers, and (when narrower) channels, heads and neurons."""

    layer_map: list[int]
    channels: list[int] | None = None  # kept residual channels (None: all)
    heads: list[list[int]] | None = None  # per student layer, kept heads
    neurons: list[list[int]] | None = None  # per student layer, kept FFN neurons

    def describe(self, config: Any) -> dict[str, Any]:
        return {"layers": len(self.layer_map), "layer_map": self.layer_map, "hidden": config.hidden_size,
                "heads": config.num_attention_heads, "intermediate": config.intermediate_size}


def plan_shape(teacher: nn.Module, layer_map: list[int], hidden: int | None,
               importance: Importance | None) -> Shape:
    """Choose the kept layers and, for a narrower student, the most important channels, heads and neurons."""
    cfg = teacher.config
    layer_map = check_layer_map(layer_map, cfg.num_hidden_layers)
    if hidden is None or hidden == cfg.hidden_size:
        return Shape(layer_map)
    head_dim = cfg.hidden_size // cfg.num_attention_heads
    if not 0 < hidden < cfg.hidden_size or hidden % head_dim:
        raise ValueError(f"student hidden size {hidden}: must be below the teacher's {cfg.hidden_size} and a "
                         f"multiple of its head size {head_dim} (heads are kept whole)")
    if importance is None:
        raise ValueError("a narrower student needs activation importance (a few batches of data)")
    n_heads = hidden // head_dim
    n_neurons = round(cfg.intermediate_size * hidden / cfg.hidden_size)

    def top(scores: torch.Tensor, k: int) -> list[int]:
        return sorted(torch.topk(scores, k).indices.tolist())

    return Shape(layer_map, top(importance.channels, hidden),
                 [top(importance.heads[t], n_heads) for t in layer_map],
                 [top(importance.neurons[t], n_neurons) for t in layer_map])


_LAYER = re.compile(r"(.*\.encoder\.layer\.)(\d+)(\..*)")
_QKV = re.compile(r"attention\.self\.(query|key|value)\.(weight|bias)$")
_FFN_OUT = re.compile(r"\.\d+\.output\.dense\.weight$")  # a layer's FFN output, not attention.output


def student_config(teacher: PreTrainedModel, shape: Shape) -> Any:
    """The teacher's config with the student's depth and (when narrower) width."""
    config = copy.deepcopy(teacher.config)
    config.num_hidden_layers = len(shape.layer_map)
    if shape.channels is not None:
        config.hidden_size = len(shape.channels)
        config.num_attention_heads = len(shape.heads[0])
        config.intermediate_size = len(shape.neurons[0])
    return config


def make_student(teacher: PreTrainedModel, shape: Shape) -> PreTrainedModel:
    """A student of the teacher's class, every weight copied (or sliced) from the teacher.

    Weights are mapped by name: `…encoder.layer.i.…` comes from teacher layer
    `layer_map[i]`; everything else (embeddings, pooler, task or LM head) from
    the same name. For a narrower student, each axis is indexed by what it
    spans: query/key/value rows and the attention output's columns span heads,
    the FFN's inner axis spans neurons, and every other hidden-sized axis spans
    residual channels.
    """
    _layers(teacher)
    config = student_config(teacher, shape)
    student = type(teacher)(config)
    source = teacher.state_dict()
    hidden = teacher.config.hidden_size
    head_dim = hidden // teacher.config.num_attention_heads
    weights = {}
    for name, target in student.state_dict().items():
        match = _LAYER.match(name)
        i = int(match.group(2)) if match else None
        teacher_name = f"{match.group(1)}{shape.layer_map[i]}{match.group(3)}" if match else name
        if teacher_name not in source:
            raise ModelError(f"{type(teacher).__name__}: the student's {name} has no counterpart in the teacher")
        value = source[teacher_name]
        if shape.channels is not None:
            value = _slice(name, value, shape, i, hidden, head_dim)
        if value.shape != target.shape:
            raise ModelError(f"{name}: teacher gives {tuple(value.shape)}, student needs {tuple(target.shape)}")
        weights[name] = value.clone()
    student.load_state_dict(weights, strict=True)
    if getattr(config, "tie_word_embeddings", False):
        student.tie_weights()
    return student.train(teacher.training)


def _slice(name: str, value: torch.Tensor, shape: Shape, layer: int | None, hidden: int,
           head_dim: int) -> torch.Tensor:
    """Index each axis of a teacher tensor by what it spans (see `make_student`)."""
    if not value.is_floating_point():
        return value  # id buffers (position / token type ids), not weights
    # An embedding table's rows are ids or positions, whatever their number; only its columns are channels.
    dims = [1] if name.endswith("_embeddings.weight") else range(value.dim())
    for dim in dims:
        index = None
        spans_heads = (dim == 0 and _QKV.search(name)) or (dim == 1 and name.endswith("attention.output.dense.weight"))
        spans_neurons = (dim == 0 and name.endswith(("intermediate.dense.weight", "intermediate.dense.bias"))) or (
            dim == 1 and layer is not None and _FFN_OUT.search(name))
        if spans_heads:
            index = [h * head_dim + j for h in shape.heads[layer] for j in range(head_dim)]
        elif spans_neurons:
            index = shape.neurons[layer]
        elif value.shape[dim] == hidden:
            index = shape.channels
        if index is not None:
            value = value.index_select(dim, torch.tensor(index, dtype=torch.long, device=value.device))
    return value


# ---------------------------------------------------------------- losses


def soft_target_loss(student_logits: torch.Tensor, teacher_logits: torch.Tensor, temperature: float) -> torch.Tensor:
    """KL(teacher ‖ student) at temperature T, × T² so its gradients keep their scale (Hinton et al., 2015)."""
    t = temperature
    return nn.functional.kl_div(
        nn.functional.log_softmax(student_logits.float() / t, dim=-1),
        nn.functional.log_softmax(teacher_logits.float() / t, dim=-1),
        reduction="batchmean", log_target=True,
    ) * t * t


def cosine_loss(student_hidden: torch.Tensor, teacher_hidden: torch.Tensor, mask: torch.Tensor,
                channels: list[int] | None) -> torch.Tensor:
    """1 − mean cosine between student and teacher hidden states at real tokens (on the kept channels)."""
    teacher_hidden = teacher_hidden if channels is None else teacher_hidden[..., channels]
    s, t = student_hidden[mask].float(), teacher_hidden[mask].float()
    return 1 - nn.functional.cosine_similarity(s, t, dim=-1).mean()


def hidden_state_loss(student_hidden: Sequence[torch.Tensor], teacher_hidden: Sequence[torch.Tensor],
                      layer_map: Sequence[int], mask: torch.Tensor, channels: list[int] | None) -> torch.Tensor:
    """Mean squared error between each student layer's output and its mapped teacher layer's (TinyBERT's hidden loss).

    hidden_states[0] is the embedding output, so student layer i is hidden_states[i + 1] and
    its teacher layer is hidden_states[layer_map[i] + 1]. TinyBERT learns a projection where the
    widths differ; a narrower student here is a *slice* of its teacher (its channels are the
    teacher's kept channels), so the teacher's states are read on those channels and no
    projection has to be learned, or saved with the student.
    """
    losses = []
    for i, t_layer in enumerate(layer_map):
        t = teacher_hidden[t_layer + 1]
        t = t if channels is None else t[..., channels]
        losses.append(nn.functional.mse_loss(student_hidden[i + 1][mask].float(), t[mask].float()))
    return torch.stack(losses).mean()


def attention_loss(student_attn: Sequence[torch.Tensor], teacher_attn: Sequence[torch.Tensor],
                   layer_map: Sequence[int], mask: torch.Tensor) -> torch.Tensor:
    """KL(teacher ‖ student) between the attention distributions of mapped layers, averaged over heads.

    Averaging over heads first compares what a layer attends to even when a narrower student
    has fewer heads than its teacher (MiniLM's relation losses face the same mismatch); at
    equal head counts it is TinyBERT's attention loss up to the order of the mean.
    """
    losses = []
    for i, t_layer in enumerate(layer_map):
        s = student_attn[i].float().mean(1).clamp_min(1e-9)  # (batch, query, key)
        t = teacher_attn[t_layer].float().mean(1).clamp_min(1e-9)
        kl = (t * (t.log() - s.log())).sum(-1)  # (batch, query)
        losses.append(kl[mask].mean())
    return torch.stack(losses).mean()


def load_mlm_teacher(name: str) -> tuple[PreTrainedModel, bool]:
    """The teacher as a masked-LM, and whether its checkpoint held trained LM-head weights.

    An encoder-only checkpoint (like `minilm`) loads too, with a freshly
    initialised head; the missing head weights are how we tell.
    """
    try:
        model, info = AutoModelForMaskedLM.from_pretrained(resolve_model(name), use_safetensors=True,
                                                           trust_remote_code=False, output_loading_info=True)
    except (OSError, ValueError) as err:
        raise ModelError(f"{name}: could not load it as a masked-LM encoder ({err})") from None
    missing_head = [k for k in info["missing_keys"] if k.startswith(("cls.", "lm_head."))]
    return model, not missing_head


# ---------------------------------------------------------------- the stage


def distill(run: str | Path, out: str | Path, config: DistillConfig) -> Path:
    """Distil the teacher `run` into a smaller student saved in `out` (see the module docstring)."""
    out = Path(out)
    if Path(run).resolve() == out.resolve():
        raise ValueError(f"{out}: the student cannot be written over its teacher")
    if config.threads:
        torch.set_num_threads(config.threads)
    # Seeded before the teacher loads: a head missing from its checkpoint is initialised then, and copied.
    torch.manual_seed(config.seed)
    DISTILL.of(config).handler(str(run), out, config)  # the route's handler: task.py or agnostic.py
    return out


def _layer_map(teacher: PreTrainedModel, config: DistillConfig) -> list[int]:
    n = teacher.config.num_hidden_layers
    if config.layer_map:
        if config.student_layers and config.student_layers != len(config.layer_map):
            raise ValueError(f"--student-layers {config.student_layers} but the layer map {config.layer_map} "
                             f"has {len(config.layer_map)} layers")
        return check_layer_map(config.layer_map, n)
    if not config.student_layers:
        raise ValueError("give --student-layers K or --layer-map")
    return default_layer_map(n, config.student_layers)


def _record(teacher_name: str, teacher: PreTrainedModel, student: PreTrainedModel, shape: Shape,
            config: DistillConfig, data: dict[str, Any], losses: dict[str, Any]) -> dict[str, Any]:
    """What ndogo.json says about a student: teacher, shapes and sizes, route, losses, data, seed.

    Only what is fixed before training, so it can sit in a resumable run's configuration.
    """
    teacher_params, _ = count_params(teacher)
    student_params, _ = count_params(student)
    teacher_path = resolve_model(teacher_name)
    return {
        "stage": "distill", "route": config.mode, "teacher": teacher_name, "teacher_path": teacher_path,
        "teacher_params": teacher_params, "teacher_size_bytes": size_on_disk(teacher_path),
        "teacher_shape": {"layers": teacher.config.num_hidden_layers, "hidden": teacher.config.hidden_size,
                          "heads": teacher.config.num_attention_heads,
                          "intermediate": teacher.config.intermediate_size},
        "student_shape": shape.describe(student.config), "student_params": student_params,
        "param_reduction": round(1 - student_params / teacher_params, 4),
        "width_init": None if shape.channels is None else "slice by mean |activation| (Minitron)",
        "losses": losses, "data": data, "seed": config.seed,
    }


def _distill_agnostic(teacher_name: str, out: Path, config: DistillConfig) -> None:
    from ndogo.data.leakage import drop_eval_text
    from ndogo.train.mlm import (
        Masker,
        MLMConfig,
        PackedCorpus,
        masked_logits,
        read_texts,
        train_mlm,
    )

    tokenizer = load_tokenizer(teacher_name)
    teacher, with_head = load_mlm_teacher(teacher_name)
    teacher.eval().requires_grad_(False).to(resolve_device(config.device))  # the student follows in train_mlm
    soft_weight = config.soft_weight if with_head else 0.0
    texts = read_texts(config.corpus)
    dropped: dict[str, int] = {}
    if config.exclude_eval:
        texts, dropped = drop_eval_text(texts, config.exclude_eval)
    seq_len = min(config.seq_len, teacher.config.max_position_embeddings
                  - (teacher.config.pad_token_id + 1 if teacher.config.model_type in ("roberta", "xlm-roberta") else 0))
    corpus = PackedCorpus.build(tokenizer, texts, seq_len, config.alpha, seed=config.seed,
                                show_progress=config.show_progress)
    layer_map = _layer_map(teacher, config)
    importance = None
    if config.student_hidden:
        masker = Masker(tokenizer, 0.15)
        sample = corpus.held_out[:64] if len(corpus.held_out) else next(iter(corpus.blocks.values()))[:64]
        importance = activation_importance(teacher, [masker(sample[k : k + 16], config.seed + k)
                                                     for k in range(0, len(sample), 16)])
    shape = plan_shape(teacher, layer_map, config.student_hidden, importance)
    student = make_student(teacher, shape)
    losses = {"soft_weight": soft_weight, "hard_weight": config.hard_weight, "cos_weight": config.cos_weight,
              "temperature": config.temperature,
              "soft_targets": "teacher MLM distribution at masked positions" if with_head else
              "none: the teacher checkpoint has no masked-LM head, so the student learns from its own MLM "
              "loss and the hidden-state cosine only"}
    data = {"corpus": str(config.corpus), "seq_len": seq_len, "exclude_eval": config.exclude_eval,
            "eval_lines_dropped": dropped, **corpus.describe()}
    record = _record(teacher_name, teacher, student, shape, config, data, losses)
    channels = shape.channels

    def objective(batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, dict[str, float]]:
        s_logits, s_enc = masked_logits(student, batch)
        labels = batch["labels"][batch["labels"] != IGNORE]
        with torch.no_grad():
            if soft_weight:
                t_logits, t_enc = masked_logits(teacher, batch)
            else:  # no head to ask: the encoder's hidden states are all the teacher gives
                t_enc = teacher.base_model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"])
        parts = {"mlm": nn.functional.cross_entropy(s_logits.float(), labels)}
        if soft_weight:
            parts["soft"] = soft_target_loss(s_logits, t_logits, config.temperature)
        if config.cos_weight:
            parts["cos"] = cosine_loss(s_enc.last_hidden_state, t_enc.last_hidden_state,
                                       batch["attention_mask"].bool(), channels)
        weights = {"mlm": config.hard_weight, "soft": soft_weight, "cos": config.cos_weight}
        loss = sum(weights[k] * v for k, v in parts.items())
        return loss, {k: v.item() for k, v in parts.items()}

    steps = config.max_steps or 2000
    mlm_cfg = MLMConfig(out=str(out), max_steps=steps, batch_size=config.batch_size, grad_accum=config.grad_accum,
                        lr=config.lr, seed=config.seed, save_every=config.save_every, eval_every=config.save_every,
                        log_every=max(1, min(50, steps // 20)), precision=config.precision, threads=config.threads,
                        device=config.device)
    run = train_mlm(mlm_cfg, student, objective, corpus, tokenizer, {"distill": record},
                    show_progress=config.show_progress)
    student.save_pretrained(out, safe_serialization=True)
    tokenizer.save_pretrained(out)
    metrics = run.metrics(mlm_cfg)
    write_meta(out, {"kind": "hf", **record, "size_bytes": size_on_disk(out), "max_length": seq_len,
                     "final_losses": metrics["history"][-1] if metrics["history"] else {},
                     "final_eval": metrics["evals"][-1] if metrics["evals"] else {}})
    (out / "metrics.json").write_text(json.dumps({**metrics, "distill": record}, indent=2) + "\n")


class TeacherCache:
    """The teacher's label logits per window, computed once and reused every epoch.

    The teacher is frozen and in eval mode, so its output for a window never
    changes; caching it removes the teacher's forward pass (about 40% of a
    6→3 step) from every epoch after the first. Each window is run alone,
    unpadded, so its logits do not depend on which batch it first came in and
    a resumed run sees exactly the numbers an uninterrupted one did.
    """

    def __init__(self, teacher: nn.Module) -> None:
        self.teacher = teacher
        self.logits: dict[bytes, torch.Tensor] = {}

    def __call__(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        """Logits (batch, width, labels) for a padded batch; zeros at padding."""
        lengths = attention_mask.sum(1).tolist()
        rows = []
        for ids, n in zip(input_ids, lengths, strict=True):
            key = ids[:n].cpu().numpy().tobytes()
            if key not in self.logits:
                with torch.no_grad():
                    self.logits[key] = self.teacher(input_ids=ids[None, :n]).logits[0].float()
            rows.append(self.logits[key])
        if rows and rows[0].dim() == 1:  # a text classifier: one row of label logits per text
            return torch.stack(rows)
        return nn.utils.rnn.pad_sequence(rows, batch_first=True, padding_value=0.0)[:, : input_ids.shape[1]]


def _distill_task(teacher_name: str, out: Path, config: DistillConfig) -> None:
    from ndogo.models.windowing import length_batches
    from ndogo.tasks import task_of_model
    from ndogo.train.finetune import FinetuneConfig, finetune, load_languages

    device = resolve_device(config.device)  # the teacher here; the student where `finetune` puts it, the same
    teacher = load_saved(teacher_name).eval().requires_grad_(False).to(device)
    labels = model_labels(teacher)
    task = task_of_model(read_meta(resolve_model(teacher_name)))
    corpora = load_languages(config.data, config.langs, task)
    if task.labels(corpora) != labels:
        raise ValueError(f"{teacher_name}: its labels {labels} are not those of {config.langs} "
                         f"({task.labels(corpora)}); task distillation needs the teacher fine-tuned on this data")
    layer_map = _layer_map(teacher, config)
    tokenizer = load_tokenizer(teacher_name)
    max_length = int(read_meta(resolve_model(teacher_name)).get("max_length") or 0) or \
        model_window(tokenizer, teacher.config)
    importance = None
    if config.student_hidden:
        train = [s for c in corpora for s in c.require("train", "distillation")][:256]
        windows = task.encode(tokenizer, train, max_length)
        pad = tokenizer.pad_token_id or 0
        batches = [task.collate([windows[i] for i in idx], pad, with_labels=False)
                   for idx in length_batches(windows, 16, shuffle=False)]
        importance = activation_importance(teacher, batches)
    shape = plan_shape(teacher, layer_map, config.student_hidden, importance)
    probe = make_student(teacher, shape)
    losses = {"soft_weight": config.soft_weight, "hard_weight": config.hard_weight,
              "cos_weight": config.cos_weight, "hidden_weight": config.hidden_weight,
              "attention_weight": config.attention_weight, "temperature": config.temperature,
              "soft_targets": "teacher label distribution at each word's first sub-word",
              "layer_map": shape.layer_map}
    want_attn = bool(config.attention_weight)
    if want_attn:  # attention probabilities are only returned by the eager implementation
        teacher.set_attn_implementation("eager")
    data: dict[str, Any] = {"data": config.data, "langs": config.langs}
    extra_train = []
    if config.unlabeled:
        extra_train, data["unlabeled"] = _teacher_labelled(teacher_name, out, config, corpora, task)
    record = _record(teacher_name, teacher, probe, shape, config, data, losses)
    del probe
    recent: dict[str, list[float]] = {}
    teacher_logits = TeacherCache(teacher)

    def loss_fn(model: nn.Module, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        inputs = {"input_ids": batch["input_ids"], "attention_mask": batch["attention_mask"]}
        want_hidden = bool(config.cos_weight or config.hidden_weight)
        if want_attn and model.config._attn_implementation != "eager":
            model.set_attn_implementation("eager")
        s_out = model(**inputs, output_hidden_states=want_hidden, output_attentions=want_attn)
        sel = batch["labels"] != IGNORE
        mask = batch["attention_mask"].bool()
        if want_hidden or want_attn:  # hidden states are too large to cache: run the teacher on the batch
            with torch.no_grad():
                t_out = teacher(**inputs, output_hidden_states=want_hidden, output_attentions=want_attn)
            t_logits = t_out.logits
        else:
            t_logits = teacher_logits(batch["input_ids"], batch["attention_mask"])
        parts = {"hard": nn.functional.cross_entropy(s_out.logits[sel].float(), batch["labels"][sel]),
                 "soft": soft_target_loss(s_out.logits[sel], t_logits[sel], config.temperature)}
        if config.cos_weight:
            parts["cos"] = cosine_loss(s_out.hidden_states[-1], t_out.hidden_states[-1], mask, shape.channels)
        if config.hidden_weight:
            parts["hidden"] = hidden_state_loss(s_out.hidden_states, t_out.hidden_states, shape.layer_map, mask,
                                                shape.channels)
        if want_attn:
            parts["attention"] = attention_loss(s_out.attentions, t_out.attentions, shape.layer_map, mask)
        weights = {"hard": config.hard_weight, "soft": config.soft_weight, "cos": config.cos_weight,
                   "hidden": config.hidden_weight, "attention": config.attention_weight}
        for k, v in parts.items():
            recent.setdefault(k, []).append(v.item())
            recent[k] = recent[k][-100:]
        return sum(weights[k] * v for k, v in parts.items())

    ft = FinetuneConfig(model=teacher_name, data=config.data, langs=config.langs, out=str(out),
                        epochs=config.epochs, max_steps=config.max_steps, lr=config.lr, patience=config.patience,
                        schedule=config.schedule,
                        batch_size=config.batch_size, max_length=max_length, seed=config.seed,
                        save_every=config.save_every, threads=config.threads, extra=record, device=config.device,
                        # task students train in fp32 unless asked: "auto" keeps the landed students' numbers
                        precision="fp32" if config.precision == "auto" else config.precision)
    metrics = finetune(ft, model_transform=lambda model: make_student(model, shape), loss_fn=loss_fn,
                       show_progress=config.show_progress, extra_train=extra_train)
    final = {k: round(float(np.mean(v)), 5) for k, v in recent.items()}
    meta = read_meta(out)
    meta.update({"stage": "distill", "size_bytes": size_on_disk(out), "final_losses": final,
                 "best_dev": metrics["best_dev"], f"best_dev_{metrics['metric']}": metrics["best_dev"]})
    write_meta(out, meta)
    metrics["distill"] = {**record, "final_losses": final}
    (out / "metrics.json").write_text(json.dumps(metrics, indent=2) + "\n")


def _teacher_labelled(teacher_name: str, out: Path, config: DistillConfig,
                      corpora: list[Any], task: Any) -> tuple[list[Any], dict[str, Any]]:
    """The teacher's labels on `config.unlabeled`, leakage-filtered per language, and what was read."""
    from ndogo.compress.augment import CACHE, read_unlabeled, teacher_label
    from ndogo.data.leakage import EVAL_SPLITS, corpora_beside, eval_sentences
    from ndogo.models.runner import load_runner

    sentences: list[list[str]] = []
    read: dict[str, Any] = {}
    for corpus in corpora:
        held_out = [list(s.tokens) for split in EVAL_SPLITS for s in corpus.splits.get(split, [])]
        # every task's dev and test sentences in the corpora beside --data (MasakhaNER, MasakhaPOS, SIB-200,
        # AfriSenti in ../shared/data), and in any --exclude-eval folder
        held_out += eval_sentences([*corpora_beside(config.data or ""), *config.exclude_eval], corpus.lang)
        limit = None if config.unlabeled_limit is None else max(config.unlabeled_limit // len(corpora), 1)
        found, read[corpus.lang] = read_unlabeled(config.unlabeled, corpus.lang, held_out, limit)
        for folder in read[corpus.lang].get("missing", []):
            # said, and recorded in the model's ndogo.json (data.unlabeled.<lang>.missing), never silently skipped
            sys.stderr.write(f"note: {folder} has no raw text for {corpus.lang!r}: the student learns from "
                             "the training set and the other sources alone\n")
        sentences += found
    out.mkdir(parents=True, exist_ok=True)
    from ndogo.models.runner import on_device

    teacher = on_device(load_runner(teacher_name), resolve_device(config.device), fall_back=True)
    labelled = teacher_label(teacher, sentences, out / CACHE, show_progress=config.show_progress, task=task)
    counts = {"teacher_entities": sum(t.startswith("B-") for s in labelled for t in s.tags)} \
        if task.output == "entities" else {}
    return labelled, {**read, **counts, "sentences": len(labelled)}


def teacher_record(run: str | Path) -> dict[str, Any] | None:
    """The distillation record behind a model: its own, or (after `ndogo finetune --model STUDENT`) its base's.

    An agnostic student is fine-tuned afterwards by the ordinary fine-tuning
    command, whose ndogo.json names the student as `base_model_path`; following
    that link finds the teacher to compare with.
    """
    seen = set()
    path = Path(run)
    while path.is_dir() and path.resolve() not in seen:
        seen.add(path.resolve())
        meta = read_meta(path)
        if meta.get("stage") == "distill":
            return {k: meta[k] for k in ("teacher", "teacher_path", "teacher_params", "teacher_size_bytes",
                                         "route", "student_shape", "student_params", "param_reduction")
                    if k in meta}
        base = meta.get("base_model_path")
        if not base:
            return None
        path = Path(base)
    return None
