"""Reports and recommendations from stored rows, and the HTML page as a browser shows it."""

from __future__ import annotations

import csv
import html
import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from ndogo.experiments.store import Store
from ndogo.report import write_report
from ndogo.report.recommend import recommend
from ndogo.report.summary import pareto_front

ROOT = Path(__file__).resolve().parents[1]
QUICKSTART_REPORT = ROOT / "runs" / "sweeps" / "quickstart" / "report" / "index.html"

# (recipe, spec, F1 per seed, size in MB, latency ms, sparsity), for hau; swa is 5 points lower
METHODS = [
    ("baseline", "", (0.79, 0.81), 90.0, 10.0, 0.0),
    ("p50", "prune:sparsity=0.5", (0.78, 0.80), 50.0, 9.0, 0.25),
    ("p90", "prune:sparsity=0.9", (0.60, 0.64), 20.0, 8.0, 0.45),
    ("p50-int8", "prune:sparsity=0.5 | quantize:method=onnx-int8", (0.775, 0.785), 15.0, 3.0, 0.25),
]


# dev F1 equals test F1 except for p50-int8, which is within one point of the baseline on dev
# (−0.8) but two below it on test: what `recommend` picks must follow dev.
DEV_SHIFT = {"p50-int8": 0.012}


def fake_row(lang: str, recipe: str, spec: str, seed: int, f1: float, size: float, latency: float,
             sparsity: float) -> dict:
    return {"cell_id": f"{lang}-{recipe}-{seed}", "model": "minilm", "lang": lang, "recipe": recipe,
            "recipe_spec": spec, "start": "finetuned", "seed": seed, "status": "done", "f1": f1,
            "dev_f1": f1 + DEV_SHIFT.get(recipe, 0.0),
            "precision": f1, "recall": f1,
            "per_type": {"PER": {"f1": min(1.0, f1 + 0.05)}, "LOC": {"f1": max(0.0, f1 - 0.05)}},  # F1s: 0 to 1
            "size_bytes": int(size * 1e6), "latency_ms_b1": latency, "throughput_b32": 100 / latency,
            "sparsity": sparsity, "params": 22_000_000, "nonzero_params": int(22e6 * (1 - sparsity)),
            "threads": 2, "data": "../shared/data/masakhaner", "path": f"/runs/{lang}/{recipe}",
            "baseline_path": f"/runs/minilm-{lang}", "split": "test"}


@pytest.fixture
def sweep_dir(tmp_path: Path) -> Path:
    store = Store(tmp_path / "sweep")
    store.begin_sweep("configs/study.toml", 'name = "study"\n', ["ndogo", "sweep"],
                      {"name": "study", "versions": {"torch": "2.x"}, "machine": {"cpu": "AMD EPYC", "cores": 2}})
    for lang, shift in (("hau", 0.0), ("swa", -0.05)):
        for recipe, spec, f1s, size, latency, sparsity in METHODS:
            for seed, f1 in zip((1, 2), f1s, strict=True):
                store.put(fake_row(lang, recipe, spec, seed, f1 + shift, size, latency, sparsity))
    store.put({**fake_row("hau", "broken", "quantize:method=x", 1, 0, 1, 1, 0), "status": "failed",
               "f1": None, "error": "ValueError: no method x"})
    store.close()
    return tmp_path / "sweep"


def test_report_writes_every_file_with_the_studys_layout(sweep_dir: Path, tmp_path: Path) -> None:
    files = write_report(sweep_dir, tmp_path / "report")
    names = {p.name for p in files}
    assert names == {"results.csv", "results.md", "f1_vs_sparsity.png", "f1_vs_size.png", "f1_vs_latency.png",
                     "atlas_minilm.png", "index.html"}
    assert all(p.stat().st_size > 0 for p in files)
    md = (tmp_path / "report" / "results.md").read_text()
    # a row per language, a column per method, F1 mean ± std over seeds and Δ to the baseline in points
    assert "| language | baseline | p50 | p90 | p50-int8 |" in md
    assert "| hau | 80.00 ± 1.41 | 79.00 ± 1.41 (−1.00) | 62.00 ± 2.83 (−18.00) | 78.00 ± 0.71 (−2.00) |" in md
    assert "| **average** | **77.50** | **76.50 (−1.00)** |" in md
    assert "| hau | 90.0 | 50.0 (1.80× smaller) |" in md
    assert "| hau | 10.00 | 9.00 (1.11× faster) |" in md
    assert "ValueError: no method x" in md  # the failed cell is listed, not hidden
    # one-stage methods the study also ran sit beside its numbers; chains (p50-int8) are ours alone
    assert "| p50 | 2 | -1.00 [-1.00 … -1.00] | 44.4 | 10.0 | – | – | – | holds to 50–60% sparsity" in md
    assert "beside the study" in md and "| p50-int8 | 2 |" not in md.split("beside the study")[1].split("###")[0]
    with (tmp_path / "report" / "results.csv").open() as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == 17 and {"f1_PER", "f1_LOC"} <= set(rows[0])
    page = (tmp_path / "report" / "index.html").read_text()
    assert page.count('src="data:image/png;base64,') == 4
    assert "AMD EPYC" in page and "name = &quot;study&quot;" in page  # environment and config recorded


def test_pareto_front() -> None:
    points = [(90, 80), (50, 79), (20, 62), (15, 78), (60, 70), (15, 60)]
    assert sorted(pareto_front(points)) == [0, 1, 3]


def test_recommend_picks_the_smallest_within_the_budget(sweep_dir: Path) -> None:
    assert recommend(sweep_dir, "hau", 1.0, split="test")["recipe"] == "p50"
    two = recommend(sweep_dir, "hau", 2.0, split="test")
    assert two["recipe"] == "p50-int8" and two["f1_drop_points"] == 2.0 and two["size_x"] == 6.0
    assert "--recipe 'prune:sparsity=0.5 | quantize:method=onnx-int8'" in two["command"]
    assert "/runs/minilm-hau" in two["command"]
    assert recommend(sweep_dir, "hau", 0.5, split="test")["recipe"] == "baseline"
    assert recommend(sweep_dir, "swa", 1.0, optimize="latency", split="test")["recipe"] == "p50"


def test_recommend_chooses_on_dev_and_reports_test(sweep_dir: Path) -> None:
    """#15: p50-int8 is −0.8 on dev and −2.0 on test; the default (dev) picks it and shows test beside it."""
    from ndogo.report.recommend import format_recommendation

    choice = recommend(sweep_dir, "hau", 1.0)
    assert choice["chosen_on"] == "dev" and choice["recipe"] == "p50-int8"
    assert choice["dev_f1_drop_points"] == 0.8 and choice["f1_drop_points"] == 2.0
    text = format_recommendation(choice)
    assert "chosen on dev" in text and "(reported, not used to choose)" in text
    assert recommend(sweep_dir, "hau", 0.5)["recipe"] == "baseline"
    with pytest.raises(ValueError, match="no finished cells for language 'yor'"):
        recommend(sweep_dir, "yor", 1.0)
    with pytest.raises(ValueError, match="--optimize"):
        recommend(sweep_dir, "hau", 1.0, optimize="speed")


def test_a_baseline_that_found_no_entity_is_never_shipped(tmp_path: Path) -> None:
    """minilm on Amharic tags every word O: dev F1 0 is no model to ship, and the report's line says why."""
    from ndogo.report.build import what_to_ship
    from ndogo.report.recommend import recommend_rows

    rows = [fake_row("amh", "baseline", "", 42, 0.0, 91, 20, 0.0),
            {**fake_row("amh", "onnx-int8", "quantize:method=onnx-int8", 42, 0, 23, 4, 0.0), "status": "failed",
             "f1": None, "dev_f1": None, "error": "not run: its baseline learned nothing"}]
    with pytest.raises(ValueError, match=r"minilm found no entity in amh's dev set \(F1 0.00\)"):
        recommend_rows(rows, "atlas.csv", "amh", 1.0)
    assert what_to_ship(rows, "atlas.csv", ["amh"])[0].startswith("amh: nothing to ship (the baseline of minilm")
    # another model that reads the language is still chosen from
    me5s = [{**r, "model": "me5s", "cell_id": r["cell_id"] + "-me5s"} for r in
            (fake_row("amh", "baseline", "", 42, 0.6, 487, 50, 0.0),
             fake_row("amh", "onnx-int8", "quantize:method=onnx-int8", 42, 0.598, 120, 10, 0.0))]
    choice = recommend_rows(rows + me5s, "atlas.csv", "amh", 1.0)
    assert (choice["model"], choice["recipe"]) == ("me5s", "onnx-int8")


def chromium() -> str:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        if found := shutil.which(name):
            return found
    pytest.skip("no chromium binary found (Debian: apt-get install -y chromium)")


CHECK = """<script>
window.addEventListener("load", () => {
  const imgs = Array.from(document.images);
  const result = {count: imgs.length,
    broken: imgs.filter(i => !(i.complete && i.naturalWidth > 0)).map(i => i.alt),
    external: imgs.filter(i => !i.src.startsWith("data:")).map(i => i.src),
    tables: document.querySelectorAll("table").length,
    // #19.17: "what to ship" first; plots at the page's width, drawn at least that many pixels wide
    shipFirst: (() => {
      const ship = document.querySelector("#ship"), table = document.querySelector("table");
      return !!ship && !!table && ship.getBoundingClientRect().top < table.getBoundingClientRect().top;
    })(),
    shipLines: document.querySelectorAll("#ship li").length,
    widths: imgs.map(i => [Math.round(i.getBoundingClientRect().width), i.naturalWidth]),
    body: Math.round(document.body.getBoundingClientRect().width),
    overflow: document.documentElement.scrollWidth > window.innerWidth};
  const pre = document.createElement("pre");
  pre.id = "ndogo-check";
  pre.textContent = JSON.stringify(result);
  document.body.appendChild(pre);
});
</script>"""


def load_in_chromium(page: Path, tmp_path: Path) -> dict:
    """Open a copy of the page, alone in an empty folder (so only inlined images can load), in headless Chromium."""
    alone = tmp_path / "alone"
    alone.mkdir()
    copy = alone / "index.html"
    copy.write_text(page.read_text(encoding="utf-8").replace("</body>", CHECK + "</body>"), encoding="utf-8")
    cmd = [chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
           "--disable-background-networking", "--disable-component-update", "--disable-sync",
           f"--user-data-dir={tmp_path / 'profile'}", "--virtual-time-budget=10000", "--window-size=1440,2400",
           "--dump-dom",
           copy.as_uri()]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=120, env={**os.environ, "HOME": str(tmp_path)})
    found = re.search(r'<pre id="ndogo-check">(.*?)</pre>', done.stdout, re.S)
    assert found, f"chromium did not render the page (exit {done.returncode}): {done.stderr[-1500:]}"
    return json.loads(html.unescape(found.group(1)))


def test_index_html_in_headless_chromium(sweep_dir: Path, tmp_path: Path) -> None:
    write_report(sweep_dir, tmp_path / "report")
    result = load_in_chromium(tmp_path / "report" / "index.html", tmp_path)
    # four plots: F1 vs sparsity, vs size, vs latency, and the atlas map of the one model
    assert result["count"] == 4 and result["broken"] == [] and result["external"] == []
    assert result["tables"] >= 5
    assert result["shipFirst"] and result["shipLines"] == 2  # hau and swa
    assert not result["overflow"]
    for shown, natural in result["widths"]:
        assert shown >= 0.95 * result["body"] - 40 and natural >= 1300, result  # full width, not upscaled


def test_plots_keep_titles_inside_and_labels_apart(sweep_dir: Path, tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    """#19.17: the F1-vs-sparsity title was clipped and the F1-vs-size labels overlapped."""
    import matplotlib.pyplot as plt

    figures = []
    monkeypatch.setattr(plt, "close", lambda fig=None: figures.append(fig))
    write_report(sweep_dir, tmp_path / "report")
    assert len(figures) == 4
    for fig in figures:
        fig.canvas.draw()
        renderer = fig.canvas.get_renderer()
        title = fig._suptitle.get_window_extent(renderer)
        assert fig.bbox.x0 <= title.x0 and title.x1 <= fig.bbox.x1 and title.y1 <= fig.bbox.y1
        for ax in fig.axes:
            boxes = [t.get_window_extent(renderer) for t in ax.texts]
            assert not any(a.overlaps(b) for i, a in enumerate(boxes) for b in boxes[i + 1:])


def test_the_atlas_map_shows_every_language_and_method_and_marks_noise(sweep_dir: Path, tmp_path: Path,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    """Language × method ΔF1: a change inside the baseline's seed spread is bracketed, not shown as an effect."""
    import matplotlib.pyplot as plt

    figures = []
    monkeypatch.setattr(plt, "close", lambda fig=None: figures.append(fig))
    write_report(sweep_dir, tmp_path / "report")
    atlas = next(f for f in figures if "fp32 baseline" in f._suptitle.get_text())
    delta = atlas.axes[0]
    assert [t.get_text() for t in delta.get_yticklabels()] == ["hau", "swa"]
    assert [t.get_text() for t in delta.get_xticklabels()] == ["p50", "p90", "p50-int8"]
    texts = [t.get_text() for t in delta.texts]
    # hau's baseline is 80.00 ± 1.41 over two seeds: p50's −1.00 is noise, p90's −18.00 and p50-int8's −2.00 are not
    assert texts[:3] == ["(-1.0)", "-18.0", "-2.0"]
    assert "seed spread" in atlas._suptitle.get_text()


def test_a_language_whose_baseline_found_nothing_keeps_its_row_on_the_map(sweep_dir: Path, tmp_path: Path,
                                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    """amh under minilm: baseline F1 0, compressions not run; the map shows the row and says so."""
    import matplotlib.pyplot as plt

    store = Store(sweep_dir)
    store.put(fake_row("amh", "baseline", "", 1, 0.0, 91, 20, 0.0))
    store.close()
    figures = []
    monkeypatch.setattr(plt, "close", lambda fig=None: figures.append(fig))
    write_report(sweep_dir, tmp_path / "report")
    delta = next(f for f in figures if "fp32 baseline" in f._suptitle.get_text()).axes[0]
    assert [t.get_text() for t in delta.get_yticklabels()] == ["hau", "swa", "amh (baseline F1 0)"]
    assert [t.get_text() for t in delta.texts][-3:] == ["not run"] * 3


def test_structured_pruning_is_shown_as_what_it_removes(sweep_dir: Path, tmp_path: Path) -> None:
    """#19.17: a 25% FFN recipe has no zeros; the table said 0.0% while the plot put it at 25%."""
    from ndogo.report.build import pruning_level
    from ndogo.report.summary import summarize

    row = fake_row("hau", "ffn25", "prune:method=ffn,sparsity=0.25,recover_epochs=1", 1, 0.78, 60, 7, 0.0)
    (ffn,) = summarize([row])
    assert pruning_level(ffn) == "25% of FFN neurons"
    (mag,) = summarize([fake_row("hau", "p50", "prune:sparsity=0.5", 1, 0.78, 60, 7, 0.25)])
    assert pruning_level(mag) == "50% of encoder Linear weights"


def test_the_committed_atlas_page_in_headless_chromium(tmp_path: Path) -> None:
    """#15.3: the atlas page a person reads, from the committed rows of both corpora and both models (the
    command of docs/lab/results-log-2026-11-to-12.md §10): every plot drawn, nothing cut off, a "what to ship"
    line per language."""
    from ndogo.experiments.store import load_sources

    bench = ROOT / "docs" / "bench"
    rows, *also = (bench / f"atlas-{name}.csv" for name in ("minilm", "seeds", "me5s", "mnr2"))
    write_report(rows, tmp_path / "atlas", also=also, facts=[bench / "atlas-facts.csv", bench / "atlas-facts-mnr2.csv"])
    assert "test words re-split by trimming" in (tmp_path / "atlas" / "results.md").read_text()
    result = load_in_chromium(tmp_path / "atlas" / "index.html", tmp_path)
    assert result["count"] == 5 and result["broken"] == [] and result["external"] == []  # a map per model
    assert result["shipFirst"] and not result["overflow"]
    languages = {r["lang"] for r in load_sources([rows, *also])}
    assert "ewe@masakhaner2" in languages
    assert result["shipLines"] == len(languages)  # one "what to ship" line per language of the atlas
    for shown, natural in result["widths"]:
        assert shown >= 0.95 * result["body"] - 40 and natural >= 1300, result


def test_quickstart_index_html_in_headless_chromium(tmp_path: Path) -> None:
    """The report of the real quickstart run (configs/quickstart.toml on ../shared/data), once it was run."""
    if not QUICKSTART_REPORT.is_file():
        pytest.skip(f"{QUICKSTART_REPORT} is absent: run the quickstart and its report first (see README)")
    result = load_in_chromium(QUICKSTART_REPORT, tmp_path)
    assert result["count"] >= 2 and result["broken"] == [] and result["external"] == []


def test_language_facts_come_from_the_corpus_and_the_tokenizers(tiny_model: Path, tiny_corpus: Path) -> None:
    """The atlas's per-language facts: training size, entity density, fertility, unseen sub-words."""
    from ndogo.data.corpus import load_local
    from ndogo.data.stats import split_stats
    from ndogo.data.tokenization import tokenizer_facts
    from ndogo.models.loading import load_tokenizer
    from ndogo.report.facts import facts_rows

    row = {**fake_row("hau", "baseline", "", 1, 0.8, 90, 10, 0.0), "data": str(tiny_corpus),
           "path": str(tiny_model)}
    header, (line,) = facts_rows([row, {**row, "lang": "xyz", "data": "/nowhere"}])  # no corpus: no row
    corpus = load_local(tiny_corpus, "hau", ("train", "test"))
    stats = split_stats(corpus.splits["train"])
    facts = tokenizer_facts(load_tokenizer(tiny_model), [s.tokens for s in corpus.splits["train"]],
                            [s.tokens for s in corpus.splits["test"]])
    assert header[:5] == ["language", "train sentences", "train entities", "entities / 100 tokens",
                          "minilm: sub-words / word (test)"]
    assert line == ["hau", f"{stats['sentences']:,}", f"{stats['entities']:,}",
                    f"{100 * stats['entities'] / stats['tokens']:.1f}", f"{facts['fertility_test']:.2f}",
                    f"{100 * facts['unseen_subwords_test']:.1f}%"]


def test_a_committed_csv_of_rows_is_reported_like_its_sweep(sweep_dir: Path, tmp_path: Path) -> None:
    """docs/bench/*.csv outlive their sweep directories: `ndogo report ROWS.csv` gives the same tables."""
    from_sweep = write_report(sweep_dir, tmp_path / "a")
    csv_path = next(p for p in from_sweep if p.name == "results.csv")
    from_csv = write_report(csv_path, tmp_path / "b")
    assert {p.name for p in from_csv} == {p.name for p in from_sweep}

    def tables(path: Path) -> str:  # the tables, without the sweep's header (config, machine)
        text = path.read_text()
        return text[text.index("| language |"):]

    assert tables(tmp_path / "b" / "results.md") == tables(tmp_path / "a" / "results.md")


def test_sweep_table_keeps_only_the_languages_and_recipes_asked_for(sweep_dir: Path, tmp_path: Path) -> None:
    """`ndogo report --table --lang/--recipe` (was bench/sweep_table.py): a committed CSV of one view (the baseline
    always kept), brought up to date from a sweep named after it."""
    from typer.testing import CliRunner

    from ndogo.cli import app
    from ndogo.experiments.store import load_rows

    recipe = next(r for r in (m[0] for m in METHODS) if r != "baseline")
    earlier = tmp_path / "earlier.csv"  # the committed rows, then the sweep claims one cell again
    done = CliRunner().invoke(app, ["report", str(sweep_dir), "--table", "--csv", str(earlier)])
    assert done.exit_code == 0, done.output
    assert "| hau | p50 | 78.00 | -1.00 | 78.00 | -1.00 | 22.0M | 50.0 | 1.80× | 9.00 | 1.11× |" in done.stdout
    store = Store(sweep_dir)  # claimed, not finished: it must neither hide the earlier row nor be one
    store.mark_running(fake_row("swa", recipe, "", 1, 0.0, 1, 1, 0))
    store.close()
    out = tmp_path / "view.csv"
    done = CliRunner().invoke(app, ["report", str(earlier), str(sweep_dir), "--lang", "swa", "--recipe", recipe,
                                    "--seeds", "--csv", str(out)])
    assert done.exit_code == 0, done.output
    rows = list(csv.DictReader(out.open()))
    assert {(r["lang"], r["recipe"]) for r in rows} == {("swa", "baseline"), ("swa", recipe)}
    assert len(rows) == 4 and {r["status"] for r in rows} == {"done"}
    assert list(rows[0]) == next(csv.reader(earlier.open()))  # results.csv's columns
    assert any(r["status"] == "running" for r in load_rows(sweep_dir, None))
    assert f"| swa | {recipe} | 2 |" in done.stdout and "| hau |" not in done.stdout
    pivot = CliRunner().invoke(app, ["report", str(earlier), "--pivot"])
    assert pivot.exit_code == 0 and "| lang | baseline test F1 | p50 | p90 | p50-int8 |" in pivot.stdout
    assert "| hau | 80.00 | -1.00 | -18.00 | -2.00 |" in pivot.stdout


def test_report_options_of_the_table_and_of_the_report_are_not_mixed(sweep_dir: Path, tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from ndogo.cli import app

    for args, line in ((["--lang", "hau", "--out", str(tmp_path / "r")], "error: --lang goes with --table (the sweep "
                                                                         "table); a report's rows are its results.csv"),
                       (["--table", "--out", str(tmp_path / "r")], "error: --out writes a report; --table prints the "
                                                                   "sweep table (its rows with --csv)"),
                       ([], "error: --out: name the report folder (or print the sweep table with --table)")):
        done = CliRunner().invoke(app, ["report", str(sweep_dir), *args])
        assert (done.exit_code, done.output.strip()) == (2, line)
    assert not (tmp_path / "r").exists()


def test_more_seeds_from_another_source_join_the_tables(tmp_path: Path) -> None:
    """`ndogo report ROWS.csv --also SEEDS.csv`: the seed spread run as another sweep is read with the atlas."""
    one = Store(tmp_path / "atlas")
    one.begin_sweep("configs/atlas.toml", 'name = "atlas"\n', ["ndogo", "sweep"], {"name": "atlas"})
    more = Store(tmp_path / "seeds")
    more.begin_sweep("configs/seeds.toml", 'name = "seeds"\n', ["ndogo", "sweep"], {"name": "seeds"})
    for recipe, spec, f1s, size, latency, sparsity in METHODS[:2]:
        one.put(fake_row("hau", recipe, spec, 42, f1s[0], size, latency, sparsity))
        more.put(fake_row("hau", recipe, spec, 7, f1s[1], size, latency, sparsity))
    one.close()
    more.close()

    write_report(tmp_path / "atlas", tmp_path / "alone")
    write_report(tmp_path / "atlas", tmp_path / "both", also=[tmp_path / "seeds"])
    alone, both = (tmp_path / name / "results.md" for name in ("alone", "both"))
    assert "| hau | 79.00 |" in alone.read_text()
    assert "| hau | 80.00 ± 1.41 |" in both.read_text()  # mean ± std of 79 and 81
    with (tmp_path / "both" / "results.csv").open(newline="") as handle:
        assert sorted(int(r["seed"]) for r in csv.DictReader(handle)) == [7, 7, 42, 42]


def test_two_experiments_of_one_seed_are_not_averaged_as_seeds() -> None:
    """wol on MasakhaNER 1.0 and on 2.0, seed 42 both: a report that merged them would print a mean of two corpora."""
    from ndogo.report.summary import summarize

    one = fake_row("wol", "baseline", "", 42, 0.44, 91, 20, 0.0)
    two = {**one, "cell_id": one["cell_id"] + "-mnr2", "f1": 0.62, "data": "/data/masakhaner2"}
    assert len(summarize([one, {**one, "cell_id": "other", "seed": 1}])) == 1  # two seeds: one summary
    with pytest.raises(ValueError, match=r"wol: minilm baseline has two rows for seed 42 .*/data/masakhaner2"):
        summarize([one, two])


def test_language_facts_can_come_from_the_atlas_facts_csv(sweep_dir: Path, tmp_path: Path) -> None:
    """`report --facts`: `ndogo data stats --facts` rows (with what trimming re-splits) make the facts table, each
    language matched on its corpus; a language the CSV lacks is left out, not invented."""
    facts = tmp_path / "facts.csv"
    header = ("lang,corpus,script,train_sentences,train_tokens,train_entities,entities_per_100_tokens,tokenizer,"
              "fertility_train,fertility_test,unseen_subwords_test,unknown_words_test,resplit_words_test\n")
    facts.write_text(header
                     + "hau,masakhaner,Latin,1912,55010,4144,7.53,minilm,1.8,1.87,0.016,0.0,0.0033\n"
                     + "hau,masakhaner2,Latin,5716,1,1,1.0,minilm,1.0,9.99,0.5,0.0,0.5\n", encoding="utf-8")
    write_report(sweep_dir, tmp_path / "report", facts=[facts])
    page = (tmp_path / "report" / "results.md").read_text()
    assert "| hau | 1,912 | 4,144 | 7.5 | 1.87 | 1.6% | 0.33% (minilm) |" in page
    assert "9.99" not in page and "| swa | " not in page.split("Language facts")[1].split("###")[0]
    bad = tmp_path / "bad.csv"
    bad.write_text("lang,x\nhau,1\n", encoding="utf-8")
    with pytest.raises(ValueError, match="not a facts CSV"):
        write_report(sweep_dir, tmp_path / "bad", facts=[bad])


def test_report_facts_reads_what_data_stats_facts_writes(tiny_model: Path, tiny_corpus: Path, tmp_path: Path) -> None:
    """`ndogo data stats --facts --csv` (was bench/atlas_facts.py) writes the CSV `ndogo report --facts` reads."""
    from typer.testing import CliRunner

    from ndogo.cli import app
    from ndogo.data.corpus import load_local
    from ndogo.data.tokenization import tokenizer_facts
    from ndogo.models.loading import load_tokenizer

    corpus = tmp_path / "masakhaner"
    shutil.copytree(tiny_corpus, corpus)
    facts = tmp_path / "facts.csv"
    done = CliRunner().invoke(app, ["data", "stats", str(corpus), "--facts", "--tokenizer", str(tiny_model),
                                    "--csv", str(facts)])
    assert done.exit_code == 0, done.output
    (row,) = list(csv.DictReader(facts.open(encoding="utf-8")))
    committed = (ROOT / "docs" / "bench" / "atlas-facts.csv").open(encoding="utf-8").readline().strip().split(",")
    assert list(row) == [c for c in committed if c != "resplit_words_test"]  # no --trim, no re-split column
    splits = load_local(corpus, "hau", ("train", "test")).splits
    expected = tokenizer_facts(load_tokenizer(tiny_model), [s.tokens for s in splits["train"]],
                               [s.tokens for s in splits["test"]])
    assert (row["lang"], row["corpus"], row["script"], row["train_sentences"]) == ("hau", "masakhaner", "Latin", "48")
    assert {k: float(row[k]) for k in expected} == expected
    store = Store(tmp_path / "sweep")
    store.begin_sweep("configs/study.toml", 'name = "study"\n', ["ndogo", "sweep"], {"name": "study"})
    for recipe, spec, f1s, size, latency, sparsity in METHODS:
        store.put({**fake_row("hau", recipe, spec, 1, f1s[0], size, latency, sparsity), "model": str(tiny_model),
                   "data": str(corpus)})
    store.close()
    write_report(tmp_path / "sweep", tmp_path / "report", facts=[facts])
    page = (tmp_path / "report" / "results.md").read_text()
    assert (f"| hau | 48 | {int(row['train_entities']):,} | {float(row['entities_per_100_tokens']):.1f} | "
            f"{float(row['fertility_test']):.2f} | {100 * float(row['unseen_subwords_test']):.1f}% |") in page


def test_data_stats_facts_gives_the_committed_atlas_facts(tmp_path: Path) -> None:
    """The command remakes a row of docs/bench/atlas-facts.csv as committed, trimming's re-split share included."""
    from typer.testing import CliRunner

    from conftest import need_shared
    from ndogo.cli import app

    shared = need_shared()
    out = tmp_path / "luo.csv"
    done = CliRunner().invoke(app, ["data", "stats", str(shared / "masakhaner"), "--lang", "luo", "--facts",
                                    "--tokenizer", "minilm", "--trim", "minilm=9500", "--corpus",
                                    str(shared / "monolingual"), "--csv", str(out)])
    assert done.exit_code == 0, done.output
    committed = [r for r in csv.DictReader((ROOT / "docs" / "bench" / "atlas-facts.csv").open(encoding="utf-8"))
                 if r["lang"] == "luo" and r["tokenizer"] == "minilm"]
    assert list(csv.DictReader(out.open(encoding="utf-8"))) == committed


def test_data_stats_facts_options_say_what_they_need(tiny_corpus: Path) -> None:
    from typer.testing import CliRunner

    from ndogo.cli import app

    for args, line in ((["--facts"], "error: --facts: name at least one --tokenizer (e.g. --tokenizer minilm): the "
                                     "facts are per tokenizer"),
                       (["--trim", "minilm=9500"], "error: --trim goes with --facts (the language facts' rows)"),
                       (["--facts", "--tokenizer", "minilm", "--trim", "minilm"],
                        "error: --trim 'minilm': expected MODEL=KEEP, e.g. minilm=9500"),
                       (["--facts", "--tokenizer", "minilm", "--trim", "me5s=100"],
                        "error: --trim me5s=...: me5s is not one of the --tokenizer models (minilm)")):
        done = CliRunner().invoke(app, ["data", "stats", str(tiny_corpus), *args])
        assert (done.exit_code, done.output.strip()) == (2, line)


def test_a_model_with_zeros_of_its_own_is_not_plotted_as_pruned() -> None:
    """me5s's fine-tuned weights are 9% zeros: its quantized model has that sparsity too, and is no pruned model."""
    from ndogo.report.build import pruning_level
    from ndogo.report.plots import requested_sparsity
    from ndogo.report.summary import summarize

    base, q, p = summarize([fake_row("hau", "baseline", "", 1, 0.8, 487, 60, 0.094),
                            fake_row("hau", "onnx-int8", "quantize:method=onnx-int8", 1, 0.8, 135, 12, 0.093),
                            fake_row("hau", "p50", "prune:sparsity=0.5", 1, 0.7, 437, 40, 0.18)])
    assert requested_sparsity(q, base.sparsity) is None and requested_sparsity(base, base.sparsity) is None
    assert requested_sparsity(p, base.sparsity) == 0.5
    assert pruning_level(q, base.sparsity) == "9.3% zeros"
    student = summarize([fake_row("hau", "distil6", "distill:mode=task,student_layers=6", 1, 0.8, 444, 20, 0.11)])[0]
    assert requested_sparsity(student, base.sparsity) is None  # a smaller model, not a pruned one


def test_a_single_seed_cell_is_compared_with_its_own_seeds_baseline() -> None:
    """Δ pairs each seed with the baseline of the same seed: a seed-42 cell against the seed-42 baseline,
    not against a three-seed mean (which would mix the baseline's spread into the cell's Δ)."""
    from ndogo.report.summary import summarize

    rows = [fake_row("hau", "baseline", "", seed, f1, 90, 20, 0.0) for seed, f1 in ((42, 0.80), (1, 0.76), (2, 0.78))]
    rows.append(fake_row("hau", "int8", "quantize:method=onnx-int8", 42, 0.79, 23, 5, 0.0))
    rows += [fake_row("hau", "student", "distill:student_layers=3", seed, f1, 40, 8, 0.0)
             for seed, f1 in ((42, 0.78), (1, 0.75), (2, 0.78))]
    by = {s.recipe: s for s in summarize(rows)}
    assert by["int8"].delta == pytest.approx(-1.0) and by["int8"].paired  # not 79 - 78 = +1.0
    assert by["student"].delta == pytest.approx((-2 - 1 + 0) / 3)
    assert by["student"].delta_std == pytest.approx(1.0)
    other = fake_row("hau", "other", "quantize:method=x", 7, 0.70, 23, 5, 0.0)  # no baseline of seed 7
    (s,) = [x for x in summarize([*rows, other]) if x.recipe == "other"]
    assert not s.paired and s.delta == pytest.approx(70 - 78)
    # students of one teacher: their seeds are the students'; every seed is read against that teacher,
    # none is dropped because the teacher has no row of its seed
    one_teacher = [rows[0]] + [fake_row("hau", "kid", "distill:student_layers=3", seed, f1, 40, 8, 0.0)
                               for seed, f1 in ((42, 0.79), (1, 0.77), (2, 0.78))]
    (kid,) = [x for x in summarize(one_teacher) if x.recipe == "kid"]
    assert not kid.paired and kid.delta == pytest.approx(-2.0) and kid.delta_std == pytest.approx(1.0)


def test_speed_ups_pair_each_seed_with_the_baseline_timed_in_its_own_run() -> None:
    """A speed-up is read as F1's Δ is: each seed against the baseline of the same seed (timed in the same sweep
    run, beside the same other jobs), then the mean; not the mean baseline over the mean cell, which mixes two
    runs' timings (one teacher was timed at 31.97 and 23.51 ms in two runs). Without a baseline of the cell's
    seed, the ratio of the means stands in."""
    from ndogo.report.summary import summarize

    rows = [fake_row("hau", "baseline", "", 42, 0.80, 90, 30, 0.0),
            fake_row("hau", "baseline", "", 1, 0.80, 90, 20, 0.0),
            fake_row("hau", "kid", "distill:student_layers=3", 42, 0.79, 9, 3, 0.0),
            fake_row("hau", "kid", "distill:student_layers=3", 1, 0.79, 9, 4, 0.0),
            fake_row("hau", "int8", "quantize:method=onnx-int8", 42, 0.79, 23, 6, 0.0)]
    for r in rows:
        r["latency_e2e_ms_b1"] = r["latency_ms_b1"] + 1
    by = {s.recipe: s for s in summarize(rows)}
    assert by["kid"].speedup_b1 == pytest.approx((30 / 3 + 20 / 4) / 2)  # 7.5, not 25 / 3.5 = 7.14
    assert by["kid"].speedup_e2e_b1 == pytest.approx((31 / 4 + 21 / 5) / 2)
    # throughput (100 / latency here): higher is faster, the cell's over the baseline's
    assert by["kid"].speedup_b32 == pytest.approx(((100 / 3) / (100 / 30) + (100 / 4) / (100 / 20)) / 2)
    assert by["int8"].speedup_b1 == pytest.approx(30 / 6)  # seed 42's own baseline, not the two-seed mean (25 / 6)
    stray = fake_row("hau", "int8b", "quantize:method=onnx-int8", 7, 0.79, 23, 5, 0.0)  # no seed-7 baseline
    (s,) = [x for x in summarize([*rows, stray]) if x.recipe == "int8b"]
    assert s.speedup_b1 == pytest.approx(25 / 5)
    untimed = {**fake_row("hau", "int8c", "quantize:method=onnx-int8", 42, 0.79, 23, 5, 0.0), "latency_ms_b1": None}
    (s,) = [x for x in summarize([*rows, untimed]) if x.recipe == "int8c"]
    assert s.speedup_b1 is None


def test_recommend_says_where_dev_and_test_disagree_about_the_budget(tmp_path: Path) -> None:
    """The choice is dev's; test is reported beside it, and a pick that test puts over the budget says so."""
    from ndogo.report.recommend import format_recommendation, recommend_rows

    rows = [fake_row("hau", "baseline", "", 42, 0.80, 90, 20, 0.0),
            {**fake_row("hau", "int8", "quantize:method=onnx-int8", 42, 0.78, 23, 5, 0.0), "dev_f1": 0.795}]
    rows[0]["dev_f1"] = 0.80
    choice = recommend_rows(rows, "rows.csv", "hau", 1.0)
    assert choice["recipe"] == "int8" and choice["other_split_within_budget"] is False
    text = format_recommendation(choice)
    assert "test disagrees: it loses 2.00 points, over the 1-point budget that dev met" in text
    assert "one seed" in text
    agree = recommend_rows(rows, "rows.csv", "hau", 3.0)
    assert agree["other_split_within_budget"] is True and "test agrees" in format_recommendation(agree)


def rows_csv(tmp_path: Path, name: str = "rows.csv", **extra: object) -> Path:
    """The hau rows of the fixture's sweep, as a committed CSV holds them (one seed)."""
    from ndogo.report.build import write_csv

    rows = [{**fake_row("hau", recipe, spec, 1, f1s[0], size, latency, sparsity), **extra}
            for recipe, spec, f1s, size, latency, sparsity in METHODS]
    return write_csv(rows, tmp_path / name)


def edit_csv(path: Path, cell_id: str, column: str, value: str) -> int:
    """Set one field of the row of `cell_id`; returns that row's line number."""
    with path.open(newline="") as handle:
        records = list(csv.reader(handle))
    line = next(i for i, r in enumerate(records) if r[0] == cell_id)
    records[line][records[0].index(column)] = value
    with path.open("w", newline="") as handle:
        csv.writer(handle).writerows(records)
    return line + 1


def cli(*args: str) -> tuple[int, str]:
    from typer.testing import CliRunner

    from ndogo.cli import app

    result = CliRunner().invoke(app, list(args))
    return result.exit_code, result.output.strip()


@pytest.mark.parametrize(("column", "value", "message"), [
    ("latency_ms_b1", "nan", "column latency_ms_b1 is nan; must be a positive number"),  # won as "nan× faster"
    ("size_bytes", "-5", "column size_bytes is -5; must be a positive whole number"),  # won as "−18200056× smaller"
    ("f1", "5", "column f1 is 5; must be a number between 0 and 1 (F1 and its kin are fractions"),
    ("dev_f1", "-0.2", "column dev_f1 is -0.2; must be a number between 0 and 1"),
    ("recall", "1.5", "column recall is 1.5; must be a number between 0 and 1"),
    ("f1_PER", "80", "column f1_PER is 80; must be a number between 0 and 1"),
    ("latency_ms_b1", "0", "column latency_ms_b1 is 0; must be a positive number"),
    ("size_bytes", "12.5", "column size_bytes is 12.5; must be a positive whole number"),
    ("sparsity", "-inf", "column sparsity is -inf; must be a number between 0 and 1"),
    ("seed", "one", "column seed is 'one'; must be a whole number"),
    ("status", "finished", "column status is 'finished'; must be one of done, failed, running"),
    ("lang", "", "column lang is empty; every row of results must have it"),
    ("f1", "", "column f1 is empty (the row is done: it was measured)"),
])
def test_recommend_refuses_a_row_with_an_impossible_number(tmp_path: Path, column: str, value: str,
                                                           message: str) -> None:
    """#35.6: a row read from a CSV is checked against its columns' declared types and ranges, and refused
    with its file and line; whether it is the source or an --also, it is never chosen."""
    good = rows_csv(tmp_path, "good.csv")
    bad = rows_csv(tmp_path, "bad.csv")
    line = edit_csv(bad, "hau-p50-int8-1", column, value)  # the smallest and fastest: it would win
    for source, also in ((bad, ()), (good, (bad,))):
        with pytest.raises(ValueError) as err:
            recommend(source, "hau", 30.0, optimize="latency", also=also)
        assert str(err.value).startswith(f"{bad}:{line}: {message}")
    code, out = cli("recommend", str(good), "--also", str(bad), "--lang", "hau", "--max-f1-drop", "30")
    assert code == 2 and out.startswith(f"error: {bad}:{line}: {message}") and "\n" not in out


def test_an_also_csv_without_an_f1_column_is_refused_not_read_as_unmeasured(tmp_path: Path) -> None:
    """#35.6: its rows replaced the measured rows of the same cells, and hau then read as never measured."""
    good = rows_csv(tmp_path, "good.csv")
    with good.open(newline="") as handle:
        records = list(csv.reader(handle))
    drop = records[0].index("f1")
    no_f1 = tmp_path / "no-f1.csv"
    with no_f1.open("w", newline="") as handle:
        csv.writer(handle).writerows([r[:drop] + r[drop + 1:] for r in records])
    with pytest.raises(ValueError, match=rf"^{re.escape(str(no_f1))}:1: not a CSV of sweep rows \(no f1 column"):
        recommend(good, "hau", 1.0, also=[no_f1])
    assert recommend(good, "hau", 1.0)["recipe"] == "p50-int8"  # the measured rows alone still choose


def big_field(path: Path) -> int:
    return edit_csv(path, "hau-p50-1", "path", "x" * 200_000)


def no_status(path: Path) -> int:
    with path.open(newline="") as handle:
        records = list(csv.reader(handle))
    drop = records[0].index("status")
    with path.open("w", newline="") as handle:
        csv.writer(handle).writerows([r[:drop] + r[drop + 1:] for r in records])
    return 1


def short_line(path: Path) -> int:
    path.write_text(path.read_text() + "extra,minilm,hau,baseline\n")
    return len(path.read_text().splitlines())


@pytest.mark.parametrize(("spoil", "message"), [
    (lambda p: edit_csv(p, "hau-p50-1", "size_bytes", "inf"), "column size_bytes is inf; must be a positive"),
    (lambda p: edit_csv(p, "hau-p50-1", "size_bytes", "1e400"), "column size_bytes is 1e400; must be a positive"),
    (big_field, "a field longer than 131072 characters"),
    (no_status, "not a CSV of sweep rows (no status column"),
    (short_line, "4 fields, but the header names"),
], ids=["inf", "overflow", "huge-field", "no-status", "short-line"])
def test_report_and_recommend_name_the_file_and_line_of_an_unreadable_csv(tmp_path: Path, spoil: object,
                                                                          message: str) -> None:
    """#35.10: OverflowError, _csv.Error and KeyError escaped as tracebacks; each is now one line."""
    path = rows_csv(tmp_path)
    line = spoil(path)  # type: ignore[operator]
    for args in (("recommend", str(path), "--lang", "hau", "--max-f1-drop", "1"),
                 ("report", str(path), "--out", str(tmp_path / "report"))):
        code, out = cli(*args)
        assert code == 2 and "\n" not in out and "Traceback" not in out, out
        assert out.startswith(f"error: {path}:{line}: {message}"), out


def test_recommend_warns_when_the_baseline_itself_is_weak(tmp_path: Path) -> None:
    """#35.21: isiZulu after one epoch (dev F1 32) was recommended plainly. No atlas row for zul: the floor
    speaks; hau has the atlas's minilm baseline (dev 86.14): a baseline far below it is weak, one near it is not."""
    from ndogo.report.recommend import WEAK_FLOOR, format_recommendation, weak_baseline
    from ndogo.report.summary import summarize

    mnr2 = "../shared/data/masakhaner2"
    zul = [{**fake_row("zul", "baseline", "", 42, 0.30, 91, 20, 0.0), "dev_f1": 0.32, "data": mnr2},
           {**fake_row("zul", "int8", "quantize:method=onnx-int8", 42, 0.30, 23, 4, 0.0), "dev_f1": 0.318,
            "data": mnr2}]
    from ndogo.report.build import write_csv

    choice = recommend(write_csv(zul, tmp_path / "zul.csv"), "zul", 1.0)
    warning = choice["baseline_warning"]
    assert warning.startswith(f"the baseline itself is weak: its dev F1 is 32.00, under the floor of {WEAK_FLOOR:.0f} "
                              "(the atlas has no minilm baseline for zul on masakhaner2")
    assert f"  warning  {warning}" in format_recommendation(choice)

    hau = [fake_row("hau", "baseline", "", 42, 0.60, 91, 20, 0.0)]  # masakhaner, as the atlas's hau
    (base,) = summarize(hau)
    weak = weak_baseline(base, "dev")
    assert weak is not None and "its dev F1 is 60.00, 26.14 points below the atlas's minilm baseline for hau on " \
                                "masakhaner (dev F1 86.14, docs/bench/atlas-minilm.csv)" in weak
    (near,) = summarize([fake_row("hau", "baseline", "", 42, 0.80, 91, 20, 0.0)])  # 6 points below: seeds, not weak
    assert weak_baseline(near, "dev") is None
    (other,) = summarize([{**hau[0], "model": "tiny"}])  # no atlas row for this model: the floor, which 60 clears
    assert weak_baseline(other, "dev") is None


def test_recommend_warns_when_dev_chose_the_baseline_s_last_allowed_epoch(tmp_path: Path) -> None:
    """#37: a teacher trains until dev stops improving; me5s's amh teacher chose epoch 10 of at most 10, still
    gaining 0.78 dev points. The row's training record says so, the CSV keeps it (its JSON does not travel),
    and recommend warns, naming the seed; a seed that patience stopped is not named."""
    from ndogo.report.build import write_csv
    from ndogo.report.recommend import format_recommendation

    def trained(row: dict, best: int, run: int, curve: list[float], record_cap: bool = True) -> dict:
        stage = {"best_epoch": best, "epochs_run": run, "patience": 2, "dev_curve": curve}
        if record_cap:
            stage["max_epochs"] = 10
        return {**row, "training": {"1-finetune": stage},
                "stages": [{"stage": "finetune", "options": {"epochs": 10, "patience": 2}, "path": row["path"]}]}

    rising = [0.1 * i for i in range(1, 9)] + [0.8, 0.8078]
    stopped = [0.5, 0.7, 0.8, 0.79, 0.78]
    store = Store(tmp_path / "sweep")
    # seed 42's record predates `max_epochs`: the cap comes from its stage's `epochs` option
    store.put(trained(fake_row("amh", "baseline", "", 42, 0.66, 487, 33, 0.0), 10, 10, rising, record_cap=False))
    store.put(trained(fake_row("amh", "baseline", "", 1, 0.65, 487, 33, 0.0), 3, 5, stopped))
    for seed in (42, 1):
        store.put(fake_row("amh", "int8", "quantize:method=onnx-int8", seed, 0.655, 122, 10, 0.0))
    store.close()

    from ndogo.experiments.store import load_rows

    base = {r["seed"]: r for r in load_rows(tmp_path / "sweep") if r["recipe"] == "baseline"}
    assert (base[42]["best_epoch"], base[42]["epochs_run"], base[42]["max_epochs"]) == (10, 10, 10)
    assert base[42]["dev_curve"].split()[-2:] == ["0.80000", "0.80780"]
    assert (base[1]["best_epoch"], base[1]["epochs_run"], base[1]["max_epochs"]) == (3, 5, 10)
    csv_rows = write_csv(load_rows(tmp_path / "sweep"), tmp_path / "rows.csv")
    again = {r["seed"]: r for r in load_rows(csv_rows) if r["recipe"] == "baseline"}
    assert {k: again[42][k] for k in ("best_epoch", "epochs_run", "max_epochs", "dev_curve")} == \
        {k: base[42][k] for k in ("best_epoch", "epochs_run", "max_epochs", "dev_curve")}

    for source in (tmp_path / "sweep", csv_rows):
        choice = recommend(source, "amh", 1.0)
        warning = choice["baseline_warning"]
        assert warning == ("the baseline may not have converged: its dev F1 was still rising when its schedule "
                           "ended (seed 42: best epoch 10 of at most 10, +0.78 dev points over epoch 9); a longer "
                           "schedule may raise it, and every drop here is measured against it"), warning
        assert f"  warning  {warning}" in format_recommendation(choice)
    # patience stopped both seeds: no warning
    store = Store(tmp_path / "calm")
    for seed in (42, 1):
        store.put(trained(fake_row("amh", "baseline", "", seed, 0.66, 487, 33, 0.0), 3, 5, stopped))
        store.put(fake_row("amh", "int8", "quantize:method=onnx-int8", seed, 0.655, 122, 10, 0.0))
    store.close()
    assert recommend(tmp_path / "calm", "amh", 1.0)["baseline_warning"] is None


def test_the_model_card_of_a_weak_baseline_says_so(tiny_model: Path, tmp_path: Path) -> None:
    """#35.21: `recommend --ship` writes the warning into the card, above the results."""
    store = Store(tmp_path / "sweep")
    store.put({**fake_row("zul", "baseline", "", 42, 0.30, 91, 20, 0.0), "dev_f1": 0.32, "path": str(tiny_model),
               "data": "../shared/data/masakhaner2", "is_baseline": True})
    store.close()
    code, out = cli("recommend", str(tmp_path / "sweep"), "--lang", "zul", "--max-f1-drop", "1",
                    "--ship", str(tmp_path / "bundle"))
    assert code == 0, out
    body = (tmp_path / "bundle" / "README.md").read_text(encoding="utf-8").split("## Results", 1)[1]
    assert body.lstrip().startswith("**Warning:** the baseline itself is weak: its dev F1 is 32.00, under the floor")


def test_the_rebuild_line_of_csv_rows_names_the_baseline_it_starts_from(tmp_path: Path) -> None:
    """Committed CSVs carry no baseline_path: the rebuild command said '<pretrained model>' for a chain that
    starts from the fine-tuned baseline."""
    from ndogo.report.build import write_csv

    rows = [{**fake_row("hau", recipe, spec, 42, f1, size, 5, 0.0), "baseline_path": None}
            for recipe, spec, f1, size in (("baseline", "", 0.80, 90), ("int8", "quantize:method=onnx-int8", 0.80, 23))]
    choice = recommend(write_csv(rows, tmp_path / "rows.csv"), "hau", 1.0)
    assert choice["command"].startswith("ndogo compress '<the fine-tuned minilm baseline for hau>' --recipe")



def task_row(task: str, lang: str, recipe: str, spec: str, seed: int, score: float, size: float, latency: float,
             data: str) -> dict:
    """A row of another task beside the NER rows of `fake_row`: its headline is `score` in its task's metric
    (f1 for a task this version does not know), its corpus `data`, its labels not entity types."""
    from ndogo.tasks import get_task, task_names

    metric = get_task(task).metric if task in task_names() else "f1"
    row = fake_row(lang, recipe, spec, seed, 0.0, size, latency, 0.0)
    return {**row, "cell_id": f"{task}-{lang}-{recipe}-{seed}", "task": task, "metric": metric,
            "f1": None, "dev_f1": None, "precision": None, "recall": None,
            metric: score, f"dev_{metric}": score,
            "per_type": {"sports": {"f1": score}, "health": {"f1": score}}, "data": data}


def add_rows(sweep: Path, task: str, scores: dict[str, float], data: str) -> Path:
    """Two seeds of baseline, p50 and p90 on each language of `scores` (the baseline's score; p50 10 points
    below, p90 15), of the same recipe names as the NER sweep: a table or an average that mixed them shows it."""
    store = Store(sweep)
    for lang, score in scores.items():
        for seed in (1, 2):
            store.put(task_row(task, lang, "baseline", "", seed, score, 91.0, 12.0, data))
            store.put(task_row(task, lang, "p50", "prune:sparsity=0.5", seed, score - 0.10, 51.0, 11.0, data))
            store.put(task_row(task, lang, "p90", "prune:sparsity=0.9", seed, score - 0.15, 21.0, 10.0, data))
    store.close()
    return sweep


@pytest.fixture
def two_tasks(sweep_dir: Path) -> Path:
    """The NER sweep (hau and swa, F1 near 0.78) with SIB-200 topic rows (hau_Latn and yor_Latn, accuracy
    near 0.30) added."""
    return add_rows(sweep_dir, "topic", {"hau_Latn": 0.30, "yor_Latn": 0.20}, "../shared/data/sib200")


def section(md: str, title: str) -> str:
    """The text of one `## title` section of results.md, up to the next `## ` heading."""
    return md.split(f"\n## {title}\n", 1)[1].split("\n## ", 1)[0]


def test_a_report_of_two_tasks_gives_each_task_its_own_section(two_tasks: Path, tmp_path: Path) -> None:
    """NER rows and topic rows in one report: a section per task (NER first), each with its own tables,
    averages and plots; "beside the study" counts the NER rows only, and says so."""
    from ndogo.tasks import get_task

    files = write_report(two_tasks, tmp_path / "report")
    md = (tmp_path / "report" / "results.md").read_text()
    ner, topic = (f"{get_task(name).title} — {get_task(name).metric_label}" for name in ("ner", "topic"))
    assert ner == "Named Entity Recognition — F1" and topic == "Topic Classification — accuracy"
    assert md.index(f"\n## {ner}\n") < md.index(f"\n## {topic}\n") < md.index("\n## Every task\n")
    first, second = section(md, ner), section(md, topic)
    assert "test score" not in md  # no table of two metrics
    # each average is its own task's: NER's as in a report of its rows alone, topic's (30 + 20) / 2 = 25
    assert "### test F1 per language and method" in first
    assert "| hau | 80.00 ± 1.41 | 79.00 ± 1.41 (−1.00) | 62.00 ± 2.83 (−18.00) | 78.00 ± 0.71 (−2.00) |" in first
    assert "| **average** | **77.50** | **76.50 (−1.00)** |" in first
    assert "### test accuracy per language and method" in second
    assert "| **average** | **25.00** | **15.00 (−10.00)** | **10.00 (−15.00)** |" in second
    assert "_Latn" not in first and "| hau |" not in second and "| swa |" not in second
    # each task's languages on its own first corpus: no "@masakhaner" or "@sib200" marks across tasks
    assert "@" not in md
    assert "| hau_Latn | 91.0 | 51.0 (1.78× smaller) |" in second  # size and latency per task too
    # the study measured entity F1: its table is NER's, over NER's two languages, and says what it leaves out
    assert md.count("### beside the study") == 1 and "### beside the study" in first
    assert "| p50 | 2 | -1.00 [-1.00 … -1.00] |" in first
    assert "Named Entity Recognition rows only" in first and "rows of Topic Classification are not counted" in first
    assert "### F1 per entity type" in first and "### F1 per label" in second
    assert "| PER |" not in second.replace(" ", "") and "sports" not in first
    assert "ValueError: no method x" in section(md, "Every task")  # the failed cell, under neither task
    # "what to ship": a line per task and language, each chosen in its own metric
    ship = md.split("### What to ship\n", 1)[1].split("\n## ", 1)[0]
    assert re.search(r"- Named Entity Recognition, hau: ship minilm/\S+ .*; F1 dev ", ship)
    assert re.search(r"- Topic Classification, hau_Latn: ship minilm/\S+ .*; accuracy dev ", ship)
    assert ship.count("\n- ") == 4
    # plots per task, each in its own section
    plots = {p.name for p in files if p.suffix == ".png"}
    assert plots == {f"{kind}_{task}.png" for task in ("ner", "topic")
                     for kind in ("f1_vs_sparsity", "f1_vs_size", "f1_vs_latency", "atlas_minilm")}
    assert "![f1_vs_size_ner](f1_vs_size_ner.png)" in first and "![f1_vs_size_topic](f1_vs_size_topic.png)" in second
    page = (tmp_path / "report" / "index.html").read_text()
    assert f"<h2>{html.escape(ner)}</h2>" in page and f"<h2>{html.escape(topic)}</h2>" in page
    assert page.index(f"<h2>{html.escape(ner)}</h2>") < page.index('alt="f1_vs_size_ner"') \
        < page.index(f"<h2>{html.escape(topic)}</h2>") < page.index('alt="f1_vs_size_topic"')
    assert page.count('src="data:image/png;base64,') == 8 and "<h2>Plots</h2>" not in page


def test_one_language_code_in_two_tasks_is_two_languages(sweep_dir: Path, tmp_path: Path) -> None:
    """MasakhaPOS and MasakhaNER share their codes: POS rows on hau beside NER rows on hau are summarized,
    compared with their own baseline and shipped apart, each as plain "hau" in its own section."""
    from ndogo.tasks import get_task

    add_rows(sweep_dir, "pos", {"hau": 0.90}, "../shared/data/masakhapos")
    write_report(sweep_dir, tmp_path / "report")
    md = (tmp_path / "report" / "results.md").read_text()
    ner, pos = (f"{get_task(name).title} — {get_task(name).metric_label}" for name in ("ner", "pos"))
    first, second = section(md, ner), section(md, pos)
    assert "| hau | 80.00 ± 1.41 | 79.00 ± 1.41 (−1.00) | 62.00 ± 2.83 (−18.00) | 78.00 ± 0.71 (−2.00) |" in first
    assert "| hau | 90.00 ± 0.00 | 80.00 ± 0.00 (−10.00) | 75.00 ± 0.00 (−15.00) |" in second
    assert "@" not in md
    ship = md.split("### What to ship\n", 1)[1].split("\n## ", 1)[0]
    assert re.search(r"- Named Entity Recognition, hau: ship minilm/\S+ .*; F1 dev ", ship)
    assert re.search(rf"- {get_task('pos').title}, hau: ship minilm/baseline .*; accuracy dev ", ship)
    assert "(+0.00) against the baseline" in ship and "(-0.00)" not in ship  # the baseline against itself
    code, out = cli("report", str(sweep_dir), "--table", "--pivot")
    assert code == 0, out
    assert "| hau | 80.00 | -1.00 | -18.00 | -2.00 |" in out.split(f"### {pos}")[0]
    assert "| hau | 90.00 | -10.00 | -15.00 |" in out.split(f"### {pos}")[1]



def test_a_cell_not_measured_is_of_the_task_measured_on_its_corpus(tmp_path: Path) -> None:
    """A running or failed cell records no task (it is known once its model is scored): one of SIB-200 stored
    first is topic's, as its corpus's measured rows are, so NER's first corpus is still MasakhaNER's and
    its hau stays "hau" (not "hau@masakhaner", as if NER rows had been measured on SIB-200)."""
    store = Store(tmp_path / "sweep")
    running = task_row("topic", "hau_Latn", "baseline", "", 3, 0.3, 91.0, 12.0, "../shared/data/sib200")
    store.mark_running({key: running[key] for key in ("cell_id", "model", "lang", "recipe", "recipe_spec", "start",
                                                      "seed", "data", "split")})  # as a sweep claims it
    for seed in (1, 2):
        store.put(fake_row("hau", "baseline", "", seed, 0.80, 90.0, 10.0, 0.0))
        store.put(fake_row("hau", "p50", "prune:sparsity=0.5", seed, 0.79, 50.0, 9.0, 0.25))
    store.close()
    add_rows(tmp_path / "sweep", "topic", {"hau_Latn": 0.30}, "../shared/data/sib200")
    write_report(tmp_path / "sweep", tmp_path / "report")
    md = (tmp_path / "report" / "results.md").read_text()
    assert "@" not in md
    assert "| hau | 80.00 ± 0.00 | 79.00 ± 0.00 (−1.00) |" in section(md, "Named Entity Recognition — F1")
    assert "| minilm | hau_Latn | baseline | 3 | running | interrupted |" in section(md, "Every task")


def test_beside_the_study_reads_ner_rows_only_whatever_their_metric(sweep_dir: Path, tmp_path: Path) -> None:
    """Rows of a task this version does not know, scored in F1 too, are no MasakhaNER entity F1: they get
    their own section, after the known tasks, under their task's name, and no "beside the study" table."""
    add_rows(sweep_dir, "wsd", {"hau": 0.60, "swa": 0.50}, "../shared/data/xlwsd")
    write_report(sweep_dir, tmp_path / "report")
    md = (tmp_path / "report" / "results.md").read_text()
    first, other = section(md, "Named Entity Recognition — F1"), section(md, "wsd — F1")
    assert md.index("\n## Named Entity Recognition — F1\n") < md.index("\n## wsd — F1\n")
    assert "| p50 | 2 | -1.00 [-1.00 … -1.00] |" in first and "rows of wsd are not counted" in first
    assert "beside the study" not in other and "| **average** | **55.00** | **45.00 (−10.00)** |" in other


def test_a_report_of_one_task_has_no_task_sections(sweep_dir: Path, tmp_path: Path) -> None:
    """One task: the layout from before the task axis, untouched (no task heading, plots under their old
    names); a guard, beside test_report_writes_every_file_with_the_studys_layout."""
    write_report(sweep_dir, tmp_path / "report")
    md = (tmp_path / "report" / "results.md").read_text()
    assert "\n## " not in md.split("### What to ship", 1)[1] and "rows only" not in md
    assert "\n- hau: ship " in md
    page = (tmp_path / "report" / "index.html").read_text()
    assert "<h2>Results</h2>" in page and "<h2>Plots</h2>" in page


@pytest.mark.parametrize("layout", [[], ["--seeds"], ["--pivot"]])
def test_the_sweep_table_of_two_tasks_is_a_table_per_task(two_tasks: Path, layout: list[str]) -> None:
    """`ndogo report --table` over NER and topic rows: a table per task under its title, each with its
    metric in its own headers, never one column of F1 and accuracy points."""
    code, out = cli("report", str(two_tasks), "--table", *layout)
    assert code == 0, out
    assert out.startswith("### Named Entity Recognition — F1\n")
    ner, topic = out.split("### Named Entity Recognition — F1\n", 1)[1].split("### Topic Classification — accuracy\n")
    assert "F1" in ner.splitlines()[1] and "accuracy" not in ner
    assert "accuracy" in topic.splitlines()[1] and "F1" not in topic
    assert "_Latn" not in ner and "| hau |" not in topic and "| swa |" not in topic
    if layout == ["--pivot"]:
        assert "| hau | 80.00 | -1.00 | -18.00 | -2.00 |" in ner and "| hau_Latn | 30.00 | -10.00 | -15.00 |" in topic
    if layout == ["--seeds"]:
        assert "| p50 | 2 | -1.00 |" in ner and "| p50 | 2 | -10.00 |" in topic  # each recipe over its own languages


def test_the_sweep_table_of_one_task_has_no_heading(sweep_dir: Path) -> None:
    """One task: the table alone, as before the task axis."""
    code, out = cli("report", str(sweep_dir), "--table")
    assert code == 0, out
    assert out.startswith("| lang | recipe | dev F1 |") and "###" not in out


def test_the_pivot_says_its_baseline_is_a_mean_where_seeds_differ() -> None:
    """hau's baseline has two seeds (0.80, 0.70), its int8 one (seed 1, Δ −1 against seed 1's 0.80): the
    pivot prints 75.00 and −1.00, and says the baseline is a mean, so that 74.00 is not read off it."""
    from ndogo.report.sweep_table import pivot_table

    rows = [fake_row("hau", "baseline", "", 1, 0.80, 90, 10, 0.0),
            fake_row("hau", "baseline", "", 2, 0.70, 90, 10, 0.0),
            fake_row("hau", "int8", "quantize:method=onnx-int8", 1, 0.79, 23, 5, 0.0)]
    text = pivot_table(rows)
    assert "| hau | 75.00 | -1.00 |" in text and "mean over its seeds where it has several (hau (2 seeds))" in text
    one = pivot_table([r for r in rows if r["seed"] == 1])
    assert "mean over its seeds" not in one
