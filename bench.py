"""
bench.py: how fast this code trains, samples and tokenizes on this machine, through the code paths
that train.py, sample.py and prepare.py run, with nanoGPT timed the same way in the same run.

    python bench.py                                    # the table; about 5 minutes on a 2-core CPU
    python bench.py --json_out=bench.json              # plus one flat JSON object, for machines
    python bench.py --nanogpt=/path/to/nanoGPT/model.py   # compare against it (default: /tmp/nanogpt/model.py)
    python bench.py --device=cuda --repeats=1 --shapes=a,b,33m --compile_mode=reduce-overhead --profile=True

How each figure is made, so that it means what the scripts do:
  training  train.py itself runs (a subprocess) on a dataset prepared here, logging every iteration
            (every 10th on a GPU), with its own dtype, compile and fused-AdamW choices; a figure is the
            median tokens/s over the log lines after warm-up, pooled over `repeats` runs. MFU is
            train.py's formula against the highest peak its runs measured (a busy machine only lowers
            that), and on a known GPU against the spec sheet too. nanoGPT's model.py runs nanoGPT's own
            loop in a fresh process: fp32 and eager on a CPU, its defaults (bf16, compiled) on a GPU.
            Runs alternate, ours then theirs, so other load on the machine hits both alike.
  sampling  model.stream() under sample.py's autocast, shape (b), 256 new tokens from <|endoftext|>;
            "recompute" runs the whole context through the model for every token, as nanoGPT does.
  prepare   prepare.py's own train_tokenizer() and pretokenize() (its worker pool) on the shipped
            corpus; the limit is workers x the MB/s of one process's plain encode_ordinary loop.
"""
import contextlib
import importlib.util
import io
import json
import os
import re
import runpy
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import warnings

import numpy as np

from lib.configurator import POSITIVE, configure, die

device = "auto"
dtype = "auto"  # passed to train.py; sampling uses the same choice, as sample.py does
compile = "auto"  # passed to train.py ('auto': on for CUDA)
compile_mode = "default"  # passed to train.py: 'reduce-overhead' / 'max-autotune' add CUDA graphs
shapes = "a,b,33m"  # training shapes to time: a, b (the tiny ones) and 33m (config/paper_33m.py)
nanogpt = "/tmp/nanogpt/model.py"  # nanoGPT's model.py, timed alongside when the file exists; '' skips
nanogpt_shapes = "a,b"
repeats = 3  # runs of each measurement (a GPU is steadier, and compiling slow: --repeats=1 there)
iters = "auto"  # training iterations per run: 'auto' = schedule()'s per shape and device, or a number
time_sampling = True
new_tokens = 256  # tokens each sampling run generates
time_prepare = True  # time the tokenizer stages (the dataset is prepared either way)
profile = False  # print the top kernels of a few training steps of the first shape (flash attention?)
num_stories = 0  # stories of the shipped corpus to prepare; 0 = all (about 11 MB of text)
work_dir = ""  # where the dataset and checkpoints go; default: a temporary folder, removed at the end
json_out = ""  # also write the figures as one flat JSON object to this path
nanogpt_run = ""  # (internal) time nanoGPT on this shape in this fresh process and print JSON, as train.py runs fresh
configure(globals(), {"repeats": POSITIVE, "new_tokens": POSITIVE,
                      "iters": (lambda v: v == "auto" or v.isdigit() and int(v) > 1, "'auto' or a number above 1")})

ROOT = os.path.dirname(os.path.abspath(__file__))
USER_ENV = dict(os.environ)  # nanoGPT runs in this, without the huge-pages setting train.py adds
VOCAB = 4096
TINY = {"a": dict(n_layer=1, n_head=4, n_embd=128), "b": dict(n_layer=4, n_head=4, n_embd=256)}
# Peak dense bf16 FLOP/s from the vendors' sheets, for MFU as papers quote it (train.py's own MFU is
# against the peak it measures, which a GPU's sheet usually beats).
SPEC_BF16 = {"H100 PCIe": 756e12, "H100": 989e12, "H200": 989e12, "A100": 312e12}


def shape_args(name, on_gpu):
    """Model and batch settings of a named shape: (a) and (b) at batch 16 x block 256; the paper's 33M
    with its recipe's batch on a GPU, and at 16 x 256 on a CPU (its 64 x 512 takes a minute an iteration)."""
    if name in TINY:
        return dict(TINY[name], batch_size=16, block_size=256)
    if name == "33m":
        cfg = runpy.run_path(os.path.join(ROOT, "config", "paper_33m.py"))
        batch = dict(batch_size=cfg["batch_size"], block_size=cfg["block_size"]) if on_gpu else dict(batch_size=16, block_size=256)
        return dict(n_layer=cfg["n_layer"], n_head=cfg["n_head"], n_embd=cfg["n_embd"], **batch)
    die(f"unknown shape '{name}'; choose from a, b, 33m")


def quiet(fn, *args):
    with contextlib.redirect_stdout(io.StringIO()), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # e.g. the BPE running out of merges on the built-in stories
        return fn(*args)


def timed(fn, runs, warmup=1):
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


# ------------------------------------------------------------------------------------------ prepare
def prepare_data(work, runs, measure):
    """The shipped corpus through prepare.py's stages, timed; then data/bench for train.py: the same
    bins, with the tokenizer padded to 4,096 ids (should the corpus hold fewer distinct merges than
    that, the padding ids never occur; they only give the model the shapes' vocabulary)."""
    import prepare as prep  # imported, it keeps its defaults: the settings below are ours
    from lib import tokenizer
    from lib.corpus import read_stories
    prep.dataset, prep.num_stories, prep.vocab_size = "corpus", num_stories, VOCAB
    data_dir = os.path.join(work, "data", "corpus")
    os.makedirs(data_dir, exist_ok=True)
    quiet(prep.make_stories, data_dir)
    out = {}
    bpe = timed(lambda: quiet(prep.train_tokenizer, data_dir), runs if measure else 1, warmup=0)
    pipeline = timed(lambda: quiet(prep.pretokenize, data_dir), runs if measure else 1, warmup=0)
    with open(os.path.join(data_dir, "meta.json")) as f:
        meta = json.load(f)
    if measure:
        mb = sum(meta[s]["bytes"] for s in ("train", "val")) / 1e6
        enc = tokenizer.load_encoding(os.path.join(data_dir, "tokenizer.tiktoken"))
        stories = [s for split in ("train", "val") for s in read_stories(os.path.join(data_dir, f"{split}.txt"))]
        one = timed(lambda: [enc.encode_ordinary(s) for s in stories], runs)
        jobs = len(prep.story_ranges(os.path.join(data_dir, "train.txt"), prep.chunk_mb << 20))
        workers = max(1, min(prep.workers, jobs))  # the processes pretokenize really runs
        out = dict(bpe_train_s=bpe, bpe_vocab=enc.n_vocab, bpe_sample_mb=min(mb, prep.tokenizer_sample_mb),
                   encode_mb_per_s=mb / pipeline, tiktoken_1proc_mb_per_s=mb / one,
                   tiktoken_mb_per_s=workers * mb / one, encode_workers=workers, encode_text_mb=mb)
        out["encode_vs_limit"] = out["encode_mb_per_s"] / out["tiktoken_mb_per_s"]
    bench_dir = os.path.join(work, "data", "bench")
    os.makedirs(bench_dir, exist_ok=True)
    for name in ("train.bin", "val.bin", "meta.json"):
        shutil.copy(os.path.join(data_dir, name), bench_dir)
    with open(os.path.join(data_dir, "tokenizer.tiktoken")) as f:
        ranks = tokenizer.parse_ranks(f.read())
    for i in range(len(ranks), VOCAB - 1):  # EOT takes the last id
        ranks[b"\x00unused" + i.to_bytes(2, "big")] = i
    tokenizer.save_ranks(ranks, os.path.join(bench_dir, "tokenizer.tiktoken"))
    return out


# ----------------------------------------------------------------------------------------- training
def schedule(name, on_gpu):
    """(iterations, log every, log lines skipped as warm-up) of one training run: a GPU logs every 10th
    iteration, as syncing each one would cost it time; its first lines include compiling."""
    n, every, skip = ((300, 10, 5) if name in TINY else (100, 10, 2)) if on_gpu else \
        ((30, 1, 5) if name == "a" else (12, 1, 2) if name == "b" else (6, 1, 2))
    if iters == "auto":
        return n, every, skip
    return int(iters), every, min(skip, int(iters) // every - 1)


def train_run(name, args, work, on_gpu):
    """One train.py run; returns its tokens/s of each log line after warm-up, and the peak it measured."""
    n, every, skip = schedule(name, on_gpu)
    cmd = [sys.executable, os.path.join(ROOT, "train.py"), "--dataset=bench", f"--out_dir=out-bench-{name}",
           *(f"--{k}={v}" for k, v in args.items()), f"--max_iters={n}", f"--eval_interval={n}",
           f"--lr_decay_iters={n}", "--warmup_iters=2", "--eval_iters=1", "--sample_tokens=1",
           f"--log_interval={every}", f"--device={device}", f"--dtype={dtype}", f"--compile={compile}",
           f"--compile_mode={compile_mode}"]
    result = subprocess.run(cmd, cwd=work, capture_output=True, text=True)
    if result.returncode != 0:
        die(f"train.py failed on shape {name}:\n{result.stdout[-1500:]}\n{result.stderr[-3000:]}")
    tok_s = re.findall(r"^iter \d+/\d+: .* ([\d,]+) tok/s", result.stdout, re.M)[skip:]
    peak = float(re.search(r"measured peak of this device at \w+: ([\d.]+) TFLOP/s", result.stdout).group(1))
    model = re.search(r"^model: ([\d.]+)M parameters, \S+, (\w+), compile=(\w+)", result.stdout, re.M)
    return dict(tok_s=[float(t.replace(",", "")) for t in tok_s], peak=peak * 1e12, params_m=float(model.group(1)),
                dtype=model.group(2), compile=model.group(3) == "True")


def flops_per_token(args):
    """train.py's FLOPs per token (model.py's formula), from a weightless model."""
    import torch
    from model import GPT, GPTConfig
    with torch.device("meta"):
        model = GPT(GPTConfig(vocab_size=VOCAB, **{k: args[k] for k in ("n_layer", "n_head", "n_embd", "block_size")}))
    return model.flops_per_token(args["block_size"])


def nanogpt_autocast(dev):
    """nanoGPT's own precision choice: bf16 autocast on a GPU, plain fp32 elsewhere."""
    import torch
    return torch.autocast("cuda", dtype=torch.bfloat16) if dev.startswith("cuda") else contextlib.nullcontext()


def load_nanogpt(path):
    spec = importlib.util.spec_from_file_location("nanogpt_model", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def nanogpt_subprocess(name, work):
    """nanoGPT_train() in a fresh process, as train.py runs in one: a process that has already
    allocated and freed a lot (this one) hands out memory faster, which measured +25% on (a)."""
    cmd = [sys.executable, os.path.abspath(__file__), f"--nanogpt_run={name}", f"--nanogpt={nanogpt}",
           f"--work_dir={work}", f"--device={device}"]
    result = subprocess.run(cmd, capture_output=True, text=True, env=USER_ENV)
    if result.returncode != 0:
        die(f"nanoGPT's run on shape {name} failed:\n{result.stderr[-3000:]}")
    return json.loads(result.stdout.strip().splitlines()[-1])


def nanogpt_train(name, args, work, dev, on_gpu):
    """nanoGPT's model.py in its own train.py loop: its get_batch, AdamW (fused on CUDA only, as it
    chooses), grad clip 1.0; fp32 eager on a CPU, bf16 autocast and torch.compile on a GPU."""
    import torch
    ng = load_nanogpt(nanogpt)
    torch.manual_seed(1337)
    shape = {k: args[k] for k in ("n_layer", "n_head", "n_embd", "block_size")}
    model = quiet(ng.GPT, ng.GPTConfig(vocab_size=VOCAB, dropout=0.0, bias=False, **shape)).to(dev)
    optimizer = quiet(model.configure_optimizers, 0.1, 1e-3, (0.9, 0.95), dev.split(":")[0])
    ctx = nanogpt_autocast(dev)
    step_model = torch.compile(model) if on_gpu else model
    data = np.memmap(os.path.join(work, "data", "bench", "train.bin"), dtype=np.uint16, mode="r")
    B, T = args["batch_size"], args["block_size"]

    def get_batch():
        ix = torch.randint(len(data) - T, (B,))
        x = torch.stack([torch.from_numpy(data[i:i + T].astype(np.int64)) for i in ix])
        y = torch.stack([torch.from_numpy(data[i + 1:i + 1 + T].astype(np.int64)) for i in ix])
        if on_gpu:
            return x.pin_memory().to(dev, non_blocking=True), y.pin_memory().to(dev, non_blocking=True)
        return x, y

    n, every, skip = schedule(name, on_gpu)
    X, Y = get_batch()
    tok_s, t0 = [], time.perf_counter()
    for it in range(1, n + 1):
        with ctx:
            _, loss = step_model(X, Y)
        X, Y = get_batch()  # nanoGPT fetches the next batch while the device works
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        if it % every == 0:
            loss.item()  # waits for the device
            t1 = time.perf_counter()
            tok_s.append(every * B * T / (t1 - t0))
            t0 = t1
    return tok_s[skip:]


# ----------------------------------------------------------------------------------------- sampling
def bench_sampling(dev, autocast, runs, out):
    import torch
    from model import GPT, GPTConfig
    torch.manual_seed(1337)
    cfg = dict(TINY["b"], block_size=256, vocab_size=VOCAB)
    model = GPT(GPTConfig(**cfg)).to(dev).eval()
    eot, new = VOCAB - 1, new_tokens
    sync = torch.cuda.synchronize if dev.startswith("cuda") else (lambda: None)

    def kv(batch):
        for step in model.stream([[eot]] * batch, new):
            step.tolist()  # sample.py prints every token as it comes
        sync()

    @torch.no_grad()
    def recompute(batch):
        idx = torch.full((batch, 1), eot, device=dev)
        for _ in range(new):
            logits, _ = model(idx[:, -cfg["block_size"]:])
            nxt = torch.multinomial(torch.softmax(logits[:, -1].float(), -1), 1)
            nxt.tolist()
            idx = torch.cat([idx, nxt], 1)
        sync()

    with autocast:
        for batch in (1, 8):
            tag = "" if batch == 1 else "_batch8"
            out[f"sample_b_kv{tag}_tokens_per_s"] = batch * new / timed(lambda: kv(batch), runs)
            out[f"sample_b_nocache{tag}_tokens_per_s"] = batch * new / timed(lambda: recompute(batch), runs)
            print(f"sample b, batch {batch}: {out[f'sample_b_kv{tag}_tokens_per_s']:,.0f} tok/s with the KV cache, "
                  f"{out[f'sample_b_nocache{tag}_tokens_per_s']:,.0f} recomputing", flush=True)
    if nanogpt and os.path.exists(nanogpt):
        ng = load_nanogpt(nanogpt)
        theirs = quiet(ng.GPT, ng.GPTConfig(dropout=0.0, bias=False, **cfg)).to(dev).eval()
        @torch.no_grad()
        def theirs_generate():
            with nanogpt_autocast(dev):
                theirs.generate(torch.full((1, 1), eot, device=dev), new).tolist()

        out["nanogpt_sample_b_tokens_per_s"] = new / timed(theirs_generate, runs)
        print(f"nanoGPT sample b, batch 1: {out['nanogpt_sample_b_tokens_per_s']:,.0f} tok/s", flush=True)
        out["sample_b_kv_vs_nanogpt"] = out["sample_b_kv_tokens_per_s"] / out["nanogpt_sample_b_tokens_per_s"]


# ---------------------------------------------------------------------------------------- profiling
def profile_steps(name, args, dev, autocast):
    """A few of train.py's steps of one shape under the profiler: the kernels that take the time."""
    import torch
    from model import GPT, GPTConfig
    model = GPT(GPTConfig(vocab_size=VOCAB, **{k: args[k] for k in ("n_layer", "n_head", "n_embd", "block_size")})).to(dev)
    optimizer = model.configure_optimizers(0.1, 1e-3, (0.9, 0.95), dev.split(":")[0])
    on_gpu = dev.startswith("cuda")
    use_compile = on_gpu if compile == "auto" else compile
    step_model = torch.compile(model, mode=None if compile_mode == "default" else compile_mode) if use_compile else model
    x = torch.randint(0, VOCAB, (args["batch_size"], args["block_size"]), device=dev)

    def step():
        if use_compile and on_gpu and compile_mode != "default":
            torch.compiler.cudagraph_mark_step_begin()
        with autocast:
            _, loss = step_model(x, x)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        loss.item()

    for _ in range(5):
        step()
    acts = [torch.profiler.ProfilerActivity.CPU] + ([torch.profiler.ProfilerActivity.CUDA] if on_gpu else [])
    with torch.profiler.profile(activities=acts) as prof:
        for _ in range(3):
            step()
    key = "self_device_time_total" if on_gpu else "self_cpu_time_total"
    rows = sorted(prof.key_averages(), key=lambda e: getattr(e, key, 0), reverse=True)
    rows = [e for e in rows if getattr(e, key, 0) > 0 and (not on_gpu or e.device_type == torch.autograd.DeviceType.CUDA or "kernel" in e.key.lower())][:20]
    total = sum(getattr(e, key, 0) for e in prof.key_averages() if not on_gpu or e.device_type == torch.autograd.DeviceType.CUDA) or 1
    print(f"\nprofile: shape {name}, 3 steps, top {'CUDA kernels' if on_gpu else 'CPU ops'} by self time")
    for e in rows:
        print(f"  {getattr(e, key, 0) / 1e3:9.2f} ms {getattr(e, key, 0) / total:6.1%}  {e.key[:140]}")
    attention = sorted({e.key for e in prof.key_averages() if re.search(r"flash|fmha|sdpa|attention", e.key, re.I)})
    print("  attention kernels/ops seen: " + ("; ".join(a[:100] for a in attention) or "none"))
    return attention


# --------------------------------------------------------------------------------------------- main
def fmt(x, unit=""):
    return "-" if x is None else f"{x:,.0f}{unit}" if x >= 100 else f"{x:,.2f}{unit}" if x < 10 else f"{x:,.1f}{unit}"


def main():
    sys.stdout.reconfigure(line_buffering=True)  # each line out at once: a time limit keeps what was done
    from lib.device import precision, resolve_device
    dev = resolve_device(device)
    on_gpu = dev.startswith("cuda")
    if nanogpt_run:  # nanoGPT as it ships: without train.py's huge-pages setting
        print(json.dumps(nanogpt_train(nanogpt_run, shape_args(nanogpt_run, on_gpu), work_dir, dev, on_gpu)))
        return
    os.environ.setdefault("THP_MEM_ALLOC_ENABLE", "1")  # sampling and --profile allocate as train.py does
    runs = repeats
    names = [s for s in shapes.split(",") if s]
    args = {name: shape_args(name, on_gpu) for name in names}
    work = work_dir or tempfile.mkdtemp(prefix="bench-")
    os.makedirs(work, exist_ok=True)
    have_nanogpt = bool(nanogpt) and os.path.exists(nanogpt)
    if nanogpt and not have_nanogpt:
        print(f"(no nanoGPT model.py at {nanogpt}: no comparison; pass --nanogpt=PATH)")
    t_start = time.time()
    # before torch runs anything: prepare.py's worker pool forks this process
    out = prepare_data(work, runs, time_prepare)
    import torch
    if on_gpu:
        hardware = torch.cuda.get_device_name(dev)
    else:
        cpuinfo = open("/proc/cpuinfo").read() if os.path.exists("/proc/cpuinfo") else ""
        found = re.search(r"model name\s*:\s*(.*)", cpuinfo)
        hardware = f"{found.group(1) if found else 'CPU'}, {torch.get_num_threads()} threads"
    _, dtype_name, _, autocast = precision(dev, dtype)  # as sample.py decides it
    out.update(device=dev, device_name=hardware, torch=torch.__version__, dtype=dtype_name,
               compile_mode=compile_mode, runs=runs)

    if profile and names:  # first: on a GPU its compile also warms the cache for train.py's
        out["profile_attention"] = "; ".join(profile_steps(names[0], args[names[0]], dev, autocast))
    results, theirs = {}, {}
    for r in range(runs):  # interleaved: ours, theirs, next shape
        for name_ in names:
            one = train_run(name_, args[name_], work, on_gpu)
            print(f"train {name_}, run {r + 1}/{runs}: {statistics.median(one['tok_s']):,.0f} tok/s, peak measured "
                  f"{one['peak'] / 1e12:.2f} TFLOP/s", flush=True)  # progress, in case of a time limit
            if name_ not in results:
                results[name_] = one
            else:  # a busy machine only ever lowers a measured peak: keep the highest
                results[name_]["tok_s"] += one["tok_s"]
                results[name_]["peak"] = max(results[name_]["peak"], one["peak"])
            if have_nanogpt and name_ in nanogpt_shapes.split(","):
                theirs.setdefault(name_, []).extend(nanogpt_subprocess(name_, work))
                print(f"nanoGPT {name_}, run {r + 1}/{runs}: {statistics.median(theirs[name_]):,.0f} tok/s", flush=True)
    spec = next((v for k, v in SPEC_BF16.items() if on_gpu and k in torch.cuda.get_device_name(dev)), None)
    peak = max((res["peak"] for res in results.values()), default=None)
    for name_, res in results.items():
        tps = statistics.median(res["tok_s"])
        out[f"train_{name_}_tokens_per_s"] = tps
        res["flops_per_token"] = flops_per_token(args[name_])
        out[f"train_{name_}_mfu"] = tps * res["flops_per_token"] / peak  # train.py's formula, one peak for all
        if spec and res["dtype"] == "bfloat16":
            out[f"train_{name_}_mfu_vs_spec"] = tps * res["flops_per_token"] / spec
        if name_ in theirs:
            out[f"nanogpt_train_{name_}_tokens_per_s"] = statistics.median(theirs[name_])
            out[f"train_{name_}_vs_nanogpt"] = tps / out[f"nanogpt_train_{name_}_tokens_per_s"]
        out["peak_tflops"], out["compile"] = peak / 1e12, res["compile"]
    if time_sampling:
        bench_sampling(dev, autocast, runs, out)
    out["bench_s"] = time.time() - t_start

    # ------------------------------------------------------------------ the table
    g = out.get
    print(f"\nbench.py: {hardware} ({dev}), torch {torch.__version__}, {out['dtype']}, compile={g('compile')}"
          f"{'' if compile_mode == 'default' else ' mode=' + compile_mode}; {runs} run(s) of each, medians after warm-up")
    if results:
        print(f"\ntraining: train.py, tokens/s; MFU against the highest peak train.py measured: {fmt(g('peak_tflops'))} TFLOP/s {out['dtype']}"
              + (f" (spec sheet {spec / 1e12:.0f})" if spec else ""))
        print(f"  {'shape':6} {'layers/heads/embd':18} {'batch x block':14} {'params':>8} {'tok/s':>9} {'MFU':>6}"
              + (f" {'MFU spec':>8}" if spec else "") + (f" {'nanoGPT':>9} {'ratio':>6}" if theirs else ""))
        for name_ in names:
            a = args[name_]
            row = (f"  {name_:6} {a['n_layer']}/{a['n_head']}/{a['n_embd']:<14} {a['batch_size']} x {a['block_size']:<9}"
                   f" {results[name_]['params_m']:>7.2f}M {fmt(g(f'train_{name_}_tokens_per_s')):>9} {g(f'train_{name_}_mfu'):>6.1%}")
            if spec:
                row += f" {g(f'train_{name_}_mfu_vs_spec', 0):>8.1%}"
            if name_ in theirs:
                row += f" {fmt(g(f'nanogpt_train_{name_}_tokens_per_s')):>9} {g(f'train_{name_}_vs_nanogpt'):>5.2f}x"
            print(row)
        if theirs:
            print(f"  nanoGPT: its model.py and loop, {'bf16 autocast, torch.compile' if on_gpu else 'fp32, eager'}, same shapes and batches")
    if time_sampling:
        print(f"\nsampling: shape b, {new_tokens} new tokens, {out['dtype']}, tokens/s")
        print(f"  {'batch':6} {'KV cache':>9} {'recompute':>10} {'cache gain':>11}" + (f" {'nanoGPT generate':>17} {'ratio':>6}" if g("nanogpt_sample_b_tokens_per_s") else ""))
        for batch, tag in ((1, ""), (8, "_batch8")):
            kv_, nc = g(f"sample_b_kv{tag}_tokens_per_s"), g(f"sample_b_nocache{tag}_tokens_per_s")
            row = f"  {batch:<6} {fmt(kv_):>9} {fmt(nc):>10} {kv_ / nc:>10.1f}x"
            if batch == 1 and g("nanogpt_sample_b_tokens_per_s"):
                row += f" {fmt(g('nanogpt_sample_b_tokens_per_s')):>17} {g('sample_b_kv_vs_nanogpt'):>5.1f}x"
            print(row)
    if time_prepare:
        print(f"\nprepare: {g('encode_text_mb'):.1f} MB of the shipped corpus")
        print(f"  BPE encode, pretokenize's pool of {g('encode_workers')}: {fmt(g('encode_mb_per_s'))} MB/s; limit "
              f"{g('encode_workers')} x {fmt(g('tiktoken_1proc_mb_per_s'))} MB/s (one process's encode_ordinary) = "
              f"{fmt(g('tiktoken_mb_per_s'))} MB/s: {g('encode_vs_limit'):.0%} of it")
        print(f"  BPE training: {g('bpe_train_s'):.1f} s for {g('bpe_vocab')} tokens from {g('bpe_sample_mb'):.1f} MB")
    print(f"\n(bench took {out['bench_s']:.0f} s)")
    if json_out:
        with open(json_out, "w") as f:
            json.dump(out, f, indent=1)
        print(f"wrote {json_out}")
    if not work_dir:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":  # guarded: prepare.py's worker processes may re-import this file
    main()
