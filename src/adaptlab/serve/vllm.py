"""`adaptlab export --format vllm VERSION... --out OUT`: registered versions as a folder that vLLM serves on a GPU
machine.

    OUT/serve.sh           vllm serve BASE --served-model-name NAME --enable-lora
                           --lora-modules task@vN=OUT/adapters/task-vN ... --max-lora-rank R --max-loras N
    OUT/adapters/task-vN/  each lora version: adapter_config.json + adapter_model.safetensors, as registered
    OUT/base/              the base model as safetensors, only when it is a GGUF file (the embedded SmolLM2
                           is one): the folder adaptlab converted it to; a Hugging Face folder base is named
                           by its path instead (override with ADAPTLAB_VLLM_BASE when it lives elsewhere)
    OUT/prompts.json       every exported version's prompt: system text, shots, task, and which model to call
    OUT/client.py          applies a version's prompt and calls the server (stdlib only; adaptlab's vllm_client.py)
    OUT/README.txt         what to copy, how to start and query, what differs from `adaptlab serve`

Exported: lora versions (adapters over the shared base) and the prompted versions
zero_shot and few_shot (prompts over the same base). Refused, with the reason and the
next step, before anything is written: versions without a language model
(majority, embed_classifier), full fine-tunes (a whole model each: `--format merged`
and a `vllm serve` of their own), rag (the retrieval runs in adaptlab), versions fitted
on an endpoint, and versions of different base models. OUT is complete or absent.
Each version's kind says which case it is (`Kind.llm`, `own_weights`, `reads_documents`) and
what shots its prompt carries (`Kind.export_shots`): a kind a package registers exports as it declares.
"""

from __future__ import annotations

import json
import shlex
import shutil
import textwrap
from dataclasses import dataclass, field
from pathlib import Path

from adaptlab.errors import ConfigError, ModelError
from adaptlab.finetune.export import ADAPTER_FILES
from adaptlab.serve import served_name

# vLLM accepts only these --max-lora-rank values (vllm/config/lora.py, MaxLoRARanks); an adapter's rank may be lower.
VLLM_RANKS = (1, 8, 16, 32, 64, 128, 256, 320, 512)


@dataclass
class VllmExport:
    """What an export wrote: the folder, the versions in it, and what the user should know."""

    out: Path
    adapters: list[str] = field(default_factory=list)
    prompted: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def export_vllm(refs: list[str], out: Path, registry=None) -> VllmExport:
    """Write `out` for vLLM from the registry versions `refs` (task@vN, or a task name for its promoted version)."""
    from adaptlab.files import atomic_folder
    from adaptlab.registry import default_registry
    from adaptlab.solver import read_solver_json

    if not refs:
        raise ConfigError(
            "name at least one registry version to export (task@vN, or a task for its promoted "
            "version); `adaptlab registry list` shows them"
        )
    if Path(
        out
    ).exists():  # before the base model's tokenizer and digest are loaded (atomic_folder checks again at the rename)
        raise ConfigError(f"{out} already exists; remove it or choose another folder")
    registry = registry or default_registry()
    versions, aliases = {}, {}
    for ref in refs:
        version = registry.get(ref, verify=True)  # an unknown or corrupted version stops here, named
        versions[version.ref] = version
        if ref != version.ref:
            aliases[ref] = version.ref
    infos = {ref: read_solver_json(v.folder, v.strategy) for ref, v in versions.items()}
    problems = [p for ref, v in versions.items() if (p := _refusal(v, infos[ref]))]
    if problems:
        raise ConfigError("cannot export for vLLM: " + "; ".join(problems))
    base_name = _one_base(infos)
    base_folder, copy_base = _base_folder(base_name, infos)
    served = served_name(base_name)
    eot_id = _end_of_turn(base_folder)
    result = VllmExport(Path(out))
    entries, ranks = {}, []
    for ref, version in versions.items():
        info = infos[ref]
        if (version.folder / ADAPTER_FILES[0]).is_file():
            ranks.append(adapter_rank(version.folder / ADAPTER_FILES[0]))
            result.adapters.append(ref)
            entries[ref] = _entry(version, info, model=ref, shots=[])
        else:
            exported = _shots(version, info)
            if exported.note:
                result.notes.append(f"{ref} {exported.note}")
            result.prompted.append(ref)
            entries[ref] = _entry(version, info, model=served, shots=exported.shots) | exported.extra
    base_ref = "$HERE/base" if copy_base else str(base_folder.resolve())
    with atomic_folder(out) as tmp:
        for ref in result.adapters:
            folder = tmp / "adapters" / _folder_name(ref)
            folder.mkdir(parents=True)
            for name in ADAPTER_FILES:
                shutil.copyfile(versions[ref].folder / name, folder / name)
        if copy_base:
            (tmp / "base").mkdir()
            for path in base_folder.iterdir():
                if path.is_file():
                    shutil.copyfile(path, tmp / "base" / path.name)
        prompts = {
            "base": {"name": base_name, "served_name": served, "end_of_turn_id": eot_id},
            "aliases": aliases,
            "versions": entries,
        }
        (tmp / "prompts.json").write_text(json.dumps(prompts, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
        script = tmp / "serve.sh"
        script.write_text(serve_script(base_ref, served, result.adapters, max(ranks, default=0)), encoding="utf-8")
        script.chmod(0o755)
        shutil.copyfile(Path(__file__).with_name("vllm_client.py"), tmp / "client.py")
        (tmp / "README.txt").write_text(_readme(base_name, base_ref, copy_base, result), encoding="utf-8")
    return result


def serve_script(base: str, served: str, adapters: list[str], rank: int) -> str:
    """serve.sh: `vllm serve` with every adapter as a LoRA module; extra arguments are passed on to vllm."""
    base_line = (
        'BASE="${ADAPTLAB_VLLM_BASE:-$HERE/base}"'
        if base == "$HERE/base"
        else f'BASE="${{ADAPTLAB_VLLM_BASE:-{_dq(base)}}}"'
    )
    lines = [
        "#!/bin/sh",
        "# Written by `adaptlab export --format vllm`. Extra arguments go to vllm serve, e.g.: sh "
        "serve.sh --port 8000 --api-key KEY",
        "# ADAPTLAB_VLLM_BASE overrides where the base model folder is on this machine.",
        "set -eu",
        'HERE="$(cd "$(dirname "$0")" && pwd)"',
        base_line,
        f'exec vllm serve "$BASE" --served-model-name {shlex.quote(served)} \\',
    ]
    if adapters:
        modules = " ".join(f'"{ref}=$HERE/adapters/{_folder_name(ref)}"' for ref in adapters)
        lines += [
            f"  --enable-lora --lora-modules {modules} \\",
            f"  --max-lora-rank {vllm_rank(rank)} --max-loras {len(adapters)} \\",
        ]
    lines.append('  "$@"')
    return "\n".join(lines) + "\n"


def vllm_rank(rank: int) -> int:
    """The smallest --max-lora-rank vLLM accepts that holds an adapter of rank `rank`.

    >>> vllm_rank(8), vllm_rank(12), vllm_rank(2)
    (8, 16, 8)
    """
    fits = next((r for r in VLLM_RANKS if r >= rank), None)
    if fits is None:
        raise ConfigError(
            f"LoRA rank {rank} is above {VLLM_RANKS[-1]}, the largest vLLM serves; fit the adapter "
            "again with a smaller lora.r"
        )
    return fits


def adapter_rank(config_path: Path) -> int:
    """The largest rank in a PEFT adapter_config.json (`r`, and any per-module `rank_pattern`)."""
    config = json.loads(Path(config_path).read_text(encoding="utf-8"))
    return max([int(config.get("r") or 0), *(int(r) for r in (config.get("rank_pattern") or {}).values())])


def _refusal(version, info: dict) -> str | None:
    """Why vLLM cannot serve `version` and what to do instead, or None when it can."""
    from adaptlab import kinds

    ref, k = version.ref, kinds.kind(version.strategy)
    leave_out = f"serve it with `adaptlab serve`, or leave {ref} out of the export"
    if not k.llm:
        return (
            f"{ref} is a {version.strategy} version: it runs no language model, so vLLM has nothing to "
            f"serve; {leave_out}"
        )
    if k.own_weights:
        return (
            f"{ref} is a {version.strategy} fine-tune (a whole model of its own, not an adapter over the "
            f"shared base): export it with `adaptlab export {version.folder} --out OUT --format merged` "
            "and start its own `vllm serve OUT`; leave it out of this export"
        )
    if k.reads_documents:
        return (
            f"{ref} is a {version.strategy} version: it retrieves passages of its documents for every "
            f"question, which vLLM cannot do; {leave_out}"
        )
    if isinstance(info.get("base_model"), dict):
        endpoint = info["base_model"]
        return (
            f"{ref} was fitted on the endpoint {endpoint.get('base_url')} (model "
            f"{endpoint.get('model')!r}), not on a local base model; call that endpoint, or leave {ref} "
            "out"
        )
    if not isinstance(info.get("base_model"), str):
        return f"{ref}: its solver.json names no base model; {leave_out}"
    if k.trains and not (version.folder / ADAPTER_FILES[0]).is_file():
        return (
            f"{ref} is a {version.strategy} version without a PEFT adapter; vLLM serves fine-tuned "
            f"versions only as LoRA adapters; {leave_out}"
        )
    return None


def _one_base(infos: dict[str, dict]) -> str:
    bases: dict[str, list[str]] = {}
    for ref, info in infos.items():
        bases.setdefault(info["base_model"], []).append(ref)
    if len(bases) > 1:
        listed = "; ".join(f"{', '.join(refs)} on {_shown(name)!r}" for name, refs in bases.items())
        raise ConfigError(
            f"one vLLM server serves one base model, but these versions were fitted on {len(bases)}: "
            f"{listed}; export each base model's versions to a folder of its own"
        )
    return next(iter(bases))


def _base_folder(base_name: str, infos: dict[str, dict]) -> tuple[Path, bool]:
    """(the base model's safetensors folder, whether to copy it into OUT), after checking its weights are the versions'
    own."""
    from adaptlab.models.base import model_source, resolve_model_folder, weights_digest

    folder = resolve_model_folder(base_name)  # a GGUF is converted once (cached) here
    found = weights_digest(base_name)["weights_sha256"]
    for ref, info in infos.items():
        expected = info.get("base_sha256")
        if expected and expected != found:
            raise ModelError(
                f"{ref} was fitted on base model {_shown(base_name)!r} with other weights (sha256 "
                f"{expected[:12]}...) than the ones there now ({found[:12]}...); restore those "
                f"weights, or fit {ref} again"
            )
    return folder, model_source(base_name).is_file()


def _end_of_turn(folder: Path) -> int:
    """The token id that ends an assistant turn: part of every label's answer when labels are scored."""
    from adaptlab.models.base import end_of_turn_id, load_tokenizer

    tokenizer, _ = load_tokenizer(str(folder))
    return int(end_of_turn_id(tokenizer))


def _entry(version, info: dict, model: str, shots: list | None) -> dict:
    from adaptlab.engine.prompt import system_text
    from adaptlab.task import Task

    task = Task.from_dict(info["task"])
    return {
        "kind": version.strategy,
        "contender": version.contender or version.strategy,
        "model": model,
        "system": system_text(task),
        "shots": shots,
        "task": task.to_dict(),
    }


def _shots(version, info: dict):
    """A prompted version's shots, as its kind exports them (`Kind.export_shots`; none: the instruction only)."""
    from adaptlab import kinds

    export = kinds.kind(version.strategy).export_shots
    if export is None:
        return kinds.ExportedShots([])
    try:
        return export(version.folder, info)
    except ConfigError as exc:
        raise ConfigError(f"{version.ref}: {exc}; leave {version.ref} out of the export") from None


def _folder_name(ref: str) -> str:
    return ref.replace("@", "-")


def _shown(name: str) -> str:
    return Path(name).name if ("/" in name or "\\" in name) else name


def _dq(text: str) -> str:
    """`text` safe inside double quotes in sh."""
    return "".join("\\" + c if c in '"\\$`' else c for c in text)


def not_exportable() -> str:
    """The kinds `_refusal` refuses by their traits alone, from the kinds' table: each group with why, or what to do."""
    from adaptlab import kinds

    every = kinds.kinds()
    groups = [
        ([k.name for k in every if not k.llm], "no language model"),
        (
            [k.name for k in every if k.llm and k.own_weights],
            "a whole model each: `adaptlab export FOLDER --out OUT --format merged`, then `vllm serve OUT`",
        ),
        ([k.name for k in every if k.llm and not k.own_weights and k.reads_documents], "retrieval runs in adaptlab"),
    ]
    return "Not exportable to vLLM: " + "; ".join(f"{', '.join(names)} ({why})" for names, why in groups if names) + "."


def _readme(base_name: str, base_ref: str, copied: bool, result: VllmExport) -> str:
    where = (
        f"base/ holds the base model ({_shown(base_name)}, converted from GGUF to safetensors): copy this whole folder."
        if copied
        else f"The base model is NOT copied here: serve.sh names its folder\n  {base_ref}\nCopy that "
        "folder to the GPU machine too, and set ADAPTLAB_VLLM_BASE=/its/path there if the path "
        "differs."
    )
    from adaptlab.tasks import task_kinds

    labelled = " and ".join(t.name for t in task_kinds() if t.labelled)
    generated = " and ".join(t.name for t in task_kinds() if not t.labelled)
    lines = [
        "vLLM export written by `adaptlab export --format vllm`",
        "",
        f"LoRA versions (served by vLLM as adapters): {', '.join(result.adapters) or 'none'}",
        f"Prompted versions (the base model with client.py's prompt): {', '.join(result.prompted) or 'none'}",
        "",
        where,
        "",
        "On the GPU machine:",
        "  pip install vllm",
        "  sh serve.sh --port 8000                      # extra arguments go to vllm serve",
        "  python client.py VERSION 'a query'           # one answer; or one query per line on stdin",
        "  python client.py --list                      # the versions and the model name each one calls",
        "",
        "client.py (Python 3.9+, stdlib only) builds each version's prompt exactly as adaptlab does",
        "(system turn: instruction and label set; the shots as user/assistant turns; the query) and:",
        f"- {labelled} tasks (a label set): scores every label as adaptlab does, the summed log-probability of",
        "  the label's tokens and the end-of-turn token (vLLM's /tokenize and prompt_logprobs), and answers the best;",
        f"- {generated} tasks: a greedy chat completion with the task's max_new_tokens, stop and end strings.",
        "Any OpenAI client can call the server too: `model` is the LoRA version's name (task@vN) or, for",
        "prompted versions, the base model's served name (see prompts.json), with the messages client.py builds.",
        "",
        "What differs from `adaptlab serve`: vLLM computes in bf16/fp16, so close calls can change; shots are",
        "never dropped to fit the context (vLLM refuses a prompt over its context length); a prompt is",
        "tokenized whole by vLLM, where adaptlab keeps special-token text in user messages as plain text;",
        "an answer that begins repeating itself runs on to max_new_tokens (adaptlab ends it there: task.stop_loops).",
        *textwrap.wrap(not_exportable(), 100),
    ]
    if result.notes:
        lines += ["", "Notes:"] + [f"- {n}" for n in result.notes]
    return "\n".join(lines) + "\n"
