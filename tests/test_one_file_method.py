"""The promise of #18: a new quantization method and a new pruning method are one file each.

Each method below is written to a file of its own, as a user would write it, and named in
$NDOGO_PLUGINS (a file dropped into compress/quantize/ or compress/prune/ is found the same
way, by the registry's discovery, which the last test checks). Nothing else changes: the
methods then work through `ndogo compress`, a sweep, the report, and `--help`.
"""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from ndogo.compress.prune import PRUNE

QUANT_METHOD = '''
"""fp16-round: weights rounded to half precision and stored back in fp32 (a simulation of fp16)."""
from dataclasses import dataclass

from ndogo.compress.methods import option
from ndogo.compress.quantize import QUANTIZE, QuantizeConfig
from ndogo.compress.quantize._torch import TorchHandler


class RoundHandler(TorchHandler):
    plain_save = True  # an ordinary fp32 directory

    def apply(self, model, cfg):
        import torch

        for name, p in model.named_parameters():
            if cfg.classifier or not name.startswith("classifier"):
                p.data = p.data.to(torch.float16).to(torch.float32)
        return model


@QUANTIZE.register("fp16-round", RoundHandler())
@dataclass
class Fp16RoundConfig(QuantizeConfig):
    """Every weight rounded to fp16, kept in fp32 (what fp16 costs in F1, without fp16 kernels)."""

    classifier: bool = option(True, help="round the classifier too")
'''

PRUNE_METHOD = '''
"""random: zero a random fraction of every encoder Linear's weights (the baseline magnitude must beat)."""
from dataclasses import dataclass

from ndogo.compress.methods import option
from ndogo.compress.prune import PRUNE, PruneConfig


class RandomPruning:
    def prune(self, run, out, config):
        import torch

        from ndogo.compress.prune._common import load_module
        from ndogo.compress.prune._sparse import save_sparse
        from ndogo.compress.prune.magnitude import prunable

        model, runner = load_module(run)
        generator = torch.Generator().manual_seed(config.draw)
        zeroed = total = 0
        with torch.no_grad():
            for _, module in prunable(model):
                keep = torch.rand(module.weight.shape, generator=generator) >= config.sparsity
                module.weight.mul_(keep)
                zeroed, total = zeroed + int((~keep).sum()), total + keep.numel()
        meta = {k: v for k, v in runner.meta.items() if k not in ("kind", "weights")}
        save_sparse(model, runner.tokenizer, out, {**meta, "stage": "prune", "source": str(run),
                                                    "prune": config.record(), "sparsity": zeroed / total})
        return out


@PRUNE.register("random", RandomPruning())
@dataclass
class RandomConfig(PruneConfig):
    """Random unstructured pruning: weights zeroed at random, whatever their size."""

    draw: int = option(0, help="seed of the random draw")
'''


@pytest.fixture
def plugins(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    folder = tmp_path / "plugins"
    folder.mkdir()
    (folder / "my_fp16_round.py").write_text(QUANT_METHOD, encoding="utf-8")
    (folder / "my_random_prune.py").write_text(PRUNE_METHOD, encoding="utf-8")
    monkeypatch.syspath_prepend(str(folder))
    monkeypatch.setenv("NDOGO_PLUGINS", "my_fp16_round,my_random_prune")
    return folder


def test_a_one_file_method_runs_through_compress_a_sweep_and_the_report(
        plugins: Path, tiny_model: Path, tiny_corpus: Path, tmp_path: Path) -> None:
    from ndogo.cli import app
    from ndogo.experiments.config import load_sweep_config
    from ndogo.experiments.sweep import run_sweep
    from ndogo.models.runner import load_runner

    runner = CliRunner()
    out = tmp_path / "chain"
    recipe = "prune:method=random,sparsity=0.5,draw=3 | quantize:method=fp16-round,classifier=false"
    result = runner.invoke(app, ["compress", str(tiny_model), "--recipe", recipe, "--out", str(out)])
    assert result.exit_code == 0, result.output
    meta = json.loads((out / "ndogo.json").read_text())
    assert meta["quantization"] == {"method": "fp16-round", "classifier": False}
    assert load_runner(out).kind == "quantized"

    # an option the method does not have is refused, naming it and what the method takes
    bad = runner.invoke(app, ["compress", str(tiny_model), "--recipe", "quantize:method=fp16-round,threshold=6",
                              "--out", str(tmp_path / "bad")])
    assert bad.exit_code == 2 and "threshold: unknown option; quantize method fp16-round takes classifier" \
        in bad.output

    config = tmp_path / "grid.toml"
    config.write_text(f"""
name = "plugins"
languages = ["hau"]
seeds = [1]

[models.tiny]
model = "{tiny_model}"
finetune = {{ max_steps = 3, batch_size = 8, lr = 1e-3 }}

[recipes]
baseline = ""
random-50 = "prune:method=random,sparsity=0.5"
round = "quantize:method=fp16-round"

[evaluate]
speed = false
skip_empty_baselines = false
""", encoding="utf-8")
    summary = run_sweep(load_sweep_config(config, str(tiny_corpus)), tmp_path / "sweep", show_progress=False)
    assert (summary.done, summary.failed) == (3, 0)
    with sqlite3.connect(tmp_path / "sweep" / "results.sqlite") as conn:
        rows = {r: json.loads(row) for r, row in conn.execute("SELECT recipe, row FROM cells WHERE status = 'done'")}
    assert set(rows) == {"baseline", "random-50", "round"}
    assert abs(rows["random-50"]["sparsity_encoder_linear"] - 0.5) < 0.05

    report = runner.invoke(app, ["report", str(tmp_path / "sweep"), "--out", str(tmp_path / "report")])
    assert report.exit_code == 0, report.output
    table = (tmp_path / "report" / "results.csv").read_text(encoding="utf-8")
    assert "random-50" in table and "round" in table


def test_help_lists_a_one_file_method_and_its_options(plugins: Path) -> None:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(plugins), os.environ.get("PYTHONPATH", "")])}
    for command, method, flag in (("quantize", "fp16-round", "--classifier"), ("prune", "random", "--draw")):
        out = subprocess.run([sys.executable, "-m", "ndogo", command, "--help"], env=env, capture_output=True,
                             text=True, timeout=300, check=True).stdout
        assert method in out and flag in out


def test_a_file_dropped_into_the_package_is_discovered() -> None:
    import ndogo.compress.prune as package

    folder = Path(package.__file__).parent
    path = folder / "zz_dropped_in_by_a_test.py"
    path.write_text(PRUNE_METHOD.replace('"random"', '"dropped-in"').replace("RandomConfig", "DroppedConfig"),
                    encoding="utf-8")
    try:
        assert "dropped-in" in PRUNE.names()
        assert PRUNE.config("dropped-in", sparsity=0.3, draw=1).method == "dropped-in"
        with pytest.raises(ValueError, match=r"prune method dropped-in has no option .scope."):
            PRUNE.config("dropped-in", sparsity=0.3, scope="global")
    finally:
        path.unlink()
