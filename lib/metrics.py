"""
metrics.py: the measurements grade.py makes without an API, plus reading and averaging the judge's grades.

Offline, each in a few lines of numpy/torch: bits per byte on a text (a loss that compares models
with different tokenizers), distinct-n and repeated 4-grams (variety), memorisation against the
training corpus (does a model copy stories?), and two checks of following instructions (finishing a
sentence cut in half; using required words). Words are lower-cased runs of letters, digits and '.
"""
import math
import re

import numpy as np
import torch

from lib.corpus import words
from lib.progress import Progress

GRADES = ("grammar", "creativity", "consistency", "plot")
AGE_GROUPS = {"A": "3 or under", "B": "4-5", "C": "6-7", "D": "8-9", "E": "10-12", "F": "13-16"}


# --- loss -------------------------------------------------------------------------------------

@torch.no_grad()
def bits_per_byte(model, enc, stories, max_tokens, device, autocast, batch_size=8):
    """Cross-entropy in bits per UTF-8 byte of the stories, laid out as in training (<|endoftext|>
    before and after each); divided by bytes, not tokens, so any two tokenizers compare."""
    eot, ids, n_bytes = enc.eot_token, [enc.eot_token], 0
    for story in stories:
        tokens = enc.encode_ordinary(story)
        if len(ids) > 1 and len(ids) + len(tokens) > max_tokens:
            break
        ids += tokens + [eot]
        n_bytes += len(story.encode("utf-8"))
    T = model.config.block_size
    starts = list(range(0, len(ids) - 1, T))  # non-overlapping windows, as train.py's eval sees them
    total_bits, progress = 0.0, Progress("bits per byte", len(ids) - 1, " tokens")
    for b in range(0, len(starts), batch_size):
        xs, ys = [], []
        for s in starts[b:b + batch_size]:
            x, y = ids[s:s + T], ids[s + 1:s + T + 1]
            xs.append(x + [0] * (T - len(x)))
            ys.append(y + [-1] * (T - len(y)))  # -1: ignored by the loss
        x, y = torch.tensor(xs, device=device), torch.tensor(ys, device=device)
        with autocast:
            _, loss = model(x, y)
        n = int((y >= 0).sum())
        total_bits += loss.item() * n / math.log(2)
        progress.update(n)
    return total_bits / max(1, n_bytes)


# --- variety ----------------------------------------------------------------------------------

def distinct_n(texts, n):
    """Distinct n-grams over all n-grams, pooled across texts (Li et al., 2016): 1.0 = never repeats."""
    grams = [tuple(w[i:i + n]) for w in map(words, texts) for i in range(len(w) - n + 1)]
    return len(set(grams)) / len(grams) if grams else 0.0


def repeated_ngram_rate(text, n=4):
    """Share of a text's n-grams that already occurred earlier in it: a model stuck in a loop scores high."""
    w = words(text)
    grams = [tuple(w[i:i + n]) for i in range(len(w) - n + 1)]
    return 1 - len(set(grams)) / len(grams) if grams else 0.0


def new_names(beginning, completion):
    """Names the completion gives that the beginning never did. A name here is a word the text
    capitalises inside a sentence ("said Tom", "Mia and Max"), where children's stories name their
    characters; its uses at a sentence's start count too ("Tom ran."), or a hero renamed in the
    first word of each sentence would go unseen. A story that keeps its cast brings in few (a new
    friend is fair, a renamed hero is not)."""
    names = set(re.findall(r"(?<=[a-z,] )[A-Z][a-z]+", beginning + " " + completion)) - NOT_NAMES
    seen = set(re.findall(r"[A-Z][a-z]+", beginning))
    return [w for w in re.findall(r"[A-Z][a-z]+", completion) if w in names and w not in seen]


def self_pairs(text):
    """Places where a name stands on both sides of 'and', 'told', 'to' or 'with' ("Lily and Lily
    went", "Lily told Lily"): a model that has lost track of who is who pairs the hero with itself."""
    return [m.group(0) for m in re.finditer(r"\b([A-Z][a-z]+) (?:and|told|to|with) \1\b", text)
            if m.group(1) not in NOT_NAMES]


# capitalised inside a sentence, yet no one's own name: family titles ("with Dad") and the calendar
NOT_NAMES = set("Mom Mommy Mum Mama Dad Daddy Papa Grandma Grandpa Granny Aunt Uncle Monday Tuesday Wednesday "
                "Thursday Friday Saturday Sunday January February March April June July August September "
                "October November December".split())


# --- instructions -----------------------------------------------------------------------------

def ends_mid_sentence(beginning):
    """True when a story beginning stops inside a sentence (no . ! ? at the end, quotes aside)."""
    s = beginning.rstrip()
    return not re.search(r"[.!?][\"')\]]*$", s)


def finishes_sentence(completion):
    """Does the completion write at least one word and then end the sentence it was handed?"""
    return re.match(r"[^.!?\n]*\w[^.!?\n]*[.!?]", completion) is not None


def required_words_used(completion, required):
    """Share of required words that appear, allowing endings (jump -> jumped, dance -> dancing)."""
    have = words(completion)

    def used(w):
        w = w.lower()
        stem = w[:-1] if w.endswith("e") and len(w) > 3 else w
        return any(h == w or h.startswith(stem) for h in have)

    return sum(map(used, required)) / len(required) if required else 0.0


# --- memorisation -----------------------------------------------------------------------------

def ngram_hashes(ids, n):
    """64-bit polynomial hashes of every n-gram of an int array (wrapping arithmetic is intended)."""
    if len(ids) < n:
        return np.zeros(0, dtype=np.uint64)
    h = np.zeros(len(ids) - n + 1, dtype=np.uint64)
    with np.errstate(over="ignore"):
        for j in range(n):
            h = h * np.uint64(1_000_003) + ids[j:len(ids) - n + 1 + j].astype(np.uint64) + np.uint64(1)
    return h


class CorpusIndex:
    """What a completion shares with the training stories, in bounded memory: the hashes of all word
    n-grams (n=8) for the longest copied span, and which stories hold each word bigram for the
    Rouge-2 precision against the single closest story (the check the paper made)."""

    def __init__(self, stories, n=8):
        self.n, self.vocab = n, {}
        hashes, codes, owners = [], [], []
        progress = Progress("memorisation index", len(stories), " stories")
        for k, story in enumerate(stories):
            ids = self._ids(story, grow=True)
            hashes.append(ngram_hashes(ids, n))
            bigrams = np.unique((ids[:-1] << 32) | ids[1:])
            codes.append(bigrams)
            owners.append(np.full(len(bigrams), k, dtype=np.int32))
            progress.update()
        self.hashes = np.unique(np.concatenate(hashes)) if hashes else np.zeros(0, np.uint64)
        codes = np.concatenate(codes) if codes else np.zeros(0, np.int64)
        order = np.argsort(codes, kind="stable")
        self.codes, self.owners = codes[order], (np.concatenate(owners) if owners else np.zeros(0, np.int32))[order]
        self.num_stories = len(stories)

    def _ids(self, text, grow=False):
        # words the corpus never had get ids past the vocabulary, each its own, so they match nothing
        unseen = iter(range(1 << 30, 1 << 31))
        get = (lambda w: self.vocab.setdefault(w, len(self.vocab))) if grow else \
            (lambda w: self.vocab.get(w, next(unseen)))
        return np.array([get(w) for w in words(text)], dtype=np.int64)

    def longest_copied(self, text):
        """Longest run of the text's words whose every n-gram occurs in the corpus, or 0 if no n-gram does
        (so 0 means 'shorter than n'). Chained n-grams almost always are one copied span."""
        h = ngram_hashes(self._ids(text), self.n)
        if len(h) == 0 or len(self.hashes) == 0:
            return 0
        pos = np.minimum(np.searchsorted(self.hashes, h), len(self.hashes) - 1)
        best = run = 0
        for hit in self.hashes[pos] == h:
            run = run + 1 if hit else 0
            best = max(best, run)
        return best + self.n - 1 if best else 0

    def closest(self, text):
        """(the index of the corpus story that shares the most of the text's distinct word bigrams, and
        the share: the text's Rouge-2 precision against it), or (None, 0.0)."""
        ids = self._ids(text)
        q = np.unique((ids[:-1] << 32) | ids[1:])
        if len(q) == 0 or len(self.codes) == 0:
            return None, 0.0
        lo, hi = np.searchsorted(self.codes, q, "left"), np.searchsorted(self.codes, q, "right")
        hits = [self.owners[a:b] for a, b in zip(lo, hi) if b > a]
        if not hits:
            return None, 0.0
        counts = np.bincount(np.concatenate(hits))
        return int(counts.argmax()), int(counts.max()) / len(q)

    def rouge2(self, text):
        """Rouge-2 precision (on distinct bigrams) of the text against its closest corpus story."""
        return self.closest(text)[1]


def rouge_n(text, reference, n):
    """Rouge-n precision on distinct word n-grams: the share of the text's n-grams the reference holds."""
    grams = lambda t: set(zip(*(words(t)[k:] for k in range(n))))  # noqa: E731
    mine = grams(text)
    return len(mine & grams(reference)) / len(mine) if mine else 0.0


# --- the judge's grades -----------------------------------------------------------------------

_STEMS = {"grammar": r"gramma\w*", "creativity": r"creativ\w*", "consistency": r"consisten\w*", "plot": r"plot\w*",
          "instruction": r"instructions?(?:\s+following)?"}
_OUT_OF_10 = r"(\d+(?:\.\d+)?)\s*(?:/|out\s+of)\s*10\b"


def parse_grades(reply, names=GRADES):
    """{'grammar': 8.0, ..., 'age': 'C' or None} from a reply like 'Grammar: 8/10', '**Plot** - 7 out of 10',
    'creativity: 6'; None if any grade asked for (the four, or those and 'instruction') is missing or outside 0-10."""
    grades = {}
    for name in names:
        stem = _STEMS[name]
        m = (re.search(rf"\b{stem}\b[^\d\n]{{0,40}}?{_OUT_OF_10}", reply, re.I)  # '.../10' on the same line
             or re.search(rf"\b{stem}\b[\s*_:\-=]*(\d+(?:\.\d+)?)\b(?!\s*[-–])", reply, re.I))  # a bare number
        if not m or not 0 <= float(m.group(1)) <= 10:
            return None
        grades[name] = float(m.group(1))
    m = re.search(r"\bage\b(?:\s*group)?[^A-Za-z0-9\n]{0,10}\b([A-F])\b", reply, re.I)
    grades["age"] = m.group(1).upper() if m else None
    return grades


_T975 = {1: 12.71, 2: 4.30, 3: 3.18, 4: 2.78, 5: 2.57, 6: 2.45, 7: 2.36, 8: 2.31, 9: 2.26, 10: 2.23}


def mean_ci(values, groups=None):
    """Mean and 95% interval. Completions of one prompt are not independent draws, so with groups
    (the prompt of each value) the interval comes from the spread of the per-prompt means;
    a Student-t quantile keeps it honest for a handful of prompts."""
    values = np.asarray(values, dtype=float)
    if len(values) == 0:
        return {"mean": None, "ci95": None, "n": 0}
    mean = float(values.mean())
    units = values
    if groups is not None and len(set(groups)) >= 2:
        groups = np.asarray(groups)
        units = np.array([values[groups == g].mean() for g in dict.fromkeys(groups.tolist())])
    k = len(units)
    if k < 2:
        return {"mean": round(mean, 3), "ci95": None, "n": len(values)}
    half = _T975.get(k - 1, 1.96 + 2.5 / (k - 1)) * float(units.std(ddof=1)) / math.sqrt(k)
    return {"mean": round(mean, 3), "ci95": [round(mean - half, 3), round(mean + half, 3)], "n": len(values)}
