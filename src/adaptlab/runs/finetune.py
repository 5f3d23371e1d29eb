"""`adaptlab finetune`: one fine-tuning run of an experiment, checkpointed, resumable, with its lineage.

A run folder holds:

    experiment.yaml      the resolved experiment (data paths absolute); --resume reads it
    run.json             run, strategy, status (running | interrupted | completed), data hashes, config (runs/folder.py); a completed run is not resumed
    checkpoints/         step-NNNNNN/ folders (finetune.checkpoint), the newest two kept
    steps.jsonl          one line per optimizer step: loss and the training lines it used
    adapter/ or model/   the result: a PEFT adapter (lora) or a Hugging Face model folder (full)
    merged/              with --merge (lora): base plus adapter as one safetensors model
    lineage.json         base model, data hashes, config, seed, metrics, versions

Under `accelerate launch` every rank runs this; rank 0 alone writes and reports (`events`).
The result is registered as the task's next version, like compare's solvers.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import time
from pathlib import Path
from typing import Callable

import yaml

from adaptlab import kinds
from adaptlab.config import ExperimentConfig
from adaptlab.errors import AdaptlabError, ConfigError
from adaptlab.files import new_folder, write_json, write_text_atomic, write_text_new
from adaptlab.finetune.checkpoint import CheckpointFolder, checkpoint_step, checkpoints, load_checkpoint
from adaptlab.finetune.fit import fit_and_dev
from adaptlab.finetune.trainer import StepReport
from adaptlab.home import adaptlab_home
from adaptlab.models.base import weights_digest
from adaptlab.runs.events import Events
from adaptlab.runs.experiment import load_experiment, parse_experiment
from adaptlab.runs.folder import mark, now
from adaptlab.runs.prepare import documents_for, prepare, resolved


class Interrupted(AdaptlabError):
    """Training stopped on SIGTERM after writing a checkpoint; the run can be resumed."""

    exit_code = 143  # 128 + SIGTERM, what shells report for a terminated process


def run_finetune(
    experiment: str | Path | None = None,
    strategy: str | None = None,
    out: Path | None = None,
    resume: Path | None = None,
    checkpoint_every: int = 50,
    merge: bool = False,
    events: Events | None = None,
    on_step: Callable[[StepReport], None] | None = None,
) -> tuple[dict, Path]:
    """Fine-tune with one `lora` or `full` strategy of the experiment; returns lineage.json's content and the run folder."""
    rank = int(os.environ.get("RANK", "0"))
    events = events if events is not None and rank == 0 else Events()  # one process speaks under accelerate
    config, root, name, run_dir = _plan(experiment, strategy, out, resume)
    if resume and (done := _completed(run_dir)):
        merge_hint = f"; to merge its adapter: adaptlab export {run_dir} OUT --format merged" if merge and not done.get("merged") else ""
        events.message(f"{run_dir} already completed ({done.get('finished', '?')}): nothing to resume; its results are in lineage.json. To train again, start a new run with adaptlab finetune EXPERIMENT{merge_hint}")
        return (done if rank == 0 else {}), run_dir
    strategy_config = next(s for s in config.strategies if s.key == name)
    prepared = prepare(config, root)
    train, test, task = prepared.train, prepared.test, prepared.task
    for warning in prepared.warnings:
        events.message(warning, "warning")
    fit_set, dev = fit_and_dev(task, train, prepared.dev, strategy_config, config.seed)
    hashes = {"train": train.content_hash, "test": test.content_hash, "dev": dev.content_hash if dev else None}

    latest = None
    if resume:
        info = json.loads((run_dir / "run.json").read_text(encoding="utf-8"))
        if info["data"] != hashes:
            raise ConfigError(f"{run_dir}: the data changed since this run started (content hashes differ); start a new run instead of resuming")
        found = checkpoints(run_dir / "checkpoints")
        latest = found[-1] if found else None
        events.message(f"resuming {run_dir} from {latest.name if latest else 'the start (no complete checkpoint yet)'}")
    elif rank == 0:
        run_dir = run_dir or new_folder(adaptlab_home() / "runs", f"{config.task.name}-{name}")
        run_dir.mkdir(parents=True, exist_ok=True)
        try:  # created, never overwritten: of two runs given the same --out at once, one stops here
            write_text_new(run_dir / "experiment.yaml", yaml.safe_dump(resolved(config, root), sort_keys=False))
        except FileExistsError:
            raise ConfigError(f"{run_dir} was just taken by another run; choose another --out") from None
    ckpt_dir = run_dir / "checkpoints"
    if rank == 0:
        mark(run_dir, "finetune", "running", strategy=name, data=hashes, config=resolved(config, root))
    if _trim_steps(run_dir / "steps.jsonl", checkpoint_step(latest) if latest else 0, rank):
        events.message("dropped the torn last line of steps.jsonl (the process was killed while writing it); that step is trained and logged again", "note")

    from adaptlab.models import load_base_model
    from adaptlab.models.device import default_device

    model_name = strategy_config.model or config.model
    with events.status(f"loading base model {model_name}"):
        base = load_base_model(model_name, device=default_device())
    events.message(f"task {task.name}: {name} on {len(fit_set)} training rows" + (f", {len(dev)} dev rows" if dev else " (no dev split)") + f"; base {model_name} on {base.device}")

    stop = {"requested": False}

    def on_sigterm(signum, frame):
        stop["requested"] = True
        events.message("SIGTERM: finishing this step, then checkpointing and exiting", "warning")

    previous = signal.signal(signal.SIGTERM, on_sigterm)
    lines = [e.line for e in fit_set]
    bar = None

    def step_done(report: StepReport) -> None:
        nonlocal bar
        if bar is None:
            bar = events.bar(f"{name}: training", report.total_steps, completed=report.step - 1)
        bar.update(report.step, report.describe())
        if rank == 0:
            with (run_dir / "steps.jsonl").open("a", encoding="utf-8") as f:
                f.write(json.dumps({"step": report.step, "epoch": report.epoch, "loss": report.loss, "lines": [lines[i] for i in report.rows], "dev_score": report.dev_score}) + "\n")
        if on_step:
            on_step(report)

    try:
        from adaptlab.kinds.context import BuildContext, ModelSource

        extra = {"checkpoints": CheckpointFolder(ckpt_dir, checkpoint_every), "should_stop": lambda: stop["requested"], "resume": load_checkpoint(latest, rank) if latest else None}
        fine_tune = kinds.kind(strategy_config.name).build(strategy_config.model_copy(update={"model": None}), BuildContext(ModelSource(base), config.seed, on_step=step_done, dev=dev, documents=documents_for(config, root, base), extra=extra))
        clock = time.perf_counter()
        with events.bars():
            solver = fine_tune.fit(task, fit_set)
        fit_seconds = time.perf_counter() - clock
    finally:
        signal.signal(signal.SIGTERM, previous)
    result = fine_tune.result
    if result.interrupted:
        if rank == 0:
            mark(run_dir, "finetune", "interrupted", step=result.state.step)
        raise Interrupted(f"stopped at step {result.state.step} of {result.total_steps} after writing a checkpoint; continue with: adaptlab finetune --resume {run_dir}")

    if rank != 0:
        return {}, run_dir
    from adaptlab.metrics import task_metrics

    with events.status(f"scoring the {len(test)} test rows"):
        predicted = [p.output for p in solver.predict(test.inputs)]
    metrics, ci = task_metrics(task.spec, test.outputs, predicted, list(task.labels), resamples=1000, qa=task.scoring)
    output = run_dir / ("adapter" if solver.adapter else "model")
    solver.save(output)
    if merge and solver.adapter:
        from adaptlab.finetune.export import merge_lora

        shutil.rmtree(run_dir / "merged", ignore_errors=True)  # this run's own, from an attempt killed before it completed
        with events.status("writing merged weights"):
            merge_lora(model_name, output, run_dir / "merged")
    elif merge:
        events.message("--merge has nothing to do for full fine-tuning: model/ already holds full weights", "note")
    lineage = {
        "strategy": name,
        "task": task.to_dict(),
        "base_model": {"name": model_name, **weights_digest(model_name)},
        "data": {k: {"path": str(root / p), "sha256": hashes[k]} for k, p in (("train", config.data.train), ("test", config.data.test), ("dev", config.data.dev)) if p}
        | ({"dev": {"split_of": "train", "fraction": strategy_config.dev_fraction, "rows": len(dev), "sha256": hashes["dev"]}} if dev and not config.data.dev else {}),
        "config": strategy_config.model_dump(mode="json"),
        "seed": config.seed,
        "metrics": {"test": metrics, "test_ci95": {k: list(v) for k, v in ci.items()}, "best_dev_score": result.state.best_score},
        "training": result.to_dict() | {"wall_seconds_this_process": fit_seconds},
        "output": output.name,
        "merged": "merged" if merge and solver.adapter else None,
        "versions": _versions(),
        "finished": now(),
    }
    from adaptlab.registry import default_registry

    registry = default_registry()  # registered like compare's solvers: `adaptlab serve` can answer with it
    registry.add_run(run_dir.name, "finetune", str(run_dir), resolved(config, root), lineage["metrics"]["test"], "completed")
    version = registry.add_version(task.name, strategy_config.name, output, lineage, run_id=run_dir.name, extra={"task.json": task.to_dict()}, contender=name)
    registry.close()
    lineage["registered_as"] = version.ref
    events.message(f"{name}: registered as {version.ref}")
    write_json(run_dir / "lineage.json", lineage)
    mark(run_dir, "finetune", "completed", step=result.state.step)
    return lineage, run_dir


def _plan(experiment, strategy, out, resume) -> tuple[ExperimentConfig, Path, str, Path | None]:
    """The experiment, the folder its paths are relative to, the strategy to train, and the run folder (None: a new one under runs/)."""
    if resume:
        run_dir = Path(resume)
        if not (run_dir / "run.json").is_file() or not (run_dir / "experiment.yaml").is_file():
            raise ConfigError(f"{run_dir}: not a fine-tuning run folder (no run.json and experiment.yaml); pass the folder `adaptlab finetune` printed")
        saved = parse_experiment(yaml.safe_load((run_dir / "experiment.yaml").read_text(encoding="utf-8")), str(run_dir / "experiment.yaml"))
        if experiment is not None:
            given, root = load_experiment(experiment)
            if resolved(given, root) != resolved(saved, Path("/")):
                raise ConfigError(f"{experiment} differs from the experiment run {run_dir} was started with; resume with `adaptlab finetune --resume {run_dir}` alone, or start a new run")
        name = json.loads((run_dir / "run.json").read_text(encoding="utf-8"))["strategy"]
        return saved, Path("/"), name, run_dir
    if experiment is None:
        raise ConfigError("pass an experiment file, or --resume RUN to continue a run")
    config, root = load_experiment(experiment)
    candidates = [s.key for s in config.strategies if kinds.kind(s.name).trains]
    tuners = " or ".join(f"`{{name: {n}}}`" for n in kinds.names("fine_tuned"))
    if strategy is not None and strategy not in candidates:
        raise ConfigError(f"{experiment}: no fine-tuning contender {strategy!r}; it lists {', '.join(candidates) or 'none (add a strategy ' + tuners + ')'}")
    if strategy is None and len(candidates) != 1:
        raise ConfigError(f"{experiment}: " + (f"add a strategy {tuners} to fine-tune" if not candidates else f"it lists {' and '.join(candidates)}; choose one with --strategy"))
    name = strategy or candidates[0]
    if out is None and int(os.environ.get("WORLD_SIZE", "1")) > 1:
        raise ConfigError("under accelerate launch, pass --out RUN so every process uses the same run folder")
    run_dir = Path(out) if out else None
    if int(os.environ.get("RANK", "0")) == 0 and run_dir and run_dir.exists() and (not run_dir.is_dir() or any(run_dir.iterdir())):
        raise ConfigError(f"{run_dir} already exists and is not empty; choose another --out, or continue it with --resume {run_dir}")
    return config, root, name, run_dir


def _completed(run_dir: Path) -> dict | None:
    """lineage.json's content when run.json says the run completed; None while it can still be resumed."""
    if json.loads((run_dir / "run.json").read_text(encoding="utf-8")).get("status") != "completed":
        return None
    try:
        return json.loads((run_dir / "lineage.json").read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise AdaptlabError(f"{run_dir}: run.json says the run completed, but lineage.json cannot be read ({exc}); start a new run") from None


def _trim_steps(path: Path, keep_until: int, rank: int) -> bool:
    """steps.jsonl keeps the steps the checkpoint holds; the resumed run writes the rest again. True if it dropped a torn last line."""
    if rank != 0 or not path.is_file():
        return False
    lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
    last = max((i for i, line in enumerate(lines) if line.strip()), default=-1)
    kept, torn = [], False
    for i, line in enumerate(lines):
        if not line.strip():
            continue
        try:
            step = int(json.loads(line)["step"])
        except (ValueError, KeyError, TypeError):
            if i < last:
                raise AdaptlabError(f"{path} line {i + 1}: not a step record ({line[:60]!r}); delete that line and resume again") from None
            torn = True  # a kill while this line was appended; the checkpoint was written after it, so its step is redone
            continue
        if step <= keep_until:
            kept.append(line)
    write_text_atomic(path, "".join(line + "\n" for line in kept))
    return torn


def _versions() -> dict:
    from importlib.metadata import version

    return {pkg: version(pkg) for pkg in ("adaptlab", "torch", "transformers", "peft", "accelerate")}
