"""`ndogo pretrain` and `ndogo distill`: build a small encoder from raw text, or a smaller student from a teacher."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer


def _ints(text: str | None, what: str) -> list[int] | None:
    if not text:
        return None
    try:
        return [int(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise ValueError(f"{what}: expected comma-separated integers, got {text!r}") from None


def register(app: typer.Typer) -> None:
    """Add `pretrain` and `distill` to the `ndogo` app."""
    from ndogo.cli import quiet_libraries, split_langs, user_errors

    @app.command()
    @user_errors
    def pretrain(
        corpus: Annotated[Path, typer.Option(help="Folder of raw text, one <lang>.txt per language, a sentence or paragraph a line.")],
        out: Annotated[Path, typer.Option(help="Where the model (safetensors + tokenizer), metrics.json and a checkpoint go.")],
        layers: Annotated[int, typer.Option(min=1, help="Transformer layers.")] = 4,
        hidden: Annotated[int, typer.Option(min=8, help="Hidden size (a multiple of --heads).")] = 256,
        heads: Annotated[int, typer.Option(min=1, help="Attention heads.")] = 4,
        intermediate: Annotated[int | None, typer.Option(min=1, help="FFN width; default 4 × hidden.")] = None,
        vocab_size: Annotated[int, typer.Option(min=100, help="Unigram vocabulary size (tokenizer trained on the corpus).")] = 25000,
        seq_len: Annotated[int, typer.Option(min=8, help="Packed block length in sub-words; also the fine-tuning window.")] = 128,
        alpha: Annotated[float, typer.Option(help="Language sampling p_i ∝ q_i^alpha (q_i: share of tokens); 1 = by size, smaller evens them out.")] = 0.3,
        max_steps: Annotated[int, typer.Option(min=1, help="Optimizer steps.")] = 10000,
        batch_size: Annotated[int, typer.Option(min=1, help="Blocks per optimizer step.")] = 32,
        grad_accum: Annotated[int, typer.Option(min=1, help="Split each step's batch into this many micro-batches (less memory).")] = 1,
        lr: Annotated[float, typer.Option(help="Peak AdamW learning rate (6% warm-up, then linear decay).")] = 5e-4,
        mask_prob: Annotated[float, typer.Option(help="Share of sub-words masked.")] = 0.15,
        precision: Annotated[str, typer.Option(help="auto (bf16 where the CPU has native bf16), bf16 or fp32.")] = "auto",
        save_every: Annotated[int, typer.Option(min=1, help="Checkpoint (and held-out loss) every this many steps.")] = 500,
        log_every: Annotated[int, typer.Option(min=1, help="A point of the training-loss curve (metrics.json) every this many steps.")] = 50,
        seed: Annotated[int, typer.Option()] = 42,
        threads: Annotated[int | None, typer.Option(min=1, help="CPU threads (default: all cores).")] = None,
        exclude_eval: Annotated[list[Path] | None, typer.Option(help="A NER corpus folder (repeatable) whose dev and test sentences are dropped from the raw text, so that fine-tuned test F1 is on text the model never read.")] = None,
    ) -> None:
        """Pretrain a small XLM-R-style encoder from scratch: Unigram tokenizer, then masked-LM training.

        Languages are sampled as in AfriBERTa (exponential smoothing, alpha 0.3), sentences
        are packed into fixed-length blocks, and the loss is computed only at masked
        positions. Interrupted? Run the same command again: it resumes from <out>/checkpoint
        and reaches the same weights. The result fine-tunes like any hub model.

        Example:
          ndogo pretrain --corpus ../shared/data/monolingual --exclude-eval ../shared/data/masakhaner --out runs/pretrain/mini --layers 4 --hidden 256 --heads 4 --max-steps 8000
          ndogo finetune --model runs/pretrain/mini --data ../shared/data/masakhaner --lang hau --out runs/pretrain/mini-hau
        """
        quiet_libraries()
        from ndogo.train.pretrain import PretrainConfig
        from ndogo.train.pretrain import pretrain as run_pretrain

        cfg = PretrainConfig(corpus=str(corpus), out=str(out), layers=layers, hidden=hidden, heads=heads,
                             intermediate=intermediate, vocab_size=vocab_size, seq_len=seq_len, alpha=alpha,
                             max_steps=max_steps, batch_size=batch_size, grad_accum=grad_accum, lr=lr,
                             mask_prob=mask_prob, precision=precision, save_every=save_every,
                             eval_every=save_every, log_every=log_every, seed=seed, threads=threads,
                             exclude_eval=[str(p) for p in exclude_eval or []])
        m = run_pretrain(cfg)
        if m.get("eval_lines_dropped"):
            typer.echo("raw-text lines holding a dev/test sentence, left out: "
                       + ", ".join(f"{k} {v}" for k, v in m["eval_lines_dropped"].items() if v))
        typer.echo(f"{m['params']:,} parameters, {m['steps']} steps, {m['tokens_per_s']:.0f} tokens/s ({m['precision']}); "
                   f"held-out MLM loss {m['final_eval_loss']}; saved in {out}")

    @app.command()
    @user_errors
    def distill(
        teacher: Annotated[str, typer.Option(help="Teacher: a pretrained encoder (agnostic) or a fine-tuned NER run (task); directory or `minilm`.")],
        out: Annotated[Path, typer.Option(help="Where the student is saved.")],
        mode: Annotated[str, typer.Option(help="agnostic: distil the masked-LM on raw text (then `ndogo finetune` it); task: distil the NER model on NER data.")] = "task",
        student_layers: Annotated[int | None, typer.Option(min=1, help="Student depth K; starts from every other teacher layer (i·N/K: 6→3 keeps 0,2,4).")] = None,
        layer_map: Annotated[str | None, typer.Option(help="Exactly these teacher layers, e.g. 0,2,4 (instead of --student-layers).")] = None,
        student_hidden: Annotated[int | None, typer.Option(min=1, help="Narrower student: keep this many hidden channels (a multiple of the head size), chosen by activation.")] = None,
        corpus: Annotated[Path | None, typer.Option(help="agnostic: folder of raw text, one <lang>.txt per language.")] = None,
        exclude_eval: Annotated[list[Path] | None, typer.Option(help="agnostic: a NER corpus folder (repeatable) whose dev and test sentences are dropped from --corpus.")] = None,
        data: Annotated[str | None, typer.Option(help="task: MasakhaNER-layout folder or hub corpus; default $NDOGO_DATA or `masakhaner`.")] = None,
        lang: Annotated[str | None, typer.Option(help="task: the teacher's language(s), comma-separated.")] = None,
        max_steps: Annotated[int | None, typer.Option(min=1, help="agnostic: optimizer steps (default 2000); task: overrides --epochs.")] = None,
        epochs: Annotated[int, typer.Option(min=1, help="task: epochs (best dev F1 kept).")] = 10,
        unlabeled: Annotated[list[Path] | None, typer.Option(help="task: raw in-language text the teacher labels as extra training sentences (a text file, or a folder of <lang>.txt; repeatable). Lines holding a dev or test sentence of --data (and of --exclude-eval) are dropped first; labels are cached in OUT/teacher-labels.jsonl.")] = None,
        unlabeled_limit: Annotated[int | None, typer.Option(min=1, help="task: at most this many teacher-labelled sentences (in file order, shared among the languages).")] = None,
        seq_len: Annotated[int, typer.Option(min=8, help="agnostic: packed block length.")] = 128,
        temperature: Annotated[float, typer.Option(help="Softmax temperature of the soft targets.")] = 2.0,
        soft_weight: Annotated[float | None, typer.Option(help="Weight of the soft-target KL (default agnostic 5, task 0.5).")] = None,
        hard_weight: Annotated[float | None, typer.Option(help="Weight of the MLM / gold-label loss (default agnostic 2, task 0.5).")] = None,
        cos_weight: Annotated[float | None, typer.Option(help="Weight of the hidden-state cosine loss (default agnostic 1, task 0).")] = None,
        hidden_weight: Annotated[float, typer.Option(min=0, help="task: weight of the MSE between each student layer's hidden states and its mapped teacher layer's (TinyBERT; 0 = off).")] = 0.0,
        attention_weight: Annotated[float, typer.Option(min=0, help="task: weight of the KL between mapped layers' head-averaged attention distributions (0 = off; runs attention eagerly).")] = 0.0,
        lr: Annotated[float | None, typer.Option(help="Peak learning rate (default agnostic 5e-4, task 1e-4).")] = None,
        batch_size: Annotated[int | None, typer.Option(min=1, help="Blocks (agnostic, default 32) or windows (task, default 16) per step.")] = None,
        precision: Annotated[str, typer.Option(help="agnostic: auto, bf16 or fp32.")] = "auto",
        save_every: Annotated[int, typer.Option(min=1, help="Checkpoint every this many steps.")] = 200,
        seed: Annotated[int, typer.Option()] = 42,
        threads: Annotated[int | None, typer.Option(min=1, help="CPU threads (default: all cores).")] = None,
    ) -> None:
        """Distil a teacher into a smaller student initialised from the teacher's own layers.

        task: the student imitates a fine-tuned NER teacher's label distribution (KL at
        temperature T) and the gold labels, on the NER training data; dev F1 picks the epoch.
        agnostic: the student imitates a pretrained encoder on raw text (KL on its masked-LM
        distribution, own MLM loss, hidden-state cosine); fine-tune it afterwards.
        The student's ndogo.json records the teacher, both parameter counts and sizes, the
        shape, route, losses, data and seed. Rerunning the same command resumes.

        Examples:
          ndogo distill --teacher runs/minilm-hau --mode task --student-layers 3 --data ../shared/data/masakhaner --lang hau --out runs/distill/hau-6to3
          ndogo distill --teacher runs/minilm-hau --mode task --student-layers 3 --data ../shared/data/masakhaner --lang hau --unlabeled ../shared/data/monolingual --unlabeled-limit 20000 --out runs/distill/hau-6to3-aug
          ndogo distill --teacher minilm --mode agnostic --student-layers 3 --corpus ../shared/data/monolingual --exclude-eval ../shared/data/masakhaner --max-steps 3000 --out runs/distill/minilm-l3
          ndogo finetune --model runs/distill/minilm-l3 --data ../shared/data/masakhaner --lang hau --out runs/distill/minilm-l3-hau
        """
        quiet_libraries()
        from ndogo.compress.distill import DistillConfig
        from ndogo.compress.distill import distill as run_distill
        from ndogo.models.loading import read_meta

        cfg = DistillConfig(mode=mode, student_layers=student_layers, layer_map=_ints(layer_map, "--layer-map"),
                            student_hidden=student_hidden, corpus=str(corpus) if corpus else None, seq_len=seq_len,
                            max_steps=max_steps, data=data, langs=split_langs(lang) if lang else [], epochs=epochs,
                            temperature=temperature, soft_weight=soft_weight, hard_weight=hard_weight,
                            cos_weight=cos_weight, hidden_weight=hidden_weight, attention_weight=attention_weight, lr=lr, batch_size=batch_size, seed=seed, save_every=save_every,
                            precision=precision, threads=threads, exclude_eval=[str(p) for p in exclude_eval or []],
                            unlabeled=[str(p) for p in unlabeled or []], unlabeled_limit=unlabeled_limit)
        meta = read_meta(run_distill(teacher, out, cfg))
        shape = meta["student_shape"]
        typer.echo(f"{mode} student {shape['layers']}L/{shape['hidden']}H from {teacher}: {meta['student_params']:,} "
                   f"parameters ({meta['param_reduction']:.1%} fewer than the teacher's {meta['teacher_params']:,}), "
                   f"{meta['size_bytes'] / 2**20:.1f} MiB; saved in {out}")
