"""
prepare.py: turn stories into the token bins that train.py reads, in three stages, each runnable alone:

  stories     -> data/<dataset>/train.txt, val.txt     stories separated by <|endoftext|> lines
  tokenizer   -> data/<dataset>/tokenizer.tiktoken     a byte-level BPE learned from a sample of train.txt
  pretokenize -> data/<dataset>/train.bin, val.bin     uint16 ids, every story followed by <|endoftext|>,
                 data/<dataset>/meta.json              plus token and byte counts per split

    python prepare.py --dataset=synthetic                     # offline: the built-in story generator
    python prepare.py --dataset=synthetic --stage=tokenizer   # one stage again, e.g. with --vocab_size=2048
    OPENAI_BASE_URL=http://localhost:8000/v1 python prepare.py --dataset=generate --num_stories=50
                                                              # an LLM writes them: see llm_stories.py
"""
import json
import multiprocessing as mp
import os
import time

import numpy as np

import llm_stories
import stories
import tokenizer
from configurator import configure, die

dataset = "tinystories"  # synthetic | synthetic-instruct | generate (an LLM writes them)
stage = "all"  # all | stories | tokenizer | pretokenize
num_stories = 20_000  # stories to make for train (val gets a fiftieth, at least 200)
seed = 1337  # the built-in generator's seed
vocab_size = 4096  # BPE vocabulary, <|endoftext|> included
tokenizer_sample_mb = 50  # the BPE learns from this many MB at the start of train.txt
workers = os.cpu_count()  # processes that encode in parallel
chunk_mb = 4  # encoding work unit; ends on a story boundary
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
max_retries = 6  # per request, for 429, 5xx, timeouts and connection errors
backoff = 1.0  # seconds before the first retry; doubles each time (a Retry-After header wins)
timeout = 60.0  # seconds per request
dry_run = False  # print the first request and a cost estimate; send nothing
EOT = tokenizer.EOT
SPLITS = ("train", "val")


class Progress:
    """Prints `label: done/total unit (rate/s, eta)` at most once a second, and once at the end."""

    def __init__(self, label, total, unit="", scale=1):
        self.label, self.total, self.unit, self.scale = label, total, unit, scale
        self.done, self.t0, self.shown = 0, time.time(), 0.0

    def update(self, n):
        self.done += n
        elapsed = time.time() - self.t0
        if elapsed - self.shown >= 1.0 or self.done >= self.total:
            self.shown = elapsed
            rate = self.done / max(elapsed, 1e-9)
            eta = (self.total - self.done) / rate if rate > 0 else 0.0
            s = self.scale
            print(f"{self.label}: {self.done / s:,.1f}/{self.total / s:,.1f}{self.unit} "
                  f"({rate / s:,.1f}{self.unit}/s, eta {eta:.0f}s)", flush=True)


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
    if dataset == "generate":  # an LLM writes them; each reply is kept in data_dir/generated.jsonl as it arrives
        for split, texts in llm_stories.generate(data_dir, globals()).items():
            write_stories(os.path.join(data_dir, f"{split}.txt"), texts, len(texts))
        return
    kinds = {"synthetic": lambda r: r["story"], "synthetic-instruct": stories.instruct_text}
    if dataset not in kinds:
        die(f"unknown dataset '{dataset}'; choose one of: {', '.join(kinds)}, generate")
    num_val = max(200, num_stories // 50)
    for split, n, split_seed in (("train", num_stories, seed), ("val", num_val, seed + 1)):
        records = stories.generate_stories(n, split_seed)  # different seeds: val is unseen stories
        write_stories(os.path.join(data_dir, f"{split}.txt"), map(kinds[dataset], records), n)


def story_ranges(path, chunk_bytes):
    """Split a story file into byte ranges of about chunk_bytes, each ending just after a separator,
    so workers can each read their own range without splitting a story (or a UTF-8 character)."""
    size, sep, ranges, start = os.path.getsize(path), EOT.encode(), [], 0
    with open(path, "rb") as f:
        while start < size:
            end = start + chunk_bytes
            if end < size:
                f.seek(end)
                tail = b""
                while sep not in tail and f.tell() < size:
                    tail += f.read(1 << 16)
                end = end + tail.index(sep) + len(sep) if sep in tail else size
            ranges.append((start, min(end, size)))
            start = min(end, size)
    return ranges


def read_stories(path, start, end):
    with open(path, "rb") as f:
        f.seek(start)
        text = f.read(end - start).decode("utf-8")
    return [s for s in (part.strip() for part in text.split(EOT)) if s]


def train_tokenizer(data_dir):
    path = os.path.join(data_dir, "train.txt")
    if not os.path.exists(path):
        die(f"{path} is missing; make the stories first: python prepare.py --dataset={dataset} --stage=stories")
    start, end = story_ranges(path, tokenizer_sample_mb << 20)[0]
    docs = read_stories(path, start, end)
    print(f"tokenizer: learning {vocab_size} tokens from {len(docs):,} stories ({(end - start) / 1e6:.1f} MB)")
    t0 = time.time()
    ranks = tokenizer.train_bpe(docs, vocab_size, verbose=True)
    tokenizer.save_ranks(ranks, os.path.join(data_dir, "tokenizer.tiktoken"))
    print(f"tokenizer: done in {time.time() - t0:.1f}s")


_encoding = None  # each worker process builds its own tiktoken Encoding once


def _init_worker(tokenizer_path):
    global _encoding
    _encoding = tokenizer.load_encoding(tokenizer_path)


def encode_range(job):
    """One worker's share: its range's stories -> uint16 ids, plus counts for meta.json."""
    path, start, end = job
    ids, num_bytes, eot = [], 0, _encoding.eot_token
    docs = read_stories(path, start, end)
    for story in docs:  # plain encode_ordinary per story: measured faster than encode_ordinary_batch here
        ids.extend(_encoding.encode_ordinary(story))
        ids.append(eot)
        num_bytes += len(story.encode("utf-8"))
    return np.array(ids, dtype=np.uint16), len(docs), num_bytes


def pretokenize(data_dir):
    tokenizer_path = os.path.join(data_dir, "tokenizer.tiktoken")
    meta = {"dataset": dataset, "tokenizer": "tokenizer.tiktoken", "vocab_size": tokenizer.load_encoding(tokenizer_path).n_vocab}
    for split in SPLITS:
        path, out = os.path.join(data_dir, f"{split}.txt"), os.path.join(data_dir, f"{split}.bin")
        jobs = [(path, s, e) for s, e in story_ranges(path, chunk_mb << 20)]
        progress = Progress(f"encode {split}", os.path.getsize(path), " MB", 1e6)
        counts = {"stories": 0, "tokens": 0, "bytes": 0}
        n_proc = max(1, min(workers, len(jobs)))
        pool = mp.Pool(n_proc, _init_worker, (tokenizer_path,)) if n_proc > 1 else None
        if pool is None:
            _init_worker(tokenizer_path)
        try:
            with open(out + ".tmp", "wb") as f:  # results arrive in order and go straight to disk
                for (_, s, e), (ids, n, b) in zip(jobs, (pool.imap if pool else map)(encode_range, jobs)):
                    f.write(ids.tobytes())
                    counts["stories"] += n
                    counts["tokens"] += len(ids)
                    counts["bytes"] += b
                    progress.update(e - s)
        finally:
            if pool:
                pool.close()
        os.replace(out + ".tmp", out)
        counts["bytes_per_token"] = round(counts["bytes"] / max(1, counts["tokens"]), 4)
        meta[split] = counts
        print(f"{split}: {counts['stories']:,} stories, {counts['tokens']:,} tokens, "
              f"{counts['bytes_per_token']} bytes/token -> {out}")
    meta.update(source=dataset, seed=seed)
    with open(os.path.join(data_dir, "meta.json"), "w") as f:
        json.dump(meta, f, indent=2)


if __name__ == "__main__":  # guarded: worker processes re-import this file on macOS and Windows
    configure(globals())
    stages = {"stories": make_stories, "tokenizer": train_tokenizer, "pretokenize": pretokenize}
    if stage != "all" and stage not in stages:
        die(f"unknown stage '{stage}'; choose all, {', '.join(stages)}")
    data_dir = os.path.join("data", name or (f"{dataset}-instruct" if instruct and dataset == "generate" else dataset))
    os.makedirs(data_dir, exist_ok=True)
    for stage_name, run in stages.items():
        if stage in ("all", stage_name):
            t0 = time.time()
            run(data_dir)
            print(f"== {stage_name} done in {time.time() - t0:.1f}s")
