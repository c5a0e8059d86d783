"""prepare.py --dataset=generate against a fake OpenAI-compatible server on 127.0.0.1 that writes a
story with the requested words (and, for some requests, without one of them, or only after a 429 or
500): the run reaches its target, rejects the bad stories, resumes after a request cap and a SIGKILL
without paying twice, builds bins that decode back to the kept stories, and train.py trains on them."""
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

import llm_stories
import stories
import tokenizer
from local_server import LocalServer

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
KEY = "sk-test-SECRET-4242"
WORDS = re.compile(r'the verb "(.+?)", the noun "(.+?)" and the adjective "(.+?)"')


def tale(h, verb, noun, adjective):
    """Three paragraphs of about 150 words, as a real model's stories are, unique to the prompt's hash."""
    rng = random.Random(h)
    name, friend = rng.sample(["Tom", "Lily", "Ben", "Mia", "Sam", "Sue", "Max", "Zoe"], 2)
    pick = lambda *options: rng.choice(options)  # noqa: E731
    return (f"Once upon a time, there was a little {noun} named {name}. {name} lived {pick('in a big park', 'near the sea', 'on a farm')}. "
            f"Every day {name} liked to {verb} with {pick('a red ball', 'a blue kite', 'a small dog')}. "
            f"{name} counted {h % 100_000} stars one night and smiled.\n\n"
            f"One day, {name} met {friend}. \"Do you want to {verb} with me?\" asked {name}. {friend} said yes. "
            f"They played {pick('all day', 'until dinner', 'in the rain')} and laughed a lot. "
            f"Then {pick('the wind blew hard', 'a big dog came', 'it started to rain')}, and they ran home fast.\n\n"
            f"At home, {name} felt {adjective}. {pick('Mom', 'Dad', 'Grandma')} gave {name} a warm hug. "
            f"{name} learned that friends make every day better. The next day, {name} and {friend} "
            f"went to {verb} again, and it was the best day ever.")


class StoryServer(LocalServer):
    """POST /v1/chat/completions. What it does with a prompt depends only on the prompt's hash, so a
    rerun meets the same behaviour: 1 in 10 stories leaves out the adjective, 1 in 10 prompts first
    gets a 429 (Retry-After: 0) and 1 in 10 a 500. `served[prompt]` counts the stories it wrote."""

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
        if fail:
            return 429 if h % 10 == 1 else 500, {"error": "busy"}, {"Retry-After": "0"}
        time.sleep(self.delay)
        verb, noun, adjective = WORDS.search(prompt).groups()
        story = tale(h, verb, noun, adjective if h % 10 else "okay")
        with self.lock:
            self.served[prompt] += 1
        return 200, {"choices": [{"message": {"role": "assistant", "content":
                     f"Summary: A {noun} learns to {verb}.\nStory:\n{story}"}}],
                     "usage": {"prompt_tokens": 90, "completion_tokens": 60}}, {}


@pytest.fixture(scope="module")
def server():
    s = StoryServer(delay=0.01)
    yield s
    s.close()


def prepare(*args, cwd, server, check=True):
    env = dict(os.environ, OPENAI_BASE_URL=server.base, OPENAI_API_KEY=KEY)
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
        except json.JSONDecodeError:
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
    after_cap = {r["i"] for r in rows(jsonl)}
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
    after_kill = {r["i"] for r in rows(jsonl)}
    assert after_cap < after_kill and sum(r["ok"] for r in rows(jsonl)) < 30  # killed mid-way
    with open(jsonl, "a") as f:
        f.write('{"i": 99999, "ok": tr')  # the half line a kill in the middle of a write leaves
    served_before = sum(server.served.values())
    done = prepare(*FAST, cwd=work, server=server)
    return SimpleNamespace(work=work, jsonl=jsonl, after_kill=after_kill, out=done.stdout,
                           sent=sum(server.served.values()) - served_before)


def test_reaches_the_target_and_rejects_stories_missing_a_word(generated):
    all_rows = rows(generated.jsonl)
    kept, rejected = [r for r in all_rows if r["ok"]], [r for r in all_rows if not r["ok"]]
    assert len(kept) == 30 and rejected
    assert all(r["reason"].startswith("missing ") for r in rejected)
    assert "30/30 kept" in generated.out and "stories/min" in generated.out and "tokens" in generated.out
    for r in kept:
        assert set(r) >= {"story", "words", "features", "summary", "model"} and r["model"] == "gpt-4o-mini"
        assert all(w in r["story"] for w in r["words"]) and set(r["features"]) <= set(stories.FEATURES)
    assert len({r["i"] for r in all_rows}) == len(all_rows)  # no request index twice


def test_resuming_never_pays_twice(server, generated):
    s = SimpleNamespace(seed=7, language="", words_file="")
    lists = llm_stories.word_lists("")[0]
    prompt = lambda i: llm_stories.job(i, s, lists, llm_stories.PROMPT)["messages"][0]["content"]  # noqa: E731
    assert all(server.served[prompt(i)] == 1 for i in generated.after_kill)  # saved work is never asked again
    # the final run asked only for what was missing; the kill lost at most the --workers=4 requests in flight
    assert generated.sent == len(rows(generated.jsonl)) - len(generated.after_kill)
    assert max(server.served.values()) <= 2 and sum(n == 2 for n in server.served.values()) <= 4
    before = sum(server.served.values()) + sum(server.failed.values())
    again = prepare(*FAST, "--stage=stories", cwd=generated.work, server=server)
    assert sum(server.served.values()) + sum(server.failed.values()) == before  # a finished run sends nothing
    assert "30 of 30 stories already kept" in again.stdout


def test_bins_decode_back_to_the_kept_stories(generated):
    data = generated.work / "data" / "generate"
    kept = sorted((r for r in rows(generated.jsonl) if r["ok"]), key=lambda r: r["i"])
    enc = tokenizer.load_encoding(data / "tokenizer.tiktoken")
    decoded = {}
    for split in ("train", "val"):
        ids = np.fromfile(data / f"{split}.bin", dtype=np.uint16)
        decoded[split] = enc.decode(ids.tolist()).split(tokenizer.EOT)[:-1]
    assert decoded["val"] == [kept[19]["story"]]  # every 20th kept story
    assert decoded["train"] == [r["story"] for k, r in enumerate(kept) if k != 19]
    assert json.loads((data / "meta.json").read_text())["train"]["stories"] == 29


def test_the_key_is_sent_but_never_written(server, generated):
    assert f"Bearer {KEY}" in server.auth
    for path in (p for p in (generated.work / "data").rglob("*") if p.is_file()):
        assert KEY.encode() not in path.read_bytes()
    assert KEY not in generated.out


def test_instruct_form_from_the_kept_metadata(server, generated):
    folder = generated.work / "data" / "generate-instruct"
    folder.mkdir()
    (folder / "generated.jsonl").write_bytes(generated.jsonl.read_bytes())  # one paid run, both forms
    sent = sum(server.served.values())
    prepare(*FAST, "--instruct=True", "--stage=stories", cwd=generated.work, server=server)
    assert sum(server.served.values()) == sent
    first = (folder / "train.txt").read_text().split(tokenizer.EOT)[0].strip()
    kept = min((r for r in rows(generated.jsonl) if r["ok"]), key=lambda r: r["i"])
    assert f"Words: {', '.join(kept['words'])}" in first and first.endswith(kept["story"])
    assert f"Summary: {kept['summary']}" in first


def test_train_runs_on_the_generated_dataset(generated):
    r = subprocess.run([sys.executable, os.path.join(ROOT, "train.py"), "--dataset=generate", "--max_iters=5",
                        "--eval_interval=5", "--n_layer=1", "--n_embd=32", "--n_head=2", "--block_size=32",
                        "--batch_size=4", "--eval_iters=2", "--sample_tokens=8", "--out_dir=out"],
                       cwd=generated.work, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr[-2000:]
    assert (generated.work / "out" / "ckpt.pt").exists()


def test_dry_run_prints_the_request_and_a_cost_and_sends_nothing(server, tmp_path):
    sent = sum(server.served.values()) + sum(server.failed.values())
    r = prepare("--num_stories=1000", "--dry_run=True", cwd=tmp_path, server=server)
    assert sum(server.served.values()) + sum(server.failed.values()) == sent
    assert WORDS.search(r.stdout) and "1000 more stories" in r.stdout and "estimated cost $" in r.stdout
    assert not (tmp_path / "data" / "generate" / "generated.jsonl").exists()


def test_bad_input_and_a_dead_server_end_in_one_line(server, tmp_path):
    (tmp_path / "p.txt").write_text("A story about {verb} and {adjective}.")
    for args, fragment in ((["--prompt_file=p.txt"], "must contain {noun}"),
                           (["--num_stories=1"], "at least 2 stories"),
                           (["--api_base=http://127.0.0.1:9/v1", "--max_retries=0"], "a rerun continues")):
        r = prepare(*args, cwd=tmp_path, server=server, check=False)
        lines = r.stderr.strip().splitlines()
        assert r.returncode == 1 and len(lines) == 1 and lines[0].startswith("error: ") and fragment in lines[0], r.stderr


def test_a_prompt_file_gets_the_words_and_keeps_other_braces():
    s = SimpleNamespace(seed=1, language="", words_file="")
    lists = {"verbs": ["hop"], "nouns": ["frog"], "adjectives": ["green"]}
    j = llm_stories.job(0, s, lists, "Use {verb}, {noun}, {adjective} {json: {}}{features}")
    assert j["messages"][0]["content"].startswith("Use hop, frog, green {json: {}}")


def settings(**kw):
    return SimpleNamespace(**{"language": "", "words_file": "", "generate_model": "m", **kw})


def test_word_check_accepts_inflections_and_whole_words_only():
    story = "She jumped and ran to the puppies. The happiest stopped. Hopping bunnies."
    for word in ("jump", "puppy", "stop", "hop", "bunny", "happy"):
        assert llm_stories.uses(story, word), word
    for word in ("ump", "pup", "sad", "he", "run"):
        assert not llm_stories.uses(story, word), word
    assert llm_stories.uses(story, "run", irregular=["ran"])
    assert llm_stories.uses("Le CHAT mangeait.", "manger", english=False)


def test_the_built_in_lists_and_a_words_file(tmp_path):
    lists, irregular = llm_stories.word_lists("")
    assert lists["verbs"] == list(stories.VERBS) and lists["nouns"] == stories.NOUNS
    assert all(irregular[v] == [stories.VERBS[v]] for v in lists["verbs"])
    path = tmp_path / "words.txt"
    path.write_text("verbs: jump, run:ran\nnouns: ball\nadjectives: red, big\n")
    assert llm_stories.word_lists(str(path)) == ({"verbs": ["jump", "run"], "nouns": ["ball"], "adjectives": ["red", "big"]},
                                                 {"jump": [], "run": ["ran"], "ball": [], "red": [], "big": []})


def test_replies_are_parsed_and_judged():
    reply = {"text": "**Summary:** A dog plays.\n**Story:**\nThe big dog ran.\n<|endoftext|>\nThe end.",
             "prompt_tokens": 1, "completion_tokens": 2}
    job = {"i": 3, "words": ["run", "dog", "big"], "features": ["Dialogue"]}
    irregular = {"run": ["ran"]}
    row = llm_stories.judge(job, reply, settings(), set(), irregular)
    assert row["ok"] and row["summary"] == "A dog plays." and row["story"] == "The big dog ran.\n\nThe end."
    assert llm_stories.judge(job, reply, settings(), {row["story"]}, irregular)["reason"] == "duplicate"
    assert llm_stories.judge({**job, "words": ["sing", "dog", "big"]}, reply, settings(), set(), {})["reason"] == "missing sing"
    assert llm_stories.parse_reply("Just a story.")[:2] == ("Just a story.", None)
    assert llm_stories.instruct_text({**row, "summary": None}) == "Features: Dialogue\nWords: run, dog, big\nStory: \n" + row["story"]
    french = {**reply, "text": "Words: courir, chien, grand\nSummary: Un chien.\nStory:\nLe grand chien court."}
    row = llm_stories.judge(job, french, settings(language="French"), set(), irregular)
    assert row["ok"] and row["words"] == ["courir", "chien", "grand"] and row["asked"] == ["run", "dog", "big"]


def test_requests_are_deterministic_in_seed_and_index():
    lists = {"verbs": ["a", "b", "c"], "nouns": ["d", "e"], "adjectives": ["f", "g"]}
    s = SimpleNamespace(seed=1, language="", words_file="")
    same = [llm_stories.job(5, s, lists, llm_stories.PROMPT) for _ in range(2)]
    assert same[0] == same[1]
    other = [llm_stories.job(i, s, lists, llm_stories.PROMPT)["messages"] for i in range(20)]
    assert len({m[0]["content"] for m in other}) > 5
