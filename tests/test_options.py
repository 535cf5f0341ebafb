"""Options declared once: every setting of a stage's config is an option of its command, with its help."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
from typer.testing import CliRunner

from ndogo.cli import app
from ndogo.commands._options import config_fields, flag

runner = CliRunner()


def _configs() -> list[tuple[str, type, tuple[str, ...]]]:
    from ndogo.compress.distill import DistillConfig
    from ndogo.compress.distill.agnostic import AgnosticDistillConfig
    from ndogo.compress.distill.task import TaskDistillConfig
    from ndogo.compress.trim import TrimConfig
    from ndogo.deploy.serve_config import ServeConfig
    from ndogo.train.config import FinetuneStageConfig, PretrainConfig

    return [("finetune", FinetuneStageConfig, ("extra",)), ("distill", DistillConfig, ("show_progress",)),
            ("distill", TaskDistillConfig, ("show_progress",)), ("distill", AgnosticDistillConfig, ("show_progress",)),
            ("pretrain", PretrainConfig, ()), ("trim-vocab", TrimConfig, ("show_progress",)),
            ("serve", ServeConfig, ())]


@pytest.mark.parametrize(("command", "cls", "skip"), _configs(), ids=lambda x: x if isinstance(x, str) else "")
def test_every_config_field_is_an_option_with_its_help(command: str, cls: type, skip: tuple[str, ...]) -> None:
    text = " ".join(runner.invoke(app, [command, "--help"], env={"COLUMNS": "1000"}).output.split())
    for f in config_fields(cls, skip):
        assert flag(f) in text, f"{command}: {f.name} has no {flag(f)}"
        assert f.metadata.get("help"), f"{cls.__name__}.{f.name} has no help"
        first = " ".join(f.metadata["help"].split()[:4])
        assert first in text, f"{command} {flag(f)}: help not shown"
    names = {f.name for f in dataclasses.fields(cls)}
    assert set(skip) <= names  # nothing skipped that the config does not have


def test_list_options_are_split_and_empty_ones_refused(tmp_path: Path) -> None:
    from ndogo.commands._options import config_from_options
    from ndogo.compress.distill import DistillConfig

    cfg = config_from_options(DistillConfig, {"layer_map": "0, 3,6", "langs": "hau,yor"}, skip=("show_progress",))
    assert cfg.layer_map == [0, 3, 6] and cfg.langs == ["hau", "yor"] and cfg.mode == "task"
    with pytest.raises(ValueError, match=r"--layer-map '0,x': expected ,-separated int values"):
        config_from_options(DistillConfig, {"layer_map": "0,x", "langs": "hau"})
    result = runner.invoke(app, ["distill", "--teacher", "t", "--out", str(tmp_path / "o"), "--lang", ","])
    assert result.exit_code == 2 and "--lang ',': give at least one language code" in result.output
    result = runner.invoke(app, ["finetune", "--lang", "hau", "--out", str(tmp_path / "o")])
    assert result.exit_code == 2 and "--model is required" in result.output
    result = runner.invoke(app, ["distill", "--teacher", "t", "--out", str(tmp_path / "o"), "--mode", "both"])
    assert result.exit_code == 2 and "unknown distill method 'both'; choose one of agnostic, task" in result.output
    assert not (tmp_path / "o").exists()


def test_a_recipe_stage_takes_the_fields_the_command_takes() -> None:
    """Recipes bind stage options to the same config fields (`finetune:prune_scope=global`)."""
    from ndogo.compress.recipe import StageCall, bind_stage

    bound = bind_stage(StageCall("finetune", {"prune_sparsity": 0.5, "prune_scope": "global",
                                              "prune_include_embeddings": True, "warmup_ratio": 0.2}),
                       {"lang": "hau", "langs": ["hau"], "data": "masakhaner"}, "recipe stage 1")
    assert (bound.config.prune_scope, bound.config.prune_include_embeddings, bound.config.warmup_ratio) == (
        "global", True, 0.2)
    assert "prune_include_embeddings" in bound.identity()
    context = {"lang": "hau", "langs": ["hau"], "data": "masakhaner"}
    plain = bind_stage(StageCall("finetune", {}), context, "recipe stage 1")
    assert "prune_include_embeddings" not in plain.identity()  # older stage keys stay as they were


@pytest.mark.parametrize("command", ["finetune", "sweep", "distill"])
def test_help_is_readable_at_80_columns(command: str) -> None:
    """#35.18: rich's option table cut names short in an 80-column terminal (`--max-train-sent…`)."""
    import typer

    result = runner.invoke(app, [command, "--help"], env={"COLUMNS": "80"}, terminal_width=80)
    assert result.exit_code == 0 and "…" not in result.output, result.output
    words = set(result.output.replace(",", " ").replace("/", " ").split())
    params = typer.main.get_command(app).commands[command].params  # type: ignore[attr-defined]
    for param in params:
        for name in (*param.opts, *param.secondary_opts):
            if name.startswith("--"):
                assert name in words, f"{command} --help at 80 columns: {name} is not shown whole"
    # prose wraps within the width; only an example command line is kept whole, to be copied
    assert all(len(line) <= 80 or "ndogo " in line for line in result.output.splitlines())
