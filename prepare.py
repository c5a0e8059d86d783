"""
prepare.py: turn stories into the token bins that train.py reads, in three stages, each runnable alone:

  stories     -> data/<dataset>/train.txt, val.txt     stories separated by <|endoftext|> lines
  tokenizer   -> data/<dataset>/tokenizer.tiktoken     a byte-level BPE learned from a sample of train.txt
                                                       (or GPT-2's, cut to the tokens that sample uses)
  pretokenize -> data/<dataset>/train.bin, val.bin     uint16 ids, every story followed by <|endoftext|>,
                 data/<dataset>/meta.json              plus token and byte counts per split

    python prepare.py                                         # the real TinyStories (V2, GPT-4 only) from Hugging Face
    python prepare.py --dataset=tinystories-v1 --num_stories=100000   # the paper's V1, only its first 100,000 stories
    python prepare.py --dataset=synthetic                     # offline: the built-in story generator
    python prepare.py --dataset=synthetic --stage=tokenizer   # one stage again, e.g. with --vocab_size=2048
    OPENAI_BASE_URL=http://localhost:8000/v1 python prepare.py --dataset=generate --num_stories=50
                                                              # an LLM writes them: see llm_stories.py

The real datasets (--dataset=tinystories, tinystories-v1, tinystories-instruct) come from
$HF_ENDPOINT (default https://huggingface.co; a mirror with the same layout works; $HF_TOKEN, if set,
goes as a bearer token) through download.py, which resumes and verifies, into data/downloads/; the
stories stage then cleans them into train.txt and val.txt: each story stripped, empty ones dropped,
V1's mis-decoded characters ("â€™" for "’") repaired, all else kept as it is.
"""
import json
import multiprocessing as mp
import os
import re
import time
from collections import deque

import numpy as np
import tiktoken

import download
import llm_stories
import stories
from configurator import configure, die
from progress import Progress
from tokenizer import EOT, compact_ranks, load_encoding, save_ranks, train_bpe

dataset = "tinystories"  # tinystories, tinystories-v1, -instruct (downloads) | synthetic, synthetic-instruct | generate
stage = "all"  # all | stories | tokenizer | pretokenize
num_stories = 0  # train stories; 0 = all of a download, else 20,000 (val: a download's whole; else a fiftieth, >= 200)
seed = 1337  # the built-in generator's seed
tokenizer = "bpe"  # bpe: learned here | gpt2: tiktoken's GPT-2 vocabulary cut to the tokens in use (needs internet once)
vocab_size = 4096  # BPE vocabulary, <|endoftext|> included
tokenizer_sample_mb = 50  # the tokenizer learns from this many MB at the start of train.txt
workers = os.cpu_count()  # processes that encode in parallel
chunk_mb = 4  # encoding work unit; ends on a story boundary
download_dir = os.path.join("data", "downloads")  # raw files from Hugging Face, shared by every --name
# --dataset=generate: an LLM writes the stories (llm_stories.py); --workers is also its concurrent requests,
# num_stories the stories to keep (train and val), seed its word draws. The key comes only from $OPENAI_API_KEY.
name = ""  # the folder in data/; default: the dataset's name (generate-instruct with --instruct=True)
generate_model = "gpt-4o-mini"
api_base = ""  # default: $OPENAI_BASE_URL, else https://api.openai.com/v1
instruct = False  # write the instruct form (Features, Words, Summary, Story) into the stories files
language = ""  # e.g. French: the stories, and the three words the model translates, in that language
words_file = ""  # lines 'verbs: jump, run:ran' (':' adds a form the check accepts), 'nouns: ...', 'adjectives: ...'
prompt_file = ""  # our request's wording replaced: {verb}, {noun}, {adjective}, optional {features}, {language}
max_requests = 0  # stop after this many requests (spend cap); 0 = no cap
max_retries = 6  # per request (LLM or download), for 429, 5xx, timeouts and connection errors
backoff = 1.0  # seconds before the first retry; doubles each time (a Retry-After header wins)
timeout = 60.0  # seconds per request (for a download: to connect, and between bytes)
dry_run = False  # print the first request and a cost estimate; send nothing
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
    with open(path + ".tmp", "w", encoding="utf-8") as f:
        for text in texts:
            f.write(text + f"\n{EOT}\n")
            progress.update(1)
    os.replace(path + ".tmp", path)


def make_stories(data_dir):
    if dataset in SOURCES:
        return download_stories(data_dir)
    if dataset == "generate":  # an LLM writes them; each reply is kept in data_dir/generated.jsonl as it arrives
        for split, texts in llm_stories.generate(data_dir, globals()).items():
            write_stories(os.path.join(data_dir, f"{split}.txt"), texts, len(texts))
        return
    kinds = {"synthetic": lambda r: r["story"], "synthetic-instruct": stories.instruct_text}
    if dataset not in kinds:
        die(f"unknown dataset '{dataset}'; choose one of: {', '.join([*SOURCES, *kinds])}, generate")
    num_val = max(200, num_stories // 50)
    for split, n, split_seed in (("train", num_stories, seed), ("val", num_val, seed + 1)):
        records = stories.generate_stories(n, split_seed)  # different seeds: val is unseen stories
        write_stories(os.path.join(data_dir, f"{split}.txt"), map(kinds[dataset], records), n)


def download_stories(data_dir):
    """Hugging Face (or the mirror at $HF_ENDPOINT) -> download_dir -> cleaned train.txt and val.txt.
    Whole files are kept, so a second run fetches nothing. With --num_stories the train file is
    fetched only until it holds that many stories and stays a .part, which a later run resumes."""
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
                "(default https://huggingface.co); offline, use --dataset=synthetic")
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
    kept = repaired = 0
    with open(out + ".tmp", "w", encoding="utf-8") as f:
        for start, stop in story_ranges(raw, chunk_mb << 20, end):
            texts = read_stories(raw, start, stop)
            fixed = [repair(t) for t in texts]
            repaired += sum(a != b for a, b in zip(texts, fixed))
            f.write("".join(t + f"\n{EOT}\n" for t in fixed))
            kept += len(fixed)
            progress.update(stop - start)
    os.replace(out + ".tmp", out)
    return kept, repaired


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


def read_stories(path, start, end):
    with open(path, "rb") as f:
        f.seek(start)
        text = f.read(end - start).decode("utf-8", "replace")  # a downloaded file could hold a stray bad byte
    return [s for s in (part.strip() for part in text.split(EOT)) if s]


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
    meta = {"dataset": dataset, "tokenizer": "tokenizer.tiktoken", "vocab_size": load_encoding(tokenizer_path).n_vocab}
    for split in SPLITS:
        path, out = os.path.join(data_dir, f"{split}.txt"), os.path.join(data_dir, f"{split}.bin")
        jobs = [(path, s, e) for s, e in story_ranges(path, chunk_mb << 20)]
        progress = Progress(f"encode {split}", os.path.getsize(path), " MB", 1e6)
        counts = {"stories": 0, "tokens": 0, "bytes": 0}
        n_proc, t0 = max(1, min(workers, len(jobs))), time.time()
        with open(out + ".tmp", "wb") as f:  # results arrive in order and go straight to disk
            for (_, s, e), (ids, n, b) in zip(jobs, encode_in_order(jobs, n_proc, tokenizer_path)):
                f.write(ids.tobytes())
                counts["stories"] += n
                counts["tokens"] += len(ids)
                counts["bytes"] += b
                progress.update(e - s)
        os.replace(out + ".tmp", out)
        seconds = time.time() - t0
        counts["bytes_per_token"] = round(counts["bytes"] / max(1, counts["tokens"]), 4)
        meta[split] = counts
        print(f"{split}: {counts['stories']:,} stories, {counts['tokens']:,} tokens, "
              f"{counts['bytes_per_token']} bytes/token -> {out} "
              f"({os.path.getsize(path) / 1e6 / max(seconds, 1e-9):,.1f} MB/s, {n_proc} worker{'s' * (n_proc > 1)})")
    meta.update(source=dataset, seed=seed)
    with open(os.path.join(data_dir, "meta.json"), "w") as f:
        json.dump(meta, f, indent=2)


if __name__ == "__main__":  # guarded: worker processes re-import this file on macOS and Windows
    configure(globals())
    stages = {"stories": make_stories, "tokenizer": train_tokenizer, "pretokenize": pretokenize}
    if stage != "all" and stage not in stages:
        die(f"unknown stage '{stage}'; choose all, {', '.join(stages)}")
    if tokenizer not in ("bpe", "gpt2"):
        die(f"unknown tokenizer '{tokenizer}'; choose bpe (the default) or gpt2")
    if tokenizer == "gpt2" and stage in ("all", "tokenizer"):
        gpt2_encoding()  # fail now, not after a 2 GB download
    if not num_stories and dataset not in SOURCES:
        num_stories = 20_000
    data_dir = os.path.join("data", name or (f"{dataset}-instruct" if instruct and dataset == "generate" else dataset))
    os.makedirs(data_dir, exist_ok=True)
    for stage_name, run in stages.items():
        if stage in ("all", stage_name):
            t0 = time.time()
            run(data_dir)
            print(f"== {stage_name} done in {time.time() - t0:.1f}s")
