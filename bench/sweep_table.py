"""One markdown table per sweep: every recipe against its language's baseline, as ratios.

`ndogo report` writes one table per metric; this prints them side by side (F1, ΔF1, size and
batch-1 latency with their ratios to the baseline, parameters), which is how docs/lab/results-log-2026-11-to-12.md
shows a sweep:

    python bench/sweep_table.py runs/sweeps/chained

Several sources make one table: sweep directories (their results.sqlite) and CSV files of rows
(`ndogo report`'s results.csv, or a committed docs/bench/*.csv). A sweep split over sessions or
processes (`ndogo sweep --lang`) is shown whole this way; a row (cell id) found in several
sources is taken from the last one. `--csv` writes the merged rows in report's CSV columns:

    python bench/sweep_table.py docs/bench/me5s.csv runs/me5s-swa runs/me5s-yor --csv docs/bench/me5s.csv

`--lang` and `--recipe` keep only those rows (a committed CSV of one view out of a larger sweep;
with `--csv` the file holds only the kept rows, so never point it at a source you filter):

    python bench/sweep_table.py docs/bench/atlas-minilm.csv runs/gold-hau --lang hau --recipe distil3 --seeds

`--fill-data ROOT` records ROOT as the corpus of rows written before rows carried one (the atlas's
first MasakhaNER 1.0 rows), so that they are told apart from the same language on MasakhaNER 2.0:

    python bench/sweep_table.py docs/bench/atlas-minilm.csv --fill-data ../shared/data/masakhaner \
        --csv docs/bench/atlas-minilm.csv

`--data-from OLD=NEW` does the same for rows measured on a copy of a corpus (the hidden-language
check copied ewe alone into a new root): they name the corpus itself, whose text they read:

    python bench/sweep_table.py docs/bench/atlas-mnr2.csv \
        --data-from /work/runs/hidden-ewe/data=../shared/data/masakhaner2 --csv docs/bench/atlas-mnr2.csv

`--seeds` shows one line per language and recipe over its seeds instead (test F1 mean ± std, ΔF1
against the baseline's mean, dev ΔF1, which is what chooses) and, per recipe, the mean ΔF1 over the
languages and the worst language: the view of a multi-seed sweep such as configs/students-aug.toml.

`--pivot` shows one line per language instead: the baseline's test F1, then each recipe's test ΔF1
in points (mean over the seeds a row has), the layout of the atlas's per-step tables:

    python bench/sweep_table.py docs/bench/atlas-me5s.csv --pivot
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any


def read_rows(source: Path, status: str | None = "done") -> list[dict[str, Any]]:
    """Rows of a sweep directory or a CSV of rows, per-type F1 under `per_type`."""
    from ndogo.experiments.store import load_rows

    return load_rows(source, status)


def write_rows(rows: list[dict[str, Any]], path: Path) -> None:
    from ndogo.report.build import write_csv

    write_csv(rows, path)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("sources", type=Path, nargs="+", help="sweep directories (results.sqlite) or CSVs of rows")
    parser.add_argument("--csv", type=Path, help="write the merged rows here (report's results.csv columns)")
    parser.add_argument("--seeds", action="store_true", help="one line per language and recipe, over its seeds")
    parser.add_argument("--pivot", action="store_true", help="one line per language, a test ΔF1 column per recipe")
    parser.add_argument("--lang", help="keep only these languages (comma-separated)")
    parser.add_argument("--recipe", help="keep only these recipes (comma-separated; the baseline is always kept)")
    parser.add_argument("--data-from", metavar="OLD=NEW", action="append", default=[],
                        help="rows measured on a copy (OLD) of a corpus name the corpus itself (NEW), e.g. the "
                             "hidden-language check's one-language copy of MasakhaNER 2.0 (repeatable)")
    parser.add_argument("--fill-data", type=Path, metavar="ROOT",
                        help="rows written before rows recorded their corpus get this one (the root they were "
                             "measured on), so that they are told from another corpus's rows of the same language")
    args = parser.parse_args()
    langs = set(args.lang.split(",")) if args.lang else None
    recipes = set(args.recipe.split(",")) | {"baseline"} if args.recipe else None
    moved = {}
    for pair in args.data_from:
        old, sep, new = pair.partition("=")
        if not sep or not old or not new:
            parser.error(f"--data-from {pair!r}: expected OLD=NEW")
        moved[old] = str(Path(new).resolve())
    merged: dict[str, dict[str, Any]] = {}
    for source in args.sources:
        for row in read_rows(source, status=None):
            if row.get("status") == "running":  # claimed, no result yet: never hides a finished row
                continue
            if (langs is None or row["lang"] in langs) and (recipes is None or row["recipe"] in recipes):
                if row.get("data") in moved:
                    row = {**row, "data": moved[row["data"]]}
                if args.fill_data and not row.get("data"):
                    row = {**row, "data": str(args.fill_data.resolve())}
                merged[row["cell_id"]] = row
    if args.csv:  # failed cells too: their rows say why they could not run
        write_rows(list(merged.values()), args.csv)
    rows = [r for r in merged.values() if r.get("status") == "done"]
    if args.seeds:
        seed_table(rows)
        return
    if args.pivot:
        pivot_table(rows)
        return
    base = {(r["model"], r["lang"], r["seed"]): r for r in rows if r["recipe"] == "baseline"}
    names = list(dict.fromkeys(r["recipe"] for r in rows))
    print("| lang | recipe | dev F1 | Δdev | test F1 | ΔF1 (pts) | params | size MB | smaller | b1 ms | faster |")
    print("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for lang in dict.fromkeys(r["lang"] for r in rows):
        for name in names:
            for r in (x for x in rows if x["lang"] == lang and x["recipe"] == name):
                b = base.get((r["model"], r["lang"], r["seed"]))
                if b is None:
                    continue
                dev = (f"{100 * r['dev_f1']:.2f} | {100 * (r['dev_f1'] - b['dev_f1']):+.2f}"
                       if r.get("dev_f1") is not None and b.get("dev_f1") is not None else "– | –")
                print(f"| {lang} | {name} | {dev} | {100 * r['f1']:.2f} | {100 * (r['f1'] - b['f1']):+.2f} | "
                      f"{r['params'] / 1e6:.1f}M | {r['size_bytes'] / 1e6:.1f} | "
                      f"{b['size_bytes'] / r['size_bytes']:.2f}× | "
                      f"{r['latency_ms_b1']:.2f} | {b['latency_ms_b1'] / r['latency_ms_b1']:.2f}× |")


def pivot_table(rows: list[dict[str, Any]]) -> None:
    """A line per (model, language): the baseline's test F1, then every recipe's test ΔF1 ("–": no row)."""
    from ndogo.report.summary import summarize

    summaries = summarize(rows)
    recipes = [r for r in dict.fromkeys(s.recipe for s in summaries) if r != "baseline"]
    models = list(dict.fromkeys(s.model for s in summaries))
    first = "| model | lang |" if len(models) > 1 else "| lang |"
    print(f"{first} baseline test F1 | " + " | ".join(recipes) + " |")
    print("|---|" + ("---|" if len(models) > 1 else "") + "---:|" * (len(recipes) + 1))
    for model in models:
        for lang in dict.fromkeys(s.lang for s in summaries if s.model == model):
            found = {s.recipe: s for s in summaries if s.model == model and s.lang == lang}
            if "baseline" not in found:
                continue
            cells = [f"{found[r].delta:+.2f}" if r in found and found[r].delta is not None else "–" for r in recipes]
            head = f"| {model} | {lang} |" if len(models) > 1 else f"| {lang} |"
            print(f"{head} {found['baseline'].f1_mean * 100:.2f} | " + " | ".join(cells) + " |")


def seed_table(rows: list[dict[str, Any]]) -> None:
    """Mean ± std over seeds per language and recipe, then each recipe over the languages."""
    import statistics

    from ndogo.report.summary import summarize

    summaries = [s for s in summarize(rows) if s.delta is not None]
    seconds: dict[tuple[str, str], list[float]] = {}
    for r in rows:
        if isinstance(r.get("seconds"), int | float):
            seconds.setdefault((r["lang"], r["recipe"]), []).append(r["seconds"])
    print("| lang | recipe | seeds | dev ΔF1 | test F1 | ΔF1 (pts) | size MB | smaller | b1 ms | faster | cell min |")
    print("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for s in summaries:
        dev = f"{s.dev_delta:+.2f}" if s.dev_delta is not None else "–"
        minutes = statistics.fmean(seconds.get((s.lang, s.recipe), [0.0])) / 60
        print(f"| {s.lang} | {s.recipe} | {len(s.f1)} | {dev} | {s.f1_text()} | {s.delta:+.2f} | "
              f"{(s.size_bytes or 0) / 1e6:.1f} | {s.size_x or 0:.2f}× | {s.latency_ms_b1 or 0:.2f} | "
              f"{s.speedup_b1 or 0:.2f}× | {minutes:.1f} |")
    langs = list(dict.fromkeys(s.lang for s in summaries))
    print()
    print(f"| recipe | languages | mean ΔF1 over {', '.join(langs)} | worst | mean dev ΔF1 | smaller | faster |")
    print("|---|---:|---:|---|---:|---:|---:|")
    for name in dict.fromkeys(s.recipe for s in summaries):
        group = [s for s in summaries if s.recipe == name]
        worst = min(group, key=lambda s: s.delta or 0.0)
        devs = [s.dev_delta for s in group if s.dev_delta is not None]
        dev = f"{statistics.fmean(devs):+.2f}" if devs else "–"
        print(f"| {name} | {len(group)} | {statistics.fmean(s.delta or 0.0 for s in group):+.2f} | "
              f"{worst.lang} {worst.delta:+.2f} | {dev} | "
              f"{statistics.fmean(s.size_x or 0.0 for s in group):.2f}× | "
              f"{statistics.fmean(s.speedup_b1 or 0.0 for s in group):.2f}× |")


if __name__ == "__main__":
    main()
