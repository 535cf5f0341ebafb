"""One masked-language-model training loop, shared by pretraining and task-agnostic distillation.

Both jobs are "predict the masked sub-words of packed raw text"; they differ
only in the loss (plain cross-entropy, or cross-entropy plus soft targets and
hidden-state cosine from a teacher). So the loop takes an *objective*, a
function from a masked batch to (loss, named loss parts), and owns everything
else: data, masking, optimizer, precision, checkpoints, progress.

What makes it affordable on a 2-core CPU:
- Sequence packing: sentences are concatenated (a separator between them) and
  cut into fixed-length blocks, as Hugging Face's `run_mlm.py` `group_texts`
  does, so no step computes on padding.
- The LM head (a vocabulary-sized matrix, the most expensive layer of a small
  model) runs only on the ~15% masked positions: hidden states are gathered
  before the head (`masked_logits`), not logits after it.
- bf16 autocast where the CPU has native bf16 (AVX512-BF16 / AMX); measured
  about 20% faster per step than fp32 on this project's EPYC for a 4-layer model.
- Gradient accumulation, so a large effective batch fits in memory.

Languages are sampled per example with AfriBERTa's / XLM-R's exponential
smoothing, p_i ∝ q_i^alpha (q_i: language i's share of the tokens), which
up-samples small languages (fairseq's `--multilang-sampling-alpha`).

Exact resume: everything random about step s (which language and block each
example takes, which tokens are masked) comes from a generator seeded by
(seed, s, micro-batch); blocks within a language are visited in a per-pass
permutation seeded by (seed, language, pass), so the data position is just
how many blocks each language has given out. A checkpoint holds that, the
trained modules, optimizer, scheduler and torch's RNG (dropout), and a resumed
run reaches bitwise the same weights as an uninterrupted one.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import platform
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from tqdm.auto import tqdm
from transformers import DataCollatorForLanguageModeling, PreTrainedTokenizerBase, get_linear_schedule_with_warmup

from ndogo.data.conll import decode
from ndogo.device import autocast as device_autocast
from ndogo.device import check_precision, grad_scaler, resolve_device, to_device
from ndogo.models.loading import ModelError
from ndogo.models.windowing import IGNORE
from ndogo.train.checkpoint import has_checkpoint, load_checkpoint, refuse_pickle
from ndogo.train.checkpoint import save_checkpoint as write_checkpoint
from ndogo.train.optim import adamw

CHECKPOINT = "checkpoint"

Batch = dict[str, torch.Tensor]
# A masked batch (input_ids, attention_mask, labels = IGNORE except at masked positions)
# -> (loss to minimise, its named parts as floats for the log).
Objective = Callable[[Batch], tuple[torch.Tensor, dict[str, float]]]


@dataclass
class MLMConfig:
    """Everything that decides an MLM run's optimisation (saved in its checkpoint and metrics)."""

    out: str
    max_steps: int
    batch_size: int = 32  # blocks per optimizer step (split over grad_accum micro-batches)
    grad_accum: int = 1
    lr: float = 5e-4
    warmup_ratio: float = 0.06
    weight_decay: float = 0.01
    mask_prob: float = 0.15
    seed: int = 42
    save_every: int = 200
    log_every: int = 20
    eval_every: int = 200
    precision: str = "auto"  # auto (bf16 where the device has it natively), bf16, fp32, fp16 (CUDA)
    threads: int | None = None
    device: str = "auto"  # auto (CUDA when present), cpu, cuda[:N]; how the run executes, not in its identity

    def __post_init__(self) -> None:
        if self.max_steps < 1:
            raise ValueError(f"max_steps must be at least 1, got {self.max_steps}")
        if self.grad_accum < 1 or self.batch_size % self.grad_accum:
            raise ValueError(f"batch_size {self.batch_size} must be a multiple of grad_accum {self.grad_accum}")
        if not 0 < self.mask_prob < 1:
            raise ValueError(f"mask_prob must be between 0 and 1, got {self.mask_prob}")
        if self.precision not in ("auto", "bf16", "fp32", "fp16"):
            raise ValueError(f"precision must be auto, bf16, fp32 or fp16, got {self.precision!r}")


# ---------------------------------------------------------------- data


def sampling_probs(sizes: dict[str, int], alpha: float) -> dict[str, float]:
    """Exponentially smoothed language probabilities: p_i = q_i^alpha / Σ_j q_j^alpha, q_i = n_i / Σ n.

    alpha = 1 samples in proportion to size; alpha → 0 tends to uniform.
    """
    if not 0 < alpha <= 1:
        raise ValueError(f"alpha must be in (0, 1], got {alpha}")
    total = sum(sizes.values())
    if not sizes or total <= 0 or any(n < 0 for n in sizes.values()):
        raise ValueError(f"language sizes must be non-negative with a positive total, got {sizes}")
    smoothed = {lang: (n / total) ** alpha if n else 0.0 for lang, n in sizes.items()}
    norm = sum(smoothed.values())
    return {lang: s / norm for lang, s in smoothed.items()}


def read_texts(corpus: str | Path) -> dict[str, list[str]]:
    """Non-empty lines of each `<lang>.txt` in a folder: one file per language."""
    folder = Path(corpus).expanduser()
    if not folder.is_dir():
        raise FileNotFoundError(f"{folder}: no such corpus folder (expected one <lang>.txt per language)")
    files = sorted(folder.glob("*.txt"))
    if not files:
        raise ValueError(f"{folder}: no <lang>.txt files")
    texts = {}
    for f in files:
        raw = f.read_bytes()
        try:
            # Plain utf-8 as always (a BOM stays in the first line), so resumed runs read the same text.
            text = raw.decode("utf-8")
        except UnicodeDecodeError:
            decode(f)  # raises DataError naming the file and the line of the first bad byte
            raise
        lines = [line.strip() for line in text.splitlines() if line.strip()]
        if lines:
            texts[f.stem] = lines
    if not texts:
        raise ValueError(f"{folder}: every .txt file is empty")
    return texts


def pack(tokenizer: PreTrainedTokenizerBase, lines: list[str], seq_len: int) -> np.ndarray:
    """Token ids of `lines` packed into blocks of `seq_len`: <cls> ... </sep>, lines separated by </sep>.

    The stream is cut every seq_len - 2 tokens as in `run_mlm.py`'s `group_texts`
    (a line may run over into the next block); the last, partial block is padded.
    """
    cls_id, sep_id, pad_id = tokenizer.cls_token_id, tokenizer.sep_token_id, tokenizer.pad_token_id
    if None in (cls_id, sep_id, pad_id, tokenizer.mask_token_id):
        raise ModelError(f"{type(tokenizer).__name__}: MLM needs cls, sep, pad and mask tokens")
    if seq_len < 8:
        raise ValueError(f"seq_len {seq_len} is too short for masked-language modelling")
    stream: list[int] = []
    for ids in tokenizer(lines, add_special_tokens=False, verbose=False)["input_ids"]:
        stream.extend(ids)
        stream.append(sep_id)
    body = seq_len - 2
    n_blocks = math.ceil(len(stream) / body)
    blocks = np.full((n_blocks, seq_len), pad_id, dtype=np.int32)
    for b in range(n_blocks):
        chunk = stream[b * body : (b + 1) * body]
        blocks[b, 0] = cls_id
        blocks[b, 1 : 1 + len(chunk)] = chunk
        blocks[b, 1 + len(chunk)] = sep_id
    return blocks


@dataclass
class PackedCorpus:
    """Packed blocks per language, held-out blocks for an evaluation loss, and sampling probabilities."""

    blocks: dict[str, np.ndarray]
    held_out: np.ndarray
    probs: dict[str, float]
    alpha: float

    @classmethod
    def build(cls, tokenizer: PreTrainedTokenizerBase, texts: dict[str, list[str]], seq_len: int,
              alpha: float = 0.3, held_out_blocks: int = 64, seed: int = 42,
              show_progress: bool = False) -> PackedCorpus:
        """Pack each language and set aside up to `held_out_blocks` (spread over languages) for evaluation.

        Each language gives its share of held-out blocks, chosen by a seeded
        permutation, but never more than 5% of its blocks (so a language with
        fewer than 20 blocks gives none).
        """
        blocks = {lang: pack(tokenizer, lines, seq_len)
                  for lang, lines in tqdm(texts.items(), desc="tokenize", unit="lang", disable=not show_progress)}
        total = sum(len(b) for b in blocks.values())
        rng = np.random.default_rng(seed)
        held, train = [], {}
        for lang, b in blocks.items():
            k = min(round(held_out_blocks * len(b) / total), len(b) // 20)
            order = rng.permutation(len(b))
            held.append(b[order[:k]])
            train[lang] = b[np.sort(order[k:])]
        held_out = np.concatenate(held) if held else np.zeros((0, seq_len), dtype=np.int32)
        sizes = {lang: int(np.count_nonzero(b != tokenizer.pad_token_id)) for lang, b in train.items()}
        return cls(train, held_out, sampling_probs(sizes, alpha), alpha)

    def describe(self) -> dict[str, Any]:
        """Training blocks and sampling probability per language, for metrics.json."""
        return {"alpha": self.alpha, "held_out_blocks": len(self.held_out),
                "langs": {lang: {"blocks": len(b), "sampling_prob": round(self.probs[lang], 6)}
                          for lang, b in self.blocks.items()}}


class LanguageSampler:
    """Draws blocks: a language per example by `probs`, then that language's next block.

    Blocks of a language are visited in a permutation seeded by (seed, language,
    pass), so the only state is how many blocks each language has given out.
    """

    def __init__(self, corpus: PackedCorpus, seed: int) -> None:
        self.corpus = corpus
        self.seed = seed
        self.langs = list(corpus.blocks)
        self.p = np.array([corpus.probs[lang] for lang in self.langs])
        self.used = dict.fromkeys(self.langs, 0)
        self._perm: dict[str, tuple[int, np.ndarray]] = {}

    def _order(self, li: int, n_pass: int) -> np.ndarray:
        lang = self.langs[li]
        if self._perm.get(lang, (-1,))[0] != n_pass:
            rng = np.random.default_rng([self.seed, li, n_pass])
            self._perm[lang] = (n_pass, rng.permutation(len(self.corpus.blocks[lang])))
        return self._perm[lang][1]

    def draw(self, n: int, rng: np.random.Generator) -> np.ndarray:
        """`n` blocks, shape (n, seq_len)."""
        rows = []
        for li in rng.choice(len(self.langs), size=n, p=self.p):
            lang = self.langs[li]
            size = len(self.corpus.blocks[lang])
            n_pass, offset = divmod(self.used[lang], size)
            rows.append(self.corpus.blocks[lang][self._order(li, n_pass)[offset]])
            self.used[lang] += 1
        return np.stack(rows)

    def state_dict(self) -> dict[str, int]:
        return dict(self.used)

    def load_state_dict(self, state: dict[str, int]) -> None:
        if set(state) != set(self.langs):
            raise ValueError(f"checkpoint languages {sorted(state)} differ from the corpus's {sorted(self.langs)}")
        self.used = dict(state)


class Masker:
    """BERT/RoBERTa dynamic masking (15%; of those 80% <mask>, 10% random, 10% kept), seeded per call.

    The masking itself is transformers' `DataCollatorForLanguageModeling.torch_mask_tokens`;
    here it gets a fresh generator per micro-batch (so a batch is a function of
    its step) and a vectorised special-token mask (the collator's default asks
    the tokenizer row by row).
    """

    def __init__(self, tokenizer: PreTrainedTokenizerBase, mask_prob: float) -> None:
        self.collator = DataCollatorForLanguageModeling(tokenizer, mlm_probability=mask_prob)
        self.special = torch.tensor(sorted(set(tokenizer.all_special_ids)), dtype=torch.long)
        self.pad_id = tokenizer.pad_token_id

    def __call__(self, blocks: np.ndarray, seed: int) -> Batch:
        ids = torch.from_numpy(blocks.astype(np.int64))
        attention = (ids != self.pad_id).long()
        self.collator.generator = torch.Generator().manual_seed(seed)
        inputs, labels = self.collator.torch_mask_tokens(ids.clone(), torch.isin(ids, self.special))
        return {"input_ids": inputs, "attention_mask": attention, "labels": labels}


# ---------------------------------------------------------------- model pieces


def mlm_head(model: nn.Module) -> nn.Module:
    """The LM head of a masked-LM model (BERT's `cls`, RoBERTa/XLM-R's `lm_head`): hidden states -> vocab logits."""
    for name in ("lm_head", "cls"):
        head = getattr(model, name, None)
        if isinstance(head, nn.Module):
            return head
    raise ModelError(f"{type(model).__name__}: no masked-LM head (expected `lm_head` or `cls`); "
                     "load it with AutoModelForMaskedLM")


def masked_logits(model: nn.Module, batch: Batch, hidden_states: bool = False) -> tuple[torch.Tensor, Any]:
    """Vocabulary logits at the masked positions only, shape (n_masked, vocab), and the encoder's outputs.

    The encoder runs on the whole block; the head runs on the gathered masked
    hidden states, so its cost is ~15% of a full-sequence head.
    """
    enc = model.base_model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"],
                           output_hidden_states=hidden_states)
    selected = enc.last_hidden_state[batch["labels"] != IGNORE]
    return mlm_head(model)(selected), enc


def mlm_objective(model: nn.Module) -> Objective:
    """Plain masked-LM cross-entropy at the masked positions (pretraining)."""

    def objective(batch: Batch) -> tuple[torch.Tensor, dict[str, float]]:
        logits, _ = masked_logits(model, batch)
        loss = nn.functional.cross_entropy(logits.float(), batch["labels"][batch["labels"] != IGNORE])
        return loss, {"mlm": loss.item()}

    return objective


def resolve_precision(requested: str, device: torch.device | None = None) -> str:
    """`bf16`, `fp16` or `fp32`: auto picks bf16 only where the device computes it natively.

    Without native bf16 (a CPU without AVX512-BF16/AMX) autocast emulates it and is
    slower than fp32, so auto falls back to fp32 there; on CUDA, auto is bf16 where
    the GPU has it (Ampere and later). fp16 is CUDA's alone.
    """
    if requested == "fp32":
        return "fp32"
    if device is not None and device.type == "cuda":
        if requested == "auto":
            return "bf16" if torch.cuda.is_bf16_supported() else "fp32"
        check_precision(requested, device)
        return requested
    if device is not None:
        check_precision("fp32" if requested == "auto" else requested, device)  # fp16 on a CPU: refused
    native = torch.backends.cpu.get_cpu_capability() in ("AVX512", "AMX") and _mkldnn_bf16()
    if native:
        try:
            layer = nn.Linear(8, 8)
            with torch.autocast("cpu", dtype=torch.bfloat16):
                layer(torch.ones(2, 8)).sum().backward()
        except RuntimeError:
            native = False
    if requested == "bf16" and not native:
        raise ValueError("this CPU has no native bf16 (AVX512-BF16 or AMX); use --precision fp32 or auto")
    return "bf16" if native else "fp32"


def _mkldnn_bf16() -> bool:
    # torch has no public query for native bf16 on CPU; this is the check its own test suite uses.
    try:
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):
        return False


def autocast(precision: str, device: torch.device | None = None) -> contextlib.AbstractContextManager:
    """bf16 (or, on CUDA, fp16) autocast on the run's device, or nothing."""
    return device_autocast(precision, device if device is not None else torch.device("cpu"))


# ---------------------------------------------------------------- the loop


@dataclass
class MLMRun:
    """What a finished (or resumed-and-finished) MLM run reports."""

    state: dict[str, Any]
    precision: str
    data: dict[str, Any] = field(default_factory=dict)

    def metrics(self, cfg: MLMConfig) -> dict[str, Any]:
        """metrics.json content: loss curve, held-out loss, speed, settings, machine."""
        s = self.state
        return {
            "steps": s["step"],
            "tokens": s["tokens"],
            "train_seconds": round(s["seconds"], 1),
            "tokens_per_s": round(s["tokens"] / s["seconds"], 1) if s["seconds"] else None,
            "final_train_loss": s["history"][-1]["loss"] if s["history"] else None,
            "final_eval_loss": s["evals"][-1]["loss"] if s["evals"] else None,
            "history": s["history"],
            "evals": s["evals"],
            "precision": self.precision,
            "data": self.data,
            "config": asdict(cfg),
            "machine": {"cpu": platform.processor() or platform.machine(), "cores": os.cpu_count(),
                        "threads": torch.get_num_threads(), "torch": torch.__version__,
                        "cpu_capability": torch.backends.cpu.get_cpu_capability()},
        }


def _param_groups(module: nn.Module, weight_decay: float) -> list[dict[str, Any]]:
    """AdamW groups: no weight decay on biases and LayerNorm weights (as BERT)."""
    no_decay = ("bias", "LayerNorm.weight", "layer_norm.weight", "norm.weight")
    named = [(n, p) for n, p in module.named_parameters() if p.requires_grad]
    return [{"params": [p for n, p in named if not n.endswith(no_decay)], "weight_decay": weight_decay},
            {"params": [p for n, p in named if n.endswith(no_decay)], "weight_decay": 0.0}]


def _micro_batches(cfg: MLMConfig, sampler: LanguageSampler, masker: Masker, step: int) -> Iterator[Batch]:
    size = cfg.batch_size // cfg.grad_accum
    for micro in range(cfg.grad_accum):
        rng = np.random.default_rng([cfg.seed, step, micro])
        blocks = sampler.draw(size, rng)
        yield masker(blocks, int(rng.integers(2**62)))


def evaluate_loss(objective: Objective, module: nn.Module, masker: Masker, held_out: np.ndarray, seed: int,
                  precision: str, batch_size: int = 32) -> dict[str, float]:
    """Mean loss (and parts) on the held-out blocks, with the same masking every time (seeded)."""
    was_training = module.training
    module.eval()
    sums: dict[str, float] = {}
    n = 0
    device = next(module.parameters()).device
    with torch.no_grad(), autocast(precision, device):
        for k in range(0, len(held_out), batch_size):
            batch = to_device(masker(held_out[k : k + batch_size], seed + k), device)
            loss, parts = objective(batch)
            w = len(batch["input_ids"])
            for name, value in {"loss": loss.item(), **parts}.items():
                sums[name] = sums.get(name, 0.0) + value * w
            n += w
    module.train(was_training)
    return {name: round(v / n, 5) for name, v in sums.items()} if n else {}


def train_mlm(
    cfg: MLMConfig,
    module: nn.Module,
    objective: Objective,
    corpus: PackedCorpus,
    tokenizer: PreTrainedTokenizerBase,
    fingerprint: dict[str, Any] | None = None,
    show_progress: bool = True,
    step_hooks: list[Callable[[int], None]] | None = None,
) -> MLMRun:
    """Minimise `objective` over masked batches of `corpus` for `cfg.max_steps` optimizer steps.

    `module` holds every trained parameter (a model, or a model plus whatever
    the objective trains beside it); its state goes into checkpoints, and a
    frozen teacher belongs in the objective's closure, not here. The run
    resumes from `<out>/checkpoint` when one is there with the same `cfg` and
    `fingerprint` (what else decides the run: model shape, data, loss weights).
    `step_hooks` get the step number after each optimizer step (tests use it to
    interrupt a run). Saving the trained model is the caller's job.
    """
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    ckpt_dir = out / CHECKPOINT
    torch.manual_seed(cfg.seed)
    device = resolve_device(cfg.device)
    precision = resolve_precision(cfg.precision, device)
    # the device is how the run executes: a run started on a GPU may resume on a CPU
    config = {k: v for k, v in asdict(cfg).items() if k != "device"}
    identity = {"config": config, "fingerprint": fingerprint or {}, "precision": precision}
    module.to(device)  # before the optimizer is built, so its state is created beside the parameters
    scaler = grad_scaler(precision, device)

    sampler = LanguageSampler(corpus, cfg.seed)
    masker = Masker(tokenizer, cfg.mask_prob)
    optimizer = adamw(_param_groups(module, cfg.weight_decay), lr=cfg.lr)
    scheduler = get_linear_schedule_with_warmup(optimizer, int(cfg.warmup_ratio * cfg.max_steps), cfg.max_steps)
    # "window": loss parts since the last log line (kept in checkpoints so a resumed log matches).
    state: dict[str, Any] = {"step": 0, "tokens": 0, "seconds": 0.0, "history": [], "evals": [], "window": {}}

    refuse_pickle(ckpt_dir)
    if has_checkpoint(ckpt_dir):
        saved = load_checkpoint(ckpt_dir)
        if saved["identity"] != json.loads(json.dumps(identity)):
            raise ValueError(f"{ckpt_dir}: a checkpoint of a different run (settings, model or data) is there; "
                             "use another --out or delete it")
        module.load_state_dict(saved["module"])
        optimizer.load_state_dict(saved["optimizer"])
        scheduler.load_state_dict(saved["scheduler"])
        sampler.load_state_dict(saved["sampler"])
        torch.set_rng_state(saved["torch_rng"])
        state = saved["state"]
        if show_progress:
            tqdm.write(f"resuming {out} at step {state['step']}")

    def save_checkpoint() -> None:
        write_checkpoint(ckpt_dir, {"identity": json.loads(json.dumps(identity)), "module": module.state_dict(),
                                    "optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict(),
                                    "sampler": sampler.state_dict(), "torch_rng": torch.get_rng_state(),
                                    "state": state})

    def run_eval() -> None:
        if len(corpus.held_out):
            row = evaluate_loss(objective, module, masker, corpus.held_out, cfg.seed, precision)
            state["evals"].append({"step": state["step"], **row})
            tqdm.write(f"step {state['step']}: held-out " + ", ".join(f"{k} {v:.4f}" for k, v in row.items()))

    module.train()
    bar = tqdm(total=cfg.max_steps, initial=state["step"], desc=f"mlm {out.name}", unit="step",
               disable=not show_progress, dynamic_ncols=True)
    t0 = time.perf_counter()
    while state["step"] < cfg.max_steps:
        step_tokens = 0
        for batch in _micro_batches(cfg, sampler, masker, state["step"]):
            batch = to_device(batch, device)
            with autocast(precision, device):
                loss, parts = objective(batch)
            scaler.scale(loss / cfg.grad_accum).backward()
            step_tokens += int(batch["attention_mask"].sum())
            for name, value in {"loss": loss.item(), **parts}.items():
                state["window"].setdefault(name, []).append(value)
        scaler.unscale_(optimizer)  # clip the true gradients, not the scaled ones (fp16)
        torch.nn.utils.clip_grad_norm_(module.parameters(), 1.0)
        scaler.step(optimizer)
        scaler.update()
        scheduler.step()
        optimizer.zero_grad(set_to_none=True)
        state["step"] += 1
        state["tokens"] += step_tokens
        now = time.perf_counter()
        state["seconds"] += now - t0
        t0 = now
        for hook in step_hooks or []:
            hook(state["step"])
        bar.update(1)
        if state["step"] % cfg.log_every == 0 or state["step"] == cfg.max_steps:
            means = {name: round(float(np.mean(v)), 5) for name, v in state["window"].items()}
            state["history"].append({"step": state["step"], **means, "tokens": state["tokens"],
                                     "seconds": round(state["seconds"], 1)})
            state["window"] = {}
            bar.set_postfix(loss=f"{means['loss']:.3f}", tok_s=f"{state['tokens'] / state['seconds']:.0f}")
        if state["step"] % cfg.eval_every == 0 or state["step"] == cfg.max_steps:
            run_eval()
            t0 = time.perf_counter()  # evaluation is not training time
        if state["step"] % cfg.save_every == 0 or state["step"] == cfg.max_steps:
            save_checkpoint()
            t0 = time.perf_counter()
    bar.close()
    return MLMRun(state=state, precision=precision, data=corpus.describe())
