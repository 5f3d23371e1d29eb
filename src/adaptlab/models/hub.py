"""Hugging Face Hub ids (`Qwen/Qwen2.5-1.5B-Instruct`), read from the local cache; fetched only when the user says so.

The cache is huggingface_hub's: $HF_HUB_CACHE, else $HF_HOME/hub, else ~/.cache/huggingface/hub,
holding `models--Org--Name/snapshots/<sha>/` and `refs/<branch>` (a file with the sha).
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from adaptlab.errors import ModelError

HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")


def is_hub_id(name: str) -> bool:
    """Whether `name` reads as Org/Name (a path that exists locally is a path, never an id)."""
    return bool(HUB_ID.match(name)) and not name.startswith(".") and not Path(name).expanduser().exists()


def hub_cache() -> Path:
    """The folder huggingface_hub keeps models in, read from the environment at each call (tests move it)."""
    if os.environ.get("HF_HUB_CACHE"):
        return Path(os.environ["HF_HUB_CACHE"]).expanduser()
    home = os.environ.get("HF_HOME") or os.path.join(os.environ.get("XDG_CACHE_HOME") or "~/.cache", "huggingface")
    return Path(home).expanduser() / "hub"


def downloads_allowed(download: bool) -> bool:
    """The user allowed fetching: `download: true` in the experiment, or HF_HUB_OFFLINE=0 in the environment."""
    return download or os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in ("0", "false", "no", "off")


def hub_folder(repo_id: str, revision: str | None = None, download: bool = False) -> Path:
    """The cached snapshot of `repo_id` (at `revision`, else refs/main); fetched only when `downloads_allowed`."""
    found = cached_snapshot(repo_id, revision)
    if found is not None:
        return found
    if not downloads_allowed(download):
        raise ModelError(missing_message(repo_id, revision))
    return _download(repo_id, revision)


def cached_snapshot(repo_id: str, revision: str | None = None) -> Path | None:
    """The snapshot folder holding `repo_id`'s config.json in the cache, or None."""
    repo = hub_cache() / f"models--{repo_id.replace('/', '--')}"
    wanted = revision or "main"
    ref = repo / "refs" / wanted
    sha = ref.read_text(encoding="utf-8").strip() if ref.is_file() else wanted
    folder = repo / "snapshots" / sha
    return folder if (folder / "config.json").is_file() else None


def fetch_command(repo_id: str, revision: str | None = None) -> str:
    """The shell command that fetches `repo_id` with the installed huggingface_hub (`hf` since 0.34, `huggingface-cli`
    before)."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        major, minor = (int(p) for p in version("huggingface_hub").split(".")[:2])
    except (PackageNotFoundError, ValueError):
        major, minor = 1, 0
    tool = "hf download" if (major, minor) >= (0, 34) else "huggingface-cli download"
    return f"{tool} {repo_id}" + (f" --revision {revision}" if revision else "")


def missing_message(repo_id: str, revision: str | None) -> str:
    at = f" at revision {revision}" if revision else ""
    return (
        f"model {repo_id!r}{at} is not in the Hugging Face cache ({hub_cache()}); adaptlab downloads "
        "only when told to. "
        f"Fetch it with: {fetch_command(repo_id, revision)}  (or set model.download: true, or HF_HUB_OFFLINE=0); "
        "HF_HOME or HF_HUB_CACHE point at another cache"
    )


def _download(repo_id: str, revision: str | None) -> Path:
    """snapshot_download of the files a causal LM needs (weights as safetensors, config, tokenizer)."""
    from huggingface_hub import constants, snapshot_download

    offline = constants.HF_HUB_OFFLINE  # read once at import; adaptlab sets HF_HUB_OFFLINE=1 by default
    constants.HF_HUB_OFFLINE = False
    try:
        folder = snapshot_download(
            repo_id,
            revision=revision,
            cache_dir=hub_cache(),
            allow_patterns=["*.json", "*.safetensors", "*.model", "*.txt", "*.jinja"],
        )
    except Exception as exc:  # huggingface_hub raises many types (network, auth, missing repo)
        raise ModelError(
            f"model {repo_id!r}: download failed ({type(exc).__name__}: {exc}); check the id and "
            f"your network, or fetch it with: {fetch_command(repo_id, revision)}"
        ) from None
    finally:
        constants.HF_HUB_OFFLINE = offline
    return Path(folder)
