"""The optimizer every training loop here uses: AdamW, fused into one kernel where torch has one.

Why not torch's default: on a CPU, torch's AdamW updates parameter by parameter (or in `foreach`
lists), and me5s's 250k-row embedding table is 96M of its 118M parameters: on one core of this
project's Intel Xeon that update took 1.4-1.8 s a step, more than the forward and backward pass of a
6-layer student (1.1 s at batch 16); the fused kernel does it in 0.19 s. It is the same algorithm
(torch's own `fused=True`); floats may round differently, as they do with another thread count, so
a run's numbers agree with the unfused loop's to rounding, not to the bit.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import torch

# devices torch's fused AdamW kernel runs on (torch >= 2.4 has the CPU one)
FUSED_DEVICES = frozenset({"cpu", "cuda"})


def adamw(groups: Iterable[dict[str, Any]], lr: float) -> torch.optim.AdamW:
    """AdamW over `groups` (each with its own weight decay), fused where every parameter allows it."""
    groups = [g for g in groups if g["params"]]
    params = [p for g in groups for p in g["params"]]
    fused = bool(params) and all(p.device.type in FUSED_DEVICES and p.dtype in (torch.float32, torch.float16,
                                                                                 torch.bfloat16, torch.float64)
                                 for p in params)
    return torch.optim.AdamW(groups, lr=lr, fused=True if fused else None)


def describe(optimizer: torch.optim.Optimizer) -> str:
    """What a run's metrics record as its optimizer: "AdamW (fused)" or "AdamW"."""
    fused = any(g.get("fused") for g in optimizer.param_groups)
    return f"{type(optimizer).__name__}{' (fused)' if fused else ''}"
