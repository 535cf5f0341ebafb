"""The settings of a fine-tuning run, with no torch: the command line builds its options from them.

`FinetuneConfig` is everything that decides a run (saved beside the model in
metrics.json); `FinetuneStageConfig` adds pruning *before* fine-tuning, which
`ndogo finetune --prune-sparsity` and the recipes' `finetune:prune_sparsity=...`
both take; `PretrainConfig` is `ndogo pretrain`'s. Every field carries its help
text (`ndogo.options.option`).
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ndogo.options import check_fields, option

if TYPE_CHECKING:
    from ndogo.train.mlm import MLMConfig


@dataclass
class FinetuneConfig:
    """Everything that decides a fine-tuning run (saved beside the model)."""

    model: str = option(help="Hub id (castorini/afriberta_large), local directory, or a short name: `minilm`, "
                        "`me5s`.")
    data: str | None = option(help="Local corpus folder (<data>/<lang>/<split>.txt or .tsv: MasakhaNER, MasakhaPOS, "
                              "SIB-200, AfriSenti layouts) or hub corpus; default $NDOGO_DATA or "
                              "`masakhaner`.")
    langs: list[str] = option(flag="--lang", sep=",", item="language code, e.g. hau or hau,yor",
                              help="Language code(s): one model trained on all.")
    out: str = option(help="Run directory: the best model, metrics.json and a checkpoint.")
    # None: told by the corpus folder's files (IOB tags: ner; UPOS tags: pos; a `category` column: topic;
    # a `tweet` column: sentiment); left out of keys when unset, so runs from before the task axis keep theirs
    task: str | None = option(None, help="ner, pos, topic or sentiment; default: told by the files in --data "
                              "(IOB tags, UPOS tags, a `category` or a `tweet` column).")
    epochs: int = option(10, min=1, help="Epochs (the best one on the task's dev metric is kept).")
    max_steps: int | None = option(None, min=1, help="Stop after this many optimizer steps (overrides --epochs).")
    # the project's measured budget for minilm (10 epochs at 1e-4: docs/lab/results-log-2026-11-to-12.md
    # §1), not BERT's 5e-5
    lr: float = option(1e-4, help="Peak AdamW learning rate (warm-up, then linear decay). 1e-4 with 10 epochs is "
                       "the measured minilm budget; me5s wants 2e-4 (docs/lab/results-log-2026-11-to-12.md §9).")
    batch_size: int = option(16, min=1, help="Training windows per optimizer step.")
    warmup_ratio: float = option(0.1, min=0, max=0.999, help="Share of the steps spent warming the learning rate "
                                 "up.")
    weight_decay: float = option(0.01, min=0, help="AdamW weight decay.")
    max_length: int | None = option(None, min=1, help="Window length in sub-words; default: the model's.")
    seed: int = option(42, min=0, help="Seed of the data order, dropout and the classifier's initialisation.")
    eval_batch_size: int = option(32, min=1, help="Windows per forward pass when scoring dev.")
    patience: int | None = option(None, min=1, help="Stop after this many epochs without a gain in the task's dev "
                                   "metric (F1, accuracy or macro-F1).")
    # linear: the landed schedule (decays over --epochs, so a long budget stopped early by --patience stops
    # at a high rate: me5s swa's best fell to 84.8 dev against 87.2 for 3 epochs). plateau: the rate holds
    # after warm-up and halves whenever an epoch brings no dev gain, the best epoch's weights restored
    # first ("newbob"), so the model is annealed from its best point whatever the budget.
    # wsd: warm-up, stable, decay (as MiniCPM's schedule), the decay started by dev: annealing from the best
    # point is what the 3-epoch linear schedule did for swa, whatever the budget
    schedule: str = option("linear", choices=("linear", "plateau", "wsd"), help="linear: warm-up, then linear "
                           "decay to zero at --epochs. plateau: warm-up, then the rate holds; an epoch without dev "
                           "gain restores the best epoch's weights and halves the rate (stop after --patience such "
                           "epochs in a row). wsd: warm-up, then the rate holds until --patience epochs without "
                           "dev gain (or --epochs), then one more epoch from the best epoch's weights, decaying "
                           "from half the rate to zero.")
    save_every: int = option(200, min=1, help="Checkpoint every this many steps (and at every epoch's end, and on "
                             "Ctrl-C).")
    threads: int | None = option(None, min=1, help="CPU threads (default: all cores).")
    # fp32 is what every landed result used; bf16 is opt-in (bench/lab/train_precision.py measures it)
    precision: str = option("fp32", choices=("fp32", "bf16", "fp16"), help="fp32, or bf16: the forward and "
                            "backward passes autocast to bfloat16 (weights, optimizer and dev scoring stay fp32); "
                            "faster on a GPU or on a CPU with AMX or AVX512-BF16, refused without one; fp16: the "
                            "same in float16 with loss scaling, on CUDA only.")
    # how a run executes, not what it computes (like threads): left out of stage keys and resume checks
    device: str = option("auto", help="auto (CUDA when present, else the CPU; $NDOGO_DEVICE overrides), cpu, "
                         "cuda or cuda:N.")
    max_train_sentences: int | None = option(None, min=1, help="Train on only the first N training sentences (a "
                                             "learning curve, or a quick try).")
    # a finished run drops its resume state (optimizer: 2-3x the weights)
    keep_checkpoint: bool = option(False, help="Keep the resume checkpoint (optimizer state, 2-3x the model's "
                                   "size) once training is done.")
    extra: dict[str, Any] = field(default_factory=dict)

    def identity(self) -> dict[str, Any]:
        """The settings that decide the run (stage outputs are keyed by them).

        `schedule` came after stage keys were in use: left out at its default (what those runs
        did), so they keep their keys.
        """
        values = dataclasses.asdict(self)
        for key, default in LATER_DEFAULTS.items():
            if key != "precision" and values.get(key) == default:  # precision was in keys from the start
                del values[key]
        return values


# fields added after runs were saved, with the value those runs used (saved runs are compared without
# them at that value)
LATER_DEFAULTS: dict[str, Any] = {"precision": "fp32", "schedule": "linear", "task": None}


def check_finetune(cfg: FinetuneConfig) -> None:
    """Refuse settings that cannot train, before any data or model is loaded.

    torch itself would refuse some of them only after the corpus and model are loaded (a
    negative lr), divide by zero on others (batch_size 0), or train a NaN model and save it
    with exit 0 (lr inf).
    """
    if not math.isfinite(cfg.lr) or cfg.lr <= 0:
        raise ValueError(f"lr must be a positive finite number, got {cfg.lr}")
    for name in ("epochs", "batch_size", "save_every", "eval_batch_size"):
        value = getattr(cfg, name)
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise ValueError(f"{name} must be a whole number of at least 1, got {value!r}")
    if cfg.max_steps is not None and cfg.max_steps < 1:
        raise ValueError(f"max_steps must be at least 1, got {cfg.max_steps}")
    if not 0 <= cfg.seed < 2**32:
        raise ValueError(f"seed must be between 0 and 2**32 - 1, got {cfg.seed}")
    if not 0 <= cfg.warmup_ratio < 1 or not math.isfinite(cfg.weight_decay) or cfg.weight_decay < 0:
        raise ValueError(f"warmup_ratio must be in [0, 1) and weight_decay ≥ 0, got {cfg.warmup_ratio}, "
                         f"{cfg.weight_decay}")
    if cfg.precision not in ("fp32", "bf16", "fp16"):
        raise ValueError(f"precision must be fp32, bf16 or fp16, got {cfg.precision!r}")


@dataclass
class FinetuneStageConfig(FinetuneConfig):
    """`ndogo finetune`'s settings, plus pruning *before* fine-tuning as the pruning stage defines it.

    With `prune_sparsity` > 0 the encoder is pruned when loaded (`oneshot`) or
    along Zhu & Gupta's cubic schedule (`gradual`), and the pruned weights are
    held at zero through every optimizer step (`ndogo finetune --prune-sparsity`).
    """

    prune_sparsity: float = option(0.0, min=0, max=0.999, help="Prune the pretrained encoder's Linear weights to "
                                   "this sparsity *before* fine-tuning; pruned weights stay zero throughout (0: "
                                   "no pruning).")
    prune_schedule: str = option("oneshot", choices=("oneshot", "gradual"), help="oneshot: prune once at the start; "
                                 "gradual: Zhu & Gupta's cubic schedule over the first half of training.")
    prune_scope: str = option("layer", choices=("layer", "global"), help="Pruning threshold per layer, or one for "
                              "the whole encoder.")
    prune_include_embeddings: bool = option(False, help="Prune the embedding matrices too.")

    def identity(self) -> dict[str, Any]:
        """The settings that decide the run (stage outputs are keyed by them)."""
        values = super().identity()
        if not self.prune_include_embeddings:
            del values["prune_include_embeddings"]  # added later: stages keyed before it keep their keys
        return values

    def check(self) -> None:
        """Refuse fine-tuning and pruning settings that cannot work before anything is trained."""
        check_finetune(self)
        if not 0 <= self.prune_sparsity < 1:
            raise ValueError(f"prune_sparsity must be in [0, 1), got {self.prune_sparsity}")
        if self.prune_schedule not in ("oneshot", "gradual"):
            raise ValueError(f"prune_schedule must be oneshot or gradual, got {self.prune_schedule!r}")
        if self.prune_scope not in ("layer", "global"):
            raise ValueError(f"prune_scope must be layer or global, got {self.prune_scope!r}")


@dataclass
class PretrainConfig:
    """Tokenizer, model shape, data and optimisation of a pretraining run (saved in metrics.json)."""

    corpus: str = option(help="Folder of raw text, one <lang>.txt per language, a sentence or paragraph a line.")
    out: str = option(help="Where the model (safetensors + tokenizer), metrics.json and a checkpoint go.")
    layers: int = option(4, min=1, help="Transformer layers.")
    hidden: int = option(256, min=8, help="Hidden size (a multiple of --heads).")
    heads: int = option(4, min=1, help="Attention heads.")
    intermediate: int | None = option(None, min=1, help="FFN width; default 4 × hidden.")
    vocab_size: int = option(25000, min=100, help="Unigram vocabulary size (tokenizer trained on the corpus).")
    seq_len: int = option(128, min=8, help="Packed block length in sub-words; also the fine-tuning window.")
    alpha: float = option(0.3, min=0, help="Language sampling p_i ∝ q_i^alpha (q_i: share of tokens); 1 = by size, "
                          "smaller evens them out.")
    max_steps: int = option(10000, min=1, help="Optimizer steps.")
    batch_size: int = option(32, min=1, help="Blocks per optimizer step.")
    grad_accum: int = option(1, min=1, help="Split each step's batch into this many micro-batches (less memory).")
    lr: float = option(5e-4, help="Peak AdamW learning rate (warm-up, then linear decay).")
    warmup_ratio: float = option(0.06, min=0, max=0.999, help="Share of the steps spent warming the learning rate "
                                 "up.")
    weight_decay: float = option(0.01, min=0, help="AdamW weight decay.")
    mask_prob: float = option(0.15, help="Share of sub-words masked (checked by the MLM loop).")
    seed: int = option(42, min=0, help="Seed of the sampling, masking and initialisation.")
    save_every: int = option(500, min=1, help="Checkpoint every this many steps.")
    log_every: int = option(50, min=1, help="A point of the training-loss curve (metrics.json) every this many "
                            "steps.")
    eval_every: int = option(500, min=1, help="Held-out MLM loss every this many steps.")
    held_out_blocks: int = option(256, min=1, help="Blocks held out of training for the held-out loss.")
    precision: str = option("auto", choices=("auto", "bf16", "fp32"), help="auto (bf16 where the CPU has native "
                            "bf16), bf16 or fp32.")
    threads: int | None = option(None, min=1, help="CPU threads (default: all cores).")
    device: str = option("auto", help="auto (CUDA when present, else the CPU; $NDOGO_DEVICE overrides), cpu, "
                         "cuda or cuda:N.")
    # NER corpus roots whose dev/test sentences are dropped from the raw text (see ndogo.data.leakage)
    exclude_eval: list[str] = option([], help="A NER corpus folder (repeatable) whose dev and test sentences are "
                                     "dropped from the raw text, so that fine-tuned test F1 is on text the model "
                                     "never read.")

    def __post_init__(self) -> None:
        check_fields(self)
        if self.hidden % self.heads:
            raise ValueError(f"hidden size {self.hidden} must be a multiple of the number of heads {self.heads}")
        if self.layers < 1 or self.vocab_size < 100:
            raise ValueError(f"need at least 1 layer and a vocabulary of 100 (got {self.layers}, {self.vocab_size})")
        if not self.lr > 0:
            raise ValueError(f"lr must be positive, got {self.lr}")
        # The optimisation settings are checked now, not after the tokenizer has been trained
        # (minutes on a real corpus) and saved into --out.
        self.mlm()

    def mlm(self) -> MLMConfig:
        """The shared MLM loop's settings: pretraining and agnostic distillation train through one loop."""
        from ndogo.train.mlm import MLMConfig

        return MLMConfig(out=self.out, max_steps=self.max_steps, batch_size=self.batch_size,
                         grad_accum=self.grad_accum, lr=self.lr, warmup_ratio=self.warmup_ratio,
                         weight_decay=self.weight_decay, mask_prob=self.mask_prob, seed=self.seed,
                         save_every=self.save_every, log_every=self.log_every, eval_every=self.eval_every,
                         precision=self.precision, threads=self.threads, device=self.device)
