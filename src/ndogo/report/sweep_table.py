"""The sweep table (`ndogo report ROWS... --table`): every recipe against its language's baseline, in one table.

`ndogo report` writes one table per metric; this view puts them side by side (F1, ΔF1, size and
batch-1 latency with their ratios to the baseline, parameters), which is how
docs/lab/results-log-2026-11-to-12.md shows a sweep. Several sources make one table: sweep
directories (their results.sqlite) and CSVs of rows; a row (cell id) found in several sources is
taken from the last one, so a sweep split over sessions is shown whole and a committed CSV is
brought up to date by naming it first and the new sweep after it. `seeds` shows one line per
language and recipe over its seeds, `pivot` one line per language with a test ΔF1 column per recipe.
"F1" is the rows' headline metric: the headers name it (accuracy for POS and topic rows). Rows of
several tasks make a table per task (`per_task`), each under the task's title, with its own headers.
"""

from __future__ import annotations

import statistics
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from ndogo.experiments.row import dev_headline, headline, metric_label, metric_of, task_of
from ndogo.experiments.store import load_rows
from ndogo.report.summary import scores_label, summarize, task_heading, task_order


def merge_sources(sources: Sequence[str | Path], langs: set[str] | None = None, recipes: set[str] | None = None,
                  moved: dict[str, str] | None = None, fill_data: str | Path | None = None) -> list[dict[str, Any]]:
    """Every row of `sources`, later sources winning on a cell id; failed cells kept (they say why).

    A cell another process has claimed but not finished (`running`) never hides a finished row.
    `langs` and `recipes` keep only those (the baseline always stays, every ratio needs it).
    `moved` maps a copy of a corpus to the corpus itself (rows measured on a one-language copy name
    the corpus whose text they read); `fill_data` is the corpus of rows written before rows recorded
    one, so they are told apart from another corpus's rows of the same language.
    """
    recipes = recipes | {"baseline"} if recipes else None
    moved = moved or {}
    merged: dict[str, dict[str, Any]] = {}
    for source in sources:
        for row in load_rows(source, status=None):
            if row.get("status") == "running":
                continue
            if (langs is None or row["lang"] in langs) and (recipes is None or row["recipe"] in recipes):
                if row.get("data") in moved:
                    row = {**row, "data": moved[row["data"]]}
                if fill_data and not row.get("data"):
                    row = {**row, "data": str(Path(fill_data).resolve())}
                merged[row["cell_id"]] = row
    return list(merged.values())


def per_task(rows: list[dict[str, Any]], table: Callable[[list[dict[str, Any]]], str]) -> str:
    """`table` of the rows; with done rows of several tasks, one `table` per task (in the tasks' order, NER
    first) under a heading naming the task and its metric: a column of F1 points and accuracy points
    together would average and compare what cannot be.

    Only done rows are split (a cell that failed before it was measured records no task).
    """
    done = [r for r in rows if r.get("status") == "done" and headline(r) is not None]
    tasks = task_order(task_of(r) for r in done)
    if len(tasks) <= 1:
        return table(rows)
    parts = []
    for task in tasks:
        mine = [r for r in done if task_of(r) == task]
        parts.append(f"### {task_heading(task, metric_of(mine[0]))}\n\n{table(mine)}")
    return "\n".join(parts)


def ratio_table(rows: list[dict[str, Any]]) -> str:
    """A line per language, recipe and seed: dev and test F1 with their Δ, size and latency as ratios."""
    rows = [r for r in rows if r.get("status") == "done"]
    base = {(r["model"], r["lang"], r["seed"]): r for r in rows if r["recipe"] == "baseline"}
    names = list(dict.fromkeys(r["recipe"] for r in rows))
    metrics = {metric_of(r) for r in rows}
    score = metric_label(metrics.pop()) if len(metrics) == 1 else "score"
    lines = [f"| lang | recipe | dev {score} | Δdev | test {score} | Δ{score} (pts) | params | size MB | smaller "
             "| b1 ms | faster |", "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for lang in dict.fromkeys(r["lang"] for r in rows):
        for name in names:
            for r in (x for x in rows if x["lang"] == lang and x["recipe"] == name):
                b = base.get((r["model"], r["lang"], r["seed"]))
                if b is None:
                    continue
                r_dev, b_dev, r_test, b_test = dev_headline(r), dev_headline(b), headline(r), headline(b)
                dev = (f"{100 * r_dev:.2f} | {100 * (r_dev - b_dev):+.2f}"
                       if r_dev is not None and b_dev is not None else "– | –")
                test = (f"{100 * r_test:.2f} | {100 * (r_test - b_test):+.2f}"
                        if r_test is not None and b_test is not None else "– | –")
                lines.append(f"| {lang} | {name} | {dev} | {test} | "
                             f"{r['params'] / 1e6:.1f}M | {r['size_bytes'] / 1e6:.1f} | "
                             f"{b['size_bytes'] / r['size_bytes']:.2f}× | "
                             f"{r['latency_ms_b1']:.2f} | {b['latency_ms_b1'] / r['latency_ms_b1']:.2f}× |")
    return "\n".join(lines) + "\n"


def pivot_table(rows: list[dict[str, Any]]) -> str:
    """A line per (model, language): the baseline's test F1, then every recipe's test ΔF1 ("–": no row)."""
    summaries = summarize([r for r in rows if r.get("status") == "done"])
    recipes = [r for r in dict.fromkeys(s.recipe for s in summaries) if r != "baseline"]
    models = list(dict.fromkeys(s.model for s in summaries))
    first = "| model | lang |" if len(models) > 1 else "| lang |"
    lines = [f"{first} baseline test {scores_label(summaries)} | " + " | ".join(recipes) + " |",
             "|---|" + ("---|" if len(models) > 1 else "") + "---:|" * (len(recipes) + 1)]
    for model in models:
        for lang in dict.fromkeys(s.lang for s in summaries if s.model == model):
            found = {s.recipe: s for s in summaries if s.model == model and s.lang == lang}
            if "baseline" not in found:
                continue
            cells = [f"{found[r].delta:+.2f}" if r in found and found[r].delta is not None else "–" for r in recipes]
            head = f"| {model} | {lang} |" if len(models) > 1 else f"| {lang} |"
            lines.append(f"{head} {found['baseline'].f1_mean * 100:.2f} | " + " | ".join(cells) + " |")
    several = [f"{s.lang} ({len(s.f1)} seeds)" for s in summaries if s.recipe == "baseline" and len(s.f1) > 1]
    if several:
        # the baseline column is a mean over seeds; each Δ pairs its own seeds with the baseline's same seeds
        lines += ["", f"The baseline is the mean over its seeds where it has several ({', '.join(several)}); each "
                  "Δ is against the baseline of its own seed(s), so baseline + Δ need not be the method's score."]
    return "\n".join(lines) + "\n"


def seed_table(rows: list[dict[str, Any]]) -> str:
    """Mean ± std over seeds per language and recipe, then each recipe over the languages (mean and worst)."""
    rows = [r for r in rows if r.get("status") == "done"]
    summaries = [s for s in summarize(rows) if s.delta is not None]
    seconds: dict[tuple[str, str], list[float]] = {}
    for r in rows:
        if isinstance(r.get("seconds"), int | float):
            seconds.setdefault((r["lang"], r["recipe"]), []).append(r["seconds"])
    score = scores_label(summaries)
    lines = [f"| lang | recipe | seeds | dev Δ{score} | test {score} | Δ{score} (pts) | size MB | smaller | b1 ms "
             "| faster | cell min |", "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for s in summaries:
        dev = f"{s.dev_delta:+.2f}" if s.dev_delta is not None else "–"
        minutes = statistics.fmean(seconds.get((s.lang, s.recipe), [0.0])) / 60
        lines.append(f"| {s.lang} | {s.recipe} | {len(s.f1)} | {dev} | {s.f1_text()} | {s.delta:+.2f} | "
                     f"{(s.size_bytes or 0) / 1e6:.1f} | {s.size_x or 0:.2f}× | {s.latency_ms_b1 or 0:.2f} | "
                     f"{s.speedup_b1 or 0:.2f}× | {minutes:.1f} |")
    langs = list(dict.fromkeys(s.lang for s in summaries))
    lines += ["", f"| recipe | languages | mean Δ{score} over {', '.join(langs)} | worst | mean dev Δ{score} "
              "| smaller | faster |", "|---|---:|---:|---|---:|---:|---:|"]
    for name in dict.fromkeys(s.recipe for s in summaries):
        group = [s for s in summaries if s.recipe == name]
        worst = min(group, key=lambda s: s.delta or 0.0)
        devs = [s.dev_delta for s in group if s.dev_delta is not None]
        dev = f"{statistics.fmean(devs):+.2f}" if devs else "–"
        lines.append(f"| {name} | {len(group)} | {statistics.fmean(s.delta or 0.0 for s in group):+.2f} | "
                     f"{worst.lang} {worst.delta:+.2f} | {dev} | "
                     f"{statistics.fmean(s.size_x or 0.0 for s in group):.2f}× | "
                     f"{statistics.fmean(s.speedup_b1 or 0.0 for s in group):.2f}× |")
    return "\n".join(lines) + "\n"
