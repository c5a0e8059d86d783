"""
Lab 3, what the model knows: facts ("the bird flew up into the ..."), reasoning ("... so she felt")
and keeping track of who and what the story is about. Each probe in labs/probes.txt has a right and
a wrong ending; a model knows it when it gives the right one the higher log-probability, so no judge
is needed. Runs over lab 2's models: accuracy by kind against size. The handout is labs/03_what_it_knows.md.

    python labs/03_what_it_knows.py                       # a minute, once lab 2 has run
    python labs/03_what_it_knows.py --models=out,out-cpu  # any checkpoints, side by side
"""
import glob
import os

import torch
import torch.nn.functional as F

import common
from lib import tokenizer
from lib.configurator import configure, die
from model import load_checkpoint

models = ""  # checkpoint folders, comma-separated; default: every model lab 2 trained
probes = os.path.join(common.ROOT, "labs", "probes.txt")
show = 4  # probes of each kind whose greedy completions are printed side by side
tiny = False  # the size tests/test_labs.py runs (its lab-2 models are tiny already)
configure(globals())
if tiny:
    show = 1

folders = [m for m in models.split(",") if m] or sorted(
    os.path.dirname(p) for p in glob.glob(os.path.join(common.WORK, "labs", "runs", "02_size_and_shape", "*", "ckpt.pt")))
if not folders:
    die("no models to probe: run lab 2 first (python labs/02_size_and_shape.py), or pass --models=FOLDER,FOLDER")
rows = [[x.strip() for x in line.split("|")] for line in open(probes, encoding="utf-8")
        if line.strip() and not line.startswith("#")]
kinds = sorted({r[0] for r in rows}, key=["fact", "reason", "track"].index)


@torch.no_grad()
def logprob(model, enc, beginning, ending):
    """Sum of log-probabilities of the ending's tokens after the beginning (as a story starts: <|endoftext|> first)."""
    context = [enc.eot_token] + enc.encode_ordinary(beginning)
    target = enc.encode_ordinary(" " + ending)
    ids = torch.tensor([context + target])
    logits = model(ids[:, :-1], targets=ids[:, 1:])[0]
    logp = F.log_softmax(logits[0, -len(target):].float(), -1)
    return logp.gather(1, torch.tensor(target)[:, None]).sum().item()


results, completions = [], {}
for folder in folders:
    model, ckpt = load_checkpoint(folder)
    enc = tokenizer.get_encoding(ckpt["tokenizer"])
    right = {k: 0 for k in kinds}
    for kind, beginning, good, bad in rows:
        right[kind] += logprob(model, enc, beginning, good) > logprob(model, enc, beginning, bad)
    per_kind = {k: right[k] / sum(r[0] == k for r in rows) for k in kinds}
    name = os.path.basename(folder.rstrip("/"))
    results.append(dict(model=name, params=model.num_params(), **per_kind,
                        all=sum(right.values()) / len(rows)))
    for kind in kinds:
        for _, beginning, _, _ in [r for r in rows if r[0] == kind][:show]:
            ids = [enc.eot_token] + enc.encode_ordinary(beginning)
            new = model.generate([ids], 6, temperature=0, stop_token=enc.eot_token)[0]
            completions.setdefault(beginning, {})[name] = enc.decode(new).split("\n")[0].strip()
    del model

results.sort(key=lambda r: r["params"])
n = {k: sum(r[0] == k for r in rows) for k in kinds}
print(f"\nLab 3: what the model knows. {len(rows)} probes: " + ", ".join(f"{n[k]} {k}" for k in kinds)
      + "; chance is 0.50\n")
print(common.table(results, [("model", "model", "{}"), ("params", lambda r: r["params"] / 1e6, "{:.3f}M")]
                   + [(k, k, "{:.2f}") for k in kinds] + [("all", "all", "{:.2f}")]))
print("\ngreedy completions, smallest model to largest:")
for beginning, by_model in completions.items():
    print(f"\n  {beginning} ...")
    for r in results:
        print(f"    {r['model']:>12}: {by_model[r['model']]}")
folder = common.lab_dir("03_what_it_knows")
common.save(folder, {"probes": len(rows), "per_kind": n, "models": results, "completions": completions})


def accuracy(plt):
    for k in kinds:
        plt.plot([r["params"] for r in results], [r[k] for r in results], "o-", label=k)
    plt.axhline(0.5, color="gray", ls=":", label="chance")
    plt.xscale("log")
    plt.xlabel("parameters (non-embedding)")
    plt.ylabel("probes right")
    plt.legend()


common.plot(os.path.join(folder, "accuracy_vs_size.png"), accuracy)
