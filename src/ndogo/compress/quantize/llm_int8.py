"""llm-int8: LLM.int8() (Dettmers et al. 2022) with bitsandbytes' own Linear8bitLt and its CPU backend.

Vector-wise int8 weights; at run time, feature columns whose |activation| reaches the
threshold (6.0 in the paper and bitsandbytes) are multiplied in 16-bit. The classifier stays
in full precision, as transformers' bitsandbytes integration does with the last layer.
bitsandbytes keeps the int8 rows and their scales as attributes of its parameter, so they
are saved as tensors of their own and the layer is rebuilt from them on load.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ndogo.compress.methods import option
from ndogo.compress.quantize import QUANTIZE
from ndogo.compress.quantize._torch import TorchHandler, TorchIntConfig

if TYPE_CHECKING:
    import torch

# Layers LLM.int8() leaves in full precision: the output layer, as transformers' integration does.
SKIP = ("classifier",)


def targets(model: torch.nn.Module) -> dict[str, torch.nn.Linear]:
    import torch

    return {n: m for n, m in model.named_modules()
            if isinstance(m, torch.nn.Linear) and n.split(".")[-1] not in SKIP}


def quiet_bitsandbytes() -> None:
    # bitsandbytes logs a warning on every forward that fp32 inputs are cast to fp16
    # for quantization: that cast is part of the algorithm, not news.
    logging.getLogger("bitsandbytes").setLevel(logging.ERROR)


def llm_int8_weights(weight: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Vector-wise int8 weights as LLM.int8() stores them: (int8 rows, fp32 absmax per row).

    Uses bitsandbytes' own quantizer on the fp16 weight, exactly what
    `Linear8bitLt` does when it quantizes a half-precision checkpoint.
    """
    import bitsandbytes.functional as bnbf
    import torch

    cb, scb, _ = bnbf.int8_vectorwise_quant(weight.detach().to(torch.float16).contiguous())
    return cb, scb


def llm_int8_module(linear: torch.nn.Linear, cb: torch.Tensor, scb: torch.Tensor, threshold: float) -> torch.nn.Module:
    """bitsandbytes' inference-mode Linear8bitLt holding int8 rows `cb` with row scales `scb`."""
    import bitsandbytes as bnb
    import torch

    has_bias = linear.bias is not None
    layer = bnb.nn.Linear8bitLt(linear.in_features, linear.out_features, bias=has_bias,
                                has_fp16_weights=False, threshold=threshold)
    weight = bnb.nn.Int8Params(cb, requires_grad=False, has_fp16_weights=False)
    weight.CB, weight.SCB = cb, scb
    layer.weight = weight
    if has_bias:
        layer.bias = torch.nn.Parameter(linear.bias.detach().float(), requires_grad=False)
    return layer


class LLMInt8(TorchHandler):
    # On CUDA, Linear8bitLt runs bitsandbytes' int8 matmul with the fp16 outlier columns, as the study
    # ran LLM.int8(); the int8 rows and scales move as they are (bitsandbytes does not requantize them).
    devices = ("cpu", "cuda")

    def apply(self, model: torch.nn.Module, cfg: LLMInt8Config) -> torch.nn.Module:
        from ndogo.compress.quantize._tensors import set_submodule

        quiet_bitsandbytes()
        for fqn, linear in targets(model).items():
            cb, scb = llm_int8_weights(linear.weight)
            set_submodule(model, fqn, llm_int8_module(linear, cb, scb, cfg.threshold))
        return model

    def custom_tensors(self, model: torch.nn.Module) -> tuple[dict[str, torch.Tensor], set[str]]:
        import bitsandbytes as bnb

        tensors: dict[str, torch.Tensor] = {}
        layers = {n: m for n, m in model.named_modules() if isinstance(m, bnb.nn.Linear8bitLt)}
        for fqn, layer in layers.items():
            tensors[f"{fqn}.weight"] = layer.weight.CB.contiguous()
            tensors[f"{fqn}.SCB"] = layer.weight.SCB.float().contiguous()
            if layer.bias is not None:
                tensors[f"{fqn}.bias"] = layer.bias.detach().contiguous()
        return tensors, set(layers)

    def rebuilt_layers(self, skeleton: torch.nn.Module) -> set[str]:
        return set(targets(skeleton))

    def restore(self, model: torch.nn.Module, tensors: dict[str, torch.Tensor], cfg: LLMInt8Config) -> None:
        from ndogo.compress.quantize._tensors import set_submodule

        quiet_bitsandbytes()
        for fqn, linear in targets(model).items():
            cb, scb = tensors.pop(f"{fqn}.weight"), tensors.pop(f"{fqn}.SCB")
            if linear.bias is not None:
                linear.bias.data = tensors.pop(f"{fqn}.bias")
            set_submodule(model, fqn, llm_int8_module(linear, cb, scb, cfg.threshold))


@QUANTIZE.register("llm-int8", LLMInt8())
@dataclass
class LLMInt8Config(TorchIntConfig):
    """LLM.int8() (bitsandbytes): vector-wise int8, outlier feature columns kept in 16-bit."""

    threshold: float = option(6.0, min=0.0, help="|activation| at which a feature column counts as an outlier")
