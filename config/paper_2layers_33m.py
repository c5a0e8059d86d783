# The paper's TinyStories-2Layers-33M shape (2 layers, hidden size 1024, 16 heads) as our GPT.
# Its parameter count differs from the paper's: we use our 4,096-token BPE, not GPT-Neo's 50K vocabulary.
# Sized for one GPU:  python train.py config/paper_2layers_33m.py
from config.paper_recipe import *  # noqa: F401,F403 (the shared recipe)

out_dir = "out-2layers_33m"
n_layer = 2
n_head = 16
n_embd = 1024
learning_rate = 0.0006
min_lr = 6e-05
