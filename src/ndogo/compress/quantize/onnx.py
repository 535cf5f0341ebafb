"""ONNX Runtime int8: export to ONNX, then quantize the graph, run by ONNX Runtime.

- `onnx-int8`: transformer fusions, then dynamic quantization (per-channel int8 weights,
  embeddings included, activations quantized on the fly): the fastest method on CPUs.
- `onnx-int8-static`: the plain graph quantized statically, activation ranges calibrated on
  dev sentences, per-channel weights (QDQ format).

The output is kind `onnx` (ndogo.deploy.onnx), which the torch-free runtime also reads.
"""

from __future__ import annotations

import json
import logging
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ndogo.compress.methods import option
from ndogo.compress.quantize import QUANTIZE, QuantizeConfig

if TYPE_CHECKING:
    from ndogo.models.runner import Runner


def calibration_batches(runner: Runner, cfg: OnnxInt8StaticConfig) -> list[dict[str, Any]]:
    """ONNX Runtime feeds of dev windows (batch 1, unpadded) for static calibration."""
    from ndogo.tasks import task_of_model

    lang = cfg.lang or (runner.meta.get("langs") or [None])[0]
    if not lang:
        raise ValueError("onnx-int8-static needs --lang (the model does not record its language)")
    task = task_of_model(runner.meta)
    corpus = task.load(cfg.data, lang, ("dev",))
    if "dev" not in corpus.splits or not corpus.splits["dev"]:
        raise ValueError(f"{cfg.data}: no dev sentences for {lang} to calibrate on")
    encoded = task.encode(runner.tokenizer, corpus.splits["dev"][: cfg.calib_sentences], runner.max_length)
    return [{k: v.numpy() for k, v in task.collate([e], runner.pad_id, with_labels=False).items()}
            for e in encoded]


def _feeds_reader(feeds: list[dict[str, Any]]) -> Any:
    """An onnxruntime CalibrationDataReader over prepared feeds, with a progress bar."""
    from onnxruntime.quantization import CalibrationDataReader
    from tqdm.auto import tqdm

    class Feeds(CalibrationDataReader):
        def __init__(self) -> None:
            self.it: Iterator[dict[str, Any]] = iter(tqdm(feeds, desc="calibrate", unit="win", leave=False))

        def get_next(self) -> dict[str, Any] | None:
            return next(self.it, None)

        def rewind(self) -> None:
            self.it = iter(feeds)

    return Feeds()


@contextmanager
def _quiet_root_logger() -> Iterator[None]:
    """onnxruntime.quantization logs advice ("consider pre-processing") on the root logger; hide it."""
    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.ERROR)
    try:
        yield
    finally:
        root.setLevel(level)


class OnnxInt8:
    """Export, then ONNX Runtime's dynamic or static quantization of the graph."""

    def __init__(self, static: bool) -> None:
        self.static = static

    def quantize(self, run: Path, out: Path, cfg: QuantizeConfig) -> Path:
        import onnx
        from onnxruntime.quantization import QuantFormat, QuantType, quantize_dynamic, quantize_static

        from ndogo.compress.export import ONNX_FILE, export_onnx, write_onnx_dir
        from ndogo.models.runner import load_runner

        runner = load_runner(run)
        with tempfile.TemporaryDirectory() as tmp, _quiet_root_logger():
            # Dynamic quantization has int8 kernels for ONNX Runtime's fused Attention and
            # EmbedLayerNormalization, so it starts from the fused graph. Static (QDQ)
            # quantization cannot type the fused ops' outputs and would leave them in
            # float, so it starts from the plain graph; ONNX Runtime then fuses each
            # DequantizeLinear→op→QuantizeLinear group into an int8 kernel at load time.
            fp32_dir = export_onnx(run, Path(tmp) / "fp32", optimize=not self.static)
            src, dst = fp32_dir / ONNX_FILE, Path(tmp) / ONNX_FILE
            # Shape inference cannot type the outputs of ONNX Runtime's fused contrib ops; they are float.
            extra = {"DefaultTensorType": onnx.TensorProto.FLOAT}
            if not self.static:
                quantize_dynamic(src, dst, per_channel=True, weight_type=QuantType.QInt8, extra_options=extra)
            else:
                reader = _feeds_reader(calibration_batches(runner, cfg))
                # Only matrix products and the embedding lookups: quantizing every op's output
                # (residual adds, softmax, ...) at calibrated min/max ranges cost 7.4 F1 points
                # on minilm hau (73.4 -> 66.0); MatMul + Gather only, 1.7 points, same size.
                quantize_static(src, dst, reader, quant_format=QuantFormat.QDQ, per_channel=True,
                                op_types_to_quantize=["MatMul", "Gather"], activation_type=QuantType.QUInt8,
                                weight_type=QuantType.QInt8, extra_options=extra)
            fp32_meta = json.loads((fp32_dir / "ndogo.json").read_text())
            return write_onnx_dir(out, runner, dst, {
                "stage": "quantize", "source": str(run), "source_kind": runner.kind,
                "quantization": cfg.record(), "fused_ops": fp32_meta.get("fused_ops", {}),
            })


@QUANTIZE.register("onnx-int8", OnnxInt8(static=False))
@dataclass
class OnnxInt8Config(QuantizeConfig):
    """ONNX Runtime dynamic int8 on the fused graph (per-channel weights, embeddings included)."""


@QUANTIZE.register("onnx-int8-static", OnnxInt8(static=True))
@dataclass
class OnnxInt8StaticConfig(QuantizeConfig):
    """ONNX Runtime static int8 (QDQ), activation ranges calibrated on dev sentences."""

    data: str | None = option(None, help="corpus to calibrate on (<data>/<lang>/dev.txt or .tsv: the "
                                         "model's task's); default $NDOGO_DATA or `masakhaner`")
    lang: str | None = option(None, help="language of the dev sentences; default the model's")
    calib_sentences: int = option(300, min=1, help="dev sentences to calibrate on")
