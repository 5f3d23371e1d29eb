"""Batched greedy generation with left padding, stopping at the end of the turn."""

from __future__ import annotations

from adaptlab.solver import Progress


def generate(model, tokenizer, prompts: list[list[int]], eot_id: int, device: str, max_new_tokens: int = 128, batch_size: int = 8, progress: Progress | None = None, stop: tuple[str, ...] = ()) -> list[tuple[str, int]]:
    """Greedy completions of each prompt: (text up to the end of turn or the first stop string, tokens generated)."""
    import torch

    stops = [eot_id] + ([tokenizer.eos_token_id] if tokenizer.eos_token_id not in (None, eot_id) else [])
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else eot_id
    results: list[tuple[str, int]] = []
    for start in range(0, len(prompts), batch_size):
        batch = prompts[start : start + batch_size]
        width = max(len(p) for p in batch)
        input_ids = torch.tensor([[pad] * (width - len(p)) + p for p in batch], device=device)
        mask = torch.tensor([[0] * (width - len(p)) + [1] * len(p) for p in batch], device=device)
        with torch.inference_mode():
            out = model.generate(input_ids=input_ids, attention_mask=mask, max_new_tokens=max_new_tokens, do_sample=False, eos_token_id=stops, pad_token_id=pad)
        for row in out[:, width:].tolist():
            cut = next((i for i, t in enumerate(row) if t in stops), len(row))
            text = tokenizer.decode(row[:cut], skip_special_tokens=True)
            ends = [i for i in (text.find(s) for s in stop if s) if i >= 0]
            results.append(((text[: min(ends)] if ends else text).strip(), min(cut + 1, len(row))))
        if progress:
            progress(len(batch))
    return results
