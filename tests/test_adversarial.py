"""Regressions from the adversarial pass and the new user's first day (issue #19).

Each test names the item it holds; each failed before its fix. Inputs are read
intact or refused in one line naming the file; nothing is silently changed.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from ndogo.data.conll import DataError, read_conll, read_predictions
from ndogo.data.corpus import load_corpus

from .conftest import ROOT

PLAIN = "Musa B-PER\nya O\nje O\nKano B-LOC\n\nAisha B-PER\nBello I-PER\n"


def ndogo(*args: str, cwd: Path | None = None, timeout: int = 300) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "ndogo", *args], capture_output=True, text=True, cwd=cwd or ROOT,
                          timeout=timeout, env={**__import__("os").environ, "HF_HUB_OFFLINE": "1"})


def corpus_dir(tmp_path: Path, files: dict[str, str | bytes]) -> Path:
    lang = tmp_path / "corpus" / "hau"
    lang.mkdir(parents=True)
    for name, text in files.items():
        (lang / name).write_bytes(text.encode("utf-8") if isinstance(text, str) else text)
    return tmp_path / "corpus"


# 2. old-Mac line endings

def test_2_cr_only_line_endings_are_read_as_lines(tmp_path: Path) -> None:
    path = tmp_path / "train.txt"
    path.write_bytes(PLAIN.replace("\n", "\r").encode())
    cf = read_conll(path)
    assert [s.tokens for s in cf.sentences] == [["Musa", "ya", "je", "Kano"], ["Aisha", "Bello"]]
    assert any("carriage return" in p.message for p in cf.problems)


# 3. tokens holding U+2028, U+00A0, U+001C stay whole

@pytest.mark.parametrize("char", ["\u2028", "\u00a0", "\u001c", "\u2009"])
def test_3_unicode_spaces_inside_tokens_are_kept(tmp_path: Path, char: str) -> None:
    path = tmp_path / "train.txt"
    path.write_text(f"Abu{char}ja B-LOC\nya O\n\nMusa\tB-PER\n", encoding="utf-8")
    sentences = read_conll(path).sentences
    assert sentences[0].tokens == [f"Abu{char}ja", "ya"]
    assert sentences[0].tags == ["B-LOC", "O"]
    assert sentences[1].tokens == ["Musa"]


# 5. a three-column predictions file is not scored on its last column

def test_5_three_column_predictions_are_refused_unless_the_column_is_named(tmp_path: Path) -> None:
    gold = tmp_path / "gold.txt"
    gold.write_text("Musa B-PER\nya O\nKano B-LOC\n", encoding="utf-8")
    pred = tmp_path / "pred.txt"
    pred.write_text("Musa O B-PER\nya O O\nKano O B-LOC\n", encoding="utf-8")
    with pytest.raises(DataError, match=r"pred.txt:1: 3 columns, expected 2"):
        read_predictions(pred)
    assert [s.tags for s in read_predictions(pred, column=2)] == [["O", "O", "O"]]
    result = ndogo("score", str(gold), str(pred), "--json")
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert "3 columns" in result.stderr + result.stdout
    result = ndogo("score", str(gold), str(pred), "--pred-column", "2", "--json")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["f1"] == 0.0


# 6. a type outside the scheme, or differing in case, is listed

def test_6_lowercase_and_unknown_types_are_listed_as_problems(tmp_path: Path) -> None:
    path = tmp_path / "train.txt"
    path.write_text("Musa B-per\nya O\n\nKano B-LOC\nState B-GPE\n", encoding="utf-8")
    problems = [str(p) for p in read_conll(path).problems]
    assert any("'per' differs only in case from 'PER'" in p and ":1:" in p for p in problems)
    assert any("'GPE'" in p and ":5:" in p for p in problems)


# 7. train.txt missing, a folder, a dangling symlink, a symlink loop

@pytest.mark.parametrize("kind", ["missing", "folder", "dangling", "loop"])
def test_7_broken_train_file_is_named_in_one_line(tmp_path: Path, kind: str) -> None:
    root = corpus_dir(tmp_path, {"dev.txt": PLAIN, "test.txt": PLAIN})
    train = root / "hau" / "train.txt"
    if kind == "folder":
        train.mkdir()
    elif kind == "dangling":
        train.symlink_to(root / "hau" / "nowhere.txt")
    elif kind == "loop":
        train.symlink_to(train)
    if kind == "missing":
        corpus = load_corpus(root, "hau")
        with pytest.raises(DataError, match=r"train\.txt: no train split: fine-tuning needs it"):
            corpus.require("train", "fine-tuning")
        assert any("train.txt" in str(p) for p in corpus.problems)  # `data stats` lists it
    else:
        with pytest.raises(DataError, match=r"train\.txt"):
            load_corpus(root, "hau")
    result = ndogo("finetune", "--model", "minilm", "--data", str(root), "--lang", "hau", "--out",
                   str(tmp_path / "run"), "--max-steps", "1")
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr and "KeyError" not in result.stderr
    assert "train.txt" in result.stderr
    assert not (tmp_path / "run").exists()
    stats = ndogo("data", "stats", str(root))
    assert "train.txt" in stats.stdout + stats.stderr


# 1. resuming never unpickles

class _Bomb:
    def __init__(self, target: str) -> None:
        self.target = target

    def __reduce__(self):  # what a crafted checkpoint would hold
        return (Path.touch, (Path(self.target),))


def test_1_a_pickled_checkpoint_is_never_loaded(tiny_model: Path, tiny_corpus: Path, tmp_path: Path) -> None:
    import torch

    from ndogo.train.checkpoint import CheckpointError
    from ndogo.train.finetune import FinetuneConfig, finetune

    out = tmp_path / "run"
    (out / "checkpoint").mkdir(parents=True)
    marker = tmp_path / "pwned"
    torch.save({"config": {}, "x": _Bomb(str(marker))}, out / "checkpoint" / "state.pt")
    cfg = FinetuneConfig(model=str(tiny_model), data=str(tiny_corpus), langs=["hau"], out=str(out), max_steps=2,
                         batch_size=8, threads=1)
    with pytest.raises(CheckpointError, match="never loads pickles"):
        finetune(cfg, show_progress=False)
    assert not marker.exists()


def test_1_mlm_checkpoints_are_safetensors_and_json(tmp_path: Path) -> None:
    import torch

    from ndogo.train.checkpoint import load_checkpoint, save_checkpoint

    model = torch.nn.Linear(3, 2)
    opt = torch.optim.AdamW(model.parameters())
    model(torch.ones(1, 3)).sum().backward()
    opt.step()
    state = {"model": model.state_dict(), "optimizer": opt.state_dict(), "rng": torch.get_rng_state(),
             "state": {"step": 3, "history": [{"loss": float("nan")}]}}
    save_checkpoint(tmp_path / "ck", state)
    assert sorted(p.name for p in (tmp_path / "ck").iterdir()) == ["state.json", "tensors.safetensors"]
    back = load_checkpoint(tmp_path / "ck")
    opt2 = torch.optim.AdamW(torch.nn.Linear(3, 2).parameters())
    opt2.load_state_dict(back["optimizer"])  # integer parameter keys survive
    assert torch.equal(opt2.state_dict()["state"][0]["exp_avg"], opt.state_dict()["state"][0]["exp_avg"])
    assert torch.equal(back["rng"], state["rng"]) and back["state"]["step"] == 3


# 9. Ctrl-C saves a checkpoint; --save-every; identical per-epoch loss after a resume

def test_9_sigint_saves_a_checkpoint_and_resume_is_exact(tiny_model: Path, tiny_corpus: Path, tmp_path: Path) -> None:
    import os
    import signal

    import torch
    from safetensors.torch import load_file

    from ndogo.train.checkpoint import load_checkpoint
    from ndogo.train.finetune import FinetuneConfig, TrainingInterrupted, finetune

    def cfg(out: Path) -> FinetuneConfig:
        return FinetuneConfig(model=str(tiny_model), data=str(tiny_corpus), langs=["hau"], out=str(out), epochs=2,
                              lr=1e-3, batch_size=8, save_every=1000, threads=1)

    straight = finetune(cfg(tmp_path / "a"), show_progress=False)
    before = signal.getsignal(signal.SIGINT)  # SIG_IGN when the suite runs in the background (nohup, CI)
    calls = {"n": 0}

    def ctrl_c_at_step_3(model: torch.nn.Module) -> None:
        calls["n"] += 1
        if calls["n"] == 3:
            os.kill(os.getpid(), signal.SIGINT)

    with pytest.raises(TrainingInterrupted, match="SIGINT: stopped at step 3"):
        finetune(cfg(tmp_path / "b"), step_hooks=[ctrl_c_at_step_3], show_progress=False)
    assert load_checkpoint(tmp_path / "b" / "checkpoint")["state"]["step"] == 3  # before the first save_every
    assert signal.getsignal(signal.SIGINT) is before  # handlers restored to what they were
    resumed = finetune(cfg(tmp_path / "b"), show_progress=False)
    assert [h["loss"] for h in resumed["history"]] == [h["loss"] for h in straight["history"]]
    a, b = load_file(tmp_path / "a" / "model.safetensors"), load_file(tmp_path / "b" / "model.safetensors")
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_9_cli_exits_130_naming_the_checkpoint(tiny_model: Path, tiny_corpus: Path, tmp_path: Path,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    import os
    import signal

    from typer.testing import CliRunner

    import ndogo.train.finetune as ft
    from ndogo.cli import app

    real = ft.finetune

    def with_ctrl_c(cfg, **kw):
        return real(cfg, step_hooks=[lambda m: os.kill(os.getpid(), signal.SIGINT)], **kw)

    monkeypatch.setattr(ft, "finetune", with_ctrl_c)
    out = tmp_path / "run"
    result = CliRunner().invoke(app, ["finetune", "--model", str(tiny_model), "--data", str(tiny_corpus), "--lang",
                                      "hau", "--out", str(out), "--epochs", "1", "--save-every", "50",
                                      "--threads", "1"])
    assert result.exit_code == 130, result.output
    assert "checkpoint saved in" in result.output and "resume" in result.output
    assert (out / "checkpoint" / "state.json").is_file()


# 10. the default learning rate is the project's measured one

def test_10_finetune_defaults_are_the_documented_budget() -> None:
    from typer.testing import CliRunner

    from ndogo.cli import app
    from ndogo.train.finetune import FinetuneConfig

    cfg = FinetuneConfig(model="m", data=None, langs=["hau"], out="o")
    assert (cfg.lr, cfg.epochs, cfg.batch_size) == (1e-4, 10, 16)
    # the command's options are the config's fields: its help states the config's defaults
    text = " ".join(CliRunner().invoke(app, ["finetune", "--help"], env={"COLUMNS": "400"}).output.split())
    assert "(default 0.0001)" in text and "(default 10)" in text and "(default 16)" in text


# 11. no optimizer checkpoint left behind, ordinary file modes

def test_11_finished_run_has_no_checkpoint_and_ordinary_modes(tiny_model: Path, tiny_corpus: Path,
                                                              tmp_path: Path) -> None:
    import stat

    from ndogo.train.finetune import FinetuneConfig, finetune

    base = dict(model=str(tiny_model), data=str(tiny_corpus), langs=["hau"], max_steps=3, batch_size=8, threads=1)
    out = tmp_path / "run"
    finetune(FinetuneConfig(out=str(out), **base), show_progress=False)
    assert not (out / "checkpoint").exists()
    modes = {p.name: stat.S_IMODE(p.stat().st_mode) for p in out.iterdir() if p.is_file()}
    assert "model.safetensors" in modes and set(modes.values()) == {0o644}, modes
    again = finetune(FinetuneConfig(out=str(out), **base), show_progress=False)  # done: not retrained
    assert again["complete"] and not (out / "checkpoint").exists()
    with pytest.raises(ValueError, match="finished run of a different configuration"):
        finetune(FinetuneConfig(out=str(out), **{**base, "max_steps": 4}), show_progress=False)
    kept = tmp_path / "kept"
    finetune(FinetuneConfig(out=str(kept), keep_checkpoint=True, **base), show_progress=False)
    assert (kept / "checkpoint" / "state.json").is_file()


# 12. trim-vocab takes a text file; ndogo.json records absolute paths

def test_12_trim_takes_a_text_file_and_records_absolute_paths(tiny_model: Path, tiny_corpus: Path,
                                                              tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import shutil

    from ndogo.compress.trim import TrimConfig, trim

    monkeypatch.chdir(tmp_path)
    shutil.copytree(tiny_model, tmp_path / "model")
    text = tmp_path / "hau-news.txt"
    text.write_text("Shugaban kasar ya isa Abuja ranar Litinin.\nMusa ya je Kano.\n", encoding="utf-8")
    out = trim("model", "trimmed", TrimConfig(lang="hau", data=str(tiny_corpus), corpus="hau-news.txt"))
    meta = json.loads((out / "ndogo.json").read_text())
    assert meta["parent"] == str((tmp_path / "model").resolve())
    assert meta["trim"]["sources"][1] == str(text.resolve())
    assert meta["trim"]["monolingual_lines"] == 2


# 4. a model folder without its tokenizer is refused, not scored 0.0

def test_4_model_without_tokenizer_is_refused(tiny_model: Path, tiny_corpus: Path, tmp_path: Path) -> None:
    import shutil

    bare = tmp_path / "bare"
    shutil.copytree(tiny_model, bare)
    for name in ("tokenizer.json", "vocab.txt", "tokenizer_config.json", "special_tokens_map.json"):
        (bare / name).unlink(missing_ok=True)
    for command in (["evaluate", str(bare), "--data", str(tiny_corpus), "--lang", "hau", "--no-speed"],
                    ["quantize", str(bare), "--method", "dynamic-int8", "--out", str(tmp_path / "q")]):
        result = ndogo(*command)
        assert result.returncode == 2, (command, result.stdout, result.stderr)
        assert "no tokenizer files" in result.stderr and "Traceback" not in result.stderr
    from ndogo.models.loading import ModelError

    with pytest.raises(ModelError, match="no tokenizer files"):
        __import__("ndogo").load(bare)


# 8. broken records and inputs: one line each

def _edit_json(path: Path, **changes) -> None:
    data = json.loads(path.read_text())
    data.update(changes)
    path.write_text(json.dumps(data))


def test_8_label_count_and_max_length_disagreements_are_named(tiny_model: Path, tmp_path: Path) -> None:
    import shutil

    from ndogo.models.loading import ModelError
    from ndogo.models.runner import load_runner

    labels = tmp_path / "labels"
    shutil.copytree(tiny_model, labels)
    _edit_json(labels / "config.json", id2label={"0": "O", "1": "B-PER", "2": "I-PER"},
               label2id={"O": 0, "B-PER": 1, "I-PER": 2})
    with pytest.raises(ModelError, match=r"config\.json: 3 labels, but the classifier in model\.safetensors has 9"):
        load_runner(labels)
    window = tmp_path / "window"
    shutil.copytree(tiny_model, window)
    (window / "ndogo.json").write_text(json.dumps({"kind": "hf", "max_length": 4096}))
    with pytest.raises(ModelError, match=r"ndogo\.json: max_length 4096 is more than the model takes \(64"):
        load_runner(window)


def test_8_damaged_result_stores_are_named(tmp_path: Path) -> None:
    import sqlite3

    from ndogo.experiments.store import Store

    wrong = tmp_path / "wrong"
    wrong.mkdir()
    sqlite3.connect(wrong / "results.sqlite").execute("CREATE TABLE cells (x INTEGER)")
    with pytest.raises(ValueError, match="lacks"):
        Store(wrong)

    bad_row = tmp_path / "row"
    store = Store(bad_row)
    store.put({"cell_id": "c1", "model": "m", "lang": "hau", "recipe": "r", "seed": 1, "status": "done"})
    store.conn.execute("UPDATE cells SET row = '{not json' WHERE cell_id = 'c1'")
    with pytest.raises(ValueError, match=r"results\.sqlite: the row of cell c1 is not valid JSON"):
        store.rows()
    store.close()

    damaged = tmp_path / "damaged"
    store = Store(damaged)
    for i in range(300):
        store.put({"cell_id": f"c{i}", "model": "m" * 200, "lang": "hau", "recipe": "r", "seed": 1,
                   "status": "done"})
    store.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    store.close()
    raw = bytearray((damaged / "results.sqlite").read_bytes())
    page = 4096
    raw[page * 2: page * 2 + 200] = b"\xff" * 200  # a b-tree page overwritten
    (damaged / "results.sqlite").write_bytes(bytes(raw))
    with pytest.raises(ValueError, match=r"results\.sqlite"):
        Store(damaged).rows()
    result = ndogo("report", str(damaged), "--out", str(tmp_path / "rep"))
    assert result.returncode == 2 and "Traceback" not in result.stderr, result.stderr


@pytest.mark.parametrize("bad,message", [([None], "text 1 is NoneType"), ([b"Kano"], "text 1 is bytes"),
                                         (["ok", "Ka\ud800no"], "text 2 has a lone surrogate"),
                                         (["  "], "text 1 is empty"), (b"Kano", "got bytes")])
def test_8_predict_refuses_what_is_not_text(tiny_model: Path, bad, message: str) -> None:
    import ndogo

    with pytest.raises(ValueError, match=message):
        ndogo.load(tiny_model).predict(bad)


# 13. compress prints the real evaluate command

def test_13_compress_prints_the_command_to_measure_it(tiny_model: Path, tiny_corpus: Path, tmp_path: Path) -> None:
    out = tmp_path / "q"
    result = ndogo("compress", str(tiny_model), "--recipe", "quantize:method=dynamic-int8", "--out", str(out),
                   "--lang", "hau", "--data", str(tiny_corpus))
    assert result.returncode == 0, result.stderr
    assert f"ndogo evaluate {out} --lang hau --data {tiny_corpus}" in result.stdout
    assert "LANG" not in result.stdout


# 14. the frictions: noise, --version, --skip-empty, a MasakhaNER 2.0 language, remote code

def test_14_version_and_no_third_party_noise(tiny_model: Path) -> None:
    from ndogo import __version__

    version = ndogo("--version")
    assert version.returncode == 0 and version.stdout.strip() == f"ndogo {__version__}"
    result = subprocess.run([sys.executable, "-c", f"import ndogo; print(ndogo.load({str(tiny_model)!r}).predict("
                             "'Musa ya je Kano.')[0] is not None)"], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    for noise in ("Failed to load", "pytree", "Loading weights", "LOAD REPORT"):
        assert noise not in result.stderr + result.stdout, result.stderr


def test_14_a_masakhaner2_language_is_pointed_to_its_corpus() -> None:
    import time

    t0 = time.perf_counter()
    with pytest.raises(DataError, match=r"no language 'tsn' in masakhaner; it is in masakhane/masakhaner2"):
        load_corpus("masakhaner", "tsn")
    assert time.perf_counter() - t0 < 5  # no hub retries


def test_14_remote_code_models_are_refused_in_ndogo_words(tmp_path: Path) -> None:
    from ndogo.models.loading import ModelError, load_for_tokens

    model = tmp_path / "custom"
    model.mkdir()
    (model / "config.json").write_text(json.dumps({
        "model_type": "ndogo-custom-arch", "auto_map": {"AutoConfig": "modeling.CustomConfig",
                                                        "AutoModelForTokenClassification": "modeling.Custom"}}))
    (model / "modeling.py").write_text("raise SystemExit('remote code ran')\n")
    with pytest.raises(ModelError, match="ndogo never runs code a model brings") as err:
        load_for_tokens(model)
    assert "trust_remote_code=True" not in str(err.value)


# 15. both sparsities, named apart

def test_15_evaluate_reports_whole_model_and_pruned_weight_sparsity(tiny_model: Path, tiny_corpus: Path,
                                                                   tmp_path: Path) -> None:
    from ndogo.compress.prune import prune, prune_config
    from ndogo.evaluate import evaluate

    out = prune(tiny_model, tmp_path / "p60", prune_config(sparsity=0.6))
    row = evaluate(out, str(tiny_corpus), "hau", "test", speed=False)
    assert abs(row["sparsity_encoder_linear"] - 0.6) < 0.01
    assert 0 < row["sparsity"] < row["sparsity_encoder_linear"]  # embeddings are not pruned
    dense = evaluate(tiny_model, str(tiny_corpus), "hau", "test", speed=False)
    assert dense["sparsity_encoder_linear"] == 0.0


# 18. every saved model says which aggregation strategy matches ndogo

def test_18_saved_models_name_the_matching_pipeline_aggregation(tiny_model: Path, tiny_corpus: Path,
                                                                tmp_path: Path) -> None:
    from transformers import pipeline

    import ndogo
    from ndogo.train.finetune import FinetuneConfig, finetune

    out = tmp_path / "run"
    finetune(FinetuneConfig(model=str(tiny_model), data=str(tiny_corpus), langs=["hau"], out=str(out),
                            max_steps=30, lr=5e-3, batch_size=8, threads=1), show_progress=False)
    card = (out / "README.md").read_text(encoding="utf-8")
    assert 'aggregation_strategy="first"' in card
    assert (README := (ROOT / "README.md").read_text(encoding="utf-8")) and 'aggregation_strategy="first"' in README
    text = "Shugaban kasar Najeriya Muhammadu Buhari ya isa birnin Kano ranar Litinin ."
    # the tiny model's random head tags many words as entities: a comparison with something in it
    ours = [(e.start, e.end, e.label) for e in ndogo.load(tiny_model).predict(text)[0]]
    theirs = [(e["start"], e["end"], e["entity_group"])
              for e in pipeline("token-classification", model=str(tiny_model), aggregation_strategy="first")(text)]
    assert ours and ours == theirs  # entities found, and the same ones


# The second adversarial pass: damaged model folders, predict's readers, settings that cannot train

@pytest.mark.parametrize("name,content,message", [
    ("ndogo.json", "[1]", "expected a JSON object"),
    ("ndogo.json", '"hf"', "expected a JSON object"),
    ("ndogo.json", '{"kind": ["hf"]}', '"kind" must be a string'),
    ("config.json", "[1, 2]", "config.json: expected a JSON object"),
    ("config.json", "null", "config.json: expected a JSON object"),
    ("tokenizer_config.json", "[]", "tokenizer_config.json: expected a JSON object"),
    ("tokenizer.json", "{}", 'no "model" object'),
])
def test_damaged_model_files_are_named_in_one_line(tiny_model: Path, tmp_path: Path, name: str, content: str,
                                                   message: str) -> None:
    import shutil

    from ndogo.models.loading import ModelError
    from ndogo.models.runner import load_runner

    model = tmp_path / "m"
    shutil.copytree(tiny_model, model)
    (model / name).write_text(content, encoding="utf-8")
    with pytest.raises(ModelError, match=message):
        load_runner(model)


@pytest.mark.parametrize("edit,message", [
    ({"max_position_embeddings": "64"}, "could not load the model"),
    ({"id2label": {str(i): f"L{i}" for i in (0, 1, 2, 3, 4, 5, 6, 7, 9)}}, "id2label must number the labels"),
    ({"id2label": {str(i): f"LABEL_{i}" for i in range(9)}}, "are not IOB tags"),
])
def test_config_fields_of_the_wrong_shape_are_refused(tiny_model: Path, tmp_path: Path, edit: dict,
                                                      message: str) -> None:
    import shutil

    model = tmp_path / "m"
    shutil.copytree(tiny_model, model)
    _edit_json(model / "config.json", **edit)
    result = ndogo("predict", str(model), "-i", str(_text(tmp_path)))
    assert result.returncode == 2, (result.stdout, result.stderr[-500:])
    assert message in result.stderr and "Traceback" not in result.stderr


def _text(tmp_path: Path) -> Path:
    path = tmp_path / "in.txt"
    path.write_text("Musa ya je Kano.\n", encoding="utf-8")
    return path


def test_predict_reads_conll_and_text_like_the_corpus_reader(tiny_model: Path, tmp_path: Path) -> None:
    from ndogo.deploy.predict import read_sentences

    cr = tmp_path / "cr.txt"
    cr.write_bytes(b"Kano B-LOC\rya O\r\rMusa B-PER\rya O\r\r")
    assert [[w.text for w in s.words] for s in read_sentences(cr, "conll")] == [["Kano", "ya"], ["Musa", "ya"]]
    nbsp = tmp_path / "nbsp.txt"
    nbsp.write_text("Abu\u00a0Bakar B-PER\nya O\n", encoding="utf-8")
    assert [w.text for w in read_sentences(nbsp, "conll")[0].words] == ["Abu\u00a0Bakar", "ya"]
    text = tmp_path / "crtext.txt"
    text.write_bytes(b"Musa ya je Kano.\rAbu ya tafi.\rIna zuwa.\r")
    assert [s.line for s in read_sentences(text)] == [1, 2, 3]


def test_predict_refuses_a_fifo_instead_of_hanging(tiny_model: Path, tmp_path: Path) -> None:
    import os

    fifo = tmp_path / "fifo.txt"
    os.mkfifo(fifo)
    result = ndogo("predict", str(tiny_model), "-i", str(fifo), timeout=120)
    assert result.returncode == 2 and "not a regular file" in result.stderr


@pytest.mark.parametrize("option,message", [("lr=inf", "lr must be a positive finite number"),
                                            ("lr=-1", "lr must be a positive finite number"),
                                            ("batch_size=0", "batch_size must be a whole number"),
                                            ("epochs=0", "epochs must be a whole number")])
def test_settings_that_cannot_train_are_refused_before_any_work(tiny_model: Path, tiny_corpus: Path,
                                                                tmp_path: Path, option: str, message: str) -> None:
    out = tmp_path / "out"
    result = ndogo("compress", str(tiny_model), "--recipe", f"finetune:{option}", "--lang", "hau", "--data",
                   str(tiny_corpus), "--out", str(out))
    assert result.returncode == 2 and message in result.stderr, result.stderr[-500:]
    stages = Path(str(out) + ".stages")
    assert not out.exists() and (not stages.exists() or not any(stages.iterdir()))


@pytest.mark.parametrize("line,message", [("seeds = [99999999999999999999]", "not between 0 and 2**32 - 1"),
                                          ("seeds = [1, 1]", "listed twice: 1"),
                                          ("seeds = [-1]", "not between 0 and 2**32 - 1")])
def test_sweep_seeds_are_checked(tiny_model: Path, tiny_corpus: Path, tmp_path: Path, line: str,
                                 message: str) -> None:
    from ndogo.experiments.config import ConfigError, load_sweep_config

    config = tmp_path / "s.toml"
    config.write_text(f'languages = ["hau"]\n{line}\n[models.tiny]\nmodel = "{tiny_model}"\n[recipes]\n'
                      'baseline = ""\n', encoding="utf-8")
    with pytest.raises(ConfigError, match=re.escape(message)):
        load_sweep_config(config, str(tiny_corpus))


def test_scoring_an_empty_gold_file_is_refused_and_long_lines_are_cut(tmp_path: Path) -> None:
    empty = tmp_path / "empty.txt"
    empty.write_text("\n\n", encoding="utf-8")
    result = ndogo("score", str(empty), str(empty))
    assert result.returncode == 2 and "no sentences in this file" in result.stderr
    big = tmp_path / "big.txt"
    big.write_text("a" * 1_000_000 + "\n", encoding="utf-8")
    result = ndogo("score", str(big), str(big))
    assert result.returncode == 2 and len(result.stderr) < 500, len(result.stderr)


def test_a_token_starting_with_docstart_is_data_and_a_bom_inside_is_said(tmp_path: Path) -> None:
    path = tmp_path / "train.txt"
    path.write_text("-DOCSTART-x B-PER\nKano B-LOC\n\n-DOCSTART- O\n\n\ufeffya O\n", encoding="utf-8")
    cf = read_conll(path)
    assert [s.tokens for s in cf.sentences] == [["-DOCSTART-x", "Kano"], ["\ufeffya"]]
    assert any("byte-order mark" in p.message for p in cf.problems)


def test_data_stats_names_empty_language_folders_and_reads_a_single_file(tmp_path: Path) -> None:
    (tmp_path / "corpus" / "hau").mkdir(parents=True)
    result = ndogo("data", "stats", str(tmp_path / "corpus"))
    assert result.returncode == 2 and "folders without split files: hau" in result.stderr
    one = tmp_path / "sample.conll"
    one.write_text(PLAIN, encoding="utf-8")
    result = ndogo("data", "stats", str(one))
    assert result.returncode == 0, result.stderr
    assert "sample" in result.stdout and "6" in result.stdout  # 6 tokens
