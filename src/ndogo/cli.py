"""The `ndogo` command line. Each command is a thin layer over the Python API.

Errors a user can fix (a bad data line, a missing model, misaligned files) are
printed as one line naming the file and line, with exit code 2, never a traceback.
"""

from __future__ import annotations

import json
import sys
from functools import wraps
from pathlib import Path
from typing import Annotated, Any

import typer
from typer import _click as click
from typer.core import TyperGroup

from ndogo.console import quiet_imports, quiet_libraries

quiet_imports()

def keep_examples(text: str | None) -> str | None:
    """Help text whose example paragraphs (those holding an `ndogo ...` command) are printed as written.

    Click rewraps every paragraph to the terminal, which splits a command line at its hyphens
    (`atlas-` / `seeds.csv`); a paragraph after a line of "\\b" is left as it is, so it can be copied.
    """
    if not text:
        return text
    paragraphs = text.split("\n\n")
    for i, par in enumerate(paragraphs):
        lines = par.strip("\n").splitlines()
        if lines and lines[0].strip() != "\b" and any(
                line.strip().startswith("ndogo ") or ": ndogo " in line for line in lines):
            paragraphs[i] = "\b\n" + par.strip("\n")
    return "\n\n".join(paragraphs)


class Group(TyperGroup):
    """ndogo's command group: usage errors as one `error:` line, help that is never cut off.

    Help is Click's plain layout (rich_markup_mode=None): rich's option table, squeezed into
    80 columns, cut option names short (`--max-train-sent…`) and read `[models.X]` in help
    texts as markup. Click wraps instead, and never truncates.
    """

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        for command in self.commands.values():
            command.help = keep_examples(command.help)

    def main(self, *args: Any, standalone_mode: bool = True, **kwargs: Any) -> Any:
        """Click's standalone handling, with a usage error (a missing option, a bad value) as one line."""
        if not standalone_mode:
            return super().main(*args, standalone_mode=False, **kwargs)
        try:
            code = super().main(*args, standalone_mode=False, **kwargs)
        except click.exceptions.NoArgsIsHelpError as err:
            err.show()  # the help, as Click shows it
            sys.exit(err.exit_code)
        except click.exceptions.UsageError as err:
            where = f" (see `{err.ctx.command_path} --help`)" if err.ctx is not None else ""
            typer.echo(f"error: {err.format_message()}{where}", err=True)
            sys.exit(err.exit_code)
        except click.exceptions.ClickException as err:
            typer.echo(f"error: {err.format_message()}", err=True)
            sys.exit(err.exit_code)
        except click.exceptions.Abort:
            typer.echo("aborted", err=True)
            sys.exit(1)
        sys.exit(code if isinstance(code, int) else 0)  # (not standalone, Click returns an Exit's code)


app = typer.Typer(
    help="ndogo: make small-data African NER models smaller and faster, and measure what it costs.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
    cls=Group,
)
data_app = typer.Typer(help="Inspect corpora.", no_args_is_help=True, rich_markup_mode=None, cls=Group)


def _version(value: bool) -> None:
    if value:
        from ndogo import __version__

        typer.echo(f"ndogo {__version__}")
        raise typer.Exit()


@app.callback()
def _main(
    version: Annotated[bool, typer.Option("--version", callback=_version, is_eager=True,
                                          help="Print ndogo's version and exit.")] = False,
) -> None:
    """ndogo: make small-data African NER models smaller and faster, and measure what it costs."""
    quiet_libraries()  # every command: third-party noise stays off the terminal
app.add_typer(data_app, name="data")


def user_errors(fn: Any) -> Any:
    """Turn the errors a user can fix into one clear line and exit code 2."""

    @wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        from ndogo.data.conll import DataError
        from ndogo.metrics.entity import AlignmentError
        from ndogo.models.loading import ModelError

        try:
            return fn(*args, **kwargs)
        except KeyboardInterrupt as err:
            # Training saves a checkpoint first and says where (TrainingInterrupted); anything else just stops.
            typer.echo(f"interrupted: {err}" if str(err) else "interrupted", err=True)
            raise typer.Exit(130) from None
        except (DataError, AlignmentError, ModelError, FileNotFoundError, ValueError) as err:
            typer.echo(f"error: {os_error_line(err) if isinstance(err, OSError) else err}", err=True)
            raise typer.Exit(2) from None
        except OSError as err:
            # A path the user gave that is a folder, unreadable, or not a folder: say which,
            # without a traceback. OSErrors with no path are not the user's input; let them show.
            if err.filename is None:
                raise
            typer.echo(f"error: {os_error_line(err)}", err=True)
            raise typer.Exit(2) from None

    return wrapper


def os_error_line(err: OSError) -> str:
    """`path: reason` for an OSError about a path (Python's own wording repeats the errno)."""
    if err.filename is None or not err.strerror:
        return str(err)
    return f"{err.filename}: {err.strerror.lower()}"


def refuse_used_out(out: Path) -> None:
    """Refuse an --out that already holds files, before any work.

    Stages that write a model into a folder do not clear it first: another model's
    weights left there would be counted in size_bytes and could even be loaded in place
    of the new one (a sparse file beside a dense one), and the source model itself
    would be overwritten if named as --out.
    """
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise ValueError(f"{out}: already exists and is not empty; choose a new output directory")


def emit(result: dict[str, Any], as_json: bool, table: Any = None) -> None:
    """Print JSON on stdout, or a rich table for people."""
    if as_json or table is None:
        typer.echo(json.dumps(result, indent=2, ensure_ascii=False))
    else:
        from rich.console import Console

        Console().print(table)


def split_langs(lang: str) -> list[str]:
    """Language codes of a comma-separated `--lang`; none at all is an error, not an empty run."""
    langs = [x.strip() for x in lang.split(",") if x.strip()]
    if not langs:
        raise ValueError(f"--lang {lang!r}: give at least one language code, e.g. hau or hau,yor")
    return langs


@data_app.command("stats")
@user_errors
def data_stats(
    directory: Annotated[Path, typer.Argument(help="A corpus root (<root>/<lang>/{train,dev,test}.txt) or one language folder.")],
    lang: Annotated[str | None, typer.Option(help="Only these languages, comma-separated.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
    tokenizer: Annotated[list[str] | None, typer.Option(help="Also how this model's tokenizer reads each language (repeatable; `minilm`, `me5s`, a directory or hub id): sub-words per word on train and test, and the share of test sub-words never seen in train.")] = None,
    trimmed: Annotated[Path | None, typer.Option(help="A vocabulary-trimmed model (ndogo trim-vocab): the share of test words its tokenizer splits differently from its parent's.")] = None,
) -> None:
    """Sentences, tokens and entities by type per language and split, and every problem found.

    Run it before training on a new corpus: it lists every problem at once (file:line), where
    training stops at the first. Exit code 2 if a file cannot be read at all.

    Example: ndogo data stats ../shared/data/masakhaner --lang hau,yor
    """
    from rich.table import Table

    from ndogo.data.stats import directory_stats

    directory = directory.expanduser()
    langs = split_langs(lang) if lang else None
    if langs is None and any((directory / f"{s}.txt").is_file() for s in ("train", "dev", "test")):
        directory, langs = directory.parent, [directory.name]
    if directory.is_file() and (tokenizer or trimmed):
        raise ValueError(f"{directory}: --tokenizer and --trimmed read a corpus folder (train and test), not one file")
    stats = directory_stats(directory, langs)
    if tokenizer or trimmed:
        add_tokenizer_facts(stats, directory, tokenizer or [], trimmed)
    table = Table(title=f"{directory}")
    for col in ("lang", "split", "sentences", "tokens", "entities", "by type"):
        table.add_column(col, justify="right" if col in ("sentences", "tokens", "entities") else "left")
    for lg, entry in stats.items():
        for split, st in entry["splits"].items():
            by_type = " ".join(f"{k}:{v}" for k, v in st["by_type"].items())
            table.add_row(lg, split, str(st["sentences"]), str(st["tokens"]), str(st["entities"]), by_type)
    emit(stats, as_json, table)
    if not as_json and (tokenizer or trimmed):
        facts = Table(title="how the tokenizers read each language (test split)")
        for col in ("lang", "tokenizer", "sub-words/word train", "test", "unseen sub-words", "re-split by trim"):
            facts.add_column(col, justify="left" if col in ("lang", "tokenizer") else "right")
        for lg, entry in stats.items():
            for name, f in entry.get("tokenizers", {}).items():
                facts.add_row(lg, name, f"{f['fertility_train']:.3f}", f"{f['fertility_test']:.3f}",
                              f"{100 * f['unseen_subwords_test']:.2f}%",
                              f"{100 * f['resplit_test']:.2f}%" if "resplit_test" in f else "")
        from rich.console import Console

        Console().print(facts)
    if not as_json:
        problems = [p for entry in stats.values() for p in entry["problems"]]
        schemes = {f"{lg}/{s}": sc for lg, e in stats.items() for s, sc in e["schemes"].items() if sc != "IOB2"}
        for name, sc in schemes.items():
            typer.echo(f"note: {name} is {sc}; read as IOB2")
        typer.echo(f"{len(problems)} problem(s)" + (":" if problems else ""))
        for p in problems:
            typer.echo(f"  {p}")
    unreadable = [f for entry in stats.values() for f in entry["unreadable"]]
    if unreadable:
        # Exit 2, as every other command does on these files, so scripts and CI can check a corpus.
        typer.echo(f"error: {len(unreadable)} file(s) cannot be read: {', '.join(unreadable)}", err=True)
        raise typer.Exit(2)


def add_tokenizer_facts(stats: dict[str, Any], root: Path, names: list[str], trimmed: Path | None) -> None:
    """Per language and tokenizer: fertility, unseen sub-words, and (for a trimmed model) re-split words."""
    quiet_libraries()
    from ndogo.data.corpus import load_local
    from ndogo.data.tokenization import resplit_share, tokenizer_facts
    from ndogo.models.loading import load_tokenizer, read_meta

    tokenizers = {name: load_tokenizer(name) for name in names}
    parent = None
    if trimmed is not None:
        base = read_meta(trimmed).get("parent")
        if not base:
            raise ValueError(f"{trimmed}: not a trimmed model (its ndogo.json names no parent)")
        parent = (str(trimmed), load_tokenizer(base), load_tokenizer(trimmed))
    for lang, entry in stats.items():
        corpus = load_local(root, lang, ("train", "test"))
        train = [s.tokens for s in corpus.splits.get("train", [])]
        test = [s.tokens for s in corpus.splits.get("test", [])]
        facts = entry.setdefault("tokenizers", {})
        for name, tok in tokenizers.items():
            facts[name] = tokenizer_facts(tok, train, test)
        if parent is not None:
            name, before, after = parent
            facts[name] = {**tokenizer_facts(after, train, test), "resplit_test": resplit_share(before, after, test)}


@app.command()
@user_errors
def score(
    gold: Annotated[Path, typer.Argument(help="Gold CoNLL file (`token TAG` per line).")],
    pred: Annotated[Path, typer.Argument(help="Predictions, `token predicted_tag` per line, same sentences.")],
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
    pred_column: Annotated[int | None, typer.Option(min=2, help="Column of the predicted tag (1 is the token) in a predictions file with more than two columns, e.g. 2 for `token PRED GOLD`. Without it such a file is refused.")] = None,
) -> None:
    """Entity-level precision, recall and F1 (seqeval default mode, as MasakhaNER reports).

    Scores any system's output, not only ndogo's, so numbers compare with published ones.
    The files must hold the same sentences and tokens; the first difference is named.

    Example (predictions from ndogo, then scored):

      ndogo predict runs/minilm-hau -i ../shared/data/masakhaner/hau/test.txt --input-format conll --format conll > pred.txt

      ndogo score ../shared/data/masakhaner/hau/test.txt pred.txt --json
    """
    from rich.table import Table

    from ndogo.data.conll import DataError, read_conll, read_predictions
    from ndogo.metrics.entity import AlignmentError, score_sentences

    gold_sentences = read_conll(gold).sentences
    if not gold_sentences:
        # F1 0.0 would read as "the system found nothing", not "there was nothing to find"
        raise DataError(gold, None, "no sentences in this file")
    try:
        result = score_sentences(gold_sentences, read_predictions(pred, pred_column))
    except AlignmentError as err:
        # Name both files: the message alone says which sentence, not of which pair.
        raise AlignmentError(f"{pred} does not match {gold}: {err}") from None
    table = Table(title=f"{pred} against {gold}")
    for col in ("type", "precision", "recall", "f1", "support"):
        table.add_column(col, justify="left" if col == "type" else "right")
    for name, v in result["per_type"].items():
        table.add_row(name, f"{v['precision']:.4f}", f"{v['recall']:.4f}", f"{v['f1']:.4f}", str(v["support"]))
    table.add_row("[b]all[/b]", f"{result['precision']:.4f}", f"{result['recall']:.4f}", f"{result['f1']:.4f}", "")
    emit(result, as_json, table)


FINETUNE_DOC = """Fine-tune an encoder for NER; resumes from <out>/checkpoint if a run was interrupted.

Every option is a field of the fine-tuning config (ndogo.train.config), the same one a
recipe's `finetune:...` stage and a sweep's [models.X] finetune table take.

Example: ndogo finetune --model minilm --data ../shared/data/masakhaner --lang hau --out runs/hau

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
    typer.echo(f"best dev F1 {metrics['best_dev_f1']:.4f} at epoch {metrics['best_epoch']}; "
               f"model saved in {cfg.out} ({metrics['train_seconds']:.0f}s training)")


def _register_finetune() -> None:
    from ndogo.commands._options import config_options, with_signature
    from ndogo.train.config import FinetuneStageConfig

    command = with_signature(_finetune, "finetune", FINETUNE_DOC, [],
                             config_options(FinetuneStageConfig, skip=("extra",)))
    app.command("finetune")(user_errors(command))


_register_finetune()


@app.command()
@user_errors
def evaluate(
    run: Annotated[Path, typer.Argument(help="A saved model directory (any kind ndogo saves).")],
    lang: Annotated[str, typer.Option(help="Language code to evaluate on (zero-shot if the model saw another).")],
    data: Annotated[str | None, typer.Option(help="Local MasakhaNER-layout folder or hub corpus; default $NDOGO_DATA or `masakhaner`.")] = None,
    split: Annotated[str, typer.Option(help="train, dev or test.")] = "test",
    batch_size: Annotated[int, typer.Option(min=1, help="Batch size for scoring.")] = 32,
    speed: Annotated[bool, typer.Option(help="Measure latency and throughput (--no-speed to skip).")] = True,
    threads: Annotated[int | None, typer.Option(min=1, help="CPU threads (default: all cores).")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
    device: Annotated[str, typer.Option(help="auto (CUDA when present and the model's kind runs there, else the "
                                        "CPU; $NDOGO_DEVICE overrides), cpu, cuda or cuda:N.")] = "auto",
) -> None:
    """F1 (overall and per type), parameters, size on disk, peak memory, latency and throughput.

    Reports and sweeps compare models on exactly these columns, measured the same way for
    every kind of model ndogo saves (dense, pruned, quantized, trimmed, ONNX).

    sparsity is the share of zeros in the whole model (embeddings and head too);
    sparsity_encoder_linear is the share among the encoder's Linear weights, the set
    `ndogo prune` prunes and reports (0.6 there is about 0.28 of minilm as a whole).

    latency_ms_b1 is the median forward time per sentence at batch 1 over the first 200
    sentences (after warm-up, 3 repeats); latency_e2e_ms_b1, raw sentence to entities, is timed
    in the same pass, each sentence right after its forward pass (should it come out below
    latency_ms_b1, the machine's load changed: timed again, then refused); throughput_b32 is
    sentences/s at batch 32.
    The row is also saved as <run>/evals/<lang>-<split>.json (not in a bundle from `ndogo ship`).

    Example: ndogo evaluate runs/minilm-hau --data ../shared/data/masakhaner --lang hau --json
    """
    quiet_libraries()
    from rich.table import Table

    from ndogo.evaluate import evaluate as run_evaluate
    from ndogo.evaluate import save_eval

    result = run_evaluate(run, data, lang, split, batch_size, speed, threads, show_progress=not as_json,
                          device=device)
    if save_eval(run, result) is None:
        typer.echo(f"note: the row is not saved in {run}: a shipped bundle holds only the files inference reads",
                   err=True)
    table = Table(title=f"{run} on {lang}/{split}")
    table.add_column("metric")
    table.add_column("value", justify="right")
    for key, value in result.items():
        if key != "per_type":
            table.add_row(key, f"{value:.4f}" if isinstance(value, float) else str(value))
    for name, v in result["per_type"].items():
        table.add_row(f"f1 {name}", f"{v['f1']:.4f}")
    emit(result, as_json, table)


from ndogo.commands import register_all  # noqa: E402  (the stages' commands need `app`)

register_all(app)


def main() -> None:
    """Entry point for `python -m ndogo`."""
    app()


if __name__ == "__main__":
    sys.exit(main())
