"""Magnitude pruning hits the requested sparsity, holds its zeros through fine-tuning, and stores them compactly."""

from __future__ import annotations

import json
from itertools import pairwise
from pathlib import Path

import pytest
import torch
from typer.testing import CliRunner

from conftest import make_tiny_model
from ndogo.cli import app
from ndogo.compress.prune import prune
from ndogo.compress.prune._sparse import SPARSE_FILE, decode_sparse, densify, encode_sparse
from ndogo.compress.prune.magnitude import (
    GradualPruning,
    cubic_sparsity,
    finetune_pruning,
    magnitude_prune,
    prunable,
)
from ndogo.compress.prune.magnitude import MagnitudeConfig as PruneConfig
from ndogo.models.loading import load_for_tokens, read_meta
from ndogo.models.runner import load_runner, size_on_disk
from ndogo.train.finetune import FinetuneConfig, finetune

runner = CliRunner()


def bits(t: torch.Tensor) -> torch.Tensor:
    """Bit patterns, so that -0.0 and 0.0 differ."""
    return t.contiguous().view(torch.int32) if t.dtype == torch.float32 else t


def zeros_in(model: torch.nn.Module, names: list[str]) -> float:
    total = sum(model.get_parameter(n).numel() for n in names)
    return sum(int((model.get_parameter(n) == 0).sum()) for n in names) / total


@pytest.fixture(scope="module")
def wide_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Three layers with different weight scales, so global and per-layer thresholds differ."""
    return make_tiny_model(tmp_path_factory.mktemp("wide") / "model", layers=3, hidden=48, heads=4, seed=1)


@pytest.mark.parametrize("scope", ["layer", "global"])
@pytest.mark.parametrize("sparsity", [0.1, 0.37, 0.6, 0.9, 0.95])
def test_achieved_sparsity_within_half_a_point(wide_model: Path, scope: str, sparsity: float) -> None:
    model = load_for_tokens(wide_model)
    masks = magnitude_prune(model, sparsity, scope)
    names = list(masks)
    assert len(names) == 3 * 6  # q, k, v, attention out, intermediate, output per layer; not the head
    achieved = zeros_in(model, names)
    assert abs(achieved - sparsity) <= 0.005
    if scope == "layer":
        assert all(abs(float((model.get_parameter(n) == 0).float().mean()) - sparsity) <= 0.005 for n in names)
    head = model.classifier.weight
    assert int((head == 0).sum()) == 0


def test_global_scope_ranks_across_layers(wide_model: Path) -> None:
    model = load_for_tokens(wide_model)
    with torch.no_grad():
        model.get_parameter(next(iter(n for n, _ in prunable(model))) + ".weight").mul_(10)  # one large layer
    masks = magnitude_prune(model, 0.5, "global")
    per_layer = [1 - float(m.float().mean()) for m in masks.values()]
    assert per_layer[0] < 0.1 and max(per_layer) > 0.5  # the scaled layer is spared, others pay for it


def test_embeddings_only_on_request(wide_model: Path) -> None:
    model = load_for_tokens(wide_model)
    masks = magnitude_prune(model, 0.5, "global", include_embeddings=True)
    assert "bert.embeddings.word_embeddings.weight" in masks
    assert abs(zeros_in(model, list(masks)) - 0.5) <= 0.005
    assert "bert.embeddings.word_embeddings.weight" not in magnitude_prune(load_for_tokens(wide_model), 0.5)


def test_bad_requests_are_refused(tiny_model: Path, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="sparsity"):
        prune(tiny_model, tmp_path / "x", PruneConfig(sparsity=1.0))
    with pytest.raises(ValueError, match="scope"):
        prune(tiny_model, tmp_path / "x", PruneConfig(sparsity=0.5, scope="row"))
    with pytest.raises(ValueError, match="lang"):
        prune(tiny_model, tmp_path / "x", PruneConfig(sparsity=0.5, recover_epochs=1))
    result = runner.invoke(app, ["prune", str(tiny_model), "--sparsity", "1.5", "--out", str(tmp_path / "y")])
    assert result.exit_code == 2 and "sparsity" in result.output


def test_sparse_file_reloads_bit_identical_and_is_small(tiny_model: Path, tmp_path: Path) -> None:
    expected = load_for_tokens(tiny_model)
    magnitude_prune(expected, 0.9, "global", include_embeddings=True)
    out = prune(tiny_model, tmp_path / "s90", PruneConfig(sparsity=0.9, scope="global", include_embeddings=True))
    meta = read_meta(out)
    assert meta["kind"] == "sparse" and abs(meta["sparsity"] - 0.9) <= 0.005
    loaded = load_runner(out)
    want, got = expected.state_dict(), loaded.module.state_dict()
    assert want.keys() == got.keys()
    assert all(torch.equal(bits(want[k]), bits(got[k])) for k in want)
    dense_bytes = (tiny_model / "model.safetensors").stat().st_size
    ratio = (out / SPARSE_FILE).stat().st_size / dense_bytes
    assert 0.1 < ratio < 0.2  # 10% of values kept + 1 bit a weight for the mask (1/32 of fp32)

    hf = densify(out, tmp_path / "plain")
    plain = load_for_tokens(hf)  # an ordinary Hugging Face directory again
    assert all(torch.equal(bits(want[k]), bits(plain.state_dict()[k])) for k in want)
    assert read_meta(hf)["kind"] == "hf"


def test_negative_zero_and_dense_tensors_survive_encoding() -> None:
    torch.manual_seed(0)
    w = torch.randn(40, 30)
    w[w.abs() < 1.0] = 0.0
    w[0, :5] = -0.0
    state = {"w": w, "dense": torch.randn(8, 8), "bias": torch.randn(8), "ids": torch.arange(5)}
    tensors, layout = encode_sparse(state)
    assert list(layout) == ["w"]  # only where bitmask + values is smaller
    back = decode_sparse(tensors, layout)
    assert all(torch.equal(bits(state[k]), bits(back[k])) for k in state)
    assert torch.signbit(back["w"][0, :5]).all()


def config(tiny_model: Path, tiny_corpus: Path, out: Path, **kw) -> FinetuneConfig:
    base = dict(model=str(tiny_model), data=str(tiny_corpus), langs=["hau"], out=str(out), epochs=4,
                lr=5e-3, batch_size=16, threads=1)
    base.update(kw)
    return FinetuneConfig(**base)


class Watch:
    """A step hook run after the pruning hooks: records the zeros of the pruned weights after every step."""

    def __init__(self) -> None:
        self.sparsity: list[float] = []
        self.zero_sets: list[dict[str, torch.Tensor]] = []

    def __call__(self, model: torch.nn.Module) -> None:
        names = [f"{n}.weight" for n, _ in prunable(model)]
        self.sparsity.append(zeros_in(model, names))
        self.zero_sets.append({n: (model.get_parameter(n) == 0).clone() for n in names})


def test_pruned_before_finetuning_stays_exactly_zero(tiny_model: Path, tiny_corpus: Path, tmp_path: Path) -> None:
    cfg = config(tiny_model, tiny_corpus, tmp_path / "oneshot")
    hooks = finetune_pruning(cfg, 0.6, "oneshot")
    watch = Watch()
    hooks["step_hooks"].append(watch)
    metrics = finetune(cfg, show_progress=False, **hooks)
    mask = hooks["step_hooks"][0].masks
    assert len(watch.zero_sets) == metrics["steps"] > 4  # every optimizer step was seen
    for zeros in watch.zero_sets:
        assert all(bool(zeros[n][~m].all()) for n, m in mask.items())  # pruned: still exactly zero
    saved = load_for_tokens(tmp_path / "oneshot")
    pretrained = load_for_tokens(tiny_model)
    for name, m in mask.items():
        assert bool((saved.get_parameter(name)[~m] == 0).all())
        assert not torch.equal(saved.get_parameter(name)[m], pretrained.get_parameter(name)[m])  # kept ones trained
    assert read_meta(tmp_path / "oneshot")["prune"]["sparsity"] == 0.6


def test_gradual_schedule_rises_cubically_and_keeps_only_final_sparsity(tiny_model: Path, tiny_corpus: Path,
                                                                         tmp_path: Path) -> None:
    assert cubic_sparsity(0, 0.8, 0, 100) == 0 and cubic_sparsity(100, 0.8, 0, 100) == pytest.approx(0.8)
    assert cubic_sparsity(50, 0.8, 0, 100) == pytest.approx(0.8 * (1 - 0.5**3))
    cfg = config(tiny_model, tiny_corpus, tmp_path / "gradual")
    hooks = finetune_pruning(cfg, 0.8, "gradual")
    watch = Watch()
    hooks["step_hooks"].append(watch)
    metrics = finetune(cfg, show_progress=False, **hooks)
    s = watch.sparsity
    assert all(b >= a - 1e-9 for a, b in pairwise(s))  # never falls
    assert s[0] < 0.5 and abs(s[-1] - 0.8) <= 0.005
    for before, after in pairwise(watch.zero_sets):
        assert all(bool(after[n][before[n]].all()) for n in before)  # once pruned, zero for good
    assert metrics["best_epoch"] >= 2  # epoch 1 ended before the final sparsity: not eligible
    saved = load_for_tokens(tmp_path / "gradual")
    assert abs(zeros_in(saved, list(watch.zero_sets[0])) - 0.8) <= 0.005
    assert isinstance(hooks["step_hooks"][0], GradualPruning)


class Crash(RuntimeError):
    pass


def test_gradual_pruning_resumes_with_its_mask(tiny_model: Path, tiny_corpus: Path, tmp_path: Path) -> None:
    straight_cfg = config(tiny_model, tiny_corpus, tmp_path / "a", save_every=2)
    finetune(straight_cfg, show_progress=False, **finetune_pruning(straight_cfg, 0.7, "gradual"))
    cfg = config(tiny_model, tiny_corpus, tmp_path / "b", save_every=2)
    hooks = finetune_pruning(cfg, 0.7, "gradual")
    calls = {"n": 0}

    def crash_at_step_7(model: torch.nn.Module) -> None:
        calls["n"] += 1
        if calls["n"] == 7:
            raise Crash

    with pytest.raises(Crash):
        finetune(cfg, show_progress=False, step_hooks=[*hooks["step_hooks"], crash_at_step_7],
                 start_hooks=hooks["start_hooks"], keep_if=hooks["keep_if"])
    finetune(cfg, show_progress=False, **finetune_pruning(cfg, 0.7, "gradual"))  # a new process would do this
    a, b = load_for_tokens(tmp_path / "a"), load_for_tokens(tmp_path / "b")
    assert all(torch.equal(a.state_dict()[k], b.state_dict()[k]) for k in a.state_dict())


def test_recovery_finetuning_holds_the_mask(tiny_model: Path, tiny_corpus: Path, tmp_path: Path) -> None:
    oneshot = prune(tiny_model, tmp_path / "p50", PruneConfig(sparsity=0.5))
    recovered = prune(tiny_model, tmp_path / "p50r", PruneConfig(sparsity=0.5, recover_epochs=2, lr=5e-3,
                                                                   data=str(tiny_corpus), lang="hau", threads=1,
                                                                   show_progress=False))
    a, b = load_runner(oneshot).module, load_runner(recovered).module
    names = [f"{n}.weight" for n, _ in prunable(a)]
    for n in names:
        pruned = a.get_parameter(n) == 0
        assert bool((b.get_parameter(n)[pruned] == 0).all())
        assert not torch.equal(a.get_parameter(n)[~pruned], b.get_parameter(n)[~pruned])  # recovery trained them
    meta = read_meta(recovered)
    assert meta["recovery"]["epochs"] == 2 and abs(meta["sparsity"] - 0.5) <= 0.005
    assert not (tmp_path / ".p50r.recover").exists()


def test_cli_reports_achieved_sparsity(tiny_model: Path, tmp_path: Path) -> None:
    result = runner.invoke(app, ["prune", str(tiny_model), "--sparsity", "0.6", "--scope", "global",
                                 "--include-embeddings", "--out", str(tmp_path / "cli"), "--json"])
    assert result.exit_code == 0, result.output
    meta = json.loads(result.output)
    assert meta["kind"] == "sparse" and abs(meta["sparsity"] - 0.6) <= 0.005
    assert meta["size_bytes"] < 0.6 * size_on_disk(tiny_model)  # 40% of values + 1/32 mask, beside the tokenizer


def test_sweep_writes_rows_tables_plots_and_resumes(tiny_model: Path, tiny_corpus: Path, tmp_path: Path) -> None:
    import shutil

    from ndogo.experiments.prune_sweep import SweepSpec, read_rows, run_sweep
    from ndogo.report.sparsity_sweep import write_reports

    corpus = tmp_path / "corpus"
    shutil.copytree(tiny_corpus, corpus)
    shutil.copytree(corpus / "hau", corpus / "yor")  # a second "language" for zero-shot transfer
    for lang in ("hau", "yor"):
        shutil.copytree(tiny_model, tmp_path / f"tiny-{lang}")
    spec = SweepSpec(out=str(tmp_path / "sweep"), runs=str(tmp_path / "tiny-{lang}"), langs=["hau", "yor"],
                     data=str(corpus), sparsities=[0, 0.5, 0.9], threads=1)
    result = run_sweep(spec, show_progress=False)
    paths = [result.csv, *write_reports(result.rows, tmp_path / "sweep", ["hau", "yor"])]
    rows = read_rows(tmp_path / "sweep" / "sweep.csv")
    assert rows == result.rows and not result.failures
    assert len(rows) == 2 * 3 * 2  # 2 models x (dense, 0.5, 0.9) x 2 evaluation languages
    # the columns of docs/bench/prune-sweep.csv, unchanged
    assert list(rows[0]) == ["cell", "model_lang", "when", "sparsity", "recover_epochs", "eval_lang", "transfer",
                             "f1", "precision", "recall", "f1_PER", "f1_ORG", "f1_LOC", "f1_DATE",
                             "achieved_sparsity", "model_sparsity", "size_bytes", "train_dev_f1", "seconds", "model"]
    assert [r["cell"] for r in rows[:4]] == ["hau-dense-s0-r0"] * 2 + ["yor-dense-s0-r0"] * 2
    # one pipeline: the cells are the sweep's, in its store, and its config reruns them as they are
    from ndogo.experiments.config import load_sweep_config
    from ndogo.experiments.store import Store

    store = Store(tmp_path / "sweep")
    stored = store.rows("done")
    store.close()
    assert len(stored) == 6 and all(set(r["transfer"]) == {"yor" if r["lang"] == "hau" else "hau"} for r in stored)
    again = load_sweep_config(result.config)
    assert {c.id for c in again.cells()} == {r["cell_id"] for r in stored}
    zero_shot = next(r for r in rows if r["cell"] == "hau-after-s0.5-r0" and r["eval_lang"] == "yor")
    assert zero_shot["f1"] == round(next(r for r in stored if r["recipe"] == "after-s0.5-r0"
                                         and r["lang"] == "hau")["transfer"]["yor"]["f1"], 4)
    assert {(r["model_lang"], r["eval_lang"]) for r in rows if r["transfer"] == "True"} == {("hau", "yor"),
                                                                                           ("yor", "hau")}
    assert all(abs(r["achieved_sparsity"] - r["sparsity"]) <= 0.005 for r in rows)
    assert {p.name for p in paths} >= {"sweep.csv", "sweep.md", "f1-vs-sparsity-hau.png", "f1-vs-sparsity-yor.png"}
    assert "| 0.9 | 0.900" in (tmp_path / "sweep" / "sweep.md").read_text()
    pruned = [r["path"] for r in stored if r["recipe"] != "baseline"]
    assert pruned and not any(Path(p).exists() for p in pruned)  # scored, then deleted
    assert all(Path(r["path"]).exists() for r in stored if r["recipe"] == "baseline")  # the user's runs stay
    run_sweep(spec, show_progress=False)  # finished cells are skipped
    assert len(read_rows(tmp_path / "sweep" / "sweep.csv")) == len(rows)


@pytest.mark.parametrize("grid", [
    {"sparsities": [0, 0.5, 0.9]},
    {"sparsities": [0.1, 0.30000000000000004], "recover_epochs": [0, 2], "before": [0.5], "include_embeddings": True,
     "transfer": False, "keep_models": True, "split": "dev", "scope": "global", "before_lr": 2e-5},
])
def test_the_prune_sweep_config_is_built_as_objects_with_the_cells_its_file_reruns(
        tiny_model: Path, tiny_corpus: Path, tmp_path: Path, grid: dict) -> None:
    """#36: prune-sweep wrote its grid as TOML text and parsed it back; it builds the config as objects now, and the
    file it writes beside the results (`ndogo sweep OUT/prune-sweep.toml --resume`) reads back as the same cells."""
    from ndogo.experiments.config import load_sweep_config
    from ndogo.experiments.prune_sweep import CONFIG, SweepSpec, sweep_config

    spec = SweepSpec(out=str(tmp_path), runs=str(tmp_path / "tiny-{lang}"), langs=["hau"], data=str(tiny_corpus),
                     before_model=str(tiny_model), threads=1, **grid)
    config = sweep_config(spec, tmp_path / CONFIG)
    (tmp_path / CONFIG).write_text(config.text)
    again = load_sweep_config(tmp_path / CONFIG)
    described = [(c.id, c.recipe.name, c.chain, c.source, c.evaluate, c.needs, c.recipe.cpus) for c in config.cells()]
    assert described == [(c.id, c.recipe.name, c.chain, c.source, c.evaluate, c.needs, c.recipe.cpus)
                         for c in again.cells()]
    assert config.text == again.text and len(described) > 2


def test_sweep_bad_scope_is_refused_before_any_cell(tiny_model: Path, tiny_corpus: Path, tmp_path: Path) -> None:
    from ndogo.experiments.prune_sweep import SweepSpec, run_sweep

    spec = SweepSpec(out=str(tmp_path / "sweep"), runs=str(tiny_model), langs=["hau"], data=str(tiny_corpus),
                     sparsities=[0, 0.5], scope="globl", threads=1)
    with pytest.raises(ValueError, match="scope must be one of layer, global, got 'globl'"):
        run_sweep(spec, show_progress=False)
    assert not (tmp_path / "sweep").exists()  # nothing was scored or written


@pytest.mark.parametrize("command", [["prune", "--sparsity", "0.5"], ["densify"]])
def test_cli_refuses_an_out_that_holds_files(tiny_model: Path, tmp_path: Path, command: list[str]) -> None:
    used = tmp_path / "used"
    used.mkdir()
    (used / "model.safetensors").write_bytes(b"another model")  # would be counted in size_bytes, or loaded
    result = runner.invoke(app, [command[0], str(tiny_model), *command[1:], "--out", str(used)])
    assert result.exit_code == 2 and f"{used}: already exists and is not empty" in result.output
    assert (used / "model.safetensors").read_bytes() == b"another model" and len(list(used.iterdir())) == 1


def test_sweep_unknown_eval_language_is_refused_before_any_cell(tiny_model: Path, tiny_corpus: Path,
                                                                tmp_path: Path) -> None:
    from ndogo.experiments.prune_sweep import SweepSpec, run_sweep

    spec = SweepSpec(out=str(tmp_path / "sweep"), runs=str(tiny_model), langs=["hau"], eval_langs=["hau", "xyz"],
                     data=str(tiny_corpus), sparsities=[0, 0.5], threads=1)
    with pytest.raises(ValueError, match="no language 'xyz' here"):
        run_sweep(spec, show_progress=False)
    assert not (tmp_path / "sweep").exists()


def test_before_only_sweep_needs_no_fine_tuned_run(tiny_model: Path, tiny_corpus: Path, tmp_path: Path) -> None:
    """Pruning before fine-tuning starts from the pretrained model, so a missing fine-tuned run is no reason to stop."""
    from ndogo.experiments.prune_sweep import SweepSpec, read_rows, run_sweep

    spec = SweepSpec(out=str(tmp_path / "sweep"), runs=str(tmp_path / "absent-{lang}"), langs=["hau"],
                     data=str(tiny_corpus), sparsities=[], before=[0.5], before_model=str(tiny_model),
                     before_epochs=1, threads=1)
    run_sweep(spec, show_progress=False)
    (row,) = read_rows(tmp_path / "sweep" / "sweep.csv")
    assert row["when"] == "before" and abs(row["achieved_sparsity"] - 0.5) <= 0.005
    assert Path(row["model"]).is_dir() and row["train_dev_f1"] != ""  # a training run: kept
    with_dense = SweepSpec(**{**spec.__dict__, "sparsities": [0]})
    with pytest.raises(ValueError, match="no fine-tuned model for hau"):
        run_sweep(with_dense, show_progress=False)


def test_the_report_of_a_pruning_sweep_shows_zero_shot_transfer(tiny_model: Path, two_language_corpus: Path,
                                                                 tmp_path: Path) -> None:
    """`ndogo report` reads a prune-sweep folder like any sweep, transfer table included."""
    from ndogo.experiments.prune_sweep import SweepSpec, run_sweep
    from ndogo.report.build import write_report

    corpus = two_language_corpus
    spec = SweepSpec(out=str(tmp_path / "sweep"), runs=str(tiny_model), langs=["hau"], eval_langs=["yor"],
                     data=str(corpus), sparsities=[0, 0.5], threads=1, executor="ray")  # cells side by side
    result = run_sweep(spec, show_progress=False)
    assert [(r["cell"], r["eval_lang"]) for r in result.rows] == [
        ("hau-dense-s0-r0", "hau"), ("hau-dense-s0-r0", "yor"), ("hau-after-s0.5-r0", "hau"),
        ("hau-after-s0.5-r0", "yor")]
    paths = write_report(tmp_path / "sweep", tmp_path / "report")
    text = next(p for p in paths if p.suffix == ".md").read_text()
    assert "Zero-shot transfer (test F1)" in text
    own = {r["cell"]: r["f1"] for r in result.rows if r["eval_lang"] == "hau"}
    zero = {r["cell"]: r["f1"] for r in result.rows if r["eval_lang"] == "yor"}
    assert f"| pruned | hau | after-s0.5-r0 | {100 * own['hau-after-s0.5-r0']:.2f} (own) | " \
           f"{100 * zero['hau-after-s0.5-r0']:.2f} |" in text
