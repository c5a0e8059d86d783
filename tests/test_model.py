"""How model.py behaves: causal, exactly sized, and its cached generation equals a full recompute."""
import torch

from model import GPT, GPTConfig, KVCache


def tiny_model(**overrides):
    torch.manual_seed(0)
    args = dict(block_size=32, vocab_size=97, n_layer=2, n_head=2, n_embd=32)
    args.update(overrides)
    return GPT(GPTConfig(**args)).eval()


def all_logits(model, idx):
    # with targets the model returns logits at every position
    return model(idx, targets=torch.zeros_like(idx))[0]


def test_changing_a_later_token_leaves_earlier_logits_unchanged():
    model = tiny_model()
    idx = torch.randint(0, 97, (1, 20))
    changed = idx.clone()
    changed[0, 12] = (idx[0, 12] + 1) % 97
    a, b = all_logits(model, idx), all_logits(model, changed)
    assert torch.allclose(a[:, :12], b[:, :12], atol=1e-6)
    assert not torch.allclose(a[:, 12:], b[:, 12:])


def test_logits_cover_exactly_the_vocabulary_with_tied_weights():
    model = tiny_model()
    assert all_logits(model, torch.zeros(1, 4, dtype=torch.long)).shape == (1, 4, 97)
    assert model.lm_head.weight is model.wte.weight


def test_kv_cache_logits_equal_full_recompute_step_by_step():
    model = tiny_model()
    seq = torch.randint(0, 97, (2, 24))
    full = all_logits(model, seq)
    caches = [KVCache() for _ in model.h]
    with torch.no_grad():
        logits, _ = model(seq[:, :8], caches=caches, pos=torch.arange(8))  # prefill the prompt
        assert torch.allclose(logits[:, -1], full[:, 7], atol=1e-5)
        for t in range(8, 24):  # then one token at a time, reading the cache
            logits, _ = model(seq[:, t:t + 1], caches=caches, pos=torch.tensor([t]))
            assert torch.allclose(logits[:, -1], full[:, t], atol=1e-5), f"position {t}"


def test_greedy_generation_with_cache_matches_recompute_from_scratch():
    model = tiny_model()
    prompt = [5, 6, 7]
    cached = model.generate([prompt], 20, temperature=0)[0]
    seq = list(prompt)
    for _ in range(20):
        seq.append(all_logits(model, torch.tensor([seq]))[0, -1].argmax().item())
    assert cached == seq[3:]


def test_prompts_of_different_lengths_in_one_batch_equal_each_alone():
    model = tiny_model()
    prompts = [[1, 2], [3, 4, 5, 6, 7, 8, 9], [10, 11, 12, 13]]
    together = model.generate(prompts, 12, temperature=0)
    alone = [model.generate([p], 12, temperature=0)[0] for p in prompts]
    assert together == alone


def test_generation_past_block_size_equals_a_fresh_pass_over_the_same_window():
    """Past block_size the model sees a window: once the context outgrows block_size tokens, the last
    block_size // 2 of them, growing a token a step until it outgrows block_size again. Each cached
    step must give the token that a pass from scratch over exactly that window gives."""
    block = 16
    model = tiny_model(block_size=block)
    with torch.no_grad():  # sharpen a random model, so that its next token depends on the whole window
        for p in model.parameters():
            p.mul_(4)
    prompt = [1, 2, 3, 4, 5]
    out = model.generate([prompt], 50, temperature=0)[0]
    seq, start = prompt + out, 0
    for n in range(len(prompt), len(seq)):  # seq[:n] is the context that produced seq[n]
        if n - start > block:
            start = n - block // 2
        window = torch.tensor([seq[start:n]])
        assert all_logits(model, window)[0, -1].argmax().item() == seq[n], f"token {n}, window from {start}"
    assert len(out) == 50


def test_generation_stops_at_the_stop_token_and_drops_it():
    model = tiny_model()
    greedy = model.generate([[1, 2, 3]], 10, temperature=0)[0]
    stop = greedy[4]
    first = greedy.index(stop)
    steps = list(model.stream([[1, 2, 3]], 10, temperature=0, stop_token=stop))
    assert len(steps) == first + 1  # stopped right after producing it
    assert model.generate([[1, 2, 3]], 10, temperature=0, stop_token=stop)[0] == greedy[:first]


def test_one_row_stopping_early_does_not_stop_the_others():
    model = tiny_model()
    a, b = [1, 2, 3], [40, 41]
    stop = model.generate([a], 1, temperature=0)[0][0]  # row a stops at once
    out = model.generate([a, b], 8, temperature=0, stop_token=stop)
    assert out[0] == []
    assert out[1] == model.generate([b], 8, temperature=0, stop_token=stop)[0]


def test_top_k_one_is_greedy():
    model = tiny_model()
    assert model.generate([[9, 8]], 10, temperature=1.0, top_k=1) == model.generate([[9, 8]], 10, temperature=0)


def test_optimizer_decays_matrices_but_not_gains():
    model = tiny_model(bias=True)
    groups = model.configure_optimizers(0.1, 1e-3, (0.9, 0.95), "cpu").param_groups
    decayed = {id(p) for p in groups[0]["params"]}
    assert id(model.wte.weight) in decayed and id(model.h[0].attn.c_attn.weight) in decayed
    assert id(model.ln_f.weight) not in decayed and groups[1]["weight_decay"] == 0.0


def test_attention_kept_for_inspection_is_what_the_fused_kernel_computes():
    model = tiny_model()
    idx = torch.randint(0, 97, (2, 20))
    fused = all_logits(model, idx)
    for block in model.h:
        block.attn.keep_attention = True
    kept = all_logits(model, idx)
    assert torch.allclose(fused, kept, atol=1e-5)
    weights = model.h[0].attn.attention  # (batch, heads, queries, keys)
    assert weights.shape == (2, 2, 20, 20)
    assert torch.allclose(weights.sum(-1), torch.ones(2, 2, 20)) and weights.triu(1).abs().max() == 0  # causal rows
