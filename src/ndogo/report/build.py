"""Write a sweep's report: results.csv, results.md, plots and a self-contained index.html.

Each table is built once as plain data (`Table`) and rendered twice, as
markdown and as HTML, so the two files can never disagree.
"""

from __future__ import annotations

import base64
import csv
import html
import json
import statistics
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ndogo.experiments.row import csv_columns, dev_headline, headline, metric_label, metric_of, task_of
from ndogo.experiments.store import CSV_FIELD_LIMIT, label_corpora, load_rows, open_store
from ndogo.report.facts import facts_from_csv, facts_rows, read_facts
from ndogo.report.plots import pruning_unit, requested_sparsity, write_plots
from ndogo.report.study import beside_the_study
from ndogo.report.summary import (
    BASELINE,
    Summary,
    ordered,
    scores_label,
    summarize,
    task_heading,
    task_order,
    task_title,
)
from ndogo.tasks import DEFAULT_TASK, get_task

CSV_COLUMNS = csv_columns()  # one definition of the row: ndogo.experiments.row


@dataclass
class Table:
    """One results table, written both as markdown (results.md) and HTML (index.html) from the same cells."""

    title: str
    header: list[str]
    rows: list[list[str]]
    note: str = ""
    bold_last: bool = False  # the average row

    def markdown(self) -> str:
        lines = [f"### {self.title}", ""]
        if self.note:
            lines += [self.note, ""]
        lines.append("| " + " | ".join(self.header) + " |")
        lines.append("|" + "|".join(["---"] + ["---:"] * (len(self.header) - 1)) + "|")
        for i, row in enumerate(self.rows):
            cells = [c.replace("|", "\\|") for c in row]
            if self.bold_last and i == len(self.rows) - 1:
                cells = [f"**{c}**" if c else c for c in cells]
            lines.append("| " + " | ".join(cells) + " |")
        return "\n".join(lines) + "\n"

    def html(self) -> str:
        head = "".join(f"<th>{html.escape(h)}</th>" for h in self.header)
        body = []
        for i, row in enumerate(self.rows):
            cls = ' class="avg"' if self.bold_last and i == len(self.rows) - 1 else ""
            body.append(f"<tr{cls}>" + "".join(f"<td>{html.escape(c)}</td>" for c in row) + "</tr>")
        note = f"<p class='note'>{html.escape(self.note)}</p>" if self.note else ""
        return f"<h3>{html.escape(self.title)}</h3>{note}<table><thead><tr>{head}</tr></thead>" \
               f"<tbody>{''.join(body)}</tbody></table>"


@dataclass
class Section:
    """One part of a report's results: its tables, then its plots.

    A report of one task is one untitled section (the layout from before the task axis); a report
    of several has a section per task, titled with the task and its metric, so that no table, average
    or plot puts one task's points beside another's, then one for the cells of every task not done.
    """

    title: str
    tables: list[Table]
    plots: list[Path] = field(default_factory=list)

    def markdown(self) -> list[str]:
        lines = [f"## {self.title}", ""] if self.title else []
        lines += [t.markdown() for t in self.tables]
        for plot in self.plots:
            lines += [f"![{plot.stem}]({plot.name})", ""]
        return lines


@dataclass
class Report:
    """Everything one report page shows: tables, plots, and the config and machine behind the numbers."""

    name: str
    sections: list[Section]
    config: str
    environment: dict[str, Any]
    counts: dict[str, int] = field(default_factory=dict)
    ship: list[str] = field(default_factory=list)  # "what to ship", a line per language, at the top

    @property
    def tables(self) -> list[Table]:
        return [t for section in self.sections for t in section.tables]

    @property
    def plots(self) -> list[Path]:
        return [p for section in self.sections for p in section.plots]


SHIP_BUDGET = 1.0  # points of the rows' headline metric (F1 for NER): the report's "what to ship" line



def _gain(drop: float) -> str:
    """A drop in points as the signed change it is: "+0.00", never "-0.00", where nothing changed."""
    return f"{round(-drop, 2) + 0.0:+.2f}"

def what_to_ship(rows: list[dict[str, Any]], directory: str, langs: list[str]) -> list[str]:
    """Per language, the smallest model within one point of its baseline, chosen on dev (test beside it).

    The point is one of the language's rows' headline metric (F1 for NER, accuracy for POS...): each
    language is chosen among the rows of its own metric; a report of several tasks asks once per task,
    with that task's rows, as one language code may name a NER and a POS language.
    """
    from ndogo.report.recommend import recommend_rows

    lines = []
    for lang in langs:
        metric = next((metric_of(r) for r in rows if r.get("lang") == lang), None)
        mine = [r for r in rows if metric_of(r) == metric]
        has_dev = any(dev_headline(r) is not None for r in mine if r.get("lang") == lang)
        split = "dev" if has_dev else "test"
        label = metric_label(metric or "")
        try:
            c = recommend_rows(mine, directory, lang, SHIP_BUDGET, "size", split=split)
        except ValueError as err:
            lines.append(f"{lang}: nothing to ship ({str(err).split(': ', 1)[-1]})")
            continue
        dev = (f"dev {100 * c['dev_f1']:.2f} ({_gain(c['dev_f1_drop_points'])}), "
               if c.get("dev_f1") is not None else "")
        size = f"{c['size_x']:.2f}× smaller" if c.get("size_x") else "baseline size"
        speed = f", {c['speedup_b1']:.2f}× faster at batch 1" if c.get("speedup_b1") else ""
        lines.append(f"{lang}: ship {c['model']}/{c['recipe']} — {size}{speed}; {label} {dev}test "
                     f"{100 * c['f1']:.2f} ({_gain(c['f1_drop_points'])}) against the baseline; chosen on "
                     f"{split} within {SHIP_BUDGET:g} point" + (f" (these rows carry no dev {label})"
                                                                if split == "test" else "")
                     + (f"; warning: {c['baseline_warning']}" if c.get("baseline_warning") else ""))
    return lines


def _signed(x: float) -> str:
    return f"{x:+.2f}".replace("-", "−")


def _find(summaries: list[Summary], model: str, lang: str, recipe: str) -> Summary | None:
    return next((s for s in summaries if (s.model, s.lang, s.recipe) == (model, lang, recipe)), None)


def _grid(summaries: list[Summary], model: str, title: str, note: str, cell: Any, average: Any | None) -> Table:
    """A row per language, a column per method (the study's layout), plus an average row."""
    here = [s for s in summaries if s.model == model]
    langs = ordered([s.lang for s in here])
    recipes = ordered([s.recipe for s in here])
    rows = []
    for lang in langs:
        row = [lang]
        for recipe in recipes:
            s = _find(here, model, lang, recipe)
            row.append(cell(s) if s is not None else "–")
        rows.append(row)
    if average is not None and len(langs) > 1:
        rows.append(["average"] + [average([s for s in here if s.recipe == r]) for r in recipes])
    return Table(title, ["language", *recipes], rows, note, bold_last=average is not None and len(langs) > 1)


def f1_cell(s: Summary) -> str:
    """The headline metric (F1 for NER) with its change against the baseline: the cost of the method."""
    return s.f1_text() if s.recipe == BASELINE or s.delta is None else f"{s.f1_text()} ({_signed(s.delta)})"


def f1_average(group: list[Summary]) -> str:
    """The average row's cell: mean F1 over languages, and the mean change for a compressed method."""
    mean = 100 * statistics.fmean(s.f1_mean for s in group)
    deltas = [s.delta for s in group if s.delta is not None]
    if group and group[0].recipe != BASELINE and deltas:
        return f"{mean:.2f} ({_signed(statistics.fmean(deltas))})"
    return f"{mean:.2f}"


def _ratio_cell(value: float | None, ratio: float | None, fmt: str, word: str) -> str:
    if value is None:
        return "–"
    return fmt.format(value) + (f" ({ratio:.2f}× {word})" if ratio is not None else "")


def build_sections(summaries: list[Summary], rows: list[dict[str, Any]], out: Path,
                   facts: list[dict[str, str]] | None = None) -> list[Section]:
    """The report's sections, plots written into `out`: one untitled where the rows are of one task, else
    one per task in the tasks' order (NER first), each with its own tables, averages and plots, and
    one for the cells not done (a cell that failed before it was measured records no task)."""
    tasks = task_order(s.task for s in summaries)
    if len(tasks) <= 1:
        return [Section("", build_tables(summaries, rows, facts), write_plots(summaries, out) if summaries else [])]
    sections = []
    for task in tasks:
        mine = [s for s in summaries if s.task == task]
        done = [r for r in rows if r.get("status") == "done" and task_of(r) == task]
        others = [task_title(t) for t in tasks if t != task]
        heading = task_heading(task, mine[0].metric)
        sections.append(Section(heading, task_tables(mine, done, facts, others),
                                write_plots(mine, out, suffix=f"_{task}", title=f"{task_title(task)}: ")))
    failed = failed_table(rows)
    if failed is not None:
        sections.append(Section("Every task", [failed]))
    return sections


def build_tables(summaries: list[Summary], rows: list[dict[str, Any]],
                 facts: list[dict[str, str]] | None = None) -> list[Table]:
    """The tables of a report of one task: its tables, then the cells not done."""
    failed = failed_table(rows)
    return task_tables(summaries, rows, facts) + ([failed] if failed is not None else [])


def failed_table(rows: list[dict[str, Any]]) -> Table | None:
    """Every cell not done and why (None where every cell is done)."""
    failed = [r for r in rows if r.get("status") != "done"]
    if not failed:
        return None
    return Table("Cells not done", ["model", "language", "method", "seed", "status", "error"],
                 [[r["model"], r["lang"], r["recipe"], str(r["seed"]), r["status"],
                   (r.get("error") or "interrupted")[:300]] for r in failed])


def task_tables(summaries: list[Summary], rows: list[dict[str, Any]], facts: list[dict[str, str]] | None = None,
                others: Sequence[str] = ()) -> list[Table]:
    """One task's tables per model (F1, size, latency, ...), a row per language, as the study lays them out.

    `others`: the titles of the report's other tasks, which "beside the study" says it leaves out.
    """
    tables = []
    seeds = sorted({len(s.seeds) for s in summaries})
    for model in ordered([s.model for s in summaries]):
        label = f"{model}: " if len({s.model for s in summaries}) > 1 else ""
        split = next((r.get("split", "test") for r in rows if r.get("model") == model), "test")
        score = scores_label([s for s in summaries if s.model == model])
        tables.append(_grid(summaries, model, f"{label}{split} {score} per language and method",
                            f"{score} ×100, mean ± std over {'/'.join(map(str, seeds))} seed(s); in brackets the "
                            "change against the fine-tuned baseline in points.", f1_cell, f1_average))
        tables.append(_grid(
            summaries, model, f"{label}size on disk (MB)", "In brackets: times smaller than the baseline.",
            lambda s: _ratio_cell(s.size_bytes and s.size_bytes / 1e6, s.size_x if s.recipe != BASELINE else None,
                                  "{:.1f}", "smaller"), None))
        if any(s.latency_ms_b1 is not None for s in summaries if s.model == model):
            threads = sorted({r.get("threads") for r in rows if r.get("model") == model and r.get("threads")})
            tables.append(_grid(
                summaries, model, f"{label}latency at batch 1 (ms)",
                f"Median forward time per sentence, {'/'.join(map(str, threads))} thread(s), the mean over "
                "seeds; in brackets: times faster than the baseline, each seed against the baseline of its own "
                "seed (timed in the same run), so where the baseline has several seeds its mean over the cell's "
                "need not be that ratio.",
                lambda s: _ratio_cell(s.latency_ms_b1, s.speedup_b1 if s.recipe != BASELINE else None,
                                      "{:.2f}", "faster"), None))
        study = beside_the_study([s for s in summaries if s.task == DEFAULT_TASK], model)  # the study: NER only
        if study:
            tables.append(Table(
                f"{label}beside the study", ["method", "languages", "ΔF1 (pts) [range]", "size −%", "b1 time −%",
                                             "study ΔF1", "study size −%", "study time −%", "the study found"],
                study, "Ours: mean over the languages this sweep ran (test F1, mean over seeds), the range in "
                "brackets; time is latency at batch 1. The study's: AfriBERTa on MasakhaNER, its averages "
                "where it gives them, else its finding." + study_scope(others)))
    types = sorted({t for s in summaries for t in s.per_type})
    if types:
        kind = "entity type" if all(s.task == DEFAULT_TASK for s in summaries) else "label"  # POS tags, topics...
        tables.append(Table(f"F1 per {kind}", ["model", "language", "method", *types],
                            [[s.model, s.lang, s.recipe, *(f"{100 * s.per_type[t]:.2f}" if t in s.per_type else "–"
                                                           for t in types)] for s in summaries],
                            f"F1 ×100 per {kind}, mean over seeds."))
    transfer = transfer_table(rows)
    if transfer is not None:
        tables.append(transfer)
    table = facts_from_csv(rows, facts) if facts else facts_rows(rows)
    if table is not None:
        tables.append(Table("Language facts", table[0], table[1],
                            "From the corpus and each model's tokenizer, not from any model's outputs: how much "
                            "each language gives its models to learn from, and how they read it"
                            + (" (re-split: the share of test words the trim + int8 recipe's trimmed vocabulary "
                               "cuts into other pieces than the full one)." if facts else ".")))
    recipes = {}
    for s in summaries:
        recipes.setdefault(s.recipe, s)
    zeros = {(s.model, s.lang): s.sparsity for s in summaries if s.recipe == BASELINE}
    tables.append(Table("Methods", ["method", "recipe", "starts from", "pruned", "parameters (M)"],
                        [[r, s.recipe_spec or "(none)", f"the {s.start} model",
                          pruning_level(s, zeros.get((s.model, s.lang))),
                          f"{s.params / 1e6:.2f}" if s.params else "–"] for r, s in recipes.items()],
                        "Each method is its recipe applied to the model fine-tuned on the language "
                        "(or to the pretrained model, for recipes that start there). Sparsity and parameters "
                        "as measured on the first language."))
    return tables


def study_scope(others: Sequence[str]) -> str:
    """What "beside the study" leaves out in a report of several tasks: the study measured entity F1 on
    MasakhaNER, so only the default task's rows (NER) stand beside it."""
    if not others:
        return ""
    return (f" {get_task(DEFAULT_TASK).title} rows only: the study measured entity F1, so the rows of "
            f"{', '.join(others)} are not counted here.")


def transfer_table(rows: list[dict[str, Any]]) -> Table | None:
    """Each model scored on its own language and, zero-shot, on the others (`[evaluate] transfer`), in its rows'
    headline metric (F1 for NER)."""
    done = [r for r in rows if r.get("status") == "done" and headline(r) is not None]
    if not any(r.get("transfer") for r in done):
        return None
    targets = ordered([r["lang"] for r in done] + [t for r in done for t in (r.get("transfer") or {})])
    groups: dict[tuple[str, str, str], list[dict[str, Any]]] = {}
    for r in done:
        groups.setdefault((r["model"], r["lang"], r["recipe"]), []).append(r)
    body = []
    for (model, lang, recipe), group in groups.items():
        cells = []
        for target in targets:
            scores = [headline(r) if target == lang else (r.get("transfer") or {}).get(target, {}).get(metric_of(r))
                      for r in group]
            scores = [x for x in scores if isinstance(x, int | float)]
            text = f"{100 * sum(scores) / len(scores):.2f}" if scores else "–"
            cells.append(f"{text} (own)" if target == lang and scores else text)
        body.append([model, lang, recipe, *cells])
    split = next((r.get("split", "test") for r in done), "test")
    score = metric_label_of(done)
    return Table(f"Zero-shot transfer ({split} {score})", ["model", "trained on", "method", *targets], body,
                 f"{score} ×100, mean over seeds: on the model's own language (own), and zero-shot on the "
                 "others (their labels never seen in training).")


def metric_label_of(rows: list[dict[str, Any]]) -> str:
    """The headline metric rows share, as tables print it ("F1", "accuracy"); "score" where they mix."""
    found = {metric_of(r) for r in rows}
    return metric_label(found.pop()) if len(found) == 1 else "score"



def pruning_level(s: Summary, baseline: float | None = None) -> str:
    """What a recipe prunes, in the unit it prunes: weights (magnitude) or whole heads / FFN neurons.

    Structured pruning leaves no zeros (the matrices shrink), so its measured sparsity
    is 0 while it removed, say, 25% of the FFN neurons; both the table and the plot say that.
    """
    level = requested_sparsity(s, baseline)
    kind = pruning_unit(s.recipe_spec)
    if level is None:  # `baseline`: the zeros its baseline already had (me5s: 9%), which no method made
        return f"{100 * s.sparsity:.1f}% zeros" if s.sparsity else "–"
    return f"{100 * level:.0f}% of {kind}"


def write_csv(rows: list[dict[str, Any]], path: Path) -> Path:
    """One line per cell (every seed, done or failed), with F1 per entity type as f1_<TYPE>."""
    types = sorted({t for r in rows for t in r.get("per_type", {})})
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(CSV_COLUMNS + [f"f1_{t}" for t in types])
        for r in rows:
            per_type = r.get("per_type", {})
            writer.writerow([_field(r.get(c)) for c in CSV_COLUMNS]
                            + [per_type[t]["f1"] if t in per_type else "" for t in types])
    return path


def _field(value: Any) -> Any:
    """A CSV field that this CSV's readers accept: a failed cell's error can outgrow csv's field limit."""
    if value is None:
        return ""
    if isinstance(value, str) and len(value) >= CSV_FIELD_LIMIT:
        return value[: CSV_FIELD_LIMIT - 100] + " … (cut: longer than a CSV field may be)"
    return value


def write_markdown(report: Report, path: Path) -> Path:
    """results.md: the tables with the machine and versions, readable on GitHub without the HTML page."""
    env = report.environment
    machine = env.get("machine", {})
    lines = [f"## Sweep `{report.name}`", "",
             f"{report.counts.get('done', 0)} cells done, {report.counts.get('failed', 0)} failed, "
             f"{report.counts.get('running', 0)} interrupted. "
             + (f"Machine: {machine.get('cpu', '?')}, {machine.get('cores', '?')} cores." if machine else
                "Rows read from a CSV: the sweep's config and machine are not recorded there."), ""]
    if report.ship:
        lines += ["### What to ship", "", *[f"- {line}" for line in report.ship], ""]
    for section in report.sections:
        lines += section.markdown()
    path.write_text("\n".join(lines), encoding="utf-8")
    return path


STYLE = """
body{font-family:system-ui,sans-serif;max-width:1400px;margin:2em auto;padding:0 1em;color:#222}
#ship{background:#eef6ee;border:1px solid #9c9;padding:.2em 1em;margin:1em 0}figure{margin:1em 0}
figure img{width:100%;height:auto}
table{border-collapse:collapse;margin:.5em 0 1.5em}th,td{border:1px solid #ccc;padding:.3em .6em;text-align:right}
th:first-child,td:first-child{text-align:left}tr.avg td{font-weight:bold;background:#f4f4f4}
.note{color:#555;font-size:.9em}img{max-width:100%;border:1px solid #eee;margin:.5em 0}
pre{background:#f6f6f6;padding:1em;overflow:auto;font-size:.85em}
"""


def write_html(report: Report, path: Path) -> Path:
    """One file: tables, plots inlined as data URIs, the config and the environment."""
    env = report.environment
    if len(report.sections) == 1 and not report.sections[0].title:  # one task: its tables, then its plots
        results = ["<h2>Results</h2>", *[t.html() for t in report.tables], "<h2>Plots</h2>",
                   *[_figure(p) for p in report.plots]]
    else:  # several: each task's tables and plots under its title
        results = [part for section in report.sections for part in
                   (f"<h2>{html.escape(section.title)}</h2>", *[t.html() for t in section.tables],
                    *[_figure(p) for p in section.plots])]
    parts = [
        "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>",
        f"<title>ndogo sweep {html.escape(report.name)}</title><style>{STYLE}</style></head><body>",
        f"<h1>ndogo sweep <code>{html.escape(report.name)}</code></h1>",
        f"<p>{report.counts.get('done', 0)} cells done, {report.counts.get('failed', 0)} failed; "
        f"report written {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}.</p>",
        *(["<section id='ship'><h2>What to ship</h2><ul>",
            *[f"<li>{html.escape(line)}</li>" for line in report.ship], "</ul></section>"] if report.ship else []),
        *results,
        "<h2>Environment</h2>", f"<pre>{html.escape(json.dumps(env, indent=2, default=str))}</pre>",
        "<h2>Config</h2>", f"<pre>{html.escape(report.config)}</pre>",
        "</body></html>",
    ]
    path.write_text("\n".join(parts), encoding="utf-8")
    return path


def _figure(plot: Path) -> str:
    """A plot inlined as a data URI, with its name as the caption."""
    data = base64.b64encode(plot.read_bytes()).decode("ascii")
    return (f'<figure><img alt="{html.escape(plot.stem)}" src="data:image/png;base64,{data}">'
            f"<figcaption>{html.escape(plot.stem.replace('_', ' '))}</figcaption></figure>")


def write_report(directory: str | Path, out: str | Path, also: Sequence[str | Path] = (),
                 facts: Sequence[str | Path] = ()) -> list[Path]:
    """Write every report file for the sweep in `directory` into `out`; returns their paths.

    `directory` may also be a CSV of rows (a committed docs/bench/*.csv): the evidence that
    outlives a sweep's directory is then reported the same way, without the sweep's config
    and machine, which the CSV does not keep. `also` adds the rows of other sources (sweep
    directories or CSVs), e.g. more seeds of the same cells run as another sweep, so that the
    tables show mean ± std and "what to ship" chooses on the mean; a cell id found twice is
    taken from the later source.

    `facts` are CSVs of `ndogo data stats --facts`: the language facts are read there instead of
    computed (they hold what trimming re-splits, which needs the trimmed vocabularies).
    """
    out = Path(out)
    if Path(directory).is_file():
        rows, sweeps = load_rows(directory, status=None), []
    else:
        store = open_store(directory)
        try:
            rows = store.rows()
            sweeps = store.sweeps()
        finally:
            store.close()
    if also:
        by_id = {r["cell_id"]: r for r in rows}
        for source in also:
            by_id.update({r["cell_id"]: r for r in load_rows(source, status=None)})
        rows = list(by_id.values())
    stored, rows = rows, label_corpora(rows)  # one language on two corpora: "wol" and "wol@masakhaner2"
    if not rows:
        raise ValueError(f"{directory}: the sweep has no cells yet")
    out.mkdir(parents=True, exist_ok=True)
    summaries = summarize(rows)
    counts = {st: sum(r["status"] == st for r in rows) for st in ("done", "failed", "running")}
    last = sweeps[-1] if sweeps else {}
    name = last.get("environment", {}).get("name") or Path(last.get("config_path") or str(directory)).stem
    environment = {**last.get("environment", {}), "command": " ".join(last.get("argv", [])),
                   "threads per cell": sorted({r.get("threads") for r in rows if r.get("threads")}),
                   "invocations": len(sweeps)}
    sections = build_sections(summaries, rows, out, read_facts(list(facts)) if facts else None)
    tasks = task_order(s.task for s in summaries)  # in the sections' order
    ship = []
    for task in tasks:  # each task chooses among its own rows, in its own metric's points
        lines = what_to_ship([r for r in rows if task_of(r) == task], str(directory),
                             ordered([s.lang for s in summaries if s.task == task]))
        ship += lines if len(tasks) == 1 else [f"{task_title(task)}, {line}" for line in lines]
    report = Report(name, sections, last.get("config") or "", environment, counts, ship)
    files = [write_csv(stored, out / "results.csv"), write_markdown(report, out / "results.md"), *report.plots,
             write_html(report, out / "index.html")]
    return files
