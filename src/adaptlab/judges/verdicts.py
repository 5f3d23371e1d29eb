"""What a judge says, as typed records: a `Verdict` on a pair of answers, a `Score` of one answer, and `JudgeRecord`,
the whole of RUN/judge.json.

    >>> Verdict(row=3, a="lora", b="nearest", preference="tie", first="a", second="b", consistent=False, longer="a")
    ... # doctest: +ELLIPSIS
    Verdict(row=3, a='lora', b='nearest', preference='tie', first='a', second='b', consistent=False, ...)
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

Side = Literal["a", "b", "tie"]


class _Closed(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Verdict(_Closed):
    """The judge on answers `a` and `b` to test row `row`, asked twice: `a` shown first, then `b` shown first."""

    row: int = Field(ge=0, description="the test row's 0-based index, as in results.json's predictions")
    a: str = Field(description="a contender's id (in `adaptlab judge check`: 'a', the file's answer_a)")
    b: str = Field(description="the other contender's id")
    preference: Side = Field(description="the verdict: `first` when both orders agree, else tie")
    first: Side = Field(description="the verdict with a's answer shown first (a reply without a verdict: tie)")
    second: Side = Field(description="the verdict with b's answer shown first")
    consistent: bool = Field(description="both orders gave the same verdict (it survived the swap)")
    longer: Literal["a", "b"] | None = Field(description="whose answer is longer in characters; None: equal")
    identical: bool = Field(
        False, description="the two answers are the same after folding case and spacing: a tie, the judge not asked"
    )
    unparsed: int = Field(0, ge=0, le=2, description="replies of the two that held no verdict (each counted a tie)")


class Score(_Closed):
    """The judge's 1-5 score of `contender`'s answer to test row `row`, against the reference answer."""

    row: int = Field(ge=0)
    contender: str
    score: int | None = Field(
        ge=1, le=5, description="1 (useless or wrong) to 5 (as good as the reference); None: no score in the reply"
    )


class JudgeCounts(_Closed):
    """How the verdicts came about."""

    verdicts: int = Field(description="pairs of answers judged (rows x contender pairs)")
    scores: int = Field(0, description="answers scored 1-5 (pointwise)")
    asked: int = Field(description="requests sent to the judge this time")
    cached: int = Field(description="requests answered from the cache ($ADAPTLAB_HOME/judge-cache.sqlite)")
    identical: int = Field(
        description="pairs whose answers are the same after folding case and spacing: ties, not asked"
    )
    unparsed: int = Field(description="replies that held no verdict or score (a verdict's counts as a tie)")
    too_long: int = Field(0, description="prompts over a local judge's context: not asked (a tie, counted in unparsed)")
    consistent: int = Field(description="asked verdicts that survived the swap of the answers' order")
    seconds: float = Field(description="wall time of the judging, cached replies included")


class JudgeRecord(_Closed):
    """RUN/judge.json: who judged, with what, and every verdict and score."""

    judge: dict[str, Any] = Field(
        description="the judge's identity: model (as loaded; an endpoint's base_url and name), rubric, "
        "rubric_sha256, template_sha256"
    )
    rows: list[int] = Field(description="the test rows judged (0-based), in order")
    pairs: list[tuple[str, str]] = Field(description="the contender pairs compared on every judged row")
    verdicts: list[Verdict]
    scores: list[Score] = Field([], description="pointwise: every contender's answer to every judged row, 1-5")
    counts: JudgeCounts
    trust_threshold: float = Field(description="judge.trust_threshold: the lowest kappa lower bound trusted")
