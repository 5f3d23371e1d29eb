"""Tuning: a contender's settings searched on the dev rows, within a budget, before it is measured on test.

A comparison of prompting with fine-tuning is only fair when each side is tuned as a
careful team would tune it, with the same effort. A contender with `tune:` gets
`trials` settings tried (or as many as `budget_minutes` allows), its own settings first
so the untuned figure is one of them; each trial fits on the training rows and is
scored on the dev rows with the task's headline metric. Test rows are never seen here:
`tune` is given only train and dev. What is searched is the kind's `space`
(kinds/*.py: few_shot k and selector, rag k and retriever, lora learning rate, epochs
and rank, ...) and, for prompted LLM kinds, the instruction among variants of the
task's own (`instructions`). The search is Optuna's TPE sampler, seeded, which also
enforces the time budget; with a handful of trials it is little more than a seeded
random search, which is what a handful of trials can afford. A space the budget covers
(zero_shot's four instructions in six trials) is tried whole instead (Optuna's grid
sampler), and settings drawn a second time are not fitted again: they keep their score.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, replace
from typing import Callable

import numpy as np

from adaptlab.data import Dataset
from adaptlab.errors import AdaptlabError, ConfigError
from adaptlab.metrics import row_scores
from adaptlab.task import Task


@dataclass(frozen=True)
class Tuned:
    config: object  # the contender's config with the best settings found
    task: Task  # the task with the best instruction found (the task itself for kinds whose instruction is not searched)
    record: dict  # what results.json keeps: budget, every trial, the best, the untuned settings' dev score


def instructions(task: Task) -> list[tuple[str, Task]]:
    """The instruction variants a prompted contender's tuning chooses among: the task's own first, then without the
    label list (classify), a terse and a detailed phrasing. Each is a Task the prompts are built from."""
    own = task.instruction.rstrip()
    if task.kind == "classify":
        return [
            ("own", task),
            ("own, no label list", replace(task, list_labels=False)),
            ("terse", replace(task, instruction="Answer with the label only.")),
            ("detailed", replace(task, instruction=f"{own} Read the whole message, decide which one category fits it best, and answer with that category's name exactly as written, nothing else.")),
        ]
    return [
        ("own", task),
        ("terse", replace(task, instruction=f"{own} Answer briefly: only what was asked.")),
        ("detailed", replace(task, instruction=f"{own} Answer completely and precisely, in the form a correct answer takes, and add nothing else.")),
    ]


def check_tunable(strategy_config, kind) -> None:
    if strategy_config.tune is not None and kind.space is None:
        raise ConfigError(f"strategy {strategy_config.key!r} ({kind.name}) has tune:, but {kind.name} has no settings to search; remove tune: from it")


def tune(strategy_config, kind, task: Task, train: Dataset, dev: Dataset | None, build: Callable, seed: int, progress: Callable | None = None) -> Tuned:
    """Search `strategy_config`'s settings on `dev` (never test); `build(config)` makes the Strategy a trial fits.
    `progress(trial_number, record)` hears each finished trial."""
    import optuna

    if dev is None or len(dev) == 0:
        raise ConfigError(f"strategy {strategy_config.key!r} has tune:, but there are no dev rows to score its trials on: give data.dev, or keep tune.dev_fraction above 0 with enough training rows (8 or more held out)")
    budget = strategy_config.tune
    space = _space(kind.space, strategy_config)
    variants = instructions(task) if kind.family == "prompted" and kind.llm else []
    base = strategy_config.model_dump()
    trials: list[dict] = []

    def objective(trial) -> float:
        settings = {name: _suggest(trial, name, spec) for name, spec in space.items()}
        chosen = task
        if variants:
            name = trial.suggest_categorical("instruction", [n for n, _ in variants])
            chosen = dict(variants)[name]
        tried = settings | ({"instruction": name} if variants else {})
        seen = next((r for r in trials if r["settings"] == tried), None)
        if seen is not None:  # the sampler drew settings already tried: their score again, without a second fit
            trials.append({"trial": trial.number, "settings": tried, "dev_score": seen["dev_score"], "seconds": 0.0, "repeat_of": seen["trial"]})
            return seen["dev_score"]
        start = time.perf_counter()
        config = kind.config.model_validate(base | settings | {"tune": None})
        solver = build(config).fit(chosen, train, dev=dev)
        score = float(np.mean(row_scores(task.kind, dev.outputs, [p.output for p in _predict(solver, dev.inputs)], task.abstain)))
        record = {"trial": trial.number, "settings": settings | ({"instruction": name} if variants else {}), "dev_score": score, "seconds": round(time.perf_counter() - start, 2)}
        trials.append(record)
        if progress:
            progress(trial.number, record)
        return score

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    grid = {name: spec[1] for name, spec in space.items() if spec[0] == "choice"} | ({"instruction": [n for n, _ in variants]} if variants else {})
    small = len(grid) == len(space) + bool(variants) and math.prod(len(v) for v in grid.values()) <= budget.trials
    sampler = optuna.samplers.GridSampler(grid, seed=seed) if small else optuna.samplers.TPESampler(seed=seed)  # a space the budget covers is tried whole
    study = optuna.create_study(direction="maximize", sampler=sampler)
    study.enqueue_trial({name: getattr(strategy_config, name) for name in space} | ({"instruction": "own"} if variants else {}))  # trial 0: the untuned settings
    start = time.perf_counter()
    study.optimize(objective, n_trials=budget.trials, timeout=budget.budget_minutes * 60 if budget.budget_minutes else None, catch=(AdaptlabError,))
    done = trials
    if not done:
        raise AdaptlabError(f"strategy {strategy_config.key!r}: no tuning trial finished (see the errors above); loosen tune: or fix the settings")
    best = max(done, key=lambda r: (r["dev_score"], -r["trial"]))  # ties: the earliest (the untuned settings first)
    settings = {k: v for k, v in best["settings"].items() if k != "instruction"}
    chosen = dict(variants)[best["settings"]["instruction"]] if variants else task
    record = {
        "budget": budget.model_dump(),
        "trials_run": len(done),
        "seconds": round(time.perf_counter() - start, 2),
        "searched": {name: list(spec[1]) if spec[0] == "choice" else [spec[1], spec[2]] for name, spec in space.items()} | ({"instruction": [n for n, _ in variants]} if variants else {}),
        "instructions": {n: t.instruction + ("" if t.list_labels else " (no label list)") for n, t in variants},
        "trials": done,
        "untuned": {"settings": done[0]["settings"], "dev_score": done[0]["dev_score"]} if done[0]["trial"] == 0 else None,
        "best": {"settings": best["settings"], "dev_score": best["dev_score"], "trial": best["trial"]},
        "dev_rows": len(dev),
    }
    return Tuned(kind.config.model_validate(base | settings), chosen, record)


def _predict(solver, inputs: list[str]):
    """A trial's answers on the dev inputs (a seam: the test that proves test rows never reach the tuner watches it)."""
    return solver.predict(inputs)


def _space(space: dict, config) -> dict:
    """The kind's space with the contender's own value of each setting inside it (so trial 0 can be the untuned settings)."""
    out = {}
    for name, spec in space.items():
        value = getattr(config, name)
        if spec[0] == "choice":
            out[name] = ("choice", list(spec[1]) if value in spec[1] else sorted([*spec[1], value], key=str) if isinstance(value, str) else sorted([*spec[1], value]))
        else:
            out[name] = ("log", min(spec[1], value), max(spec[2], value))
    return out


def _suggest(trial, name: str, spec: tuple):
    if spec[0] == "choice":
        return trial.suggest_categorical(name, spec[1])
    return float(f"{trial.suggest_float(name, spec[1], spec[2], log=True):.3g}")


def tune_contender(strategy_config, kind, task: Task, train: Dataset, dev: Dataset | None, test: Dataset, build: Callable, seed: int, events) -> tuple[object, Task, dict]:
    """`tune`, then the untuned settings measured on test too (the report shows both figures): the contender's best
    config, its task (instruction) and the record results.json keeps under its solver's `tuning`."""
    from adaptlab.evaluation import evaluate

    with events.bars():
        bar = events.bar(f"{strategy_config.key}: tuning on {len(dev) if dev is not None else 0} dev rows", strategy_config.tune.trials)
        tuned = tune(strategy_config, kind, task, train, dev, build, seed, lambda number, record: bar.update(number + 1, f"trial {number}: dev {record['dev_score']:.3f}"))
    record = tuned.record
    if record["untuned"] is not None:
        if record["best"]["trial"] == 0:
            record["untuned"]["test"] = "the tuned settings are the untuned ones: the contender's own figures"
        else:
            with events.bars():
                bar = events.bar(f"{strategy_config.key}: untuned settings on test", len(test))
                measured, _ = evaluate(build(strategy_config), task, train, test, predict_progress=bar.advance, name=strategy_config.key)
            record["untuned"]["test"] = {"score": measured.metrics[task.metric], "ci": list(measured.ci[task.metric])}
    events.message(f"{strategy_config.key}: tuned in {record['seconds']:.0f} s over {record['trials_run']} trials; best on dev {record['best']['dev_score']:.3f} ({_words(record['best']['settings'])})" + (f", untuned {record['untuned']['dev_score']:.3f}" if record["untuned"] else ""))
    return tuned.config, tuned.task, record


def _words(settings: dict) -> str:
    return ", ".join(f"{k} {v}" for k, v in settings.items())
