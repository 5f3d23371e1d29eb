"""`zero_shot`: the instruction only, on a local model or an OpenAI-compatible endpoint."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field

from adaptlab.config import MODEL_HELP, ModelChoice, StrategyConfig
from adaptlab.icl.strategies import ZeroShot, prompted_solver
from adaptlab.kinds import Kind
from adaptlab.solver import read_solver_json
from adaptlab.task import Task

NAME = "zero_shot"


class ZeroShotConfig(StrategyConfig):
    """The instruction only."""

    name: Literal["zero_shot"]
    model: ModelChoice | None = Field(None, description=MODEL_HELP)


def build(config: ZeroShotConfig, ctx) -> ZeroShot:
    return ZeroShot(ctx.model(config.model), NAME)


def load(folder: Path, ctx):
    """The saved prompt's solver, on the model it was fitted on (`ctx.base_for` refuses another)."""
    info = read_solver_json(folder, NAME)
    return prompted_solver(NAME, ctx.base_for(info), Task.from_dict(info["task"]))


KIND = Kind(
    NAME, "prompted", ZeroShotConfig, build=build, load=load, tier=2, summary="the instruction only", space={}
)  # tuning searches its instruction
