"""
corpus.py: the shipped corpus and the files stories live in, read the same way by every script.

    rows = read_corpus(checked_corpus())      # the shipped stories, once their sha256 is checked
    splits = split_rows(rows)                 # {"train": [...], "val": [...]}: val is i % 20 == 19
    instruct_text(rows[0])                    # the TinyStories-Instruct form of one story
    read_stories("data/corpus/val.txt")       # the stories of a text file split by <|endoftext|>
"""
import gzip
import hashlib
import json
import os
import random
import re

from lib.configurator import atomic_write, die
from lib.tokenizer import EOT

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
WORD = re.compile(r"[a-z0-9']+")


def words(text):
    """A text's words as every measure here counts them: lower-cased runs of letters, digits and '."""
    return WORD.findall(text.lower())

# The shipped corpus: its file, its number of stories, its sha256 (checked before it is used), and the
# fingerprint of the requests it answers (llm_stories.fingerprint: the default recipe, prompt and seed).
CORPUS = ("corpus/stories.jsonl.gz", 10_000, "6af0011694b101f143c2a085d20427d0a33404914bc6bd8b44b0f74c0fa66fb8", "627ecdf21f")
VAL_EVERY = 20  # request indices i with i % 20 == 19 are val


def split_rows(rows):
    """{train, val: [rows]} by request index, so the split of a story never depends on what else is
    there; a set too small to hold such an index gives its last story to val."""
    splits = {"train": [r for r in rows if r["i"] % VAL_EVERY != VAL_EVERY - 1],
              "val": [r for r in rows if r["i"] % VAL_EVERY == VAL_EVERY - 1]}
    if not splits["val"] and len(rows) > 1:
        splits["val"].append(splits["train"].pop())
    return splits


def read_corpus(path):
    """The rows of a corpus file (gzipped JSONL), in file order."""
    with gzip.open(path, "rt", encoding="utf-8") as f:
        return [json.loads(line) for line in f]


def checked_corpus():
    """The shipped corpus's path, once its sha256 is checked."""
    path, count, sha, _ = CORPUS
    path = os.path.join(ROOT, path)
    try:
        digest = hashlib.sha256(open(path, "rb").read()).hexdigest()
    except OSError:
        die(f"the shipped corpus {path} is missing; restore it with: git checkout -- {CORPUS[0]}")
    if digest != sha:
        die(f"{path} is not the shipped corpus (sha256 {digest[:12]}..., expected {sha[:12]}...); "
            f"restore it with: git checkout -- {CORPUS[0]}")
    return path


CORPUS_FIELDS = ("i", "story", "words", "features", "summary", "shown")


def export_corpus(rows, path):
    """Kept rows -> a corpus file like the shipped one: gzipped JSONL in request order, byte-for-byte
    the same for the same rows (no timestamp in the gzip header), written atomically."""
    def write(raw):
        with gzip.GzipFile(fileobj=raw, mode="wb", mtime=0, filename="") as f:
            for r in rows:
                f.write((json.dumps({k: r[k] for k in CORPUS_FIELDS}, ensure_ascii=False) + "\n").encode())
    atomic_write(path, write, "wb")
    print(f"export: {len(rows):,} stories -> {path} ({os.path.getsize(path) / 1e6:.1f} MB, "
          f"sha256 {hashlib.sha256(open(path, 'rb').read()).hexdigest()})")


def sentences(story):
    """The story's sentences of four words or more (a closing quote stays with its sentence)."""
    parts = re.split(r'(?<=[.!?])"?\s+', story.replace("\n\n", " "))
    return [p for p in parts if len(re.findall(r"\w+", p)) >= 4]


INSTRUCTIONS = ("Words", "Features", "Summary", "Random sentence")  # the paper's four kinds


def instruct_text(row, holdout=()):
    """A story in TinyStories-Instruct's layout: a random subset of the paper's four instructions
    (Words, Features, Summary, Random sentence), in random order, then the story. The draw is fixed
    by the request index, so the instruct corpus is the same on every machine. holdout: a combination
    of kinds never to be drawn (lab 6 asks for it after training, to see a model generalise); a draw
    of exactly it loses its last instruction, or gains one if it has only one."""
    rng = random.Random(f"instruct-{row['i']}")
    lines = {"Words": f"Words: {', '.join(row['words'])}"}
    if row.get("features"):
        lines["Features"] = f"Features: {', '.join(row['features'])}"
    if row.get("summary"):
        lines["Summary"] = f"Summary: {row['summary']}"
    if sentences(row["story"]):
        lines["Random sentence"] = f"Random sentence: {rng.choice(sentences(row['story']))}"
    chosen = [kind for kind in lines if rng.random() < 0.5] or [rng.choice(list(lines))]
    rng.shuffle(chosen)
    if holdout and set(chosen) == set(holdout):
        extra = [kind for kind in lines if kind not in chosen]
        chosen = chosen[:-1] if len(chosen) > 1 or not extra else chosen + extra[:1]
    return "\n".join([lines[kind] for kind in chosen] + ["Story: \n" + row["story"]])


# what prepare.py --dataset= makes; the downloads are the real TinyStories (prepare.SOURCES)
DATASETS = ("corpus", "corpus-instruct", "tinystories", "tinystories-v1", "tinystories-instruct", "generate")


def prepare_command(folder, source=None):
    """The prepare.py line that makes data/<folder>/ (train.py names it when the data is missing or
    damaged); source: the dataset its meta.json says it was made from, if it has one."""
    if folder in DATASETS:
        return f"python prepare.py --dataset={folder}"
    if folder == "generate-instruct":
        return "python prepare.py --dataset=generate --instruct=True"
    if source in DATASETS:
        return f"python prepare.py --dataset={source} --name={folder}"
    return f"python prepare.py --dataset=DATASET --name={folder} (DATASET one of {', '.join(DATASETS)})"


def read_stories(path, start=0, end=None, limit=0):
    """The stories in bytes [start, end) of a story file (split by <|endoftext|>, each stripped,
    empty ones dropped), read a MB at a time, so a prefix of a 2 GB file costs only its own memory;
    at most `limit` of them (0 = all). A story that `end` cuts is dropped, unless it is the file's
    last or the only text there is (a file with no separator is one document)."""
    size = os.path.getsize(path)
    end = size if end is None else min(end, size)
    sep, stories, tail = EOT.encode(), [], b""
    with open(path, "rb") as f:
        f.seek(start)
        left = end - start
        while left > 0 and not (limit and len(stories) >= limit):
            chunk = f.read(min(1 << 20, left))
            if not chunk:
                break
            left -= len(chunk)
            *whole, tail = (tail + chunk).split(sep)
            # errors="replace": a downloaded file could hold a stray bad byte
            stories += [s for s in (w.decode("utf-8", "replace").strip() for w in whole) if s]
    last = tail.decode("utf-8", "replace").strip()
    if last and (end == size or not stories) and not (limit and len(stories) >= limit):
        stories.append(last)
    return stories[:limit or None]
