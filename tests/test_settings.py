"""Issue #36.2: one settings system. Every source of settings (command line, recipe, sweep config, server)
binds the same `option(...)` dataclasses through `ndogo.options.bind`, and stages, methods and saved kinds
are found through one `ndogo.registry.Registry` style."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from ndogo.options import OptionError, bind, option
from ndogo.registry import Registry


@dataclasses.dataclass
class Knobs:
    """A config as any stage or table declares one."""

    size: int = option(4, min=1, help="How many.")
    rate: float = option(0.5, min=0.0, max=1.0, help="How often.")
    how: str = option("fast", choices=("fast", "slow"), help="How.")
    langs: list[str] = option([], sep=",", item="language code", help="Languages.")
    layers: list[int] | None = option(None, sep=",", help="Layers.")
    note: str | None = option(None, help="Anything.")


@pytest.mark.parametrize(("values", "message"), [
    ({"sizes": 3}, "grid.toml: knobs.sizes: unknown option; [knobs] takes size, rate, how, langs, layers, note"),
    ({"size": "3"}, "grid.toml: knobs.size: expected an integer, got '3'"),
    ({"size": True}, "grid.toml: knobs.size: expected an integer, got True"),
    ({"size": 0}, "grid.toml: knobs: size must be >= 1, not 0"),
    ({"rate": 2}, "grid.toml: knobs: rate must be <= 1.0, not 2.0"),
    ({"how": "medium"}, "grid.toml: knobs: how must be one of fast, slow, not 'medium'"),
    ({"layers": "0,x"}, "grid.toml: knobs.layers '0,x': expected ,-separated int values"),
    ({"langs": ","}, "grid.toml: knobs.langs ',': give at least one language code"),
    ({"note": 3}, "grid.toml: knobs.note: expected a string, got 3"),
    ({"langs": ["hau", 3]}, "grid.toml: knobs.langs[1]: expected a string, got 3"),
])
def test_the_binder_names_where_and_what_is_allowed(values: dict, message: str) -> None:
    with pytest.raises(OptionError) as err:
        bind(Knobs, values, "grid.toml: knobs", takes="[knobs]")
    assert str(err.value) == message


def test_the_binder_converts_what_a_source_gives_as_text() -> None:
    knobs = bind(Knobs, {"size": 2, "rate": 1, "langs": "hau,yor", "layers": "0, 2,4"}, "recipe stage 1")
    assert knobs == Knobs(size=2, rate=1.0, langs=["hau", "yor"], layers=[0, 2, 4])
    assert isinstance(knobs.rate, float)
    assert bind(Knobs, {"langs": "hau"}).langs == ["hau"]  # one language where a list is expected


def test_one_registry_style_lists_the_known_names_of_stages_methods_and_kinds(tmp_path: Path) -> None:
    from ndogo.compress.quantize import QUANTIZE
    from ndogo.compress.recipe import STAGES, RecipeError, resolve_stage
    from ndogo.models.loading import ModelError, write_meta
    from ndogo.models.runner import KINDS, load_runner

    assert all(isinstance(r, Registry) for r in (STAGES, KINDS, QUANTIZE._methods))
    with pytest.raises(RecipeError, match=r"unknown stage 'squash'; choose one of .*distill.*quantize"):
        resolve_stage("squash")
    with pytest.raises(ValueError, match=r"unknown quantize method 'int3'; choose one of .*onnx-int8"):
        QUANTIZE.get("int3")
    write_meta(tmp_path, {"kind": "holographic"})
    with pytest.raises(ModelError, match=r"unknown model kind 'holographic'; choose one of hf, .*sparse"):
        load_runner(tmp_path)

    things: Registry[str] = Registry("thing", aliases={"colour": "color"})
    things.add("color", "red")
    assert things.get(" colour ") == "red" and "colour" in things and "shape" not in things


# Computed before distillation's routes became methods (one DistillConfig with a `mode` field): the reuse
# keys of students already distilled, which the change must not move.
COMMITTED_KEYS = {
    "distill:mode=task,student_layers=6,epochs=10,patience=2,lr=2e-4":
        "e4bcb992905c221e56cbf6236349680c5434cf5c5af9603938c08d26613016b0",
    "distill:student_layers=3,unlabeled=/u,hidden_weight=1":
        "60ec100e60a50cbbd2648964b5deca17f119e916a27624404860de0a1657808a",
    "distill:mode=agnostic,student_layers=3,corpus=/x":
        "5cb957cbb71bb4a61d91a8a02fde4b3b9fd3471b33bb21396b506aefb6f91c64",
}
RUN = {"lang": "hau", "data": "masakhaner", "seed": 42, "threads": 2}


@pytest.mark.parametrize("recipe", list(COMMITTED_KEYS))
def test_distillation_routes_are_methods_and_keep_their_stage_keys(recipe: str) -> None:
    from ndogo.compress.distill import DISTILL
    from ndogo.compress.recipe import bind_recipe, parse_recipe, stage_key

    bound = bind_recipe(parse_recipe(recipe), RUN)[0]
    assert stage_key("src:X", bound) == COMMITTED_KEYS[recipe]
    assert DISTILL.names() == ["agnostic", "task"] and type(bound.config) is DISTILL.get(bound.config.mode).config_cls
    # `method=` is the methods' spelling; `mode=`, the one every committed config uses, stays the same stage
    renamed = recipe.replace("mode=", "method=") if "mode=" in recipe else recipe.replace(":", ":method=task,", 1)
    assert stage_key("src:X", bind_recipe(parse_recipe(renamed), RUN)[0]) == COMMITTED_KEYS[recipe]


def test_each_route_takes_only_its_own_options() -> None:
    from ndogo.compress.distill import DistillConfig
    from ndogo.compress.distill.task import TaskDistillConfig
    from ndogo.compress.recipe import RecipeError, bind_recipe, parse_recipe

    with pytest.raises(RecipeError, match=r"stage 1 \(distill\)\.corpus: unknown option; distill method task takes "):
        bind_recipe(parse_recipe("distill:mode=task,student_layers=3,corpus=/x"), RUN)
    with pytest.raises(RecipeError, match=r"stage 1 \(distill\)\.mode: unknown distill method 'both'; choose one of "
                                          r"agnostic, task"):
        bind_recipe(parse_recipe("distill:mode=both"), RUN)
    with pytest.raises(RecipeError, match="give the distill method once, not as both method and mode"):
        bind_recipe(parse_recipe("distill:method=task,mode=task"), RUN)
    with pytest.raises(RecipeError, match=r"\(distill\): agnostic distillation needs --corpus"):
        bind_recipe(parse_recipe("distill:mode=agnostic,student_layers=3"), RUN)
    config = DistillConfig(mode="task", langs=["hau"])  # the one-class call of scripts written before
    assert isinstance(config, TaskDistillConfig) and config.mode == "task" and config.lr == 1e-4


def test_sweep_tables_are_bound_by_the_binder(tmp_path: Path, tiny_model: Path, tiny_corpus: Path) -> None:
    """[models.X], [evaluate] and [resources] are option dataclasses: a mistake names the file, the key and
    what the key allows, as a recipe stage's does."""
    from ndogo.experiments.config import ConfigError, load_sweep_config

    base = (f'languages = ["hau"]\n[models.tiny]\nmodel = "{tiny_model}"\n{{model}}\n[recipes]\nbaseline = ""\n'
            "[evaluate]\n{evaluate}\n[resources]\ncpus = 1\n{resources}\n")
    cases = [
        ({"evaluate": "batch_size = 0"}, "evaluate: batch_size must be >= 1, not 0"),
        ({"evaluate": 'split = "val"'}, "evaluate: split must be one of train, dev, test, not 'val'"),
        ({"evaluate": "speed = 1"}, "evaluate.speed: expected true or false, got 1"),
        ({"evaluate": "sped = true"}, "evaluate.sped: unknown key; [evaluate] takes split, speed, batch_size"),
        ({"resources": "gpus = -1"}, "resources: gpus must be >= 0.0, not -1.0"),
        ({"resources": 'cpus = "all"'}, "resources.cpus: expected an integer"),
        ({"model": 'baselines = ["a", "a"]'}, "models.tiny.baselines: listed twice: a"),
        ({"model": "train = false"}, "models.tiny.train: false needs `baselines`"),
        ({"model": "epochs = 3"}, "models.tiny.epochs: unknown key; a model table takes model, finetune, baselines"),
        ({"model": 'name = "other"'}, "models.tiny.name: unknown key"),  # the table's name is its key
    ]
    for parts, message in cases:
        text = base.format(**{"model": "", "evaluate": "", "resources": "", **parts})
        if "cpus = \"all\"" in text:
            text = text.replace("cpus = 1\n", "")
        path = tmp_path / "grid.toml"
        path.write_text(text)
        with pytest.raises(ConfigError) as err:
            load_sweep_config(path, str(tiny_corpus))
        assert f"{path}: {message}" in str(err.value), (parts, str(err.value))
