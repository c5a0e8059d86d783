"""
llm_stories.py: make a new TinyStories with an LLM, the paper's way (prepare.py --dataset=generate).

Each request asks an OpenAI-compatible chat model (llm.py, the client grade.py uses) for a 3-5
paragraph story in words a 3-year-old knows, using one given verb, noun and adjective and a random
subset of the paper's story features. Every reply, kept or rejected, is appended to
data/<name>/generated.jsonl the moment it arrives, so a killed run resumes where it stopped and never
pays for a request twice. A story that misses one of its three words (-s, -ed, -ing forms count) or
repeats a kept one is recorded as rejected and replaced by a new request. The kept stories become
train.txt and val.txt (every 20th), or with --instruct=True their Features/Words/Summary/Story form in
data/generate-instruct/ (copy generated.jsonl there first to reuse a paid run); prepare.py then learns
the BPE and writes the bins as for any other dataset.

    OPENAI_API_KEY=... python prepare.py --dataset=generate --num_stories=1000 --dry_run=True
    OPENAI_BASE_URL=http://localhost:8000/v1 python prepare.py --dataset=generate --num_stories=50 \\
        --generate_model=Qwen/Qwen2.5-7B-Instruct --workers=16
    python train.py --dataset=generate
"""
import json
import os
import random
import re
import time
from collections import Counter
from types import SimpleNamespace

import llm
import stories
from configurator import die
from progress import Progress
from tokenizer import EOT

DESCRIBE = {  # the paper's six story features (stories.FEATURES), in our own words
    "Dialogue": "at least one conversation between the characters, in quotation marks",
    "BadEnding": "a sad ending, where things do not turn out well",
    "MoralValue": "a lesson about what is right and what is wrong",
    "PlotTwist": "a surprise that changes where the story goes",
    "Foreshadowing": "an early hint of something that happens later",
    "Conflict": "a problem or a quarrel that the characters have to face",
}
PROMPT = """Write a short story of 3 to 5 paragraphs. Use only very simple words that a 3-year-old \
child would understand. The story must use the verb "{verb}", the noun "{noun}" and the adjective \
"{adjective}".{features}{language}

Reply in exactly this form:
Summary: <one simple sentence that says what happens>
Story:
<the story>"""
MAX_TOKENS = 1200  # a long 5-paragraph story is about 600; the cap only stops a model that rambles on
REPLY_TOKENS = 450  # a typical reply, for --dry_run's estimate
VAL_EVERY = 20  # every 20th kept story goes to val


def word_lists(words_file):
    """({verbs, nouns, adjectives}, {word: irregular forms}): the built-in generator's lists (its verbs
    come with their past tenses), or a file of lines like 'verbs: jump, run:ran, eat:ate:eaten'."""
    if not words_file:
        lists = {"verbs": list(stories.VERBS), "nouns": list(stories.NOUNS), "adjectives": list(stories.ADJECTIVES)}
        return lists, {verb: [past] for verb, past in stories.VERBS.items()}
    lists, irregular = {"verbs": [], "nouns": [], "adjectives": []}, {}
    try:
        for line in open(words_file, encoding="utf-8"):
            kind, _, rest = line.partition(":")
            for spec in rest.split(",") if kind.strip().lower() in lists else ():
                word, *other = [w.strip() for w in spec.split(":")]
                if word:
                    lists[kind.strip().lower()].append(word)
                    irregular[word] = other
    except OSError:
        die(f"cannot read --words_file={words_file}")
    if not all(lists.values()):
        die(f"{words_file} needs lines 'verbs: ...', 'nouns: ...' and 'adjectives: ...' of comma-separated words")
    return lists, irregular


def forms(word):
    """The English words that count as using `word`: itself and its -s, -ed, -ing, -er, -est forms."""
    w = word.lower()
    out = {w + end for end in ("", "s", "es", "ed", "d", "ing", "er", "est")}
    if w.endswith("e"):
        out |= {w[:-1] + end for end in ("ing", "er", "est")}
    if re.search(r"[^aeiou]y$", w):
        out |= {w[:-1] + end for end in ("ies", "ied", "ier", "iest")}
    if re.search(r"(^|[^aeiou])[aeiou][bdgklmnprt]$", w):  # stop -> stopped, big -> bigger
        out |= {w + w[-1] + end for end in ("ed", "ing", "er", "est")}
    return out


def uses(text, word, english=True, irregular=()):
    """Case-insensitive whole-word use; in another language, any word that starts like `word` counts."""
    found, w = re.findall(r"\w+", text.lower()), word.lower().strip()
    if " " in w:
        return f" {w} " in f" {' '.join(found)} "
    if english:
        return not (forms(w) | {x.lower() for x in irregular}).isdisjoint(found)
    return any(t.startswith(w[:max(3, len(w) - 2)]) for t in found)


def parse_reply(text):
    """(story, summary, words line) from a reply in PROMPT's form; a reply without the labels is all
    story. The separator is dropped: a story that held it would split in two in the stories files."""
    fields, story, lines = {}, [], text.replace(EOT, "").strip().splitlines()
    for k, line in enumerate(lines):
        m = re.match(r"[\s*#_]*(words|summary|story)[\s*_]*:[\s*_]*(.*)", line, re.I)
        if m and m[1].lower() == "story":
            story += [m[2]] + lines[k + 1:]
            break
        if m:
            fields[m[1].lower()] = m[2].strip(" *_")
        else:
            story.append(line)
    return "\n".join(story).strip(), fields.get("summary") or None, fields.get("words")


def job(i, s, lists, template):
    """Request i's draw: deterministic in (seed, i), so a resumed run asks exactly what it would have.
    Words and features are drawn as the built-in generator draws them."""
    rng = random.Random(f"llm-{s.seed}-{i}")
    verb, noun, adjective = (rng.choice(lists[k]) for k in ("verbs", "nouns", "adjectives"))
    features = [f for f in stories.FEATURES if rng.random() < stories.FEATURE_PROB]
    wants = "".join(f"\n- {DESCRIBE[f]}" for f in features)
    language = ""
    if s.language:
        language = f"\nWrite the story in {s.language}."
        if not s.words_file:  # the word lists are English: the model translates them in the same reply
            language += (f" Use the {s.language} words for the verb, noun and adjective above, and before the "
                         f"summary add a line 'Words: <those three {s.language} words, separated by commas>'.")
    fill = {"{verb}": verb, "{noun}": noun, "{adjective}": adjective, "{language}": language,
            "{features}": f"\nThe story should have:{wants}" if wants else ""}
    text = template
    for key, value in fill.items():  # replace, not str.format: a prompt file may hold other braces
        text = text.replace(key, value)
    return {"i": i, "words": [verb, noun, adjective], "features": features,
            "messages": [{"role": "user", "content": text}]}


def judge(j, reply, s, kept, irregular):
    """The JSONL row for one reply: kept (ok) or rejected with a reason, and the metadata either way."""
    story, summary, said = parse_reply(reply["text"])
    words = j["words"]
    if s.language and not s.words_file:  # the story must use the model's own translations
        words = [w.strip() for w in (said or "").split(",") if w.strip()]
    missing = [w for w in words if not uses(story, w, not s.language, irregular.get(w, ()))]
    reason = ("empty" if not story else "no Words line" if len(words) != 3 else
              "missing " + ", ".join(missing) if missing else "duplicate" if story in kept else None)
    return {"i": j["i"], "ok": reason is None, "reason": reason, "story": story, "summary": summary, "words": words,
            "asked": j["words"], "features": j["features"], "model": s.generate_model,
            "prompt_tokens": reply["prompt_tokens"], "completion_tokens": reply["completion_tokens"]}


def read_rows(path):
    rows = {}
    if os.path.exists(path):
        for line in open(path, encoding="utf-8"):
            try:
                row = json.loads(line)
                rows[row["i"]] = row
            except (json.JSONDecodeError, KeyError, TypeError):  # the half line a killed run may leave
                pass
    return rows


def generate(data_dir, settings):
    """Bring data_dir/generated.jsonl up to num_stories kept stories; return {split: [story text]}."""
    s = SimpleNamespace(**settings)
    if s.num_stories < 2:
        die(f"--num_stories={s.num_stories}: generate needs at least 2 stories (one for val)")
    (lists, irregular), template = word_lists(s.words_file), PROMPT
    if s.prompt_file:
        try:
            template = open(s.prompt_file, encoding="utf-8").read()
        except OSError:
            die(f"cannot read --prompt_file={s.prompt_file}")
        needed = ["{verb}", "{noun}", "{adjective}"] + ["{language}"] * bool(s.language)
        missing = [k for k in needed if k not in template]
        if missing:
            die(f"{s.prompt_file} must contain {', '.join(missing)}, where the request's words go")
    path = os.path.join(data_dir, "generated.jsonl")
    rows = read_rows(path)

    def next_jobs(n):  # the first n request indices not yet in the file, kept or rejected
        out, i = [], 0
        while len(out) < n:
            if i not in rows:
                out.append(job(i, s, lists, template))
            i += 1
        return out

    kept = {r["story"] for r in rows.values() if r["ok"]}
    print(f"generate: {len(kept)} of {s.num_stories} stories already kept in {path} ({len(rows) - len(kept)} rejected)")
    if s.dry_run:
        first, n = next_jobs(1)[0], max(0, s.num_stories - len(kept))
        print(f"--- request {first['i']} (words {first['words']}, features {first['features']}) ---\n"
              f"{first['messages'][0]['content']}\n---")
        p, prompt_tok = llm.price(s.generate_model), n * (llm.estimate_tokens(first["messages"][0]["content"]) + 10)
        cost = (f"${(prompt_tok * p[0] + n * REPLY_TOKENS * p[1]) / 1e6:.2f}" if p
                else f"unknown ({s.generate_model} not in llm.PRICES)")
        print(f"dry run: {n} more stories, at least {n} requests (each rejected story costs one more), about "
              f"{prompt_tok:,} prompt + {n * REPLY_TOKENS:,} completion tokens, estimated cost {cost}; nothing was sent")
        raise SystemExit(0)
    if len(kept) < s.num_stories:
        request_stories(s, path, rows, kept, next_jobs, irregular)
    good = sorted((r for r in rows.values() if r["ok"]), key=lambda r: r["i"])[:s.num_stories]
    text = [instruct_text(r) if s.instruct else r["story"] for r in good]
    val = set(range(VAL_EVERY - 1, len(text), VAL_EVERY)) or {len(text) - 1}
    return {"train": [t for k, t in enumerate(text) if k not in val], "val": [t for k, t in enumerate(text) if k in val]}


def request_stories(s, path, rows, kept, next_jobs, irregular):
    """Send requests until num_stories are kept, appending every reply to the JSONL as it arrives."""
    try:
        client = llm.Client(s.generate_model, api_base=s.api_base or None, max_requests=s.max_requests,
                            timeout=s.timeout, max_retries=s.max_retries, backoff=s.backoff)
    except llm.LLMError as e:
        die(str(e))

    def ask(j):  # temperature 1: the recipe wants variety, not each prompt's likeliest story
        return client.chat(j["messages"], temperature=1.0, max_tokens=MAX_TOKENS)

    t0, new, rejected, capped, failed = time.time(), 0, Counter(), False, None
    progress = Progress("generate", s.num_stories, " kept", start=len(kept), every=2.0)
    with open(path, "a", encoding="utf-8") as f:
        if f.tell():
            with open(path, "rb") as g:
                g.seek(-1, os.SEEK_END)
                if g.read(1) != b"\n":
                    f.write("\n")  # end the half line a killed run left, so the next row stays whole
        # Rounds of exactly the stories still missing, so no extras are paid for; the next round makes up rejects.
        while len(kept) < s.num_stories and not capped and not failed:
            jobs = (j for j in next_jobs(s.num_stories - len(kept)) if not failed)
            for j, reply, error in llm.run_parallel(ask, jobs, s.workers):
                if isinstance(error, llm.BudgetExceeded):
                    capped = True  # nothing was sent; the requests already in flight still arrive
                    continue
                if isinstance(error, llm.LLMError):
                    failed = failed or error  # send no more, but keep what is in flight: it is paid for
                    continue
                if error is not None:
                    raise error
                row = rows[j["i"]] = judge(j, reply, s, kept, irregular)
                f.write(json.dumps(row, ensure_ascii=False) + "\n")
                f.flush()  # durable the moment it arrives: a kill loses at most the requests in flight
                if not row["ok"]:
                    rejected[row["reason"].split()[0]] += 1
                else:
                    kept.add(row["story"])
                    new += 1
                cost, minutes = client.cost(), (time.time() - t0) / 60
                progress.update(row["ok"], f", {rejected.total()} rejected, {new / max(minutes, 1e-9):.1f} stories/min, "
                                f"{client.prompt_tokens + client.completion_tokens:,} tokens"
                                + (f", ${cost:.4f}" if cost is not None else ""))
            if rejected.total() >= 20 and rejected.total() > 4 * new:
                die(f"{rejected.total()} stories rejected and {new} kept this run ({dict(rejected)}); "
                    f"check the model and the prompt against the rejected rows in {path}")
    print(f"generate: {client.requests_sent} requests, {new} stories kept and {rejected.total()} rejected "
          f"{dict(rejected) or ''} in {time.time() - t0:.1f}s")
    if failed:
        die(f"{failed} ({len(kept)} stories are kept in {path}; a rerun continues from there)")
    if capped:
        die(f"request cap reached (--max_requests={s.max_requests}) with {len(kept)} of {s.num_stories} stories kept "
            f"in {path}; rerun with a higher cap to continue (nothing is sent twice), or with "
            f"--num_stories={len(kept)} to use what is there")


def instruct_text(row):
    """stories.instruct_text of a kept row; without a summary (a --prompt_file may not ask for one)
    the Summary line is left out rather than left empty."""
    text = stories.instruct_text({**row, "summary": row["summary"] or "\0"})
    return text if row["summary"] else text.replace("Summary: \0\n", "")
