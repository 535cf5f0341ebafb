"""The export stage: a saved model to ONNX, or an ONNX model to ONNX Runtime's .ort, under the stage contract.

Export is a stage like prune or quantize (`export(run, out, config) -> Path`), so a recipe
may end in `export:format=ort`, the chain keys and resumes it, and `ndogo export` runs the
same function. This module holds the config and no torch: the work is in `deploy/onnx.py`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from ndogo.options import option


@dataclass
class ExportConfig:
    """How to export: the format, ONNX Runtime's fusions, and the CPU an .ort model is optimized for."""

    format: Literal["onnx", "ort"] = option(
        "onnx", choices=("onnx", "ort"),
        help="onnx: ONNX, run by ONNX Runtime; ort: ONNX Runtime's mobile format (from an ONNX model).")
    optimize: bool = option(True, help="onnx: fuse attention, LayerNorm and GELU with ONNX Runtime's "
                                       "transformer optimizer.")
    platform: Literal["arm", "amd64"] = option(
        "arm", choices=("arm", "amd64"), help="ort: the CPU the model is optimized for (arm for phones).")


def export(run: str | Path, out: str | Path, config: ExportConfig) -> Path:
    """Export `run` to `out` in `config.format`; the output is checked against its source before it is saved."""
    from ndogo.compress.export import export_onnx
    from ndogo.deploy.onnx import export_ort

    if config.format == "ort":
        return Path(export_ort(run, out, platform=config.platform))
    return Path(export_onnx(run, out, optimize=config.optimize))
