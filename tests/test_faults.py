"""Nothing lost, nothing silently wrong. The data-loss cases first, each a fault that once passed
silently (a scratch run replacing a trained model, a web page kept as the dataset, bins outliving
their tokenizer, a resume recording a shape it does not have, a grade paid for twice); then a table
of bad inputs across the scripts, each of which must stop with one line that names the fix."""
import json
import os
import runpy
import shutil
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import numpy as np
import pytest
import torch

from conftest import ROOT, assert_one_line_error, run

TINY = ["--n_layer=1", "--n_head=2", "--n_embd=32", "--block_size=32", "--batch_size=4", "--eval_iters=2",
        "--sample_tokens=4", "--warmup_iters=2", "--log_interval=5"]


@pytest.fixture(scope="module")
def work(tmp_path_factory):
    """300 stories of the shipped corpus with a 300-token BPE, and out/: a tiny model trained 10 iterations."""
    work = tmp_path_factory.mktemp("faults")
    run("prepare.py", "--num_stories=300", "--vocab_size=300", "--workers=1", cwd=work)
    run("train.py", *TINY, "--max_iters=10", "--eval_interval=10", "--out_dir=out", cwd=work)
    return work


def fresh(work, name):
    """A copy of the prepared data under data/<name>, to damage."""
    shutil.copytree(work / "data" / "corpus", work / "data" / name, dirs_exist_ok=True)
    return work / "data" / name


# --- 1. a scratch run never replaces a trained model ---------------------------------------------

def test_a_scratch_run_into_a_trained_out_dir_is_refused_and_the_model_kept(work):
    before = (work / "out" / "ckpt.pt").read_bytes()
    r = run("train.py", *TINY, "--max_iters=5", "--out_dir=out", cwd=work, check=False)
    assert_one_line_error(r, "already holds a model", "--init_from=resume", "--overwrite=True")
    assert (work / "out" / "ckpt.pt").read_bytes() == before
    shutil.copytree(work / "out", work / "out-replace")
    run("train.py", *TINY, "--max_iters=5", "--eval_interval=5", "--out_dir=out-replace", "--overwrite=True", cwd=work)
    assert torch.load(work / "out-replace" / "ckpt.pt", weights_only=True)["iter_num"] == 5


# --- 2. a web page is never kept as the dataset ---------------------------------------------------

class Portal:
    """Answers every GET with 200 and a web page, as a captive portal or a wrong mirror does; with
    typed=False the page comes as text/plain, so only its content gives it away."""

    def __init__(self, typed=True):
        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_GET(self):
                body = b"<!DOCTYPE html><html><body>Please log in to the Wi-Fi</body></html>"
                self.send_response(200)
                self.send_header("Content-Type", "text/html; charset=utf-8" if typed else "text/plain")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.endpoint = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        threading.Thread(target=self.httpd.serve_forever, args=(0.05,), daemon=True).start()

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.mark.parametrize("typed", [True, False])
def test_a_web_page_answering_for_the_dataset_is_never_kept(tmp_path, typed):
    portal = Portal(typed)
    try:
        for _ in range(2):  # and a rerun does not take a kept page for a finished download
            r = run("prepare.py", "--dataset=tinystories", "--max_retries=0", cwd=tmp_path, check=False,
                    env={"HF_ENDPOINT": portal.endpoint, "NO_PROXY": "127.0.0.1"})
            assert_one_line_error(r, "web page" if typed else "holds no <|endoftext|>")
    finally:
        portal.close()
    downloads = tmp_path / "data" / "downloads"
    assert not [p for p in downloads.iterdir() if not p.name.endswith(".part")] if downloads.exists() else True
    assert not (tmp_path / "data" / "tinystories" / "train.txt").exists()


# --- 3. bins always belong to their tokenizer ---------------------------------------------------

def test_a_new_tokenizer_encodes_the_bins_again(work):
    data = fresh(work, "retok")
    run("prepare.py", "--num_stories=300", "--name=retok", "--stage=tokenizer", "--vocab_size=400", cwd=work)
    meta = json.loads((data / "meta.json").read_text())
    assert meta["vocab_size"] == 400
    ids = np.fromfile(data / "train.bin", dtype=np.uint16)
    assert ids.max() == 399 and (ids == 399).sum() == meta["train"]["stories"]  # end-of-text is the new last id
    run("train.py", *TINY, "--dataset=retok", "--max_iters=2", "--eval_interval=2", "--out_dir=out-retok", cwd=work)


def test_bins_from_another_tokenizer_are_refused(work):
    data = fresh(work, "stale")
    other = fresh(work, "other")
    run("prepare.py", "--num_stories=300", "--name=other", "--stage=tokenizer", "--vocab_size=280", cwd=work)
    shutil.copy(other / "tokenizer.tiktoken", data / "tokenizer.tiktoken")  # bins of 300 ids, tokenizer of 280
    r = run("train.py", *TINY, "--dataset=stale", "--out_dir=out-stale", cwd=work, check=False)
    assert_one_line_error(r, "another tokenizer", "--stage=pretokenize")


# --- 4. a resumed run keeps, and records, its checkpoint's shape ---------------------------------

def test_resume_refuses_another_shape_and_records_the_one_it_has(work):
    shutil.copytree(work / "out", work / "out-shape")
    r = run("train.py", *TINY, "--out_dir=out-shape", "--init_from=resume", "--max_iters=20", "--n_layer=2",
            "--n_embd=128", cwd=work, check=False)
    assert_one_line_error(r, "keeps its checkpoint's shape", "n_layer=2 (the checkpoint's is 1)", "n_embd=128")
    # without the shape settings, the defaults (4 layers, 256 wide) do not count: the checkpoint's shape is kept
    run("train.py", "--out_dir=out-shape", "--init_from=resume", "--max_iters=12", "--eval_interval=12",
        "--block_size=32", "--batch_size=4", "--eval_iters=2", "--sample_tokens=4", cwd=work)
    ckpt = torch.load(work / "out-shape" / "ckpt.pt", weights_only=True)
    assert ckpt["iter_num"] == 12 and ckpt["config"]["n_layer"] == ckpt["model_args"]["n_layer"] == 1
    assert ckpt["config"]["n_embd"] == 32


# --- the table: bad input ends in one line that names the fix ---------------------------------------

def damage(work, name, file, content):
    data = fresh(work, name)
    (data / file).write_bytes(content)
    return f"--dataset={name}"


def cases(work):
    """(script, args, fragments of the one-line error); files are damaged as the cases are listed."""
    (work / "latin1.txt").write_bytes("caf\xe9 au lait".encode("latin-1"))
    (work / "syntax.py").write_text("n_layer = = 2\n")
    (work / "a_file").write_text("not a folder")
    (work / "garbage.pt").write_bytes(b"not a checkpoint")
    os.makedirs(work / "out-garbage", exist_ok=True)
    (work / "out-garbage" / "ckpt.pt").write_bytes(b"")
    train = [*TINY, "--out_dir=out-new"]
    return [
        ("train.py", [*train, "--batch_size=0"], ["batch_size=0 is out of range", "at least 1"]),
        ("train.py", [*train, "--block_size=-1"], ["block_size=-1"]),
        ("train.py", [*train, "--eval_interval=0"], ["eval_interval=0"]),
        ("train.py", [*train, "--eval_iters=0"], ["eval_iters=0"]),
        ("train.py", [*train, "--log_interval=0"], ["log_interval=0"]),
        ("train.py", [*train, "--gradient_accumulation_steps=0"], ["gradient_accumulation_steps=0"]),
        ("train.py", [*train, "--max_iters=-5"], ["max_iters=-5"]),
        ("train.py", [*train, "--n_embd=30", "--n_head=4"], ["n_embd=30 must be a multiple of n_head=4"]),
        ("train.py", [*train, "--dropout=1.0"], ["dropout=1.0", "[0, 1)"]),
        ("train.py", [*train, "--beta2=1.5"], ["beta2=1.5"]),
        ("train.py", [*train, "--learning_rate=nan"], ["learning_rate"]),
        ("train.py", [*train, "--learning_rate=-0.1"], ["learning_rate=-0.1", "above 0"]),
        ("train.py", [*train, "--device=cuda"], ["--device=cuda", "--device=cpu"]),
        ("train.py", [*train, "--device=mps"], ["--device=mps", "--device=cpu"]),
        ("train.py", [*train, "--device=tpu"], ["--device=tpu is not a device"]),
        ("train.py", [*train, "--dtype=float64"], ["--dtype=float64", "float32, bfloat16 or float16"]),
        ("train.py", [*train, "--dtype=int8"], ["--dtype=int8"]),
        ("train.py", [*train, "--compile_mode=fast"], ["compile_mode='fast'", "'reduce-overhead'"]),
        ("train.py", [*train, "--init_from=gpt2"], ["init_from='gpt2'", "'resume'"]),
        ("train.py", [*train, "--n_layers=2"], ["unknown setting 'n_layers'", "did you mean 'n_layer'"]),
        ("train.py", [*train, "--n_layer"], ["'--n_layer' has no value", "--n_layer=VALUE"]),
        ("train.py", [*train, "--n_layer=two"], ["n_layer must be of type int (default 1)"]),
        ("train.py", [*train, "--out_dir=nowhere", "--init_from=resume"], ["no checkpoint at nowhere/ckpt.pt"]),
        ("train.py", [*train, "--n_layer=2", "--n_layer=x"], ["(default 1)"]),  # the default, not the override
        ("train.py", [*train, "latin1.txt"], ["latin1.txt", "not UTF-8"]),
        ("train.py", [*train, "syntax.py"], ["syntax.py' line 1"]),
        ("train.py", [*train, "config/missing.py"], ["config/missing.py' not found", "config/train_cpu.py"]),
        ("train.py", [*TINY, "--out_dir=a_file"], ["cannot write into out_dir=a_file"]),
        ("train.py", [*TINY, "--out_dir="], ["out_dir is empty"]),
        ("train.py", [*TINY, "--out_dir=out-garbage", "--init_from=resume"], ["not a checkpoint that train.py wrote"]),
        ("train.py", [*train, "--dataset=generate-instruct"], ["python prepare.py --dataset=generate --instruct=True"]),
        ("train.py", [*train, "--dataset=mine"], ["--name=mine"]),
        ("train.py", [*train, damage(work, "empty-bin", "train.bin", b"")], ["train.bin holds 0 bytes", "rerun python prepare.py"]),
        ("train.py", [*train, damage(work, "odd-bin", "val.bin", b"\x01\x02\x03")], ["val.bin holds 3 bytes"]),
        ("train.py", [*train, damage(work, "bad-meta", "meta.json", b"{not json")], ["damaged", "rerun python prepare.py"]),
        ("train.py", [*train, damage(work, "empty-meta", "meta.json", b"")], ["damaged"]),
        ("train.py", [*train, damage(work, "bad-tok", "tokenizer.tiktoken", b"\xff\xfe garbage")], ["damaged"]),
        ("sample.py", ["--out_dir=out", "--temperature=-1"], ["temperature=-1", "0 (greedy) or more"]),
        ("sample.py", ["--out_dir=out", "--top_k=-3"], ["top_k=-3"]),
        ("sample.py", ["--out_dir=out", "--num_samples=0"], ["num_samples=0"]),
        ("sample.py", ["--out_dir=out", "--max_new_tokens=0"], ["max_new_tokens=0"]),
        ("sample.py", ["--out_dir=out", "--start=FILE:latin1.txt"], ["not UTF-8"]),
        ("sample.py", ["--out_dir=out", "--start=FILE:nowhere.txt"], ["cannot read the prompt file"]),
        ("sample.py", ["--out_dir=garbage.pt"], ["garbage.pt is not a checkpoint that train.py wrote"]),
        ("sample.py", ["--out_dir=out-garbage"], ["not a checkpoint that train.py wrote"]),
        ("sample.py", ["--out_dir=2024"], ["no checkpoint at 2024/ckpt.pt"]),  # a number kept as the folder's name
        ("grade.py", ["--out_dir=out", "--judge=none", "--samples_per_prompt=0"], ["samples_per_prompt=0"]),
        ("grade.py", ["--out_dir=out", "--judge=none", "--batch_size=0"], ["batch_size=0"]),
        ("grade.py", ["--out_dir=out", "--judge=none", "--top_k=-1"], ["top_k=-1"]),
        ("grade.py", ["--out_dir=out", "--judge=none", "--prompts=latin1.txt"], ["not UTF-8"]),
        ("grade.py", ["--out_dir=out", "--batch=maybe"], ["batch='maybe'"]),
        ("grade.py", ["--out_dir=out", "--batch=read"], ["--batch_results=FILE"]),
        ("prepare.py", ["--vocab_size=100"], ["vocab_size=100", "258..65536"]),
        ("prepare.py", ["--vocab_size=70000"], ["vocab_size=70000"]),
        ("prepare.py", ["--num_stories=-3"], ["num_stories=-3"]),
        ("prepare.py", ["--tokenizer_sample_mb=0"], ["tokenizer_sample_mb=0"]),
        ("prepare.py", ["--workers=0"], ["workers=0"]),
        ("prepare.py", ["--stage=everything"], ["stage='everything'"]),
        ("prepare.py", ["--tokenizer=sentencepiece"], ["tokenizer='sentencepiece'"]),
        ("prepare.py", ["--dataset=made-up"], ["dataset='made-up'", "'corpus'"]),
        ("prepare.py", ["--dataset=generate", "--num_stories=5", "--recipe=latin1.txt"], ["cannot read the recipe file"]),
        ("prepare.py", ["--dataset=generate", "--num_stories=5", "--prompt_file=latin1.txt"], ["UTF-8"]),
        ("prepare.py", ["--name=nothing", "--stage=tokenizer"], ["--stage=stories"]),
    ]


def exit_message(script, args, cwd, monkeypatch):
    """What the script stops with, run in this process (a fresh torch import per case would cost
    minutes): SystemExit's message is exactly the line Python prints on stderr, and any other
    exception, the traceback a user would see, fails the test."""
    monkeypatch.chdir(cwd)
    monkeypatch.setattr(sys, "argv", [script, *args])
    with pytest.raises(SystemExit) as e:
        runpy.run_path(os.path.join(ROOT, script), run_name="__main__")
    return str(e.value.code)


def test_bad_input_gets_one_line_naming_the_fix(work, monkeypatch, capsys):
    table = cases(work)
    assert len(table) >= 40
    for script, args, fragments in table:
        message = exit_message(script, args, work, monkeypatch)
        assert message.startswith("error: ") and "\n" not in message, (script, args, message)
        assert all(f in message for f in fragments), (script, args, message)
    assert not (work / "data" / "made-up").exists()  # a bad --dataset leaves no empty folder behind
    assert not (work / "out-new").exists() or not (work / "out-new" / "ckpt.pt").exists()


def test_typed_settings_keep_their_type_text_stays_text_and_auto_takes_a_bool():
    from lib.configurator import configure
    def settings():
        return {"__name__": "__main__", "out_dir": "out", "n_layer": 4, "compile": "auto", "learning_rate": 1e-3}
    got = configure(settings(), argv=["--out_dir=2024", "--n_layer=2", "--compile=True", "--learning_rate=1"])
    assert got == {"out_dir": "2024", "n_layer": 2, "compile": True, "learning_rate": 1.0}
    assert configure(settings(), argv=["--compile=auto"])["compile"] == "auto"


def test_float16_on_a_cpu_starts_at_once_and_says_what_it_measures(work):
    r = run("train.py", *TINY, "--out_dir=out-fp16", "--dtype=float16", "--max_iters=1", "--eval_interval=1",
            cwd=work, timeout=120)
    assert "measuring this device's peak matmul rate at float16" in r.stdout and "step 1:" in r.stdout


def test_a_full_disk_stops_in_one_line_and_leaves_no_tmp_behind(tmp_path):
    import errno

    from lib.configurator import atomic_write
    target = tmp_path / "ckpt.pt"
    target.write_bytes(b"the last good checkpoint")

    def fill_the_disk(f):
        f.write(b"half of it")
        raise OSError(errno.ENOSPC, "No space left on device")
    with pytest.raises(SystemExit) as e:
        atomic_write(str(target), fill_the_disk, "wb")
    assert str(e.value).startswith("error: cannot write") and "No space left on device" in str(e.value)
    assert target.read_bytes() == b"the last good checkpoint" and os.listdir(tmp_path) == ["ckpt.pt"]
