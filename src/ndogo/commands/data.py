"""`ndogo data stats`: what a corpus holds and every problem in it, before any training."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from ndogo.commands._common import Group, emit, quiet_libraries, split_langs, user_errors

data_app = typer.Typer(help="Inspect corpora.", no_args_is_help=True, rich_markup_mode=None, cls=Group)


def data_stats(
    directory: Annotated[Path, typer.Argument(help="A corpus root (<root>/<lang>/{train,dev,test}.txt or .tsv), one language folder, or one split file (read as the task whose reader takes it).")],
    lang: Annotated[str | None, typer.Option(help="Only these languages, comma-separated.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
    tokenizer: Annotated[list[str] | None, typer.Option(help="Also how this model's tokenizer reads each language (repeatable; `minilm`, `me5s`, a directory or hub id): sub-words per word on train and test, and the share of test sub-words never seen in train.")] = None,
    trimmed: Annotated[Path | None, typer.Option(help="A vocabulary-trimmed model (ndogo trim-vocab): the share of test words its tokenizer splits differently from its parent's.")] = None,
    facts: Annotated[bool, typer.Option("--facts", help="The language facts `ndogo report --facts` and the atlas read instead: one row per language and --tokenizer (data size, entity density, the tokenizer's fertility, unseen and unknown test sub-words; with --trim, what the atlas's trimming re-splits).")] = False,
    trim: Annotated[list[str] | None, typer.Option(metavar="MODEL=KEEP", help="With --facts: the share of test words that trimming MODEL's vocabulary to KEEP sub-words (the language's text, then the other languages' in --corpus, as configs/atlas-*.toml trim) splits differently, rebuilt from the tokenizer alone (repeatable), e.g. minilm=9500.")] = None,
    corpus: Annotated[str, typer.Option(help="With --trim: the monolingual folder the trimming counts.")] = "../shared/data/monolingual",
    csv: Annotated[Path | None, typer.Option(help="With --facts: also write the rows here as CSV (what `ndogo report --facts` reads).")] = None,
) -> None:
    """Sentences, tokens and entities by type (POS: tags; topic and sentiment: texts by label) per language
    and split, and every problem found.

    Run it before training on a new corpus: it lists every problem at once (file:line), where
    training stops at the first. Exit code 2 if a file cannot be read at all.

    Example: ndogo data stats ../shared/data/masakhaner --lang hau,yor

    With --facts, the per-language facts the atlas is read against (about 15 s a language and
    tokenizer), as the committed docs/bench/atlas-facts.csv was made:

    Example: ndogo data stats ../shared/data/masakhaner --facts --tokenizer minilm --tokenizer me5s --trim minilm=9500 --trim me5s=16000 --csv docs/bench/atlas-facts.csv
    """
    from rich.table import Table

    from ndogo.data.stats import directory_stats

    directory = directory.expanduser()
    langs = split_langs(lang) if lang else None
    if langs is None and any((directory / f"{s}.{ext}").is_file() for s in ("train", "dev", "test")
                             for ext in _extensions()):
        directory, langs = directory.parent, [directory.name]
    if directory.is_file() and (tokenizer or trimmed or facts):
        raise ValueError(f"{directory}: --tokenizer, --trimmed and --facts read a corpus folder (train and test), "
                         "not one file")
    if (trim or csv) and not facts:
        raise ValueError(f"{'--trim' if trim else '--csv'} goes with --facts (the language facts' rows)")
    if facts:
        language_facts(directory, langs, tokenizer or [], trim or [], corpus, csv, as_json)
        return
    task = _task_of_folder(directory, langs)
    stats = directory_stats(directory, langs, None if task.output == "entities" else task.read_split, task.ext,
                            task.categories)
    if tokenizer or trimmed:
        add_tokenizer_facts(stats, directory, tokenizer or [], trimmed)
    table = Table(title=f"{directory}")
    counted = {"entities": "entities", "tags": "tags", "label": "labels"}[task.output]
    by = "by type" if task.output == "entities" else "by " + counted[:-1]
    for col in ("lang", "split", "sentences", "tokens", counted, by):
        table.add_column(col, justify="right" if col in ("sentences", "tokens", counted) else "left")
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
        schemes = {f"{lg}/{s}": sc for lg, e in stats.items() for s, sc in e["schemes"].items() if sc == "IOB1"}
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


def _extensions() -> list[str]:
    """The split files' extensions of every task (txt, tsv)."""
    from ndogo.tasks import get_task, task_names

    return list(dict.fromkeys(get_task(n).ext for n in task_names()))


def _task_of_file(path: Path) -> Any:
    """The task that reads a file given alone: the first whose reader takes it (NER first), else the first
    task of its extension, whose reader then names the line it refuses (NER where none has the extension)."""
    from ndogo.data.conll import DataError
    from ndogo.tasks import get_task, task_names

    fits = [get_task(n) for n in task_names() if path.suffix == f".{get_task(n).ext}"]
    for task in fits:
        try:
            if task.read_split(path)[0]:
                return task
        except DataError:
            continue
    return fits[0] if fits else get_task(None)


def _task_of_folder(directory: Path, langs: list[str] | None) -> Any:
    """The task whose files the corpus holds (told by its first language's files), NER when none says."""
    from ndogo.data.corpus import SPLITS
    from ndogo.tasks import detect_task, get_task

    if directory.is_file():
        return _task_of_file(directory)
    names = langs or sorted(p.name for p in directory.iterdir()
                            if p.is_dir() and any((p / f"{s}.{x}").is_file() for s in SPLITS for x in ("txt", "tsv")))
    try:
        return detect_task(str(directory), names[0]) if names else get_task(None)
    except ValueError:
        return get_task(None)  # a corpus no task recognises is read as NER, which then names each bad line


def language_facts(root: Path, langs: list[str] | None, tokenizers: list[str], trims: list[str], corpus: str,
                   csv: Path | None, as_json: bool) -> None:
    """`--facts`: the rows of ndogo.report.facts.language_facts_rows, printed, and written as CSV with --csv."""
    if not tokenizers:
        raise ValueError("--facts: name at least one --tokenizer (e.g. --tokenizer minilm): the facts are per tokenizer")
    keeps = {}
    for pair in trims:
        name, sep, keep = pair.partition("=")
        if not sep or not keep.isdigit() or int(keep) < 1:
            raise ValueError(f"--trim {pair!r}: expected MODEL=KEEP, e.g. minilm=9500")
        keeps[name] = int(keep)
    quiet_libraries()
    from rich.table import Table

    from ndogo.report.facts import language_facts_rows, write_facts

    rows = language_facts_rows(root, tokenizers, langs, keeps, corpus)
    if csv is not None:
        write_facts(rows, csv)
    table = Table(title=f"{root}: the language facts")
    columns = {"lang": "lang", "script": "script", "train_sentences": "train sentences",
               "entities_per_100_tokens": "entities / 100 tokens", "tokenizer": "tokenizer",
               "fertility_test": "sub-words / word (test)", "unseen_subwords_test": "unseen test sub-words",
               "unknown_words_test": "unknown test words", "resplit_words_test": "re-split by trim"}
    for key, heading in columns.items():
        table.add_column(heading, justify="left" if key in ("lang", "script", "tokenizer") else "right")
    for r in rows:
        table.add_row(*(str(r.get(key, "")) for key in columns))
    emit({"rows": rows}, as_json, table)
    if csv is not None and not as_json:
        typer.echo(f"wrote {csv}")


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


def register(app: typer.Typer) -> None:
    """Add the `ndogo data` group and its commands to the `ndogo` app."""
    data_app.command("stats")(user_errors(data_stats))
    app.add_typer(data_app, name="data")
