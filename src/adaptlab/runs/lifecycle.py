"""One run's life, the same for `compare` and `finetune`: claim a folder, say it runs, end it completed or failed.

    run_dir = claim(out, name, config)      # a new folder; experiment.yaml written, never overwritten
    with lifetime(run_dir, "compare", registry, config=config):
        ...                                 # run.json says running; an exception marks it failed (and re-raises)
        finish(run_dir, "compare", registry, config, metrics, recommendation=...)

A run stopped on purpose (finetune's SIGTERM) raises an error with a `run_status`
("interrupted"), which it has already recorded; `lifetime` leaves that status alone.
"""

from __future__ import annotations

from contextlib import contextmanager
from pathlib import Path

import yaml

from adaptlab.errors import ConfigError
from adaptlab.files import new_folder, write_text_new
from adaptlab.home import adaptlab_home
from adaptlab.runs.folder import mark


def refuse_taken(out: Path | None, hint: str) -> None:
    """A ConfigError when `out` exists and is not an empty folder (`hint`: what to do instead)."""
    if out is not None and Path(out).exists() and (not Path(out).is_dir() or any(Path(out).iterdir())):
        raise ConfigError(f"{out} already exists and is not an empty folder; {hint}")


def claim(out: Path | None, name: str, config: dict) -> Path:
    """The run's folder (`out`, else a new one under $ADAPTLAB_HOME/runs named after `name`), absolute as the registry
    records it,
    with the resolved experiment written as experiment.yaml: created, never overwritten, so of two runs given the same
    folder at once one stops here."""
    run_dir = Path(out).resolve() if out else new_folder(adaptlab_home() / "runs", name)
    run_dir.mkdir(parents=True, exist_ok=True)
    try:
        write_text_new(run_dir / "experiment.yaml", yaml.safe_dump(config, sort_keys=False))
    except FileExistsError:
        raise ConfigError(f"{run_dir} was just taken by another run; choose another --out") from None
    return run_dir


@contextmanager
def lifetime(run_dir: Path, run: str, registry=None, config: dict | None = None, speaks: bool = True, **fields):
    """run.json (and the registry's run record) say `running` inside the block; an exception marks both `failed`
    with the error, unless it carries a `run_status` of its own. `speaks`: False on processes that write nothing (ranks
    > 0)."""
    if speaks:
        mark(run_dir, run, "running", config=config, error=None, **fields)
        if registry is not None:
            registry.add_run(run_dir.name, run, str(run_dir), config or {}, None, "running")
    try:
        yield
    except BaseException as exc:
        if speaks and getattr(exc, "run_status", None) is None:
            mark(run_dir, run, "failed", error=f"{type(exc).__name__}: {exc}"[:500])
            if registry is not None:
                registry.add_run(run_dir.name, run, str(run_dir), config or {}, None, "failed")
        raise


def finish(run_dir: Path, run: str, registry, config: dict, metrics: dict | None, **fields) -> None:
    """The run completed: the registry records its metrics, run.json says so."""
    if registry is not None:
        registry.add_run(run_dir.name, run, str(run_dir), config, metrics, "completed")
    mark(run_dir, run, "completed", config=config, **fields)
