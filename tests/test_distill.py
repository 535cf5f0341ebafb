"""Distillation: students copy the chosen teacher weights exactly, the losses fall, and the record is complete."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from transformers import AutoModelForMaskedLM, AutoTokenizer, BertConfig, BertForMaskedLM, BertForTokenClassification
from typer.testing import CliRunner

from ndogo.cli import app
from ndogo.compress.distill import (
    DistillConfig,
    Importance,
    TeacherCache,
    activation_importance,
    default_layer_map,
    distill,
    make_student,
    plan_shape,
    teacher_record,
)
from ndogo.models.loading import resolve_model
from ndogo.models.runner import count_params, load_runner
from ndogo.train.finetune import FinetuneConfig, finetune

from .conftest import SHARED, make_tiny_model

runner = CliRunner()


def tiny_config(**kw) -> BertConfig:
    base = dict(vocab_size=30522, hidden_size=32, num_hidden_layers=4, num_attention_heads=4, intermediate_size=64,
                max_position_embeddings=64)
    base.update(kw)
    return BertConfig(**base)


@pytest.fixture(scope="module")
def mlm_teacher(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny 4-layer BERT masked-LM with minilm's tokenizer (a teacher with an MLM head)."""
    path = tmp_path_factory.mktemp("mlm") / "teacher"
    torch.manual_seed(0)
    BertForMaskedLM(tiny_config()).save_pretrained(path, safe_serialization=True)
    AutoTokenizer.from_pretrained(resolve_model("minilm")).save_pretrained(path)
    return path


@pytest.fixture(scope="module")
def text_corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("text")
    for lang in ("hau", "swa"):
        real = SHARED / "monolingual" / f"{lang}.txt"
        lines = real.read_text(encoding="utf-8").splitlines()[:60] if real.is_file() else \
            [f"{lang} news sentence {i} about Kano and Musa ." for i in range(60)]
        (root / f"{lang}.txt").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return root


def test_default_layer_map_is_every_other_layer() -> None:
    assert default_layer_map(6, 3) == [0, 2, 4]
    assert default_layer_map(6, 2) == [0, 3]
    assert default_layer_map(12, 6) == [0, 2, 4, 6, 8, 10]
    assert default_layer_map(4, 4) == [0, 1, 2, 3]
    with pytest.raises(ValueError, match="choose 1 to 6"):
        default_layer_map(6, 7)


def test_student_reproduces_the_chosen_layers_exactly() -> None:
    torch.manual_seed(1)
    teacher = BertForTokenClassification(tiny_config(num_labels=5)).eval()
    student = make_student(teacher, plan_shape(teacher, [1, 3], None, None))
    assert student.config.num_hidden_layers == 2 and type(student) is type(teacher)
    t, s = teacher.state_dict(), student.state_dict()
    teacher_layer = {"bert.encoder.layer.0.": "bert.encoder.layer.1.", "bert.encoder.layer.1.": "bert.encoder.layer.3."}
    for name, value in s.items():
        prefix = name[:21]
        source = teacher_layer[prefix] + name[21:] if prefix in teacher_layer else name
        assert torch.equal(value, t[source]), name
    # a student that keeps every layer is the teacher, function and all
    ids = torch.tensor([[101, 2023, 2003, 102]])
    whole = make_student(teacher, plan_shape(teacher, [0, 1, 2, 3], None, None))
    assert torch.equal(whole(input_ids=ids).logits, teacher(input_ids=ids).logits)
    with pytest.raises(ValueError, match="increasing"):
        plan_shape(teacher, [3, 1], None, None)


def test_narrower_student_slices_the_most_active_channels_heads_and_neurons() -> None:
    torch.manual_seed(2)
    teacher = BertForMaskedLM(tiny_config()).eval()  # 4 heads of size 8
    batches = [{"input_ids": torch.randint(1000, 2000, (4, 12)), "attention_mask": torch.ones(4, 12, dtype=torch.long)}]
    importance = activation_importance(teacher, batches)
    assert importance.channels.shape == (32,) and importance.heads.shape == (4, 4)
    assert importance.neurons.shape == (4, 64) and (importance.channels > 0).all()
    # Hand-made importance, so the kept indices are known.
    imp = Importance(torch.arange(32.0), torch.tensor([[0.0, 3, 1, 2]] * 4), torch.arange(64.0).repeat(4, 1))
    shape = plan_shape(teacher, [0, 2], 16, imp)
    assert shape.channels == list(range(16, 32)) and shape.heads == [[1, 3], [1, 3]]
    assert shape.neurons == [list(range(32, 64))] * 2
    student = make_student(teacher, shape)
    c = student.config
    assert (c.hidden_size, c.num_attention_heads, c.intermediate_size) == (16, 2, 32)
    t, s = teacher.state_dict(), student.state_dict()
    ch, heads = torch.arange(16, 32), torch.cat([torch.arange(8, 16), torch.arange(24, 32)])
    assert torch.equal(s["bert.embeddings.word_embeddings.weight"], t["bert.embeddings.word_embeddings.weight"][:, ch])
    assert torch.equal(s["bert.embeddings.position_embeddings.weight"],
                       t["bert.embeddings.position_embeddings.weight"][:, ch])
    assert torch.equal(s["bert.encoder.layer.1.attention.self.query.weight"],
                       t["bert.encoder.layer.2.attention.self.query.weight"][heads][:, ch])
    assert torch.equal(s["bert.encoder.layer.1.attention.output.dense.weight"],
                       t["bert.encoder.layer.2.attention.output.dense.weight"][ch][:, heads])
    assert torch.equal(s["bert.encoder.layer.0.output.dense.weight"],
                       t["bert.encoder.layer.0.output.dense.weight"][ch][:, 32:])
    assert torch.equal(s["bert.encoder.layer.0.intermediate.dense.bias"],
                       t["bert.encoder.layer.0.intermediate.dense.bias"][32:])
    assert student(input_ids=batches[0]["input_ids"]).logits.shape == (4, 12, 30522)
    with pytest.raises(ValueError, match="multiple of its head size"):
        plan_shape(teacher, [0, 2], 12, imp)


def test_agnostic_distillation_loss_falls_and_records_the_teacher(mlm_teacher: Path, text_corpus: Path,
                                                                   tiny_corpus: Path, tmp_path: Path) -> None:
    # The teacher is random, so its MLM targets teach nothing; the distillation terms alone must fall.
    cfg = DistillConfig(mode="agnostic", student_layers=2, corpus=str(text_corpus), seq_len=32, max_steps=40,
                        batch_size=8, lr=2e-3, hard_weight=0.0, temperature=1.0, save_every=40, threads=1,
                        show_progress=False)
    out = distill(mlm_teacher, tmp_path / "student", cfg)
    metrics = json.loads((out / "metrics.json").read_text())
    hist = metrics["history"]
    assert {"mlm", "soft", "cos"} <= set(hist[-1])

    def mean(rows: list[dict], key: str) -> float:
        return sum(r[key] for r in rows) / len(rows)

    for key in ("loss", "soft", "cos"):  # over 40 steps, logged every 2
        assert mean(hist[-5:], key) < 0.85 * mean(hist[:5], key), (key, hist)
    meta = json.loads((out / "ndogo.json").read_text())
    assert meta["route"] == "agnostic" and meta["teacher_path"] == str(mlm_teacher)
    assert meta["student_shape"]["layer_map"] == [0, 2] and meta["losses"]["soft_weight"] == 5.0
    assert meta["losses"]["hard_weight"] == 0.0 and meta["losses"]["temperature"] == 1.0
    assert meta["teacher_params"] > meta["student_params"] == count_params(AutoModelForMaskedLM.from_pretrained(out))[0]
    assert 0 < meta["param_reduction"] < 1 and meta["seed"] == 42 and set(meta["data"]["langs"]) == {"hau", "swa"}
    # fine-tuning the agnostic student works, and the fine-tuned model still leads back to the teacher
    finetune(FinetuneConfig(model=str(out), data=str(tiny_corpus), langs=["hau"], out=str(tmp_path / "ft"),
                            max_steps=2, threads=1), show_progress=False)
    record = teacher_record(tmp_path / "ft")
    assert record and record["teacher_path"] == str(mlm_teacher) and record["route"] == "agnostic"


def test_teacher_without_mlm_head_drops_the_soft_targets(text_corpus: Path, tmp_path: Path) -> None:
    teacher = make_tiny_model(tmp_path / "encoder-only", layers=2)  # a token classifier: no MLM head
    cfg = DistillConfig(mode="agnostic", student_layers=1, corpus=str(text_corpus), seq_len=32, max_steps=4,
                        batch_size=4, save_every=4, threads=1, show_progress=False)
    meta = json.loads((distill(teacher, tmp_path / "s", cfg) / "ndogo.json").read_text())
    assert meta["losses"]["soft_weight"] == 0.0 and "no masked-LM head" in meta["losses"]["soft_targets"]
    assert "soft" not in json.loads((tmp_path / "s" / "metrics.json").read_text())["history"][-1]


def test_task_distillation_loss_falls_and_student_is_smaller(tiny_corpus: Path, tmp_path: Path) -> None:
    teacher = make_tiny_model(tmp_path / "teacher", layers=4, hidden=32, heads=4)
    cfg = DistillConfig(mode="task", student_layers=2, student_hidden=16, data=str(tiny_corpus), langs=["hau"],
                        epochs=4, lr=3e-3, batch_size=8, threads=1, show_progress=False)
    out = distill(teacher, tmp_path / "student", cfg)
    metrics = json.loads((out / "metrics.json").read_text())
    losses = [h["loss"] for h in metrics["history"]]
    assert losses[-1] < losses[0], losses
    assert {"hard", "soft"} <= set(metrics["distill"]["final_losses"])
    meta = json.loads((out / "ndogo.json").read_text())
    assert meta["kind"] == "hf" and meta["stage"] == "distill" and meta["route"] == "task"
    assert meta["student_shape"] == {"layers": 2, "layer_map": [0, 2], "hidden": 16, "heads": 2, "intermediate": 32}
    loaded = load_runner(out)
    assert meta["student_params"] == loaded.params()[0] < meta["teacher_params"]
    assert meta["size_bytes"] < meta["teacher_size_bytes"] and teacher_record(out)["teacher"] == str(teacher)


def test_task_student_stops_when_dev_stops_improving(tiny_corpus: Path, tmp_path: Path) -> None:
    """patience: a student that cannot learn (lr 1e-12) stops one epoch after its first, not after six."""
    teacher = make_tiny_model(tmp_path / "teacher", layers=2, hidden=32, heads=4)
    cfg = DistillConfig(mode="task", student_layers=1, data=str(tiny_corpus), langs=["hau"], epochs=6, patience=1,
                        lr=1e-12, batch_size=8, threads=1, show_progress=False)
    metrics = json.loads((distill(teacher, tmp_path / "student", cfg) / "metrics.json").read_text())
    assert metrics["best_epoch"] == 1 and metrics["epochs_run"] == 2
    assert metrics["config"]["patience"] == 1
    # an unset patience leaves the reuse key of students made before the option existed unchanged
    assert "patience" not in DistillConfig(mode="task", langs=["hau"]).identity()
    assert DistillConfig(mode="task", langs=["hau"], patience=2).identity()["patience"] == 2


def test_task_distillation_refuses_a_teacher_with_other_labels(tiny_corpus: Path, tmp_path: Path) -> None:
    teacher = make_tiny_model(tmp_path / "t", labels=["O", "B-X", "I-X"])
    with pytest.raises(ValueError, match="labels"):
        distill(teacher, tmp_path / "s", DistillConfig(mode="task", student_layers=1, data=str(tiny_corpus),
                                                        langs=["hau"], show_progress=False))


def test_cli_distill(tiny_corpus: Path, tmp_path: Path) -> None:
    teacher = make_tiny_model(tmp_path / "teacher", layers=2)
    out = tmp_path / "student"
    result = runner.invoke(app, ["distill", "--teacher", str(teacher), "--mode", "task", "--layer-map", "1",
                                 "--data", str(tiny_corpus), "--lang", "hau", "--epochs", "1", "--out", str(out),
                                 "--threads", "1"])
    assert result.exit_code == 0, result.output
    assert "fewer than the teacher's" in result.output
    assert json.loads((out / "ndogo.json").read_text())["student_shape"]["layer_map"] == [1]
    bad = runner.invoke(app, ["distill", "--teacher", str(teacher), "--mode", "agnostic", "--student-layers", "1",
                              "--out", str(tmp_path / "x")])
    assert bad.exit_code == 2 and "needs --corpus" in bad.output
    assert "Examples" in runner.invoke(app, ["distill", "--help"]).output


def test_teacher_cache_matches_the_batched_teacher_and_runs_each_window_once() -> None:
    torch.manual_seed(3)
    teacher = BertForTokenClassification(tiny_config(num_labels=5)).eval()
    ids = torch.tensor([[101, 2023, 2003, 102, 0], [101, 2023, 2003, 2009, 102]])
    mask = (ids != 0).long()
    cache = TeacherCache(teacher)
    got = cache(ids, mask)
    with torch.no_grad():
        want = teacher(input_ids=ids, attention_mask=mask).logits
    assert torch.allclose(got[mask.bool()], want[mask.bool()], atol=1e-5) and len(cache.logits) == 2
    calls = []
    teacher.register_forward_hook(lambda *_: calls.append(1))
    assert torch.equal(cache(ids.flip(0), mask.flip(0)), got.flip(0)) and not calls


def test_bad_precision_fails_before_the_corpus_is_read(tmp_path: Path) -> None:
    from ndogo.compress.distill import DistillConfig

    with pytest.raises(ValueError, match="precision must be one of auto, bf16, fp32, fp16, not 'fp8'"):
        DistillConfig(mode="agnostic", corpus=str(tmp_path / "absent"), student_layers=1, precision="fp8")
