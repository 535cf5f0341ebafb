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

from ndogo.experiments.recommend import recommend
from ndogo.experiments.store import Store
from ndogo.report import write_report
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


def fake_row(lang: str, recipe: str, spec: str, seed: int, f1: float, size: float, latency: float,
             sparsity: float) -> dict:
    return {"cell_id": f"{lang}-{recipe}-{seed}", "model": "minilm", "lang": lang, "recipe": recipe,
            "recipe_spec": spec, "start": "finetuned", "seed": seed, "status": "done", "f1": f1,
            "precision": f1, "recall": f1, "per_type": {"PER": {"f1": f1 + 0.05}, "LOC": {"f1": f1 - 0.05}},
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
                     "index.html"}
    assert all(p.stat().st_size > 0 for p in files)
    md = (tmp_path / "report" / "results.md").read_text()
    # a row per language, a column per method, F1 mean ± std over seeds and Δ to the baseline in points
    assert "| language | baseline | p50 | p90 | p50-int8 |" in md
    assert "| hau | 80.00 ± 1.41 | 79.00 ± 1.41 (−1.00) | 62.00 ± 2.83 (−18.00) | 78.00 ± 0.71 (−2.00) |" in md
    assert "| **average** | **77.50** | **76.50 (−1.00)** |" in md
    assert "| hau | 90.0 | 50.0 (1.80× smaller) |" in md
    assert "| hau | 10.00 | 9.00 (1.11× faster) |" in md
    assert "ValueError: no method x" in md  # the failed cell is listed, not hidden
    with (tmp_path / "report" / "results.csv").open() as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == 17 and {"f1_PER", "f1_LOC"} <= set(rows[0])
    page = (tmp_path / "report" / "index.html").read_text()
    assert page.count('src="data:image/png;base64,') == 3
    assert "AMD EPYC" in page and "name = &quot;study&quot;" in page  # environment and config recorded


def test_pareto_front() -> None:
    points = [(90, 80), (50, 79), (20, 62), (15, 78), (60, 70), (15, 60)]
    assert sorted(pareto_front(points)) == [0, 1, 3]


def test_recommend_picks_the_smallest_within_the_budget(sweep_dir: Path) -> None:
    assert recommend(sweep_dir, "hau", 1.0)["recipe"] == "p50"
    two = recommend(sweep_dir, "hau", 2.0)
    assert two["recipe"] == "p50-int8" and two["f1_drop_points"] == 2.0 and two["size_x"] == 6.0
    assert "--recipe 'prune:sparsity=0.5 | quantize:method=onnx-int8'" in two["command"]
    assert "/runs/minilm-hau" in two["command"]
    assert recommend(sweep_dir, "hau", 0.5)["recipe"] == "baseline"
    assert recommend(sweep_dir, "swa", 1.0, optimize="latency")["recipe"] == "p50"
    with pytest.raises(ValueError, match="no finished cells for language 'yor'"):
        recommend(sweep_dir, "yor", 1.0)
    with pytest.raises(ValueError, match="--optimize"):
        recommend(sweep_dir, "hau", 1.0, optimize="speed")


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
    tables: document.querySelectorAll("table").length};
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
           f"--user-data-dir={tmp_path / 'profile'}", "--virtual-time-budget=10000", "--dump-dom",
           copy.as_uri()]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=120, env={**os.environ, "HOME": str(tmp_path)})
    found = re.search(r'<pre id="ndogo-check">(.*?)</pre>', done.stdout, re.S)
    assert found, f"chromium did not render the page (exit {done.returncode}): {done.stderr[-1500:]}"
    return json.loads(html.unescape(found.group(1)))


def test_index_html_in_headless_chromium(sweep_dir: Path, tmp_path: Path) -> None:
    write_report(sweep_dir, tmp_path / "report")
    result = load_in_chromium(tmp_path / "report" / "index.html", tmp_path)
    assert result["count"] == 3 and result["broken"] == [] and result["external"] == []
    assert result["tables"] >= 5


def test_quickstart_index_html_in_headless_chromium(tmp_path: Path) -> None:
    """The report of the real quickstart run (configs/quickstart.toml on ../shared/data), once it was run."""
    if not QUICKSTART_REPORT.is_file():
        pytest.skip(f"{QUICKSTART_REPORT} is absent: run the quickstart and its report first (see README)")
    result = load_in_chromium(QUICKSTART_REPORT, tmp_path)
    assert result["count"] >= 2 and result["broken"] == [] and result["external"] == []
