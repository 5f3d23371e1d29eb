"""`compare`: run every strategy of an experiment on the same test rows and write the evidence."""

from __future__ import annotations

import platform
import time
from pathlib import Path

import yaml

from adaptlab import kinds
from adaptlab.config import ExperimentConfig
from adaptlab.decide import pairwise, power_summary, recommend
from adaptlab.decide.costs import break_even, strategy_cost, upkeep_cost
from adaptlab.errors import ConfigError
from adaptlab.evaluation import evaluate
from adaptlab.evaluation.freshness import load_update, measure_update
from adaptlab.evaluation.repeats import combine
from adaptlab.files import new_folder, write_json, write_text_new
from adaptlab.home import adaptlab_home
from adaptlab.registry import default_registry
from adaptlab.runs.distill import Distillation
from adaptlab.runs.events import Events
from adaptlab.runs.experiment import experiment_of
from adaptlab.runs.folder import mark
from adaptlab.runs.prepare import contender_dev, documents_for, equal_data, prepare, resolved
from adaptlab.runs.tune import check_tunable, proposer_for, tune_contender


def run_compare(experiment, out: Path | None = None, events: Events | None = None, model: str | None = None) -> tuple[dict, Path]:
    """Run the experiment's contenders (a YAML path, a mapping or an ExperimentConfig); returns results.json's content and the run folder.

    `model`, when given, replaces the experiment's base model (and is recorded as the one used);
    `events` hears the progress (default: nothing is shown).
    """
    events = events or Events()
    config, root = experiment_of(experiment)
    if out is not None and Path(out).exists() and (not Path(out).is_dir() or any(Path(out).iterdir())):
        raise ConfigError(f"{out} already exists and is not an empty folder; choose another --out, or leave it off for a new folder under {adaptlab_home() / 'runs'}")
    if model:
        config = config.model_copy(update={"model": model})
    prepared = prepare(config, root)
    test, task = prepared.test, prepared.task
    train, dev, held_out = equal_data(config, prepared.train, prepared.dev, task.spec.labelled)
    for warning in prepared.warnings:
        events.message(warning, "warning")
    strategy_configs = with_references(config, task.spec)
    distillation = Distillation(config, root, strategy_configs, test, events)  # data.unlabeled read and checked
    strategy_configs = distillation.contenders  # each teacher before its students
    for strategy_config in strategy_configs:  # before the model loads or the run is registered: a config error costs nothing
        check_tunable(strategy_config, kinds.kind(strategy_config.name), strategy_configs)
    events.message(f"task {task.name}: {task.kind}" + (f" over {len(task.labels)} labels" if task.labels else "") + f"; {len(prepared.train)} training and {len(test)} test examples" + (f" ({held_out['rows']} training rows held out as the dev split fine-tuning and tuning score on, from every contender)" if held_out else ""))

    run_dir = Path(out).resolve() if out else new_folder(adaptlab_home() / "runs", task.name)  # unique: two compares never share a folder; absolute, as the registry records it
    run_dir.mkdir(parents=True, exist_ok=True)
    try:  # created, never overwritten: of two compares given the same --out at once, one stops here
        write_text_new(run_dir / "experiment.yaml", yaml.safe_dump(resolved(config, root), sort_keys=False))
    except FileExistsError:
        raise ConfigError(f"{run_dir} was just taken by another run; choose another --out") from None
    mark(run_dir, "compare", "running", config=resolved(config, root))

    from adaptlab.audit import audit
    from adaptlab.engine.prompt import encode_text
    from adaptlab.kinds.context import BuildContext, ModelSource
    from adaptlab.models import load_base_model

    with events.status(f"loading base model {config.model} (the first load converts the embedded GGUF once)"):
        clock = time.perf_counter()
        base = load_base_model(config.model)
    events.message(f"base model {config.model}: {base.parameters / 1e6:.1f}M parameters on {base.device}, loaded in {time.perf_counter() - clock:.1f} s")
    with events.status("auditing the training data"):
        report = audit(prepared.train, test, kind=task.kind, instruction=task.instruction, count_tokens=lambda t: len(encode_text(base.tokenizer, t)), context_length=base.context_length)
    events.message("audit: " + ", ".join(f"{k} {'n/a' if v is None else f'{v:.0f}'}" for k, v in report.scores().items()) + (f"; {len(report.leakage)} near-duplicate test rows" if report.leakage else ""))

    documents = documents_for(config, root, base)
    update = load_update(config, root, documents, task.abstain) if config.data.updates else None
    hourly = config.costs.gpu_hour if base.device.startswith("cuda") else config.costs.cpu_hour
    evaluations, updates = [], {}
    models = ModelSource(base)
    registry = default_registry()
    for dataset in (prepared.train, test):
        registry.add_dataset(dataset.content_hash, dataset.source, len(dataset))
    registry.add_run(run_dir.name, "compare", str(run_dir), resolved(config, root), None, "running")
    for strategy_config in strategy_configs:
        kind = kinds.kind(strategy_config.name)
        contender_task, tuning = task, None
        rows = distillation.train_for(strategy_config, train)  # a student's: train plus its teacher's labels
        if strategy_config.tune is not None:  # settings searched on the dev rows (trials fit on `rows`), then measured as any contender is
            build = lambda c, seed=config.seed: kind.build(c, BuildContext(models, seed, dev=contender_dev(c, dev, prepared.dev is not None), documents=documents))  # noqa: E731
            strategy_config, contender_task, tuning = tune_contender(strategy_config, kind, task, rows, dev, test, build, config.seed, events, proposer_for(strategy_config, strategy_configs, models))
        seeds = [config.seed + i for i in range(repeats_of(strategy_config, config))]
        runs = []
        for seed in seeds:  # each repeat refits with its own seed; the first one's solver is the one saved
            label = strategy_config.key + (f" (repeat {len(runs) + 1}/{len(seeds)})" if len(seeds) > 1 else "")
            with events.bars():
                fit_bar = None

                def on_step(report):
                    nonlocal fit_bar
                    if fit_bar is None:
                        fit_bar = events.bar(f"{label}: training", report.total_steps)
                    fit_bar.update(report.step, report.describe())

                strategy = kind.build(strategy_config, BuildContext(models, seed, on_step=on_step, dev=contender_dev(strategy_config, dev, prepared.dev is not None), documents=documents))
                predict_bar = events.bar(f"{label}: predicting", len(test))
                measured, solver = evaluate(strategy, contender_task, rows, test, predict_progress=predict_bar.advance, name=strategy_config.key, traits=kind.traits(strategy_config))
            if not runs:
                solver.save(run_dir / "solvers" / strategy_config.key)
                distillation.label(strategy_config.key, solver, task, hourly)  # a teacher answers data.unlabeled; the labels are kept
                if update is not None:  # the same solver, asked again after the documents change
                    with events.bars():
                        bar = events.bar(f"{label}: update questions", 2 * len(update.questions))
                        updates[strategy_config.key] = measure_update(solver, contender_task, update, measured.family, measured.fit_seconds, hourly, bar.advance)
            runs.append(measured)
        evaluation = combine(runs, task.metric, seeds)
        distillation.record(strategy_config, evaluation)
        if tuning is not None:
            evaluation.solver["tuning"] = tuning
        version = register(registry, run_dir.name, contender_task, strategy_config, evaluation, rows, run_dir / "solvers" / strategy_config.key, config.seed, documents)
        evaluation.solver["registered_as"] = version.ref
        events.message(f"{strategy_config.key}: registered as {version.ref}")
        evaluations.append(evaluation)

    models.close()
    costs = {e.name: strategy_cost(e, hourly) | upkeep_cost(updates.get(e.name), config.constraints.data_changes) for e in evaluations}
    paybacks = break_even(costs, {e.name: e.family for e in evaluations})
    decision = recommend(evaluations, task.metric, len(task.labels), config.constraints, costs, paybacks, updates, trivial_words=task.spec.trivial_words, remedy=task.spec.remedy)
    results = {
        "task": task.to_dict(),
        "base_model": config.model,
        "data": {"train": str(root / config.data.train), "test": str(root / config.data.test), "train_hash": train.content_hash, "test_hash": test.content_hash} | ({"held_out_for_dev": held_out} if held_out else {}) | (documents_summary(documents) if documents else {}),
        "seed": config.seed,
        "repeats": config.repeats,
        "environment": {"python": platform.python_version(), "machine": platform.machine(), "device": base.device},
        "strategies": [e.to_dict() | costs[e.name] | {"p_best": decision.p_best[e.name]} for e in evaluations],
        "recommendation": decision.to_dict(),
        "pairwise": pairwise(evaluations),
        "power": power_summary(evaluations, task.metric),
        "break_even_queries": paybacks,
        "constraints": config.constraints.model_dump(),
        "cost_assumptions": {"device": base.device, "dollars_per_hour": hourly, **config.costs.model_dump()},
        "audit": report.to_dict(),
    }
    if update is not None:
        results["updates"] = {"docs": str(update.documents.updates), "test": str(root / config.data.updates.test), "changed": update.changed, "added": update.added, "questions": len(update.questions), "contenders": updates}
    results |= distillation.results(evaluations, costs, task.metric)
    write_json(run_dir / "results.json", results)
    from adaptlab.report import write_report

    write_report(run_dir)
    registry.add_run(run_dir.name, "compare", str(run_dir), resolved(config, root), {e.name: e.metrics for e in evaluations} | {"recommendation": decision.choice}, "completed")
    mark(run_dir, "compare", "completed", config=resolved(config, root), recommendation=decision.choice)
    registry.close()
    return results, run_dir


def recorded_experiment(run: str | Path) -> Path:
    """The experiment a compare run recorded (its experiment.yaml: every default filled in, data paths absolute),
    for `compare --refresh`: `run` is a run folder, or a run's id (the folder the registry recorded for it)."""
    folder = Path(run) if Path(run).is_dir() else None
    if folder is None:
        registry = default_registry()
        folder = registry.run_folder(str(run)) or adaptlab_home() / "runs" / str(run)
        registry.close()
    path = folder / "experiment.yaml"
    if not path.is_file():
        raise ConfigError(f"{run}: no compare run with a recorded experiment.yaml there (looked in {folder}); give a run folder, or a run id from `adaptlab registry list`")
    return path


def repeats_of(strategy_config, config: ExperimentConfig) -> int:
    """How many times a contender is fitted: its own `repeats`, else the experiment's, when its seed matters; else once."""
    return (strategy_config.repeats or config.repeats) if strategy_config.seeded else 1


def documents_summary(documents) -> dict:
    """What results.json records of the documents: their hashes, the passages, and each index's build time."""
    chunks = documents.chunks
    return {"docs": str(documents.path), "documents": documents.files, "chunks": len(chunks), "chunk_tokens": documents.size, "chunk_overlap": documents.overlap, "index_seconds": {k: round(v, 3) for k, v in documents.seconds.items()}}


def register(registry, run_id: str, task, strategy_config, evaluation, train, folder: Path, seed: int, documents=None):
    """Record a saved solver (it holds all it needs: weights, example pool, base model identity) as the task's next version.

    A contender that read the documents (indexed them, or was fitted on a knowledge task) records their hashes,
    so `registry check` and the server can tell when they changed since (`registry.stale`)."""
    lineage = {
        "id": strategy_config.key,
        "strategy": strategy_config.model_dump(mode="json"),
        "base_model": evaluation.solver.get("base_model"),
        "train_sha256": train.content_hash,
        "seed": seed,
        "metrics": evaluation.metrics,
        "ci": {k: list(v) for k, v in evaluation.ci.items()},
    }
    if documents is not None and (evaluation.family == "fine_tuned" or "retrieval" in evaluation.solver):
        lineage["documents"] = {"path": str(Path(documents.path).resolve()), "files": documents.files}
    return registry.add_version(task.name, strategy_config.name, folder, lineage, run_id=run_id, extra={"task.json": task.to_dict()}, contender=strategy_config.key)


def with_references(config: ExperimentConfig, task_kind) -> list:
    """The contenders to run: the task kind's references first (`baselines: true`; those not listed), then the experiment's own.
    A listed kind that cannot answer this kind of task is a ConfigError."""
    wrong = [s.key for s in config.strategies if not kinds.kind(s.name).answers(task_kind.name)]
    if wrong:
        k = kinds.kind(next(s.name for s in config.strategies if s.key == wrong[0]))
        raise ConfigError(f"strategy {wrong[0]!r} ({k.name}) answers {', '.join(k.tasks)} tasks, but this task is {task_kind.name}; remove it from strategies")
    listed = {s.name for s in config.strategies}
    extra = [kinds.kind(name).config(name=name) for name in task_kind.references if name not in listed] if config.baselines else []
    return extra + list(config.strategies)
