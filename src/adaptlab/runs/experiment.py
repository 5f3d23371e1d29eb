"""Reading an experiment file: YAML in, a validated `ExperimentConfig` out, or errors that name the key and the bad
value.

Each strategy entry is validated by its own kind's config model (adaptlab.kinds finds
it by `name`), so a kind added by a plugin is read like a built-in one.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import yaml
from pydantic import ValidationError

from adaptlab import kinds
from adaptlab.config import ExperimentConfig, RemoteModelConfig, StrategyConfig
from adaptlab.errors import ConfigError
from adaptlab.models.embedded import EMBEDDED_NAME

if TYPE_CHECKING:
    from pydantic_core import ErrorDetails


def load_experiment(path: str | Path) -> tuple[ExperimentConfig, Path]:
    """Parse and validate an experiment YAML; returns it with the folder paths are relative to."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(
            f"{path}: no such experiment file; pass the path of a YAML file such as "
            "examples/banking-cards/experiment.yaml"
        )
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {exc}") from None
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: expected a mapping with task, data and strategies at the top level")
    return parse_experiment(raw, str(path)), path.parent


def experiment_of(experiment) -> tuple[ExperimentConfig, Path]:
    """An experiment given as a YAML path, a mapping (as the YAML would hold), an ExperimentConfig, or one already read
    (an ExperimentConfig with its folder), with the folder its data paths are relative to (the YAML's folder; the
    working directory for a mapping or a bare ExperimentConfig)."""
    if isinstance(experiment, tuple) and len(experiment) == 2 and isinstance(experiment[0], ExperimentConfig):
        return experiment[0], Path(experiment[1])
    if isinstance(experiment, ExperimentConfig):
        return experiment, Path.cwd()
    if isinstance(experiment, dict):
        return parse_experiment(experiment, "<experiment mapping>"), Path.cwd()
    return load_experiment(experiment)


def parse_experiment(raw: dict, source: str = "<experiment>") -> ExperimentConfig:
    """Validate a parsed experiment mapping; errors name the key and the bad value."""
    problems, entries = [], raw.get("strategies")
    if isinstance(entries, list):
        parsed = []
        for i, entry in enumerate(entries):
            where = f"strategies[{i}]"
            if not isinstance(entry, dict):
                problems.append(f"  - '{where}': expected a mapping with a name, got {entry!r}")
                continue
            if entry.get("name") not in kinds.names():
                problems.append(
                    f"  - '{where}.name' must be one of {', '.join(kinds.names())}; got {entry.get('name')!r}"
                )
                continue
            try:
                parsed.append(kinds.kind(entry["name"]).config.model_validate(entry))
            except ValidationError as exc:
                problems += [_describe(e, ("strategies", i)) for e in exc.errors()]
        raw = {**raw, "strategies": parsed if not problems else [StrategyConfig(name="_")]}
    try:
        config = ExperimentConfig.model_validate(raw)
    except ValidationError as exc:
        problems += [_describe(e) for e in exc.errors()]
    if problems:
        raise ConfigError(f"{source}: invalid experiment:\n" + "\n".join(problems)) from None
    ids = [s.key for s in config.strategies]
    dupes = sorted({n for n in ids if ids.count(n) > 1})
    if dupes:
        raise ConfigError(
            f"{source}: contender {dupes[0]!r} is listed twice; give each entry of one kind its own "
            f"`id` (e.g. id: {dupes[0]}_2)"
        )
    check_local_bases(config, source)
    return config


def check_local_bases(config: ExperimentConfig, source: str = "<experiment>") -> None:
    """With an endpoint as the experiment's model, refuse a fine-tuned contender that names no local model to train."""
    from adaptlab.runs.prepare import training_of

    if not isinstance(config.model, RemoteModelConfig):
        return
    for i, strategy in enumerate(config.strategies):
        training = training_of(strategy)
        if training is not None and training.model is None and not isinstance(getattr(strategy, "model", None), str):
            raise ConfigError(
                f"{source}: strategies[{i}] ({strategy.key}) fine-tunes, which needs local weights, "
                "but the experiment's model is the endpoint "
                f"{config.model.name!r} at {config.model.base_url}; set its own local base, e.g. "
                "`model: Qwen/Qwen2.5-1.5B-Instruct` (a Hub id in the local cache, a folder or "
                f"{EMBEDDED_NAME}) on that contender"
            )


def _describe(error: ErrorDetails, prefix: tuple = ()) -> str:
    loc = ".".join(str(p) if not isinstance(p, int) else f"[{p}]" for p in prefix + tuple(error["loc"])).replace(
        ".[", "["
    )
    if error["type"] == "extra_forbidden":
        return f"  - unknown key '{loc}'; remove it or check its spelling"
    value = error.get("input")
    shown = "" if isinstance(value, dict) else f", got {value!r}"
    return f"  - '{loc}': {error['msg']}{shown}"
