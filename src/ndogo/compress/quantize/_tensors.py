"""Torch helpers of the torch methods: int8 embedding rows, int4 values on disk, a weightless skeleton.

Imported when a quantized model is saved or loaded, never to list the methods, so it may
import torch at the top.
"""

from __future__ import annotations

from pathlib import Path

import torch


def skeleton(path: Path) -> torch.nn.Module:
    """The model's architecture with placeholder weights (every tensor is replaced from disk)."""
    from transformers import AutoConfig

    from ndogo.models.loading import model_from_config

    config = AutoConfig.from_pretrained(path, trust_remote_code=False)
    return model_from_config(config).eval()


# ---------------------------------------------------------------- int8 embedding tables (torchao)


def is_embedding(module: torch.nn.Module, fqn: str) -> bool:
    return isinstance(module, torch.nn.Embedding)


def is_linear(module: torch.nn.Module, fqn: str) -> bool:
    return isinstance(module, torch.nn.Linear)


def int8_embeddings(model: torch.nn.Module) -> None:
    """Every embedding table as int8 per row (torchao), read row by row at lookup."""
    from torchao.quantization import IntxWeightOnlyConfig, PerAxis, quantize_

    quantize_(model, IntxWeightOnlyConfig(weight_dtype=torch.int8, granularity=PerAxis(0)), filter_fn=is_embedding)
    row_lookup_embeddings(model)


class Int8RowEmbedding(torch.nn.Embedding):
    """An embedding whose torchao int8 per-row table is read only at the rows asked for.

    torchao's `embedding` on IntxUnpackedToInt8Tensor dequantizes the whole table
    on every call (30522×384 floats for minilm, several ms per forward); gathering
    the int8 rows and their scales first gives the same values for a few hundred
    multiplications. The weight stays the torchao tensor, so saving is unchanged.
    """

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        w = self.weight
        rows = w.qdata[ids].to(w.scale.dtype)
        return (rows - w.zero_point[ids].to(w.scale.dtype)) * w.scale[ids]


def row_lookup_embeddings(model: torch.nn.Module) -> None:
    """Swap embeddings holding per-row int8 torchao tables for `Int8RowEmbedding`."""
    for fqn, module in list(model.named_modules()):
        w = getattr(module, "weight", None)
        if (type(module) is torch.nn.Embedding and type(w).__name__ == "IntxUnpackedToInt8Tensor"
                and list(w.block_size) == [1, w.shape[1]]):
            fast = Int8RowEmbedding(module.num_embeddings, module.embedding_dim, padding_idx=module.padding_idx,
                                    _weight=w, _freeze=True)
            set_submodule(model, fqn, fast)


def set_submodule(model: torch.nn.Module, fqn: str, new: torch.nn.Module) -> None:
    parent, _, name = fqn.rpartition(".")
    setattr(model.get_submodule(parent) if parent else model, name, new)


# ---------------------------------------------------------------- 4-bit values on disk


def pack_int4(values: torch.Tensor) -> torch.Tensor:
    """Two signed 4-bit values (-8..7, held in int8) per byte: low nibble first.

    Hand-written because torchao's CPU int4 layouts are either unpacked int8
    (IntxUnpackedToInt8Tensor, 8 bits on disk) or opaque kernel formats that its
    safetensors support cannot save; packing is the only way to 4 bits on disk.
    """
    if values.dtype != torch.int8 or values.numel() % 2:
        raise ValueError("pack_int4 takes an int8 tensor with an even number of elements")
    if values.min() < -8 or values.max() > 7:
        raise ValueError("pack_int4: values outside -8..7 do not fit in 4 bits")
    flat = (values.flatten().to(torch.int16) & 0xF).to(torch.uint8)
    return flat[0::2] | (flat[1::2] << 4)


def unpack_int4(packed: torch.Tensor, shape: list[int]) -> torch.Tensor:
    """Inverse of `pack_int4`: int8 values -8..7 in `shape`."""
    low = (packed & 0xF).to(torch.int16)
    high = (packed >> 4).to(torch.int16)
    flat = torch.stack([low, high], dim=1).flatten()
    flat = torch.where(flat > 7, flat - 16, flat).to(torch.int8)
    return flat.reshape(shape)
