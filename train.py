"""
train.py: train a GPT on the token bins that prepare.py wrote, on one device or, under torchrun, several.

    python prepare.py && python train.py --n_layer=1              # the shipped corpus, then a 1-layer model
    python train.py config/train_cpu.py --max_iters=500     # a config file, then overrides
    python train.py --out_dir=out --init_from=resume         # carry on from out/ckpt.pt
    torchrun --standalone --nproc_per_node=2 train.py ...    # data parallel: NCCL on GPUs, gloo on CPU

Every setting below is a plain global that `--key=value` or a config file overrides. Each eval
prints the val loss, the val bits per byte (comparable across tokenizers) and a sample story,
then writes the checkpoint (atomically) to out_dir/ckpt.pt.
"""
import gc
import json
import math
import os
import time

# Big tensors on huge pages (Linux): a fresh 64 MB tensor then costs 32 page faults instead of 16,384.
# bench.py measured 1.5x the tokens/s of shape (a) on a 2-core CPU, 1.1x of (b). Read once: before the import.
os.environ.setdefault("THP_MEM_ALLOC_ENABLE", "1")
import numpy as np
import torch

import torch.distributed as dist
from torch.nn.parallel import DistributedDataParallel as DDP

from lib import tokenizer
from lib.configurator import COUNT, FRACTION, POSITIVE, POSITIVE_NUMBER, atomic_write, configure, die, given, one_of
from lib.corpus import prepare_command
from lib.device import peak_flops, precision
from model import GPT, GPTConfig

# output and evaluation
out_dir = "out"
eval_interval = 300  # iterations between evals; each eval also prints a story and saves the checkpoint
eval_iters = 20  # batches averaged per loss estimate
log_interval = 10
init_from = "scratch"  # 'scratch' or 'resume' (from out_dir/ckpt.pt)
overwrite = False  # a scratch run replaces an existing out_dir/ckpt.pt only when told to
sample_tokens = 200  # length of the story printed at each eval
# data
dataset = "corpus"  # a folder in data/, made by prepare.py (corpus: the shipped stories)
batch_size = 16
block_size = 256
gradient_accumulation_steps = 1  # micro-batches per optimizer step, over all processes (torchrun rounds it up)
# model
n_layer = 1  # the quick start's recipe, picked by measurement (README): one block, 256 wide, 1,800 steps
n_head = 4
n_embd = 256  # at 128, a 1-layer model did not learn to reuse a story's names in 1,500 steps; at 256 it did
dropout = 0.0
bias = False
# AdamW with linear warmup, then cosine decay to min_lr
learning_rate = 2e-3
max_iters = 1800  # about 4½ minutes on a 2-core CPU
weight_decay = 0.1
beta1 = 0.9
beta2 = 0.95
grad_clip = 1.0  # 0 turns clipping off
warmup_iters = 100
lr_decay_iters = 1800  # usually = max_iters
min_lr = 2e-4  # usually learning_rate / 10
# system
device = "auto"  # 'auto' picks cuda, then mps, then cpu
dtype = "auto"  # 'auto', 'float32', 'bfloat16' or 'float16'
compile = "auto"  # torch.compile; 'auto' = on for CUDA, where it pays
compile_mode = "default"  # 'reduce-overhead' or 'max-autotune' add CUDA graphs: for tiny models on a GPU
seed = 1337
config = configure(globals(), {
    "batch_size": POSITIVE, "block_size": POSITIVE, "gradient_accumulation_steps": POSITIVE, "n_layer": POSITIVE,
    "n_head": POSITIVE, "n_embd": POSITIVE, "max_iters": POSITIVE, "eval_interval": POSITIVE, "eval_iters": POSITIVE,
    "log_interval": POSITIVE, "sample_tokens": COUNT, "dropout": FRACTION, "beta1": FRACTION, "beta2": FRACTION,
    "learning_rate": POSITIVE_NUMBER, "min_lr": COUNT, "weight_decay": COUNT, "grad_clip": COUNT,
    "warmup_iters": COUNT, "lr_decay_iters": COUNT, "init_from": one_of("scratch", "resume"),
    "compile": one_of("auto", True, False), "compile_mode": one_of("default", "reduce-overhead", "max-autotune")})
if n_embd % n_head:
    die(f"n_embd={n_embd} must be a multiple of n_head={n_head}: each head gets n_embd / n_head dimensions")

# ---------------------------------------------------------------------------------------------
ddp = "RANK" in os.environ  # set by torchrun
rank, world_size = int(os.environ.get("RANK", 0)), int(os.environ.get("WORLD_SIZE", 1))
master = rank == 0  # only the first process evaluates, logs and writes checkpoints
log = print if master else (lambda *args, **kwargs: None)
if ddp:
    if gradient_accumulation_steps % world_size:  # each process takes an equal share of the micro-batches
        rounded = -(-gradient_accumulation_steps // world_size) * world_size
        log(f"gradient_accumulation_steps={gradient_accumulation_steps} rounded up to {rounded}, "
            f"a multiple of the {world_size} processes")
        gradient_accumulation_steps = config["gradient_accumulation_steps"] = rounded
    gradient_accumulation_steps //= world_size  # the global batch stays what the settings say
    if device in ("auto", "cuda") and torch.cuda.is_available():
        device = f"cuda:{os.environ['LOCAL_RANK']}"
        torch.cuda.set_device(device)
device, dtype, ptdtype, autocast = precision(device, dtype)
if ddp:
    dist.init_process_group("nccl" if device.startswith("cuda") else "gloo")
device_type = device.split(":")[0]
compile = device_type == "cuda" if compile == "auto" else compile
torch.manual_seed(seed + rank)

# out_dir: checked now, not at the first save minutes in; a trained model is never replaced unasked
ckpt_path = os.path.join(out_dir, "ckpt.pt")
if master:
    if not out_dir.strip():
        die("out_dir is empty; pass --out_dir=FOLDER")
    try:
        os.makedirs(out_dir, exist_ok=True)
        open(os.path.join(out_dir, ".write_test"), "w").close()
        os.remove(os.path.join(out_dir, ".write_test"))
    except OSError as e:
        die(f"cannot write into out_dir={out_dir} ({e.strerror}); choose a writable folder")
    if init_from == "scratch" and os.path.exists(ckpt_path) and not overwrite:
        die(f"{ckpt_path} already holds a model; continue it with --init_from=resume, replace it with "
            f"--overwrite=True, or choose another --out_dir")

# data: uint16 token ids, read through a memory map so a 2 GB split costs no RAM
data_dir = os.path.join("data", dataset)
remake = f"rerun {prepare_command(dataset)}"
if not os.path.exists(os.path.join(data_dir, "train.bin")):
    die(f"no prepared data in {data_dir}/; make it with: {prepare_command(dataset)}")
try:
    with open(os.path.join(data_dir, "meta.json"), encoding="utf-8") as f:
        meta = json.load(f)
    tokenizer_text = open(os.path.join(data_dir, "tokenizer.tiktoken"), encoding="utf-8").read()
    enc = tokenizer.get_encoding(tokenizer_text)
    counts = {split: meta[split]["tokens"] for split in ("train", "val")}
except (OSError, ValueError, KeyError, TypeError) as e:  # missing, empty, half-written, not ours
    die(f"{data_dir}/ is incomplete or damaged ({type(e).__name__}: meta.json or tokenizer.tiktoken); {remake}")
remake = f"rerun {prepare_command(dataset, meta.get('dataset'))}"
if meta.get("tokenizer_sha256") != tokenizer.digest(tokenizer_text):
    die(f"the bins in {data_dir}/ were made with another tokenizer than its tokenizer.tiktoken; "
        f"{remake} --stage=pretokenize")
eot = enc.eot_token
bins = {}
for split, count in counts.items():
    path = os.path.join(data_dir, f"{split}.bin")
    size = os.path.getsize(path) if os.path.exists(path) else -1
    if size != 2 * count:
        die(f"{path} holds {max(size, 0):,} bytes, not the {2 * count:,} that meta.json counts; {remake}")
    if count <= block_size + 1:
        die(f"{path} holds {count} tokens, too few for block_size={block_size}; prepare more stories")
    bins[split] = np.memmap(path, dtype=np.uint16, mode="r")
    if int(bins[split].max()) >= enc.n_vocab:
        die(f"{path} holds token ids up to {int(bins[split].max())}, beyond the tokenizer's {enc.n_vocab}: "
            f"the bins and tokenizer come from different runs; {remake}")
tokens_per_iter = gradient_accumulation_steps * world_size * batch_size * block_size
log(f"data: {dataset}, {len(bins['train']):,} train tokens, {tokens_per_iter:,} tokens per iteration")


def batch_rng(iteration, micro_step):
    """Which windows a micro-batch reads is a function of (seed, iteration, its index in the global
    batch): so a resumed run reads on exactly as if never stopped, and N processes together read
    what one process with N times the accumulation steps would."""
    return np.random.default_rng((seed, iteration, rank * gradient_accumulation_steps + micro_step))


def get_batch(split, rng):
    data = bins[split]
    starts = rng.integers(0, len(data) - block_size - 1, size=batch_size)
    x = torch.from_numpy(np.stack([data[i:i + block_size] for i in starts]).astype(np.int64))
    y = torch.from_numpy(np.stack([data[i + 1:i + 1 + block_size] for i in starts]).astype(np.int64))
    if device_type == "cuda":  # pinned memory lets the copy overlap with compute
        return x.pin_memory().to(device, non_blocking=True), y.pin_memory().to(device, non_blocking=True)
    return x.to(device), y.to(device)


# model, fresh or from a checkpoint
model_args = dict(n_layer=n_layer, n_head=n_head, n_embd=n_embd, block_size=block_size,
                  bias=bias, vocab_size=enc.n_vocab, dropout=dropout)
iter_num, best_val_loss = 0, float("inf")
if init_from == "resume":
    if not os.path.exists(ckpt_path):
        die(f"no checkpoint at {ckpt_path} to resume from; start one with --init_from=scratch")
    # to the CPU: the saved RNG state must stay there (set_rng_state rejects a CUDA tensor), and
    # load_state_dict below moves weights and optimizer state onto the model's device anyway
    try:
        ckpt = torch.load(ckpt_path, map_location="cpu", weights_only=True)
        ckpt["model_args"], ckpt["iter_num"]
    except Exception as e:  # noqa: BLE001 - empty, truncated or not ours: one fix
        die(f"{ckpt_path} is not a checkpoint that train.py wrote ({type(e).__name__}); start anew with --overwrite=True")
    if ckpt["tokenizer"] != tokenizer_text:
        die(f"{ckpt_path} was trained with another tokenizer than {data_dir}/; resume on the dataset it was trained on "
            f"(--dataset={ckpt['config'].get('dataset')}) or start a new --out_dir")
    if block_size > ckpt["model_args"]["block_size"]:
        die(f"block_size={block_size} is above the checkpoint's {ckpt['model_args']['block_size']}; pass --block_size=<= that")
    shape = ("n_layer", "n_head", "n_embd", "bias")
    clash = [f"{k}={config[k]!r} (the checkpoint's is {ckpt['model_args'][k]!r})" for k in shape
             if k in given() and config[k] != ckpt["model_args"][k]]
    if clash:
        die(f"a resumed run keeps its checkpoint's shape, but the settings ask {', '.join(clash)}; "
            f"drop those settings, or train that shape in a new --out_dir")
    if max_iters <= ckpt["iter_num"]:
        die(f"{ckpt_path} is at iteration {ckpt['iter_num']} already; pass --max_iters above that to train on")
    model_args.update({k: ckpt["model_args"][k] for k in (*shape, "vocab_size", "block_size")})
    config.update({k: ckpt["model_args"][k] for k in shape})  # the checkpoint records the shape it really has
model = GPT(GPTConfig(**model_args)).to(device)
optimizer = model.configure_optimizers(weight_decay, learning_rate, (beta1, beta2), device_type)
if init_from == "resume":
    model.load_state_dict(ckpt["model"])
    optimizer.load_state_dict(ckpt["optimizer"])
    iter_num, best_val_loss = ckpt["iter_num"], ckpt["best_val_loss"]
    if world_size == 1:  # dropout's random state (with several processes, each reseeds itself)
        torch.set_rng_state(ckpt["torch_rng"])
    else:
        torch.manual_seed(seed + rank + world_size * iter_num)
    log(f"resuming from {ckpt_path} at iteration {iter_num}")
    del ckpt
log(f"model: {model.num_params() / 1e6:.2f}M parameters, {device}, {dtype}, compile={compile}")
scaler = torch.amp.GradScaler(device_type, enabled=dtype == "float16")  # fp16 gradients underflow without it
raw_model = model  # checkpoints hold the plain module's weights: no '_orig_mod.' prefixes
if compile:
    model = torch.compile(model, mode=None if compile_mode == "default" else compile_mode)
cuda_graphs = compile and device_type == "cuda" and compile_mode in ("reduce-overhead", "max-autotune")
if cuda_graphs:  # gradients live outside the graphs' memory, which each replay overwrites
    for p in raw_model.parameters():
        p.grad = torch.zeros_like(p)
eval_model = model  # evals run on the master alone, outside DDP's collective calls
if ddp:
    model = DDP(model, device_ids=[torch.cuda.current_device()] if device_type == "cuda" else None)
log(f"measuring this device's peak matmul rate at {dtype} (about a second)...")
peak = peak_flops(device, ptdtype)
log(f"measured peak of this device at {dtype}: {peak / 1e12:.2f} TFLOP/s (MFU is against this)")


def get_lr(it):
    if it < warmup_iters:
        return learning_rate * (it + 1) / (warmup_iters + 1)
    if it > lr_decay_iters:
        return min_lr
    ratio = (it - warmup_iters) / max(1, lr_decay_iters - warmup_iters)
    return min_lr + 0.5 * (1.0 + math.cos(math.pi * ratio)) * (learning_rate - min_lr)


@torch.no_grad()
def estimate_loss():
    eval_model.eval()
    eval_rng = np.random.default_rng((seed, 2**32))  # the same windows every eval, so evals compare
    losses = {}
    for split in ("train", "val"):
        total = 0.0
        for _ in range(eval_iters):
            with autocast:
                total += eval_model(*get_batch(split, eval_rng))[1].item()
        losses[split] = total / eval_iters
    eval_model.train()
    return losses


def sample_story():
    with torch.random.fork_rng(devices=[]), autocast:  # sampling must not shift the training RNG
        torch.manual_seed(seed)
        tokens = raw_model.generate([[eot]], sample_tokens, temperature=0.8, stop_token=eot)[0]
    raw_model.train()
    return enc.decode(tokens)


def save_checkpoint():
    state = dict(model=raw_model.state_dict(), optimizer=optimizer.state_dict(), model_args=model_args,
                 iter_num=iter_num, best_val_loss=best_val_loss, config=config, tokenizer=tokenizer_text,
                 torch_rng=torch.get_rng_state())
    atomic_write(ckpt_path, lambda f: torch.save(state, f), "wb")  # a kill mid-write leaves the last one whole


val_tokens_per_byte = meta["val"]["tokens"] / meta["val"]["bytes"]
flops_per_iter = raw_model.flops_per_token(block_size) * tokens_per_iter
log_path = os.path.join(out_dir, "log.jsonl")  # a line per eval: the loss curve, against tokens and FLOPs
if master and init_from == "scratch" and os.path.exists(log_path):
    os.remove(log_path)  # a new run: its own curve (resuming appends)
t_start = t_log = time.time()
iters_logged = 0
while True:
    lr = get_lr(iter_num)
    for group in optimizer.param_groups:
        group["lr"] = lr
    if master and (iter_num % eval_interval == 0 or iter_num >= max_iters):
        losses = estimate_loss()
        best_val_loss = min(best_val_loss, losses["val"])
        bpb = losses["val"] * val_tokens_per_byte / math.log(2)
        print(f"step {iter_num}: train loss {losses['train']:.4f}, val loss {losses['val']:.4f}, val bpb {bpb:.3f}")
        with open(log_path, "a") as f:
            f.write(json.dumps(dict(iter=iter_num, tokens=iter_num * tokens_per_iter, flops=iter_num * flops_per_iter,
                                    lr=lr, train_loss=losses["train"], val_loss=losses["val"], val_bpb=bpb,
                                    wall_s=round(time.time() - t_start, 2))) + "\n")
        print("  sample: " + sample_story().replace("\n", "\n  "))
        if iter_num > 0:
            save_checkpoint()
            print(f"  saved {ckpt_path}")
        t_log = time.time()  # evals are not training time
    if iter_num >= max_iters:
        break

    batch_loss = torch.zeros((), device=device)  # this process's share of the global batch's mean loss
    for micro_step in range(gradient_accumulation_steps):
        x, y = get_batch("train", batch_rng(iter_num, micro_step))
        if cuda_graphs:  # a new step: the graphs may reuse the previous step's output memory
            torch.compiler.cudagraph_mark_step_begin()
        if ddp:  # average gradients across processes once, on the last micro-step
            model.require_backward_grad_sync = micro_step == gradient_accumulation_steps - 1
        with autocast:
            _, loss = model(x, y)
        loss = loss / gradient_accumulation_steps
        batch_loss += loss.detach()
        scaler.scale(loss).backward()
    if grad_clip > 0:
        scaler.unscale_(optimizer)
        torch.nn.utils.clip_grad_norm_(model.parameters(), grad_clip)
    scaler.step(optimizer)
    scaler.update()
    optimizer.zero_grad(set_to_none=not cuda_graphs)
    iter_num += 1
    iters_logged += 1

    if iter_num % log_interval == 0:
        if ddp:  # every process adds its share: the logged loss is the whole batch's, as with one process
            dist.all_reduce(batch_loss)
        loss_value = batch_loss.item() / world_size  # .item() waits for the device: honest timing
        dt = (time.time() - t_log) / iters_logged
        log(f"iter {iter_num}/{max_iters}: loss {loss_value:.4f}, lr {lr:.2e}, {dt * 1000:.0f} ms/iter, "
            f"{tokens_per_iter / dt:,.0f} tok/s, mfu {flops_per_iter / world_size / dt / peak:.1%}, "
            f"eta {(max_iters - iter_num) * dt / 60:.1f} min")
        t_log, iters_logged = time.time(), 0
if ddp:  # leave together, and free DDP (its reducer holds the gloo group) before the group goes:
    # left to interpreter exit, gloo's threads aborted the process ("terminate called without an active
    # exception") in 3 of 36 two-process runs; this way, 0 of 90
    dist.barrier()
    del model
    gc.collect()
    dist.destroy_process_group()
