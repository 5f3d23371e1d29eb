"""`ModelSpec`: which local model to load, at what precision, on which device (the experiment's `model:`).

>>> ModelSpec("Qwen/Qwen2.5-1.5B-Instruct", dtype="bf16").dtype
'bf16'
>>> str(spec_of("smollm2-135m-instruct"))
'smollm2-135m-instruct'
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from adaptlab.errors import ModelError

DTYPES = ("auto", "bf16", "fp16", "fp32")
TORCH_DTYPES = {"bf16": "bfloat16", "fp16": "float16", "fp32": "float32"}
BYTES_PER_PARAMETER = {"bf16": 2, "fp16": 2, "fp32": 4}


@dataclass(frozen=True)
class ModelSpec:
    """A local model: the embedded default's name, a folder, a .gguf file or a Hub id (read from the local cache)."""

    source: str
    revision: str | None = None  # Hub ids: a commit sha, branch or tag in the cache; None: refs/main
    download: bool = False  # Hub ids: fetch into the cache when missing (never by default)
    dtype: str = "auto"  # auto: fp32 on the CPU, the checkpoint's own dtype on a GPU
    device: str = "auto"  # auto: the caller's device, else the first GPU, else the CPU

    def __str__(self) -> str:
        return self.source


def spec_of(choice) -> ModelSpec:
    """A ModelSpec from a name or path, an experiment's `model:` mapping (or its config model), or a ModelSpec."""
    if isinstance(choice, ModelSpec):
        return choice
    if isinstance(choice, (str, Path)):
        return ModelSpec(str(choice))
    if hasattr(choice, "spec"):  # config.LocalModelConfig
        return choice.spec()
    if isinstance(choice, dict) and (choice.get("path") or choice.get("id")):  # a recorded LocalModelConfig
        return ModelSpec(
            choice.get("path") or choice["id"],
            choice.get("revision"),
            bool(choice.get("download")),
            choice.get("dtype", "auto"),
            choice.get("device", "auto"),
        )
    raise ModelError(
        f"model {choice!r} is not a local model: give a name, a folder, a .gguf file, a Hub id, or "
        f"{{path|id, dtype, device}}"
    )


def chosen_device(spec: ModelSpec, fallback: str | None) -> str:
    """The device to load on: the spec's own when it names one, else `fallback`, else the first GPU or the CPU."""
    from adaptlab.models.device import default_device

    if spec.device == "auto":
        return fallback or default_device()
    device = "cuda:0" if spec.device == "cuda" else spec.device
    if device.startswith("cuda"):
        import torch

        index = int(device.split(":")[1])
        if not torch.cuda.is_available() or index >= torch.cuda.device_count():
            raise ModelError(
                f"model {spec.source!r}: device {spec.device} asked for, but torch sees "
                f"{torch.cuda.device_count()} GPU(s); set model.device to auto or cpu"
            )
    return device


def chosen_dtype(spec: ModelSpec, device: str, folder: Path) -> str:
    """bf16, fp16 or fp32. `auto` keeps fp32 on the CPU (the measured figures' setting: bf16 autocast is
    decided per task at run time, `device.bf16_is_fast`) and the checkpoint's dtype on a GPU, fp16 where
    that is bf16 and the GPU has no bf16."""
    if spec.dtype != "auto":
        return spec.dtype
    if not device.startswith("cuda"):
        return "fp32"
    saved = checkpoint_dtype(folder)
    if saved == "bf16":
        from adaptlab.models.device import bf16_is_fast

        return "bf16" if bf16_is_fast(device) else "fp16"
    return saved or "fp32"


def checkpoint_dtype(folder: Path) -> str | None:
    """The dtype config.json says the weights were saved in (`torch_dtype`, or `dtype` since transformers 5), as
    bf16/fp16/fp32."""
    try:
        config = json.loads((Path(folder) / "config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    saved = config.get("torch_dtype") or config.get("dtype")
    return {v: k for k, v in TORCH_DTYPES.items()}.get(str(saved).removeprefix("torch."))
