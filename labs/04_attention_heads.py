"""
Lab 4, attention heads: what do the heads of a small model look at? For every head, over val
stories: how far back it looks on average, how much it looks at the token just before, and how much
a name or object looks back at its own earlier mentions (against what looking anywhere would give).
A table labels each head by distance or by meaning; heatmaps show them on a story that repeats a
name. For lab 1's one-block model and its deepest one. The handout is labs/04_attention_heads.md.

    python labs/04_attention_heads.py                     # a minute once lab 1 has run (else it trains them)
    python labs/04_attention_heads.py --models=out        # any checkpoints
"""
import os
from collections import Counter

import torch

import common
from lib import tokenizer
from lib.configurator import POSITIVE, configure
from lib.corpus import read_stories
from model import load_checkpoint

models = ""  # checkpoint folders, comma-separated; default: lab 1's 1-layer and 4-layer models
stories = 100  # val stories the scores average over
story = ("Lily had a little dog named Max. Every day, Lily and Max went to the park. One day, Max saw a big red "
         "ball under a tree. Lily threw the ball, and Max ran after it. Max brought the ball back to Lily, and Lily "
         "gave Max a hug.")
seed = 1337  # of lab 1's models, when this lab trains them
tiny = False  # the size tests/test_labs.py runs
configure(globals(), {"stories": POSITIVE})
if tiny:
    stories = 4

common.ensure_data()
folders = [m for m in models.split(",") if m]
if not folders:
    small = dict(n_embd=32, block_size=32, batch_size=4, flops=2e9) if tiny else {}
    folders = [m["out"] for m in common.depth_models([1, 4], seed=seed, **small)]
val = read_stories(os.path.join(common.WORK, "data", "corpus", "val.txt"), limit=stories)


@torch.no_grad()
def attention(model, ids):
    """Every layer's attention weights on one sequence: [layer] -> (heads, T, T)."""
    model(torch.tensor([ids]), targets=torch.tensor([ids]))
    return [block.attn.attention[0] for block in model.h]


def head_scores(model, enc):
    """Per (layer, head): mean distance looked back, weight on the previous token, and the weight a
    repeated content word puts on its earlier mentions divided by what uniform attention would put."""
    counts = Counter(i for text in val for i in enc.encode_ordinary(text))
    common_ids = {i for i, _ in counts.most_common(150)}  # "the", "and", ".": repeats that name no one
    sums = {}
    for text in val:
        ids = [enc.eot_token] + enc.encode_ordinary(text)[:model.config.block_size - 1]
        t = torch.tensor(ids)
        T = len(ids)
        dist = (torch.arange(T)[:, None] - torch.arange(T)[None, :]).clamp(min=0).float()
        same = (t[:, None] == t[None, :]).tril(-1)  # earlier positions holding the same token
        content = torch.tensor([i > 0 and ids[i] not in common_ids and bool(same[i].any()) for i in range(T)])
        uniform = same.sum(1).float() / torch.arange(1, T + 1)
        for layer, att in enumerate(attention(model, ids)):
            for head in range(att.size(0)):
                a = att[head]
                s = sums.setdefault((layer, head), [0.0, 0.0, 0.0, 0.0, 0])
                s[0] += (a * dist).sum(1)[1:].mean().item()
                s[1] += a.diagonal(-1).mean().item()
                if content.any():
                    s[2] += (a * same).sum(1)[content].mean().item()
                    s[3] += uniform[content].mean().item()
                s[4] += 1
    rows = []
    for (layer, head), (d, prev, mention, base, n) in sorted(sums.items()):
        ratio = mention / base if base else 0.0
        kind = ("previous token" if prev / n > 0.4 else "by meaning" if ratio > 2 else "by distance" if d / n < 5
                else "broad")
        rows.append(dict(layer=layer, head=head, distance=d / n, previous=prev / n, mentions=mention / n,
                         mentions_vs_uniform=ratio, kind=kind))
    return rows


results = {}
for folder in folders:
    model, ckpt = load_checkpoint(folder)
    enc = tokenizer.get_encoding(ckpt["tokenizer"])
    for block in model.h:
        block.attn.keep_attention = True
    name = os.path.relpath(folder, common.WORK)
    results[name] = head_scores(model, enc)
    print(f"\nLab 4: the heads of {name} ({model.config.n_layer} layers x {model.config.n_head} heads), over "
          f"{len(val)} val stories\n")
    print(common.table(results[name], [("layer", "layer", "{}"), ("head", "head", "{}"),
                                       ("mean distance", "distance", "{:.1f}"), ("previous token", "previous", "{:.2f}"),
                                       ("on earlier mentions", "mentions", "{:.2f}"),
                                       ("x uniform", "mentions_vs_uniform", "{:.1f}"), ("looks", "kind", "{}")]))
    ids = ([enc.eot_token] + enc.encode_ordinary(story))[:model.config.block_size]
    maps = attention(model, ids)
    labels = [enc.decode([i]).replace("<|endoftext|>", "^") for i in ids]

    def heatmaps(plt, maps=maps, labels=labels, rows=results[name]):
        n = len(rows)
        for k, r in enumerate(rows):
            ax = plt.subplot((n + 3) // 4, min(4, n), k + 1)
            ax.imshow(maps[r["layer"]][r["head"]].numpy(), cmap="viridis")
            ax.set_title(f"L{r['layer']} H{r['head']}: {r['kind']}", fontsize=7)
            ax.set_xticks(range(len(labels)))
            ax.set_xticklabels(labels, rotation=90, fontsize=3)
            ax.set_yticks(range(len(labels)))
            ax.set_yticklabels(labels, fontsize=3)
    size = (3 * min(4, len(results[name])), 3 * ((len(results[name]) + 3) // 4) + 0.5)
    common.plot(os.path.join(common.lab_dir("04_attention_heads"), f"heads_{os.path.basename(folder)}.png"), heatmaps,
                size)
    del model

common.save(common.lab_dir("04_attention_heads"), {"stories": len(val), "models": results})
