"""`few_shot`: k training examples as user/assistant turns before the query, chosen per query by a selector."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, model_validator

from adaptlab.config import MODEL_HELP, ModelChoice, StrategyConfig
from adaptlab.errors import ConfigError
from adaptlab.icl.selectors import EMBEDDING_SELECTORS, FixedSelector, RandomSelector
from adaptlab.icl.strategies import FewShot, saved_pool
from adaptlab.kinds import ExportedShots, Kind
from adaptlab.solver import read_solver_json
from adaptlab.task import Task

NAME = "few_shot"


class FewShotConfig(StrategyConfig):
    """k training examples as user/assistant turns before the query."""

    name: Literal["few_shot"]
    k: int = Field(
        4,
        ge=0,
        description="Number of examples in each prompt; fewer are used if the pool is smaller or the context is "
        "full (docs/defaults.md: why 4); 0 is the zero-shot prompt (a tuner may choose it).",
    )
    selector: Literal["random", "similar", "diverse", "balanced", "fixed"] = Field(
        "similar",
        description="'similar': the k nearest training inputs by embedding; 'diverse': maximal marginal "
        "relevance; 'balanced': round robin over labels, most similar first; 'random': one seeded "
        "sample for every query; 'fixed': the training lines listed in `lines`.",
    )
    lines: list[int] | None = Field(
        None, description="selector 'fixed': 1-based line numbers of the training examples to use, in order."
    )
    exact_k: bool = Field(
        False,
        description="Fail when k shots do not fit the context, instead of using fewer (the count used is "
        "recorded per query).",
    )
    model: ModelChoice | None = Field(None, description=MODEL_HELP)

    @property
    def seeded(self) -> bool:
        return self.selector == "random"  # one seeded sample of shots; the other selectors do not draw

    @model_validator(mode="after")
    def _lines_go_with_fixed(self):
        if (self.selector == "fixed") != (self.lines is not None):
            raise ValueError("'lines' is required with selector 'fixed' and only allowed with it")
        return self


def build(config: FewShotConfig, ctx) -> FewShot:
    return FewShot(
        ctx.model(config.model),
        NAME,
        k=config.k,
        selector=config.selector,
        seed=ctx.seed,
        embedder=ctx.embedder,
        lines=config.lines,
        exact_k=config.exact_k,
    )


def load(folder: Path, ctx):
    """The saved solver: its example pool and selection settings, on the model it was fitted on."""
    info = read_solver_json(folder, NAME)
    s = info["selection"]
    strategy = FewShot(
        ctx.base_for(info),
        NAME,
        k=s["k"],
        selector=s["selector"],
        seed=s["seed"],
        embedder=ctx.embedder,
        lines=s["lines"],
        exact_k=s["exact_k"],
    )
    return strategy.fit(Task.from_dict(info["task"]), saved_pool(folder))


def acting(settings: dict) -> dict:
    """Tuned settings as they act: with k 0 there are no shots, so the selector does nothing.

    >>> acting({"k": 0, "selector": "random"}) == acting({"k": 0, "selector": "similar"})
    True
    """
    return settings | {"selector": None} if settings.get("k") == 0 else settings


def export_shots(folder: Path, info: dict) -> ExportedShots:
    """vLLM export: the shots of a saved solver, the same before every query (random, fixed; k 0: none), or, when they
    are chosen per query by embedding, the pool and selection client.py chooses them from."""
    s = info.get("selection")
    if not s:
        return ExportedShots([])
    if s["k"] == 0:  # the zero-shot prompt whatever the selector (a tuner may choose k 0): no shots, no embedder
        return ExportedShots([], {"selection": s})
    pool = saved_pool(folder)
    if s["selector"] in EMBEDDING_SELECTORS:
        note = (
            f"picks its {s['k']} shots per query by embedding similarity (selector {s['selector']!r}): "
            "client.py needs adaptlab and its embedder installed to choose them"
        )
        return ExportedShots(
            None, {"selection": s, "pool": [{"input": e.input, "output": e.output, "line": e.line} for e in pool]}, note
        )
    if s["selector"] == "random":
        chosen = RandomSelector(pool.examples, s["k"], s["seed"]).chosen
    elif s["selector"] == "fixed":
        chosen = FixedSelector(pool.examples, s["lines"] or [], pool.source).chosen
    else:
        raise ConfigError(f"few-shot selector {s['selector']!r} is not one export knows")
    return ExportedShots([{"input": e.input, "output": e.output} for e in chosen], {"selection": s})


SPACE = {"k": ("choice", [0, 1, 2, 4, 8, 16]), "selector": ("choice", ["similar", "diverse", "balanced", "random"])}
KIND = Kind(
    NAME,
    "prompted",
    FewShotConfig,
    build=build,
    load=load,
    tier=2,
    summary="k training examples in every prompt",
    space=SPACE,
    acting=acting,
    examples_in_prompt=True,
    export_shots=export_shots,
)
