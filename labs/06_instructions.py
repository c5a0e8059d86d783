"""
Lab 6, following instructions: trained on the corpus's instruct form (each story after a random
subset of Words, Features, Summary and Random sentence, in random order), does a small model do what
the header asks, even for a combination of instructions it never saw? One combination (Words with
Summary, by default) is held out of training; the lab then asks for it and for seen ones, and counts
the required words used, the given sentence included and Dialogue shown. The handout is
labs/06_instructions.md.

    python labs/06_instructions.py                        # about 8 minutes on a 2-core CPU
    python labs/06_instructions.py --holdout=Features,Random sentence
"""
import os
import random
import re

import torch

import common
from lib import llm_stories, tokenizer
from lib.configurator import POSITIVE, configure
from lib.corpus import checked_corpus, read_corpus, sentences, split_rows, words
from model import load_checkpoint

holdout = "Words,Summary"  # the combination of instructions training never shows
n_layer = 2
n_embd = 128
n_head = 4
max_iters = 1500
batch_size = 16
block_size = 256
learning_rate = 3e-3
stories = 40  # val stories each combination is asked for
temperature = 0.8
seed = 1337
tiny = False  # seconds, not minutes: the size tests/test_labs.py runs
configure(globals(), {"max_iters": POSITIVE, "stories": POSITIVE})
if tiny:
    n_embd, max_iters, batch_size, block_size, stories = 32, 10, 4, 64, 3

held = tuple(k.strip() for k in holdout.split(","))
name = "corpus-instruct-holdout-" + "-".join(k.replace(" ", "") for k in held)
if not os.path.exists(os.path.join(common.WORK, "data", name, "meta.json")):
    print(f"preparing data/{name}: the instruct form, with {' + '.join(held)} held out of train ...", flush=True)
    common.run("prepare.py", "--dataset=corpus-instruct", f"--holdout={holdout}", f"--name={name}")
folder = common.lab_dir("06_instructions")
out = os.path.join(folder, "model")
common.train(out, dataset=name, n_layer=n_layer, n_embd=n_embd, n_head=n_head, max_iters=max_iters,
             lr_decay_iters=max_iters, batch_size=batch_size, block_size=block_size, learning_rate=learning_rate,
             eval_interval=max(1, max_iters // 5), warmup_iters=min(100, max_iters // 10), seed=seed, eval_iters=10,
             sample_tokens=8)

COMBINATIONS = [("Words",), ("Words", "Features"), ("Words", "Random sentence"), ("Features", "Random sentence"), held]
val = [r for r in split_rows(read_corpus(checked_corpus()))["val"] if "Dialogue" in r["features"]][:stories]
model, ckpt = load_checkpoint(out)
enc = tokenizer.get_encoding(ckpt["tokenizer"])
irregular = llm_stories.read_recipe(llm_stories.RECIPE)[1]
rng = random.Random(seed)
torch.manual_seed(seed)


def header(row, kinds):
    lines = {"Words": f"Words: {', '.join(row['words'])}", "Features": f"Features: {', '.join(row['features'])}",
             "Summary": f"Summary: {row['summary']}", "Random sentence": f"Random sentence: {sentences(row['story'])[2]}"}
    order = list(kinds)
    rng.shuffle(order)
    return "\n".join(lines[k] for k in order) + "\nStory: \n"


def word_share(text, required):
    """The share of the required words the text uses (their -s, -ed, -ing forms count)."""
    return sum(llm_stories.uses(text, w, irregular=irregular.get(w, ())) for w in required) / len(required)


def content(sentence):  # the words of a sentence that say something (longer than 3 letters)
    return [w for w in words(sentence) if len(w) > 3] or words(sentence)


# Each measure beside its control: the same story measured against ANOTHER story's words or sentence,
# what a model that ignored the header would score.
results, examples = [], {}
others = val[1:] + val[:1]
for kinds in COMBINATIONS:
    contexts = [header(r, kinds) for r in val]
    ids = [[enc.eot_token] + enc.encode_ordinary(c)[-(block_size // 2):] for c in contexts]
    texts = [enc.decode(t) for t in model.generate(ids, 40 if tiny else 300, temperature, stop_token=enc.eot_token)]
    mean = lambda xs: sum(xs) / len(xs)  # noqa: E731
    row = dict(instructions=" + ".join(kinds), seen="held out" if kinds == held else "seen")
    if "Words" in kinds:
        row["words"] = mean([word_share(t, r["words"]) for t, r in zip(texts, val)])
        row["words_control"] = mean([word_share(t, o["words"]) for t, o in zip(texts, others)])
    if "Random sentence" in kinds:
        row["sentence"] = mean([word_share(t, content(sentences(r["story"])[2])) for t, r in zip(texts, val)])
        row["sentence_control"] = mean([word_share(t, content(sentences(o["story"])[2])) for t, o in zip(texts, others)])
    if "Features" in kinds:
        row["dialogue"] = mean([bool(re.search(r'"[^"\n]*\w[^"\n]*"', t)) for t in texts])
    results.append(row)
    examples[" + ".join(kinds)] = contexts[0] + texts[0]

print(f"\nLab 6: following instructions. {os.path.relpath(out, common.WORK)}, trained without {' + '.join(held)}; "
      f"{len(val)} val stories (all with Dialogue) asked each way\n")


def pair(key):
    return lambda r: "-" if key not in r else f"{r[key]:.2f} ({r[key + '_control']:.2f})"


print(common.table(results, [("instructions", "instructions", "{}"), ("in training", "seen", "{}"),
                             ("required words used", pair("words"), "{}"),
                             ("words of the sentence", pair("sentence"), "{}"),
                             ("Dialogue shown", lambda r: "-" if "dialogue" not in r else f"{r['dialogue']:.2f}", "{}")]))
print("(in brackets: the same stories scored against another story's words or sentence, what ignoring the header gives)")
print(f"\nheld out, for example:\n{examples[' + '.join(held)]}")
print("\nThe teacher's instruction-following grade, where a judge is available:\n"
      f"  python grade.py --out_dir={os.path.relpath(out, common.WORK)} --num_prompts=20 --samples_per_prompt=3 --batch=write")
common.save(folder, {"holdout": list(held), "stories": len(val), "combinations": results, "examples": examples})
