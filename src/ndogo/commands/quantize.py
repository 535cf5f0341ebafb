"""`ndogo quantize`: post-training quantization of a saved model (see ndogo.compress.quantize).

The methods and their options come from the method registry: a method added as one file
under compress/quantize/ appears here, with its options, without touching this file.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

INTRO = """Quantize a model after training and save it; then measure it with `ndogo evaluate`.

The output keeps int8/int4 tensors and their scales on disk (safetensors or ONNX), so its size on disk is what the bit width implies.

Methods (--method), each with its own options:

{methods}

Examples:

  ndogo quantize runs/minilm-hau --method onnx-int8 --out runs/quantize/hau-onnx-int8

  ndogo quantize runs/minilm-hau --method llm-int8 --threshold 6 --out runs/quantize/hau-llm-int8

  ndogo quantize runs/minilm-hau --method onnx-int4 --block-size 32 --out runs/quantize/hau-onnx-int4

  ndogo quantize runs/minilm-hau --method onnx-int8-static --data ../shared/data/masakhaner --out runs/quantize/hau-static

  ndogo evaluate runs/quantize/hau-onnx-int8 --data ../shared/data/masakhaner --lang hau
"""


def _fixed(
    run: Annotated[Path, typer.Argument(help="A saved fp32 model directory (e.g. runs/minilm-hau).")],
    method: Annotated[str, typer.Option(help="The quantization method (listed above, with its options).")],
    out: Annotated[Path, typer.Option(help="New directory for the quantized model (reloadable by every ndogo command).")],
    threads: Annotated[int | None, typer.Option(min=1, help="CPU threads (default: all cores).")] = None,
) -> None:
    """The hand-written part of the command's signature (the method options are generated)."""


def register(app: typer.Typer) -> None:
    """Add `ndogo quantize` to the CLI, its method options generated from the registry."""
    from ndogo.commands._common import quiet_libraries, refuse_used_out, user_errors
    from ndogo.commands._options import build_config, flag, method_options, methods_help, parameters, with_signature
    from ndogo.compress.quantize import QUANTIZE

    methods = [QUANTIZE.get(n) for n in QUANTIZE.names()]
    generated = method_options(methods)
    flags = {f.name: flag(f) for m in methods for f in m.options()}

    def body(run: Path, method: str, out: Path, threads: int | None = None, **options: Any) -> None:
        quiet_libraries()
        try:
            chosen = QUANTIZE.get(method)
        except ValueError as err:
            raise typer.BadParameter(str(err), param_hint="--method") from None
        cfg = build_config(chosen, options, flags)
        refuse_used_out(out)
        import torch

        from ndogo.compress.recipe import run_stage
        from ndogo.models.runner import size_on_disk

        if threads:
            torch.set_num_threads(threads)
        saved = run_stage("quantize", run, out, cfg)
        before, after = size_on_disk(run), size_on_disk(saved)
        typer.echo(f"{method}: saved {saved} ({after / 1e6:.1f} MB on disk, {100 * (1 - after / before):.1f}% "
                   f"smaller than {before / 1e6:.1f} MB)")

    doc = INTRO.format(methods=methods_help(methods, QUANTIZE.base))
    app.command("quantize")(user_errors(with_signature(body, "quantize", doc, parameters(_fixed), generated)))
