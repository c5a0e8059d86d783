"""grade.py and metrics.py: the offline metrics on cases with known answers, grade parsing and
averaging, and grade.py end to end on a tiny checkpoint against a fake judge on 127.0.0.1
(conversation shape, resuming, spend cap, one-line errors, the key never written anywhere)."""
import json
import math
import os
import runpy
import subprocess
import sys
import threading

import pytest
import torch
import torch.nn.functional as F

from conftest import ROOT, corpus_stories
from lib import metrics, tokenizer
from model import GPT, GPTConfig
from test_llm import KEY, FakeServer, free_port

PROMPTS = [ln.strip() for ln in open(os.path.join(ROOT, "prompts.txt")) if ln.strip() and not ln.startswith("#")]
FAST = ["--num_prompts=3", "--samples_per_prompt=2", "--max_new_tokens=12", "--workers=4", "--backoff=0.01",
        "--timeout=2.0", "--max_retries=3", "--device=cpu", "--dtype=float32", "--bpb_tokens=2000"]

# The fake judge's grade replies, in the shapes real judges write; six conversations use each twice.
GRADE_REPLIES = ["Grammar: 8/10\nCreativity: 6/10\nConsistency: 7/10\nPlot: 5/10\nAge group: C",
                 "**Grammar:** 9/10\n**Creativity:** 7/10\n**Consistency:** 8/10\n**Plot:** 6/10\n**Age group:** D (8-9)",
                 "grammar - 7 out of 10\ncreativity - 5 out of 10\nconsistency with the beginning: 6 out of 10\n"
                 "PLOT : 4 / 10\nAge Group: B"]


def judge_reply(counter=[0], lock=threading.Lock()):
    def reply(body):
        if len(body["messages"]) == 1:
            return "The student finished the sentence and kept the same characters."
        with lock:
            counter[0] += 1
            return GRADE_REPLIES[(counter[0] - 1) % len(GRADE_REPLIES)]
    counter[0] = 0
    return reply


@pytest.fixture(scope="module")
def work(tmp_path_factory):
    """A folder with data/tiny/{train,val}.txt and out/ckpt.pt: a 1-layer model, untrained, with a
    300-token BPE learned from stories made of the project's own beginnings."""
    work = tmp_path_factory.mktemp("grade")
    stories = [f"{p} Then they all went home. They had soup for dinner. Everyone was happy. The end." for p in PROMPTS]
    data = work / "data" / "tiny"
    data.mkdir(parents=True)
    (data / "train.txt").write_text("".join(f"{s}\n{tokenizer.EOT}\n" for s in stories[:40]))
    (data / "val.txt").write_text("".join(f"{s}\n{tokenizer.EOT}\n" for s in stories[40:]))
    ranks = tokenizer.train_bpe(stories, 300)
    enc = tokenizer.get_encoding(ranks)
    torch.manual_seed(0)
    args = dict(block_size=64, vocab_size=enc.n_vocab, n_layer=1, n_head=2, n_embd=32, bias=False, dropout=0.0)
    model = GPT(GPTConfig(**args))
    (work / "out").mkdir()
    torch.save(dict(model=model.state_dict(), model_args=args, config={"dataset": "tiny"},
                    tokenizer=tokenizer.dump_ranks(ranks), iter_num=0), work / "out" / "ckpt.pt")
    return work


def fresh_out(work, name):
    """A checkpoint folder of its own (a copy of out/), so each test starts with empty caches."""
    d = work / name
    d.mkdir()
    (d / "ckpt.pt").write_bytes((work / "out" / "ckpt.pt").read_bytes())
    return d


def grade(work, *args, monkeypatch):
    """Run grade.py in this process (no second torch import): argv as a user types it, cwd = work."""
    monkeypatch.chdir(work)
    monkeypatch.setattr(sys, "argv", ["grade.py", *FAST, *args])
    runpy.run_path(os.path.join(ROOT, "grade.py"), run_name="__main__")


@pytest.fixture
def judge(monkeypatch):
    server = FakeServer(judge_reply())
    monkeypatch.setenv("OPENAI_BASE_URL", server.base)
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    yield server
    server.close()


# --- metrics on known answers ------------------------------------------------------------------

@pytest.mark.parametrize("reply", GRADE_REPLIES)
def test_grades_parse_across_formats(reply):
    g = metrics.parse_grades(reply)
    assert set(g) == {"grammar", "creativity", "consistency", "plot", "age"}
    assert all(0 <= g[k] <= 10 for k in metrics.GRADES) and g["age"] in "BCD"


def test_grade_parsing_edge_cases():
    assert metrics.parse_grades("Grammar: 8.5\nCreativity: 6\nConsistency: 7\nPlot: 9\nAge group: e") == \
        {"grammar": 8.5, "creativity": 6.0, "consistency": 7.0, "plot": 9.0, "age": "E"}
    assert metrics.parse_grades("Grammar: 8/10\nCreativity: 6/10\nConsistency: 7/10\nPlot: 9/10")["age"] is None
    assert metrics.parse_grades("I think the story is lovely!") is None
    assert metrics.parse_grades("Grammar: 12/10\nCreativity: 6/10\nConsistency: 7/10\nPlot: 9/10") is None
    assert metrics.parse_grades("Grammar: 8/10\nCreativity: 6/10\nPlot: 9/10") is None  # one missing


def test_mean_and_interval_use_the_spread_of_per_prompt_means():
    assert metrics.mean_ci([]) == {"mean": None, "ci95": None, "n": 0}
    s = metrics.mean_ci([6, 8, 7, 9, 5, 7], groups=["a", "a", "b", "b", "c", "c"])
    # per-prompt means 7, 8, 6: sd 1, three prompts -> t(2) = 4.30
    assert s["mean"] == 7.0 and s["n"] == 6
    assert s["ci95"] == pytest.approx([7 - 4.30 / math.sqrt(3), 7 + 4.30 / math.sqrt(3)], abs=1e-3)


def test_variety_and_instruction_metrics():
    assert metrics.distinct_n(["the cat sat", "the cat ran"], 1) == 4 / 6
    assert metrics.distinct_n(["the cat sat", "the cat ran"], 2) == 3 / 4
    assert metrics.repeated_ngram_rate("a b c d a b c d") == pytest.approx(1 / 5)
    assert metrics.repeated_ngram_rate("one two three") == 0.0
    assert metrics.ends_mid_sentence("She opened the box and")
    assert metrics.ends_mid_sentence('Lily said, "')
    assert not metrics.ends_mid_sentence("It was dark.") and not metrics.ends_mid_sentence('"Stop!"')
    assert metrics.finishes_sentence(" found a frog. It jumped.")
    assert not metrics.finishes_sentence(". The end.") and not metrics.finishes_sentence(" and then")
    assert metrics.required_words_used("He jumped and was happy with the balls.", ["jump", "ball", "happy"]) == 1.0
    assert metrics.required_words_used("They were dancing.", ["dance", "cake"]) == 0.5


def test_new_names_are_words_capitalised_inside_a_sentence_the_beginning_lacks():
    beginning = "Once upon a time, there was a girl named Mia. Her dog was called Max."
    assert metrics.new_names(beginning, " Mia and Max ran. Then Mia said hi to Tom.") == ["Tom"]
    assert metrics.new_names(beginning, ' The sun was up. "Look!" said Mia. She smiled.') == []
    assert metrics.new_names(beginning, " Lily and Ben played, and Sue watched.") == ["Ben", "Sue"]
    assert metrics.new_names(beginning, " On Saturday, Mia went to the lake with Dad and Grandma.") == []  # no one's name
    assert metrics.new_names(beginning, " Mia ran to Aunt Rosa, and Uncle Joe waved.") == ["Rosa", "Joe"]  # the title is not a name
    assert metrics.new_names(beginning, " Tom had a ball. Mia played with Tom.") == ["Tom", "Tom"]  # a sentence's first word too


def test_self_pairs_catch_a_character_paired_with_itself():
    assert metrics.self_pairs("One day, Lily and Lily went to the farm. Then Lily told Lily a secret.") == \
        ["Lily and Lily", "Lily told Lily"]
    assert metrics.self_pairs("Lily and Max went to the farm. Mom and Dad came too. Dad to Dad, no one.") == []


def test_the_beginnings_are_new_to_the_corpus_and_mix_whole_and_split_sentences():
    """Graded beginnings must not be the openings of training stories (a model that had memorised
    them would look consistent for free); some stop mid-sentence, so finishing one can be checked."""
    assert len(PROMPTS) >= 50 and len(set(PROMPTS)) == len(PROMPTS)
    split = sum(map(metrics.ends_mid_sentence, PROMPTS))
    assert 10 <= split < len(PROMPTS)
    openings = {" ".join(metrics.words(s)[:15]) for s in corpus_stories(100_000)}
    assert not openings & {" ".join(metrics.words(p)[:15]) for p in PROMPTS}


def test_memorisation_finds_copied_spans_and_the_closest_story():
    corpus = ["once upon a time a red fox ran across the big green field to find his mother",
              "the little bird sang a song in the morning sun"]
    index = metrics.CorpusIndex(corpus)
    copied = "yesterday a red fox ran across the big green field to find his friend"
    assert index.longest_copied(copied) == 12  # 'a red fox ... to find his'
    assert index.longest_copied("a red fox ran home") == 0  # nothing as long as 8 words
    assert index.rouge2(corpus[1]) == 1.0
    assert index.rouge2("the little bird flew away") == pytest.approx(2 / 4)
    assert index.rouge2("zebras quietly eat purple grapes") == 0.0


def test_bits_per_byte_is_the_summed_loss_over_bytes(work):
    ranks = tokenizer.parse_ranks(torch.load(work / "out" / "ckpt.pt", weights_only=True)["tokenizer"])
    enc = tokenizer.get_encoding(ranks)
    torch.manual_seed(1)
    model = GPT(GPTConfig(block_size=64, vocab_size=enc.n_vocab, n_layer=1, n_head=2, n_embd=32)).eval()
    stories = ["Tom had a ball.", "The cat sat on the mat and slept."]
    ids = [enc.eot_token] + enc.encode_ordinary(stories[0]) + [enc.eot_token] + enc.encode_ordinary(stories[1]) + [enc.eot_token]
    with torch.no_grad():
        logits = model(torch.tensor([ids[:-1]]), torch.zeros(1, len(ids) - 1, dtype=torch.long))[0]
        bits = F.cross_entropy(logits[0], torch.tensor(ids[1:]), reduction="sum").item() / math.log(2)
    got = metrics.bits_per_byte(model, enc, stories, 10_000, "cpu", torch.autocast("cpu", enabled=False))
    assert got == pytest.approx(bits / sum(len(s) for s in stories), rel=1e-5)


# --- grade.py end to end -----------------------------------------------------------------------

def test_grades_every_completion_and_a_rerun_sends_nothing(work, judge, monkeypatch, capsys):
    out = fresh_out(work, "out-e2e")
    # the first requests meet a rate limit, an outage, garbage and an empty reply: all retried
    judge.script = [("status", 429, {"Retry-After": "0"}), ("status", 500), ("garbage",), ("empty",)]
    grade(work, f"--out_dir={out.name}", monkeypatch=monkeypatch)
    first = capsys.readouterr().out
    conversations = [b["messages"] for _, _, b in judge.requests if len(b.get("messages", [])) == 3]
    assert len(conversations) == 6 and len(judge.requests) == 4 + 12
    completions = [json.loads(ln) for ln in open(out / "completions.jsonl")]
    pairs = {(c["context"], c["text"]) for c in completions}
    for _, _, body in judge.requests[4:]:
        assert body["model"] == "gpt-4o" and body["temperature"] == 0.0
    for messages in conversations:
        assert [m["role"] for m in messages] == ["user", "assistant", "user"]
        assert any(f"{p}***{t}" in messages[0]["content"] for p, t in pairs)  # beginning *** completion
        assert "Grammar" in messages[2]["content"] and "A: 3 or under" in messages[2]["content"]
    result = json.loads((out / "grades.json").read_text())
    assert [result[k]["mean"] for k in metrics.GRADES] == [8.0, 6.0, 7.0, 5.0]
    assert all(result[k]["n"] == 6 and len(result[k]["ci95"]) == 2 for k in metrics.GRADES)
    assert result["age_groups"] == {"A": 0, "B": 2, "C": 2, "D": 2, "E": 0, "F": 0, "unknown": 0}
    assert (result["graded"], result["failed"]) == (6, 0)
    assert {"distinct_1", "repeated_4gram", "no_new_names", "no_self_pairs", "bpb", "rouge2_closest_mean", "split_sentences_finished"} <= set(result["metrics"])
    assert (out / "grades.md").read_text().count("\\*\\*\\*") == 5
    assert "grammar" in first and "bpb" in first

    sent = len(judge.requests)
    grade(work, f"--out_dir={out.name}", monkeypatch=monkeypatch)
    assert len(judge.requests) == sent  # everything came from the caches
    assert json.loads((out / "grades.json").read_text())["grammar"] == result["grammar"]
    written = [os.path.join(r, f) for r, _, fs in os.walk(work) for f in fs]
    assert written and not any(KEY.encode() in open(p, "rb").read() for p in written)
    assert KEY not in first + capsys.readouterr().out


def test_an_unreadable_reply_is_retried_once_then_counted_failed(work, judge, monkeypatch, capsys):
    out = fresh_out(work, "out-garbled")
    judge.reply = lambda body: "Lovely story!" if len(body["messages"]) < 5 else "Still no grades, sorry."
    grade(work, f"--out_dir={out.name}", "--num_prompts=1", "--samples_per_prompt=1", monkeypatch=monkeypatch)
    assert len(judge.requests) == 3  # assessment, grades, one reminder
    result = json.loads((out / "grades.json").read_text())
    assert (result["graded"], result["failed"]) == (0, 1) and result["grammar"]["mean"] is None
    record = json.loads(open(out / "grades_cache.jsonl").readlines()[-1])  # the newest record of the conversation
    assert record["failed"] and record["done"] and record["replies"][-1] == "Still no grades, sorry."


def test_a_prompt_file_replaces_the_wording(work, judge, monkeypatch, capsys):
    out = fresh_out(work, "out-wording")
    (work / "wording.txt").write_text("Read {beginning}***{completion} and assess it.\n---\nNow the grades {please}.\n")
    grade(work, f"--out_dir={out.name}", "--num_prompts=1", "--samples_per_prompt=1", "--prompt_file=wording.txt",
          monkeypatch=monkeypatch)
    messages = judge.requests[-1][2]["messages"]
    assert messages[0]["content"].startswith(f"Read {PROMPTS[0]}***") and messages[0]["content"].endswith("and assess it.")
    assert messages[2]["content"] == "Now the grades {please}."  # braces in the wording are left alone
    assert json.loads((out / "grades.json").read_text())["graded"] == 1


def test_the_request_cap_stops_spending_and_a_rerun_finishes(work, judge, monkeypatch, capsys):
    out = fresh_out(work, "out-capped")
    grade(work, f"--out_dir={out.name}", "--max_requests=5", "--workers=1", monkeypatch=monkeypatch)
    assert len(judge.requests) == 5 and "max_requests=5" in capsys.readouterr().out
    assert json.loads((out / "grades.json").read_text())["graded"] == 2
    grade(work, f"--out_dir={out.name}", monkeypatch=monkeypatch)
    assert len(judge.requests) == 6 * 2  # each turn paid once: the half-graded conversation goes on from its reply
    assert json.loads((out / "grades.json").read_text())["graded"] == 6


def test_a_half_line_left_by_a_kill_costs_no_record_and_no_request(work, judge, monkeypatch, capsys):
    out = fresh_out(work, "out-halfline")
    grade(work, f"--out_dir={out.name}", "--max_requests=4", "--workers=1", monkeypatch=monkeypatch)
    with open(out / "grades_cache.jsonl", "a") as f:
        f.write('{"key": "half a rec')  # a kill in the middle of a write
    grade(work, f"--out_dir={out.name}", monkeypatch=monkeypatch)  # finishes, appending after the half line
    grade(work, f"--out_dir={out.name}", monkeypatch=monkeypatch)  # and finds every record it wrote
    assert len(judge.requests) == 6 * 2
    assert json.loads((out / "grades.json").read_text())["graded"] == 6


def test_a_huge_reply_is_cut_before_it_is_stored(work, judge, monkeypatch, capsys):
    out = fresh_out(work, "out-huge")
    judge.reply = lambda body: "x" * 5_000_000 if len(body["messages"]) == 1 else GRADE_REPLIES[0]
    grade(work, f"--out_dir={out.name}", "--num_prompts=1", "--samples_per_prompt=1", monkeypatch=monkeypatch)
    assert (out / "grades_cache.jsonl").stat().st_size < 1_000_000
    assert json.loads((out / "grades.json").read_text())["graded"] == 1


def test_dry_run_and_offline_mode_send_nothing(work, judge, monkeypatch, capsys):
    out = fresh_out(work, "out-dry")
    grade(work, f"--out_dir={out.name}", "--dry_run=True", monkeypatch=monkeypatch)
    text = capsys.readouterr().out
    assert "***" in text and "estimated cost $" in text and "6 conversations" in text and "distinct_2" in text
    assert not (out / "grades.json").exists()
    grade(work, f"--out_dir={out.name},out", "--judge=none", monkeypatch=monkeypatch)
    text = capsys.readouterr().out
    assert "distinct_2" in text and "bpb" in text and "copied_8gram_share" in text
    assert json.loads((out / "metrics.json").read_text())["bpb"] > 0
    assert judge.requests == []


def test_an_instruct_checkpoint_is_prompted_with_required_words(work, monkeypatch, capsys):
    out = fresh_out(work, "out-instruct")
    ckpt = torch.load(out / "ckpt.pt", weights_only=True)
    ckpt["config"] = {"dataset": "tiny-instruct"}
    torch.save(ckpt, out / "ckpt.pt")
    grade(work, f"--out_dir={out.name}", "--judge=none", monkeypatch=monkeypatch)
    contexts = [json.loads(ln)["context"] for ln in open(out / "completions.jsonl")]
    assert contexts[0].startswith("Words: jump, ball, happy\nSummary: ") and contexts[0].endswith(f"Story: \n{PROMPTS[0]}")
    assert "required_words_used" in json.loads((out / "metrics.json").read_text())


def test_bad_setup_gives_one_line_errors(work, monkeypatch):
    out = fresh_out(work, "out-errors")
    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    for args, fragment in [([], "OPENAI_API_KEY"),  # OpenAI's own endpoint without a key
                           ([f"--api_base=http://127.0.0.1:{free_port()}/v1", "--max_retries=1"], "127.0.0.1"),
                           (["--judge=gpt"], "judge='gpt' is out of range"),
                           (["--prompts=nowhere.txt"], "--prompts=FILE")]:
        with pytest.raises(SystemExit) as e:
            grade(work, f"--out_dir={out.name}", "--num_prompts=1", "--samples_per_prompt=1", *args, monkeypatch=monkeypatch)
        message = str(e.value.code)
        assert message.startswith("error: ") and "\n" not in message and fragment in message, message


def test_grading_from_the_command_line_with_the_key_in_the_environment_then_a_rerun_sends_nothing(work, judge):
    """As a user types it: the server and key in the environment, then the same command again."""
    out = fresh_out(work, "out-cli")
    env = dict(os.environ, OPENAI_BASE_URL=judge.base, OPENAI_API_KEY=KEY)
    cmd = [sys.executable, os.path.join(ROOT, "grade.py"), f"--out_dir={out.name}", "--num_prompts=5",
           "--samples_per_prompt=2", "--max_new_tokens=12", "--device=cpu"]
    r = subprocess.run(cmd, cwd=work, env=env, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert json.loads((out / "grades.json").read_text())["graded"] == 10 and len(judge.requests) == 20
    r = subprocess.run(cmd, cwd=work, env=env, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0 and len(judge.requests) == 20 and "10 of 10 completions already graded" in r.stdout
    assert KEY not in r.stdout + r.stderr


def results_line(custom_id, text=None, error=None):
    body = {"choices": [{"message": {"role": "assistant", "content": text}}], "usage": {}}
    return json.dumps({"custom_id": custom_id, "response": None if error else {"status_code": 200, "body": body},
                       "error": error and {"message": error}}) + "\n"


def test_a_batch_grades_one_turn_a_round_and_each_turn_is_asked_once(work, monkeypatch, capsys):
    out = fresh_out(work, "out-batch")
    reply, asked = judge_reply(), []
    for round_ in range(3):
        grade(work, f"--out_dir={out.name}", "--batch=write", monkeypatch=monkeypatch)
        requests = [json.loads(ln) for ln in open(out / "grade_requests.jsonl")]
        asked += [r["custom_id"] for r in requests]
        lines = []
        for k, r in enumerate(requests):
            assert r["url"] == "/v1/chat/completions" and r["body"]["temperature"] == 0.0
            if round_ == 0 and k == 0:
                lines.append(results_line(r["custom_id"], error="rate limited"))  # asked again next round
            else:
                lines.append(results_line(r["custom_id"], reply(r["body"])))
        (out / "results.jsonl").write_text("".join(lines) + "garbage\n")
        grade(work, f"--out_dir={out.name}", "--batch=read", f"--batch_results={out.name}/results.jsonl", monkeypatch=monkeypatch)
        text = capsys.readouterr().out
        assert "1 malformed" in text
        if round_ == 0:
            assert len(requests) == 6 and "5 accepted, 0 refused, 1 error" in text
            assert "6 conversations need another turn" in text
    # 6 conversations x 2 turns, each answered once; only the errored (unanswered) turn was asked again
    assert len(set(asked)) == 12 and len(asked) == 13
    result = json.loads((out / "grades.json").read_text())
    assert (result["graded"], result["failed"]) == (6, 0) and result["grammar"]["mean"] is not None
    grade(work, f"--out_dir={out.name}", "--batch=write", monkeypatch=monkeypatch)
    assert "nothing left to ask" in capsys.readouterr().out


def test_reference_stories_are_graded_blind_beside_the_model_as_the_ceiling(work, judge, monkeypatch, capsys):
    out = fresh_out(work, "out-reference")
    grade(work, f"--out_dir={out.name}", "--reference=3", "--batch=write", monkeypatch=monkeypatch)
    requests = [json.loads(ln) for ln in open(out / "grade_requests.jsonl")]
    assert len(requests) == 6 + 3  # the model's completions and three true continuations, in one file
    val = (work / "data" / "tiny" / "val.txt").read_text()
    texts = [r["body"]["messages"][0]["content"] for r in requests]
    true_rest = [t for t in texts if t.split("***")[-1].split("\n\n")[0] in val]
    assert len(true_rest) == 3  # cut at a sentence: beginning, ***, then the story's own rest
    assert not any("reference" in t or "model" in t.lower() for t in texts)  # nothing tells them apart
    grade(work, f"--out_dir={out.name}", "--reference=3", "--judge=api", monkeypatch=monkeypatch)
    assert json.loads((work / "data" / "tiny" / "reference" / "grades.json").read_text())["graded"] == 3
    assert "data/tiny/reference" in capsys.readouterr().out


def test_an_instruct_model_is_graded_with_its_instructions_and_on_following_them(work, judge, monkeypatch, capsys):
    out = fresh_out(work, "out-instruct-judge")
    ckpt = torch.load(out / "ckpt.pt", weights_only=True)
    ckpt["config"] = {"dataset": "tiny-instruct"}
    torch.save(ckpt, out / "ckpt.pt")
    judge.reply = lambda body: ("It follows the words." if len(body["messages"]) == 1 else
                                "Grammar: 6/10\nCreativity: 5/10\nConsistency: 4/10\nPlot: 5/10\n"
                                "Instruction following: 3/10\nAge group: B")
    grade(work, f"--out_dir={out.name}", "--num_prompts=1", "--samples_per_prompt=2", monkeypatch=monkeypatch)
    second_turns = [b["messages"] for _, _, b in judge.requests if len(b["messages"]) == 3]
    assert "following the instructions:\n\nWords: jump, ball, happy\nSummary: " in second_turns[0][0]["content"]
    assert "Instruction following: <grade>/10" in second_turns[0][2]["content"]
    result = json.loads((out / "grades.json").read_text())
    assert result["instruction"]["mean"] == 3.0 and result["graded"] == 2
    assert metrics.parse_grades("Grammar: 6/10\nCreativity: 5/10\nConsistency: 4/10\nPlot: 5/10", metrics.GRADES + ("instruction",)) is None
