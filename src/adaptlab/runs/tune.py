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

With `tune.proposer: ID` (another prompted contender), that contender's model also
writes `proposals` new instructions, OPRO-style (Yang et al. 2023, "Large Language
Models as Optimizers"): it is shown the task's own instruction, its dev score and the
dev rows trial 0 got wrong, and answers with a better instruction; each proposal joins
the variants the trials choose among. A small local model writes poor instructions;
an endpoint's large model is what this is for.
"""

from __future__ import annotations

import json
import math
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, replace

import numpy as np

from adaptlab.data import Dataset
from adaptlab.errors import AdaptlabError, ConfigError
from adaptlab.metrics import row_scores
from adaptlab.solver import Prediction, Solver
from adaptlab.task import Task


@dataclass(frozen=True)
class Tuned:
    config: object  # the contender's config with the best settings found
    task: Task  # the task with the best instruction found (the task itself for kinds whose instruction is not searched)
    record: dict  # what results.json keeps: budget, every trial, the best, the untuned settings' dev score


@dataclass(frozen=True)
class Proposer:
    """Another contender's model, asked for new instructions (`tune.proposer`)."""

    key: str  # the contender whose model writes
    solver: Solver  # a zero-shot solver of PROPOSER_TASK on that model
    count: int  # instructions it writes (tune.proposals)


PROPOSER_TASK = Task(
    "instruction-proposer",
    "You improve the instructions given to a language model. You are shown an instruction, the share "
    "of examples it got right, "
    "and examples the model answered wrongly while following it. Write one new, complete instruction "
    "under which the model would "
    "answer such examples correctly. Reply with the new instruction only.",
    "generate",
    max_new_tokens=200,
)


def instructions(task: Task) -> list[tuple[str, Task]]:
    """The instruction variants a prompted contender's tuning chooses among: the task's own first, then (classify)
    with the label list's meanings left out when task.labels gives them, without the label list, a terse and a
    detailed phrasing. Each is a Task the prompts are built from."""
    own = task.instruction.rstrip()
    if task.spec.labelled:
        return [
            ("own", task),
            *([("own, labels without meanings", replace(task, descriptions=()))] if task.descriptions else []),
            ("own, no label list", replace(task, list_labels=False)),
            ("terse", replace(task, instruction="Answer with the label only.")),
            (
                "detailed",
                replace(
                    task,
                    instruction=f"{own} Read the whole message, decide which one category fits it best, and "
                    "answer with that category's name exactly as written, nothing else.",
                ),
            ),
        ]
    return [
        ("own", task),
        ("terse", replace(task, instruction=f"{own} Answer briefly: only what was asked.")),
        (
            "detailed",
            replace(
                task,
                instruction=f"{own} Answer completely and precisely, in the form a correct answer takes, and add "
                "nothing else.",
            ),
        ),
    ]


def check_tunable(strategy_config, kind, contenders: list) -> None:
    """A ConfigError for tune: on a kind with nothing to search, or a proposer that is not another prompted
    contender."""
    from adaptlab import kinds

    if strategy_config.tune is None:
        return
    if kind.space is None:
        raise ConfigError(
            f"strategy {strategy_config.key!r} ({kind.name}) has tune:, but {kind.name} has no "
            "settings to search; remove tune: from it"
        )
    name = strategy_config.tune.proposer
    if name is None:
        return
    if not kind.tunes_instruction:
        tuned = ", ".join(k.name for k in kinds.kinds() if k.tunes_instruction)
        raise ConfigError(
            f"strategy {strategy_config.key!r}: tune.proposer writes instructions, but {kind.name} "
            f"has no instruction to tune; remove tune.proposer (it is for {tuned})"
        )
    prompted = [s.key for s in contenders if s.key != strategy_config.key and kinds.kind(s.name).tunes_instruction]
    if name not in prompted:
        raise ConfigError(
            f"strategy {strategy_config.key!r}: tune.proposer {name!r} is not another prompted "
            "contender of this experiment; name one of: "
            + (
                ", ".join(prompted)
                or "(none: add a zero_shot contender on the model that should write, e.g. an endpoint)"
            )
        )


def proposer_for(strategy_config, contenders: list, models) -> Proposer | None:
    """The Proposer a tuned contender names (None without `tune.proposer`): a zero-shot prompt on that contender's
    model."""
    name = strategy_config.tune.proposer if strategy_config.tune else None
    if name is None:
        return None
    from adaptlab.icl.strategies import ZeroShot

    other = next(s for s in contenders if s.key == name)
    model = models.get(getattr(other, "model", None))
    context = getattr(model, "context_length", None)  # a small local context keeps most of it for the prompt
    task = (
        replace(PROPOSER_TASK, max_new_tokens=min(PROPOSER_TASK.max_new_tokens, context // 8))
        if context
        else PROPOSER_TASK
    )
    solver = ZeroShot(model, "proposer").fit(task, Dataset([], "none"))
    return Proposer(name, solver, strategy_config.tune.proposals)


def tune(
    strategy_config,
    kind,
    task: Task,
    train: Dataset,
    dev: Dataset | None,
    build: Callable,
    seed: int,
    progress: Callable | None = None,
    proposer: Proposer | None = None,
) -> Tuned:
    """Search `strategy_config`'s settings on `dev` (never test); `build(config)` makes the Strategy a trial fits.
    `progress(trial_number, record)` hears each finished trial; `proposer` adds instructions written from trial 0's
    errors."""
    import optuna

    if dev is None or len(dev) == 0:
        raise ConfigError(
            f"strategy {strategy_config.key!r} has tune:, but there are no dev rows to score its "
            "trials on: give data.dev, or keep tune.dev_fraction above 0 with enough training rows "
            "(8 or more held out)"
        )
    budget = strategy_config.tune
    space = _space(kind.space, strategy_config)
    variants = instructions(task) if kind.tunes_instruction else []
    base = strategy_config.model_dump()
    trials: list[dict] = []
    # settings as they act -> dev score, seconds, answers, and the trial that recorded them
    measured: dict[str, dict] = {}
    acting = kind.acting or (lambda settings: settings)

    def measure(settings: dict, instruction: str | None) -> dict:
        """Fit the settings (with the named instruction variant) on train and score them on dev, once per settings as
        they act."""
        key = json.dumps(acting(settings | {"instruction": instruction}), sort_keys=True)
        if key not in measured:
            start = time.perf_counter()
            config = kind.config.model_validate(base | settings | {"tune": None})
            named: dict[str | None, Task] = dict(variants)
            measured[key] = _fit_and_score(build(config), named[instruction] if variants else task, train, dev, start)
        return measured[key]

    def objective(trial) -> float:
        settings = {name: _suggest(trial, name, spec) for name, spec in space.items()}
        name = trial.suggest_categorical("instruction", [n for n, _ in variants]) if variants else None
        tried = settings | ({"instruction": name} if variants else {})
        result = measure(settings, name)
        record = _trial_record(trial.number, tried, result)
        trials.append(record)
        if result["trial"] is None:
            result["trial"] = trial.number
            if progress:
                progress(trial.number, record)
        return result["dev_score"]

    start = time.perf_counter()
    untuned = {name: getattr(strategy_config, name) for name in space}
    proposals = None
    if proposer is not None and variants:  # trial 0 is fitted first: its errors are what the proposer reads
        first = measure(untuned, "own")
        proposals = propose(proposer, task, dev, first["dev_score"], first["answers"])
        variants += [
            (f"proposed {i + 1}", replace(task, instruction=text)) for i, text in enumerate(proposals["instructions"])
        ]

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(direction="maximize", sampler=_sampler(space, variants, budget.trials, seed))
    study.enqueue_trial(untuned | ({"instruction": "own"} if variants else {}))  # trial 0: the untuned settings
    timeout = max(1.0, budget.budget_minutes * 60 - (time.perf_counter() - start)) if budget.budget_minutes else None
    study.optimize(objective, n_trials=budget.trials, timeout=timeout, catch=(AdaptlabError,))
    done = trials
    if not done:
        raise AdaptlabError(
            f"strategy {strategy_config.key!r}: no tuning trial finished (see the errors above); "
            "loosen tune: or fix the settings"
        )
    best = max(done, key=lambda r: (r["dev_score"], -r["trial"]))  # ties: the earliest (the untuned settings first)
    settings = {k: v for k, v in best["settings"].items() if k != "instruction"}
    chosen = dict(variants)[best["settings"]["instruction"]] if variants else task
    record = _tuning_record(budget, round(time.perf_counter() - start, 2), space, variants, done, best, len(dev))
    if proposals is not None:
        record["proposer"] = proposals
    return Tuned(kind.config.model_validate(base | settings), chosen, record)


def _fit_and_score(strategy, task: Task, train: Dataset, dev: Dataset, start: float) -> dict:
    """Fit one trial's strategy on train and score it on dev: its dev score, seconds since `start` (the trial's
    beginning) and answers; its trial still None."""
    solver = strategy.fit(task, train, dev=dev)
    answers = [p.output for p in _predict(solver, dev.inputs)]
    score = float(np.mean(row_scores(task.spec, dev.outputs, answers, task.scoring)))
    return {
        "dev_score": score,
        "seconds": round(time.perf_counter() - start, 2),
        "answers": answers,
        "trial": None,
    }


def _trial_record(number: int, tried: dict, result: dict) -> dict:
    """What results.json keeps of one trial; settings the sampler drew again (or ones that act alike) keep the score
    of the trial that fitted them, without a second fit."""
    if result["trial"] is not None:
        return {
            "trial": number,
            "settings": tried,
            "dev_score": result["dev_score"],
            "seconds": 0.0,
            "repeat_of": result["trial"],
        }
    return {"trial": number, "settings": tried, "dev_score": result["dev_score"], "seconds": result["seconds"]}


def _sampler(space: dict, variants: list, trials: int, seed: int):
    """Optuna's grid sampler where the budget covers the whole space (every setting a choice), else its TPE sampler."""
    import optuna

    grid = {name: spec[1] for name, spec in space.items() if spec[0] == "choice"} | (
        {"instruction": [n for n, _ in variants]} if variants else {}
    )
    small = len(grid) == len(space) + bool(variants) and math.prod(len(v) for v in grid.values()) <= trials
    return optuna.samplers.GridSampler(grid, seed=seed) if small else optuna.samplers.TPESampler(seed=seed)


def _tuning_record(budget, seconds: float, space: dict, variants: list, done: list, best: dict, dev_rows: int) -> dict:
    """What results.json keeps of a contender's tuning: the budget, what was searched, every trial, the untuned
    settings' dev score and the best."""
    return {
        "budget": budget.model_dump(),
        "trials_run": len(done),
        "seconds": seconds,
        "searched": {name: list(spec[1]) if spec[0] == "choice" else [spec[1], spec[2]] for name, spec in space.items()}
        | ({"instruction": [n for n, _ in variants]} if variants else {}),
        "instructions": {
            n: t.instruction
            + ("" if t.list_labels else " (no label list)")
            + (" (labels with their meanings)" if t.list_labels and t.descriptions else "")
            for n, t in variants
        },
        "trials": done,
        "untuned": {"settings": done[0]["settings"], "dev_score": done[0]["dev_score"]}
        if done[0]["trial"] == 0
        else None,
        "best": {"settings": best["settings"], "dev_score": best["dev_score"], "trial": best["trial"]},
        "dev_rows": dev_rows,
    }


def propose(proposer: Proposer, task: Task, dev: Dataset, score: float, answers: list[str]) -> dict:
    """`proposer.count` new instructions, each written from the task's own instruction, its dev score and a different
    handful of the dev rows it got wrong (the worst first); what tuning records of them."""
    rows = sorted(
        zip(row_scores(task.spec, dev.outputs, answers, task.scoring), dev.inputs, dev.outputs, answers),
        key=lambda r: r[0],
    )
    wrong = [r[1:] for r in rows if r[0] < 1]
    start = time.perf_counter()
    texts: list[str] = []
    rejected: list[str] = []
    errors: list[str] = []
    shown = 0
    predictions: list[Prediction] = []
    for i in range(proposer.count):
        p, rows_shown = _ask(proposer, task, score, wrong[i :: proposer.count][:4])
        if isinstance(p, AdaptlabError):
            errors.append(str(p))
            continue
        shown += rows_shown
        predictions.append(p)
        text = clean_proposal(p.output)
        (rejected if not text or text in {task.instruction, *texts} else texts).append(text or p.output)
    return {
        "id": proposer.key,
        "instructions": texts,
        "rejected": rejected,  # empty, or a repeat of an instruction already tried
        "errors": errors,  # proposals that failed (the endpoint, or a prompt over the context even without rows)
        "rows_shown": shown,
        "seconds": round(time.perf_counter() - start, 2),
        "tokens": {
            "prompt": sum(p.prompt_tokens for p in predictions),
            "completion": sum(p.completion_tokens for p in predictions),
        },
    }


def _ask(proposer: Proposer, task: Task, score: float, handful: list[tuple[str, str, str]]):
    """One proposal and the rows it was shown: a prompt over the proposer's context shows one row fewer, down to none;
    what still fails is returned as the error."""
    for shown in range(len(handful), -1, -1):
        try:
            return proposer.solver.predict([proposal_prompt(task, score, handful[:shown])])[0], shown
        except AdaptlabError as error:
            failure = error
    return failure, 0


def proposal_prompt(task: Task, score: float, wrong: list[tuple[str, str, str]]) -> str:
    """What the proposer reads: the instruction, its dev score, and (input, expected, answered) rows it got wrong.

    >>> print(proposal_prompt(Task("t", "Say the colour.", "generate"), 0.5, [("sky", "blue", "green")]))
    Instruction: Say the colour.
    Share right on the dev examples: 0.50
    Examples answered wrongly:
    Input: sky
    Expected answer: blue
    The model answered: green
    <BLANKLINE>
    Write the new instruction.
    """
    shown = (
        "".join(f"Input: {i}\nExpected answer: {o}\nThe model answered: {a}\n\n" for i, o, a in wrong)
        or "(none: every dev example was answered right)\n\n"
    )
    labels = f"The answer must be one of these labels: {', '.join(task.labels)}.\n" if task.spec.labelled else ""
    return (
        f"Instruction: {task.instruction}\n{labels}Share right on the dev examples: "
        f"{score:.2f}\nExamples answered wrongly:\n{shown}Write the new instruction."
    )


def clean_proposal(text: str) -> str:
    """A proposer's answer as an instruction: a leading "New instruction:" label and quotes dropped, up to the first
    blank line.

    >>> clean_proposal('New instruction: "Name the colour of the thing."\\n\\nThis helps because...')
    'Name the colour of the thing.'
    """
    text = re.sub(r"^\s*(new |improved )?instruction\s*:\s*", "", text.strip(), flags=re.IGNORECASE)
    text = text.split("\n\n")[0].strip().strip('"').strip()
    return text[:1000]


def _predict(solver, inputs: list[str]):
    """A trial's answers on the dev inputs (a seam: the test that proves test rows never reach the tuner watches it)."""
    return solver.predict(inputs)


def _space(space: dict, config) -> dict:
    """The kind's space with the contender's own value of each setting inside it (so trial 0 can be the untuned
    settings)."""
    out: dict[str, tuple[str, list] | tuple[str, float, float]] = {}
    for name, spec in space.items():
        value = getattr(config, name)
        if spec[0] == "choice":
            out[name] = (
                "choice",
                list(spec[1])
                if value in spec[1]
                else sorted([*spec[1], value], key=str)
                if isinstance(value, str)
                else sorted([*spec[1], value]),
            )
        else:
            out[name] = ("log", min(spec[1], value), max(spec[2], value))
    return out


def _suggest(trial, name: str, spec: tuple):
    if spec[0] == "choice":
        return trial.suggest_categorical(name, spec[1])
    return float(f"{trial.suggest_float(name, spec[1], spec[2], log=True):.3g}")


def tune_contender(
    strategy_config,
    kind,
    task: Task,
    train: Dataset,
    dev: Dataset | None,
    test: Dataset,
    build: Callable,
    seed: int,
    events,
    proposer: Proposer | None = None,
) -> tuple[object, Task, dict]:
    """`tune`, then the untuned settings measured on test too (the report shows both figures): the contender's best
    config, its task (instruction) and the record results.json keeps under its solver's `tuning`."""
    from adaptlab.evaluation import evaluate

    with events.bars():
        bar = events.bar(
            f"{strategy_config.key}: tuning on {len(dev) if dev is not None else 0} dev rows",
            strategy_config.tune.trials,
        )
        tuned = tune(
            strategy_config,
            kind,
            task,
            train,
            dev,
            build,
            seed,
            lambda number, record: bar.update(number + 1, f"trial {number}: dev {record['dev_score']:.3f}"),
            proposer,
        )
    record = tuned.record
    if "proposer" in record:
        shown = record["proposer"]
        events.message(
            f"{strategy_config.key}: {shown['id']} proposed {len(shown['instructions'])} "
            f"instruction(s) from {shown['rows_shown']} dev rows trial 0 got wrong, in "
            f"{shown['seconds']:.0f} s"
            + (f" ({len(shown['rejected'])} empty or repeated, dropped)" if shown["rejected"] else ""),
            "warning" if shown["errors"] else "info",
        )
        for error in shown["errors"]:
            events.message(f"{strategy_config.key}: a proposal by {shown['id']} failed: {error}", "warning")
    if record["untuned"] is not None:
        if record["best"]["trial"] == 0:
            record["untuned"]["test"] = "the tuned settings are the untuned ones: the contender's own figures"
        else:
            with events.bars():
                bar = events.bar(f"{strategy_config.key}: untuned settings on test", len(test))
                measured, _ = evaluate(
                    build(strategy_config), task, train, test, predict_progress=bar.advance, name=strategy_config.key
                )
            record["untuned"]["test"] = {"score": measured.metrics[task.metric], "ci": list(measured.ci[task.metric])}
    events.message(
        f"{strategy_config.key}: tuned in {record['seconds']:.0f} s over {record['trials_run']} "
        f"trials; best on dev {record['best']['dev_score']:.3f} "
        f"({_words(record['best']['settings'])})"
        + (f", untuned {record['untuned']['dev_score']:.3f}" if record["untuned"] else "")
    )
    return tuned.config, tuned.task, record


def _words(settings: dict) -> str:
    return ", ".join(f"{k} {v}" for k, v in settings.items())
