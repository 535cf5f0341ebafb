"""ONNX Runtime 4-bit weights: block-wise int4 matrices and embedding rows, run by ONNX Runtime.

`onnx-int4` exports the model as `onnx-int8` does (`export_onnx`, checked against PyTorch),
with two fusions changed so that every weight stays a plain initializer the 4-bit tools can
reach: attention as `MultiHeadAttention` (the Q, K and V projections stay MatMuls; the fused
`Attention` op would hold them inside itself) and no `EmbedLayerNormalization` (the embedding
tables stay Gathers). Then onnxruntime's `MatMulNBitsQuantizer` stores

* every constant MatMul weight as 4-bit blocks of `block_size` weights along the input axis,
  one fp32 scale (and a 4-bit zero point unless symmetric) per block: the `MatMulNBits`
  contrib op;
* every embedding table (word, position, token type) as 4-bit blocks along the hidden axis:
  the `GatherBlockQuantized` contrib op (ONNX Runtime >= 1.20; the graph moves to opset 21,
  whose INT4/UINT4 tensor types the tables are stored in).

What is not 4-bit (either part, with `embeddings=int8` or `matmul=int8`) then goes through
`onnx-int8`'s dynamic int8 quantization. Both contrib ops are in ONNX Runtime's CPU build,
so the output (kind `onnx`) runs in the torch-free runtime (`ndogo.load`) and `ndogo serve`.
ONNX Runtime's .ort format (`ndogo export --format ort`) has no 4-bit tensor type, so only a
model made with `embeddings=int8` (MatMulNBits keeps its blocks in bytes) converts to it.

Measured on minilm with a random 9-label head, 1 thread, batch 1, in the torch-free runtime
(bench/lab/int4_size_speed.py, docs/bench/int4-size-speed.csv, a busy 2-core Xeon with AVX512-VNNI
and AMX): onnx-int4 is 14.6 MB, 0.16 of fp32 and 0.64 of onnx-int8 (22.8 MB), but it runs at
fp32's speed (0.97x), half onnx-int8's. At a sentence's length (tens of tokens) `MatMulNBits`
is no faster than an fp32 MatMul here (a 40x384 by 384x1536 product: 405 us against 333;
onnx-int8's `MatMulInteger`, 56 us), while at one token, the LLM decoding it is built for, it
is 3x faster; `accuracy_level=4` (int8 activations inside MatMulNBits) is the faster level at
both lengths. `block_size=128` is 12.2 MB (0.54 of int8) and a little faster, less accurate;
asymmetric blocks are more accurate than symmetric ones for 2% more size. The fp32 scales cost
a quarter of a 4-bit weight at block 32 (ONNX Runtime keeps them in the activations' type).
`matmul=int8` keeps onnx-int8's speed with 4-bit embedding tables only (18.6 MB, 0.81 of
int8): minilm's word embeddings are half its weights.
"""

from __future__ import annotations

import json
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ndogo.compress.methods import option
from ndogo.compress.quantize import QUANTIZE, QuantizeConfig

# Fusions that leave every weight a plain MatMul or Gather initializer (see the module docstring).
KEEP_WEIGHTS_APART = {"use_multi_head_attention": True, "enable_embed_layer_norm": False}
# MLAS's 4-bit kernels take these block lengths; GatherBlockQuantized wants a power of two >= 16.
BLOCK_SIZES = (16, 32, 64, 128, 256)


def _float_tables(model: Any) -> set[str]:
    """Names of float initializers: only Gathers over these are embedding tables worth quantizing."""
    from onnx import TensorProto

    floats = (TensorProto.FLOAT, TensorProto.FLOAT16, TensorProto.BFLOAT16)
    return {t.name for t in model.graph.initializer if t.data_type in floats}


class OnnxInt4:
    """Export with weights left apart, 4-bit MatMuls and embeddings, then int8 for what is left."""

    def quantize(self, run: Path, out: Path, cfg: OnnxInt4Config) -> Path:
        import numpy as np
        import onnx
        from onnxruntime.quantization import QuantType, quantize_dynamic
        from onnxruntime.quantization.matmul_nbits_quantizer import MatMulNBitsQuantizer

        from ndogo.compress.export import ONNX_FILE, export_onnx, write_onnx_dir
        from ndogo.compress.quantize.onnx import _quiet_root_logger
        from ndogo.models.runner import load_runner

        runner = load_runner(run)
        four = [op for op, bits in (("MatMul", cfg.matmul), ("Gather", cfg.embeddings)) if bits == "int4"]
        eight = [op for op, bits in (("MatMul", cfg.matmul), ("Gather", cfg.embeddings)) if bits == "int8"]
        with tempfile.TemporaryDirectory() as tmp, _quiet_root_logger():
            fp32_dir = export_onnx(run, Path(tmp) / "fp32", fusion=KEEP_WEIGHTS_APART)
            model = onnx.load(str(fp32_dir / ONNX_FILE))
            tables = _float_tables(model)
            # A Gather over an integer constant (an index table) is no embedding; leave it alone.
            skip = [n.name for n in model.graph.node if n.op_type == "Gather" and n.input[0] not in tables]
            quantizer = MatMulNBitsQuantizer(
                model, bits=4, block_size=cfg.block_size, is_symmetric=cfg.symmetric,
                accuracy_level=cfg.accuracy_level or None, nodes_to_exclude=skip, op_types_to_quantize=tuple(four))
            with np.errstate(invalid="ignore", divide="ignore"):  # an all-zero block (the pad row) has scale 0
                quantizer.process()
            dst = Path(tmp) / ONNX_FILE
            quantizer.model.save_model_to_file(str(dst), use_external_data_format=False)
            if eight:
                int4, dst = dst, Path(tmp) / "int8" / ONNX_FILE
                dst.parent.mkdir()
                # As onnx-int8: per-channel int8 weights; shape inference cannot type contrib ops' outputs.
                quantize_dynamic(int4, dst, per_channel=True, weight_type=QuantType.QInt8, op_types_to_quantize=eight,
                                 nodes_to_exclude=skip, extra_options={"DefaultTensorType": onnx.TensorProto.FLOAT})
            counts: dict[str, int] = {}
            for node in onnx.load(str(dst), load_external_data=False).graph.node:
                if node.op_type in ("MatMulNBits", "GatherBlockQuantized"):
                    counts[node.op_type] = counts.get(node.op_type, 0) + 1
            fp32_meta = json.loads((fp32_dir / "ndogo.json").read_text())
            return write_onnx_dir(out, runner, dst, {
                "stage": "quantize", "source": str(run), "source_kind": runner.kind,
                "quantization": cfg.record(), "fused_ops": fp32_meta.get("fused_ops", {}), "int4_ops": counts,
            })


@QUANTIZE.register("onnx-int4", OnnxInt4())
@dataclass
class OnnxInt4Config(QuantizeConfig):
    """ONNX Runtime 4-bit block-wise weights (MatMulNBits) and embedding rows (GatherBlockQuantized), int8 elsewhere."""

    block_size: int = option(32, help="weights per block sharing a scale: a power of two from 16 to 256 "
                                      "(smaller: more accurate, larger file)")
    symmetric: bool = option(False, help="symmetric blocks, no zero points (a little smaller, less accurate)")
    accuracy_level: int = option(4, min=0, max=4, help="MatMulNBits compute: 4 = int8 activations (fastest on "
                                                       "CPUs), 0 = fp32")
    matmul: str = option("int4", choices=("int4", "int8"), help="the MatMul weights: 4-bit blocks, or int8 "
                                                                  "(onnx-int8's kernels, faster on x86)")
    embeddings: str = option("int4", choices=("int4", "int8"), help="the embedding tables: 4-bit blocks, "
                                                                      "or int8 rows")

    def __post_init__(self) -> None:
        super().__post_init__()
        if isinstance(self.block_size, bool) or self.block_size not in BLOCK_SIZES:
            raise ValueError(f"block_size must be a power of two from 16 to 256, not {self.block_size!r}")
        if self.matmul == "int8" and self.embeddings == "int8":
            raise ValueError("matmul and embeddings: one of them must be int4 (both int8 is onnx-int8)")
