"""The shipped corpus (corpus/stories.jsonl.gz): the file is the one recorded, every story passes the
checks that refused others when it was written, the val split never moves, `python prepare.py`
prepares it offline without loading any network code, and its instruct form follows
TinyStories-Instruct's layout."""
import hashlib
import os
import re
import subprocess
import sys
from collections import Counter
from types import SimpleNamespace

import pytest

from conftest import ROOT
from lib import corpus, llm_stories


@pytest.fixture(scope="module")
def rows():
    return corpus.read_corpus(corpus.checked_corpus())


def test_the_file_is_the_recorded_one(rows):
    path, count, sha, _ = corpus.CORPUS
    assert hashlib.sha256(open(os.path.join(ROOT, path), "rb").read()).hexdigest() == sha
    assert len(rows) == count and os.path.getsize(os.path.join(ROOT, path)) < 12e6
    assert [r["i"] for r in rows] == sorted({r["i"] for r in rows})  # request order, each request once
    assert all(set(r) == set(corpus.CORPUS_FIELDS) for r in rows)


def test_it_answers_the_requests_the_recipe_draws_today(rows):
    """If recipe.txt, the prompt or the seed change, the corpus no longer answers them: this fails."""
    s = SimpleNamespace(seed=1337, language="")
    recipe = llm_stories.read_recipe(llm_stories.RECIPE)
    assert llm_stories.fingerprint(s, recipe, llm_stories.PROMPT) == corpus.CORPUS[3]
    for r in rows[::97]:
        j = llm_stories.job(r["i"], 0, s, recipe, llm_stories.PROMPT)
        assert (j["words"], j["features"]) == (r["words"], r["features"])


def test_every_story_passes_the_checks_it_was_written_under(rows):
    irregular = llm_stories.read_recipe(llm_stories.RECIPE)[1]
    kept = llm_stories.Kept(target=10**9)  # the opening share is the whole corpus's: checked below
    for r in rows:
        assert llm_stories.validate(r["story"], r["words"], r["features"], r["shown"], irregular=irregular) is None, r["i"]
        assert kept.problem(r["story"]) is None, r["i"]  # no copy, no shared 12-word run
        kept.add(r["story"], r["i"])
        assert r["summary"] and set(r["features"]) <= set(llm_stories.FEATURES)
    opening, n = kept.openings.most_common(1)[0]
    assert n <= llm_stories.OPENING_SHARE * len(rows), f"{opening!r} opens {n} of {len(rows)} stories"


def test_the_val_split_is_every_twentieth_request_and_never_moves(rows):
    splits = corpus.split_rows(rows)
    assert {r["i"] % 20 for r in splits["val"]} == {19} and 0.04 < len(splits["val"]) / len(rows) < 0.06
    fewer = corpus.split_rows(rows[: len(rows) // 2])  # a corpus that grows or shrinks keeps its val stories
    assert {r["i"] for r in fewer["val"]} <= {r["i"] for r in splits["val"]}


def test_python_prepare_makes_the_default_offline_without_network_code(tmp_path):
    dead = "http://127.0.0.1:9"
    env = dict(os.environ, HTTPS_PROXY=dead, HTTP_PROXY=dead, HF_ENDPOINT=dead, OPENAI_BASE_URL=dead)
    r = subprocess.run([sys.executable, "-X", "importtime", os.path.join(ROOT, "prepare.py"), "--vocab_size=512"],
                       cwd=tmp_path, env=env, capture_output=True, text=True, timeout=240)
    assert r.returncode == 0, r.stderr[-2000:]
    imported = {line.split("|")[-1].strip() for line in r.stderr.splitlines() if line.startswith("import time:")}
    assert not imported & {"requests", "urllib3", "llm", "llm_stories", "download"}, imported & {"requests", "llm"}
    data = tmp_path / "data" / "corpus"
    written = (data / "train.txt").read_text().count("<|endoftext|>") + (data / "val.txt").read_text().count("<|endoftext|>")
    assert written == corpus.CORPUS[1] and "sha256 checked" in r.stdout
    again = subprocess.run([sys.executable, os.path.join(ROOT, "prepare.py"), "--vocab_size=512", "--stage=stories",
                            "--name=again"], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=240)
    assert again.returncode == 0 and (tmp_path / "data" / "again" / "val.txt").read_bytes() == (data / "val.txt").read_bytes()


def test_an_edited_corpus_is_refused_in_one_line(tmp_path, monkeypatch):
    copy = tmp_path / "stories.jsonl.gz"
    copy.write_bytes(open(os.path.join(ROOT, corpus.CORPUS[0]), "rb").read()[:-10] + b"0123456789")
    monkeypatch.setattr(corpus, "CORPUS", (str(copy), *corpus.CORPUS[1:]))
    with pytest.raises(SystemExit) as e:
        corpus.checked_corpus()
    assert str(e.value).startswith("error: ") and "git checkout" in str(e.value) and "\n" not in str(e.value)


def test_the_instruct_form_has_the_papers_four_instructions_each_true_to_its_story(rows):
    kinds, orders, irregular = Counter(), set(), llm_stories.read_recipe(llm_stories.RECIPE)[1]
    for r in rows:
        text = corpus.instruct_text(r)
        head, story = text.split("Story: \n")
        assert story == r["story"] and corpus.instruct_text(r) == text  # the same draw every time
        lines = dict(line.split(": ", 1) for line in head.strip().splitlines())
        kinds.update(lines.keys())
        orders.add(tuple(lines))
        if "Words" in lines:
            assert lines["Words"].split(", ") == r["words"]
            assert all(llm_stories.uses(story, w, irregular=irregular.get(w, ())) for w in r["words"])
        if "Random sentence" in lines:
            assert lines["Random sentence"] in story.replace("\n\n", " ")
        if "Features" in lines:
            assert lines["Features"].split(", ") == r["features"]
        if "Summary" in lines:
            assert lines["Summary"] == r["summary"]
    assert set(kinds) == {"Words", "Features", "Summary", "Random sentence"}
    assert all(0.3 < kinds[k] / len(rows) < 0.8 for k in kinds)  # a random subset each, none always there
    assert len(orders) > 20  # in random order
    assert not re.search(r"\n\n\n", corpus.instruct_text(rows[0]))


def test_a_held_out_combination_of_instructions_never_reaches_train(rows, tmp_path):
    held = ("Words", "Summary")
    drawn = [tuple(sorted(line.split(": ")[0] for line in corpus.instruct_text(r).split("Story: \n")[0].splitlines()))
             for r in rows]
    assert drawn.count(tuple(sorted(held))) > 0  # the plain draw does make it
    for r in rows:
        head = corpus.instruct_text(r, held).split("Story: \n")[0]
        assert {line.split(": ")[0] for line in head.splitlines()} != set(held)
    r = subprocess.run([sys.executable, os.path.join(ROOT, "prepare.py"), "--dataset=corpus-instruct",
                        "--holdout=Words,Summary", "--stage=stories", "--name=held"], cwd=tmp_path,
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    train = (tmp_path / "data" / "held" / "train.txt").read_text().split("<|endoftext|>")
    heads = [{ln.split(": ")[0] for ln in t.strip().split("Story: \n")[0].splitlines()} for t in train if t.strip()]
    assert set(held) not in heads and {"Words"} in heads
