"""
Lab 1, one block: is a single transformer block enough to write English? Trains 1, 2 and 4 layers
with the same training FLOPs on the shipped corpus, then compares their loss curves, their stories
and grade.py's offline measures. The handout is labs/01_one_block.md.

    python labs/01_one_block.py                  # about 8 minutes on a 2-core CPU
    python labs/01_one_block.py --layers=1,2,4,8 --flops=3e13
"""
import os

import common
from lib.configurator import POSITIVE, configure

layers = "1,2,4"  # the depths to compare, comma-separated
n_embd = 128
n_head = 4
flops = 1.5e13  # training FLOPs each model gets (train.py's count: 6 per weight per token, plus attention)
block_size = 256
batch_size = 16
learning_rate = 3e-3
seed = 1337
prompt = "Mia had a red ball that she loved very much. One day she took it to the park, and"
tiny = False  # seconds, not minutes: the size tests/test_labs.py runs
configure(globals(), {"n_embd": POSITIVE, "n_head": POSITIVE, "block_size": POSITIVE, "batch_size": POSITIVE})
if tiny:
    n_embd, block_size, batch_size, flops = 32, 32, 4, 2e9

common.ensure_data()
folder = common.lab_dir("01_one_block")
models = common.depth_models([int(x) for x in layers.split(",")], n_embd, n_head, flops, block_size, batch_size,
                             learning_rate, seed, folder)

grading = ["--num_prompts=20", "--samples_per_prompt=3", "--max_new_tokens=200" if not tiny else "--max_new_tokens=8"]
grades = common.offline_metrics([m["out"] for m in models], *grading)
for m in models:
    m.update({k: grades[m["out"]].get(k) for k in ("no_new_names", "no_self_pairs", "split_sentences_finished",
                                                    "distinct_2", "repeated_4gram", "copied_8gram_share")})
    m["story"] = common.story(m["out"], prompt, max_new_tokens=16 if tiny else 400)

print(f"\nLab 1: one block. {flops:.1e} training FLOPs each, {n_embd} wide, on the shipped corpus\n")
print(common.table(models, [("layers", "layers", "{}"), ("params", lambda m: m["params"] / 1e6, "{:.2f}M"),
                            ("iters", "iters", "{}"), ("seconds", "train_s", "{:.0f}"), ("val bpb", "val_bpb", "{:.3f}"),
                            ("no new names", "no_new_names", "{:.2f}"), ("no self-pairs", "no_self_pairs", "{:.2f}"),
                            ("cut sentence finished", "split_sentences_finished", "{:.2f}"),
                            ("repeated 4-grams", "repeated_4gram", "{:.3f}")]))
for m in models:
    print(f"\n--- {m['layers']} layer{'s' * (m['layers'] > 1)} ---\n{m['story']}")
print("\nThe teacher's grades, where a judge is available (an API key, a local server, or a batch; these\n"
      "settings reuse the completions above, and --reference puts 20 of the corpus's own stories beside them):\n"
      f"  python grade.py --out_dir={','.join(os.path.relpath(m['out'], common.WORK) for m in models)} "
      f"{' '.join(grading)} --reference=20 --batch=write")

common.save(folder, {"flops": flops, "n_embd": n_embd, "models": [{k: v for k, v in m.items() if k != "out"}
                                                                  for m in models]})


def curves(plt):
    for m in models:
        plt.plot([r["flops"] for r in m["log"]], [r["val_bpb"] for r in m["log"]], marker="o", label=f"{m['layers']} layers")
    plt.xlabel("training FLOPs")
    plt.ylabel("val bits per byte")
    plt.xscale("log")
    plt.legend()
    plt.title("Lab 1: equal FLOPs, different depth")


common.plot(os.path.join(folder, "curves.png"), curves)
