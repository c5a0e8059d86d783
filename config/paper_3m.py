# The paper's TinyStories-3M shape (8 layers, hidden size 128, 16 heads) as our GPT.
# Its parameter count differs from the paper's: we use our 4,096-token BPE, not GPT-Neo's 50K vocabulary.
# Sized for one GPU:  python train.py config/paper_3m.py
from config.paper_recipe import *  # noqa: F401,F403 (the shared recipe)

out_dir = "out-3m"
n_layer = 8
n_head = 16
n_embd = 128
learning_rate = 0.0015
min_lr = 0.00015
