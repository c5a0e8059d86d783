"""
Lab 5, neurons: do single MLP neurons of a small model stand for a role or a concept? Records every
MLP neuron's activation (after the GELU) over val stories and scores how well it picks out a word
class (names, colours, animals, feelings, verbs of motion) by its AUROC: 1.0 when it fires more on
every word of the class than on any other, 0.5 when it cannot tell them apart. The same for a model
with random weights, the control. The handout is labs/05_neurons.md.

    python labs/05_neurons.py                        # a minute once lab 1 has run (else it trains it)
    python labs/05_neurons.py --model=out
"""
import os

import torch

import common
from lib import llm_stories, tokenizer
from lib.configurator import POSITIVE, configure
from lib.corpus import read_stories
from model import GPT, load_checkpoint

model = ""  # a checkpoint folder; default: lab 1's 1-layer model
stories = 300  # val stories the activations come from
top = 8  # most selective neurons shown, with the words they fire on most
min_words = 30  # a class is scored only where its words stand this often (a handful of them would score by luck)
seed = 1337  # of lab 1's model, when this lab trains it
tiny = False  # the size tests/test_labs.py runs
configure(globals(), {"stories": POSITIVE, "top": POSITIVE, "min_words": POSITIVE})
if tiny:
    stories, top, min_words = 8, 3, 1

recipe = llm_stories.read_recipe(llm_stories.RECIPE)[0]
CLASSES = {  # word classes, each a set of lower-case words
    "names": {w.lower() for k in ("girls", "boys", "animal names") for w in recipe[k]},
    "colours": set("red blue green yellow pink purple orange brown black white gray golden silver".split()),
    "animals": {w.lower() for w in recipe["animals"]} | set("dog cat bird fish duck cow pig frog bunny bear".split()),
    "feelings": set("happy sad scared angry glad sorry proud lonely worried excited upset afraid".split()),
    "motion verbs": set("ran run runs jumped jump hopped hop walked walk flew fly swam swim climbed climb "
                        "raced danced skipped rolled crawled went came".split()),
}

common.ensure_data()
folder = model or common.depth_models([1], seed=seed, **(dict(n_embd=32, block_size=32, batch_size=4, flops=2e9)
                                                         if tiny else {}))[0]["out"]
trained, ckpt = load_checkpoint(folder)
enc = tokenizer.get_encoding(ckpt["tokenizer"])
torch.manual_seed(0)
control = GPT(trained.config).eval()  # the same shape, random weights
val = read_stories(os.path.join(common.WORK, "data", "corpus", "val.txt"), limit=stories)
words = [enc.decode([i]).strip().lower() for i in range(enc.n_vocab)]


@torch.no_grad()
def activations(net):
    """(tokens, layers x 4*n_embd) MLP activations over the val stories, and the token ids."""
    acts, ids_all, seen = [], [], []
    hooks = [b.mlp.c_proj.register_forward_pre_hook(lambda m, inp: seen.append(inp[0][0])) for b in net.h]
    for text in val:
        ids = [enc.eot_token] + enc.encode_ordinary(text)[:net.config.block_size - 1]
        seen.clear()
        net(torch.tensor([ids]), targets=torch.tensor([ids]))
        acts.append(torch.cat(seen, -1).float())
        ids_all += ids
    for h in hooks:
        h.remove()
    return torch.cat(acts), torch.tensor(ids_all)


def auroc(x, positive):
    """AUROC of every column of x for telling the positive rows from the rest (rank-sum form)."""
    ranks = x.argsort(0).argsort(0).float() + 1
    n_pos, n_neg = positive.sum().item(), (~positive).sum().item()
    return (ranks[positive].sum(0) - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg)


def selectivity(net):
    acts, ids = activations(net)
    scores = {}
    for name, vocab in CLASSES.items():
        positive = torch.tensor([words[i] in vocab for i in ids.tolist()])
        if min_words <= positive.sum() < len(ids):
            scores[name] = auroc(acts, positive)
    return acts, ids, scores


results = {}
for label, net in (("trained", trained), ("random", control)):
    acts, ids, scores = selectivity(net)
    best = torch.stack(list(scores.values())).max(0)  # each neuron's best class
    names = list(scores)
    order = best.values.argsort(descending=True)[:top]
    width = 4 * net.config.n_embd
    rows = []
    for n in order.tolist():
        fires = acts[:, n].topk(min(12, len(ids))).indices
        rows.append(dict(neuron=f"L{n // width} #{n % width}", word_class=names[best.indices[n]],
                         auroc=best.values[n].item(), fires_on=", ".join(dict.fromkeys(words[ids[i]] for i in fires))))
    results[label] = dict(neurons=acts.size(1), tokens=len(ids), top=rows,
                          best_auroc=best.values.tolist(), over_0_9=int((best.values > 0.9).sum()),
                          per_class_max={k: v.max().item() for k, v in scores.items()})
    print(f"\nLab 5: {label} model ({os.path.relpath(folder, common.WORK)}), {acts.size(1)} MLP neurons over "
          f"{len(ids):,} tokens; {results[label]['over_0_9']} neurons with AUROC > 0.9 for some class\n")
    print(common.table(rows, [("neuron", "neuron", "{}"), ("class", "word_class", "{}"), ("AUROC", "auroc", "{:.3f}"),
                              ("fires most on", "fires_on", "{}")]))

out = common.lab_dir("05_neurons")
common.save(out, {"model": os.path.relpath(folder, common.WORK), "classes": {k: len(v) for k, v in CLASSES.items()},
                  **{k: {kk: vv for kk, vv in v.items() if kk != "best_auroc"} for k, v in results.items()}})


def histograms(plt):
    for label in results:
        plt.hist(results[label]["best_auroc"], bins=40, range=(0.5, 1.0), alpha=0.6, label=label)
    plt.xlabel("a neuron's best AUROC over the word classes")
    plt.ylabel("neurons")
    plt.legend()


common.plot(os.path.join(out, "auroc_trained_vs_random.png"), histograms)
