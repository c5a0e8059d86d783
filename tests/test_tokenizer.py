import os
import random
from collections import Counter

import pytest
import regex

from lib import tokenizer
from lib.tokenizer import EOT, SPLIT_PATTERN, dump_ranks, get_encoding, load_encoding, parse_ranks, save_ranks, train_bpe

WORDS = ("the a little dog cat sun tree ball girl boy Lily Tom was is had saw ran jumped happy sad big red "
         "and then but so very to of in on with they she he it said \"Hello!\" friend play played day 3 42").split()


def make_docs(n_docs, seed=0):
    rng = random.Random(seed)
    docs = []
    for _ in range(n_docs):
        sents = [" ".join(rng.choice(WORDS) for _ in range(rng.randint(3, 9))).capitalize() + rng.choice(".!?")
                 for _ in range(rng.randint(1, 4))]
        docs.append(rng.choice(["", " ", "\n"]) + " ".join(sents) + rng.choice(["", "\n", "\n\n", "  "]))
    return docs


def naive_train(docs, vocab_size, specials=(EOT,)):
    """Obviously-correct BPE: recount every pair before every merge. Returns (ranks, merges)."""
    words = Counter()
    for doc in docs:
        for part in regex.split("|".join(map(regex.escape, specials)), doc):
            for s in regex.findall(SPLIT_PATTERN, part):
                words[tuple(bytes([b]) for b in s.encode("utf-8"))] += 1
    ranks = {bytes([i]): i for i in range(256)}
    merges = []
    while len(ranks) < vocab_size - len(specials):
        pairs = Counter()
        for w, f in words.items():
            for p in zip(w, w[1:]):
                pairs[p] += f
        if not pairs:
            break
        best = max(pairs, key=lambda p: (pairs[p], p))
        merges.append(best)
        ranks.setdefault(best[0] + best[1], len(ranks))
        words = Counter({naive_merge(w, best): f for w, f in words.items()})
    return ranks, merges


def naive_merge(w, pair):
    out, i = [], 0
    while i < len(w):
        if tuple(w[i:i + 2]) == pair:
            out.append(pair[0] + pair[1])
            i += 2
        else:
            out.append(w[i])
            i += 1
    return tuple(out)


def naive_encode(text, ranks, merges):
    ids = []
    for s in regex.findall(SPLIT_PATTERN, text):
        w = tuple(bytes([b]) for b in s.encode("utf-8"))
        for pair in merges:
            w = naive_merge(w, pair)
        ids += [ranks[t] for t in w]
    return ids


@pytest.fixture(scope="module")
def small():
    docs = make_docs(300)
    vocab_size = 256 + 1 + 150
    return docs, vocab_size, train_bpe(EOT.join(docs), vocab_size)


def test_matches_naive_reference(small):
    docs, vocab_size, ranks = small
    ref, _ = naive_train(docs, vocab_size)
    assert list(ranks.items()) == list(ref.items())
    assert len(ranks) == vocab_size - 1


def test_matches_naive_reference_on_tie_heavy_corpus():
    # Few distinct letters and mostly single occurrences: many equal counts and prefix-related ties.
    rng = random.Random(1)
    docs = ["".join(rng.choice("aab b\nc") for _ in range(rng.randint(1, 12))) for _ in range(120)]
    ranks = train_bpe(docs, 256 + 1 + 60)
    ref, merges = naive_train(docs, 256 + 1 + 60)
    assert list(ranks.items()) == list(ref.items())
    enc = get_encoding(ranks)
    assert all(enc.encode_ordinary(d) == naive_encode(d, ref, merges) for d in docs)


def test_str_and_docs_inputs_agree(small):
    docs, vocab_size, ranks = small
    assert train_bpe(iter(docs), vocab_size) == ranks


def test_tie_goes_to_lexicographically_greater_pair():
    ranks = train_bpe(["ab", "ab", "ac", "ac", "zy"], 256 + 1 + 3)
    assert [t for t, r in sorted(ranks.items(), key=lambda kv: kv[1])][256:] == [b"ac", b"ab", b"zy"]


def test_reverse_key_orders_like_reversed_bytes():
    rng = random.Random(2)
    toks = list({bytes(rng.choice(b"ab\x00\xff") for _ in range(rng.randint(1, 4))) for _ in range(200)})
    assert sorted(toks, key=tokenizer._reverse_key) == sorted(toks, reverse=True)


def test_special_tokens_split_documents_and_are_never_merged():
    with pytest.warns(UserWarning, match="ran out of pairs"):
        ranks = train_bpe("a<|endoftext|>a" * 50 + " a <|endoftext|> a", 256 + 1 + 50)
    merged = [t for t, r in ranks.items() if r >= 256]
    assert merged and all(set(t) <= set(b" a") for t in merged), merged
    # A document given in a list is split on the specials as well.
    ranks = train_bpe(["xx<|endoftext|>yy"] * 5, 256 + 1 + 2)
    assert sorted(t for t, r in ranks.items() if r >= 256) == [b"xx", b"yy"]


def test_tiktoken_encoding_equals_applying_merges_in_order(small):
    docs, vocab_size, ranks = small
    ref, merges = naive_train(docs, vocab_size)
    enc = get_encoding(ranks)
    for doc in docs[:100]:
        assert enc.encode_ordinary(doc) == naive_encode(doc, ref, merges)


ODD = ["", "héllo wörld", "日本語のテキスト、中文也行。", "emoji 👩‍👩‍👧‍👦🏳️‍🌈 ok", "e\u0301 combining", "عربى rtl",
       "tabs\tand\r\nCRLF\n\n\n  trailing   ", "\x00nul\x7f", "<|endoftext|> inside text",
       "a<|endoftext|>b", "'s 've 'LL don't", "１２３ ⅷ 3.14159", "\U0010fffd private plane"]


@pytest.mark.parametrize("s", ODD)
def test_round_trip_odd_unicode(small, s):
    enc = get_encoding(small[2])
    assert enc.decode(enc.encode_ordinary(s)) == s
    assert enc.decode(enc.encode(s, disallowed_special=())) == s


def test_get_encoding_and_special_id(small):
    _, vocab_size, ranks = small
    enc = get_encoding(ranks)
    assert enc.n_vocab == vocab_size and enc.eot_token == vocab_size - 1
    assert enc.encode(EOT, allowed_special={EOT}) == [vocab_size - 1]
    ids = enc.encode("Tom saw a dog." + EOT + "Lily ran.", allowed_special={EOT})
    assert ids.count(vocab_size - 1) == 1 and enc.decode(ids) == "Tom saw a dog." + EOT + "Lily ran."
    with pytest.raises(ValueError):
        enc.encode(EOT)  # tiktoken refuses special text unless told how to treat it


def test_dump_parse_save_load_round_trip(small, tmp_path):
    _, _, ranks = small
    text = dump_ranks(ranks)
    assert parse_ranks(text) == ranks and text.count("\n") == len(ranks)
    path = tmp_path / "sub" / "tok.tiktoken"
    save_ranks(ranks, str(path))
    assert path.read_text() == text and not os.path.exists(f"{path}.tmp")
    s = "The little cat played with a red ball."
    assert load_encoding(str(path)).encode(s) == get_encoding(text).encode(s) == get_encoding(ranks).encode(s)


def test_load_encoding_missing_file(tmp_path):
    with pytest.raises(SystemExit, match="^error: .*prepare.py"):
        load_encoding(str(tmp_path / "nope.tiktoken"))


def test_vocab_size_bounds():
    for bad in (0, 255, 256, 65537):
        with pytest.raises(ValueError, match="vocab_size"):
            train_bpe("hello", bad)
    with pytest.raises(ValueError, match="vocab_size"):
        train_bpe("hello", 257, special_tokens=(EOT, "<|pad|>"))
    assert len(train_bpe("hello", 257)) == 256


def test_verbose_reports_progress_with_rate_and_eta(capsys):
    train_bpe(make_docs(200, seed=3), 256 + 1 + 100, verbose=True)
    out = capsys.readouterr().out
    assert regex.search(r"bpe: 100/100 merges, \d+ merges/s, eta \d+s", out), out
