"""A judge model that compares contenders' answers: `Judge` asks (both orders, cached), `Verdict` and `Score` are what
it says, `rubrics` hold what it is told to look for.

    >>> from adaptlab.judges import Judge, Verdict, default_rubric
"""

from adaptlab.judges.cache import JudgeCache
from adaptlab.judges.judge import Answer, Judge, Pair, parse_score, parse_verdict
from adaptlab.judges.rubrics import default_rubric, rubric_for
from adaptlab.judges.verdicts import JudgeCounts, JudgeRecord, Score, Verdict

__all__ = [
    "Answer",
    "Judge",
    "JudgeCache",
    "JudgeCounts",
    "JudgeRecord",
    "Pair",
    "Score",
    "Verdict",
    "default_rubric",
    "parse_score",
    "parse_verdict",
    "rubric_for",
]
