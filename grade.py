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
import re
from collections import Counter

import torch

import llm
import metrics
import tokenizer
from configurator import configure, die, resolve_device, resolve_dtype
from model import load_checkpoint
from progress import Progress

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
retry_failed = False  # resend conversations whose grades could not be read last time
# offline metrics
text = ""  # text file for bits per byte; default data/<the checkpoint's dataset>/val.txt
bpb_tokens = 100_000  # tokens of it to score
memo_stories = 50_000  # training stories indexed for memorisation (a prefix of train.txt; 0 = all)
device = "auto"
dtype = "auto"
configure(globals())

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
REMINDER = ("I could not read the grades in your answer. Please reply with exactly five lines: "
            "Grammar: <grade>/10, Creativity: <grade>/10, Consistency: <grade>/10, Plot: <grade>/10, Age group: <letter>.")
# For instruct checkpoints (dataset *-instruct): words each completion must use, verb, noun, adjective.
REQUIRED_WORDS = [("jump", "ball", "happy"), ("share", "cake", "kind"), ("find", "key", "shiny"),
                  ("run", "tree", "brave"), ("sing", "bird", "sad"), ("help", "friend", "little"),
                  ("swim", "fish", "cold"), ("climb", "hill", "tired"), ("hide", "box", "scared"),
                  ("paint", "flower", "bright")]

if judge not in ("api", "none"):
    die(f"judge must be 'api' or 'none', not {judge!r}")
if prompt_file:
    try:
        TURNS = [t.strip() for t in re.split(r"^---[ \t]*$", open(prompt_file, encoding="utf-8").read(), flags=re.M)]
    except OSError:
        die(f"cannot read --prompt_file={prompt_file}; pass a text file whose turns are split by a line '---'")
    if "{completion}" not in TURNS[0] or "{beginning}" not in TURNS[0]:
        die(f"{prompt_file}: the first turn must contain {{beginning}} and {{completion}}, where the story goes")
if not os.path.exists(prompts) and not os.path.isabs(prompts):
    prompts = os.path.join(os.path.dirname(os.path.abspath(__file__)), prompts)
if not os.path.exists(prompts):
    die(f"no story beginnings at {prompts}; pass --prompts=FILE with one beginning a line")
beginnings = [ln.strip() for ln in open(prompts, encoding="utf-8") if ln.strip() and not ln.startswith("#")]
if num_prompts < 0 or not beginnings:
    die(f"no beginnings to use (num_prompts={num_prompts}, {len(beginnings)} in {prompts}); pass --num_prompts>=0")
beginnings = beginnings[:num_prompts or None]
out_dirs = [d.strip() for d in out_dir.split(",") if d.strip()]
device = resolve_device(device)
dtype = resolve_dtype(dtype, device)
autocast = torch.autocast(device.split(":")[0], dtype=getattr(torch, dtype), enabled=dtype != "float32")


def read_jsonl(path):
    rows = []
    if os.path.exists(path):
        for line in open(path, encoding="utf-8"):
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError:  # the half line a killed run may leave
                pass
    return rows


def append_jsonl(f, row):
    f.write(json.dumps(row) + "\n")
    f.flush()  # each result is durable the moment it arrives


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
    cached = {(r["context"], r["i"]): r["text"] for r in read_jsonl(cache_path) if r.get("fp") == fp}
    jobs = []  # (beginning, required words, context the model sees, sample index)
    for k, b in enumerate(beginnings):
        req = list(REQUIRED_WORDS[k % len(REQUIRED_WORDS)]) if instruct else []
        # the instruct layout (stories.instruct_text); our beginnings have no summary, so their first sentence stands in
        summary = re.split(r"(?<=[.!?])\s", b, maxsplit=1)[0]
        context = f"Words: {', '.join(req)}\nSummary: {summary}\nStory: \n{b}" if instruct else b
        jobs += [(b, req, context, i) for i in range(samples_per_prompt)]
    todo = [j for j in jobs if (j[2], j[3]) not in cached]
    if todo:
        torch.manual_seed(seed)
        progress = Progress(f"{ckpt_dir}: completions", len(todo))
        with open(cache_path, "a", encoding="utf-8") as f:
            for s in range(0, len(todo), batch_size):
                batch = todo[s:s + batch_size]
                # training put <|endoftext|> before every story, so that is how a story starts
                ids = [[enc.eot_token] + enc.encode_ordinary(ctx) for _, _, ctx, _ in batch]
                with autocast:
                    out = model.generate(ids, max_new_tokens, temperature, top_k or None, stop_token=enc.eot_token)
                for (_, _, ctx, i), new in zip(batch, out):
                    cached[ctx, i] = enc.decode(new).rstrip()
                    append_jsonl(f, {"fp": fp, "context": ctx, "i": i, "text": cached[ctx, i]})
                progress.update(len(batch))
    else:
        print(f"{ckpt_dir}: all {len(jobs)} completions read from {cache_path}")
    rows = [{"prompt": b, "words": req, "i": i, "text": cached[ctx, i]} for b, req, ctx, i in jobs]
    return ckpt, model, enc, rows


memo_index = {}  # train.txt path -> CorpusIndex, shared by checkpoints of one dataset


def offline_metrics(ckpt_dir, ckpt, model, enc, rows):
    dataset = ckpt.get("config", {}).get("dataset", "")
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
    path = text or os.path.join("data", dataset, "val.txt")
    if os.path.exists(path):
        stories = metrics.read_stories(path, max_chars=bpb_tokens * 16)  # plenty for the tokens wanted
        m["bpb"] = round(metrics.bits_per_byte(model, enc, stories, bpb_tokens, device, autocast), 4)
        m["bpb_text"] = path
    else:
        print(f"{ckpt_dir}: no {path} for bits per byte; pass --text=FILE")
    train_txt = os.path.join("data", dataset, "train.txt")
    if os.path.exists(train_txt):
        if train_txt not in memo_index:
            memo_index[train_txt] = metrics.CorpusIndex(metrics.read_stories(train_txt, max_stories=memo_stories))
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


def conversation_key(row):  # what the grade depends on: judge, wording, beginning, completion
    return hashlib.sha256(json.dumps([judge_model, TURNS, row["prompt"], row["text"]]).encode()).hexdigest()


# --- 1. completions and offline metrics, one checkpoint at a time ---
results = {}
for d in out_dirs:
    ckpt, model, enc, rows = complete(d)
    for row in rows:
        row["key"] = conversation_key(row)
    results[d] = {"rows": rows, "metrics": offline_metrics(d, ckpt, model, enc, rows)}
    del model, ckpt


def fill(turn, row):  # replace, not str.format: stories and user prompts may hold braces
    return turn.replace("{beginning}", row["prompt"]).replace("{completion}", row["text"])


def grade_one(client, row):
    """The whole conversation for one completion -> a cache record (failed=True if grades unreadable)."""
    messages, replies = [], []
    for turn in TURNS:
        messages.append({"role": "user", "content": fill(turn, row)})
        replies.append(client.chat(messages, temperature=0.0)["text"])
        messages.append({"role": "assistant", "content": replies[-1]})
    grades = metrics.parse_grades(replies[-1])
    if grades is None:  # one more chance, with the format spelled out
        messages.append({"role": "user", "content": REMINDER})
        replies.append(client.chat(messages, temperature=0.0)["text"])
        grades = metrics.parse_grades(replies[-1])
    return {"key": row["key"], "judge_model": judge_model, "prompt": row["prompt"], "completion": row["text"],
            "grades": grades, "replies": replies, "failed": grades is None}


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
    p = llm.price(judge_model)
    cost = f"${(prompt_tok * p[0] + completion_tok * p[1]) / 1e6:.2f}" if p else f"unknown ({judge_model} is not in llm.PRICES)"
    print(f"dry run: {len(todo)} conversations, {len(todo) * len(TURNS)} requests, about {prompt_tok:,} prompt + "
          f"{completion_tok:,} completion tokens, estimated cost {cost}; nothing was sent")


def send(todo, caches):
    """Grade every row of todo on `workers` threads, appending each record to the caches as it arrives."""
    try:
        client = llm.Client(judge_model, api_base=api_base or None, max_requests=max_requests,
                            timeout=timeout, max_retries=max_retries, backoff=backoff)
    except llm.LLMError as e:
        die(str(e))
    files = {d: open(os.path.join(d, "grades_cache.jsonl"), "a", encoding="utf-8") for d in out_dirs}
    progress, over_budget = Progress("judge", len(todo), " graded", every=2.0), 0
    for row, record, error in llm.run_parallel(lambda r: grade_one(client, r), list(todo.values()), workers):
        if isinstance(error, llm.BudgetExceeded):
            over_budget += 1  # the rest fail at once without sending; keep collecting the in-flight ones
            continue
        if isinstance(error, llm.LLMError):
            die(str(error))  # what is graded so far is cached: a rerun resumes from here
        if error is not None:
            raise error
        for d in out_dirs:  # every checkpoint that produced this completion gets the grade
            if row["key"] in keys_of[d]:
                caches[d][row["key"]] = record
                append_jsonl(files[d], record)
        spent = client.cost()
        progress.update(1, f", {client.requests_sent} requests" + (f", ${spent:.3f}" if spent is not None else ""))
    for f in files.values():
        f.close()
    if over_budget:
        print(f"judge: stopped at --max_requests={max_requests}; {over_budget} completions left ungraded "
              "(rerun with a higher cap to grade them; nothing graded is sent again)")
    spent = client.cost()
    print(f"judge: {client.requests_sent} requests, {client.prompt_tokens:,} prompt + {client.completion_tokens:,} "
          f"completion tokens" + (f", ${spent:.2f}" if spent is not None else ""))


def report(d, cache):
    """grades.json and grades.md for one checkpoint; returns the summary."""
    graded = [(row, cache[row["key"]]) for row in results[d]["rows"] if row["key"] in cache]
    ok = [(row, g) for row, g in graded if not g["failed"]]
    summary = {name: metrics.mean_ci([g["grades"][name] for _, g in ok], [row["prompt"] for row, _ in ok])
               for name in metrics.GRADES}
    ages = Counter(g["grades"]["age"] for _, g in ok)
    summary["age_groups"] = {a: ages.get(a, 0) for a in metrics.AGE_GROUPS} | {"unknown": ages.get(None, 0)}
    summary.update(graded=len(ok), failed=len(graded) - len(ok), ungraded=len(results[d]["rows"]) - len(graded),
                   judge_model=judge_model, metrics=results[d]["metrics"])
    with open(os.path.join(d, "grades.json"), "w") as f:
        json.dump(summary, f, indent=2)
    with open(os.path.join(d, "grades.md"), "w", encoding="utf-8") as f:
        f.write(f"# Grades of {d} by {judge_model}\n\n| | mean | 95% interval | n |\n|---|---|---|---|\n")
        for name in metrics.GRADES:
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
    caches = {d: {r["key"]: r for r in read_jsonl(os.path.join(d, "grades_cache.jsonl"))} for d in out_dirs}
    keys_of = {d: {row["key"] for row in results[d]["rows"]} for d in out_dirs}
    todo = {}  # key -> row; a completion two checkpoints share is sent once
    for d in out_dirs:
        for row in results[d]["rows"]:
            hit = caches[d].get(row["key"])
            if hit is None or (retry_failed and hit["failed"]):
                todo.setdefault(row["key"], row)
    total = sum(len(results[d]["rows"]) for d in out_dirs)
    print(f"judge: {total - len(todo)} of {total} completions already graded, {len(todo)} to send to {judge_model}")
    if dry_run:
        estimate(todo)
    else:
        if todo:
            send(todo, caches)
        for d in out_dirs:
            results[d]["summary"] = report(d, caches[d])


# --- 3. the table, one column per checkpoint ---
def fmt(v):
    return "-" if v is None else f"{v:.3f}" if isinstance(v, float) else str(v)


lines = []
if all("summary" in results[d] for d in out_dirs):
    for name in metrics.GRADES:
        cells = []
        for d in out_dirs:
            s = results[d]["summary"][name]
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
