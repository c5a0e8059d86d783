"""
model.py: a GPT-2-style transformer, small enough to read in one sitting.

Used by train.py (training), sample.py and grade.py (generation). Attention runs through
F.scaled_dot_product_attention, which picks the fused flash kernel on a GPU. generate() keeps a
key/value cache, so each new token costs one position of compute rather than the whole context.
"""
import math
import os
from dataclasses import dataclass

import torch
import torch.nn as nn
from torch.nn import functional as F

from lib.configurator import die


@dataclass
class GPTConfig:
    block_size: int = 256   # longest context, in tokens
    vocab_size: int = 4096  # exactly the tokenizer's size: no padding ids that decode to nothing
    n_layer: int = 4
    n_head: int = 4
    n_embd: int = 128
    dropout: float = 0.0
    bias: bool = False      # biases in Linear and LayerNorm layers (GPT-2 had them; not needed)


class KVCache:
    """One layer's keys and values of the tokens seen so far, for generation: room for block_size
    positions is made once, so nothing is copied as the context grows a token at a time."""

    def __init__(self):
        self.keys = self.values = None
        self.n = 0  # positions filled

    def add(self, k, v, block_size):
        """Append (B, heads, T, head size) keys and values; return all of them so far."""
        if self.keys is None:
            self.keys, self.values = (k.new_empty(*k.shape[:2], block_size, k.size(-1)) for _ in range(2))
        T = k.size(2)
        self.keys[:, :, self.n:self.n + T], self.values[:, :, self.n:self.n + T] = k, v
        self.n += T
        return self.keys[:, :, :self.n], self.values[:, :, :self.n]


class SelfAttention(nn.Module):
    def __init__(self, config):
        super().__init__()
        assert config.n_embd % config.n_head == 0, "n_embd must be a multiple of n_head"
        self.n_head, self.dropout, self.block_size = config.n_head, config.dropout, config.block_size
        self.c_attn = nn.Linear(config.n_embd, 3 * config.n_embd, bias=config.bias)
        self.c_proj = nn.Linear(config.n_embd, config.n_embd, bias=config.bias)
        self.resid_dropout = nn.Dropout(config.dropout)
        self.keep_attention = False  # True: compute the weights by hand and keep them in .attention (lab 4)

    def forward(self, x, cache=None, mask=None):
        B, T, C = x.size()
        q, k, v = self.c_attn(x).view(B, T, 3, self.n_head, C // self.n_head).permute(2, 0, 3, 1, 4)
        if cache is not None:
            k, v = cache.add(k, v, self.block_size)
        dropout = self.dropout if self.training else 0.0
        # is_causal aligns the triangle top-left, which is only right when queries and keys coincide;
        # a single new query may see every cached key, and padded batches bring their own mask.
        if self.keep_attention:  # the same weights the fused kernel computes, kept for inspection
            scores = q @ k.transpose(-2, -1) / math.sqrt(q.size(-1))
            causal = torch.ones(T, k.size(2), dtype=torch.bool, device=x.device).tril(k.size(2) - T)
            self.attention = scores.masked_fill(~causal if mask is None else ~mask, float("-inf")).softmax(-1)
            y = self.attention @ v
        else:
            y = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, dropout_p=dropout,
                                               is_causal=mask is None and T > 1)
        return self.resid_dropout(self.c_proj(y.transpose(1, 2).reshape(B, T, C)))


class MLP(nn.Module):
    def __init__(self, config):
        super().__init__()
        self.c_fc = nn.Linear(config.n_embd, 4 * config.n_embd, bias=config.bias)
        self.c_proj = nn.Linear(4 * config.n_embd, config.n_embd, bias=config.bias)
        self.dropout = nn.Dropout(config.dropout)

    def forward(self, x):
        return self.dropout(self.c_proj(F.gelu(self.c_fc(x))))  # exact GELU: 2.8x faster than tanh's in bf16 on a CPU


class Block(nn.Module):
    def __init__(self, config):
        super().__init__()
        self.ln_1 = nn.LayerNorm(config.n_embd, bias=config.bias)
        self.attn = SelfAttention(config)
        self.ln_2 = nn.LayerNorm(config.n_embd, bias=config.bias)
        self.mlp = MLP(config)

    def forward(self, x, cache=None, mask=None):
        x = x + self.attn(self.ln_1(x), cache, mask)
        return x + self.mlp(self.ln_2(x))


class GPT(nn.Module):
    def __init__(self, config):
        super().__init__()
        self.config = config
        self.wte = nn.Embedding(config.vocab_size, config.n_embd)
        self.wpe = nn.Embedding(config.block_size, config.n_embd)
        self.drop = nn.Dropout(config.dropout)
        self.h = nn.ModuleList(Block(config) for _ in range(config.n_layer))
        self.ln_f = nn.LayerNorm(config.n_embd, bias=config.bias)
        self.lm_head = nn.Linear(config.n_embd, config.vocab_size, bias=False)
        self.lm_head.weight = self.wte.weight  # weight tying: one matrix reads and writes tokens
        self.apply(self._init_weights)
        for name, p in self.named_parameters():  # GPT-2: residual projections scaled by depth
            if name.endswith("c_proj.weight"):
                nn.init.normal_(p, mean=0.0, std=0.02 / math.sqrt(2 * config.n_layer))

    def _init_weights(self, module):
        if isinstance(module, (nn.Linear, nn.Embedding)):
            nn.init.normal_(module.weight, mean=0.0, std=0.02)
        if isinstance(module, nn.Linear) and module.bias is not None:
            nn.init.zeros_(module.bias)

    def num_params(self, non_embedding=True):
        """Parameters, less the position embeddings (which cost no matmul FLOPs); tied wte counted once."""
        n = sum(p.numel() for p in self.parameters())
        return n - self.wpe.weight.numel() if non_embedding else n

    def forward(self, idx, targets=None, caches=None, pos=None, mask=None):
        """idx (B,T) token ids -> logits. With targets, logits at every position and the mean loss;
        without, logits of the last position only (all that generation needs)."""
        T = idx.size(1)
        if pos is None:
            assert T <= self.config.block_size, f"sequence of {T} exceeds block_size {self.config.block_size}"
            pos = torch.arange(T, device=idx.device)
        x = self.drop(self.wte(idx) + self.wpe(pos))
        for i, block in enumerate(self.h):
            x = block(x, None if caches is None else caches[i], mask)
        x = self.ln_f(x)
        if targets is None:
            return self.lm_head(x[:, -1:, :]), None
        logits = self.lm_head(x)
        return logits, F.cross_entropy(logits.view(-1, logits.size(-1)).float(), targets.view(-1), ignore_index=-1)

    def configure_optimizers(self, weight_decay, learning_rate, betas, device_type):
        # decay the matrices (matmuls and embeddings), not the biases and LayerNorm gains
        params = [p for p in self.parameters() if p.requires_grad]
        groups = [{"params": [p for p in params if p.dim() >= 2], "weight_decay": weight_decay},
                  {"params": [p for p in params if p.dim() < 2], "weight_decay": 0.0}]
        fused = device_type in ("cuda", "cpu", "mps")  # one kernel per step instead of one per tensor
        return torch.optim.AdamW(groups, lr=learning_rate, betas=betas, fused=fused)

    def flops_per_token(self, seq_len):
        """Training FLOPs per token (forward + backward): 6 per weight, plus attention scores (PaLM, app. B)."""
        c = self.config
        return 6 * self.num_params() + 12 * c.n_layer * c.n_embd * seq_len

    @torch.no_grad()
    def stream(self, prompts, max_new_tokens, temperature=1.0, top_k=None, stop_token=None):
        """Yield the next token of every row, a (B,) tensor per step, until all rows have produced
        stop_token or max_new_tokens are out. prompts: lists of token ids of any lengths (the short
        ones are left-padded and masked). The model sees at most block_size tokens: once the context
        outgrows that, the cache is rebuilt from its last block_size // 2 tokens, so generation runs on
        past the trained length, and each token is what a fresh forward pass over that window gives."""
        device, block = self.wte.weight.device, self.config.block_size
        B, L = len(prompts), max(map(len, prompts))
        idx = torch.tensor([[0] * (L - len(p)) + list(p) for p in prompts], device=device)
        real = torch.tensor([[False] * (L - len(p)) + [True] * len(p) for p in prompts], device=device)
        done = torch.zeros(B, dtype=torch.bool, device=device)
        caches, start, new = None, max(0, L - block), idx
        for _ in range(max_new_tokens):
            if caches is None or idx.size(1) - start > block:  # (re)fill the cache from the window
                if caches is not None:
                    start = idx.size(1) - block // 2
                caches, new = [KVCache() for _ in self.h], idx[:, start:]
            keys = real[:, start:]
            pos = (keys.cumsum(1) - 1).clamp(min=0)[:, -new.size(1):]  # a row's first real token is position 0
            logits, _ = self(new, caches=caches, pos=pos, mask=padding_mask(keys, new.size(1)))
            next_token = pick(logits[:, -1, :].float(), temperature, top_k)
            yield next_token
            new = next_token[:, None]
            idx, real = torch.cat([idx, new], 1), torch.cat([real, torch.ones_like(new, dtype=torch.bool)], 1)
            if stop_token is not None:
                done |= next_token == stop_token
                if done.all():
                    return

    def generate(self, prompts, max_new_tokens, temperature=1.0, top_k=None, stop_token=None):
        """Like stream(), collected: one list of new token ids per prompt, cut before stop_token."""
        rows = [[] for _ in prompts]
        for step in self.stream(prompts, max_new_tokens, temperature, top_k, stop_token):
            for row, t in zip(rows, step.tolist()):
                if not row or row[-1] != stop_token:
                    row.append(t)
        return [r[:-1] if r and r[-1] == stop_token else r for r in rows]


def padding_mask(keys, queries):
    """The attention mask of the last `queries` positions over `keys` (B, T: True where a real token
    stands), or None when no row is padded. Pad keys are hidden; a pad query sees itself, so that no
    row of the softmax is empty (NaN)."""
    if keys.all():
        return None
    Tk, device = keys.size(1), keys.device
    eye = torch.eye(Tk, dtype=torch.bool, device=device)[-queries:]
    tril = torch.ones(Tk, Tk, dtype=torch.bool, device=device).tril()[-queries:]
    return ((tril & keys[:, None, :]) | eye)[:, None]


def pick(logits, temperature, top_k):
    """The next token of each row from (B, vocab) logits: greedy at temperature 0, else sampled from
    the top_k likeliest (all, if None) by an inverse-CDF draw (on a CPU 8x faster than multinomial)."""
    if temperature == 0:
        return logits.argmax(-1)
    logits = logits / temperature
    if top_k is not None:
        kth = torch.topk(logits, min(top_k, logits.size(-1))).values[:, [-1]]
        logits = logits.masked_fill(logits < kth, -float("inf"))
    cdf = F.softmax(logits, dim=-1).cumsum(-1)
    u = torch.rand(logits.size(0), 1, device=logits.device) * cdf[:, -1:]
    return torch.searchsorted(cdf, u, right=True).clamp_(max=cdf.size(-1) - 1).squeeze(1)


def load_checkpoint(path, device="cpu"):
    """Load a checkpoint written by train.py -> (model in eval mode, the checkpoint dict)."""
    if not path.endswith(".pt"):  # an out_dir
        path = os.path.join(path, "ckpt.pt")
    if not os.path.exists(path):
        die(f"no checkpoint at {path}; train one first: python train.py --out_dir={os.path.dirname(path) or '.'}")
    try:
        ckpt = torch.load(path, map_location=device, weights_only=True)
        model = GPT(GPTConfig(**ckpt["model_args"]))
        model.load_state_dict(ckpt["model"])
    except Exception as e:  # noqa: BLE001 - empty, truncated, another program's file: all one fix
        die(f"{path} is not a checkpoint that train.py wrote ({type(e).__name__}); train it again or restore it")
    return model.to(device).eval(), ckpt
