"""Key/value caches of a shared prompt prefix, computed once and reused by many rows.

transformers mutates a cache object in the forward pass, so the prefix is kept as
plain tensors and every use gets a fresh cache built from them.
"""

from __future__ import annotations

KV = list[tuple]  # per layer: (keys, values), each [batch, heads, tokens, head_dim]


def run_with_cache(model, input_ids, kv: KV | None = None, start=0, **kwargs):
    """Forward `input_ids` [batch, n] after the cached `kv`; returns (output, the grown kv).

    `start` is the first new token's position: an int, or a [batch] tensor when
    rows continue from different lengths (pass an `attention_mask` over cache + new
    tokens then, so each row skips the padding in its cache).
    """
    import torch
    from transformers import DynamicCache

    batch, n = input_ids.shape
    if kv is not None and kv[0][0].shape[0] != batch:
        kv = [(k.expand(batch, -1, -1, -1), v.expand(batch, -1, -1, -1)) for k, v in kv]
    cache = DynamicCache(ddp_cache_data=kv) if kv else DynamicCache()
    offsets = torch.arange(n, device=input_ids.device)
    positions = (start[:, None] + offsets) if torch.is_tensor(start) else (start + offsets).expand(batch, -1)
    out = model(input_ids=input_ids, cache=cache, position_ids=positions, use_cache=True, **kwargs)
    used = getattr(out, "cache", None) or out.past_key_values
    return out, [(layer.keys, layer.values) for layer in used.layers]
