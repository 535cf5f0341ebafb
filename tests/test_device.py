"""The device setting (#40): resolved and refused in one line, kept out of stage keys, and followed by every loop.

No GPU is needed or used here: the suite runs with NDOGO_DEVICE=cpu (conftest). What a CPU can
check of the GPU path is checked: every loop runs with device='cpu' set explicitly, and every
tensor ndogo's own code creates inside them either names its device or belongs to the data
collation that is moved to the model's device whole; a tensor created on the default device
would be on the CPU beside a model on the GPU.
"""

from __future__ import annotations

import importlib.util
import json
import sys
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
import torch
from torch.overrides import TorchFunctionMode
from typer.testing import CliRunner

from ndogo.device import check_precision, resolve_device

from .conftest import make_tiny_model

ROOT = Path(__file__).resolve().parents[1]
SRC = str(ROOT / "src" / "ndogo")
TORCH = str(Path(torch.__file__).parent)
FACTORIES = {torch.tensor, torch.as_tensor, torch.zeros, torch.ones, torch.full, torch.empty, torch.arange,
             torch.rand, torch.randn, torch.randint, torch.randperm, torch.eye, torch.linspace}
# CPU by design: a batch built beside its data and handed to `ndogo.device.to_device` whole (collate, the
# MLM masker); weights read from a file into a model that is moved afterwards (decode_sparse); the trial
# step that asks whether the CPU computes bf16 natively (resolve_precision).
CPU_SIDE = {("models/windowing.py", "collate"), ("train/mlm.py", "__init__"), ("train/mlm.py", "__call__"),
            ("compress/prune/_sparse.py", "decode_sparse"), ("train/mlm.py", "resolve_precision")}


class CreationSites(TorchFunctionMode):
    """Every tensor factory called from ndogo's code without a `device=`: (file, function, line) -> calls."""

    def __init__(self) -> None:
        super().__init__()
        self.sites: Counter[tuple[str, str, int]] = Counter()

    def __torch_function__(self, func: Any, types: Any, args: tuple = (), kwargs: dict | None = None) -> Any:
        kwargs = kwargs or {}
        if func in FACTORIES and kwargs.get("device") is None:
            frame = sys._getframe(1)
            while frame is not None and frame.f_code.co_filename.startswith(TORCH):
                frame = frame.f_back
            if frame is not None and frame.f_code.co_filename.startswith(SRC):
                where = (str(Path(frame.f_code.co_filename).relative_to(SRC)), frame.f_code.co_name)
                if where not in CPU_SIDE:
                    self.sites[(*where, frame.f_lineno)] += 1
        return func(*args, **kwargs)


def test_every_loop_runs_with_device_cpu_and_creates_no_tensor_off_its_device(tiny_corpus: Path,
                                                                              tmp_path: Path) -> None:
    """Fine-tuning, both distillation routes (narrower students: importance and slicing), the MLM loop,
    recovery after pruning and evaluate, each with device='cpu' given explicitly."""
    from transformers import AutoTokenizer, BertConfig, BertForMaskedLM

    from ndogo.compress.distill import DistillConfig, distill
    from ndogo.compress.prune import prune, prune_config
    from ndogo.evaluate import evaluate
    from ndogo.models.loading import resolve_model
    from ndogo.train.finetune import FinetuneConfig, finetune

    data = str(tiny_corpus)
    teacher = make_tiny_model(tmp_path / "teacher", layers=4, hidden=32, heads=4)
    mlm_teacher = tmp_path / "mlm-teacher"
    torch.manual_seed(0)
    BertForMaskedLM(BertConfig(vocab_size=30522, hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                               intermediate_size=64, max_position_embeddings=64)).save_pretrained(mlm_teacher)
    AutoTokenizer.from_pretrained(resolve_model("minilm")).save_pretrained(mlm_teacher)
    text = tmp_path / "text"
    text.mkdir()
    (text / "hau.txt").write_text("\n".join(f"Musa ya je Kano ranar {i} ." for i in range(40)) + "\n")

    with CreationSites() as recorder:
        finetune(FinetuneConfig(model=str(teacher), data=data, langs=["hau"], out=str(tmp_path / "ft"), max_steps=2,
                                batch_size=8, threads=1, device="cpu"), show_progress=False)
        distill(teacher, tmp_path / "task", DistillConfig(
            mode="task", student_layers=2, student_hidden=16, data=data, langs=["hau"], max_steps=2, batch_size=8,
            threads=1, device="cpu", show_progress=False))
        distill(mlm_teacher, tmp_path / "agnostic", DistillConfig(
            mode="agnostic", student_layers=1, student_hidden=16, corpus=str(text), seq_len=16, max_steps=2,
            batch_size=4, save_every=2, threads=1, device="cpu", show_progress=False))
        prune(tmp_path / "ft", tmp_path / "pruned", prune_config(
            "magnitude", sparsity=0.5, recover_epochs=1, data=data, lang="hau", batch_size=16, threads=1,
            device="cpu", show_progress=False))
        row = evaluate(tmp_path / "pruned", data, "hau", "dev", speed=True, sample=4, threads=1, device="cpu")
    assert not recorder.sites, "tensors created without a device: " + ", ".join(
        f"{f}:{line} ({fn})" for f, fn, line in sorted(recorder.sites))
    for run in ("ft", "task"):
        assert json.loads((tmp_path / run / "metrics.json").read_text())["machine"]["device"] == "cpu"
    assert row["device"] == "cpu" and row["latency_ms_b1"] > 0 and "peak_gpu_mb" not in row


def test_the_recorder_sees_a_tensor_created_without_a_device() -> None:
    """The check above can fail: a factory call from ndogo's code with no device is reported, with its line."""
    from ndogo.compress.distill import _train

    with CreationSites() as recorder:
        _train._slice("x.weight", torch.ones(4, 4), _train.Shape([0], [0, 1], [[0]], [[0]]), 0, 4, 2)
        torch.zeros(3)  # this test's own call: not ndogo's code
    assert not recorder.sites  # _slice names the device of the tensor it indexes
    with CreationSites() as recorder:  # code compiled as if it were a file of ndogo's
        exec(compile("import torch\ntorch.zeros(2)\ntorch.zeros(2, device='cpu')\n", f"{SRC}/fake.py", "exec"))
    assert list(recorder.sites) == [("fake.py", "<module>", 2)]


def test_devices_are_resolved_and_refused_in_one_line(monkeypatch: pytest.MonkeyPatch) -> None:
    assert resolve_device("cpu") == torch.device("cpu")
    assert resolve_device("auto") == torch.device("cpu")  # NDOGO_DEVICE=cpu in the suite
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.delenv("NDOGO_DEVICE")
    assert resolve_device("auto") == torch.device("cpu") and resolve_device(None) == torch.device("cpu")
    with pytest.raises(ValueError, match=r"^device cuda: no CUDA device here .*use --device cpu or auto$"):
        resolve_device("cuda")
    for bad in ("tpu", "cuda:x", "gpu"):
        with pytest.raises(ValueError, match=r"expected auto, cpu, cuda or cuda:N"):
            resolve_device(bad)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    monkeypatch.setattr(torch.cuda, "current_device", lambda: 0)
    assert resolve_device("auto") == torch.device("cuda", 0) == resolve_device("cuda:0")
    with pytest.raises(ValueError, match=r"^device cuda:1: this machine has 1 CUDA device \(cuda:0\)$"):
        resolve_device("cuda:1")
    with pytest.raises(ValueError, match="fp16 needs a CUDA device"):
        check_precision("fp16", torch.device("cpu"))


def test_a_missing_gpu_is_a_one_line_error_before_any_work(tiny_corpus: Path, tiny_model: Path, tmp_path: Path,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    from ndogo.cli import app

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    out = tmp_path / "run"
    result = CliRunner().invoke(app, ["finetune", "--model", str(tiny_model), "--data", str(tiny_corpus), "--lang",
                                      "hau", "--out", str(out), "--device", "cuda"])
    assert result.exit_code != 0 and result.output.startswith("error: device cuda: no CUDA device here")
    assert len(result.output.strip().splitlines()) == 1 and not out.exists()
    result = CliRunner().invoke(app, ["finetune", "--model", str(tiny_model), "--data", str(tiny_corpus), "--lang",
                                      "hau", "--out", str(out), "--device", "cpu", "--precision", "fp16"])
    assert result.output.startswith("error: precision fp16 needs a CUDA device") and not out.exists()


def test_the_device_changes_no_stage_key_and_comes_from_the_run(tiny_corpus: Path, tiny_model: Path) -> None:
    """A sweep trained on a GPU reuses, and is reused by, the same stages run on a CPU."""
    from ndogo.compress.recipe import bind_recipe, parse_recipe, stage_key

    recipe = parse_recipe("finetune:max_steps=3 | prune:sparsity=0.5,recover_epochs=1 | distill:student_layers=1")
    run = {"lang": "hau", "seed": 1, "data": str(tiny_corpus)}
    keys = {}
    for device in ("cpu", "cuda:3"):  # bound, not resolved: a GPU sweep's recipes bind on a CPU-only driver
        bound = bind_recipe(recipe, {**run, "device": device})
        assert [b.config.device for b in bound] == [device] * 3
        keys[device] = [stage_key("x", b) for b in bound]
    assert keys["cpu"] == keys["cuda:3"]
    own = bind_recipe(parse_recipe("finetune:max_steps=3,device=cpu"), {**run, "device": "cuda"})
    assert own[0].config.device == "cpu"  # a stage's own option wins over the sweep's


def test_gpu_latency_waits_for_the_device_after_every_timed_forward(monkeypatch: pytest.MonkeyPatch,
                                                                    tiny_model: Path) -> None:
    """A CUDA call returns once queued: each timed forward is followed by a synchronize inside the timer."""
    from ndogo.metrics import perf
    from ndogo.models.loading import load_tokenizer
    from ndogo.models.windowing import encode_sentences

    events: list[str] = []
    monkeypatch.setattr(perf, "to_device", lambda batch, device: batch)
    monkeypatch.setattr(perf, "synchronize", lambda device: events.append(f"sync {device}"))
    monkeypatch.setattr(perf, "device_name", lambda device: "NVIDIA Test GPU")
    clock = iter(range(10**6))
    monkeypatch.setattr(perf.time, "perf_counter", lambda: float(next(clock)))
    windows = encode_sentences(load_tokenizer(tiny_model), [["Musa", "ya", "je"], ["Kano"], ["a", "b"]], 16)

    def forward(batch: dict[str, torch.Tensor]) -> torch.Tensor:
        events.append("forward")
        return torch.zeros(1)

    cuda = torch.device("cuda", 0)
    assert perf.latency_ms(forward, windows, 0, repeats=2, warmup=1, device=cuda) == 1000.0
    assert events == ["forward", "sync cuda:0"] + ["forward", "sync cuda:0"] * 6  # warm-up, then 2 x 3 sentences
    events.clear()
    row = perf.measure(forward, windows, 0, repeats=1, device=cuda)
    assert row["device"] == "NVIDIA Test GPU"
    sync = "sync cuda:0"  # latency: 3 warm-up forwards, then each sentence; throughput: each pass of batches
    assert events == ["forward"] * 3 + [sync] + ["forward", sync] * 3 + ["forward", sync] + ["forward", sync]


def test_a_model_that_cannot_run_on_cuda_is_refused_or_left_on_the_cpu(int8_model: Path, tiny_model: Path) -> None:
    from ndogo.models.loading import ModelError
    from ndogo.models.runner import load_runner, on_device

    onnx = load_runner(int8_model)
    with pytest.raises(ModelError, match=r"a onnx model runs on cpu only, not cuda:0; use --device cpu"):
        on_device(onnx, torch.device("cuda", 0))
    assert on_device(onnx, torch.device("cuda", 0), fall_back=True) is onnx  # --device auto: the CPU
    hf = load_runner(tiny_model)
    assert hf.devices == ("cpu", "cuda") and on_device(hf, torch.device("cpu")) is hf


def test_the_gpu_check_script_runs_its_few_step_mode_on_the_cpu(tiny_corpus: Path, tmp_path: Path,
                                                               capsys: pytest.CaptureFixture[str]) -> None:
    """bench/gpu_check.py, as a GPU machine runs it, but 2 steps a stage, a tiny model and device cpu."""
    spec = importlib.util.spec_from_file_location("gpu_check", ROOT / "bench" / "gpu_check.py")
    assert spec and spec.loader
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    teacher = make_tiny_model(tmp_path / "tiny", layers=2, hidden=32, heads=2)
    assert script.main(["--model", str(teacher), "--data", str(tiny_corpus), "--out", str(tmp_path / "check"),
                        "--devices", "cpu", "--steps", "2", "--student-layers", "1", "--sample", "4"]) == 0
    rows = json.loads((tmp_path / "check" / "gpu-check.json").read_text())["rows"]
    assert [r["step"].split()[0] for r in rows] == ["fine-tune", "distil", "LLM.int8()"]
    assert all(r["device"] == "cpu" == r["timed_on"] and r["precision"] == "fp32" and 0 <= r["f1"] <= 1
               and r["latency_ms_b1"] > 0 for r in rows)
    assert rows[2]["kind"] == "quantized"
    printed = capsys.readouterr().out
    assert printed.count(" | F1 ") == 3 and "gpu-check.json" in printed
