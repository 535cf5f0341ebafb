"""`ndogo bench latency`: several models' size and speed side by side, as ratios to the first (#36)."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from ndogo.cli import app
from ndogo.models.runner import size_on_disk


def test_bench_latency_times_each_model_in_turn_and_gives_ratios(tiny_model: Path, int8_model: Path,
                                                                 tiny_corpus: Path) -> None:
    done = CliRunner().invoke(app, ["bench", "latency", str(tiny_model), str(int8_model), "--lang", "hau",
                                    "--data", str(tiny_corpus), "--sample", "5", "--repeats", "2", "--json"])
    assert done.exit_code == 0, done.output
    rows = json.loads(done.stdout)["rows"]
    assert [r["model"] for r in rows] == [str(tiny_model), str(int8_model)]
    assert [r["kind"] for r in rows] == ["hf", "onnx"]
    assert [r["size_bytes"] for r in rows] == [size_on_disk(tiny_model), size_on_disk(int8_model)]
    ref, other = rows
    assert ref["size_ratio"] == ref["latency_ratio"] == ref["throughput_ratio"] == 1.0
    assert other["size_ratio"] == round(other["size_bytes"] / ref["size_bytes"], 4)
    assert other["latency_ratio"] == round(other["latency_ms_b1"] / ref["latency_ms_b1"], 4)
    for r in rows:
        assert r["repeats"] == 2 and r["latency_sentences"] == 5 and r["threads"] == 1
        assert 0 < r["latency_ms_b1"] <= r["latency_e2e_ms_b1"] and r["throughput_b32"] > 0


def test_bench_latency_names_a_missing_model_in_one_line(tiny_model: Path, tmp_path: Path) -> None:
    done = CliRunner().invoke(app, ["bench", "latency", str(tiny_model), str(tmp_path / "nowhere"), "--lang", "hau"])
    assert done.exit_code == 2
    assert done.output.strip() == f"error: {tmp_path / 'nowhere'}: no such directory"
