"""`ndogo export`: a model to ONNX, or an ONNX model to ONNX Runtime's mobile .ort format."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

import typer

from ndogo.commands._common import quiet_libraries, refuse_used_out, user_errors


def export(
    run: Annotated[Path, typer.Argument(help="onnx: a float model directory (dense, pruned, distilled or trimmed); ort: an ONNX model directory (exported or onnx-int8).")],
    out: Annotated[Path, typer.Option(help="Directory to write: model.onnx (or model.ort), tokenizer, config.json, ndogo.json.")],
    format: Annotated[Literal["onnx", "ort"], typer.Option("--format", help="onnx: ONNX, run by ONNX Runtime; ort: ONNX Runtime's mobile format (from an ONNX model).")] = "onnx",
    optimize: Annotated[bool, typer.Option(help="onnx: fuse attention, LayerNorm and GELU with ONNX Runtime's transformer optimizer.")] = True,
    platform: Annotated[Literal["arm", "amd64"], typer.Option(help="ort: the CPU the model is optimized for (arm for phones).")] = "arm",
) -> None:
    """Export a model to ONNX, or an ONNX model to ONNX Runtime's mobile .ort format, with its tokenizer.

    The ONNX export is checked against PyTorch on a padded batch before it is saved (largest logit difference recorded in ndogo.json). For an int8 ONNX model, quantize instead: `ndogo quantize RUN --method onnx-int8`, which exports and quantizes in one step. `--format ort` converts such a model with onnxruntime's own tool (checked against the ONNX model the same way) and keeps the operator list a minimal ONNX Runtime build needs (required_operators.config). `ndogo evaluate`, `ndogo predict` and `ndogo serve` run both formats.

    Example: ndogo export runs/trim/minilm-hau-trim --format onnx --out runs/trim/minilm-hau-trim-onnx

    Example: ndogo export runs/quantize/hau-onnx-int8 --format ort --out runs/export/hau-int8-ort
    """
    quiet_libraries()
    refuse_used_out(out)
    from ndogo.compress.recipe import run_stage
    from ndogo.deploy.export import ExportConfig
    from ndogo.models.loading import read_meta
    from ndogo.models.runner import size_on_disk

    # the export stage's own config: `ndogo export` and a recipe's `export:format=ort` run the same code
    run_stage("export", run, out, ExportConfig(format=format, optimize=optimize, platform=platform))
    reference = "the ONNX model" if format == "ort" else "PyTorch"
    diff = read_meta(out).get("export_max_abs_diff")
    typer.echo(f"exported {run} to {out} ({format}, {size_on_disk(out) / 1e6:.1f} MB; "
               f"largest logit difference from {reference} {diff:.2g})")


def register(app: typer.Typer) -> None:
    """Add `ndogo export` to the `ndogo` app."""
    app.command("export")(user_errors(export))
