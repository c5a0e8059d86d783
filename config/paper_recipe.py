# The training recipe that the config/paper_*.py files share; each adds its model's shape.
# Sized for one GPU: 64 x 512 tokens x 2 accumulation steps = 65,536 tokens per step.
dataset = "tinystories"
block_size = 512
batch_size = 64
gradient_accumulation_steps = 2
max_iters = 20000
lr_decay_iters = 20000
warmup_iters = 500
eval_interval = 1000
eval_iters = 50
dropout = 0.0
