"""`sweep`: the learning curve: quality against the number of labeled examples, prompting vs fine-tuning.

For each size n (and every seed) a seeded sample of n training rows is drawn once;
the experiment's prompting strategies select their shots from it and its fine-tuning
strategies train on it, and all are measured on the same test rows. Per size, each
strategy's mean score over seeds, and for each fine-tuned/prompted pair the mean
difference with a 95% interval that resamples seeds, then test rows (rows of one
seed move together: pooling (seed, row) pairs made it too narrow). Fine-tuning's dev
rows are held out of the prompting strategies' pool at each size too. The
crossover is the smallest size from which fine-tuning's mean stays above prompting's;
"significant" where the interval is above 0 too.
"""

from __future__ import annotations

import random
from pathlib import Path

import numpy as np

from adaptlab import kinds
from adaptlab.data import Dataset
from adaptlab.evaluation import evaluate
from adaptlab.evaluation.repeats import two_level_ci
from adaptlab.runs.events import Events
from adaptlab.runs.experiment import experiment_of
from adaptlab.runs.prepare import contender_dev, documents_for, equal_data, prepare

DEFAULT_SIZES = (8, 16, 32, 64)


def sample(train: Dataset, n: int, seed: int) -> Dataset:
    """n rows drawn without replacement, in file order (all of them when n >= the set's size)."""
    if n >= len(train):
        return train
    keep = sorted(random.Random(seed).sample(range(len(train)), n))
    return Dataset([train.examples[i] for i in keep], train.source, train.instruction)


def run_sweep(
    experiment,
    sizes: tuple[int, ...] = DEFAULT_SIZES,
    seeds: int = 3,
    out: Path | None = None,
    events: Events | None = None,
    model: str | None = None,
) -> dict:
    """Measure the experiment's prompting and fine-tuning strategies at each training-set size; writes sweep.json.
    `model` replaces the experiment's base model."""
    from adaptlab.kinds.context import BuildContext, ModelSource
    from adaptlab.models import load_base_model

    events = events or Events()
    config, root = experiment_of(experiment)
    config = config.model_copy(update={"model": model}) if model else config
    prepared = prepare(config, root)
    task, train, test = prepared.task, prepared.train, prepared.test
    family = {s.key: kinds.kind(s.name).traits(s)["family"] for s in config.strategies}
    prompted = {s.key for s in config.strategies if kinds.family_prompted(family[s.key])}
    tuned = {s.key for s in config.strategies if kinds.family_trains(family[s.key])}
    chosen = [s for s in config.strategies if s.key in prompted | tuned]
    if not prompted or not tuned:
        from adaptlab.errors import ConfigError

        raise ConfigError(
            f"{experiment if isinstance(experiment, (str, Path)) else 'the experiment'}: a sweep "
            "compares prompting with fine-tuning; list at least one of "
            f"{', '.join(k.name for k in kinds.kinds() if k.prompted)} and one of "
            f"{', '.join(k.name for k in kinds.kinds() if k.trains)}"
        )
    points = sorted({min(n, len(train)) for n in sizes} | {len(train)})
    from adaptlab.config import RemoteModelConfig

    if isinstance(config.model, RemoteModelConfig):
        from adaptlab.errors import ConfigError

        raise ConfigError(
            "adaptlab sweep runs on a local base model; the experiment's model is an endpoint: pass "
            "--model with a local model (the prompted side can keep its endpoint as a strategy's own "
            "model)"
        )
    models = ModelSource(load_base_model(config.model))
    documents = documents_for(config, root, models.default)
    runs = []  # {"strategy", "n", "seed", "score", "scores"}
    for n in points:
        for seed in range(seeds if n < len(train) else 1):
            subset = sample(train, n, config.seed + seed)
            rows, dev, _ = equal_data(
                config, subset, prepared.dev, task.spec.labelled, config.seed + seed
            )  # both sides learn from the same rows
            for strategy_config in chosen:
                strategy = kinds.kind(strategy_config.name).build(
                    strategy_config,
                    BuildContext(
                        models,
                        config.seed + seed,
                        dev=contender_dev(strategy_config, dev, prepared.dev is not None),
                        documents=documents,
                    ),
                )
                evaluation, _ = evaluate(strategy, task, rows, test, name=strategy_config.key)
                runs.append(
                    {
                        "strategy": strategy_config.key,
                        "n": n,
                        "seed": seed,
                        "score": evaluation.metrics[task.metric],
                        "scores": evaluation.scores,
                    }
                )
                events.message(
                    f"n={n} seed={seed} {strategy_config.key}: {task.metric} {evaluation.metrics[task.metric]:.3f}"
                )
    models.close()
    result = {
        "task": task.to_dict(),
        "metric": task.metric,
        "sizes": points,
        "seeds": seeds,
        "runs": [{k: v for k, v in r.items() if k != "scores"} for r in runs],
        **summarize(runs, points, family),
    }
    if out:
        from adaptlab.results import write_results
        from adaptlab.runs.folder import mark
        from adaptlab.runs.prepare import resolved

        Path(out).mkdir(parents=True, exist_ok=True)
        write_results(Path(out) / "sweep.json", result)
        if not (Path(out) / "run.json").exists():  # beside a compare's results, the folder stays that compare's
            mark(Path(out), "sweep", "completed", config=resolved(config, root))
    return result


def summarize(runs: list[dict], sizes: list[int], family: dict[str, str] | None = None) -> dict:
    """Mean score per contender and size; per fine-tuned/prompted pair (`family`: id -> family) the difference per size
    and the crossover."""
    strategies = list(dict.fromkeys(r["strategy"] for r in runs))
    family = family or {s: kinds.kind(s).family for s in strategies if s in kinds.names()}
    curve = {
        s: {n: float(np.mean([r["score"] for r in runs if r["strategy"] == s and r["n"] == n])) for n in sizes}
        for s in strategies
    }
    comparisons = []
    for tuned in (s for s in strategies if kinds.family_trains(family.get(s))):
        for prompted in (s for s in strategies if kinds.family_prompted(family.get(s))):
            by_size = []
            for (
                n
            ) in sizes:  # per seed, the two contenders' per-row differences; the interval resamples seeds, then rows
                a = [
                    r["scores"]
                    for r in sorted(
                        (r for r in runs if r["strategy"] == tuned and r["n"] == n), key=lambda r: r["seed"]
                    )
                ]
                b = [
                    r["scores"]
                    for r in sorted(
                        (r for r in runs if r["strategy"] == prompted and r["n"] == n), key=lambda r: r["seed"]
                    )
                ]
                differences = np.array(a, dtype=float) - np.array(b, dtype=float)
                lo, hi = two_level_ci(differences)
                by_size.append({"n": n, "difference": float(differences.mean()), "ci95": [lo, hi]})
            comparisons.append({"fine_tuned": tuned, "prompted": prompted, "by_size": by_size, **crossover(by_size)})
    return {
        "curve": {s: [{"n": n, "mean": v} for n, v in c.items()] for s, c in curve.items()},
        "comparisons": comparisons,
    }


def crossover(by_size: list[dict]) -> dict:
    """The smallest size from which fine-tuning's mean stays ahead, and from which its interval stays above 0.

    >>> crossover([
    ...     {"n": 8, "difference": -0.2, "ci95": [-0.3, -0.1]},
    ...     {"n": 16, "difference": 0.05, "ci95": [-0.02, 0.1]},
    ...     {"n": 32, "difference": 0.1, "ci95": [0.02, 0.2]},
    ... ])
    {'crossover_n': 16, 'significant_from_n': 32}
    """

    def first_from(ok) -> int | None:
        found = None
        for row in reversed(by_size):
            if not ok(row):
                break
            found = row["n"]
        return found

    return {
        "crossover_n": first_from(lambda r: r["difference"] > 0),
        "significant_from_n": first_from(lambda r: r["ci95"][0] > 0),
    }
