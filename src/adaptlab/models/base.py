"""`BaseModel`: a causal LM with its tokenizer and chat template, loaded only from local files."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from adaptlab.errors import ModelError
from adaptlab.models.device import default_device
from adaptlab.models.embedded import EMBEDDED_NAME, cached_gguf_folder, embedded_gguf


@dataclass
class BaseModel:
    """A loaded causal LM. `eot_id` ends an assistant turn; `context_length` bounds prompts."""

    name: str
    model: Any  # transformers PreTrainedModel (or a PEFT wrapper around one)
    tokenizer: Any
    device: str
    eot_id: int
    context_length: int

    @property
    def parameters(self) -> int:
        return sum(p.numel() for p in self.model.parameters())


def resolve_model_folder(name_or_path: str) -> Path:
    """The local folder holding a model's safetensors: the embedded default, a GGUF file, or a HF folder."""
    if name_or_path == EMBEDDED_NAME:
        return cached_gguf_folder(embedded_gguf())
    path = Path(name_or_path).expanduser()
    if path.is_file() and path.suffix == ".gguf":
        return cached_gguf_folder(path)
    if path.is_dir() and (path / "config.json").is_file():
        return path
    raise ModelError(
        f"model {name_or_path!r} not found: use '{EMBEDDED_NAME}' (embedded), a local Hugging Face model "
        "folder (with config.json), or a .gguf file; adaptlab never downloads weights"
    )


def load_base_model(name_or_path: str, device: str | None = None) -> BaseModel:
    """Load a base model for inference and training, from local files only."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()  # adaptlab shows its own progress; a per-load bar of tensors is noise
    folder = resolve_model_folder(name_or_path)
    device = device or default_device()
    try:
        tokenizer = AutoTokenizer.from_pretrained(folder, local_files_only=True, trust_remote_code=False)
        model = AutoModelForCausalLM.from_pretrained(folder, local_files_only=True, trust_remote_code=False, dtype=torch.float32)
    except Exception as exc:
        raise ModelError(f"{folder}: cannot load the model ({type(exc).__name__}: {exc})") from None
    model.to(device).eval()
    if not tokenizer.chat_template:
        raise ModelError(f"{folder}: the tokenizer has no chat template; use an instruction-tuned model")
    eot = _end_of_turn_id(tokenizer)
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.convert_ids_to_tokens(eot)
    context = getattr(model.config, "max_position_embeddings", None) or 2048
    return BaseModel(name_or_path, model, tokenizer, device, eot, int(context))


def _end_of_turn_id(tokenizer) -> int:
    for token in ("<|im_end|>", "<|eot_id|>", "<end_of_turn>"):
        token_id = tokenizer.convert_tokens_to_ids(token)
        if isinstance(token_id, int) and token_id != tokenizer.unk_token_id and token_id is not None:
            return token_id
    if tokenizer.eos_token_id is None:
        raise ModelError("the tokenizer defines no end-of-turn or end-of-sequence token")
    return tokenizer.eos_token_id


def weights_digest(name: str) -> dict:
    """Where the base model's weights are and their sha256, so an adapter can be matched to its base."""
    from adaptlab.files import sha256_file

    folder = resolve_model_folder(name)
    return {"folder": str(folder), "weights_sha256": sha256_file(*sorted(folder.glob("*.safetensors")))}
