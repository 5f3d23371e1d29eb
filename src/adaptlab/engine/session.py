"""`Session`: one batch being decoded greedily; rows join it between steps and leave it when they end.

`generate` (engine/generate.py) runs each of its batches as a session that starts full and
only shrinks; the server (serve/worker.py, through engine/live.py) keeps one running and lets
requests join at the next step, so a request that arrives while a batch runs does not wait
for the whole batch.

How the cache is laid out: one row per batch position, columns [shared prefix | left padding |
the row's own prompt and answer], masked where padded. Each row keeps its own positions, so
rows of different lengths and ages decode together.

- A join runs the newcomers' prompts (the prefill) in a cache of their own, then builds one
  cache of both: every live row's own columns right-aligned after the prefix, zeros where a
  row is padded (masked, but finite: a masked NaN would still poison attention), and room for
  the longest remaining answer. A join copies the running cache twice (the live rows picked,
  then placed): SmolLM2-135M, 8 rows x 300 tokens x 46 KB = 110 MB each time, against a
  decoding step at batch 8 of ~60 ms (docs/generation.md). Rows that ended are left out and
  the padding no live row needs is trimmed in the same copy.
- A step gives every live row its next token, then runs one forward pass for the batch.
- Rows that ended (end of turn, a stop, their token budget, a cancelled stream) leave the
  batch once a quarter of it is done (a copy of the cache, worth it when many are done), or at
  the next join.
- Attention runs grouped-query attention natively (`_gqa_attention`, on while `native_attention` is) instead of copying
the
  keys and values once per query head, as transformers does on CPU whenever a mask is given
  (always, with left padding).
"""

from __future__ import annotations

from functools import cache
from typing import TYPE_CHECKING, Any, NamedTuple, Protocol

if TYPE_CHECKING:
    import torch

ATTENTION = "adaptlab_gqa_sdpa"  # the attention function registered with transformers below
TRAINING_ATTENTION = "adaptlab_training"  # the one training on a CPU uses
EXPLICIT_SCORES = (
    2**21
    # attention scores per layer (batch x heads x queries x keys) up to which training computes them explicitly: 4 MB in
    # bf16
)
PREFILL_TOKENS = 4096  # prompt tokens per forward pass (all rows together)
DROP_AT = 0.75  # finished rows leave the batch once the live ones are this share of it or fewer


class Row(Protocol):
    """One answer being generated (engine/generate.py's `AnswerRow`): it takes tokens until it is done."""

    done: bool

    def add(self, token: int) -> None: ...


class _Part(NamedTuple):
    """Rows' decoding state: their cache, mask [rows, columns], next positions [rows, 1] and pending logits [rows,
    vocab]."""

    cache: Any  # a transformers `Cache` of `_Buffer` layers (a class made at first use, so it cannot be named here)
    mask: torch.Tensor
    positions: torch.Tensor
    logits: torch.Tensor


class Session:
    """A batch of rows decoding together; `join` adds rows between steps, `step` gives each live row one token.

    >>> session = Session(model, pad=0, device="cpu")     # doctest: +SKIP
    >>> session.join([prompt], [row], max_new_tokens=64)  # doctest: +SKIP
    >>> while session.live:                                # doctest: +SKIP
    ...     ended = session.step()                         # rows that ended at this step
    """

    def __init__(
        self,
        model,
        pad: int,
        device: str,
        prefix: list | None = None,
        start: int = 0,
        prefill_tokens: int = PREFILL_TOKENS,
    ):
        self.model, self.pad, self.device = model, pad, device
        self.prefix, self.start = prefix, start  # a shared prefix's keys and values per layer, and its length
        self.prefill_tokens = prefill_tokens
        self.rows: list = []  # batch position -> row
        self.budgets: list[int] = []  # tokens each row may still get (its pending one included)
        self.state: _Part | None = None

    @property
    def live(self) -> int:
        """Rows still generating."""
        return sum(not self._ended(b) for b in range(len(self.rows)))

    @property
    def columns(self) -> int:
        """Cache columns each row holds now (prefix, padding and own tokens)."""
        return self.state.mask.shape[1] if self.state else self.start

    def join(self, prompts: list[list[int]], rows: list, max_new_tokens: int) -> None:
        """Run `prompts` (each after the shared prefix) and add their rows, which get up to `max_new_tokens` tokens
        each."""
        with _running(self.model):
            if not self.live:
                self.rows, self.budgets, self.state = (
                    [],
                    [],
                    None,
                )  # nothing to keep: the newcomers' cache is the batch's
                self.state = self._prefill(prompts, max_new_tokens)
            else:
                self._merge(self._prefill(prompts, 0), max_new_tokens)
        self.rows += rows
        self.budgets += [max_new_tokens] * len(rows)

    def step(self) -> list:
        """Give every live row its next token, then run the batch one token further; the rows that ended at this
        step."""
        if self.state is None:
            return []
        tokens = self.state.logits.argmax(-1).tolist()
        ended = []
        for b, token in enumerate(tokens):
            if not self._ended(b):
                self.rows[b].add(token)
                self.budgets[b] -= 1
                if self._ended(b):
                    ended.append(self.rows[b])
        keep = [b for b in range(len(self.rows)) if not self._ended(b)]
        if not keep:
            self.rows, self.budgets, self.state = [], [], None
            return ended
        with _running(self.model):
            if len(keep) <= DROP_AT * len(self.rows):
                tokens = [tokens[b] for b in keep]
                self._select(keep)
            self._forward(tokens)
        return ended

    def _ended(self, b: int) -> bool:
        return self.rows[b].done or self.budgets[b] <= 0

    def _prefill(self, rests: list[list[int]], room: int) -> _Part:
        """The rows' own prompt tokens (left-padded) after the shared prefix, in a cache with `room` columns to
        spare."""
        import torch
        from transformers.cache_utils import Cache

        start, device = self.start, self.device
        width = max(len(r) for r in rests)
        capacity = start + width + room
        layers = self.model.config.num_hidden_layers
        cache = Cache(
            layers=[_buffer_class()(capacity, self.prefix[layer] if self.prefix else None) for layer in range(layers)]
        )
        ids = torch.tensor([[self.pad] * (width - len(r)) + r for r in rests], device=device)
        own = torch.tensor([[0] * (width - len(r)) + [1] * len(r) for r in rests], device=device)
        mask = torch.cat([torch.ones(len(rests), start, dtype=own.dtype, device=device), own], dim=1)
        positions = start + (own.cumsum(-1) - 1).clamp(min=0)
        chunk = max(
            16, self.prefill_tokens // len(rests)
        )  # the prompts run in slices: bounded activations and attention scores
        for at in range(0, width, chunk):
            end = min(width, at + chunk)
            out = self.model(
                input_ids=ids[:, at:end],
                attention_mask=mask[:, : start + end],
                position_ids=positions[:, at:end],
                cache=cache,
                use_cache=True,
                logits_to_keep=1,
            )
        return _Part(cache, mask, positions[:, -1:] + 1, out.logits[:, -1])

    def _forward(self, tokens: list[int]) -> None:
        """One token per row (finished rows still in the batch included) through the model: the next pending logits."""
        import torch

        assert self.state is not None  # a step runs only while the batch has rows
        cache, mask, positions, _ = self.state
        mask = torch.cat([mask, mask.new_ones(len(tokens), 1)], dim=1)
        out = self.model(
            input_ids=torch.tensor(tokens, device=self.device)[:, None],
            attention_mask=mask,
            position_ids=positions,
            cache=cache,
            use_cache=True,
        )
        self.state = _Part(cache, mask, positions + 1, out.logits[:, -1])

    def _select(self, keep: list[int]) -> None:
        """Keep only the batch positions `keep` (a copy of the cache)."""
        import torch

        index = torch.tensor(keep, device=self.device)
        assert self.state is not None  # called from `step`, which returned early without a state
        cache, mask, positions, logits = self.state
        cache.batch_select_indices(index)
        self.state = _Part(cache, mask[index], positions[index], logits[index])
        self.rows, self.budgets = [self.rows[b] for b in keep], [self.budgets[b] for b in keep]

    def _merge(self, new: _Part, max_new_tokens: int) -> None:
        """One batch of the live rows and the newcomers (`new`): own columns right-aligned, trimmed to the widest
        row."""
        import torch
        from transformers.cache_utils import Cache

        keep = [b for b in range(len(self.rows)) if not self._ended(b)]
        index = torch.tensor(keep, device=self.device)
        old = self.state
        assert old is not None  # a merge happens only while rows are live
        old_mask, start = old.mask[index], self.start
        width = int(max(old_mask[:, start:].sum(-1).max(), new.mask[:, start:].sum(-1).max()))
        capacity = start + width + max([self.budgets[b] for b in keep] + [max_new_tokens])
        layers = []
        for before, joining in zip(old.cache.layers, new.cache.layers):
            keys = _packed([before.keys[index], joining.keys], start, width, capacity, dim=2)
            values = _packed([before.values[index], joining.values], start, width, capacity, dim=2)
            layers.append(_buffer_class().holding(keys, values, start + width))
        mask = _packed([old_mask, new.mask], start, width, start + width, dim=1)
        self.state = _Part(
            Cache(layers=layers),
            mask,
            torch.cat([old.positions[index], new.positions]),
            torch.cat([old.logits[index], new.logits]),
        )
        self.rows, self.budgets = [self.rows[b] for b in keep], [self.budgets[b] for b in keep]


def _packed(groups: list, start: int, width: int, size: int, dim: int):
    """`groups` stacked along the batch axis into a zero tensor `size` long on `dim`: each group's first `start` columns
    (the shared prefix) first, then its last `width` columns right-aligned at start + width (fewer if it has fewer)."""
    shape = list(groups[0].shape)
    shape[0], shape[dim] = sum(g.shape[0] for g in groups), size
    out = groups[0].new_zeros(shape)
    at = 0
    for group in groups:
        rows, length = out[at : at + group.shape[0]], group.shape[dim]
        at += group.shape[0]
        take = min(width, length - start)
        rows.narrow(dim, 0, start).copy_(group.narrow(dim, 0, start))
        rows.narrow(dim, start + width - take, take).copy_(group.narrow(dim, length - take, take))
    return out


class _running:
    """Inference mode with the engine's attention, around each piece of a session's work."""

    def __init__(self, model):
        import torch

        self.inference, self.attention = torch.inference_mode(), native_attention(model)

    def __enter__(self):
        self.inference.__enter__()
        self.attention.__enter__()

    def __exit__(self, *exc):
        self.attention.__exit__(*exc)
        self.inference.__exit__(*exc)


@cache
def _buffer_class():
    """`_Buffer`, defined on first use (transformers is imported only when generating)."""
    from transformers.cache_utils import DynamicLayer

    class _Buffer(DynamicLayer):
        """One layer's key/value cache in buffers sized for the whole answer: each step writes in place."""

        def __init__(self, capacity: int, prefix: tuple | None):
            super().__init__()
            self.capacity, self.prefix, self.n = capacity, prefix, 0
            self.is_initialized = True  # allocated on the first update, when the batch's dtype is known
            self._k: torch.Tensor | None = None
            self._v: torch.Tensor | None = None

        @classmethod
        def holding(cls, keys, values, n: int) -> _Buffer:
            """A buffer over `keys` and `values` [batch, heads, capacity, dim] whose first `n` columns are filled."""
            buffer = cls(keys.shape[2], None)
            buffer._k, buffer._v, buffer.n, buffer.device = keys, values, n, keys.device
            buffer.keys, buffer.values = keys[:, :, :n], values[:, :, :n]
            return buffer

        def update(self, key_states, value_states, *args, **kwargs):
            import torch

            if self._k is None:
                batch, heads, _, dim = key_states.shape
                self.device = key_states.device
                self._k = torch.empty(
                    batch, heads, self.capacity, dim, dtype=key_states.dtype, device=key_states.device
                )
                self._v = torch.empty_like(self._k)
                if self.prefix is not None:
                    k, v = self.prefix
                    self.n = k.shape[2]
                    self._k[:, :, : self.n] = k.to(key_states.dtype)
                    self._v[:, :, : self.n] = v.to(value_states.dtype)
                    self.prefix = None
            assert self._v is not None  # allocated together with `_k`
            m = key_states.shape[2]
            self._k[:, :, self.n : self.n + m] = key_states
            self._v[:, :, self.n : self.n + m] = value_states
            self.n += m
            self.keys, self.values = self._k[:, :, : self.n], self._v[:, :, : self.n]
            return self.keys, self.values

        def get_seq_length(self) -> int:
            return self.prefix[0].shape[2] if self._k is None and self.prefix is not None else self.n

        def batch_select_indices(self, indices) -> None:
            assert self._k is not None and self._v is not None  # the cache is selected only once it holds rows
            self._k, self._v = self._k[indices], self._v[indices]
            self.keys, self.values = self._k[:, :, : self.n], self._v[:, :, : self.n]

    return _Buffer


def _gqa_attention(
    module, query, key, value, attention_mask, dropout: float = 0.0, scaling=None, is_causal=None, **kwargs
):
    """Scaled dot-product attention with grouped-query heads handled by torch (no copy of keys and values per head)."""
    import torch.nn.functional as F

    causal = attention_mask is None and query.shape[2] > 1
    out = F.scaled_dot_product_attention(
        query,
        key,
        value,
        attn_mask=attention_mask,
        scale=scaling,
        is_causal=causal,
        enable_gqa=key.shape[1] != query.shape[1],
    )
    return out.transpose(1, 2).contiguous(), None


def _training_attention(
    module, query, key, value, attention_mask, dropout: float = 0.0, scaling=None, is_causal=None, **kwargs
):
    """Attention for training on a CPU: explicit matrix products and a softmax while the scores are small
    (at most EXPLICIT_SCORES per layer), `_gqa_attention` above that.

    torch's fused CPU kernel is slow in bf16, its backward most: a LoRA epoch on booking-sql spent a third of
    its time there, and trains faster this way (docs/defaults.md). The explicit way keeps the softmax's output
    for the backward pass (bf16 under autocast), which is why it is bounded: at most 4 MB a layer in bf16.
    Attention dropout is not applied, as in `_gqa_attention` (SmolLM2's, like most decoders', is 0).
    """
    import torch

    if query.shape[0] * query.shape[1] * query.shape[2] * key.shape[2] > EXPLICIT_SCORES:
        return _gqa_attention(module, query, key, value, attention_mask, dropout, scaling, is_causal, **kwargs)
    if key.shape[1] != query.shape[1]:  # grouped-query heads: each key/value head serves a group of query heads
        groups = query.shape[1] // key.shape[1]
        key, value = key.repeat_interleave(groups, dim=1), value.repeat_interleave(groups, dim=1)
    scores = torch.matmul(query, key.transpose(2, 3)) * (query.shape[-1] ** -0.5 if scaling is None else scaling)
    if attention_mask is None:  # causal, the new tokens last
        attention_mask = torch.ones(query.shape[2], key.shape[2], dtype=torch.bool, device=query.device).tril(
            key.shape[2] - query.shape[2]
        )
    if attention_mask.dtype == torch.bool:
        scores = scores.masked_fill(~attention_mask, torch.finfo(scores.dtype).min)
    else:
        scores = scores + attention_mask
    weights = torch.softmax(
        scores, dim=-1
    )  # in bf16 under autocast: computed in float32, kept (for the backward pass) in bf16
    return torch.matmul(weights, value).transpose(1, 2).contiguous(), None


class native_attention:
    """While it is on, the model attends with `function` (generation: `_gqa_attention`; training on a CPU:
    `_training_attention`) in place of transformers' sdpa, with the same masks (restored after, even on error)."""

    def __init__(self, model, training: bool = False):
        self.config = model.config
        self.name, self.function = (
            (TRAINING_ATTENTION, _training_attention) if training else (ATTENTION, _gqa_attention)
        )

    def __enter__(self):
        from transformers import AttentionInterface
        from transformers.masking_utils import AttentionMaskInterface, sdpa_mask

        AttentionInterface.register(self.name, self.function)
        AttentionMaskInterface.register(self.name, sdpa_mask)  # the same masks as sdpa (unregistered: none at all)
        self.before = self.config._attn_implementation
        if self.before == "sdpa":  # only replaces the same math; other implementations are left alone
            self.config._attn_implementation = self.name

    def __exit__(self, *exc):
        self.config._attn_implementation = self.before
