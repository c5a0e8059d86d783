"""prepare.py --dataset=generate, the paper's recipe answered by a language model: live against a fake
OpenAI-compatible server on 127.0.0.1, and through Batch API files. The run reaches its target,
refuses stories that break the recipe and asks their requests again, resumes after a request cap and
a SIGKILL without paying twice, reads a messy results file without losing a row, and builds bins
that decode back to the kept stories."""
import hashlib
import json
import os
import random
import re
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from types import SimpleNamespace

import numpy as np
import pytest

from conftest import ROOT
from lib import llm_stories, tokenizer
from local_server import LocalServer

KEY = "sk-test-SECRET-4242"
WORDS = re.compile(r'the verb "(.+?)", the noun "(.+?)" and the adjective "(.+?)"')
NAMES = "Ada Bo Cy Dee Eli Fay Gus Hal Ivy Jo Kit Lu Mo Nan Oz Pam Quin Rae Sol Tia Uma Vic Wes Xia Yan Zed".split()
THINGS = "cup hat box log map pen jar mat bun kite drum sock boat bell leaf shell rock star cloud seed".split()
DOES = "saw found liked held kept drew took gave fed hid wore lost fixed moved washed counted named".split()
HOW = "red big small soft old new wet shiny round flat tall warm cold blue green quiet".split()
PLACES = "park pond hill barn shed yard lake road wood field shop bridge beach cave tent".split()


def fake_story(prompt, rng):
    """A reply to one of the recipe's prompts that passes every check: three paragraphs of sentences
    drawn at random (so no two stories share a 12-word run), the three words, quoted speech, and a
    'Shown by' line for each cited feature, placed where the checks look for it."""
    verb, noun, adjective = WORDS.search(prompt).groups()
    features = re.findall(r"^- (\w+):", prompt, re.M)
    say = lambda: (f"{rng.choice(NAMES)} {rng.choice(DOES)} the {rng.choice(HOW)} {rng.choice(THINGS)} "  # noqa: E731
                   f"by the {rng.choice(HOW)} {rng.choice(PLACES)} {rng.choice(['today', 'again', 'at noon', 'at dusk'])}.")
    paragraphs = [[say() for _ in range(5)] for _ in range(3)]
    paragraphs[0][0] = f"{rng.choice(NAMES)} {rng.randrange(10 ** 6)} liked to {verb} every day."
    paragraphs[1][1] = f"The {adjective} {noun} was there too, and \"Look!\" said {rng.choice(NAMES)}."
    cited = {"BadEnding": paragraphs[2][4], "MoralValue": paragraphs[1][2], "PlotTwist": paragraphs[1][3],
             "Foreshadowing": paragraphs[0][2], "Conflict": paragraphs[2][0]}
    shown = "".join(f"\n{f}: {cited[f]}" for f in features if f in cited)
    story = "\n\n".join(" ".join(p) for p in paragraphs)
    return f"Summary: A {noun} and a friend.\nStory:\n{story}" + (f"\nShown by:{shown}" if shown else "")


class StoryServer(LocalServer):
    """POST /v1/chat/completions. What it does with a prompt depends only on the prompt's hash, so a
    rerun meets the same behaviour: 1 in 10 first answers leave out the adjective, 1 in 10 prompts
    first get a 429 (Retry-After: 0) and 1 in 10 a 500. `served[prompt]` counts the stories it wrote."""

    def __init__(self, delay=0.0):
        self.served, self.failed, self.auth, self.delay, self.lock = Counter(), Counter(), set(), delay, threading.Lock()
        super().__init__(self.handle)

    def handle(self, path, headers, body):
        prompt = body["messages"][-1]["content"]
        h = int(hashlib.md5(prompt.encode()).hexdigest()[:8], 16)
        with self.lock:
            self.auth.add(headers.get("Authorization"))
            fail = h % 10 in (1, 2) and not self.failed[prompt]
            self.failed[prompt] += fail
            served = self.served[prompt]
        if fail:
            return 429 if h % 10 == 1 else 500, {"error": "busy"}, {"Retry-After": "0"}
        time.sleep(self.delay)
        text = fake_story(prompt, random.Random(f"{h}-{served}"))
        if h % 10 == 3 and not served:  # the first answer leaves out the adjective; asked again, it is fine
            text = text.replace(f" {WORDS.search(prompt).group(3)} ", " plain ")
        with self.lock:
            self.served[prompt] += 1
        return 200, {"choices": [{"message": {"role": "assistant", "content": text}}],
                     "usage": {"prompt_tokens": 90, "completion_tokens": 60}}, {}


@pytest.fixture(scope="module")
def server():
    s = StoryServer(delay=0.01)
    yield s
    s.close()


def prepare(*args, cwd, server=None, check=True):
    env = dict(os.environ, OPENAI_API_KEY=KEY, **({"OPENAI_BASE_URL": server.base} if server else {}))
    r = subprocess.run([sys.executable, os.path.join(ROOT, "prepare.py"), "--dataset=generate", *args], cwd=cwd,
                       env=env, capture_output=True, text=True, timeout=120)
    if check and r.returncode:
        raise AssertionError(f"prepare.py {args} failed:\n{r.stdout[-2000:]}\n{r.stderr[-2000:]}")
    return r


def rows(path):
    out = []
    for line in open(path, encoding="utf-8"):
        try:
            out.append(json.loads(line))
        except json.JSONDecodeError:  # the half line a kill leaves
            pass
    return out


FAST = ["--num_stories=30", "--vocab_size=300", "--workers=4", "--backoff=0.001", "--seed=7"]


@pytest.fixture(scope="module")
def generated(server, tmp_path_factory):
    """Three runs into one folder: stopped by --max_requests, SIGKILLed, then finished."""
    work = tmp_path_factory.mktemp("gen")
    jsonl = work / "data" / "generate" / "generated.jsonl"
    capped = prepare(*FAST, "--max_requests=12", cwd=work, server=server, check=False)
    assert capped.returncode == 1 and "request cap reached" in capped.stderr and "Traceback" not in capped.stderr
    after_cap = {(r["i"], r["attempt"]) for r in rows(jsonl)}
    assert 6 <= len(after_cap) <= 12  # the 429s and 500s used some of the 12 requests

    env = dict(os.environ, OPENAI_BASE_URL=server.base, OPENAI_API_KEY=KEY)
    server.delay = 0.05  # slow enough to kill it mid-way
    proc = subprocess.Popen([sys.executable, os.path.join(ROOT, "prepare.py"), "--dataset=generate", *FAST],
                            cwd=work, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 60
    while len(rows(jsonl)) < len(after_cap) + 6 and time.time() < deadline:
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    time.sleep(0.3)  # the requests it had in flight still arrive at the server: count them as the killed run's
    server.delay = 0.0
    after_kill = {(r["i"], r["attempt"]) for r in rows(jsonl)}
    assert after_cap < after_kill and sum(r["ok"] for r in rows(jsonl)) < 30  # killed mid-way
    with open(jsonl, "a") as f:
        f.write('{"i": 99999, "ok": tr')  # the half line a kill in the middle of a write leaves
    served_before = sum(server.served.values())
    done = prepare(*FAST, cwd=work, server=server)
    return SimpleNamespace(work=work, jsonl=jsonl, after_kill=after_kill, out=done.stdout,
                           sent=sum(server.served.values()) - served_before)


def job_prompt(i, seed=7):
    s = SimpleNamespace(seed=seed, language="")
    return llm_stories.job(i, 0, s, llm_stories.read_recipe(llm_stories.RECIPE), llm_stories.PROMPT)["messages"][0]["content"]


def test_reaches_the_target_and_asks_a_refused_request_again(generated):
    all_rows = rows(generated.jsonl)
    kept, refused = [r for r in all_rows if r["ok"]], [r for r in all_rows if not r["ok"]]
    assert len(kept) == 30 and refused
    assert all(r["reason"].startswith("missing ") and r["attempt"] == 0 for r in refused)
    for r in refused:  # the same request, asked again, was kept
        assert any(k["i"] == r["i"] and k["attempt"] == 1 for k in kept)
    assert "30/30 kept" in generated.out and "stories/min" in generated.out and "tokens" in generated.out
    for r in kept:
        assert set(r) >= {"story", "words", "features", "summary", "shown", "model"} and r["model"] == "gpt-4o-mini"
        assert all(llm_stories.uses(r["story"], w) for w in r["words"]) and set(r["features"]) <= set(llm_stories.FEATURES)
    assert len({(r["i"], r["attempt"]) for r in all_rows}) == len(all_rows)  # no request answered twice


def test_resuming_never_pays_twice(server, generated):
    assert all(server.served[job_prompt(i)] >= 1 for i, _ in generated.after_kill)
    # the final run asked only for what was missing; the kill lost at most the --workers=4 requests in flight
    assert generated.sent == len(rows(generated.jsonl)) - len(generated.after_kill)
    asked_again = sum(1 for r in rows(generated.jsonl) if r["attempt"])
    assert sum(server.served.values()) <= len(rows(generated.jsonl)) + 4 and asked_again
    before = sum(server.served.values()) + sum(server.failed.values())
    again = prepare(*FAST, "--stage=stories", cwd=generated.work, server=server)
    assert sum(server.served.values()) + sum(server.failed.values()) == before  # a finished run sends nothing
    assert "30 of 30 stories kept" in again.stdout


def test_bins_decode_back_to_the_kept_stories_split_by_request_index(generated):
    data = generated.work / "data" / "generate"
    kept = sorted((r for r in rows(generated.jsonl) if r["ok"]), key=lambda r: r["i"])
    enc = tokenizer.load_encoding(data / "tokenizer.tiktoken")
    decoded = {}
    for split in ("train", "val"):
        ids = np.fromfile(data / f"{split}.bin", dtype=np.uint16)
        decoded[split] = enc.decode(ids.tolist()).split(tokenizer.EOT)[:-1]
    assert decoded["val"] == [r["story"] for r in kept if r["i"] % 20 == 19]
    assert decoded["train"] == [r["story"] for r in kept if r["i"] % 20 != 19]
    assert json.loads((data / "meta.json").read_text())["train"]["stories"] == len(decoded["train"])


def test_the_key_is_sent_but_never_written(server, generated):
    assert f"Bearer {KEY}" in server.auth
    for path in (p for p in (generated.work / "data").rglob("*") if p.is_file()):
        assert KEY.encode() not in path.read_bytes()
    assert KEY not in generated.out


def test_export_writes_a_corpus_file_that_is_the_same_bytes_every_time(server, generated):
    paths = [generated.work / f"c{k}.jsonl.gz" for k in (1, 2)]
    for p in paths:
        prepare(*FAST, "--stage=stories", f"--export={p}", cwd=generated.work, server=server)
    assert paths[0].read_bytes() == paths[1].read_bytes()
    from lib import corpus
    exported = corpus.read_corpus(paths[0])
    assert [r["i"] for r in exported] == sorted(r["i"] for r in rows(generated.jsonl) if r["ok"])
    assert set(exported[0]) == set(corpus.CORPUS_FIELDS)


def test_extend_starts_from_the_shipped_corpus_and_asks_only_for_more(server, tmp_path):
    from lib import corpus
    count = corpus.CORPUS[1]
    r = prepare(f"--num_stories={count + 3}", "--extend=True", "--stage=stories", "--workers=2", cwd=tmp_path, server=server)
    written = rows(tmp_path / "data" / "generate" / "generated.jsonl")
    asked = [w for w in written if w["model"] != "shipped corpus"]
    assert f"{count:,} stories of the shipped corpus taken" in r.stdout and len(written) - len(asked) == count
    assert sum(w["ok"] for w in asked) == 3  # only the three more, none of the shipped ones asked again
    assert not {w["i"] for w in asked} & {w["i"] for w in written if w["model"] == "shipped corpus"}
    other = prepare(f"--num_stories={count + 3}", "--extend=True", "--seed=5", cwd=tmp_path / "data", server=server, check=False)
    assert other.returncode == 1 and "fingerprint" in other.stderr and len(other.stderr.strip().splitlines()) == 1


def test_dry_run_prints_the_request_and_a_cost_and_sends_nothing(server, tmp_path):
    sent = sum(server.served.values()) + sum(server.failed.values())
    r = prepare("--num_stories=1000", "--dry_run=True", cwd=tmp_path, server=server)
    assert sum(server.served.values()) + sum(server.failed.values()) == sent
    assert WORDS.search(r.stdout) and "1000 requests" in r.stdout and "estimated cost $" in r.stdout
    assert not (tmp_path / "data" / "generate" / "generated.jsonl").exists()


def test_bad_input_and_a_dead_server_end_in_one_line(server, tmp_path):
    (tmp_path / "p.txt").write_text("A story about {verb} and {adjective}.")
    for args, fragment in ((["--prompt_file=p.txt", "--num_stories=5"], "must contain {noun}"),
                           ([], "needs --num_stories=N"),
                           (["--num_stories=1"], "at least 2 stories"),
                           (["--recipe=nowhere.txt", "--num_stories=5"], "--recipe=FILE"),
                           (["--batch=read", "--num_stories=5"], "--batch_results=FILE"),
                           (["--api_base=http://127.0.0.1:9/v1", "--max_retries=0", "--num_stories=5"], "a rerun continues")):
        r = prepare(*args, cwd=tmp_path, server=server, check=False)
        lines = r.stderr.strip().splitlines()
        assert r.returncode == 1 and len(lines) == 1 and lines[0].startswith("error: ") and fragment in lines[0], r.stderr


# --- batch files ---------------------------------------------------------------------------------

def answer(custom_id, text):
    return json.dumps({"id": "batch_req_1", "custom_id": custom_id, "response": {"status_code": 200, "body": {
        "model": "writer-1", "choices": [{"message": {"role": "assistant", "content": text}}],
        "usage": {"prompt_tokens": 100, "completion_tokens": 300}}}, "error": None})


def test_a_batch_round_trip_counts_every_line_and_loses_nothing(tmp_path):
    args = ["--num_stories=8", "--seed=3", "--vocab_size=300"]
    first = prepare(*args, "--batch=write", cwd=tmp_path)
    requests = [json.loads(line) for line in open(tmp_path / "data" / "generate" / "batch_requests.jsonl")]
    assert len(requests) == 8 and "8 requests written" in first.stdout and "api.openai.com/v1/batches" in first.stdout
    for r in requests:
        assert r["method"] == "POST" and r["url"] == "/v1/chat/completions"
        assert set(r["body"]) == {"model", "messages", "temperature", "max_tokens"} and r["body"]["temperature"] == 1.0
    ids = [r["custom_id"] for r in requests]
    prompt = {r["custom_id"]: r["body"]["messages"][0]["content"] for r in requests}
    good = {c: fake_story(prompt[c], random.Random(c)) for c in ids}
    lines = [answer(c, good[c]) for c in ids[:5]]  # five good answers
    lines.append(answer(ids[5], good[ids[5]].split("\n\n")[0]))  # a story far too short: refused
    lines.append(json.dumps({"custom_id": ids[6], "response": None,
                             "error": {"code": "server_error", "message": "the model is overloaded"}}))
    lines.append('{"custom_id": "story-')  # a malformed line
    lines.append(answer("story-0000000000-0-0", good[ids[0]]))  # an id this run never asked
    lines.append(answer(ids[0], good[ids[1]]))  # a second answer to a request: a duplicate
    (tmp_path / "results.jsonl").write_text("\n".join(lines) + "\n")
    read = prepare(*args, "--batch=read", "--batch_results=results.jsonl", cwd=tmp_path)
    assert ("5 accepted, 1 refused, 1 error, 1 malformed, 1 unknown, 1 duplicate" in read.stdout
            and "3 still to write" in read.stdout)
    jsonl = rows(tmp_path / "data" / "generate" / "generated.jsonl")
    assert len(jsonl) == 6 and sum(r["ok"] for r in jsonl) == 5  # every answer recorded, kept or refused
    assert next(r for r in jsonl if not r["ok"])["reason"].endswith("words (needs 100-300)")
    assert {r["model"] for r in jsonl} == {"writer-1"}
    again = prepare(*args, "--batch=write", cwd=tmp_path)
    missing = [json.loads(line)["custom_id"] for line in open(tmp_path / "data" / "generate" / "batch_requests.jsonl")]
    # only what is missing: the refused request asked again (attempt 1), the errored and unanswered ones as they were
    assert missing == [ids[5][:-1] + "1", ids[6], ids[7]] and "3 requests written" in again.stdout
    (tmp_path / "more.jsonl").write_text("\n".join(answer(c, fake_story(prompt[c[:-1] + "0"], random.Random(c)))
                                                   for c in missing) + "\n")
    done = prepare(*args, "--batch=read", "--batch_results=more.jsonl", cwd=tmp_path)
    assert "3 accepted" in done.stdout and (tmp_path / "data" / "generate" / "train.bin").exists()
    reread = prepare(*args, "--batch=read", "--batch_results=results.jsonl", cwd=tmp_path)
    assert "0 accepted" in reread.stdout and len(rows(tmp_path / "data" / "generate" / "generated.jsonl")) == 9


def test_a_results_file_for_another_request_set_is_refused_in_one_line(tmp_path):
    prepare("--num_stories=4", "--seed=3", "--batch=write", cwd=tmp_path)
    requests = [json.loads(line) for line in open(tmp_path / "data" / "generate" / "batch_requests.jsonl")]
    (tmp_path / "r.jsonl").write_text("".join(answer(r["custom_id"], fake_story(r["body"]["messages"][0]["content"],
                                                                                random.Random(1))) + "\n" for r in requests))
    r = prepare("--num_stories=4", "--seed=4", "--batch=read", "--batch_results=r.jsonl", cwd=tmp_path, check=False)
    lines = r.stderr.strip().splitlines()
    assert r.returncode == 1 and len(lines) == 1 and "answers none of this run's" in lines[0] and "seed" in lines[0]
    assert not (tmp_path / "data" / "generate" / "generated.jsonl").exists() or not rows(tmp_path / "data" / "generate" / "generated.jsonl")


# --- the recipe and the checks -------------------------------------------------------------------

def test_the_recipe_has_the_papers_vocabulary_size_and_every_feature():
    lists, irregular = llm_stories.read_recipe(llm_stories.RECIPE)
    words = {w.lower() for k in ("verbs", "nouns", "adjectives") for w in lists[k]}
    assert len(words) >= 1200
    assert irregular["run"] == ["ran"] and irregular["mouse"] == ["mice"]
    prompts = [job_prompt(i) for i in range(300)]
    for feature in llm_stories.FEATURES:
        share = sum(f"- {feature}:" in p for p in prompts) / len(prompts)
        assert 0.3 < share < 0.5, (feature, share)
    assert sum("Once upon a time" in p for p in prompts) / len(prompts) < 0.05
    assert len({WORDS.search(p).groups() for p in prompts}) == 300


def test_a_recipe_list_may_go_on_over_lines_and_a_line_break_never_splits_an_item(tmp_path):
    path = tmp_path / "recipe.txt"
    path.write_text("# a comment\nverbs: jump, run:ran,\n  hop\nnouns: ball\nadjectives: red\n"
                    "settings: at the\n  beach, in a big\n  park\n")
    lists, irregular = llm_stories.read_recipe(str(path))
    assert lists == {"verbs": ["jump", "run", "hop"], "nouns": ["ball"], "adjectives": ["red"],
                     "settings": ["at the beach", "in a big park"]}
    assert irregular["run"] == ["ran"]


def test_requests_are_deterministic_and_a_prompt_file_keeps_other_braces():
    s = SimpleNamespace(seed=1, language="")
    recipe = ({"verbs": ["hop"], "nouns": ["frog"], "adjectives": ["green"]}, {})
    assert llm_stories.job(5, 0, s, recipe, llm_stories.PROMPT) == llm_stories.job(5, 0, s, recipe, llm_stories.PROMPT)
    j = llm_stories.job(0, 0, s, recipe, "Use {verb}, {noun}, {adjective} {json: {}}{features}")
    assert j["messages"][0]["content"].startswith("Use hop, frog, green {json: {}}") and not j["cite"]


def test_word_check_accepts_inflections_and_whole_words_only():
    story = "She jumped and ran to the puppies. The happiest stopped. Hopping bunnies."
    for word in ("jump", "puppy", "stop", "hop", "bunny", "happy"):
        assert llm_stories.uses(story, word), word
    for word in ("ump", "pup", "sad", "he", "run"):
        assert not llm_stories.uses(story, word), word
    assert llm_stories.uses(story, "run", irregular=["ran"])
    assert llm_stories.uses("Le CHAT mangeait.", "manger", english=False)


def test_replies_are_parsed_into_story_summary_and_cited_sentences():
    reply = ("**Summary:** A dog plays.\n**Story:**\nThe big dog \u201cran\u201d \u2014 fast.\n<|endoftext|>\n"
             "The end.\nShown by:\nBadEnding: The end.\n- Plot Twist: The big dog.")
    story, summary, words, shown = llm_stories.parse_reply(reply)
    assert story == 'The big dog "ran" - fast.\n\nThe end.' and summary == "A dog plays." and words is None
    assert shown == {"BadEnding": "The end.", "PlotTwist": "The big dog."}
    assert llm_stories.parse_reply("Just a story.")[:2] == ("Just a story.", None)


STORY = ("Mia had a red kite. She liked to run with it in the park every day. A dark cloud came over the hill.\n\n"
         '"Can I fly it?" asked Ben. Mia said no, and Ben was sad. Then the wind took the kite away.\n\n'
         "The kite was gone. Mia cried all the way home, and she never saw it again.")


@pytest.mark.parametrize("features,shown,reason", [
    (["Dialogue"], {}, None),
    (["BadEnding"], {"BadEnding": "Mia cried all the way home"}, None),
    (["BadEnding"], {"BadEnding": "Then the wind took the kite away."}, "BadEnding's sentence is not in the last paragraph"),
    (["BadEnding"], {}, "BadEnding not cited"),
    (["BadEnding"], {"BadEnding": "Mia flew to the moon."}, "BadEnding's cited sentence is not in the story"),
    (["PlotTwist"], {"PlotTwist": "Mia had a red kite."}, "PlotTwist's sentence is in the first paragraph"),
    (["Foreshadowing"], {"Foreshadowing": "A dark cloud came over the hill."}, None),
    (["Foreshadowing"], {"Foreshadowing": "she never saw it again"}, "Foreshadowing's hint is not in the first half"),
    (["Conflict", "MoralValue"], {"Conflict": "Mia said no, and Ben was sad."}, "MoralValue not cited"),
])
def test_every_feature_is_checked_where_it_shows(features, shown, reason):
    padded = STORY.replace("was gone.", "was gone. " + "She looked and looked. " * 12)  # over the 100-word floor
    assert llm_stories.validate(padded, ["run", "kite", "red"], features, shown) == reason


def test_a_story_is_refused_for_its_size_words_text_or_its_likeness_to_another():
    padded = STORY.replace("was gone.", "was gone. " + "She looked and looked. " * 12)
    v = lambda story, words=("run", "kite", "red"): llm_stories.validate(story, list(words), [], {})  # noqa: E731
    assert v(padded) is None
    assert v(STORY).endswith("words (needs 100-300)")
    assert v(padded.replace("\n\n", " ")) == "1 paragraphs (needs 3-5)"
    assert v(padded, ["jump", "kite", "red"]) == "missing jump"
    assert v(padded.replace("Mia had", "**Mia** had")) == "not plain text: '*'"
    assert v(padded.replace("Mia had", "M\u00c3\u00a9a had")).startswith("not plain text")
    kept = llm_stories.Kept(target=40)  # 5% of 40: each 3-word opening at most twice
    assert kept.problem(padded) is None
    kept.add(padded, 0)
    assert kept.problem(padded) == "duplicate"
    copy = "Ben said hi. " + padded.split(". ", 1)[1]
    assert kept.problem(copy) == "shares a 12-word run with story 0"
    words = padded.split()
    reworded = " ".join(w + "y" if k % 6 == 5 else w for k, w in enumerate(words))
    assert kept.problem(reworded) is None
    kept.add(reworded, 1)
    other = " ".join(w + "z" if k % 6 == 5 else w for k, w in enumerate(words))
    assert kept.problem(other) == "opening 'mia had a' is already in 2 stories"
