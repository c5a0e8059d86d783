"""The labs, as an instructor checks them: every one runs at a tiny size (seconds) from a scratch
folder, in the order a course takes them (later labs reuse earlier labs' models), and writes the
results.json its handout describes."""
import json
import os
import subprocess
import sys

import pytest

from conftest import ROOT

LABS = ["01_one_block", "02_size_and_shape", "03_what_it_knows", "04_attention_heads", "05_neurons",
        "06_instructions", "07_memorising"]


@pytest.fixture(scope="module")
def results(tmp_path_factory):
    work = tmp_path_factory.mktemp("labs")
    out = {}
    for lab in LABS:
        r = subprocess.run([sys.executable, os.path.join(ROOT, "labs", f"{lab}.py"), "--tiny=True"], cwd=work,
                           env={**os.environ, "LAB_WORK": str(work)}, capture_output=True, text=True, timeout=240)
        assert r.returncode == 0, f"{lab}:\n{r.stdout[-1500:]}\n{r.stderr[-2500:]}"
        out[lab] = (json.loads((work / "labs" / "runs" / lab / "results.json").read_text()), r.stdout)
    return out


def test_every_lab_has_a_handout_and_the_index_lists_it():
    index = open(os.path.join(ROOT, "labs", "README.md")).read()
    for lab in LABS:
        assert os.path.exists(os.path.join(ROOT, "labs", f"{lab}.md")), lab
        assert f"{lab}.md" in index and f"{lab}.py" in index


def test_lab1_compares_depths_at_equal_flops(results):
    r, out = results["01_one_block"]
    assert [m["layers"] for m in r["models"]] == [1, 2, 4]
    spent = [m["iters"] * m["log"][-1]["flops"] / max(1, m["log"][-1]["iter"]) for m in r["models"]]
    assert max(spent) / min(spent) < 1.3  # the same budget, up to whole iterations
    assert all(m["story"] and "val_bpb" in m and "no_self_pairs" in m for m in r["models"])
    assert "val bpb" in out and "grade.py --out_dir=" in out


def test_lab2_fits_a_power_law_and_finds_a_frontier(results):
    r, out = results["02_size_and_shape"]
    assert len(r["models"]) == 4 and r["fit_params"]["b"] == pytest.approx(r["fit_params"]["b"])  # a number
    losses = [p["val_loss"] for p in r["frontier"]]
    assert losses == sorted(losses, reverse=True) and r["frontier"]  # the frontier only goes down
    assert "fit: val loss =" in out


def test_lab3_scores_every_probe_kind_for_every_model(results):
    r, out = results["03_what_it_knows"]
    assert set(r["per_kind"]) == {"fact", "reason", "track"} and r["probes"] == sum(r["per_kind"].values()) >= 60
    assert len(r["models"]) == 4 and all(0 <= m["all"] <= 1 for m in r["models"])


def test_lab4_scores_every_head_of_both_models(results):
    r, _ = results["04_attention_heads"]
    heads = {name: rows for name, rows in r["models"].items()}
    assert sorted(len(v) for v in heads.values()) == [4, 16]  # 1 layer and 4 layers of 4 heads
    for rows in heads.values():
        for h in rows:
            assert 0 <= h["previous"] <= 1 and h["distance"] >= 0 and h["kind"] in (
                "previous token", "by meaning", "by distance", "broad")


def test_lab5_compares_trained_neurons_with_random_ones(results):
    r, _ = results["05_neurons"]
    assert set(r["classes"]) == {"names", "colours", "animals", "feelings", "motion verbs"}
    for label in ("trained", "random"):
        assert r[label]["neurons"] == 4 * 32 and all(0 <= n["auroc"] <= 1 for n in r[label]["top"])


def test_lab6_asks_for_seen_and_held_out_combinations(results):
    r, _ = results["06_instructions"]
    assert r["holdout"] == ["Words", "Summary"]
    assert [c["seen"] for c in r["combinations"]].count("held out") == 1 and len(r["combinations"]) == 5
    for c in r["combinations"]:  # each measure with its control: another story's words or sentence
        assert ("Words" in c["instructions"]) == ("words" in c) == ("words_control" in c)
        assert ("Random sentence" in c["instructions"]) == ("sentence_control" in c)


def test_lab7_measures_the_studied_model_and_the_overfit_baseline(results):
    r, _ = results["07_memorising"]
    for label in ("studied", "overfit"):
        assert set(r[label]["rouge_closest"]) == {"1", "2", "3"}
        assert 0 <= r[label]["rouge2_continuation_names_swapped"] <= 1
        assert len(r[label]["histogram"]) == 60  # tiny asks for more than prompts.txt's 56: val beginnings fill up
    assert r["overfit"]["train_stories"] < r["studied"]["train_stories"]
    assert r["studied"]["example"]["true"] and "written" in r["studied"]["example"]
