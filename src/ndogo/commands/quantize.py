"""`ndogo quantize`: post-training quantization of a saved model (see ndogo.compress.quantize)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

METHOD_HELP = (
    "fp16 | bf16 | dynamic-int8 (torch, per-tensor, as the study) | torchao-int8 | llm-int8 (bitsandbytes "
    "LLM.int8(), outliers kept in 16-bit) | int4-weight | int8-embed | onnx-int8 (ONNX Runtime dynamic, "
    "per-channel) | onnx-int8-static (calibrated on dev sentences)"
)


def register(app: typer.Typer) -> None:
    """Add `ndogo quantize` to the CLI."""
    from ndogo.cli import quiet_libraries, refuse_used_out, user_errors

    @app.command()
    @user_errors
    def quantize(
        run: Annotated[Path, typer.Argument(help="A saved fp32 model directory (e.g. runs/minilm-hau).")],
        method: Annotated[str, typer.Option(help=METHOD_HELP)],
        out: Annotated[Path, typer.Option(help="New directory for the quantized model (reloadable by every ndogo command).")],
        embeddings: Annotated[str, typer.Option(help="keep | int8: also store embedding tables as int8 per row (torch int8/int4 methods).")] = "keep",
        threshold: Annotated[float, typer.Option(help="llm-int8: |activation| at which a feature column counts as an outlier.")] = 6.0,
        group_size: Annotated[int, typer.Option(min=1, help="int4-weight: weights sharing one scale.")] = 32,
        data: Annotated[str | None, typer.Option(help="onnx-int8-static: corpus to calibrate on (MasakhaNER layout); default $NDOGO_DATA or `masakhaner`.")] = None,
        lang: Annotated[str | None, typer.Option(help="onnx-int8-static: language of the dev sentences; default the model's.")] = None,
        calib_sentences: Annotated[int, typer.Option(min=1, help="onnx-int8-static: dev sentences to calibrate on.")] = 300,
        threads: Annotated[int | None, typer.Option(min=1, help="CPU threads (default: all cores).")] = None,
    ) -> None:
        """Quantize a model after training and save it; then measure it with `ndogo evaluate`.

        The output keeps int8/int4 tensors and their scales on disk (safetensors or ONNX),
        so its size on disk is what the bit width implies.

        Examples:
          ndogo quantize runs/minilm-hau --method onnx-int8 --out runs/quantize/hau-onnx-int8
          ndogo quantize runs/minilm-hau --method llm-int8 --out runs/quantize/hau-llm-int8
          ndogo quantize runs/minilm-hau --method onnx-int8-static --data ../shared/data/masakhaner --out runs/quantize/hau-static
          ndogo evaluate runs/quantize/hau-onnx-int8 --data ../shared/data/masakhaner --lang hau
        """
        quiet_libraries()
        refuse_used_out(out)
        import torch

        from ndogo.compress.quantize import QuantizeConfig
        from ndogo.compress.quantize import quantize as run_quantize
        from ndogo.models.runner import size_on_disk

        if threads:
            torch.set_num_threads(threads)
        cfg = QuantizeConfig(method=method, embeddings=embeddings, threshold=threshold, group_size=group_size,
                             data=data, lang=lang, calib_sentences=calib_sentences)
        saved = run_quantize(run, out, cfg)
        before, after = size_on_disk(run), size_on_disk(saved)
        typer.echo(f"{method}: saved {saved} ({after / 1e6:.1f} MB on disk, {100 * (1 - after / before):.1f}% "
                   f"smaller than {before / 1e6:.1f} MB)")
