"""Fine-tuning saves a pipeline-loadable model, resumes to the same state, and evaluate measures it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file
from typer.testing import CliRunner

from ndogo.cli import app
from ndogo.evaluate import evaluate
from ndogo.models.runner import model_files, size_on_disk
from ndogo.train.finetune import FinetuneConfig, finetune

runner = CliRunner()


def config(tiny_model: Path, tiny_corpus: Path, out: Path, **kw) -> FinetuneConfig:
    base = dict(model=str(tiny_model), data=str(tiny_corpus), langs=["hau"], out=str(out), epochs=2,
                lr=1e-3, batch_size=8, save_every=3, threads=1)
    base.update(kw)
    return FinetuneConfig(**base)


class Crash(RuntimeError):
    pass


def test_resume_after_crash_reaches_identical_weights(tiny_model: Path, tiny_corpus: Path, tmp_path: Path) -> None:
    straight = finetune(config(tiny_model, tiny_corpus, tmp_path / "a"), show_progress=False)
    calls = {"n": 0}

    def crash_at_step_8(model: torch.nn.Module) -> None:
        calls["n"] += 1
        if calls["n"] == 8:
            raise Crash

    cfg = config(tiny_model, tiny_corpus, tmp_path / "b")
    with pytest.raises(Crash):
        finetune(cfg, step_hooks=[crash_at_step_8], show_progress=False)
    assert (tmp_path / "b" / "checkpoint" / "state.json").is_file()
    resumed = finetune(cfg, show_progress=False)
    assert resumed["steps"] == straight["steps"] > 8  # the crash came mid-run
    assert [h["dev_f1"] for h in resumed["history"]] == [h["dev_f1"] for h in straight["history"]]
    # the per-epoch running loss too (#19.9: it used to restart at the resume)
    assert [h["loss"] for h in resumed["history"]] == [h["loss"] for h in straight["history"]]
    assert not (tmp_path / "b" / "checkpoint").exists()  # a finished run drops its resume state
    a, b = load_file(tmp_path / "a" / "model.safetensors"), load_file(tmp_path / "b" / "model.safetensors")
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_loss_falls_and_best_epoch_is_kept(tiny_model: Path, tiny_corpus: Path, tmp_path: Path) -> None:
    metrics = finetune(config(tiny_model, tiny_corpus, tmp_path / "run", epochs=3), show_progress=False)
    hist = metrics["history"]
    assert len(hist) == 3 and hist[-1]["loss"] < 2.0  # from ln(9) = 2.2 at random init
    assert metrics["best_dev_f1"] == max(h["dev_f1"] for h in hist)
    saved = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert saved["best_epoch"] == metrics["best_epoch"] and saved["config"]["seed"] == 42
    # torch's fused AdamW on a CPU (me5s's step ~1.7x faster: bench/lab/fused_adamw.py), and the run says so
    assert saved["machine"]["optimizer"] == "AdamW (fused)"


def test_adamw_is_fused_where_torch_has_the_kernel_and_plain_elsewhere() -> None:
    from ndogo.train.optim import adamw, describe

    weight, bias = torch.nn.Parameter(torch.randn(3, 2)), torch.nn.Parameter(torch.zeros(3))
    fused = adamw([{"params": [weight], "weight_decay": 0.01}, {"params": [bias], "weight_decay": 0.0},
                   {"params": [], "weight_decay": 0.0}], lr=1e-3)
    assert describe(fused) == "AdamW (fused)" and [g["weight_decay"] for g in fused.param_groups] == [0.01, 0.0]
    plain = adamw([{"params": [torch.nn.Parameter(torch.zeros(2, device="meta"))], "weight_decay": 0.0}], lr=1e-3)
    assert describe(plain) == "AdamW"
    # the same algorithm: one step from the same state and gradient lands where the default's does, to rounding
    start = weight.detach().clone()
    reference = torch.nn.Parameter(weight.detach().clone())
    default = torch.optim.AdamW([reference], lr=1e-3, weight_decay=0.01)
    for p in (weight, reference):
        p.grad = torch.ones_like(p)
    fused.step()
    default.step()
    assert not torch.equal(weight, start) and torch.allclose(weight, reference, atol=1e-7)


def test_saved_model_loads_in_transformers_pipeline(tiny_model: Path, tiny_corpus: Path, tmp_path: Path) -> None:
    from transformers import pipeline

    finetune(config(tiny_model, tiny_corpus, tmp_path / "run", epochs=1), show_progress=False)
    ner = pipeline("token-classification", model=str(tmp_path / "run"), device="cpu")
    out = ner("Musa ya je Kano")
    assert isinstance(out, list)
    assert {e["entity"] for e in out} <= set(json.loads((tmp_path / "run" / "config.json").read_text())["label2id"])


def test_evaluate_reports_every_column(tiny_model: Path, tiny_corpus: Path) -> None:
    row = evaluate(tiny_model, str(tiny_corpus), "hau", "test", sample=8)
    for key in ("f1", "precision", "recall", "per_type", "params", "nonzero_params", "size_bytes", "peak_rss_mb",
                "latency_ms_b1", "throughput_b32", "threads"):
        assert key in row, key
    assert row["sentences"] == 16 and row["params"] > 900_000 and row["nonzero_params"] <= row["params"]
    assert row["size_bytes"] == size_on_disk(tiny_model) == sum(p.stat().st_size for p in model_files(tiny_model))
    assert row["latency_ms_b1"] > 0 and row["throughput_b32"] > 0


def test_cli_finetune_then_evaluate(tiny_model: Path, tiny_corpus: Path, tmp_path: Path) -> None:
    out = tmp_path / "run"
    result = runner.invoke(app, ["finetune", "--model", str(tiny_model), "--data", str(tiny_corpus), "--lang", "hau",
                                 "--out", str(out), "--max-steps", "4", "--threads", "1"])
    assert result.exit_code == 0, result.output
    result = runner.invoke(app, ["evaluate", str(out), "--data", str(tiny_corpus), "--lang", "hau", "--json",
                                 "--no-speed"])
    assert result.exit_code == 0, result.output
    row = json.loads(result.output[result.output.index("{"):])
    assert row["kind"] == "hf" and (out / "evals" / "hau-test.json").is_file()


def test_cli_errors_are_one_line(tmp_path: Path, tiny_corpus: Path) -> None:
    result = runner.invoke(app, ["evaluate", str(tmp_path / "nope"), "--data", str(tiny_corpus), "--lang", "hau"])
    assert result.exit_code == 2 and "no such model directory" in result.output
    result = runner.invoke(app, ["finetune", "--model", "minilm", "--data", str(tmp_path / "missing"),
                                 "--lang", "hau", "--out", str(tmp_path / "o")])
    assert result.exit_code == 2 and "missing" in result.output and "Traceback" not in result.output


def test_two_runs_into_one_directory_are_refused(tmp_path: Path) -> None:
    from ndogo.train.finetune import hold_run_lock

    first = hold_run_lock(tmp_path)
    with pytest.raises(ValueError, match="another process"):
        hold_run_lock(tmp_path)
    first.close()
    hold_run_lock(tmp_path).close()


@pytest.mark.parametrize(("args", "said"), [
    (["--threads", "0"], "Invalid value for '--threads'"),
    (["--max-length", "0"], "Invalid value for '--max-length'"),
    (["--patience", "0"], "Invalid value for '--patience'"),
    (["--lang", ","], "--lang ',': give at least one language code"),
])
def test_cli_refuses_option_values_that_would_silently_mean_the_default(tmp_path: Path, tiny_corpus: Path,
                                                                         args: list[str], said: str) -> None:
    base = {"--model": "minilm", "--data": str(tiny_corpus), "--lang": "hau", "--out": str(tmp_path / "o")}
    base.update(dict(zip(args[::2], args[1::2], strict=True)))
    result = runner.invoke(app, ["finetune", *[x for kv in base.items() for x in kv]])
    assert result.exit_code == 2 and said in result.output, result.output
    assert "Traceback" not in result.output and not (tmp_path / "o" / "config.json").exists()


def test_a_quick_no_speed_evaluation_keeps_the_saved_timing(tiny_model: Path, tiny_corpus: Path,
                                                            tmp_path: Path) -> None:
    import shutil

    from ndogo.evaluate import save_eval

    run = tmp_path / "model"
    shutil.copytree(tiny_model, run)
    timed = evaluate(run, str(tiny_corpus), "hau", "test", sample=4)
    path = save_eval(run, timed)
    save_eval(run, evaluate(run, str(tiny_corpus), "hau", "test", speed=False))
    saved = json.loads(path.read_text())
    assert saved["latency_ms_b1"] == timed["latency_ms_b1"] and saved["f1"] == timed["f1"]
    (run / "added.bin").write_bytes(b"0" * 64)  # the model's files changed: the old timing is stale
    save_eval(run, evaluate(run, str(tiny_corpus), "hau", "test", speed=False))
    assert "latency_ms_b1" not in json.loads(path.read_text())


def test_a_refused_run_leaves_no_empty_out_behind(tmp_path: Path, tiny_corpus: Path) -> None:
    for lang, model in (("xyz", "minilm"), ("hau", str(tmp_path / "no-model"))):
        out = tmp_path / f"run-{lang}"
        result = runner.invoke(app, ["finetune", "--model", model, "--data", str(tiny_corpus), "--lang", lang,
                                     "--out", str(out), "--threads", "1"])
        assert result.exit_code == 2, result.output
        assert not out.exists()


def test_bf16_training_is_opt_in_and_older_fp32_runs_stay_reusable(tiny_model: Path, tiny_corpus: Path,
                                                                   tmp_path: Path) -> None:
    """precision=bf16 autocasts the training passes; fp32 stays the default and the reuse key of older runs."""
    import dataclasses

    from ndogo.compress.recipe import find_finetuned
    from ndogo.train.config import FinetuneStageConfig
    from ndogo.train.finetune import same_run
    from ndogo.train.mlm import resolve_precision

    fp32 = config(tiny_model, tiny_corpus, tmp_path / "fp32")
    assert fp32.precision == "fp32"
    finetune(fp32, show_progress=False)
    saved = tmp_path / "fp32" / "metrics.json"
    metrics = json.loads(saved.read_text())
    older = {k: v for k, v in metrics["config"].items() if k != "precision"}  # as saved before the field
    saved.write_text(json.dumps({**metrics, "config": older}))
    assert same_run(older, json.loads(json.dumps(fp32.__dict__)))
    def stage(cfg: FinetuneConfig) -> FinetuneStageConfig:
        return FinetuneStageConfig(**dataclasses.asdict(cfg))

    assert find_finetuned(str(tiny_model), stage(fp32), [str(tmp_path / "fp32")]) == (tmp_path / "fp32").resolve()
    bf16 = config(tiny_model, tiny_corpus, tmp_path / "bf16", precision="bf16")
    assert find_finetuned(str(tiny_model), stage(bf16), [str(tmp_path / "fp32")]) is None  # another run
    with pytest.raises(ValueError, match="fp16 needs a CUDA device"):  # #40: fp16 is CUDA's, with loss scaling
        finetune(config(tiny_model, tiny_corpus, tmp_path / "fp16", precision="fp16", device="cpu"),
                 show_progress=False)
    assert not (tmp_path / "fp16").exists()
    if resolve_precision("auto") != "bf16":
        with pytest.raises(ValueError, match="no native bf16"):
            finetune(bf16, show_progress=False)
        return
    trained = finetune(bf16, show_progress=False)
    assert trained["config"]["precision"] == "bf16" and trained["history"][-1]["loss"] < 2.2
    weights = load_file(tmp_path / "bf16" / "model.safetensors")
    assert all(w.dtype == torch.float32 for w in weights.values())  # weights stay fp32
    from ndogo.train.config import check_finetune

    with pytest.raises(ValueError, match="precision must be fp32, bf16 or fp16"):
        check_finetune(FinetuneConfig(model="m", data="d", langs=["hau"], out="o", precision="fp8"))


def test_a_refused_resume_names_the_setting_that_differs(tiny_model: Path, tiny_corpus: Path,
                                                         tmp_path: Path) -> None:
    """#35.17: "a checkpoint of a different configuration" said nothing of which setting; it names each, both ways."""
    steps = {"n": 0}

    def crash(model: torch.nn.Module) -> None:
        steps["n"] += 1
        if steps["n"] == 2:  # after step 1's checkpoint
            raise Crash

    cfg = config(tiny_model, tiny_corpus, tmp_path / "b", save_every=1)
    with pytest.raises(Crash):
        finetune(cfg, step_hooks=[crash], show_progress=False)
    assert (tmp_path / "b" / "checkpoint" / "state.json").is_file()
    changed = config(tiny_model, tiny_corpus, tmp_path / "b", save_every=1, lr=2e-3, batch_size=4, threads=2)
    with pytest.raises(ValueError, match="a checkpoint of a different configuration") as err:
        finetune(changed, show_progress=False)
    message = str(err.value)
    assert "batch_size 8 there, 4 now" in message and "lr 0.001 there, 0.002 now" in message
    assert "threads" not in message  # an operational setting may change on a resume


@pytest.mark.parametrize("args", [
    ["finetune", "--lang", "hau", "--out", "o", "--epochs", "zero"],  # a bad value
    ["finetune", "--lang", "hau", "--out", "o", "--bogus", "1"],  # an unknown option
    ["evaluate"],  # a missing argument
    ["sweep", "grid.toml", "--out", "o", "--seed", "a"],  # the command's own BadParameter
])
def test_usage_errors_are_one_error_line(tmp_path: Path, args: list[str]) -> None:
    """#35.17: a usage error was a rich panel titled `Error`; every error is one line starting `error:`."""
    (tmp_path / "grid.toml").write_text("")
    result = runner.invoke(app, [a if a not in ("o", "grid.toml") else str(tmp_path / a) for a in args],
                           env={"COLUMNS": "80"})
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert result.exit_code == 2 and len(lines) == 1 and lines[0].startswith("error: "), result.output
    assert "Error" not in result.output and "--help" in lines[0]


def test_plateau_schedule_restores_the_best_weights_and_halves_the_rate(tiny_model: Path, tiny_corpus: Path,
                                                                        tmp_path: Path) -> None:
    """plateau: an epoch without dev gain goes back to the best epoch's weights at half the rate.

    The step hook wrecks the classifier at the last step of epoch 2, so epoch 2 cannot gain; the
    first step of epoch 3 must then see epoch 1's saved weights (one small step away), not the
    wrecked ones. The linear schedule's keys are unchanged by the new field.
    """
    out = tmp_path / "run"
    steps = {"n": 0}
    seen: dict[str, float] = {}

    def wreck_then_watch(model: torch.nn.Module) -> None:
        steps["n"] += 1
        weight = model.classifier.weight  # type: ignore[union-attr]
        if steps["n"] == 2 * per_epoch:
            with torch.no_grad():  # every logit equal: the first label, "O", everywhere (dev F1 0)
                weight.zero_()
                model.classifier.bias.zero_()  # type: ignore[union-attr]
            seen["wrecked"] = weight.detach().clone()
        if steps["n"] == 2 * per_epoch + 1:
            best = load_file(out / "model.safetensors")["classifier.weight"]
            seen["from_best"] = float((weight.detach() - best).abs().mean())
            seen["wrecked_from_best"] = float((seen["wrecked"] - best).abs().mean())

    probe = finetune(config(tiny_model, tiny_corpus, tmp_path / "probe", epochs=1), show_progress=False)
    per_epoch = probe["steps"]
    cfg = config(tiny_model, tiny_corpus, out, epochs=3, schedule="plateau", patience=2, warmup_ratio=0.0)
    metrics = finetune(cfg, step_hooks=[wreck_then_watch], show_progress=False)
    hist = metrics["history"]
    assert len(hist) == 3 and hist[1]["dev_f1"] <= hist[0]["dev_f1"]
    assert [h["lr"] for h in hist] == pytest.approx([1e-3, 1e-3, 5e-4])  # the rate each epoch trained at
    assert seen["from_best"] < 0.1 * seen["wrecked_from_best"]  # one Adam step (~lr) from the best
    # the linear schedule (every landed run) keeps its stage keys; plateau is part of the key
    assert "schedule" not in config(tiny_model, tiny_corpus, tmp_path / "x").identity()
    assert cfg.identity()["schedule"] == "plateau"


def test_wsd_schedule_decays_from_the_best_weights_once_dev_stops_improving(tiny_model: Path, tiny_corpus: Path,
                                                                           tmp_path: Path) -> None:
    """wsd: the rate holds while dev improves; the first epoch without gain (patience 1) sends training back
    to the best epoch's weights for one last epoch decaying from half the rate to zero, then it stops."""
    steps = {"n": 0}

    def wreck_epoch_2(model: torch.nn.Module) -> None:
        steps["n"] += 1
        if steps["n"] == 2 * per_epoch:  # dev cannot gain at epoch 2
            with torch.no_grad():
                model.classifier.weight.zero_()  # type: ignore[union-attr]
                model.classifier.bias.zero_()  # type: ignore[union-attr]

    probe = finetune(config(tiny_model, tiny_corpus, tmp_path / "probe", epochs=1), show_progress=False)
    per_epoch = probe["steps"]
    cfg = config(tiny_model, tiny_corpus, tmp_path / "run", epochs=6, schedule="wsd", patience=1, warmup_ratio=0.0)
    metrics = finetune(cfg, step_hooks=[wreck_epoch_2], show_progress=False)
    hist = metrics["history"]
    assert len(hist) == 3 and metrics["epochs_run"] == 3  # 2 stable epochs, 1 decay epoch, stop
    assert [h["lr"] for h in hist[:2]] == pytest.approx([1e-3, 1e-3])
    assert hist[2]["lr"] < 0.5e-3 / per_epoch + 1e-12  # the decay epoch ends at (almost) zero
    assert metrics["best_epoch"] in (1, 3)
    # without a stall, the stable phase runs to --epochs and the decay epoch comes after it
    short = finetune(config(tiny_model, tiny_corpus, tmp_path / "short", epochs=1, schedule="wsd", patience=3,
                            warmup_ratio=0.0), show_progress=False)
    assert short["epochs_run"] == 2 and short["steps"] == 2 * per_epoch
