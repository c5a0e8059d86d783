"""Byte-level BPE tokenizer: trained here, run by tiktoken.

tiktoken cannot download GPT-2's vocabulary offline, so prepare.py's "tokenizer" stage calls
train_bpe() on the stories and save_ranks() the result; every other script then calls
load_encoding() (or get_encoding() on the text a checkpoint embeds) and gets a plain
tiktoken.Encoding. (compact_ranks() instead cuts an existing vocabulary, GPT-2's, down to the
tokens a corpus uses, into the same plain form.) Conventions follow GPT-2 / CS336 so merges can
be checked against other implementations: GPT-2's pre-tokenization pattern, special tokens split
documents and are never merged, and ties between equally frequent pairs go to the
lexicographically greater (bytes, bytes) pair.
"""
import base64
import hashlib
import heapq
import os
import time
import warnings
from collections import Counter, defaultdict

import regex
import tiktoken

from lib.configurator import atomic_write, die

EOT = "<|endoftext|>"
# tiktoken's "gpt2" pat_str; train and encode must split text identically.
SPLIT_PATTERN = r"""'(?:[sdmt]|ll|ve|re)| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+"""
_PRETOKEN = regex.compile(SPLIT_PATTERN)


def _count_pretokens(docs, special_tokens):
    """Counter of pre-token strings over all documents, never spanning a special token."""
    specials = sorted(special_tokens, key=len, reverse=True)  # longest first, so prefixes can't shadow
    splitter = regex.compile("|".join(map(regex.escape, specials))) if specials else None
    counts = Counter()
    for doc in docs:
        for part in splitter.split(doc) if splitter else (doc,):
            counts.update(_PRETOKEN.findall(part))
    return counts


def _reverse_key(b: bytes) -> str:
    # heapq pops the smallest entry, but ties must go to the *greatest* bytes. Mapping each byte
    # x -> chr(255 - x) plus a terminator above every byte reverses bytes order exactly (a proper
    # prefix sorts after its extensions), and keeps every heap comparison in C.
    return "".join(chr(255 - x) for x in b) + chr(256)


def _merge(word, a, b, new):
    out, i, n = [], 0, len(word)
    while i < n:
        if i + 1 < n and word[i] == a and word[i + 1] == b:
            out.append(new)
            i += 2
        else:
            out.append(word[i])
            i += 1
    return tuple(out)


def train_bpe(text_or_docs, vocab_size: int, special_tokens=(EOT,), verbose=False) -> dict[bytes, int]:
    """Train byte-level BPE; return tiktoken mergeable ranks (256 bytes, then merges in order).

    text_or_docs is one string (split on the special tokens) or an iterable of document strings.
    len(result) == vocab_size - len(special_tokens), unless the corpus runs out of pairs first.
    """
    special_tokens = tuple(special_tokens)
    lo = 256 + len(special_tokens)
    if not lo <= vocab_size <= 65536:
        raise ValueError(f"vocab_size must be in [{lo}, 65536] (256 bytes + {len(special_tokens)} special tokens; "
                         f"ids are stored as uint16), got {vocab_size}")
    t0 = time.time()
    docs = [text_or_docs] if isinstance(text_or_docs, str) else text_or_docs
    counts = _count_pretokens(docs, special_tokens)
    words = [tuple(s.encode("utf-8")) for s in counts]  # token ids; ids 0..255 are the bytes
    freqs = list(counts.values())
    if verbose:
        print(f"bpe: {sum(freqs):,} pre-tokens ({len(words):,} unique), counted in {time.time() - t0:.1f}s", flush=True)

    vocab = [bytes([i]) for i in range(256)]  # id -> bytes
    rkey = [_reverse_key(t) for t in vocab]
    ranks = {t: i for i, t in enumerate(vocab)}
    pair_counts = defaultdict(int)
    where = defaultdict(set)  # pair -> indices of words that contained it (may be stale, checked on use)
    for j, (w, f) in enumerate(zip(words, freqs)):
        for p in zip(w, w[1:]):
            pair_counts[p] += f
            where[p].add(j)
    # Lazy max-heap: an entry is live only while its count still equals pair_counts[pair].
    heap = [(-c, rkey[a], rkey[b], a, b) for (a, b), c in pair_counts.items()]
    heapq.heapify(heap)

    n_target = vocab_size - len(special_tokens)
    n_merges, t1 = n_target - 256, time.time()
    while len(ranks) < n_target:
        while heap and pair_counts.get((heap[0][3], heap[0][4])) != -heap[0][0]:
            heapq.heappop(heap)
        if not heap:
            warnings.warn(f"train_bpe: corpus ran out of pairs at {len(ranks)} tokens (asked for {n_target})")
            break
        _, _, _, a, b = heapq.heappop(heap)
        merged = vocab[a] + vocab[b]
        # Two different pairs (X+YZ, XY+Z) could spell the same bytes; it has not been seen on real text, but
        # a bytes->rank dict holds each token once, so such a merge would reuse the earlier id, not add a rank.
        new = ranks.get(merged)
        if new is None:
            new = ranks[merged] = len(vocab)
            vocab.append(merged)
            rkey.append(_reverse_key(merged))
        del pair_counts[(a, b)]
        changed = set()
        for j in where.pop((a, b)):
            old = words[j]
            w = _merge(old, a, b, new)
            if w == old:
                continue  # stale index entry
            words[j], f = w, freqs[j]
            delta = defaultdict(int)
            for p in zip(old, old[1:]):
                delta[p] -= f
            for p in zip(w, w[1:]):
                delta[p] += f
            for p, d in delta.items():
                if d and p != (a, b):
                    pair_counts[p] += d
                    changed.add(p)
                    if d > 0:
                        where[p].add(j)
        for p in changed:
            c = pair_counts[p]
            if c > 0:
                heapq.heappush(heap, (-c, rkey[p[0]], rkey[p[1]], p[0], p[1]))
            else:
                del pair_counts[p]
        done = len(ranks) - 256
        if verbose and (done % 256 == 0 or len(ranks) == n_target):
            rate = done / max(time.time() - t1, 1e-9)
            eta = (n_merges - done) / rate
            print(f"bpe: {done}/{n_merges} merges, {rate:.0f} merges/s, eta {eta:.0f}s", flush=True)
    if verbose:
        print(f"bpe: {len(ranks)} tokens + {len(special_tokens)} special in {time.time() - t0:.1f}s", flush=True)
    return ranks


def _bpe_tokens(piece: bytes, ranks) -> set[bytes]:
    """The tokens tiktoken's BPE passes through while encoding one pre-token: a piece that is a token stays
    whole; else it joins, again and again, the adjacent pair whose joined bytes rank lowest (leftmost on a tie)."""
    if piece in ranks:
        return {piece}
    parts, made = [piece[i:i + 1] for i in range(len(piece))], set()
    while len(parts) > 1:
        rank, i = min((ranks.get(a + b, len(ranks)), i) for i, (a, b) in enumerate(zip(parts, parts[1:])))
        if rank == len(ranks):
            break
        parts[i:i + 2] = [parts[i] + parts[i + 1]]
        made.add(parts[i])
    return made


def compact_ranks(base: tiktoken.Encoding, docs) -> tuple[dict[bytes, int], list[int]]:
    """Cut a byte-level BPE `base` (tiktoken's GPT-2; it must split text by SPLIT_PATTERN) down to the
    tokens that encoding docs with it uses, plus the merges on the way to them and the 256 single bytes.
    Kept in base's order, they are again a plain rank table: docs encode into exactly base's tokens
    (renumbered), and any other text still encodes, into shorter tokens, and decodes exactly.
    Returns (ranks, base_ids), base_ids[new id] being the token's id in base."""
    specials = {base.encode_single_token(s) for s in base.special_tokens_set}
    base_ranks = {base.decode_single_token_bytes(i): i for i in range(base.n_vocab) if i not in specials}
    keep = {t for t in base_ranks if len(t) == 1}
    for piece in _count_pretokens(docs, base.special_tokens_set):
        keep |= _bpe_tokens(piece.encode("utf-8"), base_ranks)
    base_ids = sorted(base_ranks[t] for t in keep)
    return {base.decode_single_token_bytes(i): new for new, i in enumerate(base_ids)}, base_ids


def dump_ranks(ranks) -> str:
    """tiktoken's .tiktoken format: one "<base64 token> <rank>" line per token, in rank order."""
    by_rank = sorted(ranks.items(), key=lambda kv: kv[1])
    return "".join(f"{base64.b64encode(t).decode('ascii')} {r}\n" for t, r in by_rank)


def parse_ranks(text: str) -> dict[bytes, int]:
    ranks = {}
    for line in text.splitlines():
        if line.strip():
            token, rank = line.split()
            ranks[base64.b64decode(token)] = int(rank)
    return ranks


def get_encoding(ranks_or_text, name="tinystories") -> tiktoken.Encoding:
    """A tiktoken.Encoding from ranks (or dump_ranks text); EOT gets the id after the last rank."""
    ranks = parse_ranks(ranks_or_text) if isinstance(ranks_or_text, str) else dict(ranks_or_text)
    if sorted(ranks.values()) != list(range(len(ranks))):
        raise ValueError("ranks must be exactly 0..n-1 so that EOT = n is the last id")
    return tiktoken.Encoding(name, pat_str=SPLIT_PATTERN, mergeable_ranks=ranks, special_tokens={EOT: len(ranks)})


def digest(text) -> str:
    """The sha256 of a tokenizer's text: meta.json records the one its bins were encoded with."""
    return hashlib.sha256(text.encode()).hexdigest()


def save_ranks(ranks, path):
    # Write-then-rename so a crash never leaves a truncated tokenizer for later stages to load.
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    atomic_write(str(path), lambda f: f.write(dump_ranks(ranks)))


def load_encoding(path) -> tiktoken.Encoding:
    try:
        with open(path, encoding="ascii") as f:
            return get_encoding(f.read())
    except FileNotFoundError:
        die(f"no tokenizer at {path}; train it: python prepare.py --stage=tokenizer (same --dataset)")
    except (OSError, ValueError) as e:  # empty, half-written, not a tokenizer at all
        die(f"{path} is not a tokenizer ({type(e).__name__}); make it again: python prepare.py --stage=tokenizer")
