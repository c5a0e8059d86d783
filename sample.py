"""
sample.py: write stories with a trained model, streaming them as they are generated.

    python sample.py --out_dir=out
    python sample.py --out_dir=out --start="Tom found a red ball" --num_samples=5
    python sample.py --out_dir=out-instruct --start="Words: ball, run, red\nSummary: Tom finds a ball.\nStory:"
    python sample.py --out_dir=out-instruct --start=FILE:prompt.txt

The tokenizer travels inside the checkpoint, so no data folder is needed.
"""
import codecs

import torch

from lib import tokenizer
from lib.configurator import COUNT, POSITIVE, configure, die
from lib.device import precision
from model import load_checkpoint

out_dir = "out"  # folder holding ckpt.pt
start = ""  # the story's beginning ("\n" makes a line break), or FILE:path to read it from; empty = from scratch
num_samples = 3
max_new_tokens = 400  # a story usually ends (at <|endoftext|>) well before this
temperature = 0.8  # 1.0 samples the model as it is; lower is safer and blander; 0 is greedy
top_k = 0  # sample only from the k likeliest tokens; 0 = all
seed = 1337
device = "auto"
dtype = "auto"
configure(globals(), {"num_samples": POSITIVE, "max_new_tokens": POSITIVE, "top_k": COUNT,
                      "temperature": (lambda t: 0 <= t < float("inf"), "0 (greedy) or more")})

device, dtype, _, autocast = precision(device, dtype)
torch.manual_seed(seed)
model, ckpt = load_checkpoint(out_dir, device)
enc = tokenizer.get_encoding(ckpt["tokenizer"])
if start.startswith("FILE:"):
    try:
        start = open(start[5:], encoding="utf-8").read()
    except OSError:
        die(f"cannot read the prompt file {start[5:]!r}; pass an existing file, or the text itself: --start=\"Once...\"")
    except UnicodeDecodeError:
        die(f"the prompt file {start[5:]!r} is not UTF-8 text; save it as UTF-8")
else:
    start = start.replace("\\n", "\n")  # a shell passes "\n" on as two characters; an instruct header needs lines
# training saw <|endoftext|> before every story, so it is how a story begins
prompt = [enc.eot_token] + enc.encode_ordinary(start.strip())
if len(prompt) >= model.config.block_size:
    die(f"the start is {len(prompt)} tokens, the model's context only {model.config.block_size}; shorten it")

for i in range(num_samples):
    print(start.strip(), end="", flush=True)
    utf8 = codecs.getincrementaldecoder("utf-8")(errors="replace")  # a token can end mid-character
    with autocast:
        for token in model.stream([prompt], max_new_tokens, temperature, top_k or None, stop_token=enc.eot_token):
            if token.item() == enc.eot_token:
                break
            print(utf8.decode(enc.decode_single_token_bytes(token.item())), end="", flush=True)
    print(utf8.decode(b"", final=True) + ("\n" + "-" * 40 if i < num_samples - 1 else ""))
