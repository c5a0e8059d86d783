"""Data parallel training as `torchrun` runs it: two CPU processes talking over gloo must train the
same model as one process that accumulates the same global batch, write one checkpoint between
them, and resume from it."""
import json
import os
import subprocess
import sys

import pytest
import torch

from conftest import ROOT

COMMON = ["--n_layer=1", "--n_head=4", "--n_embd=64", "--block_size=64", "--batch_size=8",
          "--gradient_accumulation_steps=2", "--eval_iters=2", "--sample_tokens=4", "--warmup_iters=2",
          "--log_interval=1", "--eval_interval=3", "--lr_decay_iters=6"]


def run(*args, cwd, processes=1):
    launcher = [sys.executable]
    if processes > 1:  # `torchrun` itself, found through the interpreter rather than PATH
        launcher += ["-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={processes}"]
    result = subprocess.run([*launcher, os.path.join(ROOT, "train.py"), *COMMON, *args], cwd=cwd,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, f"{result.stdout[-2000:]}\n{result.stderr[-3000:]}"
    return result.stdout


def logged(stdout, prefix):
    """The loss on every line that starts with prefix ('iter' or 'step'), by its iteration number."""
    out = {}
    for line in stdout.splitlines():
        if line.startswith(prefix + " "):
            number = int(line.split()[1].split("/")[0].rstrip(":"))
            assert number not in out, f"{prefix} {number} logged twice: more than one process logs"
            out[number] = float(line.split("loss ")[-1 if prefix == "step" else 1].split(",")[0])
    return out


def weights(path):
    return torch.load(path, weights_only=True)["model"]


@pytest.fixture(scope="module")
def work(tmp_path_factory):
    work = tmp_path_factory.mktemp("ddp")
    subprocess.run([sys.executable, os.path.join(ROOT, "prepare.py"), "--num_stories=600",
                    "--vocab_size=300", "--workers=1"], cwd=work, check=True, capture_output=True, timeout=120)
    return work


@pytest.fixture(scope="module")
def runs(work):
    """6 iterations of the same global batch (2 micro-batches of 8): one process, then two."""
    single = run("--out_dir=single", "--max_iters=6", cwd=work)
    ddp = run("--out_dir=ddp", "--max_iters=6", cwd=work, processes=2)
    return single, ddp


def test_two_processes_train_what_one_process_trains(work, runs):
    single, ddp = runs
    assert "1,024 tokens per iteration" in single and "1,024 tokens per iteration" in ddp  # global, not a share
    train_single, train_ddp = logged(single, "iter"), logged(ddp, "iter")
    assert sorted(train_ddp) == list(range(1, 7))
    for it in train_single:  # the logged loss is the whole batch's, summed over both processes
        assert train_ddp[it] == pytest.approx(train_single[it], abs=2e-3), f"iter {it}"
    val_single, val_ddp = logged(single, "step"), logged(ddp, "step")
    assert sorted(val_ddp) == [0, 3, 6]
    for step in val_single:
        assert val_ddp[step] == pytest.approx(val_single[step], abs=2e-3), f"step {step}"
    a, b = weights(work / "single" / "ckpt.pt"), weights(work / "ddp" / "ckpt.pt")
    for name in a:
        assert torch.allclose(a[name], b[name], atol=1e-4), name


def test_only_the_first_process_writes_the_checkpoint_and_the_log(work, runs):
    assert sorted(os.listdir(work / "ddp")) == ["ckpt.pt", "log.jsonl"]
    evals = [json.loads(line)["iter"] for line in open(work / "ddp" / "log.jsonl")]
    assert evals == [0, 3, 6]  # one line per eval, not one per process
    ckpt = torch.load(work / "ddp" / "ckpt.pt", weights_only=True)
    assert ckpt["iter_num"] == 6
    assert not any(k.startswith(("module.", "_orig_mod.")) for k in ckpt["model"])  # the plain model's weights


def test_resume_under_torchrun_ends_where_the_unbroken_run_ends(work, runs):
    run("--out_dir=broken", "--max_iters=3", cwd=work, processes=2)
    resumed = run("--out_dir=broken", "--max_iters=6", "--init_from=resume", cwd=work, processes=2)
    assert "resuming from broken/ckpt.pt at iteration 3" in resumed
    assert sorted(logged(resumed, "iter")) == [4, 5, 6]
    a, b = weights(work / "ddp" / "ckpt.pt"), weights(work / "broken" / "ckpt.pt")
    for name in a:
        assert torch.allclose(a[name], b[name], atol=1e-5), name


def test_the_readmes_torchrun_line_runs_with_the_default_accumulation(work):
    """gradient_accumulation_steps counts micro-batches over all processes: the default 1 becomes 2
    under two processes (one each), and the log says so."""
    args = [a for a in COMMON if not a.startswith("--gradient_accumulation_steps")]
    result = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
                             os.path.join(ROOT, "train.py"), *args, "--out_dir=defaults", "--max_iters=2"],
                            cwd=work, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "gradient_accumulation_steps=1 rounded up to 2, a multiple of the 2 processes" in result.stdout
    assert "1,024 tokens per iteration" in result.stdout and (work / "defaults" / "ckpt.pt").exists()
