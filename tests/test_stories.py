"""Tests for the offline story generator (stories.py).

A few thousand stories are generated once and every check runs over all of them, so a rare
template bug shows up here rather than in a training run. The 100k speed check lives in
the benchmark, not here.
"""

import os
import random
import re
import subprocess
import sys
from collections import Counter

import pytest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))
import stories  # noqa: E402

N = 4000


@pytest.fixture(scope="module")
def records():
    return list(stories.generate_stories(N, seed=1234))


def paragraphs(rec):
    return rec["story"].split("\n\n")


def sentences(text):
    return re.split(r'(?<=[.!?])"?\s+', text)


def has_word(word, text):
    return re.search(r"\b" + re.escape(word) + r"\b", text, re.IGNORECASE) is not None


def with_feature(records, feature, present=True):
    out = [r for r in records if (feature in r["features"]) == present]
    assert len(out) > 100, f"too few stories {'with' if present else 'without'} {feature}"
    return out


# --- word lists -----------------------------------------------------------------------

def test_word_list_sizes():
    assert len(stories.NOUNS) >= 300
    assert len(stories.VERBS) >= 150
    assert len(stories.ADJECTIVES) >= 150
    for words in (stories.NOUNS, list(stories.VERBS), stories.ADJECTIVES):
        assert len(set(words)) == len(words)
        assert all(w.isascii() and w.isalpha() and w.islower() for w in words)
    assert all(p.isalpha() and p.islower() for p in stories.VERBS.values())
    assert stories.VERBS["run"] == "ran" and stories.VERBS["eat"] == "ate"


# --- determinism ----------------------------------------------------------------------

def test_deterministic_for_a_seed():
    a = list(stories.generate_stories(30, seed=7))
    b = list(stories.generate_stories(30, seed=7))
    assert a == b
    assert stories.make_story(random.Random(99)) == stories.make_story(random.Random(99))


def test_same_stories_in_every_process_whatever_the_hash_seed():
    # Python salts str hashes per process, so a set iterated into the RNG made CI's data differ from ours.
    code = "import hashlib, stories; print(hashlib.md5(repr(list(stories.generate_stories(300, seed=7))).encode()).hexdigest())"
    root = os.path.join(os.path.dirname(__file__), "..")
    digests = {subprocess.run([sys.executable, "-c", code], cwd=root, capture_output=True, text=True, check=True,
                              env={**os.environ, "PYTHONHASHSEED": str(h)}).stdout for h in (1, 2, 3)}
    assert len(digests) == 1


def test_different_seeds_differ():
    a = [r["story"] for r in stories.generate_stories(30, seed=7)]
    b = [r["story"] for r in stories.generate_stories(30, seed=8)]
    assert not set(a) & set(b)


def test_story_depends_only_on_seed_and_index():
    assert list(stories.generate_stories(12, seed=3))[10] == list(stories.generate_stories(11, seed=3))[10]


# --- the recipe: words, length, plain text ------------------------------------------------

def test_record_shape(records):
    for r in records:
        assert set(r) >= {"story", "words", "features", "summary", "characters"}
        verb, noun, adj = r["words"]
        assert verb in stories.VERBS and noun in stories.NOUNS and adj in stories.ADJECTIVES
        assert list(r["features"]) == [f for f in stories.FEATURES if f in r["features"]]


def test_three_words_in_every_story(records):
    for r in records:
        verb, noun, adj = r["words"]
        s = r["story"]
        assert has_word(verb, s) or has_word(stories.VERBS[verb], s), (verb, s)
        assert has_word(noun, s), (noun, s)
        assert has_word(adj, s), (adj, s)


def test_paragraph_and_word_counts(records):
    para_counts = Counter()
    for r in records:
        ps = paragraphs(r)
        assert 2 <= len(ps) <= 5, r["story"]
        assert all(p.strip() == p and p for p in ps)
        assert 80 <= len(r["story"].split()) <= 300, r["story"]
        para_counts[len(ps)] += 1
    assert set(para_counts) == {2, 3, 4, 5}  # every length actually occurs


def test_plain_text(records):
    for r in records:
        s = r["story"]
        assert s.isascii() and s == s.strip()
        assert "<|endoftext|>" not in s and "{" not in s and "}" not in s
        for text in (s, r["summary"]):
            assert "  " not in text and not re.search(r"\ba [aeiou]", text), text
        assert all(p[0].isupper() or p[0] == '"' for p in paragraphs(r))


# --- features --------------------------------------------------------------------------

def test_feature_subsets_vary(records):
    counts = Counter(f for r in records for f in r["features"])
    assert all(0.3 < counts[f] / len(records) < 0.5 for f in stories.FEATURES)
    assert any(not r["features"] for r in records)
    assert len({tuple(r["features"]) for r in records}) == 64


def test_dialogue_means_quoted_speech(records):
    for r in with_feature(records, "Dialogue"):
        quotes = r["story"].count('"')
        assert quotes >= 2 and quotes % 2 == 0
        assert re.search(r'"[A-Z][^"]*[.,!?]"', r["story"])
    for r in with_feature(records, "Dialogue", present=False):
        assert '"' not in r["story"]


SAD = ("sad", "sadder", "cried", "tears")
HAPPY = ("happy", "happily", "smiled", "laughed", "glad", "best", "fun", "proud", "safe", "hug", "friends")


def test_bad_ending_is_sad(records):
    for r in with_feature(records, "BadEnding"):
        last = paragraphs(r)[-1]
        assert any(has_word(w, last) for w in SAD), r["story"]
    for r in with_feature(records, "BadEnding", present=False):
        last = paragraphs(r)[-1]
        assert any(has_word(w, last) for w in HAPPY), r["story"]
        tail = " ".join(sentences(last)[-2:])
        assert not any(has_word(w, tail) for w in SAD), r["story"]


def test_moral_value_states_a_lesson(records):
    lesson = re.compile(r"[^.!?\"]*\b(learned|lesson)\b[^.!?]*[.!?]")
    for r in with_feature(records, "MoralValue"):
        m = lesson.search(r["story"])
        assert m and r["characters"][0]["name"] in m.group(0), r["story"]
    for r in with_feature(records, "MoralValue", present=False):
        assert not lesson.search(r["story"]), r["story"]


TWIST = re.compile(r"\bturned out\b|\ball along\b|\bto (his|her|their|everyone's) surprise\b", re.IGNORECASE)


def test_plot_twist_has_a_reversal(records):
    for r in with_feature(records, "PlotTwist"):
        m = TWIST.search(r["story"])
        assert m, r["story"]
        assert m.start() > len(paragraphs(r)[0])  # the reversal comes after the set-up
    for r in with_feature(records, "PlotTwist", present=False):
        assert not TWIST.search(r["story"]), r["story"]


CALLBACK = re.compile(r"\bremembered\b|\bjust as\b", re.IGNORECASE)


def test_foreshadowing_hint_is_paid_off_later(records):
    for r in with_feature(records, "Foreshadowing"):
        hint, ps = r["hint"], paragraphs(r)
        assert hint and hint in ps[0], r["story"]
        assert any(hint in p and CALLBACK.search(p) for p in ps[1:]), r["story"]
    for r in with_feature(records, "Foreshadowing", present=False):
        assert r["hint"] is None
        assert not CALLBACK.search(r["story"]), r["story"]


DISAGREE = re.compile(r"\bargue\b|\bdid not agree\b")
RESOLVE = re.compile(r"\bsorry\b|\bagreed\b|\btake turns\b|\bfriends again\b|\bshook hands\b")


def test_conflict_is_a_disagreement_that_gets_resolved(records):
    for r in with_feature(records, "Conflict"):
        m = DISAGREE.search(r["story"])
        assert m, r["story"]
        assert RESOLVE.search(r["story"], m.end()), r["story"]
    for r in with_feature(records, "Conflict", present=False):
        assert not DISAGREE.search(r["story"]), r["story"]


# --- one cast, many plots --------------------------------------------------------------

def test_one_cast_per_story(records):
    all_names = set(stories._GIRLS) | set(stories._BOYS)
    for r in records:
        cast = r["characters"]
        hero = cast[0]["name"]
        ps = paragraphs(r)
        assert hero in ps[0] and hero in ps[-1], r["story"]
        named = {w for w in re.findall(r"\b[A-Z][a-z]+\b", r["story"]) if w in all_names}
        assert named <= {c["name"] for c in cast}, (named, r["story"])


def test_pronouns_stay_consistent(records):
    """Animals are "it"; so when the whole cast is one gender, the other never appears."""
    checked = 0
    for r in records:
        pronouns = {c["pronoun"] for c in r["characters"]}
        if pronouns == {"she"}:
            assert not re.search(r"\b(he|him|his|himself)\b", r["story"], re.IGNORECASE), r["story"]
        elif pronouns == {"he"}:
            assert not re.search(r"\b(she|her|hers|herself)\b", r["story"], re.IGNORECASE), r["story"]
        else:
            continue
        checked += 1
    assert checked > len(records) // 10


def test_many_plots_and_openings(records):
    assert len({r["plot"] for r in records}) >= 6
    openings = Counter(" ".join(r["story"].split()[:3]) for r in records)
    assert openings.most_common(1)[0][1] / len(records) <= 0.2
    assert len(openings) > 50


def test_stories_are_distinct(records):
    assert len({r["story"] for r in records}) / len(records) >= 0.99


def test_summary_is_one_matching_sentence(records):
    for r in records:
        s = r["summary"]
        assert s[0].isupper() and s.endswith(".") and s.count(". ") == 0 and "\n" not in s
        assert r["characters"][0]["name"] in s
        verb, noun, adj = r["words"]


# --- instruct form --------------------------------------------------------------------

def test_instruct_text_format():
    rec = {"story": "Once there was a cat.\n\nThe end.", "words": ["run", "ball", "happy"],
           "features": ["Dialogue", "Conflict"], "summary": "A cat runs."}
    assert stories.instruct_text(rec) == (
        "Features: Dialogue, Conflict\nWords: run, ball, happy\nSummary: A cat runs.\n"
        "Story: \nOnce there was a cat.\n\nThe end.")
    rec["features"] = []
    assert stories.instruct_text(rec) == (
        "Words: run, ball, happy\nSummary: A cat runs.\nStory: \nOnce there was a cat.\n\nThe end.")


def test_instruct_text_on_generated_records(records):
    for r in records[:200]:
        text = stories.instruct_text(r)
        assert text.endswith("Story: \n" + r["story"])
        assert ("Features: " in text) == bool(r["features"])
