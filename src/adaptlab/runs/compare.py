"""`compare`: run every strategy of an experiment on the same test rows and write the evidence."""

from __future__ import annotations

import platform
import time
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING

from adaptlab import kinds
from adaptlab.config import ExperimentConfig
from adaptlab.decide import pairwise, power_summary, recommend
from adaptlab.decide.costs import break_even, strategy_cost, upkeep_cost
from adaptlab.errors import ConfigError
from adaptlab.evaluation import evaluate
from adaptlab.evaluation.freshness import load_update, measure_update
from adaptlab.evaluation.repeats import combine
from adaptlab.home import adaptlab_home
from adaptlab.registry import default_registry
from adaptlab.results import write_results
from adaptlab.runs.distill import Distillation
from adaptlab.runs.events import Events, TrainingBar
from adaptlab.runs.experiment import experiment_of
from adaptlab.runs.lifecycle import claim, finish, lifetime, refuse_taken
from adaptlab.runs.prepare import contender_dev, documents_for, equal_data, prepare, resolved
from adaptlab.runs.tune import check_tunable, proposer_for, tune_contender

if TYPE_CHECKING:
    from adaptlab.kinds.context import ModelSource


def run_compare(
    experiment,
    out: Path | None = None,
    events: Events | None = None,
    model: str | None = None,
    resume: Path | None = None,
) -> tuple[dict, Path]:
    """Run the experiment's contenders (a YAML path, a mapping or an ExperimentConfig); returns results.json's content
    and the run folder.

    `model`, when given, replaces the experiment's base model (and is recorded as the one used);
    `events` hears the progress (default: nothing is shown); `resume`: a run folder a compare left
    unfinished, continued from its recorded experiment: each contender it finished is taken as it was
    measured (`contenders/ID.json`), the others run. The steps: `CompareRun(...)` (read and check
    everything a config error could stop), claim the run folder, load the base model and audit,
    measure each contender (`CompareRun.measure`), then write results.json and the report.
    """
    events = events or Events()
    if resume is not None:  # its recorded experiment (the API and CLI read it first, for its MLflow settings)
        experiment, out = experiment if experiment is not None else unfinished(Path(resume)), None
    config, root = experiment_of(experiment)
    refuse_taken(out, f"choose another --out, or leave it off for a new folder under {adaptlab_home() / 'runs'}")
    run = CompareRun(config.model_copy(update={"model": model}) if model else config, root, events)
    run.run_dir = Path(resume).resolve() if resume is not None else claim(out, run.task.name, run.resolved)
    run.resumed = (
        finished_contenders(run.run_dir, run.train.content_hash, run.test.content_hash) if resume is not None else {}
    )
    registry = default_registry()
    try:
        with lifetime(run.run_dir, "compare", registry, config=run.resolved):
            run.start(registry)
            evaluations = [run.measure(contender) for contender in run.contenders]
            results = run.conclude(evaluations)
            finish(
                run.run_dir,
                "compare",
                registry,
                run.resolved,
                {e.name: e.metrics for e in evaluations} | {"recommendation": results["recommendation"]["choice"]},
                recommendation=results["recommendation"]["choice"],
            )
    finally:
        run.close()
        registry.close()
    return results, run.run_dir


class CompareRun:
    """One compare run's state, step by step: what every contender shares (data, base model, documents, prices) and what
    has been measured."""

    def __init__(self, config: ExperimentConfig, root: Path, events: Events):
        """Read and check everything a config error could stop, before the model loads or the run is registered."""
        self.config, self.root, self.events = config, root, events
        self.resolved = resolved(config, root)  # once: experiment.yaml, run.json and the registry record the same
        self.prepared = prepare(config, root)
        self.test, self.task = self.prepared.test, self.prepared.task
        self.train, self.dev, self.held_out = equal_data(
            config, self.prepared.train, self.prepared.dev, self.task.spec.labelled
        )
        for warning in self.prepared.warnings:
            events.message(warning, "warning")
        contenders = with_references(config, self.task.spec)
        self.distillation = Distillation(config, root, contenders, self.test, events)  # data.unlabeled read and checked
        self.contenders = self.distillation.contenders  # each teacher before its students
        if config.judge is not None:  # refused now, not after every contender ran: a labelled task needs no judge
            from adaptlab.judges.rubrics import rubric_for

            rubric_for(config.judge, self.task.kind)
        for contender in self.contenders:
            check_tunable(contender, kinds.kind(contender.name), self.contenders)
        events.message(self._summary())
        self._run_dir: Path | None = None
        self.resumed: dict[str, dict] = {}
        self.models: ModelSource | None = None
        self.local_model: dict | None = (
            None  # the local base model as loaded (results.json `model`); None with an endpoint
        )
        self.ran_on: dict[
            str, dict | None
            # contender id -> the local model its saved solver answered with, as loaded (a version's lineage `model`)
        ] = {}
        self.updates: dict[str, dict] = {}

    @property
    def run_dir(self) -> Path:
        """The run's folder: claimed (or resumed) by `run_compare` right after the run is read."""
        assert self._run_dir is not None
        return self._run_dir

    @run_dir.setter
    def run_dir(self, folder: Path) -> None:
        self._run_dir = folder

    def _summary(self) -> str:
        task, held_out = self.task, self.held_out
        return (
            f"task {task.name}: {task.kind}"
            + (f" over {len(task.labels)} labels" if task.labels else "")
            + f"; {len(self.prepared.train)} training and {len(self.test)} test examples"
            + (
                f" ({held_out['rows']} training rows held out as the dev split fine-tuning and "
                "tuning score on, from every contender)"
                if held_out
                else ""
            )
        )

    def start(self, registry) -> None:
        """Load the base model, audit the training data, read the documents (and their update), record the data."""
        from adaptlab.audit import audit
        from adaptlab.engine.prompt import encode_text

        config, events, task = self.config, self.events, self.task
        base, models = self._models()
        with events.status("auditing the training data"):
            self.audit = audit(
                self.prepared.train,
                self.test,
                kind=task.kind,
                instruction=task.instruction,
                count_tokens=lambda t: len(encode_text(base.tokenizer, t)),
                context_length=base.context_length,
            )
        events.message(
            "audit: "
            + ", ".join(f"{k} {'n/a' if v is None else f'{v:.0f}'}" for k, v in self.audit.scores().items())
            + (f"; {len(self.audit.leakage)} near-duplicate test rows" if self.audit.leakage else "")
        )
        self.base, self.models = base, models
        self.documents = documents_for(config, self.root, base)
        self.update = load_update(config, self.root, self.documents, task.abstain) if config.data.updates else None
        self.hourly = config.costs.gpu_hour if base.device.startswith("cuda") else config.costs.cpu_hour
        for dataset in (self.prepared.train, self.test):
            registry.add_dataset(dataset.content_hash, dataset.source, len(dataset))
        self.registry = registry

    def _models(self):
        """The local model the run reads text with (token counts, passages, answer lengths) and the models contenders
        run on. With an endpoint as the experiment's model, the prompted contenders call it, and the text is read with
        the first local model a contender names (its own `model:`), else the embedded one: an approximation of the
        endpoint's tokenizer."""
        from adaptlab.config import RemoteModelConfig
        from adaptlab.kinds.context import ModelSource, experiment_models
        from adaptlab.models import load_base_model
        from adaptlab.models.embedded import EMBEDDED_NAME

        config, events = self.config, self.events
        remote = isinstance(config.model, RemoteModelConfig)
        named = [
            c.model
            for c in self.contenders
            if getattr(c, "model", None) is not None and not isinstance(c.model, RemoteModelConfig)
        ]
        local = (named[0] if named else EMBEDDED_NAME) if remote else config.model
        with events.status(f"loading base model {local} (the first load converts the embedded GGUF once)"):
            clock = time.perf_counter()
            base = load_base_model(local, trained_share=self._trained_share())
        events.message(
            f"base model {base.name}: {base.parameters / 1e6:.1f}M parameters on {base.device} "
            f"({base.info()['dtype']}), loaded in {time.perf_counter() - clock:.1f} s"
        )
        if isinstance(config.model, RemoteModelConfig):
            events.message(
                f"prompted contenders call {config.model.name} at {config.model.base_url}; token "
                f"counts use {base.name}'s tokenizer",
                "note",
            )
            self.local_model = None
            return base, experiment_models(config.model)
        self.local_model = base.info()
        return base, ModelSource(base)

    def _trained_share(self) -> float:
        """The largest share of the experiment's base model a contender trains in place (adapters), for its memory
        check."""
        return max(
            (kinds.kind(c.name).trained_share for c in self.contenders if getattr(c, "model", None) is None),
            default=0.0,
        )

    def measure(self, contender):
        """One contender: tuned first if it asks, fitted and measured (once per repeat), saved, registered; a teacher
        labels its students' rows.
        Its record is written as soon as it is done (contenders/ID.json), so `--resume` can take it as measured."""
        if (
            contender.key in self.resumed and contender.key not in self.distillation.teachers.values()
        ):  # a teacher runs again: its labels are not kept
            record = self.resumed[contender.key]
            self.events.message(
                f"{contender.key}: as measured before the run stopped "
                f"({record['evaluation']['solver'].get('registered_as')})"
            )
            if record.get("update") is not None:
                self.updates[contender.key] = record["update"]
            return evaluation_of(record["evaluation"])
        evaluation = self._measure(contender)
        keep_contender(
            self.run_dir, evaluation, self.updates.get(contender.key), self.train.content_hash, self.test.content_hash
        )
        return evaluation

    def _measure(self, contender):
        kind = kinds.kind(contender.name)
        task, tuning = self.task, None
        rows = self.distillation.train_for(contender, self.train)  # a student's: train plus its teacher's labels
        if (
            contender.tune is not None
        ):  # settings searched on the dev rows (trials fit on `rows`), then measured as any contender is
            contender, task, tuning = tune_contender(
                contender,
                kind,
                self.task,
                rows,
                self.dev,
                self.test,
                partial(self._build, kind),
                self.config.seed,
                self.events,
                proposer_for(contender, self.contenders, self.models),
            )
        seeds = [self.config.seed + i for i in range(repeats_of(contender, self.config))]
        runs = [
            self._fit_and_predict(
                contender, kind, task, rows, seed, f" (repeat {i + 1}/{len(seeds)})" if len(seeds) > 1 else ""
            )
            for i, seed in enumerate(seeds)
        ]
        evaluation = combine(runs, self.task.metric, seeds)
        self.distillation.record(contender, evaluation)
        if tuning is not None:
            evaluation.solver["tuning"] = tuning
        version = register(
            self.registry,
            self.run_dir.name,
            task,
            contender,
            evaluation,
            rows,
            self.run_dir / "solvers" / contender.key,
            self.config.seed,
            self.documents,
            self.ran_on.get(contender.key),
        )
        evaluation.solver["registered_as"] = version.ref
        self.events.message(f"{contender.key}: registered as {version.ref}")
        return evaluation

    def _model_info(self, contender, kind, solver) -> dict | None:
        """The local model `solver` answers with, as loaded (files, revision, dtype, device): its own (a full
        fine-tune's
        copy), else the one its contender names. None for a reference or an endpoint."""
        from adaptlab.models import BaseModel

        used = getattr(solver, "base", None)
        if not isinstance(used, BaseModel):
            assert self.models is not None  # loaded by `start`, before any contender is measured
            used = self.models.get(getattr(contender, "model", None)) if kind.llm else None
        return used.info() if isinstance(used, BaseModel) else None

    def _build(self, kind, contender, seed: int | None = None, on_step=None):
        """The contender's strategy, on the shared base model and documents, with its own dev rows."""
        from adaptlab.kinds.context import BuildContext

        dev = contender_dev(contender, self.dev, self.prepared.dev is not None)
        return kind.build(
            contender,
            BuildContext(
                self.models,
                self.config.seed if seed is None else seed,
                on_step=on_step,
                dev=dev,
                documents=self.documents,
            ),
        )

    def _fit_and_predict(self, contender, kind, task, rows, seed: int, repeat: str):
        """Fit with `seed` and answer every test row, with progress bars; the first repeat's solver is saved (and
        labels, and meets the update)."""
        label = contender.key + repeat
        with self.events.bars():
            strategy = self._build(kind, contender, seed, on_step=TrainingBar(self.events, label))
            predicting = self.events.bar(f"{label}: predicting", len(self.test))
            measured, solver = evaluate(
                strategy,
                task,
                rows,
                self.test,
                predict_progress=predicting.advance,
                name=contender.key,
                traits=kind.traits(contender),
            )
        if seed == self.config.seed:
            solver.save(self.run_dir / "solvers" / contender.key)
            self.ran_on[contender.key] = self._model_info(
                contender, kind, solver
            )  # the info, not the model: a full fine-tune's copy is freed after
            self.distillation.label(
                contender.key, solver, self.task, self.hourly
            )  # a teacher answers data.unlabeled; the labels are kept
            if self.update is not None:  # the same solver, asked again after the documents change
                with self.events.bars():
                    bar = self.events.bar(f"{label}: update questions", 2 * len(self.update.questions))
                    self.updates[contender.key] = measure_update(
                        solver, task, self.update, measured.family, measured.fit_seconds, self.hourly, bar.advance
                    )
        return measured

    def conclude(self, evaluations: list) -> dict:
        """Costs, the recommendation and the statistics; results.json written (validated), then the report."""
        config, task = self.config, self.task
        self.close()
        costs = {
            e.name: strategy_cost(e, self.hourly)
            | upkeep_cost(self.updates.get(e.name), config.constraints.data_changes)
            for e in evaluations
        }
        paybacks = break_even(costs, {e.name: e.family for e in evaluations})
        decision = recommend(
            evaluations,
            task.metric,
            len(task.labels),
            config.constraints,
            costs,
            paybacks,
            self.updates,
            trivial_words=task.spec.trivial_words,
            remedy=task.spec.remedy,
        )
        results = {
            "task": task.to_dict(),
            "base_model": config.model,
            "model": self.local_model,
            "data": self._data(),
            "seed": config.seed,
            "repeats": config.repeats,
            "environment": {
                "python": platform.python_version(),
                "machine": platform.machine(),
                "device": self.base.device,
            },
            "strategies": [e.to_dict() | costs[e.name] | {"p_best": decision.p_best[e.name]} for e in evaluations],
            "recommendation": decision.to_dict(),
            "pairwise": pairwise(evaluations),
            "power": power_summary(evaluations, task.metric),
            "break_even_queries": paybacks,
            "constraints": config.constraints.model_dump(),
            "cost_assumptions": {
                "device": self.base.device,
                "dollars_per_hour": self.hourly,
                **config.costs.model_dump(),
            },
            "audit": self.audit.to_dict(),
        }
        if self.update is not None:
            update = self.update
            assert config.data.updates is not None  # what `start` read `self.update` from
            results["updates"] = {
                "docs": str(update.documents.updates),
                "test": str(self.root / config.data.updates.test),
                "changed": update.changed,
                "added": update.added,
                "questions": len(update.questions),
                "contenders": self.updates,
            }
        results |= self.distillation.results(evaluations, costs, task.metric)
        results = write_results(self.run_dir / "results.json", results)
        if config.judge is not None:  # the judge reads results.json and adds `judged` to it
            from adaptlab.runs.judging import judge_after_compare

            results = judge_after_compare(self.run_dir, config.judge, self.events) or results
        self._report()
        return results

    def _data(self) -> dict:
        """results.json's `data`: the files and their hashes, the dev rows held out, the documents."""
        config, root = self.config, self.root
        out = {
            "train": str(root / config.data.train),
            "test": str(root / config.data.test),
            "train_hash": self.train.content_hash,
            "test_hash": self.test.content_hash,
        }
        return (
            out
            | ({"held_out_for_dev": self.held_out} if self.held_out else {})
            | (documents_summary(self.documents) if self.documents else {})
        )

    def _report(self) -> None:
        """report.html; a report that fails to render is a warning: results.json is already written and `adaptlab
        report` can retry."""
        from adaptlab.report import write_report

        try:
            write_report(self.run_dir)
        except Exception as exc:  # noqa: BLE001 - the measurements are saved; a report bug must not lose them
            self.events.message(
                f"the report could not be written ({type(exc).__name__}: {exc}); the results are in "
                f"{self.run_dir / 'results.json'}: try `adaptlab report {self.run_dir}` after "
                "updating adaptlab, and please report it",
                "warning",
            )

    def close(self) -> None:
        """Free the base model (once)."""
        if self.models is not None:
            self.models.close()
            self.models = None


def keep_contender(run_dir: Path, evaluation, update: dict | None, train_hash: str, test_hash: str) -> None:
    """contenders/ID.json: a measured contender, with the data it was measured on (what `--resume` reuses)."""
    from adaptlab.files import write_json

    record = {
        "evaluation": evaluation.to_dict() | {"scores": evaluation.scores},
        "update": update,
        "train_hash": train_hash,
        "test_hash": test_hash,
    }
    (run_dir / "contenders").mkdir(exist_ok=True)
    write_json(run_dir / "contenders" / f"{evaluation.name}.json", record)


def finished_contenders(run_dir: Path, train_hash: str, test_hash: str) -> dict[str, dict]:
    """The contenders a stopped run finished, by id; a ConfigError when the data changed since."""
    import json

    out = {}
    for path in sorted((run_dir / "contenders").glob("*.json")) if (run_dir / "contenders").is_dir() else []:
        record = json.loads(path.read_text(encoding="utf-8"))
        if (record["train_hash"], record["test_hash"]) != (train_hash, test_hash):
            raise ConfigError(
                f"{run_dir}: the training or test data changed since this run measured {path.stem} "
                "(content hashes differ); start a new compare instead of resuming"
            )
        out[path.stem] = record
    return out


def evaluation_of(record: dict):
    """An Evaluation back from its record (intervals as tuples)."""
    from adaptlab.evaluation import Evaluation

    return Evaluation(**(record | {"ci": {k: tuple(v) for k, v in record["ci"].items()}}))


def unfinished(run_dir: Path) -> Path:
    """The experiment a stopped compare recorded, to continue in its folder; refused when the run completed."""
    import json

    status = json.loads((run_dir / "run.json").read_text(encoding="utf-8")) if (run_dir / "run.json").is_file() else {}
    if status.get("run") != "compare" or not (run_dir / "experiment.yaml").is_file():
        raise ConfigError(
            f"{run_dir}: not a compare run folder (no run.json of a compare beside experiment.yaml); "
            "pass the folder `adaptlab compare` printed"
        )
    if status.get("status") == "completed":
        raise ConfigError(
            f"{run_dir} completed ({status.get('updated', '?')}): nothing to resume; its results are "
            f"in results.json. To run it again: adaptlab compare --refresh {run_dir}"
        )
    return run_dir / "experiment.yaml"


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
        raise ConfigError(
            f"{run}: no compare run with a recorded experiment.yaml there (looked in {folder}); give "
            "a run folder, or a run id from `adaptlab registry list`"
        )
    return path


def repeats_of(strategy_config, config: ExperimentConfig) -> int:
    """How many times a contender is fitted: its own `repeats`, else the experiment's, when its seed matters; else
    once."""
    return (strategy_config.repeats or config.repeats) if strategy_config.seeded else 1


def documents_summary(documents) -> dict:
    """What results.json records of the documents: their hashes, the passages, and each index's build time."""
    chunks = documents.chunks
    return {
        "docs": str(documents.path),
        "documents": documents.files,
        "chunks": len(chunks),
        "chunk_tokens": documents.size,
        "chunk_overlap": documents.overlap,
        "index_seconds": {k: round(v, 3) for k, v in documents.seconds.items()},
    }


def register(
    registry,
    run_id: str,
    task,
    strategy_config,
    evaluation,
    train,
    folder: Path,
    seed: int,
    documents=None,
    model: dict | None = None,
):
    """Record a saved solver (it holds all it needs: weights, example pool, base model identity) as the task's next
    version;
    `model`: the local model it ran on, as loaded (`BaseModel.info`).

    A contender that read the documents (indexed them, or was fitted on a knowledge task) records their hashes,
    so `registry check` and the server can tell when they changed since (`registry.stale`)."""
    lineage = {
        "id": strategy_config.key,
        "strategy": strategy_config.model_dump(mode="json"),
        "base_model": evaluation.solver.get("base_model"),
        "model": model,
        "train_sha256": train.content_hash,
        "seed": seed,
        "metrics": evaluation.metrics,
        "ci": {k: list(v) for k, v in evaluation.ci.items()},
    }
    if documents is not None and (evaluation.trains or kinds.kind(strategy_config.name).reads_documents):
        lineage["documents"] = {"path": str(Path(documents.path).resolve()), "files": documents.files}
    return registry.add_version(
        task.name,
        strategy_config.name,
        folder,
        lineage,
        run_id=run_id,
        extra={"task.json": task.to_dict()},
        contender=strategy_config.key,
    )


def with_references(config: ExperimentConfig, task_kind) -> list:
    """The contenders to run: the task kind's references first (`baselines: true`; those not listed), then the
    experiment's own.
    A listed kind that cannot answer this kind of task is a ConfigError."""
    wrong = [s.key for s in config.strategies if not kinds.kind(s.name).answers(task_kind.name)]
    if wrong:
        k = kinds.kind(next(s.name for s in config.strategies if s.key == wrong[0]))
        raise ConfigError(
            f"strategy {wrong[0]!r} ({k.name}) answers {', '.join(k.tasks)} tasks, but this task is "
            f"{task_kind.name}; remove it from strategies"
        )
    listed = {s.name for s in config.strategies}
    extra = (
        [kinds.kind(name).config(name=name) for name in task_kind.references if name not in listed]
        if config.baselines
        else []
    )
    return extra + list(config.strategies)
