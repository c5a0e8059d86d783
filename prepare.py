"""
prepare.py: turn stories into the token bins that train.py reads, in three stages, each runnable alone:

  stories     -> data/<dataset>/train.txt, val.txt     stories separated by <|endoftext|> lines
  tokenizer   -> data/<dataset>/tokenizer.tiktoken     a byte-level BPE learned from a sample of train.txt
                                                       (or GPT-2's, cut to the tokens that sample uses)
  pretokenize -> data/<dataset>/train.bin, val.bin     uint16 ids, every story followed by <|endoftext|>,
                 data/<dataset>/meta.json              plus token and byte counts per split

    python prepare.py                                         # the corpus shipped in corpus/: offline, seconds
    python prepare.py --dataset=corpus-instruct               # the same stories in TinyStories-Instruct's layout
    python prepare.py --stage=tokenizer --vocab_size=2048     # one stage again
    python prepare.py --dataset=tinystories                   # the real TinyStories (V2, GPT-4 only) from Hugging Face
    python prepare.py --dataset=tinystories-v1 --num_stories=100000   # the paper's V1, only its first 100,000 stories
    OPENAI_BASE_URL=http://localhost:8000/v1 python prepare.py --dataset=generate --num_stories=50
                                                              # an LLM writes them: see llm_stories.py

The shipped corpus (corpus/stories.jsonl.gz; corpus/README.md says how it was made) is 10,000+
stories that a language model wrote from the paper's recipe; its val split is every request index
i with i % 20 == 19, the same on every machine. The real datasets (--dataset=tinystories,
tinystories-v1, tinystories-instruct) come from $HF_ENDPOINT (default https://huggingface.co; a
mirror with the same layout works; $HF_TOKEN, if set, goes as a bearer token) through download.py,
which resumes and verifies, into data/downloads/; the stories stage then cleans them into train.txt
and val.txt: each story stripped, empty ones dropped, V1's mis-decoded characters ("â€™" for "’")
repaired, all else kept as it is.
"""
import json
import multiprocessing as mp
import os
import re
import time
from collections import deque

import numpy as np
import tiktoken

from lib.configurator import COUNT, POSITIVE, atomic_write, configure, die, one_of
from lib.corpus import (CORPUS, DATASETS, INSTRUCTIONS, checked_corpus, export_corpus, instruct_text, read_corpus,
                        read_stories, split_rows)
from lib.progress import Progress
from lib.tokenizer import EOT, compact_ranks, digest, load_encoding, save_ranks, train_bpe

dataset = "corpus"  # corpus, corpus-instruct (shipped) | tinystories, tinystories-v1, tinystories-instruct (downloads) | generate
stage = "all"  # all | stories | tokenizer | pretokenize
num_stories = 0  # corpus: its first N stories, a download: its first N train stories (0 = all); generate: the stories to keep
seed = 1337  # generate: the seed of the recipe's draws
tokenizer = "bpe"  # bpe: learned here | gpt2: tiktoken's GPT-2 vocabulary cut to the tokens in use (needs internet once)
vocab_size = 4096  # BPE vocabulary, <|endoftext|> included
tokenizer_sample_mb = 50  # the tokenizer learns from this many MB at the start of train.txt
workers = os.cpu_count()  # processes that encode in parallel
chunk_mb = 4  # encoding work unit; ends on a story boundary
download_dir = os.path.join("data", "downloads")  # raw files from Hugging Face, shared by every --name
# --dataset=generate: an LLM writes the stories (llm_stories.py); --workers is also its concurrent requests.
# The key comes only from $OPENAI_API_KEY.
name = ""  # the folder in data/; default: the dataset's name (generate-instruct with --instruct=True)
generate_model = "gpt-4o-mini"
api_base = ""  # default: $OPENAI_BASE_URL, else https://api.openai.com/v1
instruct = False  # write the instruct form (Features, Words, Summary, Random sentence, Story) into the stories files
holdout = ""  # instruct form: a combination never put in train, e.g. "Words,Summary" (lab 6 asks for it afterwards)
language = ""  # e.g. French: the stories, and the three words the model translates, in that language
recipe = ""  # the lists requests are drawn from; default corpus/recipe.txt (its header says the format)
prompt_file = ""  # our request's wording replaced: {verb}, {noun}, {adjective}, optional {features}, {shown}, ...
batch = ""  # '' = live requests | write: the open requests as a Batch API file | read: take its results back
batch_requests = ""  # where --batch=write puts the requests; default data/<name>/batch_requests.jsonl
batch_results = ""  # --batch=read: the results file the batch API returned
export = ""  # also write the kept stories as a corpus file like the shipped one (e.g. corpus/stories.jsonl.gz)
extend = False  # generate: start from the shipped corpus's stories, so that a larger --num_stories asks only for more
max_requests = 0  # stop after this many requests (spend cap); 0 = no cap
max_retries = 6  # per request (LLM or download), for 429, 5xx, timeouts and connection errors
backoff = 1.0  # seconds before the first retry; doubles each time (a Retry-After header wins)
timeout = 60.0  # seconds per request (for a download: to connect, and between bytes)
dry_run = False  # print the first request and a cost estimate; send nothing
config = configure(globals(), {
    "dataset": one_of(*DATASETS), "stage": one_of("all", "stories", "tokenizer", "pretokenize"),
    "tokenizer": one_of("bpe", "gpt2"), "vocab_size": (lambda v: 257 < v <= 65536, "in 258..65536"),
    "num_stories": COUNT, "tokenizer_sample_mb": POSITIVE, "workers": POSITIVE, "chunk_mb": POSITIVE,
    "batch": one_of("", "write", "read"), "max_requests": COUNT, "max_retries": COUNT,
    "timeout": (lambda v: v > 0, "a number of seconds above 0"), "backoff": COUNT})

SPLITS = ("train", "val")
SOURCES = {  # --dataset: (Hugging Face dataset, train file, val file)
    "tinystories": ("roneneldan/TinyStories", "TinyStoriesV2-GPT4-train.txt", "TinyStoriesV2-GPT4-valid.txt"),
    "tinystories-v1": ("roneneldan/TinyStories", "TinyStories-train.txt", "TinyStories-valid.txt"),
    "tinystories-instruct": ("roneneldan/TinyStoriesInstruct", "TinyStories-Instruct-train.txt",
                             "TinyStories-Instruct-valid.txt"),
}


def write_stories(path, texts, total):
    """Stream stories into a text file in TinyStories' own layout; the temp-and-rename means a
    killed run never leaves a half file that a later stage would take for whole."""
    progress = Progress(f"stories -> {path}", total, " stories")

    def write(f):
        for text in texts:
            f.write(text + f"\n{EOT}\n")
            progress.update(1)
    atomic_write(path, write)


def make_stories(data_dir):
    if dataset in SOURCES:
        return download_stories(data_dir)
    if dataset == "generate":
        from lib import llm_stories  # only here: the default corpus needs no HTTP or LLM code
        rows = llm_stories.generate(
            data_dir, num_stories=num_stories, seed=seed, generate_model=generate_model, api_base=api_base,
            language=language, recipe=recipe, prompt_file=prompt_file, batch=batch, batch_requests=batch_requests,
            batch_results=batch_results, max_requests=max_requests, max_retries=max_retries, backoff=backoff,
            timeout=timeout, workers=workers, dry_run=dry_run,
            extend=(read_corpus(checked_corpus()), CORPUS[3]) if extend else None)
        if rows is None:  # a batch step that has not finished the corpus: nothing to tokenize yet
            raise SystemExit(0)
        if export:
            export_corpus(rows, export)
        splits = split_rows(rows)
    else:  # the shipped corpus, plain or in the instruct form
        rows = read_corpus(checked_corpus())[:num_stories or None]
        print(f"corpus: {len(rows):,} stories from {CORPUS[0]} (sha256 checked)")
        splits = split_rows(rows)
    kinds = tuple(k.strip() for k in holdout.split(",") if k.strip())
    if any(k not in INSTRUCTIONS for k in kinds):
        die(f"--holdout={holdout}: name instructions from {', '.join(INSTRUCTIONS)}, comma-separated")
    for split, rows in splits.items():
        if dataset == "corpus-instruct" or instruct:
            texts = (instruct_text(r, kinds if split == "train" else ()) for r in rows)
        else:
            texts = (r["story"] for r in rows)
        write_stories(os.path.join(data_dir, f"{split}.txt"), texts, len(rows))


def download_stories(data_dir):
    """Hugging Face (or the mirror at $HF_ENDPOINT) -> download_dir -> cleaned train.txt and val.txt.
    Whole files are kept, so a second run fetches nothing. With --num_stories the train file is
    fetched only until it holds that many stories and stays a .part, which a later run resumes."""
    from lib import download  # only here: the shipped corpus needs no HTTP code
    repo, *files = SOURCES[dataset]
    endpoint = (os.environ.get("HF_ENDPOINT") or "https://huggingface.co").rstrip("/")
    os.makedirs(download_dir, exist_ok=True)
    for split, file in zip(SPLITS, files):
        url, raw = f"{endpoint}/datasets/{repo}/resolve/main/{file}", os.path.join(download_dir, file)
        counter = StoryCounter(num_stories) if num_stories and split == "train" else None
        before, t0 = _size(raw) or _size(raw + ".part"), time.time()
        label = f"download {file}" + (f" (until {num_stories:,} stories)" if counter else "")
        try:
            got = download.download(url, raw, token=os.environ.get("HF_TOKEN"), until=counter and counter.feed,
                                    progress=lambda total, have: Progress(label, total, " MB", 1e6, have),
                                    max_retries=max_retries, backoff=backoff, timeout=timeout)
        except download.DownloadError as e:
            die(download_error(e, file, url, repo, endpoint))
        fetched, seconds = _size(got) - before, time.time() - t0
        print(f"download {file}: " + (f"{fetched / 1e6:,.1f} MB in {seconds:.1f}s ({fetched / 1e6 / seconds:,.1f} MB/s)"
                                      if fetched > 0 else f"nothing to fetch, {got} is here"), flush=True)
        if got.endswith(".part"):
            print(f"download {file}: stopped after {num_stories:,} stories; {got} keeps the {_size(got) / 1e6:,.1f} MB "
                  "so far, and a run with more (or all, --num_stories=0) resumes from it")
        elif counter and counter.end is None:
            print(f"note: {file} holds only {counter.count:,} stories, fewer than --num_stories={num_stories:,}: taking all")
        with open(got, "rb") as f:
            if EOT.encode() not in f.read(1 << 20):  # whatever the server said, this is not a story file
                os.remove(got)
                die(f"{got} holds no {EOT} in its first MB, so it is not {file}: deleted it; check HF_ENDPOINT "
                    f"(now {endpoint}) and run again")
        end = counter.end if counter and counter.end is not None else _size(got)
        n, repaired = clean_stories(got, end, os.path.join(data_dir, f"{split}.txt"))
        print(f"{split}: {n:,} stories, {repaired:,} of them with mis-decoded characters repaired")


def download_error(e, file, url, repo, endpoint):
    """download.py's error plus the fix, in Hugging Face's terms; never the token itself."""
    if e.status == 404:
        return (f"{file} is not at {url} (HTTP 404); check HF_ENDPOINT (now {endpoint}): it must be Hugging Face "
                f"or a mirror with its layout, <endpoint>/datasets/{repo}/resolve/main/{file}")
    if e.status in (401, 403):
        return (f"{url} refused {file} (HTTP {e.status}); " + ("check that HF_TOKEN is valid and may read "
                f"{repo}" if os.environ.get("HF_TOKEN") else "set HF_TOKEN to a Hugging Face access token "
                "(https://huggingface.co/settings/tokens)") + f", or HF_ENDPOINT (now {endpoint}) to a mirror")
    if e.unreachable:
        return (f"{e}; no answer from {endpoint}: no internet? --dataset={dataset} downloads from HF_ENDPOINT "
                "(default https://huggingface.co); offline, use the shipped corpus: python prepare.py")
    return str(e)


def _size(path):
    return os.path.getsize(path) if os.path.exists(path) else 0


class StoryCounter:
    """Fed a story file's bytes in order, counts the stories seen whole (non-empty once stripped, as
    read_stories counts them) and notes the offset just past the separator after the n-th."""

    def __init__(self, n):
        self.n, self.count, self.end, self.offset, self.tail = n, 0, None, 0, b""

    def feed(self, chunk):
        parts = (self.tail + chunk).split(EOT.encode())
        for part in parts[:-1]:
            self.offset += len(part) + len(EOT)
            if part.decode("utf-8", "replace").strip():
                self.count += 1
                if self.count == self.n:
                    self.end = self.offset
                    return True
        self.tail = parts[-1]  # a story not yet followed by its separator may be incomplete
        return False


# TinyStories V1 (and the Instruct set made with it) holds UTF-8 text that was once read as Windows-1252
# and saved again, so "’" (bytes E2 80 99) reads "â€™". Each such spelling maps back to its character, for
# the Latin-1 letters and signs and the general punctuation; bytes that Windows-1252 lacks pass through as
# themselves ("â€\x9d" for "”").
def _misread(c):
    return "".join(bytes([b]).decode("cp1252", "ignore") or chr(b) for b in c.encode("utf-8"))


REPAIRS = {_misread(c): c for c in map(chr, [*range(0xA0, 0x100), *range(0x2010, 0x2040), 0x20AC, 0x2122])}
_REPAIR = re.compile("|".join(map(re.escape, sorted(REPAIRS, key=len, reverse=True))))


def repair(story):
    if "â" not in story and "Ã" not in story and "Â" not in story:  # nearly every story: skip the regex
        return story
    story = _REPAIR.sub(lambda m: REPAIRS[m.group()], story)
    return story.replace("â€", "”")  # what is left is a "”" whose third byte, 0x9D, was dropped


def clean_stories(raw, end, out):
    """The stories in raw[:end] -> out, each stripped and repaired, empty ones dropped, in TinyStories'
    layout. Streams range by range, so memory stays flat. Returns (stories, repaired)."""
    progress = Progress(f"clean -> {out}", end, " MB", 1e6)
    counts = [0, 0]  # stories kept, repaired

    def write(f):
        for start, stop in story_ranges(raw, chunk_mb << 20, end):
            texts = read_stories(raw, start, stop)
            fixed = [repair(t) for t in texts]
            counts[1] += sum(a != b for a, b in zip(texts, fixed))
            f.write("".join(t + f"\n{EOT}\n" for t in fixed))
            counts[0] += len(fixed)
            progress.update(stop - start)
    atomic_write(out, write)
    return tuple(counts)


def story_ranges(path, chunk_bytes, end=None):
    """Split a story file (its first `end` bytes) into byte ranges of about chunk_bytes, each ending just
    after a separator, so workers can each read their own range without splitting a story (or a character)."""
    size, sep, ranges, start = os.path.getsize(path) if end is None else end, EOT.encode(), [], 0
    with open(path, "rb") as f:
        while start < size:
            stop = start + chunk_bytes
            if stop < size:
                f.seek(stop)
                tail = b""
                while sep not in tail and f.tell() < size:
                    tail += f.read(1 << 16)
                stop = stop + tail.index(sep) + len(sep) if sep in tail else size
            ranges.append((start, min(stop, size)))
            start = min(stop, size)
    return ranges


def gpt2_encoding():
    try:
        return tiktoken.get_encoding("gpt2")  # downloads GPT-2's vocabulary on first use, then caches it
    except Exception as e:  # offline this fails, as one of several exception types
        die(f"--tokenizer=gpt2 needs GPT-2's vocabulary, which tiktoken could not download ({type(e).__name__}); "
            "connect once (it is cached after), or use the default --tokenizer=bpe")


def train_tokenizer(data_dir):
    path = os.path.join(data_dir, "train.txt")
    if not os.path.exists(path):
        die(f"{path} is missing; make the stories first: python prepare.py --dataset={dataset} --stage=stories")
    start, end = story_ranges(path, tokenizer_sample_mb << 20)[0]
    docs = read_stories(path, start, end)
    ids_path = os.path.join(data_dir, "gpt2_ids.json")
    t0 = time.time()
    if tokenizer == "gpt2":
        print(f"tokenizer: GPT-2's vocabulary, cut to the tokens {len(docs):,} stories ({(end - start) / 1e6:.1f} MB) use")
        gpt2 = gpt2_encoding()
        ranks, gpt2_ids = compact_ranks(gpt2, docs)
        with open(ids_path, "w") as f:  # our id -> GPT-2's, e.g. to start from GPT-2's embeddings
            json.dump(gpt2_ids, f)
        print(f"tokenizer: {len(ranks) + 1:,} of GPT-2's {gpt2.n_vocab:,} tokens kept (<|endoftext|> included); "
              f"GPT-2 ids in {ids_path}")
    else:
        print(f"tokenizer: learning {vocab_size} tokens from {len(docs):,} stories ({(end - start) / 1e6:.1f} MB)")
        ranks = train_bpe(docs, vocab_size, verbose=True)
        if os.path.exists(ids_path):
            os.remove(ids_path)  # it described an earlier GPT-2 tokenizer
    save_ranks(ranks, os.path.join(data_dir, "tokenizer.tiktoken"))
    print(f"tokenizer: done in {time.time() - t0:.1f}s")


_encoding = None  # each worker process builds its own tiktoken Encoding once


def _init_worker(tokenizer_path):
    global _encoding
    _encoding = load_encoding(tokenizer_path)


def encode_range(job):
    """One worker's share: its range's stories -> uint16 ids, every story followed by <|endoftext|>,
    plus the story and byte counts for meta.json."""
    path, start, end = job
    docs = read_stories(path, start, end)
    # One call for the whole range, the stories joined by the special token: the same ids as
    # encode_ordinary per story plus eot (tiktoken never merges across a special token), and measured
    # 1.5x faster than that loop collecting its lists into an array (28 vs 18 MB/s, 4,096-token BPE).
    text = EOT.join(docs) + EOT if docs else ""
    ids = _encoding.encode_to_numpy(text, allowed_special={EOT}).astype(np.uint16)
    return ids, len(docs), len(text.encode("utf-8")) - len(docs) * len(EOT)


def encode_in_order(jobs, n_proc, tokenizer_path):
    """encode_range over jobs on n_proc processes, yielding results in job order. At most 2 per process
    are ever waiting, so a 2 GB split needs no more memory than a 20 MB one."""
    if n_proc == 1:
        _init_worker(tokenizer_path)
        yield from map(encode_range, jobs)
        return
    with mp.Pool(n_proc, _init_worker, (tokenizer_path,)) as pool:
        pending = deque()
        for job in jobs:
            pending.append(pool.apply_async(encode_range, (job,)))
            if len(pending) >= 2 * n_proc:
                yield pending.popleft().get()
        while pending:
            yield pending.popleft().get()


def pretokenize(data_dir):
    tokenizer_path = os.path.join(data_dir, "tokenizer.tiktoken")
    vocab = load_encoding(tokenizer_path).n_vocab  # a one-line error if it is missing or damaged
    meta = {"dataset": dataset, "tokenizer": "tokenizer.tiktoken", "vocab_size": vocab,
            "tokenizer_sha256": digest(open(tokenizer_path, encoding="ascii").read())}
    for split in SPLITS:
        path, out = os.path.join(data_dir, f"{split}.txt"), os.path.join(data_dir, f"{split}.bin")
        jobs = [(path, s, e) for s, e in story_ranges(path, chunk_mb << 20)]
        progress = Progress(f"encode {split}", os.path.getsize(path), " MB", 1e6)
        counts = {"stories": 0, "tokens": 0, "bytes": 0}
        n_proc, t0 = max(1, min(workers, len(jobs))), time.time()
        def write(f):  # results arrive in order and go straight to disk
            for (_, s, e), (ids, n, b) in zip(jobs, encode_in_order(jobs, n_proc, tokenizer_path)):
                f.write(ids.tobytes())
                counts["stories"] += n
                counts["tokens"] += len(ids)
                counts["bytes"] += b
                progress.update(e - s)
        atomic_write(out, write, "wb")
        seconds = time.time() - t0
        counts["bytes_per_token"] = round(counts["bytes"] / max(1, counts["tokens"]), 4)
        meta[split] = counts
        print(f"{split}: {counts['stories']:,} stories, {counts['tokens']:,} tokens, "
              f"{counts['bytes_per_token']} bytes/token -> {out} "
              f"({os.path.getsize(path) / 1e6 / max(seconds, 1e-9):,.1f} MB/s, {n_proc} worker{'s' * (n_proc > 1)})")
    meta.update(source=dataset, seed=seed)
    # last, and whole or not at all: train.py trusts bins only with a meta.json that counts them
    atomic_write(os.path.join(data_dir, "meta.json"), lambda f: json.dump(meta, f, indent=2))


if __name__ == "__main__":  # guarded: worker processes re-import this file on macOS and Windows
    if dataset == "generate" and not num_stories and stage in ("all", "stories") and not dry_run:
        die("--dataset=generate needs --num_stories=N: the stories to keep, train and val together")
    if tokenizer == "gpt2" and stage in ("all", "tokenizer"):
        gpt2_encoding()  # fail now, not after a 2 GB download
    data_dir = os.path.join("data", name or (f"{dataset}-instruct" if instruct and dataset == "generate" else dataset))
    os.makedirs(data_dir, exist_ok=True)
    # a new tokenizer changes what every id means: the bins of the old one are encoded again with it
    stages = {"stories": make_stories, "tokenizer": train_tokenizer, "pretokenize": pretokenize}
    for stage_name, run in stages.items():
        if stage in ("all", stage_name) or (stage == "tokenizer" and stage_name == "pretokenize"):
            t0 = time.time()
            run(data_dir)
            print(f"== {stage_name} done in {time.time() - t0:.1f}s")
