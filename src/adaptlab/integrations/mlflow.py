"""MLflow tracking and model registry for compare runs (the `mlflow` extra: `pip install 'adaptlab[mlflow]'`).

    adaptlab compare experiment.yaml --mlflow                           # or `mlflow: {...}` in the experiment
    adaptlab compare experiment.yaml --mlflow-uri sqlite:///mlflow.db
    adaptlab registry promote cards@v4                                  # moves MLflow's `champion` alias too

A finished compare run folder is logged as one parent run (named after the folder) and a child run per
contender, in the MLflow experiment `mlflow.experiment` (default: the task's name):
- parent: the resolved experiment, strategies aside, as parameters (nested keys dotted: `costs.cpu_hour`);
  tags task, task_kind, metric, recommendation, base_model, train_sha256, test_sha256, adaptlab_run; the
  recommendation's reasons as its note; results.json, report.html and experiment.yaml as artifacts.
- child: its contender's config as parameters (`r`, `target_modules`, `model.base_url`); as metrics every metric
  with its 95% interval (`accuracy`, `accuracy_low`, `accuracy_high`) and every figure results.json gives the
  contender (p_best, fit_seconds, latency_ms_mean/p50/p95, prompt_tokens_mean, peak_rss_mb, cost_per_1k_queries,
  fit_cost, ...); tags kind, contender, family, base_model, the data hashes and registry_ref (`cards@v5`); its
  predictions as predictions.jsonl.
The recommended contender's registry version (its verified files: what `adaptlab serve` loads) is logged
under its child run as `solver/`, registered as a version of the MLflow model named after the task, and
given the alias `champion`. The run folder's mlflow.json records where it all went, so promoting a
version of that compare later moves the alias (registering the version in MLflow first if compare did not).

The parameters, metrics, tags and note logged are built in adaptlab.integrations.mlflow_summary; this module
makes the MLflow calls. mlflow is imported only inside these functions: `adaptlab --help` never loads it.
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import yaml

from adaptlab.errors import AdaptlabError, ConfigError
from adaptlab.files import write_json
from adaptlab.integrations.mlflow_summary import (
    contender_configs,
    default_config,
    epoch_ms,
    figures,
    flattened,
    judged_tags,
    masked,
    model_tag,
    run_note,
)
from adaptlab.results import CompareResults, load_results

CHAMPION = "champion"  # the alias MLflow clients load: models:/<task>@champion
RECORD = "mlflow.json"  # in the run folder: where its runs and model version went
INSTALL = "pip install 'adaptlab[mlflow]'"
DATABASE_SCHEMES = (
    "sqlite",
    "postgresql",
    "mysql",
    "mssql",
)  # MLflow's SQLAlchemy stores (they need sqlalchemy and alembic)


class TrackingError(AdaptlabError):
    """Logging to MLflow, or moving its alias, failed after adaptlab's own work was done."""


@dataclass(frozen=True)
class Tracking:
    """Where a compare is logged: an MLflow tracking URI (the registry too) and an experiment name (None: the
    task's)."""

    uri: str
    experiment: str | None = None


@dataclass(frozen=True)
class Link:
    """Where a registry version goes in MLflow: the store, the experiment and model names, and its compare's child run
    (if logged)."""

    uri: str
    experiment: str
    model: str
    run_id: str | None = None


def default_uri() -> str:
    """Tracking with no URI given: SQLite under $ADAPTLAB_HOME/mlflow (artifacts beside it in mlartifacts/)."""
    from adaptlab.home import adaptlab_home

    return f"sqlite:///{adaptlab_home() / 'mlflow' / 'mlflow.db'}"


def normalised(uri: str) -> str:
    """`uri` with a relative SQLite path made absolute, so mlflow.json names the same file from any working
    directory."""
    if not uri or not uri.strip():
        raise ConfigError(
            "the MLflow tracking URI is empty; give one such as sqlite:///mlflow.db or http://127.0.0.1:5000"
        )
    prefix = "sqlite:///"
    path = uri[len(prefix) :]
    if uri.startswith(prefix) and not path.startswith("/") and ":memory:" not in path:
        return prefix + str(Path(path).resolve())
    return uri


def tracking_for(setting, configured) -> Tracking | None:
    """What a compare logs to. `setting` is the caller's: None (the experiment's `mlflow:` decides), False (off),
    True (on), or a tracking URI; `configured` is the experiment's MlflowConfig or None. The URI is the setting's,
    else `mlflow.tracking_uri`, else $MLFLOW_TRACKING_URI, else `default_uri()`. Fails now if mlflow is missing
    or the store cannot be opened."""
    if setting is False or (setting is None and configured is None):
        return None
    if not isinstance(setting, (str, bool, type(None))):
        raise ConfigError(f"mlflow must be a tracking URI, True, False or None; got {setting!r}")
    uri = (
        setting
        if isinstance(setting, str)
        else (configured.tracking_uri if configured else None) or os.environ.get("MLFLOW_TRACKING_URI") or default_uri()
    )
    tracking = Tracking(normalised(uri), configured.experiment if configured else None)
    require_mlflow(tracking.uri, "leave off --mlflow/--mlflow-uri and remove the experiment's `mlflow:` field")
    _reach(tracking.uri)
    return tracking


def require_mlflow(uri: str, otherwise: str):
    """The mlflow module, or a ConfigError naming the extra to install (raised before any work is done)."""
    # adaptlab runs offline: its MLflow calls send no usage reports unless MLFLOW_DISABLE_TELEMETRY says otherwise
    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
    try:
        import mlflow

        if uri.split(":", 1)[0].split("+", 1)[0] in DATABASE_SCHEMES:
            import alembic  # noqa: F401  (MLflow's database stores create and migrate their tables with these)
            import sqlalchemy  # noqa: F401
    except ImportError as exc:
        raise ConfigError(
            f"MLflow tracking ({masked(uri)}) needs the mlflow extra, which is not installed (cannot "
            f"import {exc.name or exc}); install it with `{INSTALL}`, or {otherwise}"
        ) from None
    return mlflow


def log_run(run_dir, tracking: Tracking | str, registry=None) -> dict:
    """Log a finished compare run folder to MLflow: a parent run, a child per contender, the recommended solver
    registered as `champion`. Writes and returns the run folder's mlflow.json record."""
    run_dir = Path(run_dir)
    tracking = Tracking(normalised(tracking)) if isinstance(tracking, str) else tracking
    if not (run_dir / "results.json").is_file() or not (run_dir / "experiment.yaml").is_file():
        raise ConfigError(
            f"{run_dir} holds no results.json and experiment.yaml: it is not a finished compare run "
            "folder; log the folder `adaptlab compare` printed"
        )
    results = load_results(run_dir / "results.json")
    experiment = yaml.safe_load((run_dir / "experiment.yaml").read_text(encoding="utf-8"))
    require_mlflow(tracking.uri, "log without MLflow")
    own = registry is None
    if own:
        from adaptlab.registry import default_registry

        registry = default_registry()
    try:
        with _quiet():
            record = _log(run_dir, results, experiment, tracking, registry)
    except AdaptlabError:
        raise
    except (
        Exception
    ) as exc:  # MLflow's own failures (a server down, a locked database): the run folder is complete regardless
        raise TrackingError(
            f"{run_dir} is complete, but logging it to MLflow at {masked(tracking.uri)} failed "
            f"({_said(exc)}); fix that, then log the folder again with "
            f"adaptlab.integrations.mlflow.log_run({str(run_dir)!r}, {masked(tracking.uri)!r})"
        ) from exc
    finally:
        if own:
            registry.close()
    write_json(run_dir / RECORD, record)
    return record


def link_of(registry, ref: str, uri: str | None = None) -> Link | None:
    """Where promoting `ref` moves MLflow's `champion` alias: the store its compare logged to (mlflow.json), or `uri`;
    None when neither (MLflow is not in use for it). Fails now if mlflow is missing."""
    version = registry.get(ref)
    folder = registry.run_folder(version.run_id) if version.run_id else None
    record = _record(folder / RECORD) if folder and (folder / RECORD).is_file() else None
    if uri is None and record is None:
        return None
    # record is None only with a uri given (returned above otherwise); an empty uri (--mlflow-uri "") fails here
    uri = normalised(uri or record["tracking_uri"])  # type: ignore[index]
    # with a record, leaving off --mlflow-uri is no way out: promote reads the record and needs mlflow regardless
    require_mlflow(
        uri,
        f"move {folder / RECORD} aside to promote without moving MLflow's alias (the compare that "
        f"fitted {version.ref} logged to {masked(record['tracking_uri'])})"
        if record and folder  # a record is read from the folder
        else "promote without --mlflow-uri",
    )
    if record is not None and record["tracking_uri"] == uri:
        return Link(
            uri,
            record.get("experiment") or version.task,
            record.get("registered_model") or version.task,
            (record.get("runs") or {}).get(version.contender or version.strategy),
        )
    return Link(uri, version.task, version.task)


def _record(path: Path) -> dict:
    """A run folder's mlflow.json, or a ConfigError naming it when it is not one."""
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        record = None
    if not isinstance(record, dict) or not isinstance(record.get("tracking_uri"), str):
        raise ConfigError(
            f"{path} is not an MLflow record adaptlab wrote (no tracking_uri); log the run again "
            "with adaptlab.integrations.mlflow.log_run, or move the file aside to promote without "
            "moving MLflow's alias"
        )
    return record


def move_champion(version, link: Link) -> str:
    """Give `version` MLflow's `champion` alias in link.model, registering it there first if MLflow lacks it; returns
    its MLflow version."""
    require_mlflow(link.uri, "promote without MLflow")
    from mlflow import MlflowClient

    try:
        with _quiet():
            client = MlflowClient(tracking_uri=link.uri, registry_uri=link.uri)
            found = _model_version_of(client, link.model, version)
            if found is None:
                found = _register(client, link, version)
            client.set_registered_model_alias(link.model, CHAMPION, found.version)
    except AdaptlabError:
        raise
    except Exception as exc:  # MLflow's own failures; adaptlab's registry has promoted the version already
        raise TrackingError(
            f"{version.ref} is promoted in adaptlab's registry, but moving MLflow's {CHAMPION!r} "
            f"alias at {masked(link.uri)} failed ({_said(exc)}); fix that, then run `adaptlab "
            f"registry promote {version.ref}` again"
        ) from exc
    return str(found.version)


# --- the MLflow calls ---


def _log(run_dir: Path, results: CompareResults, experiment: dict, tracking: Tracking, registry) -> dict:
    from mlflow import MlflowClient

    client = MlflowClient(tracking_uri=tracking.uri, registry_uri=tracking.uri)
    task, choice = results.task.name, results.recommendation.choice
    name = tracking.experiment or task
    experiment_id = _experiment(client, name, tracking.uri)
    status = json.loads((run_dir / "run.json").read_text(encoding="utf-8")) if (run_dir / "run.json").is_file() else {}
    common = {
        "task": task,
        "train_sha256": results.data.get("train_hash"),
        "test_sha256": results.data.get("test_hash"),
        "adaptlab_run": run_dir.name,
    }
    parent_tags = {
        "task_kind": results.task.kind,
        "metric": results.task.metric,
        "recommendation": choice,
        "base_model": model_tag(results.base_model),
        "adaptlab_run_dir": str(run_dir.resolve()),
        "mlflow.source.name": "adaptlab compare",
        "mlflow.source.type": "LOCAL",
        "mlflow.note.content": run_note(results),
    } | judged_tags(results)
    parent_id = client.create_run(
        experiment_id, start_time=epoch_ms(status.get("started")), run_name=run_dir.name, tags=common | parent_tags
    ).info.run_id
    running = [parent_id]  # marked FAILED if logging stops half-way
    try:
        _log_batch(client, parent_id, params=flattened({k: v for k, v in experiment.items() if k != "strategies"}))
        for file in ("results.json", "report.html", "experiment.yaml"):
            if (run_dir / file).is_file():
                client.log_artifact(parent_id, str(run_dir / file))
        configs = contender_configs(experiment)
        runs, champion = {}, None
        for s in results.strategies:
            key, traits, solver = s.name, s.traits, s.solver
            kind = traits.get("kind", key)
            tags = common | {
                "mlflow.parentRunId": parent_id,
                "contender": key,
                "kind": kind,
                "family": traits.get("family"),
                "base_model": model_tag(solver.get("base_model")),
                "registry_ref": solver.get("registered_as"),
            }
            child_id = runs[key] = client.create_run(
                experiment_id, run_name=key, tags={k: v for k, v in tags.items() if v is not None}
            ).info.run_id
            running.append(child_id)
            _log_batch(
                client,
                child_id,
                params=flattened(configs.get(key) or default_config(kind)),
                metrics=figures(s.model_dump(mode="json")),
            )
            with tempfile.TemporaryDirectory() as tmp:
                path = Path(tmp) / "predictions.jsonl"
                path.write_text(
                    "".join(
                        json.dumps(p.model_dump(mode="json", exclude_unset=True), ensure_ascii=False) + "\n"
                        for p in s.predictions
                    ),
                    encoding="utf-8",
                )
                client.log_artifact(child_id, str(path))
            if key == choice and solver.get("registered_as"):
                version = registry.get(solver["registered_as"], verify=True)
                registered = _register(client, Link(tracking.uri, name, task, child_id), version)
                client.set_registered_model_alias(task, CHAMPION, registered.version)
                champion = {"ref": version.ref, "contender": key, "version": str(registered.version), "alias": CHAMPION}
            client.set_terminated(running.pop(), "FINISHED")
    except BaseException:
        for run_id in running:
            client.set_terminated(run_id, "FAILED")
        raise
    client.set_terminated(parent_id, "FINISHED", end_time=epoch_ms(status.get("updated")))
    return {
        "tracking_uri": tracking.uri,
        "experiment": name,
        "experiment_id": experiment_id,
        "parent_run_id": parent_id,
        "runs": runs,
        "registered_model": task,
        "champion": champion,
    }


def _experiment(client, name: str, uri: str) -> str:
    """The id of the MLflow experiment `name`, created if missing (artifacts beside a SQLite store's file)."""
    found = client.get_experiment_by_name(name)
    if found is None:
        return client.create_experiment(name, artifact_location=_artifact_root(uri))
    if found.lifecycle_stage == "deleted":
        raise TrackingError(
            f"MLflow experiment {name!r} at {masked(uri)} is deleted; restore it in MLflow, or name "
            "another with the experiment's `mlflow.experiment`"
        )
    return found.experiment_id


def _artifact_root(uri: str) -> str | None:
    """A SQLite store's artifacts: mlartifacts/ beside its file (MLflow's default, ./mlruns, would follow the working
    directory)."""
    if not uri.startswith("sqlite:///"):
        return None  # a server or another store keeps its own artifact root
    database = Path(uri[len("sqlite:///") :])
    database.parent.mkdir(parents=True, exist_ok=True)  # SQLite creates the file, not its folder
    return str(database.parent / "mlartifacts")


def _reach(uri: str) -> None:
    """Open the store once (a SQLite file is created and migrated here), so a wrong URI fails before any fitting."""
    from mlflow import MlflowClient

    try:
        if uri.startswith("sqlite:///"):
            _artifact_root(uri)  # creates the database's folder (an OSError here: a folder that cannot be made)
        with _quiet(), _one_try():
            MlflowClient(tracking_uri=uri, registry_uri=uri).search_experiments(max_results=1)
    except Exception as exc:  # MLflow's own errors: an unreachable server, a file that is not an MLflow database
        raise ConfigError(
            f"cannot use the MLflow tracking store {masked(uri)} ({_said(exc)}); check the URI "
            "(--mlflow-uri, the experiment's mlflow.tracking_uri or $MLFLOW_TRACKING_URI) or start "
            "the server"
        ) from None


@contextmanager
def _one_try():
    """MLflow's HTTP calls with one try and a 10 s timeout, unless the user set them: its defaults (7 retries,
    backoff factor 2) make a server that is down fail the check after ~4 minutes instead of seconds."""
    probe = {"MLFLOW_HTTP_REQUEST_MAX_RETRIES": "0", "MLFLOW_HTTP_REQUEST_TIMEOUT": "10"}
    unset = [name for name in probe if name not in os.environ]
    os.environ.update({name: probe[name] for name in unset})
    try:
        yield
    finally:
        for name in unset:
            os.environ.pop(name, None)


def _register(client, link: Link, version):
    """Log `version`'s verified files as `solver/` under its run (a new run when compare logged none) and make them a
    model version."""
    from mlflow.exceptions import MlflowException

    run_id, new = link.run_id, link.run_id is None
    tags = {
        "registry_ref": version.ref,
        "contender": version.contender or version.strategy,
        "kind": version.strategy,
        "adaptlab_run": version.run_id or "",
    }
    if new:  # a version from a compare or finetune that was not logged: a run of its own in the task's experiment
        run_tags = tags | {"task": version.task, "mlflow.source.name": "adaptlab registry promote"}
        run_id = client.create_run(
            _experiment(client, link.experiment, link.uri), run_name=version.ref, tags=run_tags
        ).info.run_id
    client.log_artifacts(run_id, str(version.folder), "solver")
    if new:
        client.set_terminated(run_id, "FINISHED")
    try:
        client.create_registered_model(
            link.model,
            tags={"task": version.task},
            description=f"adaptlab task {version.task}: each version is a registry version (task@vN); "
            f"'{CHAMPION}' is the promoted or recommended one",
        )
    except MlflowException as exc:
        if exc.error_code != "RESOURCE_ALREADY_EXISTS":
            raise
    source = f"{client.get_run(run_id).info.artifact_uri}/solver"
    return client.create_model_version(
        link.model,
        source,
        run_id=run_id,
        tags=tags,
        description=f"adaptlab {version.ref} ({version.contender or version.strategy}, kind {version.strategy})",
    )


def _model_version_of(client, model: str, version):
    """The MLflow version of `model` that holds registry version `version` (the same ref from the same run), or None."""
    found = client.search_model_versions(f"name = '{model}'")  # task names are [a-z0-9._-]: nothing to escape
    return next(
        (
            v
            for v in found
            if v.tags.get("registry_ref") == version.ref and v.tags.get("adaptlab_run", "") == (version.run_id or "")
        ),
        None,
    )


def _log_batch(client, run_id: str, params: dict | None = None, metrics: dict | None = None) -> None:
    """Params and metrics in batches of MLflow's sizes (100 params per call)."""
    from mlflow.entities import Metric, Param
    from mlflow.utils.validation import MAX_PARAM_VAL_LENGTH, MAX_PARAMS_TAGS_PER_BATCH

    items = [Param(k, v[:MAX_PARAM_VAL_LENGTH]) for k, v in (params or {}).items()]
    for start in range(0, len(items), MAX_PARAMS_TAGS_PER_BATCH):
        client.log_batch(run_id, params=items[start : start + MAX_PARAMS_TAGS_PER_BATCH])
    if metrics:
        now = int(time.time() * 1000)
        client.log_batch(run_id, metrics=[Metric(k, float(v), now, 0) for k, v in metrics.items()])


def _said(exc: BaseException) -> str:
    """An exception in one line: its type and the first line of its message (SQLAlchemy's add the SQL and a link), any
    URI's password masked."""
    text = masked(str(exc).strip())
    return f"{type(exc).__name__}: {text.splitlines()[0]}" if text else type(exc).__name__


@contextmanager
def _quiet():
    """MLflow's database set-up logs each migration at INFO; a compare's output is not the place for them."""
    loggers = [
        logging.getLogger(name)
        for name in ("mlflow.store.db.utils", "alembic.runtime.migration", "mlflow.tracking._model_registry.fluent")
    ]
    levels = [log.level for log in loggers]
    for log in loggers:
        log.setLevel(logging.WARNING)
    try:
        yield
    finally:
        for log, level in zip(loggers, levels):
            log.setLevel(level)
