"""`heads`: structured pruning of attention heads, the same fraction in every encoder layer.

Removing attention heads shrinks the matrices themselves, so the model runs faster with the same dense
kernels; the work is done in `_structured.py` (shared with the other structured method), which
also stores the result (kind `structured`).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ndogo.compress.methods import option
from ndogo.compress.prune import PRUNE, PruneConfig


@PRUNE.register("heads")
@dataclass
class HeadsConfig(PruneConfig):
    """Structured: remove the least important attention heads of every layer (smaller and faster)."""

    importance: str = option("weight", choices=("weight", "gradient"),
                             help="rank by weight norm, or by gradient (Taylor) scores on a few training batches "
                                  "(needs --lang)")
    importance_batches: int = option(8, min=1, help="training batches for gradient importance")

    def check(self) -> None:
        super().check()
        if self.importance == "gradient" and not self.lang:
            raise ValueError("gradient importance needs --lang (and --data)")


class Heads:
    def prune(self, run: Path, out: Path, config: HeadsConfig) -> Path:
        from ndogo.compress.prune._structured import prune_structured

        return prune_structured(run, out, config, "heads")


PRUNE.handler(HeadsConfig)(Heads())
