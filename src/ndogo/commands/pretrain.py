"""`ndogo pretrain`: a small encoder built from raw text (tokenizer, then masked-LM training)."""

from __future__ import annotations

from typing import Any

import typer

from ndogo.commands._common import quiet_libraries, user_errors


def register(app: typer.Typer) -> None:
    """Add `ndogo pretrain` to the `ndogo` app, its options generated from PretrainConfig."""
    from ndogo.commands._options import config_from_options, config_options, with_signature
    from ndogo.train.config import PretrainConfig

    def pretrain(**options: Any) -> None:
        quiet_libraries()
        from ndogo.train.pretrain import pretrain as run_pretrain

        cfg = config_from_options(PretrainConfig, options)
        out = cfg.out
        m = run_pretrain(cfg)
        if m.get("eval_lines_dropped"):
            typer.echo("raw-text lines holding a dev/test sentence, left out: "
                       + ", ".join(f"{k} {v}" for k, v in m["eval_lines_dropped"].items() if v))
        typer.echo(f"{m['params']:,} parameters, {m['steps']} steps, {m['tokens_per_s']:.0f} tokens/s ({m['precision']}); "
                   f"held-out MLM loss {m['final_eval_loss']}; saved in {out}")

    pretrain_doc = """Pretrain a small XLM-R-style encoder from scratch: Unigram tokenizer, then masked-LM training.

Languages are sampled as in AfriBERTa (exponential smoothing, alpha 0.3), sentences
are packed into fixed-length blocks, and the loss is computed only at masked
positions. Interrupted? Run the same command again: it resumes from <out>/checkpoint
and reaches the same weights. The result fine-tunes like any hub model.

Example:
  ndogo pretrain --corpus ../shared/data/monolingual --exclude-eval ../shared/data/masakhaner --out runs/pretrain/mini --layers 4 --hidden 256 --heads 4 --max-steps 8000
  ndogo finetune --model runs/pretrain/mini --data ../shared/data/masakhaner --lang hau --out runs/pretrain/mini-hau
    """
    app.command("pretrain")(user_errors(with_signature(pretrain, "pretrain", pretrain_doc, [],
                                                        config_options(PretrainConfig))))
