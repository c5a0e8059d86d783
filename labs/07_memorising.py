"""
Lab 7, memorising or creating: does a small model write new stories, or stitch together ones it was
trained on? Three measures after the paper's: Rouge-1/2/3 of its completions against the closest
training story; completions of training stories' own beginnings against their true continuations;
and the same beginnings with the names swapped (a model that memorised would carry on with the story
it knows). The baseline copies on purpose: a model trained for many epochs on a few hundred stories.
The handout is labs/07_memorising.md.

    python labs/07_memorising.py              # about 6 minutes on a 2-core CPU (reuses lab 1's model)
    python labs/07_memorising.py --model=out
"""
import os
import random
import re

import common
from lib import llm_stories, metrics, tokenizer
from lib.configurator import POSITIVE, configure
from lib.corpus import read_stories
from model import load_checkpoint

model = ""  # the model under study; default: lab 1's 1-layer model
few = 200  # stories the overfit baseline trains on, many epochs over
overfit_iters = 1500
completions = 100  # per model: new beginnings (prompts.txt, then val stories') and as many training ones
given = 3  # sentences of a training story the model is given
temperature = 0.0  # what the model thinks comes next (at 1.0 a sampled word soon leads off any remembered path)
max_new_tokens = 200
seed = 1337
tiny = False  # seconds, not minutes: the size tests/test_labs.py runs
configure(globals(), {"few": POSITIVE, "overfit_iters": POSITIVE, "completions": POSITIVE})
if tiny:
    few, overfit_iters, completions, max_new_tokens = 30, 10, 60, 16  # 60: more than prompts.txt holds
small = dict(n_embd=32, block_size=32, batch_size=4) if tiny else dict(n_embd=128, block_size=256, batch_size=16)

common.ensure_data()
folder = common.lab_dir("07_memorising")
main = model or common.depth_models([1], seed=seed, **(dict(small, flops=2e9) if tiny else {}))[0]["out"]
few_data = f"corpus-first{few}"
if not os.path.exists(os.path.join(common.WORK, "data", few_data, "meta.json")):
    common.run("prepare.py", f"--num_stories={few}", f"--name={few_data}")
overfit = os.path.join(folder, "overfit")
common.train(overfit, dataset=few_data, n_layer=2, n_head=4, max_iters=overfit_iters, lr_decay_iters=overfit_iters,
             eval_interval=max(1, overfit_iters // 5), warmup_iters=min(100, overfit_iters // 10), learning_rate=3e-3,
             dropout=0.0, weight_decay=0.0, seed=seed, eval_iters=10, sample_tokens=8, **small)

prompts = [ln.strip() for ln in open(os.path.join(common.ROOT, "prompts.txt"), encoding="utf-8")
           if ln.strip() and not ln.startswith("#")]
names = [n for k in ("girls", "boys") for n in llm_stories.read_recipe(llm_stories.RECIPE)[0][k]]
rng = random.Random(seed)


def beginning(story):
    """A story's first sentences and the rest (what a memorising model writes next); None if there is no rest."""
    cuts = [m.end() for m in re.finditer(r'[.!?]"?\s+', story)]
    return (story[:cuts[given - 1]].strip(), story[cuts[given - 1]:].strip()) if len(cuts) > given else None


def swap_names(text):
    """Every capitalised name of the recipe in the text replaced by another, the same one each time."""
    found = [n for n in names if re.search(rf"\b{n}\b", text)]
    swap = dict(zip(found, rng.sample([n for n in names if n not in found], len(found))))
    return re.sub(r"\b(" + "|".join(map(re.escape, found)) + r")\b", lambda m: swap[m.group(1)], text) if found else text


def complete(net, enc, starts):
    ids = [[enc.eot_token] + enc.encode_ordinary(s)[-(net.config.block_size // 2):] for s in starts]
    out = []
    for k in range(0, len(ids), 16):
        out += [enc.decode(t) for t in net.generate(ids[k:k + 16], max_new_tokens, temperature, stop_token=enc.eot_token)]
    return out


val = read_stories(os.path.join(common.WORK, "data", "corpus", "val.txt"))
fresh = (prompts + [b[0] for b in map(beginning, val) if b])[:completions]
results = {}
for label, (path, data) in {"studied": (main, "corpus"), "overfit": (overfit, few_data)}.items():
    train = read_stories(os.path.join(common.WORK, "data", data, "train.txt"))
    index = metrics.CorpusIndex(train)
    net, ckpt = load_checkpoint(path)
    enc = tokenizer.get_encoding(ckpt["tokenizer"])
    texts = complete(net, enc, fresh)
    closest = [index.closest(t)[0] for t in texts]
    rouge = {n: [metrics.rouge_n(t, train[c], n) if c is not None else 0.0 for t, c in zip(texts, closest)]
             for n in (1, 2, 3)}
    seen = [b for b in map(beginning, train) if b][:completions]
    starts, rests = zip(*seen)
    own = complete(net, enc, starts)
    swapped = complete(net, enc, [swap_names(s) for s in starts])
    mean = lambda xs: sum(xs) / len(xs)  # noqa: E731
    results[label] = dict(
        model=os.path.relpath(path, common.WORK), train_stories=len(train),
        rouge_closest={n: mean(v) for n, v in rouge.items()},
        rouge2_closest_over_0_5=mean([x > 0.5 for x in rouge[2]]),
        rouge2_continuation=mean([metrics.rouge_n(t, r, 2) for t, r in zip(own, rests)]),
        rouge2_continuation_names_swapped=mean([metrics.rouge_n(t, r, 2) for t, r in zip(swapped, rests)]),
        histogram=rouge[2], example=dict(beginning=starts[0], true=rests[0][:300], written=own[0][:300]))

print(f"\nLab 7: memorising or creating. Per model, {len(fresh)} completions of new beginnings (prompts.txt, then "
      f"val stories) and {len(seen)} of training beginnings ({given} sentences), at temperature {temperature:g}\n")
rows = [dict(name=k, **v) for k, v in results.items()]
print(common.table(rows, [("model", "name", "{}"), ("trained on", "train_stories", "{} stories"),
                          ("Rouge-1", lambda r: r["rouge_closest"][1], "{:.2f}"),
                          ("Rouge-2", lambda r: r["rouge_closest"][2], "{:.2f}"),
                          ("Rouge-3", lambda r: r["rouge_closest"][3], "{:.2f}"),
                          ("Rouge-2 > 0.5", "rouge2_closest_over_0_5", "{:.2f}"),
                          ("train beginning: vs true rest", "rouge2_continuation", "{:.2f}"),
                          ("names swapped", "rouge2_continuation_names_swapped", "{:.2f}")]))
print("\n(Rouge-n: the share of a completion's distinct word n-grams found in the closest training story;\n"
      f" 'vs true rest': Rouge-2 of what it wrote after a training story's first {given} sentences against how that\n"
      " story really went on.)")
for label, r in results.items():
    print(f"\n{label}, after a training beginning:\n  {r['example']['beginning']}\n  true: {r['example']['true']}"
          f"\n  written: {r['example']['written']}")
common.save(folder, results)


def histogram(plt):
    for label, r in results.items():
        plt.hist(r["histogram"], bins=20, range=(0, 1), alpha=0.6, label=label)
    plt.xlabel("Rouge-2 precision against the closest training story")
    plt.ylabel("completions")
    plt.legend()


common.plot(os.path.join(folder, "rouge2_histogram.png"), histogram)
