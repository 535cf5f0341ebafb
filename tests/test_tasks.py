"""The task axis: POS, topic and sentiment read, train, score and predict through the code NER uses.

Each task's corpus is a small sample of its real data (../shared/data); the model is the suite's
tiny BERT with minilm's tokenizer, so the numbers mean nothing and only the paths are tested.
"""

from __future__ import annotations

import ast
import json
from pathlib import Path
from typing import ClassVar

import pytest

from ndogo.data.conll import DataError
from ndogo.evaluate import evaluate
from ndogo.tasks import TASKS, Task, detect_task, get_task, register, task_names
from ndogo.tasks._sequence import SequenceTask
from ndogo.train.finetune import FinetuneConfig, finetune
from tests.conftest import SHARED, need_shared

SRC = Path(__file__).resolve().parents[1] / "src" / "ndogo"


def sample(tmp: Path, corpus: str, lang: str, n: dict[str, int]) -> Path:
    """The first lines/sentences of each split of a real corpus, in its own layout."""
    need_shared()
    src, root = SHARED / corpus / lang, tmp / corpus
    (root / lang).mkdir(parents=True)
    for f in src.iterdir():
        text = f.read_text(encoding="utf-8")
        split = f.stem
        if f.suffix == ".txt" and split in n:  # CoNLL: whole sentences
            text = "\n\n".join(text.strip().split("\n\n")[: n[split]]) + "\n"
        elif f.suffix == ".tsv" and split in n:
            text = "\n".join(text.split("\n")[: n[split] + 1]) + "\n"
        (root / lang / f.name).write_text(text, encoding="utf-8")
    return root


@pytest.fixture(scope="module")
def corpora(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[Path, str]]:
    tmp = tmp_path_factory.mktemp("tasks")
    n = {"train": 48, "dev": 16, "test": 16}
    return {"pos": (sample(tmp, "masakhapos", "hau", n), "hau"),
            "topic": (sample(tmp, "sib200", "hau_Latn", n), "hau_Latn"),
            "sentiment": (sample(tmp, "afrisenti", "hau", n), "hau")}


def test_every_real_corpus_is_read_as_its_task() -> None:
    shared = need_shared()
    for corpus, lang, name in (("masakhaner", "hau", "ner"), ("masakhapos", "yor", "pos"),
                               ("sib200", "eng_Latn", "topic"), ("afrisenti", "swa", "sentiment"),
                               ("afrisenti", "orm", "sentiment")):
        task = detect_task(str(shared / corpus), lang)
        assert task.name == name, (corpus, lang)
        got = task.load(str(shared / corpus), lang)
        assert got.splits["test"] and task.labels([got])
    orm = get_task("sentiment").load(str(shared / "afrisenti"), "orm")
    assert "train" not in orm.splits and any("empty file" in p.message for p in orm.problems)
    assert get_task("topic").labels([get_task("topic").load(str(shared / "sib200"), "hau_Latn")])[0] == \
        "science/technology"  # labels.txt's order: label ids do not depend on which texts a split holds


@pytest.mark.parametrize("empty", ["train", "dev", "test"])
def test_an_empty_split_file_is_named_as_empty_not_missing(empty: str, tiny_model: Path, tmp_path: Path) -> None:
    """AfriSenti's orm and tir ship a train file holding only its header: `finetune` said "no train split",
    as if the file were absent. The error names the file, says it holds no examples and, for train, that
    such a language is scored zero-shot; an empty dev or test file is named the same way."""
    from typer.testing import CliRunner

    from ndogo.cli import app

    folder = tmp_path / "afrisenti" / "orm"
    folder.mkdir(parents=True)
    rows = "".join(f"{w} {i}\t{lab}\n" for i, (w, lab) in enumerate([("good", "positive"), ("bad", "negative")] * 4))
    for split in ("train", "dev", "test"):
        (folder / f"{split}.tsv").write_text("tweet\tlabel\n" + ("" if split == empty else rows), encoding="utf-8")
    data = str(tmp_path / "afrisenti")
    if empty == "test":
        args = ["evaluate", str(tiny_model), "--data", data, "--lang", "orm", "--task", "sentiment", "--no-speed"]
    else:
        args = ["finetune", "--model", str(tiny_model), "--data", data, "--lang", "orm", "--out",
                str(tmp_path / "run"), "--max-steps", "1"]
    res = CliRunner().invoke(app, args)
    assert res.exit_code == 2 and "Traceback" not in res.output
    (line,) = [x for x in res.output.splitlines() if x.strip()]
    assert line.startswith(f"error: {folder / f'{empty}.tsv'}: the {empty} file holds no examples"), line
    assert ("zero-shot" in line and "[evaluate] transfer" in line) == (empty == "train")
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize(("task", "name", "content", "where", "says"), [
    ("pos", "train.txt", "Musa PROPN\nya VRB\n", ":2", "not a Universal Dependencies POS tag"),
    ("topic", "train.tsv", "index_id\tcategory\ttext\n1\tsports\tA\n2\tsports\n", ":3", "2 tab-separated fields"),
    ("topic", "train.tsv", "index_id\tcategory\ttext\n1\tweather\tA text\n", ":2", "label 'weather'"),
    ("sentiment", "train.tsv", "tweet\tpolarity\nhello\tpositive\n", ":1", "no label column"),
    ("sentiment", "train.tsv", "tweet\tlabel\n \tpositive\n", ":2", "empty text"),
])
def test_bad_rows_are_refused_with_file_and_line(tmp_path: Path, task: str, name: str, content: str,
                                                 where: str, says: str) -> None:
    folder = tmp_path / "xx"
    folder.mkdir()
    (folder / name).write_text(content, encoding="utf-8")
    if task == "topic":
        (folder / "labels.txt").write_text("sports\npolitics\n", encoding="utf-8")
    with pytest.raises(DataError) as err:
        get_task(task).load(str(tmp_path), "xx")
    assert f"{folder / name}{where}:" in str(err.value) and says in str(err.value)


@pytest.mark.parametrize(("task", "content"), [
    ("topic", "index_id\tcategory\ttext\n1\tsports\tA match was won\n2\tpolitics\tThe vote\n"),
    ("sentiment", "tweet\tlabel\nwhat a day\tpositive\nso sad\tnegative\n"),
], ids=["topic", "sentiment"])
def test_a_tsv_with_crlf_line_ends_or_a_bom_reads_as_the_plain_file(tmp_path: Path, task: str, content: str) -> None:
    """A TSV saved on Windows (CRLF, often with a BOM) holds the same texts: its header is not refused
    for a `text\r` column, nor does a label or text keep the carriage return."""
    read = {}
    for name, raw in (("lf", content.encode()), ("crlf", content.replace("\n", "\r\n").encode()),
                      ("bom-crlf", b"\xef\xbb\xbf" + content.replace("\n", "\r\n").encode()),
                      ("spaced-header", content.replace("\t", " \t", 1).encode())):
        folder = tmp_path / name / "xx"
        folder.mkdir(parents=True)
        (folder / "test.tsv").write_bytes(raw)
        if task == "topic":
            (folder / "labels.txt").write_text("sports\npolitics\n", encoding="utf-8")
        corpus = get_task(task).load(str(tmp_path / name), "xx", ("test",))
        read[name] = [(t.text, t.label) for t in corpus.splits["test"]]
    assert read["lf"] and len(read["lf"]) == 2
    assert read["crlf"] == read["lf"] and read["bom-crlf"] == read["lf"] and read["spaced-header"] == read["lf"]


@pytest.mark.parametrize("name", ["pos", "topic", "sentiment"])
def test_finetune_evaluate_and_predict_each_task(name: str, corpora: dict[str, tuple[Path, str]],
                                                 tiny_model: Path, tmp_path: Path) -> None:
    data, lang = corpora[name]
    task = get_task(name)
    out = tmp_path / "run"
    cfg = FinetuneConfig(model=str(tiny_model), data=str(data), langs=[lang], out=str(out), epochs=2, lr=1e-3,
                         batch_size=8, threads=1)  # --task left unset: told by the files
    metrics = finetune(cfg, show_progress=False)
    assert metrics["task"] == name and metrics["metric"] == task.metric
    assert [f"dev_{task.metric}" in h for h in metrics["history"]] == [True, True]
    assert json.loads((out / "ndogo.json").read_text())["task"] == name
    row = evaluate(out, str(data), lang, speed=False)
    assert row["metric"] == task.metric and all(0.0 <= row[m] <= 1.0 for m in task.metrics)
    gold = task.load(str(data), lang)
    assert row["sentences"] == len(gold.splits["test"])

    import ndogo

    got = ndogo.load(out).predict(["Musa ya je Kano ranar Litinin."])[0]
    if task.output == "label":
        assert got.label in task.labels([gold]) and 0 < got.score <= 1
        from transformers import pipeline

        # the saved model is what transformers' pipeline expects of a text classifier, and agrees
        hf = pipeline("text-classification", model=str(out), device="cpu")
        assert hf("Musa ya je Kano ranar Litinin.")[0]["label"] == got.label
    else:
        assert [w.text for w in got] == ["Musa", "ya", "je", "Kano", "ranar", "Litinin", "."]
        assert all(w.tag in task.labels([gold]) for w in got)


def test_the_cli_trains_and_scores_a_task_given_only_its_folder(corpora: dict[str, tuple[Path, str]],
                                                               tiny_model: Path, tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from ndogo.cli import app

    data, lang = corpora["topic"]
    runner = CliRunner()
    res = runner.invoke(app, ["finetune", "--model", str(tiny_model), "--data", str(data), "--lang", lang,
                              "--out", str(tmp_path / "m"), "--epochs", "1", "--threads", "1"])
    assert res.exit_code == 0, res.output
    assert "best dev accuracy" in res.output
    res = runner.invoke(app, ["evaluate", str(tmp_path / "m"), "--data", str(data), "--lang", lang, "--no-speed",
                              "--json"])
    assert res.exit_code == 0, res.output
    assert json.loads(res.output[res.output.index("{"):])["metric"] == "accuracy"
    res = runner.invoke(app, ["finetune", "--model", str(tiny_model), "--data", str(data), "--lang", lang,
                              "--out", str(tmp_path / "n"), "--task", "parsing"])
    assert res.exit_code != 0 and "unknown task 'parsing'" in res.output


def test_a_new_task_is_one_module(tiny_model: Path, corpora: dict[str, tuple[Path, str]], tmp_path: Path) -> None:
    """A task the code has never seen (language identification of a text, from the topic files' texts)
    trains, scores and predicts by declaring one class: no other code learns its name."""
    data, lang = corpora["topic"]
    folder = tmp_path / "langid" / "xx"
    folder.mkdir(parents=True)
    for split in ("train", "dev", "test"):
        rows = (data / lang / f"{split}.tsv").read_text(encoding="utf-8").strip().split("\n")[1:]
        lines = ["text\tlanguage"] + [f"{r.split(chr(9))[2]}\t{'hau' if i % 2 else 'eng'}" for i, r in enumerate(rows)]
        (folder / f"{split}.tsv").write_text("\n".join(lines) + "\n", encoding="utf-8")

    class LanguageId(SequenceTask):
        name = "langid-test"
        metric = "accuracy"
        metric_label = "accuracy"
        metrics = ("accuracy", "macro_f1")
        pipeline_tag = "text-classification"
        title = "Language Identification"
        metric_names: ClassVar[dict[str, str]] = {"accuracy": "Accuracy", "macro_f1": "Macro-F1"}
        card_tags = ("language-identification",)
        summary = "the language of a text"
        label_columns = ("language",)

        def looks_like(self, folder: Path) -> bool:
            return self.header_has(folder, self.label_columns)

    register(LanguageId())
    try:
        assert detect_task(str(tmp_path / "langid"), "xx").name == "langid-test"
        out = tmp_path / "run"
        metrics = finetune(FinetuneConfig(model=str(tiny_model), data=str(tmp_path / "langid"), langs=["xx"],
                                          out=str(out), epochs=1, lr=1e-3, batch_size=8, threads=1),
                           show_progress=False)
        assert metrics["task"] == "langid-test"
        assert evaluate(out, str(tmp_path / "langid"), "xx", speed=False)["metric"] == "accuracy"
    finally:
        TASKS.pop("langid-test")


def test_no_code_outside_the_tasks_package_names_a_task() -> None:
    """What differs per task lives in its module: a task's name as a string anywhere else is a branch
    on it, the thing the axis removes (one new module per task holds only while this does)."""
    names = set(task_names())
    found = []
    for path in SRC.rglob("*.py"):
        if "tasks" in path.relative_to(SRC).parts:
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Constant) and node.value in names:
                found.append(f"{path.relative_to(SRC)}:{node.lineno}: {node.value!r}")
    assert not found, found


# the commands that read any task's corpus (the rest read NER's alone: prune-sweep, which loads MasakhaNER's files)
TASK_COMMANDS = [("finetune",), ("evaluate",), ("compress",), ("sweep",), ("distill",), ("trim-vocab",), ("quantize",),
                 ("bench", "latency"), ("bench", "compare"), ("bench", "serve-load"), ("bench", "batch-invariance")]


@pytest.mark.parametrize("path", TASK_COMMANDS, ids=[" ".join(p) for p in TASK_COMMANDS])
def test_a_command_that_serves_every_task_does_not_ask_for_a_masakhaner_folder(path: tuple[str, ...]) -> None:
    """`--data`'s help once read "Local MasakhaNER-layout folder" on commands that compress and measure a
    topic or sentiment model from its TSV corpus: the help must name the layout they read."""
    import typer

    from ndogo.cli import app

    command = typer.main.get_command(app)
    for name in path:
        command = command.commands[name]  # type: ignore[attr-defined]
    data = next(p for p in command.params if "--data" in getattr(p, "opts", []))
    assert ".tsv" in data.help and "MasakhaNER-layout" not in data.help and "MasakhaNER layout" not in data.help


def test_ship_help_describes_every_tasks_card() -> None:
    """The card's corpus defaults to the task's (Davlan/sib200 for topic), not MasakhaNER's alone; the bundle is
    checked against RUN's predictions, entities or not."""
    import typer

    from ndogo.cli import app

    ship = typer.main.get_command(app).commands["ship"]  # type: ignore[attr-defined]
    assert "the task's corpus" in next(p for p in ship.params if "--dataset" in p.opts).help
    assert "finds the same entities" not in ship.help and "dev F1 overall" not in ship.help


def test_a_language_docs_tasks_says_no_config_names_is_named_by_none() -> None:
    """docs/tasks.md's unseen-language check once said som_Latn and mos were named by "no config or committed
    row": the POS atlas configs list mos, and both have committed rows. What it claims now holds."""
    import csv
    import re
    import tomllib

    root = SRC.parents[1]
    text = " ".join((root / "docs" / "tasks.md").read_text(encoding="utf-8").split())
    claims = re.findall(r"\(`(\w+)`\),? which (no config(?: or committed row)?) names", text)
    assert claims, "docs/tasks.md no longer says which language no config names"
    configs = {c: tomllib.loads(c.read_text(encoding="utf-8")).get("languages", [])
               for c in (root / "configs").glob("*.toml")}
    for lang, claim in claims:
        assert not [c.name for c, named in configs.items() if lang in named], (lang, claim)
        if "committed row" in claim:
            for rows in (root / "docs" / "bench").glob("*.csv"):
                with rows.open(encoding="utf-8") as f:
                    assert lang not in {r.get("lang") for r in csv.DictReader(f)}, (lang, rows)


def test_every_task_declares_what_the_rest_of_the_code_asks() -> None:
    for name in task_names():
        task = get_task(name)
        assert isinstance(task, Task)
        for attr in ("head", "metric", "metric_label", "metrics", "pipeline_tag", "output", "title",
                     "metric_names", "card_tags", "summary"):
            assert getattr(task, attr), (name, attr)
        assert task.metric in task.metrics and set(task.metrics) <= set(task.metric_names)


STAGES = [
    "quantize:method=dynamic-int8", "quantize:method=onnx-int8", "quantize:method=llm-int8", "export",
    "prune:sparsity=0.5,recover_epochs=1", "prune:method=heads,sparsity=0.5",
    "trim:corpus={mono},keep=3000", "distill:mode=task,student_layers=1,epochs=1",
    "distill:mode=task,student_layers=1,student_hidden=16,epochs=1,unlabeled={mono},unlabeled_limit=40",
]


@pytest.fixture(scope="module")
def teachers(corpora: dict[str, tuple[Path, str]], tiny_model: Path,
             tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    out = {}
    for name in ("pos", "topic"):
        data, lang = corpora[name]
        out[name] = tmp_path_factory.mktemp(f"teacher-{name}") / "run"
        finetune(FinetuneConfig(model=str(tiny_model), data=str(data), langs=[lang], out=str(out[name]), epochs=1,
                                lr=1e-3, batch_size=8, threads=1), show_progress=False)
    return out


@pytest.mark.parametrize(("model", "data"), [("topic", "sentiment"), ("pos", "topic"), ("topic", "pos")])
def test_evaluate_names_a_corpus_of_another_task(model: str, data: str, corpora: dict[str, tuple[Path, str]],
                                                 teachers: dict[str, Path]) -> None:
    """A model scored on another task's corpus is told so, naming both tasks, where it once failed on a detail
    ("no text column in the header 'tweet\tlabel'", "no split files (test.txt)") that hid the mistake."""
    from typer.testing import CliRunner

    from ndogo.cli import app

    root, lang = corpora[data]
    res = CliRunner().invoke(app, ["evaluate", str(teachers[model]), "--data", str(root), "--lang", lang,
                                   "--no-speed"])
    assert res.exit_code == 2 and "Traceback" not in res.output
    assert f"error: {root / lang}: holds {data} files, but the model was trained for {model}" in res.output
    assert evaluate(teachers[model], str(corpora[model][0]), corpora[model][1], speed=False)["metric"] == \
        get_task(model).metric  # its own task's corpus is scored as before


def test_predict_reads_a_corpus_tsv_by_its_text_column_and_refuses_it_as_plain_text(
        corpora: dict[str, tuple[Path, str]], teachers: dict[str, Path]) -> None:
    """`ndogo predict RUN -i sib200/<lang>/test.tsv` once labelled the header as a sentence, and every line
    with its id and gold label inside the text; now plain text refuses the header, and `--input-format tsv`
    labels the text column alone, each record keeping its line."""
    from typer.testing import CliRunner

    from ndogo.cli import app

    data, lang = corpora["topic"]
    split = data / lang / "test.tsv"
    gold = get_task("topic").load(str(data), lang, ("test",)).splits["test"]
    runner = CliRunner()
    plain = runner.invoke(app, ["predict", str(teachers["topic"]), "-i", str(split)])
    assert plain.exit_code == 2 and f"{split}:1: a TSV header" in plain.output and "--input-format tsv" in plain.output
    assert "Traceback" not in plain.output
    read = runner.invoke(app, ["predict", str(teachers["topic"]), "-i", str(split), "--input-format", "tsv"])
    assert read.exit_code == 0, read.output
    records = [json.loads(line) for line in read.stdout.splitlines()]
    assert [(r["line"], r["text"]) for r in records] == [(t.line, t.text) for t in gold]
    conll = runner.invoke(app, ["predict", str(teachers["topic"]), "-i", str(split), "--input-format", "tsv",
                                "--format", "conll"])
    assert conll.exit_code == 2 and "a text classifier's labels come as jsonl" in conll.output


@pytest.mark.parametrize("name", ["pos", "topic"])
@pytest.mark.parametrize("recipe", STAGES)
def test_every_stage_runs_on_a_task_and_keeps_it(name: str, recipe: str, corpora: dict[str, tuple[Path, str]],
                                                 teachers: dict[str, Path], tmp_path: Path) -> None:
    """Each compression of a POS tagger or a topic classifier loads, records the task, and is scored on it
    (ONNX kinds by the runtime that reads `output` from ndogo.json)."""
    from ndogo.compress.recipe import compress, parse_recipe
    from ndogo.models.loading import read_meta

    data, lang = corpora[name]
    mono = SHARED / "monolingual"
    out = tmp_path / "out"
    compress(teachers[name], parse_recipe(recipe.format(mono=mono)), out,
             {"data": str(data), "lang": lang, "langs": [lang], "seed": 1})
    meta = read_meta(out)
    task = get_task(name)
    assert meta["task"] == name and meta["output"] == task.output
    row = evaluate(out, str(data), lang, speed=False)
    assert row["metric"] == task.metric and 0.0 <= row[task.metric] <= 1.0
    assert row["sentences"] == 16


@pytest.mark.parametrize("name", ["pos", "topic"])
def test_the_torch_free_runtime_predicts_what_pytorch_does(name: str, corpora: dict[str, tuple[Path, str]],
                                                           teachers: dict[str, Path], tmp_path: Path) -> None:
    """An exported tagger or classifier gives, on ONNX Runtime alone, the tags or label of the PyTorch model."""
    from ndogo.compress.recipe import compress, parse_recipe
    from ndogo.deploy.predict import Predictor
    from ndogo.deploy.runtime import load
    from ndogo.models.runner import load_runner

    data, lang = corpora[name]
    out = tmp_path / "onnx"
    compress(teachers[name], parse_recipe("export"), out, {"data": str(data), "lang": lang, "langs": [lang]})
    texts = ["Musa ya je Kano ranar Litinin.", "Gwamnatin tarayya ta ce za ta gina sababbin makarantu a jihohi."]
    torch_side = Predictor(load_runner(teachers[name])).predict(texts)
    onnx_side = load(out, threads=1).predict(texts)
    if get_task(name).output == "label":
        assert [p.label for p in onnx_side] == [p.label for p in torch_side]
        assert [p.score for p in onnx_side] == pytest.approx([p.score for p in torch_side], abs=1e-3)
    else:
        assert [[(w.text, w.tag) for w in s] for s in onnx_side] == [[(w.text, w.tag) for w in s] for s in torch_side]


@pytest.mark.parametrize("name", ["pos", "topic"])
def test_a_shipped_bundle_reports_its_tasks_metrics_and_loads_in_the_tasks_pipeline(
        name: str, corpora: dict[str, tuple[Path, str]], teachers: dict[str, Path], tmp_path: Path) -> None:
    """ship: the card's metrics, pipeline tag and licence are the task's; transformers' pipeline for the
    task loads the bundle and agrees with ndogo predict on the card's own example."""
    from transformers import pipeline

    import ndogo
    from ndogo.deploy.ship import ship

    data, lang = corpora[name]
    task = get_task(name)
    run = tmp_path / "run"
    import shutil

    shutil.copytree(teachers[name], run)
    for split in ("test", "dev"):
        from ndogo.evaluate import save_eval

        save_eval(run, evaluate(run, str(data), lang, split=split, speed=False))
    out = ship(run, tmp_path / "bundle", lang=lang)
    card = (out / "README.md").read_text(encoding="utf-8")
    assert f"pipeline_tag: {task.pipeline_tag}" in card and f"license: {task.licence}" in card
    assert task.results_note in card and "| split | " + {"accuracy": "accuracy"}[task.metric] in card
    from ndogo.deploy.serve import ENDPOINTS

    assert f"curl -s localhost:8000{ENDPOINTS[task.output][0]} -d " in card  # the task's own endpoint
    example = json.loads((out / "ndogo.json").read_text())["bundle"]["example"]
    assert example  # a sentence of its own test set, read by the task's reader
    ours = ndogo.load(out).predict([example])[0]
    if task.output == "label":
        assert pipeline(task.pipeline_tag, model=str(out), device="cpu")(example)[0]["label"] == ours.label
    else:
        words = pipeline(task.pipeline_tag, model=str(out), device="cpu", aggregation_strategy="first")(example)
        # the pipeline merges neighbouring words of one tag into a group: compare the words it keeps alone
        tagged = {(w["start"], w["end"]): w["entity_group"] for w in words}
        alone = [w for w in ours if (w.start, w.end) in tagged]
        assert alone and all(tagged[(w.start, w.end)] == w.tag for w in alone)


@pytest.mark.parametrize(("name", "runtime"), [("pos", "torch"), ("topic", "torch"), ("topic", "onnx")])
def test_serve_answers_each_task_on_its_own_endpoint(name: str, runtime: str, corpora: dict[str, tuple[Path, str]],
                                                     teachers: dict[str, Path], tmp_path: Path) -> None:
    """A POS tagger on /v1/tags, a text classifier on /v1/labels: what predict gives, with serve's 4xx rules."""
    from dataclasses import asdict

    import httpx

    import ndogo
    from ndogo.deploy.serve import ENDPOINTS, ServeConfig, build_app
    from tests.test_serve import running

    model = teachers[name]
    if runtime == "onnx":
        from ndogo.compress.recipe import compress, parse_recipe

        data, lang = corpora[name]
        model = tmp_path / "onnx"
        compress(teachers[name], parse_recipe("export"), model, {"data": str(data), "lang": lang, "langs": [lang]})
    predictor = ndogo.load(model)
    task = get_task(name)
    path, one, many = ENDPOINTS[task.output]
    texts = ["Musa ya je Kano ranar Litinin.", "Gwamnati ta ce za ta gina makarantu."]
    want = [asdict(p) if not isinstance(p, list) else [asdict(w) for w in p] for p in predictor.predict(texts)]
    cfg = ServeConfig(max_batch=8, max_wait_ms=5, max_body_bytes=4000, max_text_chars=300, max_texts=10,
                      max_request_tokens=2000, workers=1)
    with running(build_app(predictor, cfg, name)) as url, httpx.Client(base_url=url, timeout=60) as client:
        single = client.post(path, json={"text": texts[0]})
        several = client.post(path, json={"texts": texts})
        empty = client.post(path, json={"text": " "})
        elsewhere = client.post("/v1/entities" if path != "/v1/entities" else "/v1/tags", json={"text": texts[0]})
    assert single.status_code == 200 and single.json() == {one: want[0]}
    assert several.status_code == 200 and several.json() == {many: want}
    assert empty.status_code == 422 and "error" in empty.json()
    assert elsewhere.status_code == 404


@pytest.mark.parametrize(("name", "counted", "sample_label"), [("pos", "tags", "NOUN"), ("topic", "labels", "sports"),
                                                               ("sentiment", "labels", "negative")])
def test_data_stats_counts_what_each_task_annotates(name: str, counted: str, sample_label: str,
                                                    corpora: dict[str, tuple[Path, str]]) -> None:
    from typer.testing import CliRunner

    from ndogo.cli import app

    data, lang = corpora[name]
    res = CliRunner().invoke(app, ["data", "stats", str(data), "--json"])
    assert res.exit_code == 0, res.output
    stats = json.loads(res.output[res.output.index("{"):])[lang]
    train = stats["splits"]["train"]
    assert train["sentences"] == 48 and sample_label in train["by_type"]
    assert train["entities"] == sum(train["by_type"].values())
    if counted == "tags":
        assert train["entities"] == train["tokens"]  # a tag per word
    else:
        assert train["entities"] == train["sentences"]  # a label per text
    assert not stats["unreadable"]


@pytest.mark.parametrize("name", ["pos", "topic", "sentiment"])
def test_data_stats_reads_one_language_folder_or_one_file_as_its_task(name: str,
                                                                      corpora: dict[str, tuple[Path, str]]) -> None:
    """The help's "or one language folder" held for NER's .txt folders only (a SIB-200 folder: "no language folder
    with train.txt"), and a file given alone was read as NER ("tag 'NOUN' is not in the IOB scheme")."""
    from typer.testing import CliRunner

    from ndogo.cli import app

    data, lang = corpora[name]
    ext = get_task(name).ext
    whole = CliRunner().invoke(app, ["data", "stats", str(data), "--json"])
    expected = json.loads(whole.output[whole.output.index("{"):])[lang]
    folder = CliRunner().invoke(app, ["data", "stats", str(data / lang), "--json"])
    assert folder.exit_code == 0, folder.output
    assert json.loads(folder.output[folder.output.index("{"):])[lang]["splits"] == expected["splits"]
    one = CliRunner().invoke(app, ["data", "stats", str(data / lang / f"train.{ext}"), "--json"])
    assert one.exit_code == 0, one.output
    got = json.loads(one.output[one.output.index("{"):])["train"]
    assert got["splits"]["train"] == expected["splits"]["train"] and not got["unreadable"]


def test_language_facts_read_every_tasks_corpus(corpora: dict[str, tuple[Path, str]]) -> None:
    """`ndogo data stats --facts` (the facts the atlases are read against) reads a POS or topic corpus with its
    task's reader: its sentences and words, the tokenizer's fertility, the script from SIB-200's code."""
    from ndogo.report.facts import language_facts_rows

    for name in ("pos", "topic"):
        root, lang = corpora[name]
        task = get_task(name)
        train = task.load(str(root), lang, ("train",)).splits["train"]
        (row,) = language_facts_rows(root, ["minilm"], [lang])
        assert row["train_sentences"] == len(train) > 0
        assert row["train_tokens"] == sum(len(x.tokens) for x in train)
        assert row["train_entities"] == 0 and 1.0 <= row["fertility_test"] < 5.0
        assert row["script"] == ("Latin" if name == "pos" else {"Latn": "Latin"}[lang.split("_")[1]])
