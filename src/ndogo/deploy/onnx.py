"""ONNX export of any float torch model ndogo saves, and the "onnx" model kind that runs it.

ONNX Runtime is the fastest way we found to run these encoders on a CPU: with its
transformer fusions (one `Attention`, `SkipLayerNormalization`, `BiasGelu` node
per block instead of dozens of small ops) and int8 kernels (VNNI on x86) it
leaves eager PyTorch far behind at batch 1, where framework overhead dominates.

The exported directory is a complete ndogo model: `model.onnx`, the tokenizer,
the Hugging Face `config.json` (labels and window), and `ndogo.json` with
kind "onnx", so `load_runner` and `ndogo evaluate` treat it like any model.
"""

from __future__ import annotations

import contextlib
import io
import logging
import shutil
import tempfile
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ndogo.models.loading import ModelError, write_meta
from ndogo.models.runner import Runner, load_runner, register_kind

ONNX_FILE = "model.onnx"
ORT_FILE = "model.ort"  # ONNX Runtime's own (flatbuffer) format, for mobile and minimal builds
INPUTS = ("input_ids", "attention_mask")
OPSET = 17
# Largest |logit| difference between ONNX Runtime and PyTorch we accept from a float export:
# both compute in fp32, so anything bigger means the graph is wrong, not rounding.
EXPORT_TOLERANCE = 1e-3

# ONNX Runtime's transformer optimizer knows these architectures' attention pattern.
FUSABLE = {"bert": "bert", "roberta": "bert", "xlm-roberta": "bert", "distilbert": "bert", "electra": "bert"}


def _check_batch(vocab_size: int, seed: int = 0) -> dict[str, torch.Tensor]:
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
        **{k: v for k, v in runner.meta.items() if k in ("base_model", "langs", "labels")},
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
    batch = _check_batch(int(module.config.vocab_size))
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


def load_onnx(path: Path, meta: dict[str, Any]) -> Runner:
    """Load an "onnx" (model.onnx) or "ort" (model.ort) model directory as a Runner (ONNX Runtime, CPU).

    Labels, window and graph are checked as the torch-free runtime checks them
    (`ndogo.deploy.runtime`), so both paths refuse the same damaged bundle, naming the file.
    """
    from transformers import AutoConfig

    from ndogo.deploy.runtime import BundleError, check_graph, read_labels
    from ndogo.models.loading import load_tokenizer, read_json_object, run_window

    kind = meta.get("kind", "onnx")
    file = ORT_FILE if kind == "ort" else ONNX_FILE
    graph = path / file
    if not graph.is_file():
        raise ModelError(f"{path}: kind {kind!r} but no {file}")
    tokenizer = load_tokenizer(path)
    has_config = (path / "config.json").is_file()
    config = AutoConfig.from_pretrained(path, trust_remote_code=False) if has_config else None
    try:
        labels, label_file = read_labels(path, meta, read_json_object(path / "config.json") if has_config else {})
    except BundleError as err:
        raise ModelError(str(err)) from None
    max_length = run_window(path, meta, tokenizer, config)
    sess = session(graph)
    probe = tokenizer("a")["input_ids"]
    try:
        check_graph(sess, graph, labels, label_file, probe)
    except BundleError as err:
        raise ModelError(str(err)) from None
    return Runner(path=path, kind=kind, tokenizer=tokenizer, labels=labels, max_length=max_length,
                  forward=onnx_forward(sess), module=None, meta=meta)


def export_ort(run: str | Path, out: str | Path, platform: str = "arm",
               tolerance: float = EXPORT_TOLERANCE) -> Path:
    """Convert an ONNX model directory (exported or int8) to ONNX Runtime's mobile format, `model.ort`.

    The conversion is onnxruntime's own tool (`onnxruntime.tools.convert_onnx_models_to_ort`,
    "fixed" optimization style): the graph is optimized once, for `platform` ("arm" for
    phones, the default, or "amd64"), and saved as a flatbuffer that ONNX Runtime Mobile and
    minimal builds load without parsing protobuf. Its list of operators (the file a minimal
    build is configured with) is kept beside it as `required_operators.config`.

    The result is checked against the ONNX model on a padded batch; a larger logit
    difference than `tolerance` raises ModelError instead of saving a wrong model.

    Example:
        >>> export_ort("runs/quantize/hau-onnx-int8", "runs/export/hau-int8-ort")
    """
    from onnxruntime.tools.convert_onnx_models_to_ort import OptimizationStyle, convert_onnx_models_to_ort

    from ndogo.models.loading import read_meta

    run, out = Path(run), Path(out)
    meta = read_meta(run)
    if meta.get("kind") != "onnx" or not (run / ONNX_FILE).is_file():
        raise ModelError(f"{run}: not an ONNX model directory (kind {meta.get('kind', 'hf')!r}); export it first "
                         "(ndogo export --format onnx) or quantize it (ndogo quantize --method onnx-int8)")
    if platform not in ("arm", "amd64"):
        raise ValueError(f"platform {platform!r}: use arm or amd64")
    _refuse_4bit_tensors(run / ONNX_FILE)
    with tempfile.TemporaryDirectory() as tmp, warnings.catch_warnings():
        warnings.simplefilter("ignore")
        src = Path(tmp) / "src"
        src.mkdir()
        shutil.copyfile(run / ONNX_FILE, src / ONNX_FILE)
        converted = Path(tmp) / "ort"
        # The converter prints a line per step and logs INFO on its own logger; the result is checked below.
        logging.getLogger("ort_format_model.utils").setLevel(logging.WARNING)
        with contextlib.redirect_stdout(io.StringIO()):
            convert_onnx_models_to_ort(src, output_dir=converted, optimization_styles=[OptimizationStyle.Fixed],
                                       target_platform=platform)
        ort_file = converted / ORT_FILE
        if not ort_file.is_file():
            raise ModelError(f"{run}: onnxruntime's converter wrote no {ORT_FILE}")
        batch = {k: v.numpy() for k, v in _check_batch(int(_vocab_size(run))).items()}
        ref, got = (session(p, threads=1).run(["logits"], batch)[0] for p in (run / ONNX_FILE, ort_file))
        keep = batch["attention_mask"].astype(bool)
        diff = float(np.abs(got - ref)[keep].max())
        if diff > tolerance:
            raise ModelError(f"{run}: the .ort model differs from the ONNX model by {diff:.2g} in logits "
                             f"(tolerance {tolerance:g}); not saved")
        out.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(ort_file, out / ORT_FILE)
        configs = sorted(converted.glob("*.config"))
        if configs:
            shutil.copyfile(configs[0], out / "required_operators.config")
    for item in run.iterdir():
        # not the source's README.md: a card describes the model it sits beside, and this is another file
        if item.is_file() and item.name not in (ONNX_FILE, "ndogo.json", "README.md") and item.suffix != ".config":
            shutil.copyfile(item, out / item.name)
    write_meta(out, {**{k: v for k, v in meta.items() if k not in ("stage", "source", "source_kind")},
                     "kind": "ort", "stage": "export", "source": str(run), "source_kind": "onnx",
                     "ort_platform": platform, "export_max_abs_diff": diff})
    return out


def _refuse_4bit_tensors(graph: Path) -> None:
    """The .ort format has no INT4/UINT4 tensor type (onnx-int4's embedding tables): say so before converting."""
    import onnx

    four = (onnx.TensorProto.INT4, onnx.TensorProto.UINT4)
    names = [t.name for t in onnx.load(str(graph), load_external_data=False).graph.initializer if t.data_type in four]
    if names:
        raise ModelError(f"{graph}: {len(names)} 4-bit tensors (e.g. {names[0]}), which ONNX Runtime's .ort format "
                         "cannot store; quantize with `--method onnx-int4 --embeddings int8` for an .ort model")


def _vocab_size(run: Path) -> int:
    """Vocabulary size for the check batch: the config's, else the tokenizer's."""
    import json

    config = run / "config.json"
    if config.is_file():
        size = json.loads(config.read_text(encoding="utf-8")).get("vocab_size")
        if size:
            return int(size)
    from ndogo.models.loading import load_tokenizer

    return len(load_tokenizer(run))


register_kind("onnx", load_onnx)
register_kind("ort", load_onnx)
