"""Pruning: a saved model in, a smaller saved model out, by one of several methods.

A method is one module of this package: a config dataclass (subclassing `PruneConfig`, which
holds what every method shares: the sparsity and the optional recovery fine-tuning)
registered under the method's name, and a handler with `prune(run, out, config) -> Path`:

- `magnitude.py`: unstructured magnitude pruning, after fine-tuning (this stage) or before it
  (`ndogo finetune --prune-sparsity`), saved in the sparse format (`_sparse.py`, kind `sparse`);
- `heads.py`, `ffn.py`: structured pruning of attention heads or FFN neurons, which really
  shrinks the matrices (`_structured.py`, kind `structured`).

Modules starting with `_` are helpers (storage formats, recovery fine-tuning), not methods.

    prune("runs/minilm-hau", "runs/hau-p50", prune_config("magnitude", sparsity=0.5))
    prune("runs/minilm-hau", "runs/hau-h50", prune_config("heads", sparsity=0.5))
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ndogo.compress.methods import MethodConfig, MethodRegistry, option


@dataclass
class PruneConfig(MethodConfig):
    """What every pruning method takes: how much to prune, and optional recovery fine-tuning.

    Recovery fine-tuning needs `data` and `lang` (the language(s) the model was tuned on).
    """

    sparsity: float = option(help="fraction of weights zeroed (magnitude) or of heads / FFN neurons removed in "
                                  "every layer (heads, ffn), 0 <= S < 1", min=0.0)
    recover_epochs: int = option(0, min=0, help="fine-tune this many epochs after pruning, the pruning held "
                                                "(needs --lang)")
    data: str | None = option(None, help="corpus for recovery / gradient importance; default $NDOGO_DATA or "
                                         "`masakhaner`")
    lang: str | None = option(None, help="language(s) the model was fine-tuned on, comma-separated")
    lr: float = option(5e-5, min=0.0, help="peak learning rate of recovery fine-tuning")
    batch_size: int = option(16, min=1, help="batch size of recovery fine-tuning and gradient importance")
    seed: int = option(42, help="seed of recovery fine-tuning and of the batches gradient importance reads")
    threads: int | None = option(None, min=1, help="CPU threads (default: all cores)")
    show_progress: bool = option(True, help="show progress bars")
    device: str = option("auto", help="where recovery fine-tuning runs: auto (CUDA when present, else the CPU; "
                         "$NDOGO_DEVICE overrides), cpu, cuda or cuda:N")

    def check(self) -> None:
        """Refuse settings that cannot work before any model is loaded."""
        if not 0 <= self.sparsity < 1:
            raise ValueError(f"sparsity must be in [0, 1), got {self.sparsity}")
        if self.recover_epochs and not self.lang:
            raise ValueError("recovery fine-tuning needs --lang (and --data)")

    def record(self) -> dict[str, Any]:
        return {k: v for k, v in self.identity().items() if k != "show_progress"}


PRUNE = MethodRegistry("prune", __name__, PruneConfig, default="magnitude")
PruneConfig.registry = PRUNE


def prune_config(name: str | None = None, /, **options: Any) -> PruneConfig:
    """The config of pruning method `name` (default magnitude); an option it does not take is a ValueError."""
    return PRUNE.config(name, **options)


def prune(run: str | Path, out: str | Path, config: PruneConfig) -> Path:
    """Prune the model in `run` and save it in `out` (stage contract of `ndogo.compress`).

    ndogo.json records the method's config, the requested and the achieved sparsity.
    """
    config.check()
    if Path(out).resolve() == Path(run).resolve():
        raise ValueError(f"--out must differ from the model being pruned ({run})")
    if config.threads:
        import torch

        torch.set_num_threads(config.threads)
    return PRUNE.of(config).handler.prune(Path(run), Path(out), config)


def __getattr__(name: str) -> Any:
    # METHODS needs every method module imported; `densify` lives with the sparse format
    if name == "METHODS":
        return tuple(PRUNE.names())
    if name == "densify":
        from ndogo.compress.prune._sparse import densify

        return densify
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
