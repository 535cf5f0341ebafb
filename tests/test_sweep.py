"""Sweeps: configs checked before any work, kill -9 and resume, failed cells, Ray against local."""

from __future__ import annotations

import json
import os
import re
import signal
import sqlite3
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from ndogo.compress.recipe import register_stage
from ndogo.experiments.config import ConfigError, load_sweep_config
from ndogo.experiments.store import STORE, Store
from ndogo.experiments.sweep import SweepError, run_sweep

ROOT = Path(__file__).resolve().parents[1]


def write_config(path: Path, model: Path, seeds: str = "[1, 2]", recipes: str = "", speed: str = "false",
                 extra: str = "", skip: str = "false") -> Path:
    """A tiny grid. Its 3-step baselines often find no entity on dev: the guard for that is off unless asked."""
    path.write_text(f"""
name = "tiny"
languages = ["hau"]
seeds = {seeds}
{extra}
[models.tiny]
model = "{model}"
finetune = {{ max_steps = 3, batch_size = 8, lr = 1e-3 }}

[recipes]
more = "finetune:max_steps=2"
{recipes}

[evaluate]
speed = {speed}
skip_empty_baselines = {skip}

[resources]
cpus = 1
""")
    return path


def cells_in(out: Path) -> list[tuple[str, str]]:
    with sqlite3.connect(out / STORE) as conn:
        return conn.execute("SELECT cell_id, status FROM cells").fetchall()


@pytest.mark.parametrize(("recipes", "extra", "named"), [
    ('broken = "finetune:epoch=2"', "", "recipes.broken stage 1 (finetune).epoch: unknown option"),
    ('typo = "finetune:lr=fast"', "", "recipes.typo stage 1 (finetune).lr: expected a number"),
    ('absent = "squash"', "", "recipes.absent stage 1.stage: unknown stage 'squash'"),
    ("", 'colour = "blue"', "unknown key 'colour'"),
    ("", "", None),
])
def test_bad_config_fails_before_any_work(tmp_path: Path, tiny_model: Path, tiny_corpus: Path, recipes: str,
                                          extra: str, named: str | None) -> None:
    config = write_config(tmp_path / "grid.toml", tiny_model, recipes=recipes, extra=extra)
    if named is None:  # a language the data does not have
        config.write_text(config.read_text().replace('["hau"]', '["hau", "xyz"]'))
        named = "languages: "
    with pytest.raises(ConfigError) as err:
        load_sweep_config(config, str(tiny_corpus))
    assert named in str(err.value)
    assert str(config) in str(err.value)


def test_model_finetune_settings_are_checked(tmp_path: Path, tiny_model: Path, tiny_corpus: Path) -> None:
    config = write_config(tmp_path / "grid.toml", tiny_model)
    config.write_text(config.read_text().replace("max_steps = 3", "max_step = 3"))
    with pytest.raises(ConfigError, match=r"models\.tiny\.finetune\.max_step: unknown option"):
        load_sweep_config(config, str(tiny_corpus))


def sweep_command(config: Path, out: Path, data: Path, *more: str) -> list[str]:
    # (not `python -m ndogo.cli`: run as __main__, cli.py would load twice)
    return [sys.executable, "-c", "from ndogo.cli import main; main()", "sweep", str(config), "--out", str(out),
            "--data", str(data), "--no-progress", *more]


def test_sigkill_then_resume_leaves_one_row_per_cell(tmp_path: Path, tiny_model: Path, tiny_corpus: Path) -> None:
    config = write_config(tmp_path / "grid.toml", tiny_model, seeds="[1, 2, 3]",
                          recipes='again = "finetune:max_steps=1,lr=1e-4"')
    expected = {c.id for c in load_sweep_config(config, str(tiny_corpus)).cells()}
    assert len(expected) == 9
    out = tmp_path / "sweep"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen(sweep_command(config, out, tiny_corpus), cwd=ROOT, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 120
    done: list[tuple[str, str]] = []
    while time.time() < deadline and proc.poll() is None:
        if (out / STORE).is_file():
            try:
                done = [c for c in cells_in(out) if c[1] == "done"]
            except sqlite3.OperationalError:
                done = []  # tables not created yet
            if len(done) >= 2:
                break
        time.sleep(0.2)
    assert proc.poll() is None, "the sweep finished before it could be killed; make the grid bigger"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    before = cells_in(out)
    assert 2 <= sum(s == "done" for _, s in before) < len(expected)

    # rerun (in this process, to spare a second start-up of torch): it finishes the rest
    summary = run_sweep(load_sweep_config(config, str(tiny_corpus)), out, resume=True, show_progress=False)
    assert summary.failed == 0 and summary.skipped == sum(s == "done" for _, s in before)
    after = cells_in(out)
    assert sorted(cid for cid, _ in after) == sorted(expected)  # exactly one row per cell
    assert all(status == "done" for _, status in after)
    finished_before = {cid for cid, s in before if s == "done"}
    store = Store(out)
    try:
        attempts = {r["cell_id"]: r["attempts"] for r in store.rows()}
        assert len(store.sweeps()) == 2  # the killed run and the resume
    finally:
        store.close()
    assert all(attempts[cid] == 1 for cid in finished_before)  # finished cells were not rerun


@dataclass
class ExplodeConfig:
    when: str = "always"


def explode(run: str | Path, out: str | Path, config: ExplodeConfig) -> Path:
    """A stage that always fails at run time (a valid recipe, a broken experiment)."""
    raise RuntimeError(f"exploded ({config.when})")


def test_failed_cell_is_recorded_and_the_rest_go_on(tmp_path: Path, tiny_model: Path, tiny_corpus: Path) -> None:
    register_stage("explode-test", explode)
    config = write_config(tmp_path / "grid.toml", tiny_model, seeds="[1]", recipes='boom = "explode-test"')
    cfg = load_sweep_config(config, str(tiny_corpus))
    summary = run_sweep(cfg, tmp_path / "out", show_progress=False)
    assert (summary.done, summary.failed) == (2, 1)
    store = Store(tmp_path / "out")
    try:
        rows = {r["recipe"]: r for r in store.rows()}
    finally:
        store.close()
    assert rows["boom"]["status"] == "failed" and "exploded (always)" in rows["boom"]["error"]
    assert rows["more"]["status"] == "done" and rows["baseline"]["status"] == "done"
    assert rows["more"]["versions"]["torch"] and rows["more"]["machine"]["cores"]
    # every key a cell writes is declared once, in row.Row (#36: the row declared once)
    from ndogo.experiments.row import Row

    written = {k for r in rows.values() for k in r}
    assert written <= set(Row.__annotations__), " ".join(sorted(written - set(Row.__annotations__)))
    # a trained model's row shows how it trained: the epoch dev chose and the dev curve
    trained = rows["baseline"]["training"]["1-finetune"]
    assert trained["best_epoch"] >= 1 and len(trained["dev_curve"]) == trained["epochs_run"] >= 1
    # ... and its CSV columns carry it (a CSV has no JSON record), with the most epochs it was allowed
    assert (rows["baseline"]["best_epoch"], rows["baseline"]["epochs_run"]) == \
        (trained["best_epoch"], trained["epochs_run"])
    assert rows["baseline"]["max_epochs"] == trained["max_epochs"] >= trained["epochs_run"]
    assert rows["baseline"]["dev_curve"] == " ".join(f"{x:.5f}" for x in trained["dev_curve"])
    with pytest.raises(SweepError, match="--resume"):
        run_sweep(cfg, tmp_path / "out", show_progress=False)


def test_a_cell_loads_each_model_once_for_split_dev_transfer_and_timing(
        tmp_path: Path, tiny_model: Path, two_language_corpus: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """#36: a cell loaded its model 3 + N times (its split, dev, its timing, each transfer language); once now."""
    import ndogo.evaluate as ev
    import ndogo.models.runner as runner_module

    loads: list[str] = []
    real = runner_module.load_runner

    def counted(path: Any) -> Any:
        loads.append(str(path))
        return real(path)

    # both names a model is loaded by: the evaluation's and the runner module's own
    monkeypatch.setattr(ev, "load_runner", counted)
    monkeypatch.setattr(runner_module, "load_runner", counted)
    config = write_config(tmp_path / "grid.toml", tiny_model, seeds="[1]", speed="true")
    config.write_text(config.read_text().replace('["hau"]', '["hau", "yor"]')
                      .replace("speed = true", "speed = true\nsample = 5\ntransfer = true"))
    cfg = load_sweep_config(config, str(two_language_corpus)).only_languages(["hau"])
    summary = run_sweep(cfg, tmp_path / "out", show_progress=False)
    assert (summary.done, summary.failed) == (2, 0)
    store = Store(tmp_path / "out")
    try:
        rows = store.rows("done")
    finally:
        store.close()
    assert all(r["transfer"]["yor"]["f1"] is not None and r["latency_ms_b1"] > 0 for r in rows)
    assert sorted(loads) == sorted(r["path"] for r in rows)  # one load per model measured, nothing else


COMPARED = ("f1", "precision", "recall", "per_type", "size_bytes", "params", "nonzero_params", "sparsity", "kind",
            "sentences", "stages")


def comparable(row: dict) -> dict:
    out = {k: row.get(k) for k in COMPARED}
    out["stages"] = [(s["stage"], s["options"]) for s in row["stages"]]
    return out


def test_ray_and_local_executors_give_the_same_rows(tmp_path: Path, tiny_model: Path, tiny_corpus: Path) -> None:
    ray = pytest.importorskip("ray", reason="ray is not installed")
    config = write_config(tmp_path / "grid.toml", tiny_model, seeds="[1, 2]")
    cfg = load_sweep_config(config, str(tiny_corpus))
    run_sweep(cfg, tmp_path / "local", show_progress=False)
    try:
        ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, logging_level="ERROR")
    except Exception as err:  # no shared memory, no ports: this machine cannot host Ray
        pytest.skip(f"a local Ray instance cannot start here: {type(err).__name__}: {err}")
    try:
        summary = run_sweep(cfg, tmp_path / "ray", executor="ray", show_progress=False)
    finally:
        ray.shutdown()
    assert summary.failed == 0, summary.failures
    rows = {}
    for name in ("local", "ray"):
        store = Store(tmp_path / name)
        try:
            rows[name] = {r["cell_id"]: comparable(r) for r in store.rows()}
        finally:
            store.close()
    assert len(rows["local"]) == 4  # baseline and one recipe, two seeds
    assert rows["ray"] == rows["local"]


def test_existing_baselines_are_used_and_never_retrained(tmp_path: Path, tiny_model: Path,
                                                         tiny_corpus: Path) -> None:
    from ndogo.compress.recipe import compress, parse_recipe

    existing = tmp_path / "runs" / "tiny-hau"
    compress(tiny_model, parse_recipe("finetune:max_steps=3,batch_size=8,lr=1e-3,threads=1"), existing,
             {"lang": "hau", "seed": 1, "data": str(tiny_corpus)})
    config = write_config(tmp_path / "grid.toml", tiny_model, seeds="[1, 2]")
    config.write_text(config.read_text().replace(
        "[models.tiny]", f'[models.tiny]\ntrain = false\nbaselines = ["{tmp_path}/runs/tiny-{{lang}}"]'))
    summary = run_sweep(load_sweep_config(config, str(tiny_corpus)), tmp_path / "out", show_progress=False)
    assert (summary.done, summary.failed) == (2, 2)
    store = Store(tmp_path / "out")
    try:
        rows = {(r["recipe"], r["seed"]): r for r in store.rows()}
    finally:
        store.close()
    base = rows[("baseline", 1)]
    assert base["status"] == "done" and base["path"] == str(existing) and base["stages"][0]["reused"] == "existing"
    assert rows[("more", 1)]["baseline_path"] == str(existing)
    # seed 2 has no fine-tuned run: it fails saying why, and the cell built on it does not run
    assert "may not be run here" in rows[("baseline", 2)]["error"]
    assert rows[("more", 2)]["error"].startswith("not run: its baseline cell")
    trained_from = [json.loads(m.read_text())["input"] for m in (tmp_path / "out" / "artifacts").glob("*.json")
                    if json.loads(m.read_text())["reused"] == ""]
    assert trained_from == [str(existing)]  # only the recipe's own fine-tuning ran, on top of the existing run


def test_a_baseline_that_finds_no_entity_is_not_compressed(tmp_path: Path, tiny_model: Path,
                                                           tiny_corpus: Path) -> None:
    """Its dependents are recorded as not run with the reason (also on resume), instead of scoring a free 0."""
    import torch
    from transformers import AutoModelForTokenClassification

    from ndogo.compress.recipe import compress, parse_recipe

    run = tmp_path / "runs" / "tiny-hau"
    compress(tiny_model, parse_recipe("finetune:max_steps=3,batch_size=8,lr=1e-3,threads=1"), run,
             {"lang": "hau", "seed": 1, "data": str(tiny_corpus)})
    model = AutoModelForTokenClassification.from_pretrained(run)
    with torch.no_grad():  # a model that tags every word O, as one that cannot read the language does
        model.classifier.weight.zero_()
        model.classifier.bias.fill_(-10.0)
        model.classifier.bias[model.config.label2id["O"]] = 10.0
    model.save_pretrained(run)
    config = write_config(tmp_path / "grid.toml", tiny_model, seeds="[1]", skip="true")
    config.write_text(config.read_text().replace(
        f'model = "{tiny_model}"', f'model = "{tiny_model}"\nfinetuned = "{tmp_path}/runs/tiny-{{lang}}"'))
    for resume in (False, True):
        summary = run_sweep(load_sweep_config(config, str(tiny_corpus)), tmp_path / "out", resume=resume,
                            show_progress=False)
        assert (summary.done, summary.failed, summary.skipped) == (1, 1, int(resume))  # resumed: baseline kept
        store = Store(tmp_path / "out")
        try:
            rows = {r["recipe"]: r for r in store.rows()}
        finally:
            store.close()
        assert rows["baseline"]["status"] == "done" and rows["baseline"]["dev_f1"] == 0.0
        assert 0.0 <= rows["baseline"]["dev_unknown_words"] < 0.5  # measured by the cell, for the driver
        assert rows["more"]["status"] == "failed" and rows["more"]["seconds"] == 0.0
        assert rows["more"]["error"].startswith("not run: its baseline learned nothing (dev F1 0.00")
    config.write_text(config.read_text().replace("skip_empty_baselines = true", "skip_empty_baselines = false"))
    summary = run_sweep(load_sweep_config(config, str(tiny_corpus)), tmp_path / "out2", show_progress=False)
    assert (summary.done, summary.failed) == (2, 0)  # asked to, it compresses the empty baseline anyway


def test_missing_data_folder_fails_before_any_cell(tmp_path: Path, tiny_model: Path) -> None:
    config = write_config(tmp_path / "grid.toml", tiny_model)
    with pytest.raises(ConfigError, match=rf"{config}: data: {tmp_path / 'absent'}: no such folder"):
        load_sweep_config(config, str(tmp_path / "absent"))
    assert load_sweep_config(config, "masakhaner").data == "masakhaner"  # a hub name is left to the hub


def test_recommend_on_a_sweep_with_nothing_finished_says_so(tmp_path: Path) -> None:
    from ndogo.report.recommend import recommend

    Store(tmp_path).close()
    with pytest.raises(ValueError, match="languages here: none"):
        recommend(tmp_path, "hau", 1.0)


def test_a_file_that_is_not_a_database_is_named(tmp_path: Path) -> None:
    (tmp_path / STORE).write_text("not sqlite")
    with pytest.raises(ValueError, match=rf"{tmp_path / STORE}: not a sweep results database"):
        Store(tmp_path)


def test_cells_run_in_grid_order_a_baseline_then_its_dependents(tiny_model: Path, tiny_corpus: Path,
                                                                 tmp_path: Path) -> None:
    """The local executor's order: seed 1's baseline, its recipe, then seed 2's (not both baselines first)."""
    from ndogo.experiments.sweep import Schedule

    config = load_sweep_config(write_config(tmp_path / "s.toml", tiny_model), str(tiny_corpus))
    cells = config.cells()
    schedule = Schedule(cells, {})
    order = []
    while schedule.left:
        start, _ = schedule.ready()
        schedule.requeue(start[1:])
        schedule.started(start[0])
        schedule.finished(start[0], "done")
        order.append((start[0].seed, start[0].recipe.name))
    assert order == [(1, "baseline"), (1, "more"), (2, "baseline"), (2, "more")]


def test_time_left_counts_training_cells_apart(tiny_model: Path, tiny_corpus: Path, tmp_path: Path) -> None:
    """#19.16: a fast quantize cell's time is not extrapolated to a baseline that fine-tunes."""
    from rich.console import Console

    from ndogo.experiments.sweep import Reporter, cell_class

    config = load_sweep_config(write_config(tmp_path / "s.toml", tiny_model, seeds="[1]",
                                            recipes='q = "quantize:method=dynamic-int8"'), str(tiny_corpus))
    baseline, more, quant = config.cells()
    assert [cell_class(c) for c in (baseline, more, quant)] == ["training", "training", "measure"]
    reporter = Reporter(3, 0, 1, Console(file=open(os.devnull, "w")), False, [baseline, more, quant],
                        {"measure": [40.0]})
    assert reporter._fields()["eta"] == "40s + 2 training cells not yet timed"
    reporter.by_class["training"] = [270.0]
    assert reporter._fields()["eta"] == "9m40s"


def test_timed_cells_record_end_to_end_latency(tiny_model: Path, tiny_corpus: Path, tmp_path: Path) -> None:
    """#17.4: a sweep row has latency_e2e_ms_b1 (raw text to entities) beside the forward-only latency."""
    config = load_sweep_config(write_config(tmp_path / "s.toml", tiny_model, seeds="[1]", speed="true"),
                               str(tiny_corpus))
    run_sweep(config, tmp_path / "out", show_progress=False)
    rows = Store(tmp_path / "out").rows("done")
    assert rows and all(r["latency_e2e_ms_b1"] > 0 and r["latency_ms_b1"] > 0 for r in rows)


def test_lang_runs_some_of_the_languages_with_the_same_cell_ids(tmp_path: Path, tiny_model: Path,
                                                                tiny_corpus: Path) -> None:
    import shutil

    corpus = tmp_path / "corpus"
    shutil.copytree(tiny_corpus, corpus)
    shutil.copytree(corpus / "hau", corpus / "yor")
    path = write_config(tmp_path / "grid.toml", tiny_model)
    path.write_text(path.read_text().replace('["hau"]', '["hau", "yor"]'))
    full = load_sweep_config(path, str(corpus))
    only = full.only_languages(["yor"])
    assert {c.id for c in only.cells()} == {c.id for c in full.cells() if c.lang == "yor"}
    with pytest.raises(ConfigError, match="the config's languages are hau, yor; not swa"):
        full.only_languages(["swa"])
    more = full.only_recipes(["more"])  # it starts from the fine-tuned baseline, which comes along
    assert [r.name for r in more.recipes] == ["baseline", "more"]
    assert {c.id for c in more.cells()} == {c.id for c in full.cells() if c.recipe.name in ("baseline", "more")}
    with pytest.raises(ConfigError, match="not nope"):
        full.only_recipes(["nope"])
    (corpus / "yor").rename(tmp_path / "yor-elsewhere")  # a corpus holding only the language asked for
    with pytest.raises(ConfigError, match="no language 'yor'"):
        load_sweep_config(path, str(corpus))
    shutil.copytree(corpus / "hau", corpus / "new")  # a language no config names: its folder is enough
    new = load_sweep_config(path, str(corpus), only=["new"])
    assert new.languages == ["new"] and {c.lang for c in new.cells()} == {"new"}
    assert {c.recipe.name for c in new.cells()} == {c.recipe.name for c in full.cells()}
    with pytest.raises(ConfigError, match="no language 'swa' here; languages found: hau, new"):
        load_sweep_config(path, str(corpus), only=["swa"])
    alone = load_sweep_config(path, str(corpus), only=["hau"])
    assert alone.languages == ["hau"]
    assert {c.id for c in alone.cells()} == {c.id for c in full.cells() if c.lang == "hau"}
    first = full.only_seeds([2])  # one seed of every cell first, the others in a later session
    assert first.seeds == [2] and {c.id for c in first.cells()} == {c.id for c in full.cells() if c.seed == 2}
    with pytest.raises(ConfigError, match="the config's seeds are 1, 2; not 7"):
        full.only_seeds([7])


def test_the_row_is_defined_once_and_typed(tmp_path: Path) -> None:
    from ndogo.experiments.row import COLUMNS, KEY, STORED, Row, csv_columns
    from ndogo.experiments.store import SCHEMA, Store
    from ndogo.report.build import CSV_COLUMNS

    assert CSV_COLUMNS == csv_columns() and set(KEY) <= set(CSV_COLUMNS)
    # declared once: Row is the columns, and the JSON-only ones (nested results, the run's record) stay out of the CSV
    assert list(Row.__annotations__) == [c.name for c in COLUMNS]
    assert {"per_type", "stages", "machine", "dev_unknown_words"}.isdisjoint(CSV_COLUMNS)
    assert all(f"    {name} " in SCHEMA for name in (*KEY, *STORED))  # every stored column is a SQL column
    store = Store(tmp_path)
    row = {"cell_id": "c1", "model": "m", "lang": "hau", "recipe": "baseline", "seed": 1, "status": "done",
           "f1": "0.8"}
    with pytest.raises(TypeError, match="row column 'f1' should be float, got str"):
        store.put(row)
    store.put({**row, "f1": 0.8, "size_bytes": 10})
    assert store.rows("done")[0]["f1"] == 0.8
    store.close()


def test_transfer_and_finetuned_runs_are_checked_and_keep_older_cell_ids(tmp_path: Path, tiny_model: Path,
                                                                         two_language_corpus: Path) -> None:
    """`transfer`, `keep_models` and `finetuned` are optional keys: a config without them keeps its cell ids."""
    corpus = two_language_corpus
    path = write_config(tmp_path / "grid.toml", tiny_model)
    path.write_text(path.read_text().replace('["hau"]', '["hau", "yor"]'))
    plain = {c.id for c in load_sweep_config(path, str(corpus)).cells()}
    path.write_text(path.read_text().replace("speed = false", "speed = false\ntransfer = false\nkeep_models = false"))
    assert {c.id for c in load_sweep_config(path, str(corpus)).cells()} == plain
    path.write_text(path.read_text().replace("transfer = false", "transfer = true"))
    scored = load_sweep_config(path, str(corpus))
    assert scored.evaluate.transfer == ("hau", "yor") and not {c.id for c in scored.cells()} & plain
    path.write_text(path.read_text().replace("transfer = true", 'transfer = ["xyz"]'))
    with pytest.raises(ConfigError, match=r"evaluate\.transfer: .*xyz"):
        load_sweep_config(path, str(corpus))
    path.write_text(path.read_text().replace('transfer = ["xyz"]', "transfer = 3"))
    with pytest.raises(ConfigError, match=r"evaluate\.transfer: expected bool or list"):
        load_sweep_config(path, str(corpus))

    path.write_text(path.read_text().replace("transfer = 3\n", "").replace(
        f'model = "{tiny_model}"', f'model = "{tiny_model}"\nfinetuned = "{tmp_path}/runs-{{lang}}"'))
    config = load_sweep_config(path, str(corpus))  # a missing run is refused when its cells would start
    baseline = next(c for c in config.cells() if c.recipe.name == "baseline" and c.lang == "hau")
    assert baseline.source == f"{tmp_path}/runs-hau" and not baseline.chain.stages  # the run itself, no finetune
    with pytest.raises(ConfigError, match=r"models\.tiny\.finetuned: no fine-tuned model for hau at .*runs-hau"):
        run_sweep(config, tmp_path / "out", show_progress=False)
    path.write_text(path.read_text().replace("finetuned =", 'baselines = ["x"]\nfinetuned ='))
    with pytest.raises(ConfigError, match="exclude each other"):
        load_sweep_config(path, str(corpus))


@pytest.mark.parametrize("config", sorted(p.name for p in (Path(__file__).parent.parent / "configs").glob("*.toml")))
def test_every_committed_config_binds_every_cell(config: str) -> None:
    """A typo in a committed sweep config (a stage option, a recipe's syntax) fails here, not an hour
    into a background run. The hub name stands in for the corpus, so ../shared is not needed, and the
    resources are not held against this machine (paper.toml is for a 4-core machine with a GPU)."""
    path = Path(__file__).parent.parent / "configs" / config
    loaded = load_sweep_config(path, data="masakhaner", this_machine=False)
    assert loaded.cells(), f"{config}: no cells"


def test_a_config_can_name_a_floor_under_which_a_weak_baseline_is_not_compressed(tmp_path: Path, tiny_model: Path,
                                                                                  tiny_corpus: Path) -> None:
    """me5s's 3-epoch budget reaches dev F1 0.15 on luo: a sweep may refuse to compress such a baseline, saying
    why; by default only a baseline that found nothing is refused, and a poor one is compressed."""
    from ndogo.experiments.sweep import unusable_baseline

    weak = {"status": "done", "dev_f1": 0.1505, "lang": "luo"}
    assert unusable_baseline(weak) is None  # the default floor: exactly zero
    why = unusable_baseline(weak, 0.2)
    assert why is not None and "too weak to compress (dev F1 15.05" in why and "min_baseline_dev_f1 = 0.2" in why
    assert unusable_baseline({**weak, "dev_f1": 0.25}, 0.2) is None
    assert unusable_baseline({**weak, "dev_f1": 0.0}, 0.2).startswith("its baseline learned nothing")
    # the driver decides from the row alone: the tokenizer's unknown-word share is the cell's measurement,
    # so a row whose model and corpus are gone (or on another node) still says why
    unreadable = {**weak, "dev_f1": 0.0, "dev_unknown_words": 0.93, "path": str(tmp_path / "gone"), "data": "gone"}
    assert "93% of its dev words are the tokenizer's unknown token: this model cannot read luo" in \
        unusable_baseline(unreadable)
    assert "unknown token" not in unusable_baseline({**unreadable, "dev_unknown_words": 0.1})
    config = write_config(tmp_path / "grid.toml", tiny_model, skip="true")
    text = config.read_text()
    floor = "skip_empty_baselines = true\nmin_baseline_dev_f1 = {}"
    config.write_text(text.replace("skip_empty_baselines = true", floor.format("0.2")))
    assert load_sweep_config(config, str(tiny_corpus)).evaluate.min_baseline_dev_f1 == 0.2
    for bad in ("20", "-0.1", "true"):
        config.write_text(text.replace("skip_empty_baselines = true", floor.format(bad)))
        with pytest.raises(ConfigError, match=r"evaluate\.min_baseline_dev_f1: expected"):
            load_sweep_config(config, str(tiny_corpus))


@pytest.mark.parametrize(("model", "recipes", "resources", "named"), [
    # a model that starts from its fine-tuned runs has no implicit finetune stage to blame
    ("finetuned", 'x = "prune:sparsity=1.5"', "", "recipes.x stage 1 (prune): sparsity must be in [0, 1)"),
    # trim checked its bounds only when it ran, after the baseline's training
    ("", 'x = "trim:keep=-5"', "", "recipes.x stage 1 (trim): keep must be >= 1, not -5"),
    ("finetuned", 'x = "trim:min_count=0"', "", "recipes.x stage 1 (trim): min_count must be >= 1, not 0"),
    ("", "", "cpus = {many}", "resources.cpus: {many} CPUs per cell, but this machine has {cores}"),
    ("", '[recipes.x]\nstages = "quantize:method=dynamic-int8"\nresources = {{ cpus = {many} }}', "",
     "recipes.x.resources.cpus: {many} CPUs per cell, but this machine has {cores}"),
    ("missing", "", "", "models.tiny.model: {tmp}/no-model: no such model directory"),
    ("hub", "", "", "models.tiny.model: nobody/no-model: not a short name"),  # offline, and not in the cache
    ("lock", "", "", "evaluate.lock: {tmp}/nowhere/bench.lock: its folder {tmp}/nowhere does not exist"),
])
def test_sweep_config_mistakes_are_refused_before_any_cell_naming_their_key(
        tmp_path: Path, tiny_model: Path, tiny_corpus: Path, model: str, recipes: str, resources: str,
        named: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """#35.13: each of these was refused inside a cell (after the baseline trained, for some), or named the
    model's finetune table for a recipe's mistake; now `ndogo sweep` refuses it with one line, running nothing."""
    from typer.testing import CliRunner

    from ndogo.cli import app

    values = {"many": (os.cpu_count() or 1) + 1, "cores": os.cpu_count(), "tmp": tmp_path}
    config = write_config(tmp_path / "grid.toml", tiny_model, recipes=recipes.format(**values))
    text = config.read_text()
    if model == "finetuned":
        (tmp_path / "runs-hau").mkdir()
        text = text.replace(f'model = "{tiny_model}"',
                            f'model = "{tiny_model}"\nfinetuned = "{tmp_path}/runs-{{lang}}"')
    elif model == "missing":
        text = text.replace(f'model = "{tiny_model}"', f'model = "{tmp_path}/no-model"')
    elif model == "hub":
        monkeypatch.setenv("HF_HUB_OFFLINE", "1")
        text = text.replace(f'model = "{tiny_model}"', 'model = "nobody/no-model"')
    elif model == "lock":
        text = text.replace("speed = false", f'speed = false\nlock = "{tmp_path}/nowhere/bench.lock"')
    if resources:
        text = text.replace("cpus = 1", resources.format(**values))
    config.write_text(text)
    with pytest.raises(ConfigError) as err:
        load_sweep_config(config, str(tiny_corpus))
    assert f"{config}: {named.format(**values)}" in str(err.value)
    assert "models.tiny.finetune" not in str(err.value)
    out = tmp_path / "out"
    result = CliRunner().invoke(app, ["sweep", str(config), "--out", str(out), "--data", str(tiny_corpus)])
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert result.exit_code == 2 and lines == [f"error: {err.value}"], result.output
    assert not (out / STORE).exists() and not (out / "logs").exists()  # no cell ran


def test_a_missing_text_file_of_a_stage_is_refused_before_any_cell(tmp_path: Path, tiny_model: Path,
                                                                    tiny_corpus: Path) -> None:
    """A trim corpus that is not there failed in its cell, after the baseline; it is named when the sweep starts
    (not when the config is read: the committed configs name ../shared paths and are read anywhere)."""
    config = load_sweep_config(write_config(tmp_path / "grid.toml", tiny_model,
                                            recipes=f'x = "trim:corpus={tmp_path}/nowhere"'), str(tiny_corpus))
    out = tmp_path / "out"
    with pytest.raises(ConfigError, match=rf"recipes\.x stage 1 \(trim\)\.corpus: {tmp_path}/nowhere: no such"):
        run_sweep(config, out, show_progress=False)
    assert not (out / STORE).exists() and not (out / "logs").exists()


def test_a_sweep_written_to_a_file_says_where_its_logs_are_and_reports_every_epoch_and_cell(
        tmp_path: Path, tiny_model: Path, tiny_corpus: Path) -> None:
    """#35.15: `make run > file` showed one cut-off progress line for the 35 minutes of the baseline's training,
    and nothing said where the per-epoch lines were. Not on a terminal: plain lines, no bar."""
    config = write_config(tmp_path / "grid.toml", tiny_model, seeds="[1]")
    out = tmp_path / "out"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    command = [a for a in sweep_command(config, out, tiny_corpus) if a != "--no-progress"]
    proc = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr
    text = proc.stdout + proc.stderr
    assert "\r" not in text
    assert f"{out.resolve() / 'logs'}/<cell id>.log" in text
    lines = text.splitlines()
    for label in ("tiny/hau/baseline/seed 1", "tiny/hau/more/seed 1"):
        assert any(line.startswith(f"{label}: epoch 1: dev F1 ") for line in lines), text  # its training epoch
        assert any(re.match(rf"\[\d/2\] {re.escape(label)}: F1 \d\.\d{{4}}, ", line) for line in lines), text
    for log in (out / "logs").glob("*.log"):
        assert "epoch 1: dev F1" in log.read_text()  # still in the log too


def test_the_quickstart_time_stated_everywhere_is_the_measured_one() -> None:
    """#35.15: the README said 20–30 minutes, the config 20, `ndogo sweep --help` 25; the quickstart measured 14.6
    (the lab log's §4). Each states the measured time, and how a busy machine stretches it."""
    from typer.testing import CliRunner

    from ndogo.cli import app

    results = (ROOT / "docs" / "lab" / "results-log-2026-11-to-12.md").read_text(encoding="utf-8")
    section = results[results.index("## 4. The quickstart"):results.index("## 5.")]
    measured = float(re.search(r"The sweep took ([\d.]+) minutes", section).group(1))
    help_text = " ".join(CliRunner().invoke(app, ["sweep", "--help"], env={"COLUMNS": "200"}).output.split())
    for where, text in (("README.md", (ROOT / "README.md").read_text(encoding="utf-8")),
                        ("configs/quickstart.toml", (ROOT / "configs" / "quickstart.toml").read_text()),
                        ("ndogo sweep --help", help_text)):
        text = " ".join(text.replace("#", " ").split())
        stated = re.findall(r"[Aa]bout (\d+)(?:[–-](\d+))? minutes", text)
        assert stated, f"{where}: states no time"
        low, high = int(stated[0][0]), int(stated[0][1] or stated[0][0])
        assert low <= measured * 1.1 and high >= measured * 0.9, f"{where}: about {low}-{high} min, measured {measured}"
        assert "busy" in text, f"{where}: says nothing of a busy machine"


class _Slow:
    """A forward pass that is slow for its first `calls` calls, then fast: a machine whose load went away."""

    def __init__(self, forward: Any, calls: int) -> None:
        self.forward, self.calls = forward, calls

    def __call__(self, batch: Any) -> Any:
        self.calls -= 1
        if self.calls >= 0:
            time.sleep(0.03)
        return self.forward(batch)


def test_end_to_end_latency_is_timed_with_the_forward_pass_and_never_below_it(
        tiny_model: Path, tiny_corpus: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """#35.20: a row had a baseline's end-to-end latency (38.3 ms) under its forward pass's (72.7): the two were
    timed one after the other, and the machine's load changed in between. They are timed in one pass now."""
    import ndogo.evaluate as ev
    from ndogo.models.runner import load_runner

    def loaded(path: Any) -> Any:
        runner = load_runner(path)
        # slow for the first 100 calls: at least the scoring of F1 and the whole forward-only timing when the
        # two latencies were timed one after the other (69 to 101 calls here), then fast
        runner.forward = _Slow(runner.forward, 100)
        return runner

    monkeypatch.setattr(ev, "load_runner", loaded)
    row = ev.evaluate(tiny_model, str(tiny_corpus), "hau", speed=True, threads=1)
    assert row["latency_e2e_ms_b1"] >= row["latency_ms_b1"] > 0


def test_a_timing_whose_end_to_end_latency_is_below_its_forward_pass_is_refused(
        tiny_model: Path, tiny_corpus: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """#35.20: numbers that contradict each other fail the timing, saying why, instead of entering a row."""
    import ndogo.evaluate as ev
    from ndogo.deploy.predict import Predictor

    monkeypatch.setattr(Predictor, "predict", lambda self, texts: [])  # an end-to-end path that costs nothing
    with pytest.raises(ValueError, match=r"end-to-end latency \(.* ms\) came out below the forward pass's"):
        ev.evaluate(tiny_model, str(tiny_corpus), "hau", speed=True, threads=1)


@pytest.mark.parametrize(("change", "message"), [
    ({"size_bytes": -5}, "column size_bytes is -5; must be a positive whole number"),
    ({"latency_ms_b1": float("nan")}, "column latency_ms_b1 is nan; must be a positive number"),
    ({"size_bytes": 10**400}, "column size_bytes is 1000000000000000000000000000000000000000…; must be a positive"),
    ({"f1": "0.99"}, "column f1 is '0.99'; must be a number between 0 and 1"),
    ({"f1": 5}, "column f1 is 5; must be a number between 0 and 1"),
    ({"lang": None}, "column lang is empty; every row of results must have it"),
    ({"per_type": {"PER": {"f1": 7}}}, "column f1_PER is 7; must be a number between 0 and 1"),
])
def test_a_stored_row_with_an_impossible_number_is_refused_naming_its_cell(tmp_path: Path, change: dict,
                                                                          message: str) -> None:
    """#35.6: a store's rows are checked as a CSV's are (a row edited by hand, or written by a bug, is JSON
    beside the SQL columns): recommend and report name the store and the cell, and never choose the row."""
    from typer.testing import CliRunner

    from ndogo.cli import app

    store = Store(tmp_path / "sweep")
    base = {"model": "m", "lang": "hau", "seed": 1, "status": "done", "start": "finetuned", "dev_f1": 0.8}
    store.put({**base, "cell_id": "b", "recipe": "baseline", "f1": 0.8, "size_bytes": 100, "latency_ms_b1": 10.0})
    store.put({**base, "cell_id": "q", "recipe": "int8", "f1": 0.8, "size_bytes": 25, "latency_ms_b1": 3.0})
    store.close()
    with sqlite3.connect(tmp_path / "sweep" / STORE) as conn:
        row = json.loads(conn.execute("SELECT row FROM cells WHERE cell_id = 'q'").fetchone()[0])
        conn.execute("UPDATE cells SET row = ? WHERE cell_id = 'q'", (json.dumps({**row, **change}),))
    conn.close()
    runner = CliRunner()
    for args in (["recommend", str(tmp_path / "sweep"), "--lang", "hau", "--max-f1-drop", "1"],
                 ["report", str(tmp_path / "sweep"), "--out", str(tmp_path / "report")]):
        result = runner.invoke(app, args)
        out = result.output.strip()
        assert result.exit_code == 2 and "\n" not in out, out
        assert out == f"error: {tmp_path / 'sweep' / STORE}: cell q: {message}" or \
            out.startswith(f"error: {tmp_path / 'sweep' / STORE}: cell q: {message}"), out


def test_plan_lists_what_a_resume_would_build_and_times_it_from_the_store(tmp_path: Path, tiny_model: Path,
                                                                          tiny_corpus: Path) -> None:
    from ndogo.experiments.sweep import plan_sweep

    # two chains sharing their first stage: planned, the second reuses what the first builds
    config = load_sweep_config(write_config(tmp_path / "grid.toml", tiny_model, seeds="[1]",
                                            recipes='twice = "finetune:max_steps=2 | finetune:max_steps=1"'),
                               str(tiny_corpus))
    out = tmp_path / "out"
    fresh = {p.cell.recipe.name: p for p in plan_sweep(config, out)}
    assert not out.exists()  # planning creates nothing
    assert {p.status for p in fresh.values()} == {"to run"} and all(p.estimate is None for p in fresh.values())
    assert fresh["baseline"].to_build == ["finetune"] and fresh["more"].to_build == ["finetune"]
    assert fresh["twice"].to_build == ["finetune"]  # its first stage is `more`'s whole chain: built there
    run_sweep(config.only_recipes(["more"]), out, show_progress=False)
    before = (out / STORE).read_bytes()
    after = {p.cell.recipe.name: p for p in plan_sweep(config, out)}
    assert (out / STORE).read_bytes() == before  # read-only
    assert after["baseline"].status == after["more"].status == "done"
    assert after["twice"].status == "to run" and after["twice"].to_build == ["finetune"]
    assert after["twice"].estimate is not None and after["twice"].estimate > 0  # finetune + evaluate, timed here
    # the command: a line per cell, then the counts
    result = subprocess.run([*sweep_command(tmp_path / "grid.toml", out, tiny_corpus), "--plan"],
                            capture_output=True, text=True, check=True)
    assert re.search(r"to run\s+tiny/hau/twice/seed 1\s+builds finetune, ~", result.stdout)
    assert "3 cells in" in result.stdout and "2 done, 1 to run" in result.stdout
