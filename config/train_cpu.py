# A model that a 2-core laptop CPU trains in about 15 minutes on the built-in stories:
#   python prepare.py --dataset=synthetic && python train.py config/train_cpu.py
out_dir = "out-cpu"
dataset = "synthetic"
n_layer = 4
n_head = 4
n_embd = 192
block_size = 256
batch_size = 16
learning_rate = 2e-3
max_iters = 3000
lr_decay_iters = 3000
eval_interval = 500
