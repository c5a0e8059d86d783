# The paper's TinyStories-1Layer-21M shape (1 layer, hidden size 1024, 16 heads) as our GPT.
# Its parameter count differs from the paper's: we use our 4,096-token BPE, not GPT-Neo's 50K vocabulary.
# Sized for one GPU:  python train.py config/paper_1layer_21m.py
from config.paper_recipe import *  # noqa: F401,F403 (the shared recipe)

out_dir = "out-1layer_21m"
n_layer = 1
n_head = 16
n_embd = 1024
learning_rate = 0.0006
min_lr = 6e-05
