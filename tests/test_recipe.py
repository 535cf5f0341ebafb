"""Recipes: parsing, validation before any work, chaining, resuming and reusing finished stages."""

from __future__ import annotations

import dataclasses
import json
import shutil
from dataclasses import dataclass
from pathlib import Path

import pytest

from ndogo.compress.recipe import (
    RecipeError,
    bind_recipe,
    compress,
    find_finetuned,
    parse_recipe,
    register_stage,
    resolve_stage,
)

CTX = {"lang": "hau", "seed": 3}


def test_one_line_round_trip() -> None:
    r = parse_recipe('prune:sparsity=0.5,scope=global | quantize:method=onnx-int8 | finetune:langs=["hau","swa"]')
    assert [s.stage for s in r.stages] == ["prune", "quantize", "finetune"]
    assert r.stages[0].options == {"sparsity": 0.5, "scope": "global"}
    assert r.stages[1].options == {"method": "onnx-int8"}
    assert r.stages[2].options == {"langs": ["hau", "swa"]}
    assert parse_recipe(r.one_line()) == r
    assert parse_recipe("distil").stages[0].stage == "distill"  # the study's spelling works too
    assert parse_recipe("").stages == ()


def test_toml_and_yaml_files_equal_one_line(tmp_path: Path) -> None:
    toml = tmp_path / "r.toml"
    toml.write_text('name = "p"\n[[stages]]\nstage = "prune"\nsparsity = 0.5\n'
                    '[[stages]]\nstage = "finetune"\nepochs = 1\n')
    yaml = tmp_path / "r.yaml"
    yaml.write_text("stages:\n  - stage: prune\n    sparsity: 0.5\n  - finetune:epochs=1\n")
    line = parse_recipe("prune:sparsity=0.5 | finetune:epochs=1")
    assert parse_recipe(str(toml)).stages == line.stages
    assert parse_recipe(str(toml)).name == "p"
    assert parse_recipe(str(yaml)).stages == line.stages


@pytest.mark.parametrize(("recipe", "named"), [
    ("finetune:epoch=3", "(finetune).epoch: unknown option"),
    ("finetune:epochs=three", "(finetune).epochs: expected an integer"),
    ("finetune:lr=fast", "(finetune).lr: expected a number"),
    ("finetune | squash:x=1", "stage 2.stage: unknown stage 'squash'"),
    ("finetune:max_steps=2 | finetune:max_steps", "stage 2 (finetune): expected key=value"),
    ("finetune:out=elsewhere", "(finetune).out: set by the chain"),
])
def test_bad_recipe_names_the_field(recipe: str, named: str) -> None:
    with pytest.raises(RecipeError) as err:
        bind_recipe(parse_recipe(recipe), {**CTX, "data": "x"})
    assert named in str(err.value)


def test_missing_language_is_named() -> None:
    with pytest.raises(RecipeError, match=r"stage 1 \(finetune\)\.langs: required option missing"):
        bind_recipe(parse_recipe("finetune"), {"data": "x"})


def test_absent_stage_is_reported_clearly(monkeypatch: pytest.MonkeyPatch) -> None:
    import ndogo.compress.recipe as recipe
    from ndogo.registry import Registry

    monkeypatch.setitem(recipe.KNOWN_STAGES, "distill", ("ndogo.compress.no_such_module", ("distill",)))
    monkeypatch.setattr(recipe, "STAGES", Registry("stage", modules={"distill": "ndogo.compress.no_such_module"},
                                                   aliases=recipe.ALIASES, on_import=recipe._stage_from_module))
    with pytest.raises(RecipeError, match="stage 'distill' is not available in this version"):
        resolve_stage("distil")


@dataclass
class ScaleConfig:
    factor: float
    mode: str = "all"
    lang: str | None = None


def scale(run: str | Path, out: str | Path, config: ScaleConfig) -> Path:
    """A stage defined outside ndogo (registered by name, options from its dataclass)."""
    return Path(out)


def test_stage_options_follow_the_config_dataclass() -> None:
    register_stage("scale-test", scale)
    bound = bind_recipe(parse_recipe("scale-test:factor=2"), CTX)
    assert bound[0].config == ScaleConfig(factor=2.0, lang="hau")  # lang came from the run's context
    with pytest.raises(RecipeError, match=r"\(scale-test\)\.factor: required option missing"):
        bind_recipe(parse_recipe("scale-test:mode=x"), CTX)
    with pytest.raises(RecipeError, match=r"\(scale-test\)\.mode: expected a string"):
        bind_recipe(parse_recipe("scale-test:factor=1,mode=3"), CTX)


def test_bad_second_stage_fails_before_the_first_runs(tiny_model: Path, tiny_corpus: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    with pytest.raises(RecipeError, match=r"stage 2 \(finetune\)\.epochz"):
        compress(tiny_model, parse_recipe("finetune:max_steps=1 | finetune:epochz=1"), out,
                 {**CTX, "data": str(tiny_corpus)})
    assert not out.exists() and not out.with_name("out.stages").exists()


def _two_finetunes(tiny_model: Path, tiny_corpus: Path, out: Path, reuse: tuple[str, ...] = ()):
    recipe = parse_recipe("finetune:max_steps=2,batch_size=8,threads=1 | finetune:max_steps=1,lr=1e-3,threads=1")
    return compress(tiny_model, recipe, out, {**CTX, "data": str(tiny_corpus)}, reuse)


def test_chain_runs_resumes_and_reuses(tiny_model: Path, tiny_corpus: Path, tmp_path: Path) -> None:
    out = tmp_path / "chain"
    first = _two_finetunes(tiny_model, tiny_corpus, out)
    assert [s.reused for s in first.stages] == ["", ""]
    assert (out / "ndogo.json").is_file() and (out / "model.safetensors").is_file()
    assert not (out / "checkpoint").exists()  # finished stages drop their resume state
    meta = json.loads((out / "metrics.json").read_text())
    assert meta["config"]["lr"] == 1e-3 and meta["config"]["seed"] == 3  # seed from the run's context

    # the final model lost (as if killed before it was saved): only the last stage runs again
    shutil.rmtree(out)
    again = _two_finetunes(tiny_model, tiny_corpus, out)
    assert [s.reused for s in again.stages] == ["done", ""]

    # a finetune stage adopts an existing run with the same settings instead of training
    stage1 = Path(first.stages[0].path)
    other = tmp_path / "other"
    reused = _two_finetunes(tiny_model, tiny_corpus, other, reuse=(str(stage1.parent),))
    assert reused.stages[0].reused == "existing" and reused.stages[0].path == str(stage1)


def test_find_finetuned_matches_settings_only(tiny_model: Path, tiny_corpus: Path, tmp_path: Path) -> None:
    out = tmp_path / "ft"
    recipe = parse_recipe("finetune:max_steps=2,batch_size=8,threads=1")
    compress(tiny_model, recipe, out, {**CTX, "data": str(tiny_corpus)})
    config = bind_recipe(recipe, {**CTX, "data": str(tiny_corpus)})[0].config
    assert find_finetuned(str(tiny_model), config, [str(tmp_path)]) == out
    assert find_finetuned(str(tiny_model), dataclasses.replace(config, lr=1e-3), [str(tmp_path)]) is None
    assert find_finetuned(str(tiny_model), dataclasses.replace(config, seed=4), [str(tmp_path)]) is None
    assert find_finetuned(str(tiny_model), config, [str(tmp_path / "f{lang}")]) is None


def test_finetune_stage_prunes_before_fine_tuning(tiny_model: Path, tiny_corpus: Path, tmp_path: Path) -> None:
    from safetensors.torch import load_file

    with pytest.raises(RecipeError, match=r"\(finetune\): prune_schedule must be oneshot or gradual"):
        bind_recipe(parse_recipe("finetune:prune_sparsity=0.5,prune_schedule=sometimes"), {**CTX, "data": "x"})
    out = tmp_path / "before"
    recipe = parse_recipe("finetune:max_steps=2,batch_size=8,threads=1,prune_sparsity=0.5")
    compress(tiny_model, recipe, out, {**CTX, "data": str(tiny_corpus)})
    weights = load_file(out / "model.safetensors")
    dense = [t for n, t in weights.items() if "encoder" in n and n.endswith("dense.weight")]
    zeros = sum(int((t == 0).sum()) for t in dense) / sum(t.numel() for t in dense)
    assert abs(zeros - 0.5) < 0.01  # held at zero through the optimizer steps
    assert json.loads((out / "metrics.json").read_text())["config"]["extra"]["prune"]["sparsity"] == 0.5


def test_non_utf8_recipe_file_names_file_and_line(tmp_path: Path) -> None:
    path = tmp_path / "recipe.toml"
    path.write_bytes(b'[[stages]]\nstage = "prune"\nnote = "\xff"\n')
    with pytest.raises(RecipeError, match=rf"{path}:3: bytes that are not UTF-8"):
        parse_recipe(str(path))


def test_reading_a_recipe_imports_no_model_library() -> None:
    """#36: a recipe is checked before any work, and that check alone must not load torch or transformers."""
    import subprocess
    import sys

    code = ("import sys\nfrom ndogo.compress.recipe import parse_recipe\n"
            "r = parse_recipe('distill:mode=task,student_layers=3 | trim:keep=9500 | quantize:method=onnx-int8')\n"
            "print(len(r.stages), 'torch' in sys.modules, 'transformers' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["3", "False", "False"], out.stdout
