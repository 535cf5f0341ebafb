"""`ndogo recommend` for several languages at once (issue #39): one recipe to ship for all of them, within a
budget on the mean loss and a limit on the worst language, at least X× smaller and Y× faster."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from ndogo.report.recommend import format_recommendation, recommend, recommend_many_rows, recommend_rows

LANGS = ["hau", "swa", "yor"]


def row(lang: str, recipe: str, seed: int, f1: float, dev: float, size: float = 90e6, latency: float | None = 20.0,
        model: str = "minilm") -> dict:
    return {"cell_id": f"{model}-{lang}-{recipe}-{seed}", "model": model, "lang": lang, "recipe": recipe,
            "recipe_spec": "" if recipe == "baseline" else f"quantize:method={recipe}",
            "start": "finetuned", "seed": seed, "status": "done", "split": "test", "f1": f1, "dev_f1": dev,
            "size_bytes": int(size), "latency_ms_b1": latency, "data": "../shared/data/masakhaner",
            "path": f"/runs/{model}-{lang}-{recipe}-{seed}", "per_type": {}}


def grid(losses: dict[str, tuple[tuple[float, ...], float, float]], seed: int = 1) -> list[dict]:
    """Baselines at F1 0.80 (dev and test) and, per recipe, its dev (= test) loss per language of LANGS in
    points, size and latency: the baseline is 90 MB and 20 ms."""
    rows = [row(lg, "baseline", seed, 0.80, 0.80) for lg in LANGS]
    for recipe, (per_lang, size, latency) in losses.items():
        rows += [row(lg, recipe, seed, 0.80 - x / 100, 0.80 - x / 100, size, latency)
                 for lg, x in zip(LANGS, per_lang, strict=True)]
    return rows


# a: smallest, fine on average but loses 2.5 in yor; b: larger, even; c: tiny, each language only 1.2 down
RECIPES = {"a-int8": ((0.0, 0.0, 2.5), 10e6, 5.0), "b-int8": ((0.5, 0.5, 1.0), 20e6, 10.0),
           "c-int4": ((1.2, 1.2, 1.2), 5e6, 4.0)}


def test_the_mean_is_budgeted_and_the_worst_language_limited() -> None:
    rows = grid(RECIPES)
    # no limit on the worst: a-int8's mean loss 0.83 is within 1, and it is the smallest within
    assert recommend_many_rows(rows, "rows.csv", LANGS, 1.0)["recipe"] == "a-int8"
    # yor loses 2.5 with a-int8: --max-worst-drop 2 refuses it though the mean is within
    choice = recommend_many_rows(rows, "rows.csv", LANGS, 1.0, max_worst_drop=2.0)
    assert choice["recipe"] == "b-int8" and choice["worst_dev_f1_drop"] == ["yor", 1.0]
    assert choice["dev_f1_drop_points"] == pytest.approx(0.67) and choice["within_budget"] == 2  # b and baseline
    # c-int4 loses 1.2 in every language, under the worst-language limit, but its mean is over the budget
    assert recommend_many_rows(rows, "rows.csv", LANGS, 1.1, max_worst_drop=2.0)["recipe"] == "b-int8"
    assert recommend_many_rows(rows, "rows.csv", LANGS, 1.2, max_worst_drop=2.0)["recipe"] == "c-int4"
    # latency: the mean over languages of latency_ms_b1
    assert recommend_many_rows(rows, "rows.csv", LANGS, 1.0, "latency", max_worst_drop=2.0)["recipe"] == "b-int8"
    per = {p["lang"]: p for p in choice["per_lang"]}
    assert per["yor"]["dev_f1_drop_points"] == 1.0 and per["hau"]["size_x"] == 4.5 and per["swa"]["speedup_b1"] == 2.0


def test_each_seed_is_paired_with_its_own_baseline_in_every_language() -> None:
    """Seed 2's baseline is 10 points under seed 1's: a candidate measured on seed 2 only loses 0.5 against its own
    baseline, not 5.5 against the baselines' mean; two seeds give a spread."""
    rows = []
    for lg in LANGS:
        rows += [row(lg, "baseline", 1, 0.80, 0.80), row(lg, "baseline", 2, 0.70, 0.70),
                 row(lg, "one-seed", 2, 0.695, 0.695, 10e6, 5.0),
                 row(lg, "two-seed", 1, 0.79, 0.79, 20e6, 5.0), row(lg, "two-seed", 2, 0.70, 0.70, 20e6, 5.0)]
    choice = recommend_many_rows(rows, "rows.csv", LANGS, 1.0)
    assert choice["recipe"] == "one-seed" and choice["dev_f1_drop_points"] == 0.5
    assert all(p["seeds"] == [2] and p["paired"] for p in choice["per_lang"])
    rows = [r for r in rows if r["recipe"] != "one-seed"]
    two = recommend_many_rows(rows, "rows.csv", LANGS, 1.0)
    assert two["recipe"] == "two-seed" and two["dev_f1_drop_points"] == 0.5
    assert {p["dev_f1_drop_std"] for p in two["per_lang"]} == {0.71}  # deltas −1 and 0 over the two seeds
    assert "-0.50 ± 0.71" in format_recommendation(two)


def test_test_is_reported_and_said_to_disagree_where_it_breaks_what_dev_met() -> None:
    rows = grid({})
    # dev: 0.5 per language; test: hau 0.5, swa 0.5, yor 3.0 (mean 1.33 > 1, yor > 2)
    for lg, test_loss in zip(LANGS, (0.5, 0.5, 3.0), strict=True):
        rows.append(row(lg, "q-int8", 1, 0.80 - test_loss / 100, 0.795, 10e6, 5.0))
    choice = recommend_many_rows(rows, "rows.csv", LANGS, 1.0, max_worst_drop=2.0)
    assert choice["recipe"] == "q-int8" and choice["chosen_on"] == "dev"
    assert choice["other_split_within_budget"] is False and choice["other_split_over_worst"] == ["yor"]
    assert choice["f1_drop_points"] == pytest.approx(1.33) and choice["worst_f1_drop"] == ["yor", 3.0]
    text = format_recommendation(choice)
    assert "test disagrees: it loses 1.33 points on average, over the 1-point budget that dev met" in text
    assert "test disagrees: yor loses 3.00 on test, over the 2-point limit for any language that dev met" in text
    assert "one seed in hau, swa, yor" in text
    # chosen on test, the same rows put q-int8 over the budget: the baseline is all that is left; dev is reported
    on_test = recommend_many_rows(rows, "rows.csv", LANGS, 1.0, max_worst_drop=2.0, split="test")
    assert on_test["recipe"] == "baseline" and on_test["chosen_on"] == "test"
    assert "chosen on test" in format_recommendation(on_test) and "dev agrees" in format_recommendation(on_test)
    agree = recommend_many_rows(rows, "rows.csv", LANGS, 2.0, max_worst_drop=3.0)
    assert agree["other_split_within_budget"] is True and agree["other_split_over_worst"] == []


def test_a_gain_on_the_other_split_is_said_as_a_gain() -> None:
    """Test above its baseline is a gain: "it gains 0.50 points", never "it loses -0.50"."""
    rows = grid({})
    for lg in LANGS:
        rows.append(row(lg, "q-int8", 1, 0.805, 0.795, 10e6, 5.0))  # test +0.5, dev -0.5
    text = format_recommendation(recommend_many_rows(rows, "rows.csv", LANGS, 1.0))
    assert "test agrees: it gains 0.50 points on average" in text and "loses -" not in text


def test_size_and_speed_floors_and_the_error_names_the_constraint_and_the_frontier() -> None:
    rows = grid(RECIPES)
    assert recommend_many_rows(rows, "rows.csv", LANGS, 1.0, max_worst_drop=2.0, min_smaller=4)["recipe"] == "b-int8"
    assert recommend_many_rows(rows, "rows.csv", LANGS, 1.0, min_faster=3.5)["recipe"] == "a-int8"
    with pytest.raises(ValueError) as err:
        recommend_many_rows(rows, "rows.csv", LANGS, 1.0, max_worst_drop=2.0, min_smaller=16, min_faster=2)
    message = str(err.value)
    assert message.startswith("rows.csv: nothing for hau, swa, yor meets every constraint: --min-smaller 16 "
                              "(at least 16× smaller on disk than the baseline in every language) removed the last 2 "
                              "candidate(s) left by --max-f1-drop 1, --max-worst-drop 2")
    # the closest within the budget, with its size and speed; and what is beyond the frontier, with its loss
    assert "the closest is minilm/b-int8 (loses 0.67 dev F1 point(s) on average, 1.00 in yor; 4.50× smaller, " \
           "2.00× faster" in message
    assert message.endswith("; of those at least 16× smaller on disk and at least 2× faster at batch 1, the one "
                            "losing least is minilm/c-int4 (loses 1.20 dev F1 point(s) on average, 1.20 in hau; "
                            "18.00× smaller, 5.00× faster in its least language)")
    with pytest.raises(ValueError, match=r"removed the last 2 candidate.*; no candidate is at least 50× smaller on "
                                         r"disk$"):
        recommend_many_rows(rows, "rows.csv", LANGS, 1.0, max_worst_drop=2.0, min_smaller=50)
    with pytest.raises(ValueError, match=r"--min-faster 3.5 .* removed the last 2 candidate\(s\) left by "
                                         r"--max-f1-drop 1, --max-worst-drop 2; the closest is minilm/b-int8 .*; of "
                                         r"those at least 3.5× faster at batch 1, the one losing least is minilm/"
                                         r"a-int8 \(loses 0.83 dev F1 point\(s\) on average, 2.50 in yor; 9.00× "
                                         r"smaller, 4.00× faster"):
        recommend_many_rows(rows, "rows.csv", LANGS, 1.0, max_worst_drop=2.0, min_faster=3.5)
    # a candidate lacking the measurement in one language is not eligible
    unmeasured = [{**r, "latency_ms_b1": None} if (r["lang"], r["recipe"]) == ("swa", "a-int8") else r for r in rows]
    assert recommend_many_rows(unmeasured, "rows.csv", LANGS, 1.0, min_faster=2)["recipe"] == "b-int8"
    # one language: the same floors
    assert recommend_rows(rows, "rows.csv", "hau", 1.5, min_smaller=10)["recipe"] == "c-int4"
    with pytest.raises(ValueError, match=r"nothing for hau meets every constraint: --min-smaller 20 .* the closest "
                                         r"is minilm/c-int4 \(loses 1.20 dev F1 point\(s\); 18.00× smaller"):
        recommend_rows(rows, "rows.csv", "hau", 1.5, min_smaller=20)


def test_a_recipe_missing_in_one_language_is_no_candidate() -> None:
    rows = grid(RECIPES) + [row(lg, "z-tiny", 1, 0.80, 0.80, 1e6, 1.0) for lg in ("hau", "swa")]
    choice = recommend_many_rows(rows, "rows.csv", LANGS, 1.0)
    assert choice["recipe"] == "a-int8" and choice["candidates"] == 4  # baseline, a, b, c: not z
    assert recommend_many_rows(rows, "rows.csv", ["hau", "swa"], 1.0)["recipe"] == "z-tiny"
    # a model measured in one language only: nothing is measured in both, and the error says what lacks what
    me5s = [row("amh", "baseline", 1, 0.6, 0.6, model="me5s"), row("amh", "int8", 1, 0.6, 0.6, 30e6, 5.0, "me5s")]
    with pytest.raises(ValueError, match=r"no recipe has finished rows, and a baseline, in every one of hau, amh "
                                         r"\(minilm/baseline lacks amh; .*\); choose for fewer languages"):
        recommend_many_rows(rows + me5s, "rows.csv", ["hau", "amh"], 1.0)


def test_one_language_keeps_its_output() -> None:
    """One language gives the keys and the text it gave before several could be asked for."""
    rows = grid(RECIPES)
    choice = recommend_rows(rows, "rows.csv", "hau", 1.0)
    assert set(choice) == {
        "lang", "max_f1_drop", "optimize", "model", "metric", "metric_label", "recipe", "recipe_spec", "start",
        "seeds", "f1", "f1_std", "baseline_f1", "baseline_seeds", "f1_drop_points", "size_bytes", "baseline_size_bytes",
        "size_x",
        "latency_ms_b1", "baseline_latency_ms_b1", "speedup_b1", "sparsity", "path", "candidates", "within_budget",
        "chosen_on", "dev_f1", "baseline_dev_f1", "dev_f1_drop_points", "f1_drop_std", "dev_f1_drop_std",
        "other_split_within_budget", "command", "baseline_warning"}
    assert choice["recipe"] == "a-int8" and choice["within_budget"] == 3  # baseline, a and b: c loses 1.2
    text = format_recommendation(choice)
    assert text.startswith("hau: a-int8 (quantize:method=a-int8) of model minilm, the best by size of 3 within 1 "
                           "dev F1 point(s) (4 measured; chosen on dev)") and "asked" not in text


def write_csv(path: Path, rows: list[dict]) -> Path:
    columns = ["cell_id", "model", "lang", "recipe", "recipe_spec", "start", "seed", "status", "split", "f1",
               "dev_f1", "size_bytes", "latency_ms_b1", "data", "path"]
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=columns, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)
    return path


def cli(*args: str) -> tuple[int, str]:
    from typer.testing import CliRunner

    from ndogo.cli import app

    result = CliRunner().invoke(app, list(args))
    return result.exit_code, result.output.strip()


def test_the_command_chooses_one_recipe_for_several_languages(tmp_path: Path) -> None:
    rows = write_csv(tmp_path / "rows.csv", grid(RECIPES))
    code, out = cli("recommend", str(rows), "--lang", "hau,swa,yor", "--max-f1-drop", "1", "--max-worst-drop", "2")
    assert code == 0, out
    lines = out.splitlines()
    assert lines[0].startswith("hau, swa, yor: b-int8 (quantize:method=b-int8) of model minilm, one recipe for all 3")
    assert any(line.split() == ["yor", "-1.00", "-1.00", "1", "4.50×", "2.00×"] for line in lines), out
    assert any(line.split() == ["mean", "-0.67", "-0.67", "4.50×", "2.00×"] for line in lines), out
    code, out = cli("recommend", str(rows), "--lang", "hau,swa,yor", "--max-f1-drop", "1", "--min-smaller", "4",
                    "--json")
    assert code == 0, out
    choice = json.loads(out)
    assert choice["recipe"] == "a-int8" and [p["lang"] for p in choice["per_lang"]] == LANGS
    assert choice["min_smaller"] == 4 and choice == recommend(rows, "hau,swa,yor", 1.0, min_smaller=4)
    # nothing qualifies: one line naming the constraint and the closest candidate
    code, out = cli("recommend", str(rows), "--lang", "hau,swa,yor", "--max-f1-drop", "1", "--min-smaller", "16")
    assert code == 2 and len(out.splitlines()) == 1 and out.startswith(f"error: {rows}: nothing for hau, swa, yor")
    assert "--min-smaller 16" in out and "the closest is minilm/a-int8" in out
    # a bundle is one language's model
    code, out = cli("recommend", str(rows), "--lang", "hau,swa", "--max-f1-drop", "1", "--ship", str(tmp_path / "b"))
    assert code == 2 and out == ("error: --ship: a bundle is one language's model, and --lang names 2; rerun with "
                                 "one --lang (the chosen recipe, for that language) to ship it")
    assert not (tmp_path / "b").exists()
    # a language without rows among several is named, not predicted
    code, out = cli("recommend", str(rows), "--lang", "hau,ewe", "--max-f1-drop", "1")
    assert code == 2 and out == f"error: {rows}: no finished cells for language 'ewe'; languages here: hau, swa, yor"
    # one language through the command: its output as before
    code, out = cli("recommend", str(rows), "--lang", "hau", "--max-f1-drop", "1")
    assert code == 0 and out == format_recommendation(recommend(rows, "hau", 1.0))


def test_a_gain_is_said_as_a_gain_and_no_change_is_not_negative() -> None:
    rows = [row("hau", "baseline", 1, 0.80, 0.80), row("hau", "up-int8", 1, 0.80, 0.81, 20e6, 5.0)]
    text = format_recommendation(recommend_rows(rows, "rows", "hau", max_f1_drop=1.0))
    assert "(baseline 80.00, gain 1.00 points)" in text  # dev: one point better, not "drop -1.00"
    assert "(baseline 80.00, drop 0.00 points, over 1 seed(s))" in text  # test: unchanged, not "drop -0.00"


def test_the_baseline_beside_a_pick_is_the_one_its_drop_is_measured_against() -> None:
    """The baseline has seeds 42 and 1, the pick seed 42 alone: its drop is against seed 42's baseline, so that
    is the baseline printed beside it (once it was the mean of both seeds: "63.64 (baseline 65.66, drop 0.00)")."""
    rows = [row("hau", "baseline", 42, 0.5882, 0.6364), row("hau", "baseline", 1, 0.5931, 0.6768),
            row("hau", "onnx-int8", 42, 0.5784, 0.6364, 20e6, 5.0)]
    choice = recommend_rows(rows, "rows", "hau", max_f1_drop=1.0)
    assert choice["recipe"] == "onnx-int8" and choice["dev_f1_drop_points"] == 0.0
    assert choice["baseline_dev_f1"] == 0.6364 and choice["baseline_f1"] == 0.5882
    text = format_recommendation(choice)
    assert "dev F1   63.64 (baseline 63.64 of seed 42, drop 0.00 points)" in text
    assert "test F1  57.84 (baseline 58.82 of seed 42, drop 0.98 points, over 1 seed(s))" in text
    # a pick whose seeds have no baseline of their own is read against the baseline's mean, and says so
    unpaired = recommend_rows([*rows[:2], row("hau", "onnx-int8", 7, 0.5784, 0.6566, 20e6, 5.0)], "rows", "hau",
                              max_f1_drop=1.0)
    assert "dev F1   65.66 (baseline 65.66, the mean of its seeds 1, 42, drop 0.00 points)" in \
        format_recommendation(unpaired)


def test_the_help_words_the_budget_in_the_tasks_metric_not_in_f1() -> None:
    """`ndogo recommend`'s summary said "within an F1 budget" and --split "which split's F1" where the budget
    is in the rows' task metric (accuracy for POS and topic, macro-F1 for sentiment): F1 is named only
    beside the other tasks' metrics. The flag keeps its name, --max-f1-drop."""
    import re

    import typer

    from ndogo.cli import app

    cmd = typer.main.get_command(app).commands["recommend"]  # type: ignore[attr-defined]
    helps = {p.name: p.help or "" for p in cmd.params}
    assert "--max-f1-drop" in {p.name: p.opts for p in cmd.params}["max_f1_drop"]
    for text in [cmd.help or "", *helps.values()]:
        for sentence in re.split(r"(?<=\.)\s+|\n\s*\n", text):
            if re.search(r"\bF1\b", sentence.replace("macro-F1", "")):
                assert "accuracy" in sentence, sentence
    assert "metric" in (cmd.help or "").splitlines()[0]
    assert all(w in helps["max_f1_drop"] for w in ("task's headline metric", "accuracy", "macro-F1"))
