"""Classification by label log-likelihood, with the prompt's KV cache shared.

For each query: the prompt runs once (its common prefix with every other prompt
of the call runs once per call), then all labels run as one batch on a copy of
the prompt's cache. Cost per query ~ (prompt - shared prefix) + labels x label
length tokens, instead of labels x (prompt + label) for the naive way.
"""

from __future__ import annotations

import time

import numpy as np

from adaptlab.engine.kv import run_with_cache
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


def label_logprobs(model, prompts: list[list[int]], labels: list[list[int]], device: str, progress: Progress | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Summed log-probability of each label's ids after each prompt.

    Returns (scores [queries, labels], label lengths [labels], seconds per
    query); divide scores by lengths for the length-normalised choice. The shared
    prefix's one-off cost is counted in the first query's seconds.
    """
    import torch

    if not labels or any(not ids for ids in labels):
        raise ValueError("every label needs at least one token")
    # Keep at least one token of every prompt out of the shared part: its logits
    # predict each label's first token.
    shared = common_prefix(prompts)[: max(0, min(len(p) for p in prompts) - 1)] if prompts else []
    n_labels, width = len(labels), max(len(ids) for ids in labels)
    pad = labels[0][-1]  # right padding: causal attention never lets it reach real tokens
    label_ids = torch.tensor([ids + [pad] * (width - len(ids)) for ids in labels], device=device)
    label_mask = torch.tensor([[1.0] * len(ids) + [0.0] * (width - len(ids)) for ids in labels], device=device)
    lengths = np.array([len(ids) for ids in labels], dtype=np.float64)
    scores = np.zeros((len(prompts), n_labels))
    seconds = np.zeros(len(prompts))
    clock = time.perf_counter()

    with torch.inference_mode():
        prefix = None
        if shared:
            _, prefix = run_with_cache(model, torch.tensor([shared], device=device), logits_to_keep=1)
        for q, prompt in enumerate(prompts):
            rest = torch.tensor([prompt[len(shared) :]], device=device)
            out, query_kv = run_with_cache(model, rest, prefix, len(shared), logits_to_keep=1)
            first = torch.log_softmax(out.logits[0, -1].float(), dim=-1)[label_ids[:, 0]]
            total = first.clone()
            if width > 1:
                out, _ = run_with_cache(model, label_ids[:, :-1], query_kv, len(prompt))
                logp = torch.log_softmax(out.logits.float(), dim=-1)
                rest_lp = logp.gather(-1, label_ids[:, 1:, None])[..., 0]
                total += (rest_lp * label_mask[:, 1:]).sum(dim=1)
            scores[q] = total.cpu().numpy()
            now = time.perf_counter()
            seconds[q], clock = now - clock, now
            if progress:
                progress(1)
    return scores, lengths, seconds
