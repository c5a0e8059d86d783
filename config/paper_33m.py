# The paper's TinyStories-33M shape (4 layers, hidden size 768, 16 heads) as our GPT.
# Its parameter count differs from the paper's: we use our 4,096-token BPE, not GPT-Neo's 50K vocabulary.
# Sized for one GPU:  python train.py config/paper_33m.py
from config.paper_recipe import *  # noqa: F401,F403 (the shared recipe)

out_dir = "out-33m"
n_layer = 4
n_head = 16
n_embd = 768
learning_rate = 0.0006
min_lr = 6e-05
