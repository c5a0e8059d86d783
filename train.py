"""
train.py: train a GPT on the token bins that prepare.py wrote, on one device.

    python prepare.py --dataset=synthetic && python train.py --dataset=synthetic --n_layer=1
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

import tokenizer
from configurator import configure, die, resolve_device, resolve_dtype
import torch.distributed as dist
from torch.nn.parallel import DistributedDataParallel as DDP

from model import GPT, GPTConfig, peak_flops

# output and evaluation
out_dir = "out"
eval_interval = 250  # iterations between evals; each eval also prints a story and saves the checkpoint
eval_iters = 20  # batches averaged per loss estimate
log_interval = 10
init_from = "scratch"  # 'scratch' or 'resume' (from out_dir/ckpt.pt)
sample_tokens = 200  # length of the story printed at each eval
# data
dataset = "tinystories"  # a folder in data/, made by prepare.py
batch_size = 16
block_size = 256
gradient_accumulation_steps = 1  # micro-batches per optimizer step
# model
n_layer = 4
n_head = 4
n_embd = 256  # at 128, a 1-layer model did not learn to reuse a story's names in 1,500 steps; at 256 it did
dropout = 0.0
bias = False
# AdamW with linear warmup, then cosine decay to min_lr
learning_rate = 2e-3
max_iters = 2000
weight_decay = 0.1
beta1 = 0.9
beta2 = 0.95
grad_clip = 1.0  # 0 turns clipping off
warmup_iters = 100
lr_decay_iters = 2000  # usually = max_iters
min_lr = 2e-4  # usually learning_rate / 10
# system
device = "auto"  # 'auto' picks cuda, then mps, then cpu
dtype = "auto"  # 'auto', 'float32', 'bfloat16' or 'float16'
compile = "auto"  # torch.compile; 'auto' = on for CUDA, where it pays
compile_mode = "default"  # 'reduce-overhead' or 'max-autotune' add CUDA graphs: for tiny models on a GPU
seed = 1337
config = configure(globals())

# ---------------------------------------------------------------------------------------------
device = resolve_device(device)
ddp = "RANK" in os.environ  # set by torchrun
rank, world_size = int(os.environ.get("RANK", 0)), int(os.environ.get("WORLD_SIZE", 1))
master = rank == 0  # only the first process evaluates, logs and writes checkpoints
if ddp:
    if gradient_accumulation_steps % world_size:
        die(f"gradient_accumulation_steps={gradient_accumulation_steps} must be a multiple of the {world_size} processes")
    gradient_accumulation_steps //= world_size  # the global batch stays what the settings say
    if device.startswith("cuda"):
        device = f"cuda:{os.environ['LOCAL_RANK']}"
        torch.cuda.set_device(device)
    dist.init_process_group("nccl" if device.startswith("cuda") else "gloo")
device_type = device.split(":")[0]
dtype = resolve_dtype(dtype, device)
compile = device_type == "cuda" if compile == "auto" else compile
ptdtype = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}[dtype]
autocast = torch.autocast(device_type, dtype=ptdtype, enabled=dtype != "float32")
torch.manual_seed(seed + rank)
torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = True

# data: uint16 token ids, read through a memory map so a 2 GB split costs no RAM
data_dir = os.path.join("data", dataset)
if not os.path.exists(os.path.join(data_dir, "train.bin")):
    die(f"no prepared data in {data_dir}/; make it with: python prepare.py --dataset={dataset}")
with open(os.path.join(data_dir, "meta.json")) as f:
    meta = json.load(f)
tokenizer_text = open(os.path.join(data_dir, "tokenizer.tiktoken")).read()
enc = tokenizer.get_encoding(tokenizer_text)
eot = enc.eot_token
bins = {split: np.memmap(os.path.join(data_dir, f"{split}.bin"), dtype=np.uint16, mode="r") for split in ("train", "val")}
for split, data in bins.items():
    if len(data) <= block_size + 1:
        die(f"{data_dir}/{split}.bin holds {len(data)} tokens, too few for block_size={block_size}; prepare more stories")
    if int(data.max()) >= enc.n_vocab:
        die(f"{data_dir}/{split}.bin holds token ids up to {int(data.max())}, beyond the tokenizer's {enc.n_vocab}: "
            f"the bins and tokenizer come from different runs; rerun python prepare.py --dataset={dataset}")
tokens_per_iter = gradient_accumulation_steps * world_size * batch_size * block_size
log = print if master else (lambda *args, **kwargs: None)
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
ckpt_path = os.path.join(out_dir, "ckpt.pt")
if init_from == "resume":
    if not os.path.exists(ckpt_path):
        die(f"no checkpoint at {ckpt_path} to resume from; start one with --init_from=scratch")
    # to the CPU: the saved RNG state must stay there (set_rng_state rejects a CUDA tensor), and
    # load_state_dict below moves weights and optimizer state onto the model's device anyway
    ckpt = torch.load(ckpt_path, map_location="cpu", weights_only=True)
    if ckpt["tokenizer"] != tokenizer_text:
        die(f"{ckpt_path} was trained with another tokenizer than {data_dir}/; resume on the dataset it was trained on "
            f"(--dataset={ckpt['config'].get('dataset')}) or start a new --out_dir")
    if block_size > ckpt["model_args"]["block_size"]:
        die(f"block_size={block_size} is above the checkpoint's {ckpt['model_args']['block_size']}; pass --block_size=<= that")
    model_args.update({k: ckpt["model_args"][k] for k in ("n_layer", "n_head", "n_embd", "bias", "vocab_size", "block_size")})
elif init_from != "scratch":
    die(f"init_from must be 'scratch' or 'resume', not {init_from!r}")
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
    os.makedirs(out_dir, exist_ok=True)
    tmp = ckpt_path + ".tmp"
    torch.save(state, tmp)
    os.replace(tmp, ckpt_path)  # a kill mid-write leaves the previous checkpoint whole


val_tokens_per_byte = meta["val"]["tokens"] / meta["val"]["bytes"]
flops_per_iter = raw_model.flops_per_token(block_size) * tokens_per_iter
t_log, iters_logged = time.time(), 0
while True:
    lr = get_lr(iter_num)
    for group in optimizer.param_groups:
        group["lr"] = lr
    if master and (iter_num % eval_interval == 0 or iter_num >= max_iters):
        losses = estimate_loss()
        best_val_loss = min(best_val_loss, losses["val"])
        bpb = losses["val"] * val_tokens_per_byte / math.log(2)
        print(f"step {iter_num}: train loss {losses['train']:.4f}, val loss {losses['val']:.4f}, val bpb {bpb:.3f}")
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
