"""`ndogo finetune`: fine-tune an encoder for NER, every option a field of the fine-tuning config."""

from __future__ import annotations

from typing import Any

import typer

from ndogo.commands._common import quiet_libraries, user_errors

FINETUNE_DOC = """Fine-tune an encoder on a task's corpus; resumes from <out>/checkpoint if a run was interrupted.

The task comes from --data's files, or --task (MasakhaNER: NER; MasakhaPOS: POS tags; SIB-200: topic;
AfriSenti: sentiment) and decides the head, the metric and what `predict` gives. Every option
is a field of the fine-tuning config (ndogo.train.config), the same one a recipe's
`finetune:...` stage and a sweep's [models.X] finetune table take.

Example: ndogo finetune --model minilm --data ../shared/data/masakhaner --lang hau --out runs/hau

Until dev stops improving: ... --epochs 20 --patience 3 (the best epoch, chosen on dev, is kept)

A topic classifier: ndogo finetune --model minilm --data ../shared/data/sib200 --lang hau_Latn --out runs/topic-hau

Pruned before fine-tuning: ... --out runs/hau-p60 --prune-sparsity 0.6 --prune-schedule gradual
"""


def _finetune(**options: Any) -> None:
    quiet_libraries()
    from ndogo.commands._options import config_from_options
    from ndogo.compress.recipe import plain_finetune, write_header
    from ndogo.train.config import FinetuneStageConfig
    from ndogo.train.finetune import finetune as run_finetune

    stage = config_from_options(FinetuneStageConfig, options, skip=("extra",))
    stage.check()
    cfg, hooks = plain_finetune(stage)
    metrics = run_finetune(cfg, **hooks)
    write_header(cfg.out, "finetune", stage, stage.model)  # the header the chain's finetune stage writes
    typer.echo(f"best dev {metrics['metric']} {metrics['best_dev']:.4f} at epoch {metrics['best_epoch']}; "
               f"model saved in {cfg.out} ({metrics['train_seconds']:.0f}s training)")


def register(app: typer.Typer) -> None:
    """Add `ndogo finetune` to the `ndogo` app, its options generated from FinetuneStageConfig."""
    from ndogo.commands._options import config_options, with_signature
    from ndogo.train.config import FinetuneStageConfig

    command = with_signature(_finetune, "finetune", FINETUNE_DOC, [],
                             config_options(FinetuneStageConfig, skip=("extra",)))
    app.command("finetune")(user_errors(command))
