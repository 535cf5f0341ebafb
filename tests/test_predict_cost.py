"""The atlas's cost model (#15.4): a documented fit, a measured leave-one-out error, and recommend's answer."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
from typer.testing import CliRunner

from ndogo.cli import app
from ndogo.experiments.store import Store
from ndogo.report.predict_cost import FEATURES, predict_costs, ridge_fit, ridge_predict

from .conftest import need_shared
from .test_report import fake_row


def facts(i: float) -> dict[str, float]:
    return {"log_train_sentences": math.log(600 + 300 * i), "entities_per_100_tokens": 5 + (i % 3),
            "fertility_test": 1.5 + 0.1 * i, "unseen_subwords_test": 0.01 * (i % 4), "unknown_words_test": 0.0,
            "latin_script": 1.0}


def test_ridge_recovers_an_exact_linear_cost_and_predicts_a_new_language() -> None:
    points = [facts(i) for i in range(8)]
    y = [3 * f["fertility_test"] - 2 * f["log_train_sentences"] for f in points]
    model = ridge_fit(points, y, alpha=1e-9)
    new = facts(3.5)  # inside the atlas's range: far outside it the facts are clipped (see below)
    assert abs(ridge_predict(model, new) - (3 * new["fertility_test"] - 2 * new["log_train_sentences"])) < 1e-4
    assert len(model["w"]) == len(FEATURES)


def test_leave_one_out_error_is_measured_per_method() -> None:
    langs = ["a", "b", "c", "d", "e"]
    known = {lang: facts(i) for i, lang in enumerate(langs)}
    rows = []
    for i, lang in enumerate(langs):
        rows.append(fake_row(lang, "baseline", "", 1, 0.80, 90, 10, 0.0))
        rows.append(fake_row(lang, "int8", "quantize:method=onnx-int8", 1, 0.80 - 0.002 * i, 23, 3, 0.0))
    (pred,) = predict_costs(rows, known, facts(5))
    assert pred.recipe == "int8" and pred.languages == langs
    assert pred.loo_mae is not None and pred.loo_mae >= 0
    assert pred.size_x is not None and abs(pred.size_x - 90 / 23) < 1e-6
    assert -1.5 < pred.predicted_delta < 0  # the trend continues, shrunk towards the mean by the ridge


def test_recommend_predicts_for_a_language_without_rows(tmp_path: Path) -> None:
    data = need_shared() / "masakhaner"
    store = Store(tmp_path / "sweep")
    for i, lang in enumerate(["hau", "swa", "yor", "luo"]):
        for recipe, spec, f1 in (("baseline", "", 0.80), ("int8", "quantize:method=onnx-int8", 0.80 - 0.004 * i)):
            row = {**fake_row(lang, recipe, spec, 42, f1, 90 if recipe == "baseline" else 23, 10, 0.0),
                   "model_source": "minilm", "data": str(data)}
            store.put(row)
    store.close()
    runner = CliRunner()
    result = runner.invoke(app, ["recommend", str(tmp_path / "sweep"), "--lang", "ibo", "--max-f1-drop", "1"])
    assert result.exit_code == 0, result.output
    assert "ibo: no sweep rows; predicted from the atlas's 4 languages" in result.output
    assert "int8" in result.output and "ΔF1" in result.output and "±" in result.output
    assert "within 1 point(s)" in result.output  # the budget is read with the prediction's error counted
    as_json = runner.invoke(app, ["recommend", str(tmp_path / "sweep"), "--lang", "ibo", "--max-f1-drop", "1",
                                  "--json"])
    parsed = json.loads(as_json.stdout)
    assert parsed["facts"]["log_train_sentences"] > 7 and parsed["predictions"][0]["recipe"] == "int8"


def test_recommend_reads_committed_csv_rows_and_a_new_corpus(tmp_path: Path) -> None:
    """A MasakhaNER 2.0 language predicted from MasakhaNER 1.0 rows kept only as a CSV (the atlas's evidence)."""
    from ndogo.experiments.store import load_rows
    from ndogo.report.build import write_csv

    shared = need_shared()
    rows = []
    for i, lang in enumerate(["hau", "swa", "yor", "luo"]):
        for recipe, spec, f1 in (("baseline", "", 0.80), ("int8", "quantize:method=onnx-int8", 0.80 - 0.004 * i)):
            rows.append({**fake_row(lang, recipe, spec, 42, f1, 90 if recipe == "baseline" else 23, 10, 0.0),
                         "data": None})  # a CSV written before rows carried their corpus
    rows.append({**fake_row("ibo", "int8", "quantize:method=onnx-int8", 42, 0.5, 23, 10, 0.0), "status": "failed",
                 "f1": None, "error": "killed"})
    path = write_csv(rows, tmp_path / "rows.csv")
    back = load_rows(path)
    assert len(back) == 8 and back[0]["seed"] == 42 and isinstance(back[0]["size_bytes"], int)
    assert [r["error"] for r in load_rows(path, status=None) if r["status"] == "failed"] == ["killed"]
    runner = CliRunner()
    args = ["recommend", str(path), "--lang", "ewe", "--max-f1-drop", "1", "--data", str(shared / "masakhaner2")]
    refused = runner.invoke(app, args)  # these rows do not say which corpus hau's facts come from
    assert refused.exit_code != 0 and "--rows-data" in refused.output
    result = runner.invoke(app, [*args, "--rows-data", str(shared / "masakhaner")])
    assert result.exit_code == 0, result.output
    assert "ewe: no sweep rows; predicted from the atlas's 4 languages" in result.output
    bad = tmp_path / "bad.csv"
    bad.write_text(path.read_text().replace(",42,", ",forty-two,", 1))
    try:
        load_rows(bad)
    except ValueError as err:
        assert "bad.csv:2: column seed is 'forty-two'; must be a whole number" in str(err)
    else:
        raise AssertionError("a bad seed was read")


def test_a_near_constant_fact_cannot_blow_a_prediction_up() -> None:
    """unknown_words_test is 0.0001 on one atlas language and 0 on the others; a new language at 0.001
    used to sit far outside (ewe: ~1,800 spreads) and be predicted hundreds of points off. It is clipped and flagged."""
    from ndogo.report.predict_cost import format_predictions

    langs = ["a", "b", "c", "d"]
    known = {lang: facts(i) for i, lang in enumerate(langs)}
    known["d"]["unknown_words_test"] = 0.0001
    rows = []
    for i, lang in enumerate(langs):
        rows.append(fake_row(lang, "baseline", "", 1, 0.80, 90, 10, 0.0))
        rows.append(fake_row(lang, "int8", "quantize:method=onnx-int8", 1, 0.80 - 0.01 * i, 23, 3, 0.0))
    new = {**facts(1.5), "unknown_words_test": 0.05}
    (pred,) = predict_costs(rows, known, new)
    assert -5 < pred.predicted_delta < 2 and pred.outside == ["unknown_words_test"]
    assert pred.observed is not None and abs(pred.observed[0] + 3.0) < 1e-9 and pred.observed[1] == 0.0
    assert "extrapolates" in format_predictions("new", [pred], 1.0)


def test_the_facts_must_beat_the_plain_mean_or_the_mean_is_the_prediction() -> None:
    """A cost unrelated to the facts is predicted by the other languages' mean (and says so); a cost
    the facts explain is predicted by the fit. Both errors are measured leave-one-language-out."""
    from ndogo.report.predict_cost import format_predictions

    langs = [chr(ord("a") + i) for i in range(8)]
    known = {lang: facts(i) for i, lang in enumerate(langs)}
    noise = [0.3, -0.4, 0.1, -0.2, 0.4, -0.1, 0.2, -0.3]  # a change that has nothing to do with the facts
    rows = []
    for i, lang in enumerate(langs):
        rows.append(fake_row(lang, "baseline", "", 1, 0.80, 90, 10, 0.0))
        rows.append(fake_row(lang, "noisy", "quantize:method=onnx-int8", 1, 0.80 + noise[i] / 100, 23, 3, 0.0))
        rows.append(fake_row(lang, "linear", "prune:sparsity=0.5", 1, 0.80 - 0.02 * i, 70, 10, 0.0))
    preds = {p.recipe: p for p in predict_costs(rows, known, facts(3.5))}
    noisy, linear = preds["noisy"], preds["linear"]
    assert noisy.predictor == "mean" and abs(noisy.predicted_delta - sum(noise) / 8) < 1e-6
    # the printed error is the choice's, measured outside it: here worse than the mean's own error, as it
    # should be when the choice itself is noisy (choosing by an error makes that error optimistic)
    assert noisy.loo_mae is not None and noisy.loo_mae > noisy.mean_loo_mae
    assert linear.predictor == "facts" and linear.loo_mae is not None and linear.mean_loo_mae is not None
    assert linear.facts_loo_mae < linear.mean_loo_mae and linear.loo_mae < linear.mean_loo_mae
    assert not linear.beyond_measured and -14.0 <= linear.predicted_delta <= 0.0
    text = format_predictions("new", [noisy, linear], 1.0)
    assert " mean " in text and " facts " in text


def test_both_corpora_of_the_atlas_are_read_together_and_told_apart(tmp_path: Path) -> None:
    """`--also` the MasakhaNER 2.0 rows: wol measured on both corpora is two languages (wol, wol@masakhaner2),
    never averaged; every language of the second corpus says so; recommend chooses for any of them; the cost
    model fits on every language of both."""
    from ndogo.experiments.store import load_sources
    from ndogo.report.build import write_csv, write_report

    shared = need_shared()
    one, two = [], []
    for i, lang in enumerate(["hau", "swa", "wol"]):
        for recipe, spec, f1 in (("baseline", "", 0.80), ("int8", "quantize:method=onnx-int8", 0.80 - 0.004 * i)):
            one.append({**fake_row(lang, recipe, spec, 42, f1, 90 if recipe == "baseline" else 23, 10, 0.0),
                        "data": str(shared / "masakhaner")})
    for i, lang in enumerate(["wol", "ewe"]):
        for recipe, spec, f1 in (("baseline", "", 0.70), ("int8", "quantize:method=onnx-int8", 0.70 - 0.02 * i)):
            row = fake_row(lang, recipe, spec, 42, f1, 90 if recipe == "baseline" else 23, 10, 0.0)
            two.append({**row, "cell_id": row["cell_id"] + "-2", "data": str(shared / "masakhaner2")})
    a, b = write_csv(one, tmp_path / "mnr1.csv"), write_csv(two, tmp_path / "mnr2.csv")
    rows = load_sources([a, b])
    assert sorted({r["lang"] for r in rows}) == ["ewe@masakhaner2", "hau", "swa", "wol", "wol@masakhaner2"]

    write_report(a, tmp_path / "page", also=[b])
    page = (tmp_path / "page" / "results.md").read_text()
    assert "| wol | 80.00 |" in page and "| wol@masakhaner2 | 70.00 |" in page  # not 75.00 ± 7.07
    assert "wol@" not in (tmp_path / "page" / "results.csv").read_text()  # the rows themselves keep their code

    runner = CliRunner()
    chosen = runner.invoke(app, ["recommend", str(a), "--also", str(b), "--lang", "wol@masakhaner2",
                                 "--max-f1-drop", "1", "--json"])
    assert chosen.exit_code == 0, chosen.output
    choice = json.loads(chosen.stdout)
    assert choice["baseline_f1"] == 0.7 and "--lang wol " in choice["command"] and "masakhaner2" in choice["command"]
    ewe = runner.invoke(app, ["recommend", str(a), "--also", str(b), "--lang", "ewe", "--max-f1-drop", "5",
                              "--json"])  # measured on one corpus only: its code finds it
    assert ewe.exit_code == 0 and json.loads(ewe.stdout)["lang"] == "ewe@masakhaner2", ewe.output
    predicted = runner.invoke(app, ["recommend", str(a), "--also", str(b), "--lang", "fon", "--max-f1-drop", "1",
                                    "--data", str(shared / "masakhaner2")])
    assert predicted.exit_code == 0, predicted.output
    assert "fon: no sweep rows; predicted from the atlas's 5 languages" in predicted.output


def test_a_prediction_never_leaves_the_measured_range_without_saying_by_how_much() -> None:
    """A fit on a handful of languages predicted +2.53 for isiZulu where every language lost 0.13-6.30:
    the prediction is clipped to the measured range and the answer says how far the fit went beyond it."""
    from ndogo.report.predict_cost import format_predictions

    langs = [chr(ord("a") + i) for i in range(6)]
    known = {lang: facts(i) for i, lang in enumerate(langs)}
    rows = []
    for i, lang in enumerate(langs):
        rows.append(fake_row(lang, "baseline", "", 1, 0.80, 90, 10, 0.0))
        rows.append(fake_row(lang, "linear", "prune:sparsity=0.3", 1, 0.80 - 0.01 * (i + 1), 70, 10, 0.0))
    # a language with less training data than any atlas language: the trend says it loses less than all
    (pred,) = predict_costs(rows, known, {**facts(-1.5), "fertility_test": 1.35})
    assert pred.predictor == "facts" and pred.unclipped is not None and pred.unclipped > -1.0
    assert pred.predicted_delta == pytest.approx(-1.0) and pred.beyond_by == pytest.approx(pred.unclipped + 1.0)
    text = format_predictions("zul", [pred], 1.0)
    assert f"said {pred.unclipped:+.2f}, {pred.beyond_by:.2f} beyond anything measured: clipped" in text


def test_the_printed_error_is_measured_outside_the_choice() -> None:
    """Nested leave-one-language-out: each held-out language is predicted by the predictor the others chose."""
    from ndogo.report.predict_cost import _choose, _nested, _predict

    xs = [facts(i) for i in range(7)]
    y = [0.5, -1.2, 0.3, -0.1, 0.9, -0.8, 0.2]
    by_hand = []
    for i in range(7):
        rest_x, rest_y = xs[:i] + xs[i + 1:], y[:i] + y[i + 1:]
        by_hand.append(abs(_predict(_choose(rest_x, rest_y), rest_x, rest_y, xs[i]) - y[i]))
    assert _nested(xs, y) == pytest.approx(sum(by_hand) / 7)
    assert _nested(xs[:3], y[:3]) is None  # three languages leave two: no inner check to choose by


def test_rows_of_two_models_are_predicted_model_by_model(tmp_path: Path) -> None:
    """The README's command over the whole atlas (minilm and me5s rows) answered 'rows of several models;
    choose one with --model': it now predicts for each model, each from its own tokenizer's facts."""
    data = need_shared() / "masakhaner"
    store = Store(tmp_path / "sweep")
    for model, source in (("minilm", "minilm"), ("me5s", "me5s")):
        for i, lang in enumerate(["hau", "swa", "yor", "luo"]):
            for recipe, spec, f1 in (("baseline", "", 0.80), ("int8", "quantize:method=onnx-int8", 0.80 - 0.004 * i)):
                row = fake_row(lang, recipe, spec, 42, f1, 90 if recipe == "baseline" else 23, 10, 0.0)
                store.put({**row, "cell_id": f"{row['cell_id']}-{model}", "model": model, "model_source": source,
                           "data": str(data)})
    store.close()
    result = CliRunner().invoke(app, ["recommend", str(tmp_path / "sweep"), "--lang", "ibo", "--max-f1-drop", "1"])
    assert result.exit_code == 0, result.output
    assert "predicted on minilm from the atlas's 4 languages" in result.output
    assert "predicted on me5s from the atlas's 4 languages" in result.output
    assert "facts read in" in result.output  # a progress line per model (on stderr)
    as_json = json.loads(CliRunner().invoke(app, ["recommend", str(tmp_path / "sweep"), "--lang", "ibo",
                                                  "--max-f1-drop", "1", "--json"]).stdout)
    assert [m["model"] for m in as_json["models"]] == ["minilm", "me5s"]
    fert = [m["facts"]["fertility_test"] for m in as_json["models"]]
    assert fert[0] != fert[1]  # each model's own tokenizer


def test_language_facts_are_cached_until_the_corpus_changes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import shutil

    from ndogo.models.loading import load_tokenizer
    from ndogo.report import predict_cost

    root = tmp_path / "corpus"
    shutil.copytree(need_shared() / "masakhaner" / "luo", root / "luo")
    monkeypatch.setenv("NDOGO_CACHE", str(tmp_path / "cache"))
    calls = []
    compute = predict_cost._compute_facts
    monkeypatch.setattr(predict_cost, "_compute_facts", lambda *a: calls.append(a) or compute(*a))
    tokenizer = load_tokenizer("minilm")
    first = predict_cost.language_facts(root, "luo", tokenizer)
    assert predict_cost.language_facts(root, "luo", tokenizer) == first and len(calls) == 1
    with open(root / "luo" / "train.txt", "a", encoding="utf-8") as handle:
        handle.write("\nOchieng B-PER\n")
    changed = predict_cost.language_facts(root, "luo", tokenizer)
    assert len(calls) == 2 and changed["log_train_sentences"] > first["log_train_sentences"]


def test_the_committed_cost_model_check_is_what_the_committed_atlas_gives(tmp_path: Path) -> None:
    """docs/bench/cost-model-loo.csv is regenerated by one command; it must not go stale as atlas rows change."""
    shared = need_shared()
    root = Path(__file__).resolve().parent.parent
    bench = root / "docs" / "bench"
    command = ["recommend", str(bench / "atlas-minilm.csv"), "--also", str(bench / "atlas-mnr2.csv"), "--also",
               str(bench / "atlas-me5s.csv"), "--check-cost-model", "--data", str(shared / "masakhaner"),
               "--csv", str(tmp_path / "now.csv")]
    done = CliRunner().invoke(app, command)
    assert done.exit_code == 0, done.output
    committed = (bench / "cost-model-loo.csv").read_text()
    assert (tmp_path / "now.csv").read_text() == committed, (
        "docs/bench/cost-model-loo.csv is stale: ndogo recommend docs/bench/atlas-minilm.csv --also "
        "docs/bench/atlas-mnr2.csv --also docs/bench/atlas-me5s.csv --check-cost-model "
        "--data ../shared/data/masakhaner --csv docs/bench/cost-model-loo.csv")
    fits = {(line.split(",")[0], line.split(",")[1]) for line in committed.splitlines()[1:]}
    assert fits == {("minilm", "atlas-minilm.csv"), ("minilm", "atlas-minilm.csv + atlas-mnr2.csv"),
                    ("me5s", "atlas-me5s.csv")}
    assert "| minilm | atlas-minilm.csv + atlas-mnr2.csv | distil3 |" in done.stdout


def test_the_cost_model_check_fits_each_model_on_its_first_source_then_on_all_that_hold_it() -> None:
    from ndogo.report.predict_cost import _fits

    a, b, c = Path("atlas-minilm.csv"), Path("atlas-mnr2.csv"), Path("atlas-me5s.csv")
    found = [{"minilm"}, {"minilm"}, {"me5s"}]
    # models in the order the sources hold them; a model in one source is fitted once
    assert _fits([a, b, c], found, None) == [("minilm", [a]), ("minilm", [a, b]), ("me5s", [c])]
    assert _fits([c, a], [{"me5s"}, {"minilm"}], None) == [("me5s", [c]), ("minilm", [a])]
    assert _fits([a, b, c], found, "me5s") == [("me5s", [c])]


def test_recommend_asks_for_what_choosing_needs_and_the_check_refuses_it(tmp_path: Path) -> None:
    rows = Path(__file__).resolve().parent.parent / "docs" / "bench" / "atlas-minilm.csv"
    for args, line in ((["--max-f1-drop", "1"], "error: --lang: required to choose a recipe (e.g. --lang hau "
                                                "--max-f1-drop 1)"),
                       (["--lang", "hau"], "error: --max-f1-drop: required to choose a recipe (e.g. --lang hau "
                                           "--max-f1-drop 1)"),
                       (["--check-cost-model", "--lang", "hau"], "error: --lang: --check-cost-model checks the cost "
                                                                 "model on the rows' own languages; it chooses "
                                                                 "nothing for one"),
                       (["--lang", "hau", "--max-f1-drop", "1", "--csv", str(tmp_path / "x.csv")],
                        "error: --csv goes with --check-cost-model (its lines)")):
        done = CliRunner().invoke(app, ["recommend", str(rows), *args])
        assert (done.exit_code, done.output.strip()) == (2, line)
    assert not (tmp_path / "x.csv").exists()


def test_a_topic_language_without_rows_is_predicted_from_the_topic_atlas_in_accuracy(tmp_path: Path) -> None:
    """The committed topic rows (SIB-200) predict an unseen SIB-200 language: its facts are read with the
    topic reader (the NER reader found 'no split files (train.txt, test.txt)'), Ge'ez script from its
    code, and every Δ and the budget are in accuracy points."""
    from ndogo.models.loading import load_tokenizer
    from ndogo.report.predict_cost import _compute_facts

    shared = need_shared()
    tok = load_tokenizer("minilm")
    amh = _compute_facts(shared / "sib200", "amh_Ethi", tok)
    assert amh["latin_script"] == 0.0 and amh["entities_per_100_tokens"] == 0.0
    assert amh["log_train_sentences"] == pytest.approx(math.log(701))
    atlas = Path(__file__).resolve().parents[1] / "docs" / "bench" / "atlas-topic-minilm.csv"
    result = CliRunner().invoke(app, ["recommend", str(atlas), "--lang", "xho_Latn", "--max-f1-drop", "1",
                                      "--data", str(shared / "sib200")])
    assert result.exit_code == 0, result.output
    assert "xho_Latn: no sweep rows; predicted from the atlas's" in result.output
    assert "Test Δaccuracy in points" in result.output and "ΔF1" not in result.output
