"""
Lab 2, size and shape: how does the loss fall with the model's size, and which shape is best for a
given budget? Trains a grid of widths x depths on the same number of tokens, fits a power law of val
loss against parameters and against FLOPs, and reads the compute-optimal frontier off the curves.
The handout is labs/02_size_and_shape.md; lab 3 reuses these models.

    python labs/02_size_and_shape.py                         # about 9 minutes on a 2-core CPU
    python labs/02_size_and_shape.py --shapes=64x2,128x4,256x4,512x8 --tokens=20e6   # on a GPU
    python labs/02_size_and_shape.py --paper=True            # the paper's shapes (config/paper_*.py), a GPU
"""
import os

import common
from lib.configurator import POSITIVE, configure

shapes = "32x1,32x2,32x4,64x1,64x2,64x4,128x1,128x2,128x4,256x1,256x2"  # width x depth, the grid to train
tokens = 6e5  # training tokens every model sees
block_size = 256
batch_size = 16
learning_rate = 3e-3
seed = 1337
paper = False  # train the paper's grid instead (config/paper_1m ... paper_33m), sized for one GPU
tiny = False  # seconds, not minutes: the size tests/test_labs.py runs
configure(globals(), {"block_size": POSITIVE, "batch_size": POSITIVE, "tokens": (lambda t: t > 0, "above 0")})
if tiny:
    shapes, tokens, block_size, batch_size = "16x1,16x2,32x1,32x2", 4e3, 32, 4

common.ensure_data()
folder = common.lab_dir("02_size_and_shape")
vocab = common.vocab_size()
models = []
if paper:
    for name in ("paper_1m", "paper_3m", "paper_8m", "paper_28m", "paper_33m"):
        out = os.path.join(folder, name)
        common.run("train.py", f"config/{name}.py", f"--out_dir={out}", "--overwrite=True", quiet=False)
        models.append(dict(name=name, out=out))
    print("\nThe paper's table of grades, side by side (needs a judge: an API key, a local server, or a batch):\n"
          "  python grade.py --out_dir=" + ",".join(os.path.relpath(m["out"], common.WORK) for m in models))
    raise SystemExit(0)

iters = max(4, int(tokens / (batch_size * block_size)))
for n_embd, n_layer in (map(int, shape.split("x")) for shape in shapes.split(",")):
    per_token, params = common.flops_per_token(n_layer, n_embd, block_size, vocab, n_head=max(1, n_embd // 32))
    out = os.path.join(folder, f"w{n_embd}_l{n_layer}")
    log = common.train(out, n_layer=n_layer, n_embd=n_embd, n_head=max(1, n_embd // 32), block_size=block_size,
                       batch_size=batch_size, max_iters=iters, lr_decay_iters=iters, eval_interval=max(1, iters // 6),
                       warmup_iters=min(50, iters // 10), learning_rate=learning_rate, seed=seed, eval_iters=4,
                       sample_tokens=8)
    models.append(dict(name=f"w{n_embd}_l{n_layer}", n_embd=n_embd, n_layer=n_layer, params=params,
                       flops=log[-1]["flops"], val_loss=log[-1]["val_loss"], val_bpb=log[-1]["val_bpb"],
                       train_s=log[-1]["wall_s"], log=log))

a_p, b_p = common.fit_power_law([m["params"] for m in models], [m["val_loss"] for m in models])
a_f, b_f = common.fit_power_law([m["flops"] for m in models], [m["val_loss"] for m in models])
# the frontier: at each of 8 budgets, log-spaced up to the largest model's, the model with the lowest val loss
# at its last eval within the budget (a model that has not had its first eval by then is not in the running)
low = min(r["flops"] for m in models for r in m["log"] if r["flops"] > 0)
high = max(m["flops"] for m in models)
frontier = []
for k in range(8):
    budget = low * (high / low) ** (k / 7)
    within = [(min(r["val_loss"] for r in m["log"] if 0 < r["flops"] <= budget * 1.0001), m["name"])
              for m in models if any(0 < r["flops"] <= budget * 1.0001 for r in m["log"])]
    loss, name = min(within)
    frontier.append(dict(flops=budget, val_loss=loss, model=name))

print(f"\nLab 2: size and shape. {iters * batch_size * block_size:,} training tokens each, on the shipped corpus\n")
print(common.table(sorted(models, key=lambda m: m["params"]),
                   [("model", "name", "{}"), ("params", lambda m: m["params"] / 1e6, "{:.3f}M"),
                    ("FLOPs", "flops", "{:.2e}"), ("seconds", "train_s", "{:.0f}"), ("val loss", "val_loss", "{:.3f}"),
                    ("val bpb", "val_bpb", "{:.3f}")]))
print(f"\nfit: val loss = {a_p:.2f} x params^{b_p:.3f}   and   val loss = {a_f:.2f} x FLOPs^{b_f:.3f}")
print("\nthe compute-optimal frontier: at each budget, the model with the lowest val loss within it")
print(common.table(frontier, [("budget, FLOPs", "flops", "{:.2e}"), ("best model", "model", "{}"),
                              ("val loss", "val_loss", "{:.3f}")]))

common.save(folder, {"tokens": iters * batch_size * block_size, "fit_params": {"a": a_p, "b": b_p},
                     "fit_flops": {"a": a_f, "b": b_f}, "frontier": frontier,
                     "models": [{k: v for k, v in m.items() if k != "log"} for m in models]})


def by_params(plt):
    xs = sorted(m["params"] for m in models)
    for depth in sorted({m["n_layer"] for m in models}):
        ms = sorted((m for m in models if m["n_layer"] == depth), key=lambda m: m["params"])
        plt.plot([m["params"] for m in ms], [m["val_loss"] for m in ms], "o-", label=f"{depth} layers")
    plt.plot(xs, [a_p * x ** b_p for x in xs], "k--", label=f"fit: {a_p:.2f} N^{b_p:.3f}")
    plt.xscale("log")
    plt.yscale("log")
    plt.xlabel("parameters (non-embedding)")
    plt.ylabel("val loss")
    plt.legend()


def by_flops(plt):
    for m in models:
        plt.plot([r["flops"] for r in m["log"][1:]], [r["val_loss"] for r in m["log"][1:]], alpha=0.6, label=m["name"])
    plt.plot([p["flops"] for p in frontier], [p["val_loss"] for p in frontier], "k-", lw=2, label="frontier")
    plt.xscale("log")
    plt.yscale("log")
    plt.xlabel("training FLOPs")
    plt.ylabel("val loss")
    plt.legend(fontsize=6, ncol=2)


common.plot(os.path.join(folder, "loss_vs_params.png"), by_params)
common.plot(os.path.join(folder, "loss_vs_flops.png"), by_flops)
