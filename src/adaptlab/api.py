"""The Python API: what the CLI runs, for notebooks and scripts.

    import adaptlab

    result = adaptlab.compare("examples/banking-cards/experiment.yaml")
    result.choice                  # 'embed_classifier'
    result.to_pandas()             # one row per contender: metrics, intervals, P(best), time, cost
    result.predictions_to_pandas() # one row per test example and contender
    result.run_dir                 # results.json, report.html, the saved solvers
    result.results                 # results.json, typed (adaptlab.results.CompareResults:
    docs/schema/results.schema.json)
    result.mlflow                  # with compare(..., mlflow=True): where MLflow has the runs and the model version

`experiment` is a YAML path, a mapping shaped like the YAML (paths relative to the
working directory) or an `ExperimentConfig`; it is validated as the CLI validates it,
with the same errors. `progress` is a callable that gets every message, or an
`adaptlab.runs.Events` (the CLI passes one that draws rich bars). These names
(`adaptlab.__all__`) are the stable surface.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from adaptlab.results import CompareResults
from adaptlab.runs.events import Events


class _Messages(Events):
    """Events that hand each message line to a callable (print, a logger, a notebook widget)."""

    def __init__(self, callback: Callable[[str], Any]):
        self.callback = callback

    def message(self, text: str, level: str = "info") -> None:
        self.callback(text if level == "info" else f"{level}: {text}")


def _events(progress) -> Events | None:
    if progress is None or isinstance(progress, Events):
        return progress
    if callable(progress):
        return _Messages(progress)
    raise TypeError(
        f"progress must be a callable taking a message, or an adaptlab.runs.Events; got {type(progress).__name__}"
    )


@dataclass(frozen=True)
class Comparison:
    """A finished compare: results.json's content, typed (adaptlab.results.CompareResults), and the run folder it was
    written to."""

    results: CompareResults
    run_dir: Path

    @property
    def choice(self) -> str:
        """The recommended contender (or collect_more_data / none_meets_the_constraints)."""
        return self.results.recommendation.choice

    @property
    def reasons(self) -> list[str]:
        return list(self.results.recommendation.reasons)

    @property
    def metric(self) -> str:
        return self.results.task.metric

    @property
    def report(self) -> Path:
        return self.run_dir / "report.html"

    @property
    def mlflow(self) -> dict | None:
        """Where the run was logged in MLflow (the run folder's mlflow.json: runs, model version, alias), or None."""
        path = self.run_dir / "mlflow.json"
        return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else None

    def to_pandas(self):
        """One row per contender: every metric with its 95% interval (`<metric>_low`, `<metric>_high`), P(best), kind,
        fit seconds, latency, prompt tokens, peak memory and cost, in results.json's order."""
        import pandas as pd

        rows = []
        for s in self.results.strategies:
            row = {"contender": s.name, "kind": s.traits.get("kind", s.name)}
            for key, value in s.metrics.items():
                row[key] = value
                if key in s.ci:
                    row[f"{key}_low"], row[f"{key}_high"] = s.ci[key]
            row |= {
                k: getattr(s, k)
                for k in (
                    "p_best",
                    "fit_seconds",
                    "latency_ms_mean",
                    "latency_ms_p95",
                    "prompt_tokens_mean",
                    "peak_rss_mb",
                    "cost_per_1k_queries",
                    "fit_cost",
                )
            }
            rows.append(row)
        return pd.DataFrame(rows).set_index("contender")

    def predictions_to_pandas(self):
        """One row per test example and contender: the input, the expected and the predicted answer, and its line."""
        import pandas as pd

        rows = [
            {
                "contender": s.name,
                **p.model_dump(exclude={"passages"}, exclude_unset=True),
                "passages": [g["source"] for g in p.passages or []],
            }
            for s in self.results.strategies
            for p in s.predictions
        ]
        return pd.DataFrame(rows)


def compare(
    experiment=None,
    *,
    out: str | Path | None = None,
    model: str | None = None,
    progress=None,
    mlflow: bool | str | None = None,
    resume: str | Path | None = None,
) -> Comparison:
    """Fit every contender of `experiment`, measure each on the same test rows, recommend one (`adaptlab compare`).

    `mlflow` logs the finished run to MLflow (adaptlab.integrations.mlflow): a tracking URI; True (the experiment's
    `mlflow.tracking_uri`, else $MLFLOW_TRACKING_URI, else SQLite under $ADAPTLAB_HOME/mlflow); False (not even when
    the experiment has an `mlflow:` field); None (that field decides). `resume`: a run folder a compare left
    unfinished (stopped, killed, failed), continued with its recorded experiment: the contenders it finished are kept.
    """
    from adaptlab.errors import ConfigError
    from adaptlab.runs.compare import run_compare, unfinished
    from adaptlab.runs.experiment import experiment_of

    if resume is not None:
        if experiment is not None or model or out:
            raise ConfigError(
                f"resume continues {resume} with the experiment, model and folder it recorded; leave "
                "the experiment, model and out off"
            )
        experiment = unfinished(Path(resume))
    read = experiment_of(experiment)  # once: the run and its MLflow settings come from the same reading of the file
    tracking = _tracking(
        read[0], mlflow
    )  # before any fitting: a missing mlflow extra fails in a second, not after the run
    events = _events(progress)
    results, run_dir = run_compare(
        read,
        Path(out) if out else None,
        events=events,
        model=model,
        resume=Path(resume) if resume is not None else None,
    )
    if tracking:
        from adaptlab.integrations.mlflow import log_run
        from adaptlab.integrations.mlflow_summary import masked

        record = log_run(run_dir, tracking)
        champion = record["champion"]
        if events:
            events.message(
                f"mlflow: runs logged to experiment {record['experiment']!r} at {masked(record['tracking_uri'])}"
                + (
                    f"; {champion['ref']} ({champion['contender']}) is version {champion['version']} "
                    f"of model {record['registered_model']!r}, alias {champion['alias']!r}"
                    if champion
                    else "; no contender recommended, so no model version registered"
                )
            )
    return Comparison(CompareResults.model_validate(results), run_dir)


def _tracking(config, setting):
    """Where compare logs to MLflow (adaptlab.integrations.mlflow.Tracking), or None."""
    if setting is False:
        return None
    from adaptlab.integrations.mlflow import tracking_for

    return tracking_for(setting, config.mlflow)


def sweep(
    experiment,
    *,
    sizes: tuple[int, ...] | None = None,
    seeds: int = 3,
    out: str | Path | None = None,
    progress=None,
    model: str | None = None,
) -> dict:
    """The learning curve (`adaptlab sweep`): prompting against fine-tuning at each training-set size; sweep.json's
    content.
    `model` replaces the experiment's base model, as compare's does."""
    from adaptlab.runs.sweep import DEFAULT_SIZES, run_sweep

    return run_sweep(
        experiment,
        tuple(sizes or DEFAULT_SIZES),
        seeds,
        Path(out) if out else None,
        events=_events(progress),
        model=model,
    )


def audit_data(train, test=None, *, instruction: str | None = None, kind: str | None = None):
    """Score a training set on the five criteria, with leakage against `test` (`adaptlab audit`); paths or Datasets.
    Returns an AuditReport (`.scores()`, `.to_dict()`). (Not `adaptlab.audit`: that name is the audit package.)"""
    from adaptlab.audit import audit as run_audit
    from adaptlab.data import Dataset, load_dataset
    from adaptlab.task import infer_kind

    train = train if isinstance(train, Dataset) else load_dataset(train, min_examples=2)
    test = test if test is None or isinstance(test, Dataset) else load_dataset(test)
    return run_audit(train, test, kind=kind or infer_kind(train), instruction=instruction)


def review(run, ratings=None, *, reviewer: str | None = None):
    """Import ratings made elsewhere (`ratings`: a JSONL or CSV file of row, a, b, preference, optional reviewer,
    score_a, score_b, comment; all lines or none) into the run folder `run`, then bring its judged figures up to date
    (results.json's `judged`, the report); returns them (adaptlab.results.Judged), or None with no ratings and no
    judge. Rating on the page is `adaptlab review RUN` on the command line."""
    from adaptlab.reviews.ratings import import_ratings
    from adaptlab.runs.quality import conclude_judged

    if ratings is not None:
        import_ratings(Path(run), Path(ratings), reviewer=reviewer)
    return conclude_judged(Path(run))


def judge(run, model=None, *, rows: int | None = None, pointwise: bool = False, progress=None):
    """Judge a finished compare run's answers (`adaptlab judge RUN`): `model` as an experiment's `model:` (a name,
    folder, .gguf, or {base_url, name} of an endpoint) in place of the run's own `judge:` model (its other settings
    kept); `rows` and `pointwise` override them; only what the judge's cache lacks is asked. Returns the judged
    figures (adaptlab.results.Judged): the judge's verdicts, calibrated by the run's ratings where there are any, and
    its agreement with them."""
    from adaptlab.config import JudgeConfig
    from adaptlab.errors import ConfigError
    from adaptlab.runs.judging import judge_run, run_judge_config

    recorded = run_judge_config(Path(run))  # the run's own judge: its rubric, threshold and limits are kept
    if model is None and recorded is None:
        raise ConfigError(f"{run}: its experiment has no `judge:`; pass model= (a model name, folder or endpoint)")
    base = recorded.model_dump() if recorded is not None else {}
    if model is not None:
        base["model"] = model
    settings = {"rows": rows} if rows is not None else {}
    config = JudgeConfig.model_validate(base | settings | ({"pointwise": True} if pointwise else {}))
    return judge_run(Path(run), config, _events(progress)).judged
