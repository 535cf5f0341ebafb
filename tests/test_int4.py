"""onnx-int4: 4-bit block-wise MatMul weights and embedding rows in ONNX, run torch-free.

The model here has hidden size 64 (two blocks of 32 per row), large enough that its weights,
not the graph's protobuf, decide the file's size.
"""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import httpx
import numpy as np
import onnx
import pytest
import torch
from typer.testing import CliRunner

from conftest import BLOCK_TORCH, make_tiny_model, need_shared
from ndogo.cli import app
from ndogo.compress.quantize import quant_config, quantize
from ndogo.data.conll import read_conll
from ndogo.deploy.predict import load as torch_load
from ndogo.models.runner import load_runner

runner = CliRunner()


@pytest.fixture(scope="module")
def model64(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_tiny_model(tmp_path_factory.mktemp("tiny64") / "model", hidden=64)


@pytest.fixture(scope="module")
def int4_model(model64: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return quantize(model64, tmp_path_factory.mktemp("int4") / "model", quant_config("onnx-int4"))


@pytest.fixture(scope="module")
def int8_model64(model64: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return quantize(model64, tmp_path_factory.mktemp("int8") / "model", quant_config("onnx-int8"))


def _ops(path: Path) -> dict[str, int]:
    counts: dict[str, int] = {}
    for node in onnx.load(str(path / "model.onnx")).graph.node:
        counts[node.op_type] = counts.get(node.op_type, 0) + 1
    return counts


def _linears(model: Path) -> int:
    module = load_runner(model).module
    return sum(isinstance(m, torch.nn.Linear) for m in module.modules())


def test_every_weight_is_4bit_and_the_file_is_smaller_than_int8(int4_model: Path, int8_model64: Path,
                                                                 model64: Path) -> None:
    ops = _ops(int4_model)
    # every Linear (Q, K, V, output, two FFN per layer, the classifier) and the word, position
    # and token-type tables; no float MatMul or Gather over a weight is left
    assert ops.get("MatMulNBits") == _linears(model64) == 13
    assert ops.get("GatherBlockQuantized") == 3
    graph = onnx.load(str(int4_model / "model.onnx")).graph
    floats = {t.name for t in graph.initializer if t.data_type == onnx.TensorProto.FLOAT and len(t.dims) == 2}
    assert not [n.name for n in graph.node if n.op_type in ("MatMul", "Gather") and set(n.input) & floats]
    meta = json.loads((int4_model / "ndogo.json").read_text())
    assert meta["kind"] == "onnx" and meta["int4_ops"] == {"MatMulNBits": 13, "GatherBlockQuantized": 3}
    assert meta["quantization"] == {"method": "onnx-int4", "block_size": 32, "symmetric": False,
                                    "accuracy_level": 4, "matmul": "int4", "embeddings": "int4"}
    int4, int8 = ((p / "model.onnx").stat().st_size for p in (int4_model, int8_model64))
    # 4 bits a weight plus an fp32 scale and a 4-bit zero point per 32: 0.64 of int8's byte
    assert int4 < 0.7 * int8, (int4, int8)
    weights = sum(p.numel() for p in load_runner(model64).module.parameters() if p.dim() == 2)
    assert int4 < weights * (0.5 + 4 / 32 + 0.5 / 32) * 1.05


def test_logits_stay_close_to_fp32(int4_model: Path, model64: Path) -> None:
    """On a random model's small logits: 4-bit rounding moves them by a fraction of their spread."""
    gen = torch.Generator().manual_seed(1)
    ids = torch.randint(1000, 5000, (4, 20), generator=gen)
    mask = torch.ones_like(ids)
    ids[1, 9:], mask[1, 9:] = 0, 0  # a padded row
    batch = {"input_ids": ids, "attention_mask": mask}
    keep = mask.bool()
    with torch.inference_mode():
        ref = load_runner(model64).forward(batch).float()
        out = load_runner(int4_model).forward(batch).float()
    diff = (out - ref).abs()[keep]
    # measured 0.09 of the spread (int8: 0.01); a graph that mixes up blocks, axes or zero points is past 0.5
    assert float(diff.mean() / ref[keep].std()) < 0.2
    assert float((out.argmax(-1) == ref.argmax(-1))[keep].float().mean()) > 0.8


def test_runs_torch_free_with_the_torch_paths_entities_and_serves(int4_model: Path, tmp_path: Path) -> None:
    sents = read_conll(need_shared() / "masakhaner" / "hau" / "test.txt").sentences[:30]
    texts = [" ".join(s.tokens) for s in sents]
    want = torch_load(int4_model, threads=1).predict(texts)
    assert sum(map(len, want)) > 20
    (tmp_path / "texts.json").write_text(json.dumps(texts))
    script = BLOCK_TORCH + f"""
import json, sys
from dataclasses import asdict
import ndogo
predictor = ndogo.load({str(int4_model)!r}, threads=1)
found = predictor.predict(json.load(open({str(tmp_path / "texts.json")!r})))
print(json.dumps({{"entities": [[asdict(e) for e in ents] for ents in found],
                   "loaded": sorted(m for m in sys.modules if m.split(".")[0] in ("torch", "transformers"))}}))
"""
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    got = json.loads(done.stdout.strip().splitlines()[-1])
    assert got["loaded"] == []
    spans = [[(e["text"], e["label"], e["start"], e["end"]) for e in ents] for ents in got["entities"]]
    assert spans == [[(e.text, e.label, e.start, e.end) for e in ents] for ents in want]
    assert [e["score"] for ents in got["entities"] for e in ents] == \
        pytest.approx([e.score for ents in want for e in ents], abs=2e-6)

    # `ndogo serve` in a process that cannot import torch answers with the same entities
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    serve = BLOCK_TORCH + "import sys\nfrom ndogo.cli import app\nsys.argv = ['ndogo'] + sys.argv[1:]\napp()\n"
    proc = subprocess.Popen([sys.executable, "-c", serve, "serve", str(int4_model), "--port", str(port),
                             "--threads", "1"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 120
        while True:
            assert proc.poll() is None, proc.stderr.read()[-2000:]
            try:
                if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, "server did not start"
            time.sleep(0.2)
        answer = httpx.post(f"http://127.0.0.1:{port}/v1/entities", json={"text": texts[0]}, timeout=60).json()
        assert [(e["text"], e["label"]) for e in answer["entities"]] == [(e.text, e.label) for e in want[0]]
    finally:
        proc.kill()
        proc.wait()


@pytest.mark.parametrize(("options", "named"), [
    ({"block_size": 24}, "block_size"), ({"block_size": 8}, "block_size"), ({"block_size": 512}, "block_size"),
    ({"block_size": True}, "block_size"), ({"accuracy_level": 5}, "accuracy_level"), ({"matmul": "int2"}, "matmul"),
    ({"matmul": "int8", "embeddings": "int8"}, "matmul and embeddings"),
])
def test_bad_options_are_refused_naming_the_option(options: dict, named: str) -> None:
    with pytest.raises(ValueError, match=rf"^{named}"):
        quant_config("onnx-int4", **options)


def test_bad_options_are_refused_before_any_work_on_the_command_line(tmp_path: Path) -> None:
    missing = tmp_path / "no-model-here"  # nothing is loaded: the option is refused first
    out = tmp_path / "out"
    result = runner.invoke(app, ["compress", str(missing), "--recipe", "quantize:method=onnx-int4,block_size=48",
                                 "--out", str(out)])
    assert result.exit_code == 2
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert lines == ["error: recipe stage 1 (quantize): block_size must be a power of two from 16 to 256, not 48"]
    result = runner.invoke(app, ["quantize", str(missing), "--method", "onnx-int4", "--block-size", "20",
                                 "--out", str(out)])
    assert result.exit_code == 2 and "block_size must be a power of two" in result.output
    assert not out.exists()


def test_quantize_command_recipe_evaluate_and_sweep(model64: Path, tiny_corpus: Path, tmp_path: Path) -> None:
    """Options reach the graph from `ndogo quantize` and from a recipe; evaluate and a sweep measure the result."""
    out = tmp_path / "cli"
    result = runner.invoke(app, ["quantize", str(model64), "--method", "onnx-int4", "--block-size", "16",
                                 "--symmetric", "--matmul", "int8", "--out", str(out)])
    assert result.exit_code == 0, result.output
    meta = json.loads((out / "ndogo.json").read_text())
    assert meta["quantization"]["block_size"] == 16 and meta["int4_ops"] == {"GatherBlockQuantized": 3}
    ops = _ops(out)
    assert ops.get("MatMulInteger") == 13 and "MatMulNBits" not in ops  # int8 MatMuls, as onnx-int8 makes them
    node = next(n for n in onnx.load(str(out / "model.onnx")).graph.node if n.op_type == "GatherBlockQuantized")
    assert {a.name: a.i for a in node.attribute}["block_size"] == 16
    assert len(node.input) == 3  # symmetric: data, indices, scales; no zero points

    recipe = tmp_path / "recipe"
    result = runner.invoke(app, ["compress", str(model64), "--recipe", "quantize:method=onnx-int4,block_size=64",
                                 "--out", str(recipe)])
    assert result.exit_code == 0, result.output
    node = next(n for n in onnx.load(str(recipe / "model.onnx")).graph.node if n.op_type == "MatMulNBits")
    assert {a.name: a.i for a in node.attribute}["block_size"] == 64
    result = runner.invoke(app, ["evaluate", str(recipe), "--data", str(tiny_corpus), "--lang", "hau", "--json",
                                 "--no-speed"])
    assert result.exit_code == 0, result.output
    row = json.loads(result.output[result.output.index("{"):])
    assert row["kind"] == "onnx" and 0 <= row["f1"] <= 1

    from ndogo.experiments.config import load_sweep_config
    from ndogo.experiments.sweep import run_sweep

    config = tmp_path / "grid.toml"
    config.write_text(f"""
name = "int4"
languages = ["hau"]
seeds = [1]

[models.tiny]
model = "{model64}"
finetune = {{ max_steps = 2, batch_size = 8, lr = 1e-3 }}

[recipes]
int4 = "quantize:method=onnx-int4,block_size=32"

[evaluate]
speed = false
skip_empty_baselines = false
""", encoding="utf-8")
    summary = run_sweep(load_sweep_config(config, str(tiny_corpus)), tmp_path / "sweep", show_progress=False)
    assert summary.failed == 0
    with sqlite3.connect(tmp_path / "sweep" / "results.sqlite") as conn:
        rows = {r: json.loads(row) for r, row in conn.execute("SELECT recipe, row FROM cells WHERE status = 'done'")}
    assert rows["int4"]["kind"] == "onnx" and rows["int4"]["size_bytes"] < 0.3 * rows["baseline"]["size_bytes"]


def test_quantizing_index_gathers_is_left_alone() -> None:
    """Only Gathers over float tables are embeddings: an integer lookup table would be corrupted by 4 bits."""
    from onnx import TensorProto, helper, numpy_helper

    from ndogo.compress.quantize.onnx_int4 import _float_tables

    table = numpy_helper.from_array(np.zeros((4, 32), dtype=np.float32), "table")
    index = numpy_helper.from_array(np.arange(4, dtype=np.int64), "index")
    graph = helper.make_graph([], "g", [], [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1])],
                              [table, index])
    assert _float_tables(helper.make_model(graph)) == {"table"}


def test_ort_export_refuses_4bit_tables_in_one_line_and_takes_int8_ones(int4_model: Path, model64: Path,
                                                                        tmp_path: Path) -> None:
    """ONNX Runtime's .ort format has no 4-bit tensor type: the export says so instead of a traceback."""
    result = runner.invoke(app, ["export", str(int4_model), "--format", "ort", "--out", str(tmp_path / "ort")])
    assert result.exit_code == 2, result.output
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith(f"error: {int4_model / 'model.onnx'}: ")
    assert "--embeddings int8" in lines[0] and not (tmp_path / "ort").exists()

    eight = quantize(model64, tmp_path / "e8", quant_config("onnx-int4", embeddings="int8"))
    result = runner.invoke(app, ["export", str(eight), "--format", "ort", "--out", str(tmp_path / "ort8")])
    assert result.exit_code == 0, result.output
    from ndogo.deploy.runtime import load

    assert load(tmp_path / "ort8", threads=1).predict(["Musa ya je Kano."]) == \
        load(eight, threads=1).predict(["Musa ya je Kano."])
