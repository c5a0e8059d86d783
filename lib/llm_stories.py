"""
llm_stories.py: the paper's recipe for a corpus that a language model writes (prepare.py --dataset=generate).

Each request draws, from corpus/recipe.txt, one verb, noun and adjective that the story must use, a
random subset of the paper's six story features, a main character, a setting, and a way to begin and to
end (so that the corpus does not open every story the same way). Every reply is checked (validate) and
appended to data/<name>/generated.jsonl the moment it arrives, kept or refused, so that a killed run
resumes where it stopped and never pays for a request twice; a refused story's request is asked again,
up to MAX_ATTEMPTS times. The requests go to an OpenAI-compatible server one by one (llm.Client), or as
a file for a batch API (--batch=write, then --batch=read --batch_results=FILE; see llm.py).

    OPENAI_API_KEY=... python prepare.py --dataset=generate --num_stories=1000 --dry_run=True
    OPENAI_BASE_URL=http://localhost:8000/v1 python prepare.py --dataset=generate --num_stories=50 --workers=16
    python prepare.py --dataset=generate --num_stories=10000 --batch=write     # then submit the file
    python prepare.py --dataset=generate --batch=read --batch_results=results.jsonl
"""
import hashlib
import json
import os
import random
import re
import time
from collections import Counter
from types import SimpleNamespace

from lib import llm
from lib.configurator import die
from lib.corpus import words as words_of
from lib.progress import Progress
from lib.tokenizer import EOT

FEATURES = ("Dialogue", "BadEnding", "MoralValue", "PlotTwist", "Foreshadowing", "Conflict")
FEATURE_PROB = 0.4  # each feature is drawn on its own, so about 5% of requests have none
DESCRIBE = {  # the paper's six features, in our own words
    "Dialogue": "at least one conversation between the characters, in quotation marks",
    "BadEnding": "a sad ending, where things do not turn out well",
    "MoralValue": "a lesson about what is right and what is wrong",
    "PlotTwist": "a surprise that changes where the story goes",
    "Foreshadowing": "an early hint of something that happens later",
    "Conflict": "a problem or a quarrel that the characters have to face",
}
# Ways to begin and to end, drawn per request with these weights. Left alone, a model opens most
# stories with "Once upon a time" (59% of the real TinyStories) and closes them with a moral.
OPENINGS = [(1, "with the main character's name"), (1, "with the place where the story happens"),
            (1, "with a sound"), (1, "with something a character says"), (1, "with the weather or the time of day"),
            (1, "with what the main character loves most"), (1, "with a question"),
            (1, "with something surprising"), (0.3, 'with the words "Once upon a time"')]
ENDINGS = ["with a happy moment the characters share", "with something one of the characters says",
           "with a quiet moment at the end of the day", "with what happens the next day", "with a funny moment",
           "in the way that fits the story best"]
PROMPT = """Write a short story for small children: 3 to 5 paragraphs, 120 to 250 words in all. Use only \
simple words that a 3 or 4 year old child knows.

The story must use the verb "{verb}", the noun "{noun}" and the adjective "{adjective}". {character}{setting}\
Begin the story {opening}. End it {ending}.{features}{language}

Reply in exactly this form, in plain text:
Summary: <one simple sentence that says what happens>
Story:
<the story, with an empty line between paragraphs>{shown}"""
SHOWN = "<the sentence of the story that shows it, copied word for word>"  # one line per cited feature
RECIPE = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "corpus", "recipe.txt")
MAX_TOKENS = 1200  # a long 5-paragraph story is about 600; the cap only stops a model that rambles on
REPLY_TOKENS = 450  # a typical reply, for --dry_run's estimate
MAX_ATTEMPTS = 3  # a request whose stories are refused this often is given up, and a new one drawn
WORDS_RANGE, PARAGRAPHS_RANGE, RUN = (100, 300), (3, 5), 12  # a story's size; no two stories share a 12-word run
OPENING_SHARE = 0.05  # no 3-word opening in more than 5% of the stories asked for


def read_recipe(path):
    """{list name: [items]} and {word: [irregular forms]} from a file of 'name: a, b, run:ran' lines."""
    try:
        text = open(path, encoding="utf-8").read()
    except (OSError, UnicodeDecodeError):
        die(f"cannot read the recipe file {path}; pass --recipe=FILE with lines 'verbs: ...', 'nouns: ...', 'adjectives: ...'")
    entries = []  # (name, items): a line that starts with spaces continues the one above
    for line in text.splitlines():
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        if line[0].isspace() and entries:
            entries[-1][1] += " " + line.strip()
        else:
            name, _, rest = (x.strip() for x in line.partition(":"))
            entries.append([name, rest])
    lists, irregular = {}, {}
    for name, rest in entries:
        for spec in rest.split(","):
            word, *other = [w.strip() for w in spec.split(":")]
            if word:
                lists.setdefault(name, []).append(word)
                irregular.setdefault(word.lower(), []).extend(other)
    if not all(lists.get(k) for k in ("verbs", "nouns", "adjectives")):
        die(f"{path} needs lines 'verbs: ...', 'nouns: ...' and 'adjectives: ...' of comma-separated words")
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


def job(i, attempt, s, recipe, template):
    """Request i's draw: deterministic in (seed, i), so a resumed run, or a rerun of --batch=write, asks
    exactly what it would have; a request asked again (attempt 1, 2) is the same request."""
    lists = recipe[0]
    rng = random.Random(f"llm-{s.seed}-{i}")
    verb, noun, adjective = (rng.choice(lists[k]) for k in ("verbs", "nouns", "adjectives"))
    features = [f for f in FEATURES if rng.random() < FEATURE_PROB]
    kind = rng.choice([k for k in ("girls", "boys", "animals") if lists.get(k)] or [None])
    if kind == "animals" and lists.get("animal names"):
        animal = rng.choice(lists["animals"])
        character = f"a little {animal} named {rng.choice(lists['animal names'])}"
    else:
        character = kind and f"a {'girl' if kind == 'girls' else 'boy'} named {rng.choice(lists[kind])}"
    setting = rng.choice(lists["settings"]) if lists.get("settings") else None
    opening = rng.choices([o for _, o in OPENINGS], [w for w, _ in OPENINGS])[0]
    ending = "badly: things do not turn out well" if "BadEnding" in features else rng.choice(ENDINGS)
    language = ""
    if s.language:
        language = (f"\nWrite the story in {s.language}. Use the {s.language} words for the verb, noun and "
                    f"adjective above, and before the summary add a line 'Words: <those three {s.language} words, "
                    "separated by commas>'.")
    cited = [f for f in features if f != "Dialogue"]  # Dialogue shows itself: quotation marks
    fill = {"{verb}": verb, "{noun}": noun, "{adjective}": adjective, "{language}": language,
            "{character}": f"The main character is {character}. " if character else "",
            "{setting}": f"The story happens {setting}. " if setting else "",
            "{opening}": opening, "{ending}": ending,
            "{features}": "\nThe story should have:" + "".join(f"\n- {f}: {DESCRIBE[f]}" for f in features) if features else "",
            "{shown}": "\nShown by:" + "".join(f"\n{f}: {SHOWN}" for f in cited) if cited else ""}
    text = template
    for key, value in fill.items():  # replace, not str.format: a prompt file may hold other braces
        text = text.replace(key, value)
    return {"i": i, "attempt": attempt, "words": [verb, noun, adjective], "features": features,
            "cite": "{shown}" in template, "messages": [{"role": "user", "content": text}]}


# Typography a model likes and a children's corpus does not need: mapped to plain ASCII before the checks.
TYPOGRAPHY = str.maketrans({"\u2018": "'", "\u2019": "'", "\u201c": '"', "\u201d": '"', "\u2014": " - ",
                            "\u2013": " - ", "\u2026": "...", "\u00a0": " "})


def clean(text):
    """A story as the corpus keeps it: plain quotes and dashes, one space between words, paragraphs
    split by an empty line (a reply that used single newlines gets them as paragraph breaks)."""
    text = text.translate(TYPOGRAPHY).replace("\r", "")
    split = r"\n\s*\n" if re.search(r"\n\s*\n", text.strip()) else r"\n"
    paragraphs = [" ".join(p.split()) for p in re.split(split, text.strip())]
    return "\n\n".join(p for p in paragraphs if p)


def parse_reply(text):
    """(story, summary, words line, {feature: cited sentence}) from a reply in PROMPT's form; a reply
    without the labels is all story. The separator is dropped: a story that held it would split in two."""
    fields, story, shown, lines = {}, [], {}, text.replace(EOT, "").strip().splitlines()
    label = re.compile(r"[\s*#_]*(words|summary|story|shown by)[\s*_]*:[\s*_]*(.*)", re.I)
    k = 0
    while k < len(lines):
        m = label.match(lines[k])
        if m and m[1].lower() == "story":
            story.append(m[2])
            k += 1
            while k < len(lines) and not (label.match(lines[k]) and label.match(lines[k])[1].lower() == "shown by"):
                story.append(lines[k])
                k += 1
            continue
        if m and m[1].lower() == "shown by":
            for line in lines[k + 1:]:
                name, sep, sentence = line.partition(":")
                name = name.strip(" -*_").replace(" ", "")
                if sep and name in FEATURES:
                    shown[name] = sentence.strip(" *_")
            break
        if m:
            fields[m[1].lower()] = m[2].strip(" *_")
        else:
            story.append(lines[k])
        k += 1
    return clean("\n".join(story)), fields.get("summary") or None, fields.get("words"), shown


def find_cited(story, sentence):
    """(paragraph index, word offset, words in the story) where `sentence` stands in `story`, or None.
    Compared word by word, so its quotes, commas and capitals need not match exactly."""
    want, where = words_of(sentence.translate(TYPOGRAPHY)), []
    for p, paragraph in enumerate(story.split("\n\n")):
        where += [(p, w) for w in words_of(paragraph)]
    words = [w for _, w in where]
    for start in range(len(words) - len(want) + 1) if len(want) >= 3 else ():
        if words[start:start + len(want)] == want:
            return where[start][0], start, len(words)
    return None


def feature_problem(story, feature, shown):
    """Why `story` does not visibly have `feature`, or None. Dialogue needs a quoted utterance; every
    other feature needs the sentence the writer cited for it, found in the story where it belongs."""
    if feature == "Dialogue":
        return None if re.search(r'"[^"\n]*\w[^"\n]*"', story) else "Dialogue has no quoted speech"
    if not shown.get(feature):
        return f"{feature} not cited"
    at = find_cited(story, shown[feature])
    if at is None:
        return f"{feature}'s cited sentence is not in the story"
    paragraph, offset, total = at
    last = story.count("\n\n")
    if feature == "BadEnding" and paragraph != last:
        return "BadEnding's sentence is not in the last paragraph"
    if feature == "PlotTwist" and paragraph == 0:
        return "PlotTwist's sentence is in the first paragraph"
    if feature == "Foreshadowing" and offset > total / 2:
        return "Foreshadowing's hint is not in the first half"
    return None


def validate(story, words, features, shown, cite=True, english=True, irregular=None):
    """Why a story is refused, or None: each check one reason, the first that fails."""
    irregular = irregular or {}
    if not story:
        return "empty"
    odd = sorted({c for c in story if not (" " <= c <= "~" or c == "\n")} | set(story) & set("*#_`<>[]{}|~^\\@"))
    if odd:
        return f"not plain text: {''.join(odd)[:10]!r}"
    n_words, n_paragraphs = len(words_of(story)), story.count("\n\n") + 1
    if not WORDS_RANGE[0] <= n_words <= WORDS_RANGE[1]:
        return f"{n_words} words (needs {WORDS_RANGE[0]}-{WORDS_RANGE[1]})"
    if not PARAGRAPHS_RANGE[0] <= n_paragraphs <= PARAGRAPHS_RANGE[1]:
        return f"{n_paragraphs} paragraphs (needs {PARAGRAPHS_RANGE[0]}-{PARAGRAPHS_RANGE[1]})"
    missing = [w for w in words if not uses(story, w, english, irregular.get(w.lower(), ()))]
    if missing:
        return "missing " + ", ".join(missing)
    for feature in features if cite else [f for f in features if f == "Dialogue"]:
        problem = feature_problem(story, feature, shown)
        if problem:
            return problem
    return None


def opening(story):
    return " ".join(words_of(story)[:3])


class Kept:
    """The stories kept so far, and the checks that look across them: no duplicate, no two stories that
    share a 12-word run (one copied from the other), no 3-word opening in more than 5% of the corpus."""

    def __init__(self, target):
        self.limit = max(1, int(OPENING_SHARE * target))
        self.runs, self.openings, self.texts = {}, Counter(), set()

    def problem(self, story):
        if story in self.texts:
            return "duplicate"
        words = words_of(story)
        for k in range(len(words) - RUN + 1):
            other = self.runs.get(hash(tuple(words[k:k + RUN])))
            if other is not None:
                return f"shares a {RUN}-word run with story {other}"
        if self.openings[opening(story)] >= self.limit:
            return f"opening '{opening(story)}' is already in {self.limit} stories"
        return None

    def add(self, story, i):
        words = words_of(story)
        self.texts.add(story)
        self.openings[opening(story)] += 1
        for k in range(len(words) - RUN + 1):
            self.runs.setdefault(hash(tuple(words[k:k + RUN])), i)


def judge(j, reply, s, kept, irregular):
    """The JSONL row for one reply: kept (ok) or refused with a reason, and the metadata either way."""
    story, summary, said, shown = parse_reply(reply["text"])
    words = j["words"]
    if s.language:  # the story must use the model's own translations
        words = [w.strip() for w in (said or "").split(",") if w.strip()]
    reason = ("no Words line" if len(words) != 3 else
              validate(story, words, j["features"], shown, j["cite"], not s.language, irregular))
    if reason is None and not summary:
        reason = "no summary"
    reason = reason or kept.problem(story)
    if reason is None:
        kept.add(story, j["i"])
    return {"i": j["i"], "attempt": j["attempt"], "ok": reason is None, "reason": reason, "story": story,
            "summary": summary, "words": words, "asked": j["words"], "features": j["features"],
            "shown": {f: shown[f] for f in j["features"] if f in shown}, "model": reply.get("model") or s.generate_model,
            "prompt_tokens": reply["prompt_tokens"], "completion_tokens": reply["completion_tokens"]}


def fingerprint(s, recipe, template):
    """What the requests say depends on these, hashed: a results file for other requests is told apart
    by it. The irregular forms are left out: they change the checks, not the requests."""
    return hashlib.sha256(json.dumps([s.seed, template, recipe[0], s.language]).encode()).hexdigest()[:10]


class Generator:
    """generated.jsonl and what follows from it: which requests are answered, which to ask next."""

    def __init__(self, data_dir, s):
        if s.num_stories < 2:
            die(f"--num_stories={s.num_stories}: generate needs at least 2 stories (one for val)")
        self.s, self.recipe = s, read_recipe(s.recipe or RECIPE)
        self.template = PROMPT
        if s.prompt_file:
            try:
                self.template = open(s.prompt_file, encoding="utf-8").read()
            except (OSError, UnicodeDecodeError):
                die(f"cannot read --prompt_file={s.prompt_file}; pass a UTF-8 text file")
            missing = [k for k in ("{verb}", "{noun}", "{adjective}") if k not in self.template]
            if missing:
                die(f"{s.prompt_file} must contain {', '.join(missing)}, where the request's words go")
        self.fp = fingerprint(s, self.recipe, self.template)
        self.path = os.path.join(data_dir, "generated.jsonl")
        self.rows = {}  # (i, attempt) -> row
        for row in llm.read_jsonl(self.path):
            if isinstance(row, dict) and "i" in row:
                self.rows[row["i"], row.get("attempt", 0)] = row
        if s.extend:
            self.start_from(*s.extend)
        self.kept = Kept(s.num_stories)
        self.done = set()
        for row in sorted(self.rows.values(), key=lambda r: (r["i"], r.get("attempt", 0))):
            if row["ok"]:  # checked against the others when it arrived
                self.kept.add(row["story"], row["i"])
                self.done.add(row["i"])

    def start_from(self, rows, fp):
        """Take a shipped corpus's stories as answered (written into generated.jsonl once), so that
        a larger --num_stories asks only for new ones. Only for the same requests: same fingerprint."""
        if fp != self.fp:
            die(f"--extend=True needs the requests the shipped corpus answered (fingerprint {fp}); these settings "
                f"give {self.fp}: keep the default --recipe, --prompt_file and --language, and --seed=1337")
        answered = {i for i, _ in self.rows}
        new = [r for r in rows if r["i"] not in answered]
        with llm.open_append(self.path) as f:
            for r in new:
                row = {**r, "attempt": 0, "ok": True, "reason": None, "asked": r["words"], "model": "shipped corpus",
                       "prompt_tokens": 0, "completion_tokens": 0}
                self.rows[r["i"], 0] = row
                llm.append_jsonl(f, row)
        if new:
            print(f"generate: {len(new):,} stories of the shipped corpus taken into {self.path}")

    def open_jobs(self):
        """The requests still to ask, lowest index first: enough that, answered, they make num_stories."""
        tries, out, i = Counter(i for i, _ in self.rows), [], 0
        while len(self.done) + len(out) < self.s.num_stories:
            if i not in self.done and tries[i] < MAX_ATTEMPTS:
                out.append(job(i, tries[i], self.s, self.recipe, self.template))
            i += 1
        return out

    def custom_id(self, j):
        return f"story-{self.fp}-{j['i']}-{j['attempt']}"

    def lookup(self, custom_id):
        """The request a batch answer answers, if it is one of ours and still open; else None."""
        m = re.fullmatch(rf"story-{self.fp}-(\d+)-(\d+)", custom_id)
        i, attempt = (int(m[1]), int(m[2])) if m else (None, None)
        if m is None or i in self.done or (i, attempt) in self.rows or attempt >= MAX_ATTEMPTS:
            return None
        return job(i, attempt, self.s, self.recipe, self.template)

    def body(self, j):  # temperature 1: the recipe wants variety, not each prompt's likeliest story
        return {"model": self.s.generate_model, "messages": j["messages"], "temperature": 1.0, "max_tokens": MAX_TOKENS}

    def record(self, f, j, reply):
        """Judge one reply and append its row to generated.jsonl at once; returns the row."""
        row = self.rows[j["i"], j["attempt"]] = judge(j, reply, self.s, self.kept, self.recipe[1])
        llm.append_jsonl(f, row)
        if row["ok"]:
            self.done.add(j["i"])
        return row

    def stories(self):
        """The first num_stories kept rows, by request index."""
        good = sorted((r for r in self.rows.values() if r["ok"]), key=lambda r: r["i"])
        return good[:self.s.num_stories]


def generate(data_dir, **settings):
    """Bring data_dir/generated.jsonl up to num_stories kept stories (or write or read a batch file);
    returns the kept rows, or None when a batch step has left the corpus unfinished."""
    s = SimpleNamespace(**settings)
    g = Generator(data_dir, s)
    refused = Counter(r["reason"] for r in g.rows.values() if not r["ok"])
    print(f"generate: {len(g.done)} of {s.num_stories} stories kept in {g.path} ({sum(refused.values())} refused)")
    if s.dry_run:
        return dry_run(g)
    if s.batch == "write":
        jobs = g.open_jobs()[:llm.BATCH_LIMIT]
        path = s.batch_requests or os.path.join(data_dir, "batch_requests.jsonl")
        llm.write_batch(path, [(g.custom_id(j), g.body(j)) for j in jobs])
        read = f"python prepare.py --dataset=generate --num_stories={s.num_stories} --batch=read --batch_results=FILE"
        print(llm.submit_howto(path, len(jobs), read))
        return None
    if s.batch == "read":
        if not s.batch_results:
            die("--batch=read needs --batch_results=FILE, the results file the batch API returned")
        answered = {f"story-{g.fp}-{i}-{a}" for i, a in g.rows}
        with llm.open_append(g.path) as f:
            llm.read_batch(s.batch_results, g.lookup, answered, lambda j, reply: g.record(f, j, reply)["ok"], "stories")
        print(f"generate: {len(g.done)} of {s.num_stories} stories kept")
        if len(g.done) < s.num_stories:
            print(f"generate: {s.num_stories - len(g.done)} still to write: rerun with --batch=write for the next file")
            return None
        return g.stories()
    if len(g.done) < s.num_stories:
        request_stories(g)
    return g.stories()


def dry_run(g):
    s, jobs = g.s, g.open_jobs()
    first = jobs[0] if jobs else job(0, 0, s, g.recipe, g.template)
    print(f"--- request {first['i']} (words {first['words']}, features {first['features']}) ---\n"
          f"{first['messages'][0]['content']}\n---")
    n, prompt = len(jobs), llm.estimate_tokens(first["messages"][0]["content"]) + 10
    cost = llm.estimated_cost(s.generate_model, n * prompt, n * REPLY_TOKENS)
    print(f"dry run: {n} requests (a refused story costs one more), about {n * prompt:,} prompt + {n * REPLY_TOKENS:,} "
          f"completion tokens, estimated cost {cost} (a batch API charges about half); nothing was sent")
    raise SystemExit(0)


def request_stories(g):
    """Send requests until num_stories are kept, appending every reply to the JSONL as it arrives."""
    s = g.s
    client = llm.connect(s.generate_model, s.api_base, s.max_requests, s.timeout, s.max_retries, s.backoff)
    t0, new, refused, capped, failed = time.time(), 0, Counter(), 0, None
    progress = Progress("generate", s.num_stories, " kept", start=len(g.done), every=2.0)

    def take(j, reply):
        nonlocal new
        row = g.record(f, j, reply)
        new += row["ok"]
        if not row["ok"]:
            refused[row["reason"].split()[0]] += 1
        cost, minutes = client.cost(), (time.time() - t0) / 60
        progress.update(row["ok"], f", {refused.total()} refused, {new / max(minutes, 1e-9):.1f} stories/min, "
                        f"{client.prompt_tokens + client.completion_tokens:,} tokens"
                        + (f", ${cost:.4f}" if cost is not None else ""))

    ask = lambda j: client.chat(j["messages"], temperature=1.0, max_tokens=MAX_TOKENS)  # noqa: E731
    with llm.open_append(g.path) as f:
        # Rounds of exactly the requests still open, so no extras are paid for; the next round asks refused ones again.
        while len(g.done) < s.num_stories and not capped and not failed:
            capped, failed = llm.ask_all(ask, g.open_jobs(), s.workers, take)
            if refused.total() >= 20 and refused.total() > 4 * new:
                die(f"{refused.total()} stories refused and {new} kept this run ({dict(refused)}); "
                    f"check the model and the prompt against the refused rows in {g.path}")
    print(f"generate: {client.requests_sent} requests, {new} stories kept and {refused.total()} refused "
          f"{dict(refused) or ''} in {time.time() - t0:.1f}s")
    if failed:
        die(f"{failed} ({len(g.done)} stories are kept in {g.path}; a rerun continues from there)")
    if capped:
        die(f"request cap reached (--max_requests={s.max_requests}) with {len(g.done)} of {s.num_stories} stories kept "
            f"in {g.path}; rerun with a higher cap to continue (nothing is sent twice), or with "
            f"--num_stories={len(g.done)} to use what is there")


def statistics(rows):
    """The numbers corpus/README.md quotes: size, vocabulary, openings, features, names."""
    from lib import metrics
    titles = {"I", "Mr", "Mrs", "Miss", "Ms", "Dr"}  # capitalised, but no one's name (family words: metrics.NOT_NAMES)
    words = [w for r in rows for w in words_of(r["story"])]
    openings = Counter(opening(r["story"]) for r in rows)
    names = Counter()
    for r in rows:  # a name: capitalised inside a sentence, as metrics.new_names counts them
        names.update(set(re.findall(r"(?<=[a-z,] )[A-Z][a-z]+", r["story"])) - metrics.NOT_NAMES - titles)
    n = len(rows)
    share = lambda c: ", ".join(f"{k!r} {v / n:.1%}" for k, v in c)  # noqa: E731
    return "\n".join([
        f"stories: {n:,}; words: {len(words):,} ({len(words) / n:.0f} a story); distinct words: {len(set(words)):,}",
        f"paragraphs a story: {sum(r['story'].count(chr(10) * 2) + 1 for r in rows) / n:.2f}",
        f"most common 3-word openings: {share(openings.most_common(3))}",
        "features: " + ", ".join(f"{f} {sum(f in r['features'] for r in rows) / n:.1%}" for f in FEATURES)
        + f", none {sum(not r['features'] for r in rows) / n:.1%}",
        f"stories naming (10 most common names): {share(names.most_common(10))}"])


if __name__ == "__main__":  # python -m lib.llm_stories [corpus file]: its statistics
    import gzip
    import sys
    path = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(RECIPE), "stories.jsonl.gz")
    with gzip.open(path, "rt", encoding="utf-8") as f:
        print(statistics([json.loads(line) for line in f]))
