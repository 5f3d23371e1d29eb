"""`BaseModel`: a causal LM with its tokenizer and chat template, loaded only from local files (a Hub id from its
cache)."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

from adaptlab.errors import ModelError
from adaptlab.models.embedded import EMBEDDED_NAME, cached_gguf_folder, embedded_gguf, gguf_cache_folder, is_converted
from adaptlab.models.hub import hub_folder, is_hub_id
from adaptlab.models.memory import check_memory, free_memory, memory_need
from adaptlab.models.spec import BYTES_PER_PARAMETER, TORCH_DTYPES, chosen_device, chosen_dtype, spec_of


@dataclass
class BaseModel:
    """A loaded causal LM. `eot_id` ends an assistant turn; `context_length` bounds prompts."""

    name: str
    model: Any  # transformers PreTrainedModel (or a PEFT wrapper around one)
    tokenizer: Any
    device: str
    eot_id: int
    context_length: int
    dtype: str = "fp32"  # the weights' precision as loaded: bf16, fp16 or fp32
    folder: str | None = None  # the local files it was loaded from (a Hub id: its cached snapshot)
    revision: str | None = None  # a Hub id's commit sha

    def info(self) -> dict:
        """The model as loaded, for results.json and a version's lineage (`results.ModelInfo`)."""
        return {
            "name": self.name,
            "folder": self.folder,
            "revision": self.revision,
            "dtype": self.dtype,
            "device": self.device,
            "parameters": self.parameters,
        }

    @property
    def parameters(self) -> int:
        """The base model's own parameters (adapters attached to it not counted)."""
        return sum(p.numel() for name, p in self.model.named_parameters() if "lora_" not in name)


def model_source(choice) -> Path:
    """The model's local files, as given: the embedded GGUF, a .gguf file, a HF folder, or a Hub id's cached snapshot
    (nothing converted)."""
    spec = spec_of(choice)
    if spec.source == EMBEDDED_NAME:
        return embedded_gguf()
    path = Path(spec.source).expanduser()
    if path.is_file() and path.suffix == ".gguf":
        return path
    if path.is_dir() and (path / "config.json").is_file():
        return path
    if is_hub_id(spec.source):
        return hub_folder(spec.source, spec.revision, spec.download)
    raise ModelError(
        f"model {spec.source!r} not found: use '{EMBEDDED_NAME}' (embedded), a local Hugging Face model "
        "folder (with config.json), a .gguf file, or a Hub id such as Qwen/Qwen2.5-1.5B-Instruct "
        "(read from the local Hugging Face cache)"
    )


def resolve_model_folder(choice) -> Path:
    """The local folder holding a model's safetensors: the embedded default, a GGUF file, a HF folder or a Hub id's
    snapshot."""
    source = model_source(choice)
    return cached_gguf_folder(source) if source.is_file() else source


def load_tokenizer(choice) -> tuple[Any, int | None]:
    """A model's tokenizer and context length (None when the model does not say), without loading its weights."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    source = model_source(choice)
    if source.is_file():
        folder = gguf_cache_folder(source)
        if not is_converted(folder):
            return _gguf_tokenizer(source)
        source = folder  # the copy load_base_model uses, so both count the same tokens
    from transformers import AutoTokenizer

    try:
        tokenizer = AutoTokenizer.from_pretrained(source, local_files_only=True, trust_remote_code=False)
        context = json.loads((source / "config.json").read_text()).get("max_position_embeddings")
    except Exception as exc:  # transformers raises many types for unreadable files
        raise ModelError(f"{source}: cannot load the tokenizer ({type(exc).__name__}: {exc})") from None
    return tokenizer, context


def _gguf_tokenizer(gguf: Path) -> tuple[Any, int | None]:
    from transformers import PreTrainedTokenizerFast
    from transformers.integrations.gguf import read_gguf_metadata

    try:
        # The tokenizer class itself, not AutoTokenizer: that also builds the model's config with gguf's
        # full reader, 3.2 s for SmolLM2 against 0.3 s; read_gguf_metadata skips the arrays (10 ms).
        tokenizer = PreTrainedTokenizerFast.from_pretrained(gguf.parent, gguf_file=gguf.name, local_files_only=True)
        metadata, _ = read_gguf_metadata(str(gguf))
        context = metadata.get(f"{metadata['general.architecture']}.context_length")
    except Exception as exc:  # transformers raises many types for unreadable files
        raise ModelError(
            f"{gguf}: cannot read this GGUF file's tokenizer ({type(exc).__name__}: {exc}); check it "
            "is a complete, supported GGUF"
        ) from None
    return tokenizer, int(context) if context is not None else None


def load_base_model(choice, device: str | None = None, trained_share: float = 0.0) -> BaseModel:
    """Load a base model for inference and training, from local files only (a Hub id: its cached snapshot).

    `choice`: a name, folder, .gguf or Hub id, or a `ModelSpec` (or the experiment's `model:` mapping) with
    dtype and device. `device` is used where the spec leaves the device to `auto`. The memory the weights
    (and, with `trained_share` > 0, their training state: `memory.memory_need`) need is checked against what is free
    first.
    """
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()  # adaptlab shows its own progress; a per-load bar of tensors is noise
    spec = spec_of(choice)
    folder = resolve_model_folder(spec)
    device = chosen_device(spec, device)
    dtype = chosen_dtype(spec, device, folder)
    check_memory(
        spec.source, memory_need(folder, BYTES_PER_PARAMETER[dtype], trained_share), free_memory(device), device, dtype
    )
    try:
        tokenizer = AutoTokenizer.from_pretrained(folder, local_files_only=True, trust_remote_code=False)
        model = AutoModelForCausalLM.from_pretrained(
            folder, local_files_only=True, trust_remote_code=False, dtype=getattr(torch, TORCH_DTYPES[dtype])
        )
    except Exception as exc:
        raise ModelError(f"{folder}: cannot load the model ({type(exc).__name__}: {exc})") from None
    model.to(device).eval()  # type: ignore[arg-type]  # transformers' wrapper of `to` loses its self binding
    if not tokenizer.chat_template:
        raise ModelError(f"{folder}: the tokenizer has no chat template; use an instruction-tuned model")
    eot = end_of_turn_id(tokenizer)
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.convert_ids_to_tokens(eot)
    context = getattr(model.config, "max_position_embeddings", None) or 2048
    return BaseModel(spec.source, model, tokenizer, device, eot, int(context), dtype, str(folder), _revision(folder))


def _revision(folder: Path) -> str | None:
    """A Hub snapshot's commit sha (its folder's name under snapshots/); None for other folders."""
    return folder.name if folder.parent.name == "snapshots" else None


def end_of_turn_id(tokenizer) -> int:
    for token in ("<|im_end|>", "<|eot_id|>", "<end_of_turn>"):
        token_id = tokenizer.convert_tokens_to_ids(token)
        if isinstance(token_id, int) and token_id != tokenizer.unk_token_id and token_id is not None:
            return token_id
    if tokenizer.eos_token_id is None:
        raise ModelError("the tokenizer defines no end-of-turn or end-of-sequence token")
    return tokenizer.eos_token_id


def weights_digest(choice) -> dict:
    """Where the base model's weights are and their sha256, so an adapter can be matched to its base."""
    folder = resolve_model_folder(choice)
    files = tuple((str(p), p.stat().st_size, p.stat().st_mtime_ns) for p in sorted(folder.glob("*.safetensors")))
    return {"folder": str(folder), "weights_sha256": _sha256(files)}


@lru_cache(maxsize=16)
def _sha256(files: tuple) -> str:
    """sha256 of the weight files, once per process for the same paths, sizes and times (~1 s per 500 MB)."""
    from adaptlab.files import sha256_file

    return sha256_file(*[Path(f[0]) for f in files])
