"""Merged weights: a LoRA adapter folded into its base model, saved as a plain Hugging Face folder."""

from __future__ import annotations

import os
import shutil
from pathlib import Path


def merge_lora(base_name: str, adapter_dir: Path, out: Path) -> Path:
    """Load the base fresh, apply the PEFT adapter in `adapter_dir`, merge, and write safetensors to `out`.

    Written to a temp folder and renamed, so `out` is either complete or absent.
    transformers (and vLLM without --enable-lora) load the result like any model.
    """
    from peft import PeftModel

    from adaptlab.models import load_base_model

    base = load_base_model(base_name, device="cpu")
    merged = PeftModel.from_pretrained(base.model, str(adapter_dir)).merge_and_unload()
    out = Path(out)
    tmp = out.with_name(f".tmp-{out.name}")
    shutil.rmtree(tmp, ignore_errors=True)
    merged.save_pretrained(tmp, safe_serialization=True)
    base.tokenizer.save_pretrained(tmp)
    if out.exists():
        shutil.rmtree(out)
    os.replace(tmp, out)
    return out
