"""Teacher-labelled text for task students (#16): the teacher's own predictions, no dev/test text, exact resume."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ndogo.compress.augment import CACHE, raw_sentences, read_unlabeled, teacher_label
from ndogo.data.corpus import load_corpus
from ndogo.evaluate import predict_tags
from ndogo.models.runner import load_runner


def test_raw_text_is_split_like_predict_and_cut_at_full_stops() -> None:
    lines = ["Musa ya je Kano. Audu ya tafi Abuja! Ok", "Shugaban ƙasa ya ce: 'yan sanda sun iso ?"]
    assert raw_sentences(lines) == [["Musa", "ya", "je", "Kano", "."], ["Audu", "ya", "tafi", "Abuja", "!"],
                                    ["Shugaban", "ƙasa", "ya", "ce", ":", "'yan", "sanda", "sun", "iso", "?"]]


def test_lines_holding_a_dev_or_test_sentence_are_dropped(tiny_corpus: Path, tmp_path: Path) -> None:
    corpus = load_corpus(tiny_corpus, "hau", ("dev", "test"))
    dev, test = corpus.splits["dev"][0].tokens, corpus.splits["test"][0].tokens
    text = tmp_path / "hau.txt"
    text.write_text("\n".join(["Labari na farko game da Kano da Abuja .", "Wani labari: " + " ".join(dev),
                               " ".join(test) + " Sannan kuma wani abu .", "Labari na biyu game da Musa Bello ."])
                    + "\n", encoding="utf-8")
    held = [s.tokens for split in corpus.splits.values() for s in split]
    sentences, read = read_unlabeled([text], "hau", held)
    assert read["dropped_eval_lines"] == 2 and read["lines"] == 4
    flat = [" ".join(s) for s in sentences]
    assert flat == ["Labari na farko game da Kano da Abuja .", "Labari na biyu game da Musa Bello ."]
    # a folder of <lang>.txt works the same way
    assert read_unlabeled([tmp_path], "hau", held)[0] == sentences


def test_teacher_labels_are_what_the_teacher_predicts_and_resume_exactly(tiny_model: Path, tmp_path: Path,
                                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    import ndogo.compress.augment as augment

    monkeypatch.setattr(augment, "CHUNK", 3)
    sentences = [["Musa", "ya", "je", "Kano", str(i), "."] for i in range(8)]
    runner = load_runner(tiny_model)
    expected, _ = predict_tags(runner, sentences)
    straight = teacher_label(runner, sentences, tmp_path / "a.jsonl", show_progress=False)
    assert [s.tags for s in straight] == expected and [s.tokens for s in straight] == sentences

    # killed after the first chunk, with a half-written line: the rest is labelled, nothing twice
    lines = (tmp_path / "a.jsonl").read_text(encoding="utf-8").splitlines()
    (tmp_path / "b.jsonl").write_text("\n".join(lines[:3]) + "\n" + lines[3][:10], encoding="utf-8")
    calls = []
    import ndogo.models.tagging as ev

    original = ev.predict_tags
    monkeypatch.setattr(ev, "predict_tags", lambda r, chunk, b=32: calls.append(len(chunk)) or original(r, chunk, b))
    resumed = teacher_label(runner, sentences, tmp_path / "b.jsonl", show_progress=False)
    assert calls == [3, 2]  # sentences 4-8 only
    assert [s.tags for s in resumed] == expected
    assert (tmp_path / "b.jsonl").read_text(encoding="utf-8") == (tmp_path / "a.jsonl").read_text(encoding="utf-8")
    with pytest.raises(ValueError, match="labels of other sentences"):
        teacher_label(runner, sentences[::-1], tmp_path / "b.jsonl", show_progress=False)


def test_task_student_learns_from_teacher_labelled_text(tiny_model: Path, tiny_corpus: Path, tmp_path: Path) -> None:
    from ndogo.compress.distill import DistillConfig, distill
    from ndogo.models.loading import read_meta

    text = tmp_path / "hau.txt"
    text.write_text("".join(f"Labari {i} game da Musa Bello a Kano ranar Litinin .\n" for i in range(40)),
                    encoding="utf-8")
    out = distill(tiny_model, tmp_path / "student", DistillConfig(
        mode="task", student_layers=1, data=str(tiny_corpus), langs=["hau"], unlabeled=[str(text)],
        unlabeled_limit=25, max_steps=4, batch_size=8, threads=1, show_progress=False))
    meta = read_meta(out)
    read = meta["data"]["unlabeled"]
    assert read["sentences"] == 25 and read["hau"]["lines"] == 40 and read["hau"]["sha256"]
    cache = [json.loads(line) for line in (out / CACHE).read_text(encoding="utf-8").splitlines()]
    assert len(cache) == 25
    from ndogo.models.runner import model_files

    assert CACHE not in {p.name for p in model_files(out)}  # the labels are not part of the model's size


# layer-wise losses (#16.2)

def _batch(tokenizer, texts):
    enc = tokenizer(texts, padding=True, return_tensors="pt")
    return {"input_ids": enc["input_ids"], "attention_mask": enc["attention_mask"]}


def test_layer_losses_are_zero_for_a_student_equal_to_its_teacher(tiny_model: Path) -> None:
    import torch

    from ndogo.compress.distill import Shape, attention_loss, hidden_state_loss, make_student
    from ndogo.models.loading import load_for_tokens, load_tokenizer

    teacher = load_for_tokens(tiny_model).eval()
    teacher.set_attn_implementation("eager")
    student = make_student(teacher, Shape([0, 1])).eval()  # every layer, full width: the teacher itself
    student.set_attn_implementation("eager")
    batch = _batch(load_tokenizer(tiny_model), ["Musa ya je Kano .", "Audu ya tafi Abuja ranar Litinin ."])
    with torch.no_grad():
        t = teacher(**batch, output_hidden_states=True, output_attentions=True)
        s = student(**batch, output_hidden_states=True, output_attentions=True)
    mask = batch["attention_mask"].bool()
    assert hidden_state_loss(s.hidden_states, t.hidden_states, [0, 1], mask, None).item() < 1e-10
    assert abs(attention_loss(s.attentions, t.attentions, [0, 1], mask).item()) < 1e-6
    # a one-layer student mapped to the teacher's second layer is not the teacher: both losses are positive
    small = make_student(teacher, Shape([1])).eval()
    small.set_attn_implementation("eager")
    with torch.no_grad():
        o = small(**batch, output_hidden_states=True, output_attentions=True)
    assert hidden_state_loss(o.hidden_states, t.hidden_states, [1], mask, None).item() > 0
    assert attention_loss(o.attentions, t.attentions, [1], mask).item() > 0


def test_layer_losses_fall_in_training_and_are_recorded(tiny_model: Path, tiny_corpus: Path, tmp_path: Path) -> None:
    # a teacher whose first layer matters (random tiny layers are close to the identity), so that a student
    # made of its second layer alone starts far from it
    import shutil

    import torch
    from safetensors.torch import load_file, save_file

    from ndogo.compress.distill import DistillConfig, Shape, attention_loss, distill, hidden_state_loss, make_student
    from ndogo.models.loading import load_for_tokens, load_tokenizer, read_meta

    teacher_dir = tmp_path / "teacher"
    shutil.copytree(tiny_model, teacher_dir)
    weights = load_file(teacher_dir / "model.safetensors")
    for name in list(weights):
        if ".layer.0." in name and name.endswith("dense.weight"):
            weights[name] = weights[name] * 40
    save_file(weights, teacher_dir / "model.safetensors", metadata={"format": "pt"})
    tiny_model = teacher_dir
    config = DistillConfig(mode="task", layer_map=[1], data=str(tiny_corpus), langs=["hau"], hidden_weight=1.0,
                           attention_weight=1.0, soft_weight=0.0, hard_weight=0.0, max_steps=40, lr=3e-3,
                           batch_size=8, threads=1, show_progress=False)
    out = distill(tiny_model, tmp_path / "student", config)
    meta = read_meta(out)
    assert meta["losses"]["hidden_weight"] == 1.0 and meta["losses"]["attention_weight"] == 1.0
    assert {"hidden", "attention"} <= set(meta["final_losses"])
    teacher = load_for_tokens(tiny_model).eval()
    teacher.set_attn_implementation("eager")
    before = make_student(teacher, Shape([1])).eval()
    after = load_for_tokens(out).eval()
    batch = _batch(load_tokenizer(tiny_model), ["Musa ya je Kano .", "Shugaban kasa ya isa Abuja ranar Litinin ."])
    mask = batch["attention_mask"].bool()
    losses = []
    for model in (before, after):
        model.set_attn_implementation("eager")
        with torch.no_grad():
            t = teacher(**batch, output_hidden_states=True, output_attentions=True)
            s = model(**batch, output_hidden_states=True, output_attentions=True)
        losses.append((hidden_state_loss(s.hidden_states, t.hidden_states, [1], mask, None).item(),
                       attention_loss(s.attentions, t.attentions, [1], mask).item()))
    assert losses[1][0] < losses[0][0] and losses[1][1] < losses[0][1], losses


def test_a_folder_without_the_language_adds_nothing_and_says_so(tmp_path: Path) -> None:
    # a language nobody collected raw text for (a new SIB-200 or MasakhaPOS language) still distils: the pool
    # folder adds no sentence and the record names it; a file named outright must exist
    (tmp_path / "hau.txt").write_text("Labari na farko game da Kano da Abuja .\n", encoding="utf-8")
    sentences, read = read_unlabeled([tmp_path], "som_Latn", [])
    assert sentences == [] and read["missing"] == [str(tmp_path.resolve())] and read["sentences"] == 0
    assert "missing" not in read_unlabeled([tmp_path], "hau", [])[1]
    with pytest.raises(FileNotFoundError, match="no raw text for 'som_Latn'"):
        read_unlabeled([tmp_path / "som.txt"], "som_Latn", [])
