"""ONNX export of any float torch model ndogo saves: a function from a saved model to a saved model.

It sits with the compression stages because one of them needs it: the ONNX quantizers
(`compress/quantize/onnx.py`, `onnx_int4.py`) export first and quantize the graph. The
directory it writes has kind "onnx", which `ndogo.deploy.onnx` loads (and converts to .ort).
"""

from __future__ import annotations

import shutil
import tempfile
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ndogo.models.loading import ModelError, write_meta
from ndogo.models.runner import Runner, load_runner

ONNX_FILE = "model.onnx"
INPUTS = ("input_ids", "attention_mask")
OPSET = 17
# Largest |logit| difference between ONNX Runtime and PyTorch we accept from a float export:
# both compute in fp32, so anything bigger means the graph is wrong, not rounding.
EXPORT_TOLERANCE = 1e-3

# ONNX Runtime's transformer optimizer knows these architectures' attention pattern.
FUSABLE = {"bert": "bert", "roberta": "bert", "xlm-roberta": "bert", "distilbert": "bert", "electra": "bert"}


def check_batch(vocab_size: int, seed: int = 0) -> dict[str, torch.Tensor]:
    """A padded batch of three rows of different lengths: exercises the attention mask."""
    gen = torch.Generator().manual_seed(seed)
    ids = torch.randint(5, vocab_size, (3, 24), generator=gen)
    mask = torch.ones_like(ids)
    for row, length in ((1, 9), (2, 17)):
        ids[row, length:] = 0
        mask[row, length:] = 0
    return {"input_ids": ids, "attention_mask": mask}


def _export_graph(module: torch.nn.Module, path: Path, example: dict[str, torch.Tensor]) -> None:
    """Trace the module to ONNX with dynamic batch and sequence axes.

    We use the TorchScript exporter with eager attention on purpose: ONNX Runtime's
    fusion patterns match the graph it writes (one fused `Attention` per layer),
    whereas SDPA attention, or the torch.export-based exporter, leaves attention
    as separate MatMul/Softmax nodes that the optimizer cannot fuse (checked on
    minilm: 6 Attention fusions against 0).
    """
    if hasattr(module, "set_attn_implementation"):
        module.set_attn_implementation("eager")
    axes = {name: {0: "batch", 1: "sequence"} for name in (*INPUTS, "logits")}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # tracer and deprecation chatter, not problems
        torch.onnx.export(
            module, (example["input_ids"], example["attention_mask"]), str(path),
            input_names=list(INPUTS), output_names=["logits"], dynamic_axes=axes,
            opset_version=OPSET, do_constant_folding=True, dynamo=False,
        )


def optimize_graph(src: Path, dst: Path, config: Any, fusion: dict[str, Any] | None = None) -> dict[str, int]:
    """Fuse attention, layer norms and GELU with onnxruntime.transformers; returns the fused op counts.

    Architectures the optimizer does not know are copied unchanged (ONNX Runtime
    still applies its generic graph optimizations when the session starts).
    `fusion` sets attributes of the optimizer's `FusionOptions` (e.g.
    `{"enable_embed_layer_norm": False}`), for a quantizer that needs a weight
    left outside a fused op; without it, the optimizer's defaults for the model type.
    """
    model_type = FUSABLE.get(getattr(config, "model_type", ""))
    if model_type is None:
        shutil.copyfile(src, dst)
        return {}
    from onnxruntime.transformers.fusion_options import FusionOptions
    from onnxruntime.transformers.optimizer import optimize_model

    options = None
    if fusion:
        options = FusionOptions(model_type)
        for name, value in fusion.items():
            if not hasattr(options, name):
                raise ValueError(f"fusion option {name!r}: onnxruntime's FusionOptions has no such attribute")
            setattr(options, name, value)
    # Pruned models have per-layer head counts; 0 lets the optimizer read them off the graph.
    pruned = bool(getattr(config, "pruned_heads", None))
    heads = 0 if pruned else int(getattr(config, "num_attention_heads", 0))
    hidden = 0 if pruned else int(getattr(config, "hidden_size", 0))
    optimized = optimize_model(str(src), model_type=model_type, num_heads=heads, hidden_size=hidden,
                               optimization_options=options)
    optimized.save_model_to_file(str(dst))
    return {k: int(v) for k, v in optimized.get_fused_operator_statistics().items() if v}


def session(path: str | Path, threads: int | None = None) -> Any:
    """An ONNX Runtime CPU session using as many intra-op threads as torch does (the same budget)."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads or torch.get_num_threads()
    options.inter_op_num_threads = 1
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.log_severity_level = 3
    try:
        return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    except Exception as err:  # onnxruntime's pybind types (Fail, InvalidProtobuf, InvalidArgument, NoSuchFile...)
        # A missing, truncated or corrupt graph: one line naming it, not ONNX Runtime's traceback.
        reason = (str(err).strip().splitlines() or [type(err).__name__])[0]
        raise ModelError(f"{path}: ONNX Runtime cannot load this graph ({reason})") from None


def onnx_forward(sess: Any) -> Any:
    """A `Runner.forward` over an ONNX Runtime session: torch batch in, torch logits out."""
    wanted = [i.name for i in sess.get_inputs()]

    def forward(batch: dict[str, torch.Tensor]) -> torch.Tensor:
        feed = {name: batch[name].numpy().astype(np.int64, copy=False) for name in wanted}
        return torch.from_numpy(sess.run(["logits"], feed)[0])

    return forward


def max_logit_diff(onnx_path: Path, module: torch.nn.Module, batch: dict[str, torch.Tensor]) -> float:
    """Largest |logit| difference between ONNX Runtime and torch on real (unpadded) positions."""
    with torch.inference_mode():
        ref = module(**batch).logits.float()
    out = onnx_forward(session(onnx_path, threads=1))(batch)
    if out.dim() == 2:  # a text classifier: one row of logits per text, all of them real
        return float((out - ref).abs().max())
    keep = batch["attention_mask"].bool()
    return float((out - ref).abs()[keep].max())


def write_onnx_dir(out: Path, runner: Runner, graph: Path, extra: dict[str, Any]) -> Path:
    """Lay out a complete "onnx" model directory around an ONNX graph file."""
    out.mkdir(parents=True, exist_ok=True)
    if graph.resolve() != (out / ONNX_FILE).resolve():
        shutil.copyfile(graph, out / ONNX_FILE)
    runner.tokenizer.save_pretrained(out)
    config = runner.module.config if runner.module is not None else None
    if config is not None:
        config.save_pretrained(out)
    params, nonzero = runner.params()
    meta = {
        **{k: v for k, v in runner.meta.items() if k in ("base_model", "langs", "labels", "task", "output")},
        "kind": "onnx", "labels": runner.labels, "max_length": runner.max_length,
        "param_counts": {"params": params, "nonzero_params": nonzero}, **extra,
    }
    write_meta(out, meta)
    return out


def export_onnx(run: str | Path, out: str | Path, optimize: bool = True,
                tolerance: float = EXPORT_TOLERANCE, fusion: dict[str, Any] | None = None) -> Path:
    """Export a saved float torch model (any kind whose runner has a torch module) to an "onnx" model dir.

    Args:
        run: a model directory ndogo can load (`hf`, pruned, distilled ...; not an
            already-quantized torch kind, whose custom kernels ONNX cannot express).
        out: the directory to write (`model.onnx`, tokenizer, `config.json`, `ndogo.json`).
        optimize: fuse attention/LayerNorm/GELU with ONNX Runtime's transformer
            optimizer (much faster on CPU; numerically the same within fp32 rounding).
        tolerance: the largest |logit| difference from PyTorch accepted on a padded
            check batch; a bigger one raises ModelError instead of saving a wrong model.
        fusion: options of the optimizer (`optimize_graph`), checked like the default fusions.

    Returns:
        `out`. Its `ndogo.json` records the check ("export_max_abs_diff") and the fusions made.

    Example:
        >>> export_onnx("runs/minilm-hau", "runs/export/minilm-hau-onnx")
    """
    runner = load_runner(run)
    module = runner.module
    if module is None or not hasattr(module, "config"):
        raise ModelError(f"{run}: kind {runner.kind!r} has no torch module to export")
    if any(p.dtype not in (torch.float32, torch.float16, torch.bfloat16) for p in module.parameters()) or any(
        "quantized" in type(m).__module__ or "bitsandbytes" in type(m).__module__ for m in module.modules()
    ):
        raise ModelError(f"{run}: kind {runner.kind!r} is quantized in torch; export the float model and "
                         "quantize the ONNX graph instead (ndogo quantize --method onnx-int8)")
    module = module.float().eval()
    out = Path(out)
    batch = check_batch(int(module.config.vocab_size))
    with tempfile.TemporaryDirectory() as tmp:
        raw = Path(tmp) / "raw.onnx"
        _export_graph(module, raw, batch)
        graph = Path(tmp) / ONNX_FILE
        fused = optimize_graph(raw, graph, module.config, fusion) if optimize else {}
        if not optimize:
            shutil.copyfile(raw, graph)
        diff = max_logit_diff(graph, module, batch)
        if diff > tolerance:
            raise ModelError(f"{run}: ONNX export differs from PyTorch by {diff:.2g} in logits "
                             f"(tolerance {tolerance:g}); not saved")
        return write_onnx_dir(out, runner, graph, {
            "stage": "export", "source": str(run), "source_kind": runner.kind, "opset": OPSET,
            "optimized": optimize, "fused_ops": fused, "export_max_abs_diff": diff,
        })
