"""`adaptlab finetune`: one fine-tuning run of an experiment, checkpointed, resumable, with its lineage.

A run folder holds:

    experiment.yaml      the resolved experiment (data paths absolute); --resume reads it
    run.json             run, strategy, status (running | interrupted | completed), data hashes, config
    (runs/folder.py); a completed run is not resumed
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
from collections.abc import Callable
from pathlib import Path

import yaml

from adaptlab import kinds
from adaptlab.config import ExperimentConfig, LocalModelConfig, RemoteModelConfig, TrainConfig
from adaptlab.errors import AdaptlabError, ConfigError
from adaptlab.files import write_text_atomic
from adaptlab.finetune.checkpoint import CheckpointFolder, checkpoint_step, checkpoints, load_checkpoint
from adaptlab.finetune.fit import fit_and_dev
from adaptlab.finetune.trainer import StepReport
from adaptlab.models.base import weights_digest
from adaptlab.results import write_results
from adaptlab.runs.events import Events, TrainingBar
from adaptlab.runs.experiment import load_experiment, parse_experiment
from adaptlab.runs.folder import mark, now
from adaptlab.runs.lifecycle import claim, finish, lifetime
from adaptlab.runs.prepare import documents_for, prepare, resolved


class Interrupted(AdaptlabError):
    """Training stopped on SIGTERM after writing a checkpoint; the run can be resumed."""

    exit_code = 143  # 128 + SIGTERM, what shells report for a terminated process
    run_status = "interrupted"  # recorded in run.json before it is raised (runs.lifecycle leaves it)


def run_finetune(
    experiment: str | Path | None = None,
    strategy: str | None = None,
    out: Path | None = None,
    resume: Path | None = None,
    checkpoint_every: int = 50,
    merge: bool = False,
    events: Events | None = None,
    on_step: Callable[[StepReport], None] | None = None,
    model: str | None = None,
) -> tuple[dict, Path]:
    """Fine-tune with one `lora` or `full` strategy of the experiment; returns lineage.json's content and the run
    folder.
    `model` replaces the base model (the experiment's, and the strategy's own); a resumed run keeps its recorded one."""
    rank = int(os.environ.get("RANK", "0"))
    events = events if events is not None and rank == 0 else Events()  # one process speaks under accelerate
    if model and resume:
        raise ConfigError(
            f"--model cannot change a run being resumed: {resume} continues on the base model it "
            "started with; leave --model off"
        )
    config, root, name, run_dir = _plan(experiment, strategy, out, resume)
    if model:
        config = config.model_copy(
            update={
                "model": model,
                "strategies": [s.model_copy(update={"model": None}) if s.key == name else s for s in config.strategies],
            }
        )
    if resume and run_dir and (done := _completed(run_dir)):  # _plan gives a resumed run's folder
        merge_hint = (
            f"; to merge its adapter: adaptlab export {run_dir} --out OUT --format merged"
            if merge and not done.get("merged")
            else ""
        )
        events.message(
            f"{run_dir} already completed ({done.get('finished', '?')}): nothing to resume; its "
            "results are in lineage.json. To train again, start a new run with adaptlab finetune "
            f"EXPERIMENT{merge_hint}"
        )
        return (done if rank == 0 else {}), run_dir
    contender = next(s for s in config.strategies if s.key == name)
    assert isinstance(contender, TrainConfig)  # _plan picks a fine-tuning kind, whose settings are a TrainConfig
    prepared = prepare(config, root)
    for warning in prepared.warnings:
        events.message(warning, "warning")
    fit_set, dev = fit_and_dev(prepared.task, prepared.train, prepared.dev, contender, config.seed)
    hashes = {
        "train": prepared.train.content_hash,
        "test": prepared.test.content_hash,
        "dev": dev.content_hash if dev else None,
    }
    latest = _resume_point(run_dir, hashes, events) if resume and run_dir else None
    settings = resolved(config, root)
    if not resume and rank == 0:
        run_dir = claim(run_dir, f"{config.task.name}-{name}", settings)
    assert run_dir is not None  # resumed, claimed above, or --out (which _plan requires under accelerate launch)
    with lifetime(run_dir, "finetune", config=settings, speaks=rank == 0, strategy=name, data=hashes):
        if _trim_steps(run_dir / "steps.jsonl", checkpoint_step(latest) if latest else 0, rank):
            events.message(
                "dropped the torn last line of steps.jsonl (the process was killed while writing "
                "it); that step is trained and logged again",
                "note",
            )
        training = Training(run_dir, contender, fit_set, rank, events, on_step, resumed=latest is not None)
        model_name = contender.model or config.model
        solver, result, fit_seconds = training.run(
            config, root, model_name, prepared.task, dev, checkpoint_every, latest
        )
        if rank != 0:
            return {}, run_dir
        lineage = _lineage(
            config,
            root,
            contender,
            prepared,
            dev,
            hashes,
            solver,
            result,
            fit_seconds,
            model_name,
            merge,
            run_dir,
            events,
        )
        _register(lineage, run_dir, contender, prepared.task, settings, events)
        write_results(run_dir / "lineage.json", lineage)
        finish(run_dir, "finetune", None, settings, None, step=result.state.step)
    return lineage, run_dir


def _resume_point(run_dir: Path, hashes: dict, events: Events):
    """The newest complete checkpoint of a run being resumed (None: from the start); the data must not have changed
    since."""
    info = json.loads((run_dir / "run.json").read_text(encoding="utf-8"))
    if info["data"] != hashes:
        raise ConfigError(
            f"{run_dir}: the data changed since this run started (content hashes differ); start a "
            "new run instead of resuming"
        )
    found = checkpoints(run_dir / "checkpoints")
    latest = found[-1] if found else None
    events.message(f"resuming {run_dir} from {latest.name if latest else 'the start (no complete checkpoint yet)'}")
    return latest


class Training:
    """The training itself: base model loaded, each step logged to steps.jsonl and drawn, SIGTERM turned into a
    checkpoint and a clean stop."""

    def __init__(self, run_dir: Path, contender, fit_set, rank: int, events: Events, on_step, resumed: bool):
        self.run_dir, self.contender, self.rank, self.events, self.on_step = run_dir, contender, rank, events, on_step
        self.lines = [e.line for e in fit_set]
        self.fit_set = fit_set
        self.bar = TrainingBar(events, contender.key, resumed=resumed)
        self.stop_requested = False

    def step_done(self, report: StepReport) -> None:
        self.bar(report)
        if self.rank == 0:
            with (self.run_dir / "steps.jsonl").open("a", encoding="utf-8") as f:
                f.write(
                    json.dumps(
                        {
                            "step": report.step,
                            "epoch": report.epoch,
                            "loss": report.loss,
                            "lines": [self.lines[i] for i in report.rows],
                            "dev_score": report.dev_score,
                        }
                    )
                    + "\n"
                )
        if self.on_step:
            self.on_step(report)

    def on_sigterm(self, signum, frame) -> None:
        self.stop_requested = True
        self.events.message("SIGTERM: finishing this step, then checkpointing and exiting", "warning")

    def run(
        self,
        config,
        root: Path,
        model_name: str | LocalModelConfig | RemoteModelConfig,
        task,
        dev,
        checkpoint_every: int,
        latest,
    ):
        """Fit; returns (solver, the trainer's result, seconds). An interrupted fit is recorded and raised as
        `Interrupted`."""
        from adaptlab.kinds.context import BuildContext, ModelSource
        from adaptlab.models import load_base_model
        from adaptlab.models.device import default_device

        with self.events.status(f"loading base model {model_name}"):
            base = load_base_model(
                model_name, device=default_device(), trained_share=kinds.kind(self.contender.name).trained_share
            )
        self.events.message(
            f"task {task.name}: {self.contender.key} on {len(self.fit_set)} training rows"
            + (f", {len(dev)} dev rows" if dev else " (no dev split)")
            + f"; base {model_name} on {base.device}"
        )
        previous = signal.signal(signal.SIGTERM, self.on_sigterm)
        try:
            extra = {
                "checkpoints": CheckpointFolder(self.run_dir / "checkpoints", checkpoint_every),
                "should_stop": lambda: self.stop_requested,
                "resume": load_checkpoint(latest, self.rank) if latest else None,
            }
            context = BuildContext(
                ModelSource(base),
                config.seed,
                on_step=self.step_done,
                dev=dev,
                documents=documents_for(config, root, base),
                extra=extra,
            )
            fine_tune = kinds.kind(self.contender.name).build(
                self.contender.model_copy(update={"model": None}), context
            )
            clock = time.perf_counter()
            with self.events.bars():
                solver = fine_tune.fit(task, self.fit_set)
            seconds = time.perf_counter() - clock
        finally:
            signal.signal(signal.SIGTERM, previous)
        result = fine_tune.result
        if result.interrupted:
            if self.rank == 0:
                mark(self.run_dir, "finetune", "interrupted", step=result.state.step)
            raise Interrupted(
                f"stopped at step {result.state.step} of {result.total_steps} after writing a "
                f"checkpoint; continue with: adaptlab finetune --resume {self.run_dir}"
            )
        return solver, result, seconds


def _lineage(
    config, root, contender, prepared, dev, hashes, solver, result, fit_seconds, model_name, merge, run_dir, events
) -> dict:
    """Score the test rows, save the adapter or model (and merged weights with --merge); lineage.json's content."""
    from adaptlab.metrics import task_metrics

    task, test = prepared.task, prepared.test
    with events.status(f"scoring the {len(test)} test rows"):
        predicted = [p.output for p in solver.predict(test.inputs)]
    metrics, ci = task_metrics(task.spec, test.outputs, predicted, list(task.labels), resamples=1000, qa=task.scoring)
    output = run_dir / ("adapter" if solver.adapter else "model")
    solver.save(output)
    merged = _merge(merge, solver, model_name, output, run_dir, events)
    return {
        "strategy": contender.key,
        "task": task.to_dict(),
        "base_model": {"name": model_name, **weights_digest(model_name)},
        "model": solver.base.info(),
        "data": {
            k: {"path": str(root / p), "sha256": hashes[k]}
            for k, p in (("train", config.data.train), ("test", config.data.test), ("dev", config.data.dev))
            if p
        }
        | (
            {
                "dev": {
                    "split_of": "train",
                    "fraction": contender.dev_fraction,
                    "rows": len(dev),
                    "sha256": hashes["dev"],
                }
            }
            if dev and not config.data.dev
            else {}
        ),
        "config": contender.model_dump(mode="json"),
        "seed": config.seed,
        "metrics": {
            "test": metrics,
            "test_ci95": {k: list(v) for k, v in ci.items()},
            "best_dev_score": result.state.best_score,
        },
        "training": result.to_dict() | {"wall_seconds_this_process": fit_seconds},
        "output": output.name,
        "merged": merged,
        "versions": _versions(),
        "finished": now(),
    }


def _merge(merge: bool, solver, model_name: str, output: Path, run_dir: Path, events: Events) -> str | None:
    """--merge: base plus adapter written as one model in merged/ (lora); full fine-tuning has nothing to merge."""
    if merge and solver.adapter:
        from adaptlab.finetune.export import merge_lora

        shutil.rmtree(
            run_dir / "merged", ignore_errors=True
        )  # this run's own, from an attempt killed before it completed
        with events.status("writing merged weights"):
            merge_lora(model_name, output, run_dir / "merged")
        return "merged"
    if merge:
        events.message("--merge has nothing to do for full fine-tuning: model/ already holds full weights", "note")
    return None


def _register(lineage: dict, run_dir: Path, contender, task, settings: dict, events: Events) -> None:
    """Register the result as the task's next version, like compare's solvers (`adaptlab serve` can answer with it),
    its metrics in compare's shape ({metric: value} and "ci"), so the registry reads every version alike."""
    from adaptlab.registry import default_registry

    test = lineage["metrics"]
    registered = lineage | {"metrics": test["test"], "ci": test["test_ci95"], "best_dev_score": test["best_dev_score"]}
    registry = default_registry()
    try:
        registry.add_run(run_dir.name, "finetune", str(run_dir), settings, test["test"], "completed")
        version = registry.add_version(
            task.name,
            contender.name,
            run_dir / lineage["output"],
            registered,
            run_id=run_dir.name,
            extra={"task.json": task.to_dict()},
            contender=contender.key,
        )
    finally:
        registry.close()
    lineage["registered_as"] = version.ref
    events.message(f"{contender.key}: registered as {version.ref}")


def _plan(experiment, strategy, out, resume) -> tuple[ExperimentConfig, Path, str, Path | None]:
    """The experiment, the folder its paths are relative to, the strategy to train, and the run folder (None: a new one
    under runs/)."""
    run_dir: Path | None
    if resume:
        run_dir = Path(
            resume
        ).resolve()  # the registry records the folder: absolute, so `registry gc` can tell it is there from anywhere
        if not (run_dir / "run.json").is_file() or not (run_dir / "experiment.yaml").is_file():
            raise ConfigError(
                f"{run_dir}: not a fine-tuning run folder (no run.json and experiment.yaml); pass "
                "the folder `adaptlab finetune` printed"
            )
        saved = parse_experiment(
            yaml.safe_load((run_dir / "experiment.yaml").read_text(encoding="utf-8")), str(run_dir / "experiment.yaml")
        )
        if experiment is not None:
            given, root = load_experiment(experiment)
            if resolved(given, root) != resolved(saved, Path("/")):
                raise ConfigError(
                    f"{experiment} differs from the experiment run {run_dir} was started with; "
                    f"resume with `adaptlab finetune --resume {run_dir}` alone, or start a new run"
                )
        name = json.loads((run_dir / "run.json").read_text(encoding="utf-8"))["strategy"]
        return saved, Path("/"), name, run_dir
    if experiment is None:
        raise ConfigError("pass an experiment file, or --resume RUN to continue a run")
    config, root = load_experiment(experiment)
    candidates = [s.key for s in config.strategies if kinds.kind(s.name).trains]
    tuners = " or ".join(f"`{{name: {k.name}}}`" for k in kinds.kinds() if k.trains)
    if strategy is not None and strategy not in candidates:
        raise ConfigError(
            f"{experiment}: no fine-tuning contender {strategy!r}; it lists "
            f"{', '.join(candidates) or 'none (add a strategy ' + tuners + ')'}"
        )
    if strategy is None and len(candidates) != 1:
        raise ConfigError(
            f"{experiment}: "
            + (
                f"add a strategy {tuners} to fine-tune"
                if not candidates
                else f"it lists {' and '.join(candidates)}; choose one with --strategy"
            )
        )
    name = strategy or candidates[0]
    if out is None and int(os.environ.get("WORLD_SIZE", "1")) > 1:
        raise ConfigError("under accelerate launch, pass --out RUN so every process uses the same run folder")
    run_dir = Path(out) if out else None
    if (
        int(os.environ.get("RANK", "0")) == 0
        and run_dir
        and run_dir.exists()
        and (not run_dir.is_dir() or any(run_dir.iterdir()))
    ):
        raise ConfigError(
            f"{run_dir} already exists and is not empty; choose another --out, or continue it with --resume {run_dir}"
        )
    return config, root, name, run_dir


def _completed(run_dir: Path) -> dict | None:
    """lineage.json's content when run.json says the run completed; None while it can still be resumed."""
    if json.loads((run_dir / "run.json").read_text(encoding="utf-8")).get("status") != "completed":
        return None
    try:
        return json.loads((run_dir / "lineage.json").read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise AdaptlabError(
            f"{run_dir}: run.json says the run completed, but lineage.json cannot be read ({exc}); start a new run"
        ) from None


def _trim_steps(path: Path, keep_until: int, rank: int) -> bool:
    """steps.jsonl keeps the steps the checkpoint holds; the resumed run writes the rest again. True if it dropped a
    torn last line."""
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
                raise AdaptlabError(
                    f"{path} line {i + 1}: not a step record ({line[:60]!r}); delete that line and resume again"
                ) from None
            torn = (
                True  # a kill while this line was appended; the checkpoint was written after it, so its step is redone
            )
            continue
        if step <= keep_until:
            kept.append(line)
    write_text_atomic(path, "".join(line + "\n" for line in kept))
    return torn


def _versions() -> dict:
    from importlib.metadata import version

    return {pkg: version(pkg) for pkg in ("adaptlab", "torch", "transformers", "peft", "accelerate")}
