# A 4-layer model for a 2-core laptop CPU, on the shipped corpus:
#   python prepare.py && python train.py config/train_cpu.py
out_dir = "out-cpu"
dataset = "corpus"
n_layer = 4
n_head = 4
n_embd = 192
block_size = 256
batch_size = 16
learning_rate = 2e-3
max_iters = 3000
lr_decay_iters = 3000
eval_interval = 500
