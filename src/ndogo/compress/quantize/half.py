"""fp16 and bf16: the whole model cast to half precision (transformers / torch).

Half the size on disk, the same graph; on CPUs without half-precision matrix units it is
usually slower than fp32. The simplest method, and the template for a new one: a config
dataclass registered under the method's name, and a handler. Libraries are imported inside
the handler, so listing the methods stays cheap.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from ndogo.compress.quantize import QUANTIZE, QuantizeConfig
from ndogo.compress.quantize._torch import TorchHandler

if TYPE_CHECKING:
    import torch


class HalfHandler(TorchHandler):
    devices = ("cpu", "cuda")  # a cast model is an ordinary torch model
    """Cast every parameter; the result is an ordinary Hugging Face directory in that dtype."""

    plain_save = True

    def __init__(self, dtype: str) -> None:
        self.dtype = dtype  # a name, so that listing the methods needs no torch

    def apply(self, model: torch.nn.Module, cfg: QuantizeConfig) -> torch.nn.Module:
        import torch

        return model.to(getattr(torch, self.dtype))


@QUANTIZE.register("fp16", HalfHandler("float16"))
@dataclass
class Fp16Config(QuantizeConfig):
    """Every weight in IEEE half precision (16 bits)."""


@QUANTIZE.register("bf16", HalfHandler("bfloat16"))
@dataclass
class Bf16Config(QuantizeConfig):
    """Every weight in bfloat16 (16 bits, fp32's exponent range)."""
