"""Classification by label log-likelihood, with the prompt's KV cache shared.

For each query: the prompt runs once (its common prefix with every other prompt
of the call runs once per call), then all labels run as one batch on a copy of
the prompt's cache. Cost per query ~ (prompt - shared prefix) + labels x label
length tokens, instead of labels x (prompt + label) for the naive way.
"""

from __future__ import annotations

import time

import numpy as np

from adaptlab.engine.kv import prefix_kv, run_with_cache
from adaptlab.solver import Progress


def common_prefix(sequences: list[list[int]]) -> list[int]:
    """The longest list every sequence starts with."""
    if not sequences:
        return []
    first = sequences[0]
    n = min(len(s) for s in sequences)
    for seq in sequences[1:]:
        i = 0
        while i < n and seq[i] == first[i]:
            i += 1
        n = i
    return first[:n]


def label_logprobs(
    model,
    prompts: list[list[int]],
    labels: list[list[int]],
    device: str,
    progress: Progress | None = None,
    max_group: int = 16,
    max_cached_tokens: int = 16384,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Summed log-probability of each label's ids after each prompt.

    The prompts' common prefix runs once per call. Then each group of queries runs
    in one forward pass on a copy of its cache: a row per query holding the query's
    own tokens (left-padded to the group's longest) followed by every label packed one
    after another, with a mask that lets each label see the prompt and its own earlier
    tokens only, and positions that restart after the prompt for each label. One pass
    per group, and the cache is copied once per query, not once per (query, label).
    Left padding puts every query's last token, whose logits score each label's first
    token, in the same column, so only that column and the labels' get logits: the
    output layer is 49,152 wide, and a few-shot group of 16 queries x ~170 positions
    made ~0.5 GB of fp32 logits (twice that with log-softmax) to read ~40 positions.

    Groups hold at most `max_group` queries and `max_cached_tokens` cached tokens in
    all (SmolLM2-135M keeps 46 KB per token in fp32: 16k tokens ~ 0.75 GB).
    Returns (scores [queries, labels], label lengths [labels], seconds per query);
    divide scores by lengths for the length-normalised choice. Queries of a group
    share its wall time; the shared prefix's one-off cost goes to the first group.
    """
    import torch

    if not labels or any(not ids for ids in labels):
        raise ValueError("every label needs at least one token")
    # Keep at least one token of every prompt out of the shared part: its logits
    # predict each label's first token.
    shared = common_prefix(prompts)[: max(0, min(len(p) for p in prompts) - 1)] if prompts else []
    n_labels = len(labels)
    # Every label token but the last is fed; each fed token predicts the next one.
    packed = [t for ids in labels for t in ids[:-1]]
    segment = torch.tensor([j for j, ids in enumerate(labels) for _ in ids[:-1]], device=device, dtype=torch.long)
    offset = torch.tensor([t for ids in labels for t in range(len(ids) - 1)], device=device, dtype=torch.long)
    targets = torch.tensor([t for ids in labels for t in ids[1:]], device=device, dtype=torch.long)
    first_tokens = torch.tensor([ids[0] for ids in labels], device=device)
    pad = labels[0][-1]
    lengths = np.array([len(ids) for ids in labels], dtype=np.float64)
    scores = np.zeros((len(prompts), n_labels))
    seconds = np.zeros(len(prompts))
    longest = max((len(p) for p in prompts), default=1)
    group_size = max(1, min(max_group, max_cached_tokens // (longest + len(packed))))
    clock = time.perf_counter()

    with torch.inference_mode():
        prefix = prefix_kv(model, shared, device)
        for start in range(0, len(prompts), group_size):
            rests = [p[len(shared) :] for p in prompts[start : start + group_size]]
            n, widest = len(rests), max(len(r) for r in rests)
            own = torch.tensor([len(r) for r in rests], device=device)
            ids = torch.tensor([[pad] * (widest - len(r)) + r + packed for r in rests], device=device)
            mask = _packed_label_mask(len(shared), own, widest, segment, offset)
            query = (torch.arange(widest, device=device)[None] - (widest - own)[:, None]).clamp(
                min=0
            )  # the padding's positions are never attended
            positions = len(shared) + torch.cat([query, own[:, None] + offset[None]], dim=1)
            out, _ = run_with_cache(
                model, ids, prefix, positions=positions, attention_mask=mask, logits_to_keep=len(packed) + 1
            )
            logp = torch.log_softmax(
                out.logits.float(), dim=-1
            )  # [n, 1 + packed, vocab]: the query's last token, then the labels'
            total = logp[:, 0, first_tokens]  # each label's first token
            if len(packed):
                later = logp[:, 1:].gather(-1, targets.expand(n, -1)[..., None])[..., 0]  # [n, packed]
                total = total.index_add(1, segment, later)
            scores[start : start + n] = total.cpu().numpy()
            now = time.perf_counter()
            seconds[start : start + n], clock = (now - clock) / n, now
            if progress:
                progress(n)
    return scores, lengths, seconds


def _packed_label_mask(prefix: int, own, widest: int, segment, offset):
    """Boolean [rows, 1, new tokens, prefix + new tokens]: who may attend to whom (True = may)."""
    import torch

    device = own.device
    n, k = len(own), len(segment)
    q = torch.arange(widest, device=device)
    real = q[None, :] >= (widest - own)[:, None]  # [rows, widest]: the query's own tokens (left padding before them)
    mask = torch.zeros(n, widest + k, prefix + widest + k, dtype=torch.bool, device=device)
    mask[:, :, :prefix] = True  # everyone sees the shared prefix
    causal = q[:, None] >= q[None, :]
    # the query's tokens: causal over its own tokens; a padding token sees itself too (a row that sees nothing gives
    # NaN)
    mask[:, :widest, prefix : prefix + widest] = (causal[None] & real[:, None, :]) | torch.eye(
        widest, dtype=torch.bool, device=device
    )[None]
    mask[:, widest:, prefix : prefix + widest] = real[:, None, :]  # labels see the whole query, not its padding
    same_label = (segment[:, None] == segment[None, :]) & (offset[None, :] <= offset[:, None])
    mask[:, widest:, prefix + widest :] = same_label  # each label sees its own earlier tokens only
    return mask[:, None]
