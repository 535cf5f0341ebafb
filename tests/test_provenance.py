"""Issue #36.1: the chain owns the model-directory contract.

Every saved model carries one provenance header (`ndogo.json["provenance"]`), written by the
code that runs stages, whichever way the stage was run (a recipe chain, or its own command);
export is a stage; `ndogo ship` prints the stored commands, and they rebuild the model.
"""

from __future__ import annotations

import dataclasses
import json
import shlex
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

import ndogo
from ndogo.cli import app
from ndogo.compress.recipe import NOT_IDENTITY, bind_recipe, compress, parse_recipe
from ndogo.evaluate import evaluate
from ndogo.models.loading import read_meta

# The command each stage is run by alone, as its header must name it.
COMMAND = {"finetune": "ndogo finetune", "prune": "ndogo prune", "quantize": "ndogo quantize",
           "trim": "ndogo trim-vocab", "distill": "ndogo distill", "export": "ndogo export"}


def check_header(out: Path, stage: str, source: Path) -> dict:
    """The header is there, names the stage, the input it read, a command and call for the stage, the kind saved."""
    meta = read_meta(out)
    header = meta["provenance"]
    assert header["stage"] == stage
    assert header["source"] == str(source.resolve())
    assert header["path"] == str(out.resolve())
    assert header["kind"] == meta["kind"]
    assert header["ndogo_version"] == ndogo.__version__
    assert isinstance(header["config"], dict) and "out" not in header["config"]
    words = shlex.split(header["command"])
    assert " ".join(words[:2]) == COMMAND[stage]
    assert str(source.resolve()) in words and words[words.index("--out") + 1] == str(out.resolve())
    # the call is a recipe stage that binds to the very config the stage ran with
    (bound,) = bind_recipe(parse_recipe(header["call"]))
    assert bound.stage.name == stage
    method = getattr(bound.config, "method", "")
    ran = {**({"method": method} if method else {}), **dataclasses.asdict(bound.config)}
    assert comparable(ran) == comparable(header["config"])
    return header


def comparable(config: dict) -> dict:
    """A config as JSON holds it, without the settings that change how a stage runs, not what it makes."""
    return {k: v for k, v in json.loads(json.dumps(config, default=str)).items() if k not in NOT_IDENTITY}


def test_every_chain_stage_output_carries_the_header(tiny_model: Path, tiny_corpus: Path, tmp_path: Path) -> None:
    recipe = parse_recipe("finetune:epochs=1,batch_size=8 | trim:min_count=2 | prune:sparsity=0.5 "
                          "| quantize:method=onnx-int8 | export:format=ort")
    result = compress(tiny_model, recipe, tmp_path / "out", {"lang": "hau", "data": str(tiny_corpus)})
    source = tiny_model
    for record, call in zip(result.stages, recipe.stages, strict=True):
        out = Path(record.path)
        header = check_header(out, call.stage, source)
        for key, value in call.options.items():  # every option the recipe set is in the call and the command
            assert f"{key}={value}" in header["call"]
        source = out
    assert read_meta(result.path)["kind"] == "ort"
    # the run's context (data, language) is part of what the stage was asked to do
    assert json.loads(Path(result.stages[2].path, "ndogo.json").read_text())["provenance"]["call"] \
        == f"prune:method=magnitude,sparsity=0.5,data={tiny_corpus.resolve()},lang=hau"
    # the stage's own extras stay beside the header (what older readers read)
    assert read_meta(result.stages[2].path)["prune"]["method"] == "magnitude"


@pytest.mark.parametrize("stage,args", [
    ("prune", ["prune", "{src}", "--sparsity", "0.5"]),
    ("quantize", ["quantize", "{src}", "--method", "dynamic-int8"]),
    ("quantize", ["quantize", "{src}", "--method", "onnx-int8"]),
    ("export", ["export", "{src}", "--format", "onnx", "--no-optimize"]),
    ("trim", ["trim-vocab", "{src}", "--lang", "hau", "--data", "{data}"]),
    ("distill", ["distill", "--teacher", "{src}", "--mode", "task", "--student-layers", "1", "--epochs", "1",
                 "--lang", "hau", "--data", "{data}"]),
    ("finetune", ["finetune", "--model", "{src}", "--epochs", "1", "--lang", "hau", "--data", "{data}"]),
])
def test_every_stage_command_writes_the_same_header(stage: str, args: list[str], tiny_model: Path,
                                                    tiny_corpus: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    argv = [a.format(src=tiny_model, data=tiny_corpus) for a in args] + ["--out", str(out)]
    result = CliRunner().invoke(app, argv)
    assert result.exit_code == 0, result.output
    header = check_header(out, stage, tiny_model)
    if stage == "export":
        assert header["call"] == "export:optimize=false"  # format=onnx is the default
    # the stored command, run again, makes the same model
    again = tmp_path / "again"
    words = shlex.split(header["command"])
    words[words.index("--out") + 1] = str(again)
    rerun = CliRunner().invoke(app, words[1:])
    assert rerun.exit_code == 0, rerun.output
    assert read_meta(again)["provenance"]["call"] == header["call"]


def test_export_is_a_recipe_stage() -> None:
    from ndogo.compress.recipe import RecipeError

    (bound,) = bind_recipe(parse_recipe("export:format=ort,platform=amd64"))
    assert (bound.config.format, bound.config.platform) == ("ort", "amd64")
    with pytest.raises(RecipeError, match=r"export\)\.format: 'tflite' is not one of"):
        bind_recipe(parse_recipe("export:format=tflite"))


def test_a_shipped_chain_is_rebuilt_by_its_card(tiny_model: Path, tiny_corpus: Path, tmp_path: Path,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    from ndogo.deploy.ship import ship

    project = tmp_path / "project"
    shutil.copytree(tiny_corpus, project / "data" / "masakhaner")
    shutil.copytree(tiny_model, project / "runs" / "minilm-hau")
    monkeypatch.chdir(project)
    recipe = parse_recipe("trim:min_count=1 | prune:sparsity=0.5 | quantize:method=onnx-int8 | export:format=ort")
    result = compress(Path("runs/minilm-hau"), recipe, Path("runs/hau-small"),
                      {"lang": "hau", "data": "data/masakhaner"})
    bundle = ship(result.path, tmp_path / "bundle", lang="hau")
    meta = json.loads((bundle / "ndogo.json").read_text())
    commands = meta["bundle"]["commands"]
    body = (bundle / "README.md").read_text()
    assert all(c in body for c in commands) and str(tmp_path) not in body + json.dumps(meta)
    # the card prints what each stage stored, not a reconstruction: its recipe is the chain's
    start, recipe_line = meta["bundle"]["recipe"].split(" | ", 1)
    assert start == "model"  # the plain model the chain started from
    assert [s.stage for s in parse_recipe(recipe_line).stages] == ["trim", "prune", "quantize", "export"]
    stored = [read_meta(r.path)["provenance"] for r in result.stages]
    assert recipe_line == " | ".join(h["call"] for h in stored).replace(str(project) + "/", "")
    assert [shlex.split(c)[1] for c in commands] == ["trim-vocab", "prune", "quantize", "export"]
    assert shlex.split(commands[0])[2] == "runs/minilm-hau"
    assert meta["bundle"]["commands_start"] == "minilm-hau"

    # Run the card's commands, as written and in order, in a fresh folder holding the start and the corpus.
    fresh = tmp_path / "fresh"
    shutil.copytree(project / "data", fresh / "data")
    shutil.copytree(project / "runs" / "minilm-hau", fresh / "runs" / "minilm-hau")
    monkeypatch.chdir(fresh)
    for command in commands:
        run = CliRunner().invoke(app, shlex.split(command)[1:])
        assert run.exit_code == 0, (command, run.output)
    rebuilt = fresh / shlex.split(commands[-1])[-1]
    assert read_meta(rebuilt)["kind"] == "ort"
    want = evaluate(bundle, str(tiny_corpus), "hau", speed=False, threads=1)
    got = evaluate(rebuilt, str(tiny_corpus), "hau", speed=False, threads=1)
    assert got["f1"] == want["f1"] and got["per_type"] == want["per_type"]


def test_stage_output_keys_are_unchanged(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Finished stages are found again by key: the header must not move a key (these are the keys before it)."""
    from ndogo.compress.recipe import source_key, stage_key

    monkeypatch.chdir(tmp_path)  # `minilm` names the pretrained model, not a folder here
    key, keys = source_key("minilm"), []
    recipe = parse_recipe("finetune:epochs=3 | trim:min_count=2 | prune:sparsity=0.5 | quantize:method=onnx-int8")
    for b in bind_recipe(recipe, {"lang": "hau", "data": "masakhaner", "seed": 1}):
        key = stage_key(key, b)
        keys.append(key[:12])
    assert keys == ["babbb2003884", "09dd04432508", "25a73fbbeca4", "b600c8682d33"]
