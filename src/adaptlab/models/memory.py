"""Will the model fit? Its memory estimated before loading, against what the device has free.

The arithmetic, for Qwen2.5-1.5B (1.54B parameters) as an example:
    weights       1.54B x 2 bytes (bf16)                              ~ 3.1 GB
    full tuning   + 1.54B x 12 bytes (fp32 gradient and two AdamW moments) ~ 18.5 GB
    adapters      + ~1% of the parameters x 16 bytes (weights, gradient, two moments) ~ 0.25 GB
    KV cache      2 (K, V) x 28 layers x 2 KV heads x 128 x 2 bytes = 28 KB per token; 8 rows x 2,048 tokens ~ 0.47 GB
"""

from __future__ import annotations

import json
import struct
from dataclasses import dataclass
from pathlib import Path

from adaptlab.errors import ModelError

GB = 1e9
OPTIMIZER_BYTES = 12  # per trained parameter: an fp32 gradient (4) and AdamW's two fp32 moments (8)
ADAPTER_SHARE = 0.01  # adapters of rank 8-16 on the attention and MLP projections: ~0.5-1% of the parameters


@dataclass(frozen=True)
class MemoryNeed:
    """Bytes a model needs on its device, by part."""

    weights: int
    training: int = 0  # gradients and optimizer state
    kv_cache: int = 0

    @property
    def total(self) -> int:
        return self.weights + self.training + self.kv_cache


def parameter_count(folder: Path) -> int:
    """Parameters in a model folder: summed from the safetensors headers (exact, reads a few KB), else estimated from
    config.json."""
    counted = sum(_safetensors_parameters(f) for f in sorted(Path(folder).glob("*.safetensors")))
    return counted or estimate_parameters(_config(folder))


def estimate_parameters(config: dict) -> int:
    """A decoder's parameters from config.json: embeddings (tied or not), then per layer attention and a gated MLP.

    135M (SmolLM2: hidden 576, 30 layers, vocab 49,152, intermediate 1,536, 9 heads / 3 KV heads) comes out at
    134.5M."""
    hidden, layers = config.get("hidden_size", 0), config.get("num_hidden_layers", 0)
    vocab, inner = config.get("vocab_size", 0), config.get("intermediate_size", 4 * config.get("hidden_size", 0))
    heads = config.get("num_attention_heads") or 1
    kv = (config.get("num_key_value_heads") or heads) * (config.get("head_dim") or hidden // heads)
    attention = hidden * hidden * 2 + hidden * kv * 2  # q and o; k and v (smaller with grouped KV heads)
    mlp = 3 * hidden * inner  # gate, up, down
    embeddings = vocab * hidden * (1 if config.get("tie_word_embeddings", True) else 2)
    return embeddings + layers * (attention + mlp + 2 * hidden)


def kv_bytes_per_token(config: dict, bytes_per_value: int) -> int:
    """K and V of every layer for one token."""
    hidden, heads = config.get("hidden_size", 0), config.get("num_attention_heads") or 1
    kv = (config.get("num_key_value_heads") or heads) * (config.get("head_dim") or hidden // heads)
    return 2 * config.get("num_hidden_layers", 0) * kv * bytes_per_value


def memory_need(
    folder: Path, bytes_per_parameter: int, trained_share: float = 0.0, batch_tokens: int = 0
) -> MemoryNeed:
    """What loading `folder` needs: its weights; with `trained_share` (1.0: every weight trained; ADAPTER_SHARE:
    adapters) the gradients and optimizer state; with `batch_tokens` (rows x tokens) the KV cache of a batch."""
    parameters = parameter_count(folder)
    trained = int(parameters * trained_share)
    extra = trained * (OPTIMIZER_BYTES + (4 if trained_share < 1 else 0))  # adapters: their own fp32 weights besides
    kv = kv_bytes_per_token(_config(folder), bytes_per_parameter) * batch_tokens
    return MemoryNeed(parameters * bytes_per_parameter, extra, kv)


def free_memory(device: str) -> int | None:
    """Bytes free on `device`: the GPU's (torch.cuda.mem_get_info), or the machine's available RAM; None when
    unknown."""
    if device.startswith("cuda"):
        import torch

        return int(torch.cuda.mem_get_info(torch.device(device))[0])
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    try:
        import psutil

        return int(psutil.virtual_memory().available)
    except ImportError:
        return None


def check_memory(name: str, need: MemoryNeed, free: int | None, device: str, dtype: str) -> None:
    """Refuse, with the numbers and what to change, when `need` is more than `free` bytes (None: unknown, not
    refused)."""
    if free is None or need.total <= free:
        return
    parts = (
        f"weights {need.weights / GB:.2f} GB ({dtype})"
        + (f" + training state {need.training / GB:.2f} GB" if need.training else "")
        + (f" + KV cache {need.kv_cache / GB:.2f} GB" if need.kv_cache else "")
    )
    smaller = "model.dtype: bf16 (half of fp32)" if dtype == "fp32" else "a quantized (QLoRA) run"
    raise ModelError(
        f"model {name!r} needs about {need.total / GB:.2f} GB on {device} ({parts}) but {free / GB:.2f} GB is free; "
        f"use {smaller}, a smaller batch_size or max_batch_tokens, adapters instead of training "
        "every weight, another device (model.device), or a smaller model"
    )


def _config(folder: Path) -> dict:
    try:
        return json.loads((Path(folder) / "config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}


def _safetensors_parameters(path: Path) -> int:
    """Elements of every tensor in a .safetensors file, from its JSON header (8-byte length, then the header)."""
    try:
        with open(path, "rb") as f:
            size = struct.unpack("<Q", f.read(8))[0]
            header = json.loads(f.read(size))
    except (OSError, ValueError, struct.error):
        return 0
    total = 0
    for key, tensor in header.items():
        if key != "__metadata__":
            count = 1
            for dim in tensor.get("shape", []):
                count *= dim
            total += count
    return total
