"""Where tensors live: one device setting for every loop (fine-tuning, distillation, MLM, recovery, evaluate).

`auto` is CUDA when a CUDA device is visible (inside a Ray cell, the GPUs Ray gave it), else the CPU;
`$NDOGO_DEVICE` overrides what `auto` means (the test suite sets it to `cpu`, so nothing in it needs or
takes a GPU). `cpu`, `cuda` and `cuda:N` name one device, refused in one line when it is not there.

Plain torch, not Hugging Face accelerate: accelerate is not in this project's environment, and what
it would replace here is small: one `model.to(device)`, one `to_device(batch)` per step,
`torch.autocast` and a `GradScaler` for fp16. Its multi-GPU data parallelism suits one large model.
A sweep has many small models (minilm is 22M parameters), so it puts one cell on each GPU
(`[resources] gpus` in a Ray sweep) and has no gradients to share between GPUs.

Imports nothing of ndogo, so every layer may use it; torch is imported when a function needs it.
"""

from __future__ import annotations

import contextlib
import os
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import torch

DEVICES = "auto, cpu, cuda or cuda:N"
PRECISIONS = ("fp32", "bf16", "fp16")


def resolve_device(spec: str | None = "auto") -> torch.device:
    """The device `spec` names (`auto`: CUDA when present, else the CPU); refused when it is not here."""
    import torch

    spec = (spec or "auto").strip().lower()
    if spec == "auto":
        spec = os.environ.get("NDOGO_DEVICE", "").strip().lower() or (
            "cuda" if torch.cuda.is_available() else "cpu")
        if spec == "auto":
            raise ValueError("NDOGO_DEVICE=auto: the variable names what `auto` means; set it to cpu or cuda[:N]")
    if spec == "cpu":
        return torch.device("cpu")
    if spec == "cuda" or spec.startswith("cuda:"):
        index = spec.partition(":")[2]
        if index and not index.isdigit():
            raise ValueError(f"device {spec!r}: expected {DEVICES}")
        if not torch.cuda.is_available():
            raise ValueError(f"device {spec}: no CUDA device here (torch {torch.__version__}"
                             f"{'' if torch.version.cuda else ', built without CUDA'}); use --device cpu or auto")
        n = torch.cuda.device_count()
        i = int(index) if index else torch.cuda.current_device()
        if i >= n:
            raise ValueError(f"device {spec}: this machine has {n} CUDA device{'s' if n != 1 else ''} "
                             f"(cuda:0{f' to cuda:{n - 1}' if n > 1 else ''})")
        return torch.device("cuda", i)
    raise ValueError(f"device {spec!r}: expected {DEVICES}")


def device_name(device: torch.device) -> str:
    """What a row records beside a timing: the GPU's name, or `cpu` (the CPU's name is its own column)."""
    import torch

    if device.type == "cuda":
        return str(torch.cuda.get_device_name(device))
    return device.type


def to_device(batch: dict[str, Any], device: torch.device) -> dict[str, Any]:
    """A collated batch (built on the CPU, where the data is) on the model's device."""
    import torch

    if device.type == "cpu":
        return batch
    return {k: v.to(device, non_blocking=True) if isinstance(v, torch.Tensor) else v for k, v in batch.items()}


def synchronize(device: torch.device) -> None:
    """Wait for the device's queued work: a CUDA call returns before the GPU has run it, so a timer must wait."""
    import torch

    if device.type == "cuda":
        torch.cuda.synchronize(device)


def check_precision(precision: str, device: torch.device) -> None:
    """Refuse a mixed precision the device cannot compute natively (it would be slower, or not run at all).

    bf16 on the CPU is checked where it is chosen (`train.mlm.resolve_precision`: AVX512-BF16 or AMX).
    """
    import torch

    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {', '.join(PRECISIONS)}, got {precision!r}")
    if precision == "fp16" and device.type != "cuda":
        raise ValueError(f"precision fp16 needs a CUDA device, and this run is on {device}; use bf16 or fp32")
    if precision == "bf16" and device.type == "cuda" and not torch.cuda.is_bf16_supported():
        raise ValueError(f"{device_name(device)} has no native bf16; use --precision fp16 or fp32")


def autocast(precision: str, device: torch.device) -> contextlib.AbstractContextManager:
    """bf16 or fp16 autocast on `device` for the forward pass (weights and optimizer stay fp32), or nothing."""
    import torch

    if precision == "fp32":
        return contextlib.nullcontext()
    return torch.autocast(device.type, dtype=torch.bfloat16 if precision == "bf16" else torch.float16)


def grad_scaler(precision: str, device: torch.device) -> torch.amp.GradScaler:
    """A loss scaler for fp16 (its small range underflows gradients); a pass-through for bf16 and fp32."""
    import torch

    return torch.amp.GradScaler(device.type, enabled=precision == "fp16")
