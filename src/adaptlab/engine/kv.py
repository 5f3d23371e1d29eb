"""Key/value caches of a shared prompt prefix, computed once and reused by many rows.

transformers mutates a cache object in the forward pass, so the prefix is kept as
plain tensors and every use gets a fresh cache built from them.
"""

from __future__ import annotations

KV = list[tuple]  # per layer: (keys, values), each [batch, heads, tokens, head_dim]


def run_with_cache(model, input_ids, kv: KV | None = None, start: int = 0, positions=None, **kwargs):
    """Forward `input_ids` [batch, n] after the cached `kv`; returns (output, the grown kv).

    New tokens take positions start, start+1, ... unless `positions` [batch, n] says otherwise.
    """
    import torch
    from transformers import DynamicCache

    batch, n = input_ids.shape
    if kv is not None and kv[0][0].shape[0] != batch:
        kv = [(k.expand(batch, -1, -1, -1), v.expand(batch, -1, -1, -1)) for k, v in kv]
    cache = DynamicCache(ddp_cache_data=kv) if kv else DynamicCache()
    if positions is None:
        positions = (start + torch.arange(n, device=input_ids.device)).expand(batch, -1)
    out = model(input_ids=input_ids, cache=cache, position_ids=positions, use_cache=True, **kwargs)
    used = getattr(out, "cache", None) or out.past_key_values
    return out, [(layer.keys, layer.values) for layer in used.layers]


def prefix_kv(model, ids: list[int], device: str) -> KV | None:
    """Keys and values of a prefix shared by many rows (computed once, batch 1), or None when it is empty."""
    import torch

    if not ids:
        return None
    return run_with_cache(model, torch.tensor([ids], device=device), logits_to_keep=1)[1]
