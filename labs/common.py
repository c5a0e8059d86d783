"""
common.py: what the labs share. Each lab trains (or reuses) models through train.py itself, reads
their loss curves from log.jsonl, measures them through grade.py and lib/, prints a table, writes
results.json, and draws its plots when matplotlib is installed (pip install matplotlib).

A lab runs from the repository's root, e.g. `python labs/01_one_block.py`, and keeps everything it
makes in labs/runs/<lab>/ (ignored by git): a rerun reuses the models already trained there. WORK, the
folder that holds data/ and labs/runs/, is the root unless $LAB_WORK names another (the tests' scratch).
"""
import json
import math
import os
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
WORK = os.environ.get("LAB_WORK") or ROOT
sys.path.insert(0, ROOT)  # the labs use lib/ and model.py like the scripts do

from lib.configurator import die  # noqa: E402


def run(script, *args, quiet=True):
    """python <script> <args> from the repository's root; stops the lab with one line if it fails."""
    result = subprocess.run([sys.executable, os.path.join(ROOT, script), *map(str, args)], cwd=WORK,
                            capture_output=quiet, text=True)
    if result.returncode != 0:
        last = (result.stderr or "").strip().splitlines()[-1:] or ["(no output)"]
        die(f"{script} {' '.join(map(str, args))} failed: {last[0]}")
    return result.stdout if quiet else ""


def ensure_data(dataset="corpus", **prepare_args):
    """data/<dataset>/ prepared (python prepare.py), once."""
    if not os.path.exists(os.path.join(WORK, "data", dataset, "meta.json")):
        print(f"preparing data/{dataset} (python prepare.py --dataset={dataset}) ...", flush=True)
        run("prepare.py", f"--dataset={dataset}", *(f"--{k}={v}" for k, v in prepare_args.items()))


def lab_dir(name):
    path = os.path.join(WORK, "labs", "runs", name)
    os.makedirs(path, exist_ok=True)
    return path


def train(out_dir, **settings):
    """A model trained by train.py into out_dir with these settings, or the one already there if it
    was trained with exactly them; returns its log.jsonl rows (one per eval)."""
    ckpt, log = os.path.join(out_dir, "ckpt.pt"), os.path.join(out_dir, "log.jsonl")
    said = os.path.join(out_dir, "lab_settings.json")
    meta = json.load(open(os.path.join(WORK, "data", settings.get("dataset", "corpus"), "meta.json")))
    settings = {**settings, "data": [meta["tokenizer_sha256"][:16], meta["train"]["tokens"]]}  # new data: train again
    if os.path.exists(ckpt) and os.path.exists(said) and json.load(open(said)) == settings:
        print(f"  {os.path.relpath(out_dir, WORK)}: trained already, reused", flush=True)
    else:
        t0 = time.time()
        print(f"  training {os.path.relpath(out_dir, WORK)}: " + ", ".join(f"{k}={v}" for k, v in settings.items()
                                                                             if k != "data"), flush=True)
        run("train.py", f"--out_dir={out_dir}", "--overwrite=True",
            *(f"--{k}={v}" for k, v in settings.items() if k != "data"))
        os.makedirs(out_dir, exist_ok=True)
        json.dump(settings, open(said, "w"))
        print(f"    done in {time.time() - t0:.0f}s", flush=True)
    return [json.loads(line) for line in open(log)]


def flops_per_token(n_layer, n_embd, block_size, vocab_size, n_head=4):
    """train.py's training FLOPs per token for a shape (model.py's formula, on a weightless model)."""
    import torch
    from model import GPT, GPTConfig
    with torch.device("meta"):
        model = GPT(GPTConfig(n_layer=n_layer, n_embd=n_embd, n_head=n_head, block_size=block_size, vocab_size=vocab_size))
    return model.flops_per_token(block_size), model.num_params()


def depth_models(depths, n_embd=128, n_head=4, flops=1.5e13, block_size=256, batch_size=16, learning_rate=3e-3,
                 seed=1337, folder=None):
    """Lab 1's models: one per depth, each trained on the same number of FLOPs (labs 4 and 5 look
    inside the same ones, so a lab run after lab 1 trains nothing). Returns a dict per model."""
    folder = folder or lab_dir("01_one_block")
    models, vocab = [], vocab_size()
    for depth in depths:
        per_token, params = flops_per_token(depth, n_embd, block_size, vocab, n_head)
        iters = max(10, int(flops / (per_token * batch_size * block_size)))
        out = os.path.join(folder, f"layers{depth}")
        log = train(out, n_layer=depth, n_embd=n_embd, n_head=n_head, block_size=block_size, batch_size=batch_size,
                    max_iters=iters, lr_decay_iters=iters, eval_interval=max(1, iters // 10),
                    warmup_iters=min(100, iters // 10), learning_rate=learning_rate, seed=seed, eval_iters=10,
                    sample_tokens=8)
        models.append(dict(layers=depth, out=out, params=params, iters=iters, log=log, val_bpb=log[-1]["val_bpb"],
                           train_s=log[-1]["wall_s"]))
    return models


def vocab_size(dataset="corpus"):
    return json.load(open(os.path.join(WORK, "data", dataset, "meta.json")))["vocab_size"]


def offline_metrics(out_dirs, *args):
    """grade.py --judge=none over the checkpoints: {out_dir: metrics.json}."""
    run("grade.py", "--judge=none", "--out_dir=" + ",".join(out_dirs), *args)
    return {d: json.load(open(os.path.join(d, "metrics.json"))) for d in out_dirs}


def story(out_dir, start, seed=1337, temperature=0.8, max_new_tokens=400):
    """One story from a checkpoint, sampled as sample.py samples it (in this process: no second torch)."""
    import torch
    from lib import tokenizer
    from model import load_checkpoint
    model, ckpt = load_checkpoint(out_dir)
    enc = tokenizer.get_encoding(ckpt["tokenizer"])
    torch.manual_seed(seed)
    new = model.generate([[enc.eot_token] + enc.encode_ordinary(start)], max_new_tokens, temperature,
                         stop_token=enc.eot_token)[0]
    return start + enc.decode(new)


def table(rows, columns):
    """A plain text table: columns is [(heading, key or function, format)]."""
    cells = [[h for h, _, _ in columns]]
    for r in rows:
        cells.append([(fmt.format(get(r) if callable(get) else r[get])) for _, get, fmt in columns])
    widths = [max(len(c[i]) for c in cells) for i in range(len(columns))]
    lines = ["  ".join(c.rjust(w) for c, w in zip(row, widths)) for row in cells]
    return "\n".join([lines[0], "  ".join("-" * w for w in widths), *lines[1:]])


def fit_power_law(xs, ys):
    """(a, b) of y = a * x**b, fitted by least squares in log-log space."""
    lx, ly = [math.log(x) for x in xs], [math.log(y) for y in ys]
    mx, my = sum(lx) / len(lx), sum(ly) / len(ly)
    b = sum((x - mx) * (y - my) for x, y in zip(lx, ly)) / sum((x - mx) ** 2 for x in lx)
    return math.exp(my - b * mx), b


def save(folder, results):
    path = os.path.join(folder, "results.json")
    with open(path + ".tmp", "w") as f:
        json.dump(results, f, indent=2)
    os.replace(path + ".tmp", path)
    print(f"\nwrote {os.path.relpath(path, WORK)}")


def plot(path, draw, size=(7, 4.5)):
    """draw(plt) into a PNG at path, if matplotlib is installed; else say how to get the plots."""
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print(f"(no matplotlib: for {os.path.basename(path)}, pip install matplotlib and run the lab again; "
              "the models are reused)")
        return None
    fig = plt.figure(figsize=size)
    draw(plt)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    print(f"plot: {os.path.relpath(path, WORK)}")
    return path
