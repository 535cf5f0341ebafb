"""The sparse file format (kind `sparse`): a bitmask of the non-zero weights plus their values.

Why a format of our own: a masked dense model is exactly as large as the dense one, and
safetensors has no sparse tensor type (torch's sparse tensors only save through pickle,
which ndogo never loads). So each tensor that is mostly zeros is stored as a bitmask of its
non-zero positions (numpy.packbits, one bit per weight) plus its non-zero values in
row-major order. A bitmask costs a fixed 1/32 of the dense fp32 size and beats CSR's 16- or
32-bit column index per non-zero at every sparsity below ~97%, which is the range studied.
The bitmask is taken on the bit pattern, so even -0.0 survives: a reload gives bit-identical
tensors, and `densify` writes a plain Hugging Face directory.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors import safe_open
from safetensors.torch import save_file
from torch import nn

from ndogo.compress.prune._common import build_model, runner_for
from ndogo.models.loading import ModelError, write_meta
from ndogo.models.runner import Runner, load_runner, register_kind

SPARSE_FILE = "sparse.safetensors"
SPARSE_FORMAT = "ndogo-bitmask-v1"
# Integer types of the same width, to read a float tensor's bit pattern.
_BITS = {1: torch.uint8, 2: torch.int16, 4: torch.int32, 8: torch.int64}


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
