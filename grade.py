"""
grade.py: measure a model the way the TinyStories paper did. The model completes story beginnings
(prompts.txt), and an LLM judge reads each beginning and completion, split by ***, as a teacher reads a
student's work: a short assessment, then grades out of 10 for grammar, creativity, consistency and plot,
and a guess at the writer's age. Also prints offline metrics (no API) on every run.

    python grade.py --out_dir=out --judge=none                        # offline metrics only
    OPENAI_API_KEY=... python grade.py --out_dir=out --dry_run=True   # the first conversation and a cost estimate
    OPENAI_API_KEY=... python grade.py --out_dir=out-1m,out-8m        # grade checkpoints side by side
    OPENAI_BASE_URL=http://localhost:8000/v1 python grade.py --out_dir=out --judge_model=Qwen/Qwen2.5-7B-Instruct

Resumable and cheap to rerun: completions are cached in <out_dir>/completions.jsonl and grades in
<out_dir>/grades_cache.jsonl, so a killed run picks up where it stopped and a rerun sends nothing.
Results go to <out_dir>/grades.json and grades.md (or metrics.json with --judge=none).
"""
import hashlib
import json
import os
import random
import re
import threading
from collections import Counter

import torch

from lib import llm, metrics, tokenizer
from lib.configurator import COUNT, POSITIVE, configure, die, one_of
from lib.corpus import read_stories
from lib.device import precision
from lib.progress import Progress
from model import load_checkpoint

out_dir = "out"  # checkpoint folder; several, comma-separated, are graded side by side
prompts = "prompts.txt"  # story beginnings, one a line (a relative path not found here is looked up next to grade.py)
num_prompts = 0  # use the first N beginnings; 0 = all
samples_per_prompt = 10  # completions of each beginning
temperature = 1.0  # sampling temperature of the completions (the paper graded samples at 1)
top_k = 0  # 0 = sample from the whole vocabulary
max_new_tokens = 300  # a completion usually ends (at <|endoftext|>) well before this
batch_size = 32  # completions generated at once
seed = 1337
# the judge
judge = "api"  # 'api' (an OpenAI-compatible server) or 'none' (offline metrics only)
judge_model = "gpt-4o"
api_base = ""  # default: $OPENAI_BASE_URL, else https://api.openai.com/v1; the key comes only from $OPENAI_API_KEY
prompt_file = ""  # the judge's wording, turns split by a line '---', with {beginning} and {completion}
workers = 8  # concurrent requests
max_requests = 0  # stop after this many requests (spend cap); 0 = no cap
max_retries = 6  # per request, for 429, 5xx, timeouts and connection errors
backoff = 1.0  # seconds before the first retry; doubles each time
timeout = 60.0  # seconds per request
dry_run = False  # print the first conversation and a cost estimate; send nothing
batch = ""  # '' = live requests | write: every conversation's next turn as a Batch API file | read: its results
batch_requests = ""  # where --batch=write puts the requests; default <first out_dir>/grade_requests.jsonl
batch_results = ""  # --batch=read: the results file the batch API returned
retry_failed = False  # resend conversations whose grades could not be read last time
# offline metrics
reference = 0  # also grade this many val stories, cut at a sentence, the true rest as the completion: the ceiling
text = ""  # text file for bits per byte; default data/<the checkpoint's dataset>/val.txt
bpb_tokens = 100_000  # tokens of it to score
memo_stories = 50_000  # training stories indexed for memorisation (a prefix of train.txt; 0 = all)
device = "auto"
dtype = "auto"
configure(globals(), {"num_prompts": COUNT, "samples_per_prompt": POSITIVE, "max_new_tokens": POSITIVE, "top_k": COUNT,
                      "batch_size": POSITIVE, "temperature": (lambda t: 0 <= t < float("inf"), "0 (greedy) or more"),
                      "judge": one_of("api", "none"), "batch": one_of("", "write", "read"), "workers": POSITIVE,
                      "max_requests": COUNT, "max_retries": COUNT, "bpb_tokens": POSITIVE, "memo_stories": COUNT, "reference": COUNT,
                      "timeout": (lambda v: v > 0, "a number of seconds above 0"), "backoff": COUNT})

# The conversation, in our own words after the paper's design: first a free assessment (the judge
# thinks before it scores), then the grades in a fixed format that parse_grades reads.
TURNS = ["""A student was given the opening of a short story and asked to write the rest of it. The \
opening may stop in the middle of a sentence; then the student had to finish that sentence first. \
The mark *** shows where the opening ends and the student's own writing begins.

{beginning}***{completion}

You are the student's teacher. Write a short overall assessment of the part the student wrote: is \
the grammar and spelling right, does it fit the opening (the same characters, places and events), and \
did the student correctly finish the sentence that was cut off, if there was one?""",
         """Now grade the student's part from 1 to 10 in four areas: grammar, creativity, consistency \
with the opening, and plot (does the story make sense and come to a fitting end?). Then guess the \
student's age group: A: 3 or under, B: 4-5, C: 6-7, D: 8-9, E: 10-12, F: 13-16. Answer in exactly this \
form and add nothing else:
Grammar: <grade>/10
Creativity: <grade>/10
Consistency: <grade>/10
Plot: <grade>/10
Age group: <letter>"""]
# An instruct model's work is graded with its instructions in view, and on following them too.
INSTRUCT_TURNS = [TURNS[0].replace("A student was given the opening of a short story and asked to write the rest \
of it.", "A student was given instructions for a short story and its opening, and asked to write the rest of it, \
following the instructions:\n\n{instructions}\n\n").replace("and \
did the student correctly finish the sentence that was cut off, if there was one?", "did the student correctly \
finish the sentence that was cut off, if there was one, and does the story follow every instruction (it uses the \
words, includes the sentence, shows the features and tells what the summary says, where those are given)?"),
                  TURNS[1].replace("in four areas", "in five areas").replace("fitting end?)", "fitting end?) and \
instruction following").replace("Plot: <grade>/10\n", "Plot: <grade>/10\nInstruction following: <grade>/10\n")]
JUDGE_TOKENS = 800  # a reply's cap: an assessment is about 150 tokens, the grades 40
REMINDER = ("I could not read the grades in your answer. Please reply with exactly one line for each grade "
            "asked for (Grammar: <grade>/10, and so on), then Age group: <letter>.")
# For instruct checkpoints (dataset *-instruct): words each completion must use, verb, noun, adjective.
REQUIRED_WORDS = [("jump", "ball", "happy"), ("share", "cake", "kind"), ("find", "key", "shiny"),
                  ("run", "tree", "brave"), ("sing", "bird", "sad"), ("help", "friend", "little"),
                  ("swim", "fish", "cold"), ("climb", "hill", "tired"), ("hide", "box", "scared"),
                  ("paint", "flower", "bright")]

if prompt_file:
    try:
        TURNS = [t.strip() for t in re.split(r"^---[ \t]*$", open(prompt_file, encoding="utf-8").read(), flags=re.M)]
    except (OSError, UnicodeDecodeError):
        die(f"cannot read --prompt_file={prompt_file}; pass a UTF-8 text file whose turns are split by a line '---'")
    if "{completion}" not in TURNS[0] or "{beginning}" not in TURNS[0]:
        die(f"{prompt_file}: the first turn must contain {{beginning}} and {{completion}}, where the story goes")
if not os.path.exists(prompts) and not os.path.isabs(prompts):
    prompts = os.path.join(os.path.dirname(os.path.abspath(__file__)), prompts)
if not os.path.exists(prompts):
    die(f"no story beginnings at {prompts}; pass --prompts=FILE with one beginning a line")
try:
    beginnings = [ln.strip() for ln in open(prompts, encoding="utf-8") if ln.strip() and not ln.startswith("#")]
except UnicodeDecodeError:
    die(f"{prompts} is not UTF-8 text; save it as UTF-8, one story beginning a line")
if not beginnings:
    die(f"no story beginnings in {prompts}; pass --prompts=FILE with one beginning a line")
beginnings = beginnings[:num_prompts or None]
out_dirs = [d.strip() for d in out_dir.split(",") if d.strip()]
device, dtype, _, autocast = precision(device, dtype)


def file_hash(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()[:16]


def complete(ckpt_dir):
    """Generate (or read back from the cache) samples_per_prompt completions of every beginning.
    Returns (ckpt, model, enc, rows), one row {prompt, words, i, text} per completion."""
    model, ckpt = load_checkpoint(ckpt_dir, device)
    enc = tokenizer.get_encoding(ckpt["tokenizer"])
    instruct = "instruct" in str(ckpt.get("config", {}).get("dataset", ""))
    # the cache holds completions of this exact checkpoint and sampling; anything else is regenerated
    fp = hashlib.sha256(json.dumps([file_hash(os.path.join(ckpt_dir, "ckpt.pt")), temperature, top_k,
                                    max_new_tokens, seed]).encode()).hexdigest()[:16]
    cache_path = os.path.join(ckpt_dir, "completions.jsonl")
    cached = {(r["context"], r["i"]): r["text"] for r in llm.read_jsonl(cache_path) if r.get("fp") == fp}
    jobs = []  # (beginning, required words, context the model sees, sample index)
    for k, b in enumerate(beginnings):
        req = list(REQUIRED_WORDS[k % len(REQUIRED_WORDS)]) if instruct else []
        # the instruct layout (prepare.instruct_text); our beginnings have no summary, so their first sentence stands in
        summary = re.split(r"(?<=[.!?])\s", b, maxsplit=1)[0]
        header = f"Words: {', '.join(req)}\nSummary: {summary}" if instruct else ""
        context = f"{header}\nStory: \n{b}" if instruct else b
        jobs += [(b, req, context, i) for i in range(samples_per_prompt)]
    todo = [j for j in jobs if (j[2], j[3]) not in cached]
    if todo:
        torch.manual_seed(seed)
        progress = Progress(f"{ckpt_dir}: completions", len(todo))
        with llm.open_append(cache_path) as f:
            for s in range(0, len(todo), batch_size):
                batch = todo[s:s + batch_size]
                # training put <|endoftext|> before every story, so that is how a story starts
                ids = [[enc.eot_token] + enc.encode_ordinary(ctx) for _, _, ctx, _ in batch]
                with autocast:
                    out = model.generate(ids, max_new_tokens, temperature, top_k or None, stop_token=enc.eot_token)
                for (_, _, ctx, i), new in zip(batch, out):
                    cached[ctx, i] = enc.decode(new).rstrip()
                    llm.append_jsonl(f, {"fp": fp, "context": ctx, "i": i, "text": cached[ctx, i]})
                progress.update(len(batch))
    else:
        print(f"{ckpt_dir}: all {len(jobs)} completions read from {cache_path}")
    rows = [{"prompt": b, "words": req, "i": i, "text": cached[ctx, i], "instructions": ctx.split("\nStory: \n")[0]
             if instruct else ""} for b, req, ctx, i in jobs]
    return ckpt, model, enc, rows


memo_index = {}  # train.txt path -> CorpusIndex, shared by checkpoints of one dataset


def text_metrics(rows):
    """What the completions themselves show: variety, names kept, sentences finished, words used."""
    texts = [r["text"] for r in rows]
    m = {f"distinct_{n}": round(metrics.distinct_n(texts, n), 4) for n in (1, 2, 3)}
    m["repeated_4gram"] = round(sum(map(metrics.repeated_ngram_rate, texts)) / len(texts), 4)
    m["no_new_names"] = round(sum(not metrics.new_names(r["prompt"], r["text"]) for r in rows) / len(rows), 4)
    # joined, so a pair across the seam counts; only the pairs the completion added
    m["no_self_pairs"] = round(sum(len(metrics.self_pairs(r["prompt"] + r["text"])) == len(metrics.self_pairs(r["prompt"]))
                                   for r in rows) / len(rows), 4)
    split = [r for r in rows if metrics.ends_mid_sentence(r["prompt"])]
    m["split_sentences_finished"] = round(sum(metrics.finishes_sentence(r["text"]) for r in split) / len(split), 4) if split else None
    if rows[0]["words"]:
        m["required_words_used"] = round(sum(metrics.required_words_used(r["text"], r["words"]) for r in rows) / len(rows), 4)
    return m


def offline_metrics(ckpt_dir, ckpt, model, enc, rows):
    dataset = ckpt.get("config", {}).get("dataset", "")
    texts = [r["text"] for r in rows]
    m = text_metrics(rows)
    path = text or os.path.join("data", dataset, "val.txt")
    if os.path.exists(path):
        stories = read_stories(path, end=bpb_tokens * 16)  # plenty for the tokens wanted
        m["bpb"] = round(metrics.bits_per_byte(model, enc, stories, bpb_tokens, device, autocast), 4)
        m["bpb_text"] = path
    else:
        print(f"{ckpt_dir}: no {path} for bits per byte; pass --text=FILE")
    train_txt = os.path.join("data", dataset, "train.txt")
    if os.path.exists(train_txt):
        if train_txt not in memo_index:
            memo_index[train_txt] = metrics.CorpusIndex(read_stories(train_txt, limit=memo_stories))
        index = memo_index[train_txt]
        longest = [index.longest_copied(t) for t in texts]
        rouge = [index.rouge2(t) for t in texts]
        m["memo_stories"] = index.num_stories
        m["copied_8gram_share"] = round(sum(x > 0 for x in longest) / len(longest), 4)
        m["longest_copied_max"] = max(longest)
        m["rouge2_closest_mean"] = round(sum(rouge) / len(rouge), 4)
        m["rouge2_closest_max"] = round(max(rouge), 4)
    else:
        print(f"{ckpt_dir}: no {train_txt}, so no memorisation check")
    return m


def conversation_key(row):  # what the grade depends on: judge, wording, instructions, beginning, completion
    return hashlib.sha256(json.dumps([judge_model, turns_of(row), row.get("instructions", ""), row["prompt"],
                                      row["text"]]).encode()).hexdigest()


def turns_of(row):
    return INSTRUCT_TURNS if row.get("instructions") else TURNS


def grade_names(row):
    return metrics.GRADES + ("instruction",) * bool(row.get("instructions"))


def reference_rows(dataset):
    """The judge's ceiling: val stories of the checkpoints' dataset, each cut after a sentence about
    two fifths in, with the true rest as the 'completion' (the judge is not told which is which)."""
    path = os.path.join("data", dataset, "val.txt")
    if not os.path.exists(path):
        die(f"--reference needs {path}; prepare it: python prepare.py --dataset={dataset}")
    rows = []
    for story in read_stories(path):
        cuts = [m.end() for m in re.finditer(r'[.!?]"?\s+', story)]
        if len(cuts) >= 5:
            cut = cuts[int(len(cuts) * 0.4)]
            rows.append({"prompt": story[:cut].rstrip(), "words": [], "i": 0, "text": story[cut:].strip()})
    if not rows:
        die(f"--reference: no story in {path} has the five sentences a cut needs")
    return rows[:reference]


# --- 1. completions and offline metrics, one checkpoint at a time ---
results, datasets = {}, []
for d in out_dirs:
    ckpt, model, enc, rows = complete(d)
    for row in rows:
        row["key"] = conversation_key(row)
    results[d] = {"rows": rows, "metrics": offline_metrics(d, ckpt, model, enc, rows)}
    datasets.append(ckpt.get("config", {}).get("dataset", ""))
    del model, ckpt
if reference:  # graded like a checkpoint's completions, its cache kept beside the data it came from
    ref_dir = os.path.join("data", datasets[0], "reference")
    os.makedirs(ref_dir, exist_ok=True)
    rows = reference_rows(datasets[0])
    for row in rows:
        row["key"] = conversation_key(row)
    results[ref_dir] = {"rows": rows, "metrics": text_metrics(rows)}
    out_dirs.append(ref_dir)


def fill(turn, row):  # replace, not str.format: stories and user prompts may hold braces
    turn = turn.replace("{instructions}", row.get("instructions", ""))
    return turn.replace("{beginning}", row["prompt"]).replace("{completion}", row["text"])


def messages(row, replies):
    """The conversation so far (each turn, then the judge's reply to it) and the next turn, or None
    when it is over: the grades were read, or the reminder was sent and they still were not."""
    asked = turns_of(row)
    history, turns = [], [fill(t, row) for t in asked] + [REMINDER]
    for turn, reply in zip(turns, replies):
        history += [{"role": "user", "content": turn}, {"role": "assistant", "content": reply}]
    over = len(replies) > len(asked) or (len(replies) == len(asked) and metrics.parse_grades(replies[-1], grade_names(row)))
    return history + ([] if over else [{"role": "user", "content": turns[len(replies)]}]), not over


def record(row, replies):
    """A cache record of a conversation, finished or not: a rerun carries on from its last reply, so a
    turn that was paid for is never asked again."""
    grades = metrics.parse_grades(replies[-1], grade_names(row)) if len(replies) >= len(turns_of(row)) else None
    going = messages(row, replies)[1]
    return {"key": row["key"], "judge_model": judge_model, "prompt": row["prompt"], "completion": row["text"],
            "grades": grades, "replies": replies, "done": not going, "failed": not going and grades is None}


def ask(client, row, save):
    """Carry one conversation on to its end, saving the record after every reply."""
    replies = list(row["replies"])
    while True:
        history, going = messages(row, replies)
        if not going:
            return
        replies.append(client.chat(history, temperature=0.0, max_tokens=JUDGE_TOKENS)["text"])
        save(record(row, replies))


def estimate(todo):
    """--dry_run: the first conversation as the judge would see it, and what all of them would cost."""
    row = next(iter(todo.values()), results[out_dirs[0]]["rows"][0])
    print("--- the first conversation (the judge's replies go between the turns) ---")
    for k, turn in enumerate(TURNS):
        print(f"[user]\n{fill(turn, row)}\n" + ("[assistant]\n<the judge's assessment>\n" if k + 1 < len(TURNS) else ""))
    # assume an assessment of about 150 tokens and grades of 40; every turn resends what came before
    prompt_tok = completion_tok = 0
    for r in todo.values():
        history = 0
        for turn in TURNS:
            history += llm.estimate_tokens(fill(turn, r))
            prompt_tok += history
            history += 150
        completion_tok += 150 * (len(TURNS) - 1) + 40
    cost = llm.estimated_cost(judge_model, prompt_tok, completion_tok)
    print(f"dry run: {len(todo)} conversations, {len(todo) * len(TURNS)} requests, about {prompt_tok:,} prompt + "
          f"{completion_tok:,} completion tokens, estimated cost {cost}; nothing was sent")


class Caches:
    """Every checkpoint's grades_cache.jsonl: the newest record of each conversation wins, and a record
    goes to each checkpoint that produced the completion (a completion two share is asked once)."""

    def __init__(self):
        self.records = {d: {r["key"]: r for r in llm.read_jsonl(os.path.join(d, "grades_cache.jsonl"))
                            if isinstance(r, dict) and "key" in r and "replies" in r} for d in out_dirs}
        self.files = {d: llm.open_append(os.path.join(d, "grades_cache.jsonl")) for d in out_dirs}
        self.lock = threading.Lock()  # live workers save from their own threads

    def save(self, rec):
        with self.lock:
            for d in out_dirs:
                if rec["key"] in keys_of[d]:
                    self.records[d][rec["key"]] = rec
                    llm.append_jsonl(self.files[d], rec)

    def close(self):
        for f in self.files.values():
            f.close()


def send(todo, caches):
    """Carry every conversation in todo on to its end on `workers` threads."""
    client = llm.connect(judge_model, api_base, max_requests, timeout, max_retries, backoff)
    progress = Progress("judge", len(todo), " graded", every=2.0)

    def take(row, _):
        spent = client.cost()
        progress.update(1, f", {client.requests_sent} requests" + (f", ${spent:.3f}" if spent is not None else ""))
    capped, failed = llm.ask_all(lambda r: ask(client, r, caches.save), list(todo.values()), workers, take)
    if failed:
        die(str(failed) + " (every reply so far is cached: a rerun resumes from there)")
    if capped:
        print(f"judge: stopped at --max_requests={max_requests}; {capped} conversations left unfinished "
              "(rerun with a higher cap to finish them; no reply is asked for twice)")
    spent = client.cost()
    print(f"judge: {client.requests_sent} requests, {client.prompt_tokens:,} prompt + {client.completion_tokens:,} "
          f"completion tokens" + (f", ${spent:.2f}" if spent is not None else ""))


def batch_id(row):
    return f"grade-{row['key'][:24]}-{len(row['replies'])}"


def write_requests(todo):
    """--batch=write: the next turn of every unfinished conversation, as one Batch API file. A
    conversation takes one round per turn (two, a third if the grades needed the reminder)."""
    rows = list(todo.values())[:llm.BATCH_LIMIT]
    random.Random(seed).shuffle(rows)  # in no telling order: whoever answers a slice cannot see whose text is whose
    path = batch_requests or os.path.join(out_dirs[0], "grade_requests.jsonl")
    llm.write_batch(path, [(batch_id(r), {"model": judge_model, "messages": messages(r, r["replies"])[0],
                                          "temperature": 0.0, "max_tokens": JUDGE_TOKENS}) for r in rows])
    rounds = Counter(len(r["replies"]) + 1 for r in rows)
    print(f"judge: turns in this file: {dict(sorted(rounds.items()))} (turn: conversations)")
    print(llm.submit_howto(path, len(rows), f"python grade.py --out_dir={out_dir} --batch=read --batch_results=FILE"))


def read_results(todo, caches):
    """--batch=read: each answer is the judge's reply to its conversation's next turn, cached at once."""
    if not batch_results:
        die("--batch=read needs --batch_results=FILE, the results file the batch API returned")
    by_id = {batch_id(r): r for r in todo.values()}
    answered = {f"grade-{key[:24]}-{n}" for d in out_dirs for key, rec in caches.records[d].items()
                for n in range(len(rec["replies"]))}

    def apply(row, reply):
        rec = record(row, row["replies"] + [reply["text"]])
        caches.save(rec)
        return not rec["failed"]

    llm.read_batch(batch_results, by_id.get, answered, apply, "grading")


def report(d, cache):
    """grades.json and grades.md for one checkpoint; returns the summary."""
    graded = [(row, cache[row["key"]]) for row in results[d]["rows"] if cache.get(row["key"], {}).get("done", True)
              and row["key"] in cache]
    ok = [(row, g) for row, g in graded if not g["failed"]]
    names = grade_names(results[d]["rows"][0]) if results[d]["rows"] else metrics.GRADES
    summary = {name: metrics.mean_ci([g["grades"][name] for _, g in ok], [row["prompt"] for row, _ in ok])
               for name in names}
    ages = Counter(g["grades"]["age"] for _, g in ok)
    summary["age_groups"] = {a: ages.get(a, 0) for a in metrics.AGE_GROUPS} | {"unknown": ages.get(None, 0)}
    summary.update(graded=len(ok), failed=len(graded) - len(ok), ungraded=len(results[d]["rows"]) - len(graded),
                   judge_model=judge_model, metrics=results[d]["metrics"])
    with open(os.path.join(d, "grades.json"), "w") as f:
        json.dump(summary, f, indent=2)
    with open(os.path.join(d, "grades.md"), "w", encoding="utf-8") as f:
        f.write(f"# Grades of {d} by {judge_model}\n\n| | mean | 95% interval | n |\n|---|---|---|---|\n")
        for name in names:
            s = summary[name]
            f.write(f"| {name} | {s['mean']} | {s['ci95']} | {s['n']} |\n")
        f.write(f"\nAge groups: {summary['age_groups']}. Graded {len(ok)}, failed {summary['failed']}.\n")
        f.write(f"\nOffline metrics: {json.dumps(results[d]['metrics'])}\n\n## Five samples\n")
        for row, g in graded[::max(1, len(graded) // 5)][:5]:  # spread over the prompts
            grades = ", ".join(f"{k}: {v}" for k, v in g["grades"].items()) if g["grades"] else "unreadable"
            assessment = "\n> ".join(g["replies"][0].splitlines())
            f.write(f"\n{row['prompt']} \\*\\*\\* {row['text']}\n\n**{grades}**\n\n> {assessment}\n")
    print(f"{d}: wrote grades.json and grades.md")
    return summary


# --- 2. the judge: every checkpoint's ungraded completions, through one pool of workers ---
if judge == "none":
    for d in out_dirs:
        with open(os.path.join(d, "metrics.json"), "w") as f:
            json.dump(results[d]["metrics"], f, indent=2)
else:
    caches = Caches()
    keys_of = {d: {row["key"] for row in results[d]["rows"]} for d in out_dirs}
    todo = {}  # key -> row with the replies so far; a completion two checkpoints share is asked once
    for d in out_dirs:
        for row in results[d]["rows"]:
            hit = caches.records[d].get(row["key"])
            if retry_failed and hit and hit["failed"]:
                hit = None
            if not (hit and hit.get("done", True)):
                todo.setdefault(row["key"], dict(row, replies=hit["replies"] if hit else []))
    total = sum(len(results[d]["rows"]) for d in out_dirs)
    print(f"judge: {total - len(todo)} of {total} completions already graded, {len(todo)} to go to {judge_model}")
    if dry_run:
        estimate(todo)
    elif batch == "write":
        write_requests(todo)
    else:
        if batch == "read":
            read_results(todo, caches)
            going = sum(not caches.records[d].get(k, {}).get("done") for d in out_dirs for k in keys_of[d])
            if going:
                print(f"judge: {going} conversations need another turn: rerun with --batch=write for the next file")
        elif todo:
            send(todo, caches)
        for d in out_dirs:
            results[d]["summary"] = report(d, caches.records[d])
    caches.close()


# --- 3. the table, one column per checkpoint ---
def fmt(v):
    return "-" if v is None else f"{v:.3f}" if isinstance(v, float) else str(v)


lines = []
if all("summary" in results[d] for d in out_dirs):
    for name in dict.fromkeys(n for d in out_dirs for n in metrics.GRADES + ("instruction",) if n in results[d]["summary"]):
        cells = []
        for d in out_dirs:
            s = results[d]["summary"].get(name, {"mean": None})
            cells.append("-" if s["mean"] is None else f"{s['mean']:.2f}" + (f" ±{(s['ci95'][1] - s['ci95'][0]) / 2:.2f}" if s["ci95"] else ""))
        lines.append((name, cells))
    lines.append(("age A/B/C/D/E/F", ["/".join(str(results[d]["summary"]["age_groups"][a]) for a in metrics.AGE_GROUPS) for d in out_dirs]))
    lines.append(("graded / failed", [f"{results[d]['summary']['graded']} / {results[d]['summary']['failed']}" for d in out_dirs]))
keys = list(dict.fromkeys(k for d in out_dirs for k in results[d]["metrics"] if k != "bpb_text"))
lines += [(k, [fmt(results[d]["metrics"].get(k)) for d in out_dirs]) for k in keys]
width = max(14, *(len(d) for d in out_dirs)) + 2
print("\n" + " " * 26 + "".join(d.rjust(width) for d in out_dirs))
for name, cells in lines:
    print(name.ljust(26) + "".join(c.rjust(width) for c in cells))
