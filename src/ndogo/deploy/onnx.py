"""The "onnx" and "ort" model kinds: loading an exported graph, and converting it to .ort.

ONNX Runtime is the fastest way we found to run these encoders on a CPU: with its
transformer fusions (one `Attention`, `SkipLayerNormalization`, `BiasGelu` node
per block instead of dozens of small ops) and int8 kernels (VNNI on x86) it
leaves eager PyTorch far behind at batch 1, where framework overhead dominates.

The export itself is `ndogo.compress.export` (a compression stage uses it). The exported directory
is a complete ndogo model: `model.onnx`, the tokenizer,
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

from ndogo.compress.export import EXPORT_TOLERANCE, ONNX_FILE, check_batch, onnx_forward, session
from ndogo.models.loading import ModelError, write_meta
from ndogo.models.runner import Runner, register_kind

ORT_FILE = "model.ort"  # ONNX Runtime's own (flatbuffer) format, for mobile and minimal builds


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
        batch = {k: v.numpy() for k, v in check_batch(int(_vocab_size(run))).items()}
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
