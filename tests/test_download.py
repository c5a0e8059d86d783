"""prepare.py --dataset=tinystories (and -v1, -instruct) against servers on 127.0.0.1 holding files the
tests write in Hugging Face's layout: a plain static server; a Hugging-Face-like one (a redirect that
carries X-Linked-Etag/X-Linked-Size, Range requests) with faults: a dropped connection, a 503, a short
body, a 404, a 401, a wrong sha256, a length it cannot deliver, and no server at all. Every run ends in
bins byte-identical to the clean run's or in a one-line error. Also: --num_stories stops the download
early and a later run resumes it, V1's repair, the instruct layout, and the GPT-2 path's compaction."""
import functools
import hashlib
import json
import os
import socket
import struct
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, SimpleHTTPRequestHandler, ThreadingHTTPServer

import numpy as np
import pytest

from conftest import ROOT, corpus_stories
from lib import download, tokenizer
from lib.tokenizer import EOT
import prepare

V2 = ("roneneldan/TinyStories", "TinyStoriesV2-GPT4-train.txt", "TinyStoriesV2-GPT4-valid.txt")
FAST = ["--vocab_size=300", "--workers=2", "--chunk_mb=1", "--backoff=0.001", "--max_retries=2", "--timeout=10"]


def story_file(texts):
    """TinyStories' layout, with the untidiness of the real files: blank lines around stories, and an empty one."""
    return "".join(f"\n{t}\n  \n{EOT}\n" + (f"\n{EOT}\n" if i == 3 else "") for i, t in enumerate(texts)).encode()


def cleaned(data):
    return [s.strip() for s in data.decode().split(EOT) if s.strip()]


TRAIN = story_file(corpus_stories(500))  # ~600 KB: several download chunks
VAL = story_file(corpus_stories(40, start=500))


class FakeHub:
    """GET /datasets/<repo>/resolve/main/<file> answers, like Hugging Face, with a 302 to /cdn/<file>
    carrying X-Linked-Size and X-Linked-Etag (the sha256); /cdn/ serves the bytes, honouring Range.
    faults[file] is a list used up one request at a time: "503", "drop" (half the body, then a reset),
    "short" (two thirds of the body, then a clean close), "404", "401", "badsha", "lie" (announces more
    bytes than it has). log holds (path, Range header, status, body bytes sent)."""

    def __init__(self):
        self.files, self.faults, self.log, self.token, self.lock = {}, {}, [], None, threading.Lock()
        hub = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def take(self, name, kinds):
                with hub.lock:
                    queue = hub.faults.get(name)
                    return queue.pop(0) if queue and queue[0] in kinds else None

            def do_GET(self):
                *_, name = self.path.split("/")
                data = hub.files.get(name)
                if "/resolve/main/" in self.path:
                    fault = self.take(name, ("401", "404", "503", "badsha"))
                    if fault == "401" or (hub.token and self.headers.get("Authorization") != f"Bearer {hub.token}"):
                        return self.reply(401)
                    if data is None or fault == "404":
                        return self.reply(404)
                    if fault == "503":
                        return self.reply(503, {"Retry-After": "0"})
                    sha = hashlib.sha256(data + (b"x" if fault == "badsha" else b"")).hexdigest()
                    return self.reply(302, {"Location": f"/cdn/{name}", "X-Linked-Size": str(len(data)),
                                            "X-Linked-Etag": f'"{sha}"'})
                fault = self.take(name, ("drop", "short", "lie", "norange"))
                rng = None if fault == "norange" else self.headers.get("Range")
                start = int(rng.split("=")[1].rstrip("-")) if rng else 0
                size = len(data) + (1000 if fault == "lie" else 0)
                if start >= size:
                    return self.reply(416, {"Content-Range": f"bytes */{size}"})
                body = data[start:]
                self.send_response(206 if rng else 200)
                if rng:
                    self.send_header("Content-Range", f"bytes {start}-{size - 1}/{size}")
                self.send_header("Content-Length", str(size - start))
                self.end_headers()
                sent = {"drop": len(body) // 2, "short": len(body) * 2 // 3}.get(fault, len(body))
                hub.log.append((self.path, rng, 206 if rng else 200, sent))
                self.wfile.write(body[:sent])
                if fault == "drop":  # a reset, as when a connection dies, rather than a tidy close; the
                    time.sleep(0.5)  # pause lets the client read what was sent (a reset discards unread bytes)
                    self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                self.close_connection = fault in ("drop", "short", "lie")

            def reply(self, status, headers=None):
                hub.log.append((self.path, self.headers.get("Range"), status, 0))
                self.send_response(status)
                for k, v in (headers or {}).items():
                    self.send_header(k, v)
                self.send_header("Content-Length", "0")
                self.end_headers()

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.handle_error = lambda *args: None  # the faults break connections on purpose
        self.endpoint = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        threading.Thread(target=self.httpd.serve_forever, args=(0.05,), daemon=True).start()

    def sent(self, name):
        return sum(n for path, _, _, n in self.log if path == f"/cdn/{name}")


@pytest.fixture(scope="module")
def hub():
    h = FakeHub()
    h.files.update({V2[1]: TRAIN, V2[2]: VAL})
    yield h
    h.httpd.shutdown()
    h.httpd.server_close()


def prepare_run(*args, cwd, endpoint, token=None, check=True, env=None):
    env = dict(os.environ, HF_ENDPOINT=endpoint, NO_PROXY="127.0.0.1", **(env or {}))
    env.pop("HF_TOKEN", None)
    if token:
        env["HF_TOKEN"] = token
    r = subprocess.run([sys.executable, os.path.join(ROOT, "prepare.py"), *args, *FAST], cwd=cwd, env=env,
                       capture_output=True, text=True, timeout=120)
    if check and r.returncode:
        raise AssertionError(f"prepare.py {args} failed:\n{r.stdout[-2000:]}\n{r.stderr[-2000:]}")
    return r


def assert_one_line_error(r, *fragments):
    assert r.returncode != 0 and "Traceback" not in r.stderr, r.stderr
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), r.stderr
    for fragment in fragments:
        assert fragment in lines[0], lines[0]


def bins(work, name="tinystories"):
    return {s: (work / "data" / name / f"{s}.bin").read_bytes() for s in ("train", "val")}


@pytest.fixture(scope="module")
def clean(tmp_path_factory):
    """The done-when run: a plain static file server (no Range, no sha256) in Hugging Face's layout."""
    root, work = tmp_path_factory.mktemp("static"), tmp_path_factory.mktemp("clean")
    folder = root / "datasets" / V2[0] / "resolve" / "main"
    folder.mkdir(parents=True)
    (folder / V2[1]).write_bytes(TRAIN)
    (folder / V2[2]).write_bytes(VAL)
    requests_seen = []

    class Static(SimpleHTTPRequestHandler):
        def log_message(self, fmt, *args):
            requests_seen.append(self.path)

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Static, directory=str(root)))
    threading.Thread(target=httpd.serve_forever, args=(0.05,), daemon=True).start()
    endpoint = f"http://127.0.0.1:{httpd.server_address[1]}"
    first = prepare_run("--dataset=tinystories", cwd=work, endpoint=endpoint)
    n_first = len(requests_seen)
    second = prepare_run("--dataset=tinystories", "--stage=stories", cwd=work, endpoint=endpoint)
    httpd.shutdown()
    httpd.server_close()
    return work, first.stdout, second.stdout, n_first, len(requests_seen)


def test_a_static_server_gives_bins_that_decode_to_the_cleaned_stories(clean):
    work, stdout, again, n_first, n_after = clean
    data = work / "data" / "tinystories"
    enc = tokenizer.load_encoding(data / "tokenizer.tiktoken")
    for split, raw in (("train", TRAIN), ("val", VAL)):
        ids = np.fromfile(data / f"{split}.bin", dtype=np.uint16)
        assert enc.decode(ids.tolist()).split(EOT)[:-1] == cleaned(raw)
        assert (work / "data" / "downloads" / (V2[1] if split == "train" else V2[2])).read_bytes() == raw
    assert len(cleaned(TRAIN)) == 500 and "MB/s" in stdout
    assert n_first == 2 and n_after == 2 and "nothing to fetch" in again  # a second run downloads nothing


@pytest.mark.parametrize("fault", ["drop", "503", "short"])
def test_a_fault_mid_download_still_ends_in_identical_bins(hub, clean, tmp_path, fault):
    hub.log.clear()
    hub.faults[V2[1]] = [fault]
    prepare_run("--dataset=tinystories", cwd=tmp_path, endpoint=hub.endpoint)
    assert bins(tmp_path) == bins(clean[0])
    ranges = [rng for path, rng, status, _ in hub.log if path == f"/cdn/{V2[1]}"]
    if fault == "503":
        assert [s for p, _, s, _ in hub.log if p.endswith(V2[1])][:2] == [503, 302]
    else:  # it resumed where the first response broke off, rather than starting again
        assert ranges[0] is None and int(ranges[1].split("=")[1].rstrip("-")) > 0
        assert hub.sent(V2[1]) < 1.5 * len(TRAIN)


@pytest.mark.parametrize("fault,fragments", [
    ("404", ["TinyStoriesV2-GPT4-train.txt is not at http://127.0.0.1:", "/datasets/roneneldan/TinyStories/resolve/main/"
             "TinyStoriesV2-GPT4-train.txt (HTTP 404)", "check HF_ENDPOINT"]),
    ("401", ["refused TinyStoriesV2-GPT4-train.txt (HTTP 401)", "set HF_TOKEN"]),
    ("badsha", ["sha256", "deleted it, run again"]),
    ("lie", ["failed 3 times in a row", "kept and resume"]),
])
def test_a_fault_that_persists_ends_in_one_line_and_no_data(hub, tmp_path, fault, fragments):
    hub.faults[V2[1]] = [fault] * 10
    r = prepare_run("--dataset=tinystories", cwd=tmp_path, endpoint=hub.endpoint, check=False)
    hub.faults[V2[1]] = []
    assert_one_line_error(r, *fragments)
    assert "no internet" not in r.stderr  # the server answered
    assert not (tmp_path / "data" / "tinystories" / "train.txt").exists()
    assert not (tmp_path / "data" / "downloads" / V2[1]).exists()  # never taken for a whole file
    assert (fault == "lie") == (tmp_path / "data" / "downloads" / f"{V2[1]}.part").exists()


def test_no_server_at_all_says_so(tmp_path):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # free, and nothing listens once closed
    r = prepare_run("--dataset=tinystories", cwd=tmp_path, endpoint=f"http://127.0.0.1:{port}", check=False)
    assert_one_line_error(r, "ConnectionError", "no internet?", "python prepare.py")


def test_the_token_goes_as_a_bearer_and_is_never_printed(hub, tmp_path):
    hub.token = "hf_SECRET_4242"
    try:
        refused = prepare_run("--dataset=tinystories", cwd=tmp_path, endpoint=hub.endpoint, token="hf_wrong", check=False)
        ok = prepare_run("--dataset=tinystories", "--stage=stories", cwd=tmp_path, endpoint=hub.endpoint, token=hub.token)
    finally:
        hub.token = None
    assert_one_line_error(refused, "HTTP 401", "check that HF_TOKEN is valid")
    assert "hf_" not in refused.stderr + refused.stdout + ok.stdout + ok.stderr
    assert cleaned((tmp_path / "data" / "tinystories" / "train.txt").read_bytes()) == cleaned(TRAIN)


def test_num_stories_stops_early_and_a_full_run_resumes(hub, clean, tmp_path):
    hub.log.clear()
    r = prepare_run("--dataset=tinystories", "--num_stories=50", cwd=tmp_path, endpoint=hub.endpoint)
    train = (tmp_path / "data" / "tinystories" / "train.txt").read_bytes()
    assert cleaned(train) == cleaned(TRAIN)[:50]
    assert cleaned((tmp_path / "data" / "tinystories" / "val.txt").read_bytes()) == cleaned(VAL)  # val is whole
    part = tmp_path / "data" / "downloads" / f"{V2[1]}.part"
    assert part.stat().st_size < len(TRAIN) // 2 and TRAIN.startswith(part.read_bytes())
    assert "stopped after 50 stories" in r.stdout
    hub.log.clear()
    prepare_run("--dataset=tinystories", "--num_stories=20", "--stage=stories", cwd=tmp_path, endpoint=hub.endpoint)
    assert hub.log == [] and cleaned((tmp_path / "data" / "tinystories" / "train.txt").read_bytes()) == cleaned(TRAIN)[:20]
    have = part.stat().st_size
    prepare_run("--dataset=tinystories", cwd=tmp_path, endpoint=hub.endpoint)
    assert (f"/cdn/{V2[1]}", f"bytes={have}-", 206, len(TRAIN) - have) in hub.log  # resumed, not from byte 0
    assert not part.exists() and bins(tmp_path) == bins(clean[0])


def test_v1_mis_decoded_characters_are_repaired_and_counted(hub, tmp_path):
    good = ["Lily said, “Hello!” She didn’t know — it was Tom’s…", "Café au lait–crème, naïve Zoë.", "Plain story."]
    bad = ["Lily said, â€œHello!â€\x9d She didnâ€™t know â€” it was Tomâ€™sâ€¦", "Lily said, â€œHi!â€ Ben smiled.",
           good[1].encode("utf-8").decode("cp1252"), good[2]]  # the last two: how V1 came to read "Ã©" for "é"
    hub.files["TinyStories-train.txt"] = story_file(bad)
    hub.files["TinyStories-valid.txt"] = story_file(good)
    r = prepare_run("--dataset=tinystories-v1", "--stage=stories", cwd=tmp_path, endpoint=hub.endpoint)
    train = cleaned((tmp_path / "data" / "tinystories-v1" / "train.txt").read_bytes())
    assert train == [good[0], "Lily said, “Hi!” Ben smiled.", good[1], good[2]]
    assert "train: 4 stories, 3 of them with mis-decoded characters repaired" in r.stdout
    assert "val: 3 stories, 0 of them" in r.stdout


def test_repair_keeps_correct_text_and_the_undefined_byte_variant():
    assert prepare.repair("â€œHi,â€\x9d she said. Itâ€™s") == "“Hi,” she said. It’s"
    for text in ["Plain text, “quoted” and — dashed.", "naïve café", "Ãx marks the spot"]:
        assert prepare.repair(text) == text


def test_instruct_records_are_kept_as_they_are(hub, tmp_path):
    records = [f"Features: Dialogue\nWords: run, ball, red\nSummary: Tom runs.\nRandom sentence: It was red.\n"
               f"Story: \n\nTom ran {i} times. \"Hi,\" he said." if i % 2 else
               f"Summary: A cat naps.\nWords: nap, mat, soft\nStory: \nThe cat slept {i} hours." for i in range(10)]
    hub.files["TinyStories-Instruct-train.txt"] = story_file(records)
    hub.files["TinyStories-Instruct-valid.txt"] = story_file(records[:3])
    prepare_run("--dataset=tinystories-instruct", cwd=tmp_path, endpoint=hub.endpoint)
    data = tmp_path / "data" / "tinystories-instruct"
    assert cleaned((data / "train.txt").read_bytes()) == records
    enc = tokenizer.load_encoding(data / "tokenizer.tiktoken")
    assert enc.decode(np.fromfile(data / "train.bin", dtype=np.uint16).tolist()).split(EOT)[:-1] == records


def test_story_counter_finds_the_end_of_the_nth_whole_story_across_chunks():
    data = story_file(["one", "two", "three", "four", "five"])
    for size in (1, 7, 1000):
        counter = prepare.StoryCounter(4)
        done = any(counter.feed(data[i:i + size]) for i in range(0, len(data), size))
        assert done and cleaned(data[:counter.end]) == ["one", "two", "three", "four"]
        assert data[:counter.end].endswith(EOT.encode())
    counter = prepare.StoryCounter(9)
    assert not counter.feed(data) and counter.count == 5 and counter.end is None


def test_download_resumes_a_part_and_skips_what_a_rangeless_server_resends(hub, tmp_path):
    path = str(tmp_path / "v.txt")
    with open(path + ".part", "wb") as f:
        f.write(VAL[:1000])
    url = f"{hub.endpoint}/datasets/{V2[0]}/resolve/main/{V2[2]}"
    hub.log.clear()
    assert download.download(url, path, backoff=0) == path
    assert open(path, "rb").read() == VAL and hub.log[-1][1] == "bytes=1000-"
    os.replace(path, path + ".part")
    os.truncate(path + ".part", 1000)
    hub.faults[V2[2]] = ["norange"]
    assert download.download(url, path, backoff=0) == path
    assert open(path, "rb").read() == VAL and hub.log[-1][2] == 200


def test_gpt2_offline_fails_in_one_line_naming_the_default(tmp_path):
    dead = "http://127.0.0.1:9"  # no cached vocabulary, and a proxy that refuses: offline wherever the test runs
    env = {"TIKTOKEN_CACHE_DIR": str(tmp_path / "empty"), "HTTPS_PROXY": dead, "HTTP_PROXY": dead}
    r = prepare_run("--tokenizer=gpt2", cwd=tmp_path, endpoint="http://127.0.0.1:9", env=env,
                    check=False)
    assert_one_line_error(r, "--tokenizer=gpt2", "default --tokenizer=bpe")
    assert not (tmp_path / "data").exists()  # it failed before making anything


def test_gpt2_compaction_keeps_its_tokens_and_decodes_anything(tmp_path):
    docs = corpus_stories(200)
    base = tokenizer.get_encoding(tokenizer.train_bpe(docs, 1500))  # stands in for tiktoken's GPT-2
    ranks, base_ids = tokenizer.compact_ranks(base, docs[:40])
    tokenizer.save_ranks(ranks, tmp_path / "tokenizer.tiktoken")
    enc = tokenizer.load_encoding(tmp_path / "tokenizer.tiktoken")  # a plain file, as train.py and sample.py load it
    assert 256 < enc.n_vocab < base.n_vocab and enc.eot_token == len(base_ids)
    for doc in docs[:40]:  # the sample: exactly the base's tokens, renumbered
        assert [base_ids[t] for t in enc.encode_ordinary(doc)] == base.encode_ordinary(doc)
    for text in docs[40:] + ["Zoë’s 日本 🐉 \u2028 qzxj", "\x00\xff"]:  # anything else: exact round trip
        assert enc.decode(enc.encode_ordinary(text)) == text


def test_gpt2_path_writes_a_plain_tokenizer_the_gpt2_ids_and_exact_bins(tmp_path, monkeypatch):
    data = tmp_path / "x"
    data.mkdir()
    texts = corpus_stories(200)
    prepare.write_stories(str(data / "train.txt"), texts[:180], 180)
    prepare.write_stories(str(data / "val.txt"), texts[180:], 20)
    base = tokenizer.get_encoding(tokenizer.train_bpe(texts[100:], 800))  # stands in for GPT-2: no network here
    for name, value in (("gpt2_encoding", lambda: base), ("tokenizer", "gpt2"), ("workers", 1)):
        monkeypatch.setattr(prepare, name, value)
    prepare.train_tokenizer(str(data))
    prepare.pretokenize(str(data))
    enc = tokenizer.load_encoding(data / "tokenizer.tiktoken")
    gpt2_ids = json.loads((data / "gpt2_ids.json").read_text())
    assert enc.n_vocab == len(gpt2_ids) + 1 < base.n_vocab
    for split, part in (("train", texts[:180]), ("val", texts[180:])):
        ids = np.fromfile(data / f"{split}.bin", dtype=np.uint16).tolist()
        assert enc.decode(ids).split(EOT)[:-1] == part
    ids = np.fromfile(data / "train.bin", dtype=np.uint16).tolist()  # the sample: GPT-2's own tokens, renumbered
    assert [gpt2_ids[t] if t < len(gpt2_ids) else base.eot_token for t in ids] == \
        [t for s in texts[:180] for t in base.encode_ordinary(s) + [base.eot_token]]
