"""The per-language facts beside the atlas: what a language gives its models to learn from.

For every language of a sweep on a local corpus: training sentences and entities, entity
density, and for each model its tokenizer's fertility on test (sub-words per word) and the
share of test sub-words never seen in training; for a model whose recipe trims the
vocabulary, the share of test words the trimmed tokenizer splits differently from its
parent's. These are the facts the study found results to follow (data-sparse and
complex languages degrade first) and the cost model (`predict_cost.py`) fits on. They are
computed from the corpus and the tokenizers, never from the model's outputs, in seconds.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ndogo.experiments.store import base_lang
from ndogo.report.summary import BASELINE, ordered

SCRIPTS = {"amh": "Ge'ez"}  # every other MasakhaNER language is written in Latin script
# SIB-200's codes carry their ISO 15924 script (hau_Latn, amh_Ethi, tzm_Tfng)
SCRIPT_CODES = {"Latn": "Latin", "Ethi": "Ge'ez", "Arab": "Arabic", "Tfng": "Tifinagh"}


def script_of(lang: str) -> str:
    """The script a language code's text is written in: its ISO 15924 suffix where it has one."""
    code = lang.split("_")[1] if "_" in lang else ""
    return SCRIPT_CODES.get(code, code) if code else SCRIPTS.get(lang, "Latin")


def language_facts_rows(root: str | Path, tokenizers: list[str], langs: list[str] | None = None,
                        trims: dict[str, int] | None = None, corpus: str | None = None) -> list[dict[str, Any]]:
    """The atlas's per-language facts: a row per language and tokenizer, the columns of docs/bench/atlas-facts.csv.

    Data size and entity density from the corpus; each tokenizer's fertility, unseen and unknown
    test sub-words; and for a tokenizer in `trims` (name -> KEEP), the share of test words the
    atlas's trim + int8 recipe re-splits: its trimmed vocabulary of KEEP sub-words counted on the
    language's text, then the other languages' in `corpus` (as configs/atlas-*.toml trim), rebuilt
    from the tokenizer alone, so the trimmed models need not be on disk. These are the cheap facts
    `ndogo report --facts` shows beside the atlas and the cost model reads results against.
    """
    from ndogo.compress.trim import TrimConfig, trimmed_tokenizer
    from ndogo.data.stats import directory_stats
    from ndogo.data.tokenization import resplit_share, tokenizer_facts
    from ndogo.experiments.store import corpus_name
    from ndogo.models.loading import load_tokenizer
    from ndogo.tasks import resolve_task

    trims = trims or {}
    unknown = sorted(set(trims) - set(tokenizers))
    if unknown:
        raise ValueError(f"--trim {unknown[0]}=...: {unknown[0]} is not one of the --tokenizer models "
                         f"({', '.join(tokenizers) or 'none given'})")
    root = Path(root)
    corpus_of_rows = corpus_name(str(root.resolve()))
    loaded = {name: load_tokenizer(name) for name in tokenizers}
    if langs is None:
        langs = sorted(p.name for p in root.iterdir() if p.is_dir())
    rows = []
    for lang in langs:
        # any task's corpus: the words of its sentences or texts are what a tokenizer reads
        task = resolve_task(None, root, lang)
        splits = task.load(root, lang, ("train", "test"))
        words = {s: [x.tokens for x in splits.splits.get(s, [])] for s in ("train", "test")}
        train = {"sentences": len(words["train"]), "tokens": sum(len(w) for w in words["train"])}
        if task.output == "entities":  # entity counts (and NER's numbers exactly as before) from the CoNLL stats
            train = directory_stats(root, [lang])[lang]["splits"].get("train", {})
        for name, tok in loaded.items():
            facts = tokenizer_facts(tok, words["train"], words["test"])
            if name in trims:
                trimmed = trimmed_tokenizer(tok, TrimConfig(lang=lang, data=str(root), corpus=corpus,
                                                            other_langs=True, keep=trims[name]))
                facts["resplit_words_test"] = resplit_share(tok, trimmed, words["test"])
            rows.append({"lang": lang, "corpus": corpus_of_rows, "script": script_of(lang),
                         "train_sentences": train.get("sentences", 0), "train_tokens": train.get("tokens", 0),
                         "train_entities": train.get("entities", 0),
                         "entities_per_100_tokens": round(100 * train.get("entities", 0)
                                                          / max(train.get("tokens", 1), 1), 2),
                         "tokenizer": name, **facts})
    return rows


def write_facts(rows: list[dict[str, Any]], path: str | Path) -> Path:
    """The facts as the CSV `ndogo report --facts` reads (resplit_words_test only where a --trim asked for it)."""
    import csv

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(dict.fromkeys(k for r in rows for k in r)),
                                restval="")
        writer.writeheader()
        writer.writerows(rows)
    return path


def _tokenizer(source: str) -> Any:
    from ndogo.models.loading import load_tokenizer

    try:
        return load_tokenizer(source)
    except Exception:  # a hub model with no hub, a deleted run: the fact is left out, not the report
        return None


def _header(models: list[str], resplit: bool) -> list[str]:
    """The facts table's columns, whether the facts are computed here or read from a CSV."""
    header = ["language", "train sentences", "train entities", "entities / 100 tokens"]
    for m in models:
        header += [f"{m}: sub-words / word (test)", f"{m}: unseen test sub-words"]
    return header + (["test words re-split by trimming"] if resplit else [])


def facts_rows(rows: list[dict[str, Any]]) -> tuple[list[str], list[list[str]]] | None:
    """(header, rows) of the facts table, or None when no language has a local corpus."""
    from ndogo.data.corpus import load_local
    from ndogo.data.stats import split_stats
    from ndogo.data.tokenization import resplit_share, tokenizer_facts

    done = [r for r in rows if r.get("status") == "done"]
    models: dict[str, str] = {}
    for r in done:  # the tokenizer of a fine-tuned baseline on disk, else of the pretrained model named
        baseline = r.get("recipe") == BASELINE and r.get("path") and Path(r["path"]).is_dir()
        if baseline or r["model"] not in models:
            models[r["model"]] = r["path"] if baseline else (r.get("model_source") or r["model"])
    trims = {}  # (model, lang) -> (recipe, trimmed model dir), the first trimming recipe with its model on disk
    for r in done:
        if "trim:" in str(r.get("recipe_spec", "")) and (r["model"], r["lang"]) not in trims:
            stages = [s for s in r.get("stages") or [] if s.get("stage") == "trim"]
            if stages and Path(stages[0]["path"]).is_dir():
                trims[(r["model"], r["lang"])] = (r["recipe"], stages[0]["path"])
    tokenizers = {m: _tokenizer(src) for m, src in models.items()}
    header = _header(list(models), bool(trims))
    body = []
    for lang in ordered([r["lang"] for r in done]):
        data = next((r.get("data") for r in done if r["lang"] == lang and r.get("data")), None)
        if not data or not Path(data).is_dir():
            continue
        try:
            corpus = load_local(data, base_lang(lang), ("train", "test"))
        except (OSError, ValueError):
            continue
        train, test = corpus.splits.get("train", []), corpus.splits.get("test", [])
        stats = split_stats(train)
        line = [lang, f"{stats['sentences']:,}", f"{stats['entities']:,}",
                f"{100 * stats['entities'] / max(stats['tokens'], 1):.1f}"]
        for tok in tokenizers.values():
            if tok is None:
                line += ["–", "–"]
                continue
            facts = tokenizer_facts(tok, [s.tokens for s in train], [s.tokens for s in test])
            line += [f"{facts['fertility_test']:.2f}", f"{100 * facts['unseen_subwords_test']:.1f}%"]
        if trims:
            shares = []
            for m, tok in tokenizers.items():
                if (m, lang) in trims and tok is not None:
                    recipe, path = trims[(m, lang)]
                    trimmed = _tokenizer(path)
                    if trimmed is not None:
                        share = resplit_share(tok, trimmed, [s.tokens for s in test])
                        shares.append(f"{100 * share:.2f}% ({m}/{recipe})")
            line.append("; ".join(shares) or "–")
        body.append(line)
    return (header, body) if body else None


def read_facts(paths: list[str | Path]) -> list[dict[str, str]]:
    """Rows of the facts CSVs `ndogo data stats --facts` writes (one per language, corpus and tokenizer)."""
    import csv

    out: list[dict[str, str]] = []
    for path in paths:
        with Path(path).open(encoding="utf-8", newline="") as handle:
            reader = csv.DictReader(handle)
            missing = {"lang", "tokenizer", "train_sentences"} - set(reader.fieldnames or [])
            if missing:
                raise ValueError(f"{path}: not a facts CSV of `ndogo data stats --facts` (no {sorted(missing)[0]!r} "
                                 "column)")
            out.extend(reader)
    return out


def facts_from_csv(rows: list[dict[str, Any]], facts: list[dict[str, str]]) -> tuple[list[str], list[list[str]]] | None:
    """The facts table from precomputed facts (`ndogo report --facts`), each language matched on its code and
    corpus (a label `wol@masakhaner2` reads the masakhaner2 facts of wol); "–" where the CSVs lack one."""
    from ndogo.experiments.store import corpus_name

    done = [r for r in rows if r.get("status") == "done"]
    models = list(dict.fromkeys(r["model"] for r in done))
    resplit = any(f.get("resplit_words_test") for f in facts)
    header = _header(models, resplit)
    body = []
    for label in ordered([r["lang"] for r in done]):
        data = next((r.get("data") for r in done if r["lang"] == label and r.get("data")), None)
        mine = [f for f in facts if f["lang"] == base_lang(label)
                and (not f.get("corpus") or not data or f["corpus"] == corpus_name(data))]
        if not mine:
            continue
        first = mine[0]
        line = [label, f"{int(first['train_sentences']):,}", f"{int(first['train_entities']):,}",
                f"{float(first['entities_per_100_tokens']):.1f}"]
        by_model = {f["tokenizer"]: f for f in mine}
        for m in models:
            f = by_model.get(m)
            line += ([f"{float(f['fertility_test']):.2f}", f"{100 * float(f['unseen_subwords_test']):.1f}%"]
                     if f else ["–", "–"])
        if resplit:
            line.append("; ".join(f"{100 * float(by_model[m]['resplit_words_test']):.2f}% ({m})" for m in models
                                  if m in by_model and by_model[m].get("resplit_words_test")) or "–")
        body.append(line)
    return (header, body) if body else None
