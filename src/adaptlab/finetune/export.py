"""Export a fine-tuned result: the PEFT adapter as is, or folded into its base model as plain safetensors weights.

    peft     adapter_config.json + adapter_model.safetensors: PEFT's `PeftModel.from_pretrained`
             and vLLM's `--enable-lora --lora-modules name=OUT` load it over the base model
    merged   a Hugging Face model folder (config, safetensors, tokenizer): transformers and
             vLLM load it like any model

Accepted sources: an `adaptlab finetune` run folder (lineage.json beside adapter/ or
model/), or a saved solver folder from `compare` (runs/<run>/solvers/<contender id>). Every
export is written to a temp folder and renamed, so OUT is complete or absent. Only
files inside the source folder are read: a lineage.json whose `output` leads
elsewhere (`../../etc`, an absolute path, a link out) is refused.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from adaptlab.errors import ConfigError, ModelError
from adaptlab.files import atomic_folder

ADAPTER_FILES = ("adapter_config.json", "adapter_model.safetensors")


def find_source(source: Path) -> tuple[Path, str, dict]:
    """(folder with the weights, base model name, lineage or solver info) for a run or solver folder."""
    source = Path(source)
    if (source / "lineage.json").is_file():
        lineage = json.loads((source / "lineage.json").read_text(encoding="utf-8"))
        output = lineage.get("output")
        if (
            not isinstance(output, str)
            or not output
            or not _inside(source, source / output)
            or not (source / output).is_dir()
        ):
            raise ConfigError(
                f"{source / 'lineage.json'}: output {output!r} is not a folder inside the run folder "
                f"{source}; it should name the run's adapter/ or model/ (as adaptlab finetune wrote "
                "it)"
            )
        return source / output, lineage["base_model"]["name"], lineage
    if (source / "solver.json").is_file():
        info = json.loads((source / "solver.json").read_text(encoding="utf-8"))
        if isinstance(info.get("base_model"), str) and (
            (source / ADAPTER_FILES[0]).is_file() or (source / "config.json").is_file()
        ):
            return source, info["base_model"], info
    raise ConfigError(
        f"{source}: not a fine-tuning result; pass an `adaptlab finetune` run folder (with "
        "lineage.json) or a compare run's solvers/ID folder of a fine-tuned contender"
    )


def export(source: Path, fmt: str, out: Path) -> Path:
    """Write the result in `source` to `out` in format `fmt` ('peft' or 'merged')."""
    weights, base_name, info = find_source(source)
    out = Path(out)
    if out.exists():
        raise ConfigError(f"{out} already exists; choose a new output folder")
    escaping = [p.name for p in weights.iterdir() if not _inside(Path(source), p)]
    if escaping:
        raise ConfigError(
            f"{weights}: {', '.join(escaping)} point outside {source} (links); copy the files "
            "themselves in, then export again"
        )
    is_adapter = (weights / ADAPTER_FILES[0]).is_file()
    if fmt == "peft" and not is_adapter:
        raise ConfigError(f"{source} holds full fine-tuned weights, not an adapter; export it with --format merged")
    _check_base(base_name, info)
    if fmt == "merged" and is_adapter:
        return merge_lora(base_name, weights, out)
    with atomic_folder(out) as tmp:
        for path in weights.iterdir():
            if path.is_file() and path.name != "solver.json":
                shutil.copyfile(path, tmp / path.name)
        (tmp / "adaptlab.json").write_text(
            json.dumps(
                {"base_model": base_name, "source": str(Path(source).resolve()), "lineage": info},
                indent=2,
                ensure_ascii=False,
            )
            + "\n",
            encoding="utf-8",
        )
    return out


def merge_lora(base_name: str, adapter_dir: Path, out: Path) -> Path:
    """Load the base fresh, apply the PEFT adapter in `adapter_dir`, merge, and write safetensors to `out`."""
    from peft import PeftModel

    from adaptlab.models import load_base_model

    base = load_base_model(base_name, device="cpu")
    merged = PeftModel.from_pretrained(base.model, str(adapter_dir)).merge_and_unload()
    with atomic_folder(out) as tmp:
        merged.save_pretrained(tmp, safe_serialization=True)
        base.tokenizer.save_pretrained(tmp)
    return Path(out)


def _inside(folder: Path, path: Path) -> bool:
    """Whether `path`, with `..` and links followed, lies under `folder` (and is not `folder` itself)."""
    root, resolved = Path(folder).resolve(), Path(path).resolve()
    return resolved != root and resolved.is_relative_to(root)


def _check_base(base_name: str, info: dict) -> None:
    """Refuse to export over a base model whose weights differ from the ones it was trained on."""
    expected = (
        (info.get("base_model") or {}).get("weights_sha256") if isinstance(info.get("base_model"), dict) else None
    )
    if not expected:
        return
    from adaptlab.models.base import weights_digest

    found = weights_digest(base_name)["weights_sha256"]
    if found != expected:
        raise ModelError(
            f"base model {base_name!r} has different weights (sha256 {found[:12]}...) from the ones "
            f"this adapter was trained on ({expected[:12]}...); use the same base model"
        )
