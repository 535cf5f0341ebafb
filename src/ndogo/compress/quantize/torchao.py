"""torchao's quantization of Linear layers and embedding tables (`torchao.quantization.quantize_`).

- `torchao-int8`: the successor of PyTorch dynamic quantization, Int8DynamicActivationInt8WeightConfig
  (per-row int8 weights, per-token int8 activations).
- `int4-weight`: 4-bit group-wise weight-only quantization of every Linear (IntxWeightOnlyConfig),
  two weights per byte on disk.
- `int8-embed`: int8 per-row embedding tables, the rest fp32: in small encoders the vocabulary
  matrix is about half of all parameters (82% in me5s).

torchao tensors save through torchao's own safetensors support; only int4 values need packing.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from ndogo.compress.methods import option
from ndogo.compress.quantize import QUANTIZE, QuantizeConfig
from ndogo.compress.quantize._torch import TorchHandler, TorchIntConfig

if TYPE_CHECKING:
    import torch


class TorchaoLinears(TorchHandler):
    """Every Linear through `quantize_` with the torchao config the method's config makes."""

    def __init__(self, make: str) -> None:
        self.make = make

    def apply(self, model: torch.nn.Module, cfg: QuantizeConfig) -> torch.nn.Module:
        import torch
        from torchao.quantization import (
            Int8DynamicActivationInt8WeightConfig,
            IntxWeightOnlyConfig,
            PerGroup,
            quantize_,
        )

        from ndogo.compress.quantize._tensors import is_linear

        if self.make == "int8":
            config = Int8DynamicActivationInt8WeightConfig()
        else:
            config = IntxWeightOnlyConfig(weight_dtype=torch.int4, granularity=PerGroup(cfg.group_size))
        quantize_(model, config, filter_fn=is_linear)
        return model

    def packed_keys(self, data: dict[str, torch.Tensor]) -> list[str]:
        if self.make != "int4":
            return []
        return [k for k, v in data.items() if k.endswith("._weight_qdata")
                and v.numel() % 2 == 0 and v.min() >= -8 and v.max() <= 7]


class EmbeddingsOnly(TorchHandler):
    def apply(self, model: torch.nn.Module, cfg: QuantizeConfig) -> torch.nn.Module:
        from ndogo.compress.quantize._tensors import int8_embeddings

        int8_embeddings(model)
        return model


@QUANTIZE.register("torchao-int8", TorchaoLinears("int8"))
@dataclass
class TorchaoInt8Config(TorchIntConfig):
    """torchao dynamic int8: per-row int8 weights, per-token int8 activations."""


@QUANTIZE.register("int4-weight", TorchaoLinears("int4"))
@dataclass
class Int4WeightConfig(TorchIntConfig):
    """torchao 4-bit group-wise weight-only quantization of every Linear, two weights per byte."""

    group_size: int = option(32, min=1, help="weights sharing one scale")


@QUANTIZE.register("int8-embed", EmbeddingsOnly())
@dataclass
class Int8EmbedConfig(QuantizeConfig):
    """int8 per-row embedding tables (torchao), everything else fp32."""
