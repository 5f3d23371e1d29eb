"""What a compare run folder tells MLflow, as plain values: the parameters (experiment keys dotted), a contender's
metrics and figures, the tags' model names, the parent run's note and times; and `masked`, which hides a URI's
password wherever adaptlab shows or logs the URI. Pure functions over results.json and experiment.yaml; no mlflow
import.
"""

from __future__ import annotations

import json
import re
from datetime import datetime
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from adaptlab.results import CompareResults


def masked(text: str) -> str:
    """`text` with the password of every URI in it shown as ***, for messages and logs (a tracking URI may carry one).

    >>> masked("https://ada:s3cret@mlflow.example.com:5000")
    'https://ada:***@mlflow.example.com:5000'
    >>> masked("store https://ada:p@ss@host/x failed; sqlite:///tmp/mlflow.db and http://ada@host stay as they are")
    'store https://ada:***@host/x failed; sqlite:///tmp/mlflow.db and http://ada@host stay as they are'
    """
    # the user info ends at the netloc's last @ (an unencoded @ in the password included), before any / or space
    return re.sub(r"([A-Za-z][\w+.-]*://[^/:@\s]*):[^/\s]*@", r"\1:***@", text)


def figures(strategy: dict) -> dict[str, float]:
    """A contender's metrics, each metric's 95% interval as `<metric>_low` / `<metric>_high`, and every other figure it
    has."""
    out = {}
    for key, value in strategy.get("metrics", {}).items():
        if _number(value):
            out[_key(key)] = value
        low, high = strategy.get("ci", {}).get(key) or (None, None)
        out |= {_key(f"{key}_{end}"): bound for end, bound in (("low", low), ("high", high)) if _number(bound)}
    return out | {_key(k): v for k, v in strategy.items() if k not in ("metrics", "ci") and _number(v)}


def _key(name: str) -> str:
    """A param or metric name as MLflow accepts it (letters, digits, _ - . / and space; anything else becomes _)."""
    return re.sub(r"[^\w\-. /]", "_", name)


def _number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def flattened(mapping: dict, prefix: str = "") -> dict[str, str]:
    """Nested keys dotted (`model.base_url`); values as the YAML would write them (strings as they are, the rest JSON),
    any URI's password masked (a parameter is shown to everyone who reads the run: `mlflow.tracking_uri` may hold
    one)."""
    out: dict[str, str] = {}
    for key, value in mapping.items():
        if isinstance(value, dict) and value:
            out |= flattened(value, f"{prefix}{key}.")
        else:
            out[_key(f"{prefix}{key}")] = masked(
                value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
            )
    return out


def contender_configs(experiment: dict) -> dict[str, dict]:
    """Each listed contender's resolved config, by its id."""
    return {s.get("id") or s["name"]: s for s in experiment.get("strategies", [])}


def default_config(kind: str) -> dict:
    """A baseline compare added on its own (not listed): its kind's defaults."""
    from adaptlab import kinds

    return kinds.kind(kind).config(name=kind).model_dump(mode="json") if kind in kinds.names() else {"name": kind}


def model_tag(model) -> str | None:
    """A base model as a tag: a local model's name or path, an endpoint as `name @ base_url` (its password masked)."""
    if isinstance(model, dict):
        return masked(f"{model.get('name')} @ {model.get('base_url')}")
    return None if model is None else str(model)


def judged_tags(results: CompareResults) -> dict[str, str]:
    """The parent run's tags for judged quality: the judge's identity (model, rubric and template sha256), what the
    judged figures rest on, whether the judge is trusted, and each contender's judged win rate; {} when not judged.

    >>> judged_tags(type("R", (), {"judged": None})())
    {}
    """
    judged = results.judged
    if judged is None:
        return {}
    judge = judged.judge or {}
    model = judge.get("model")
    tags = {
        "judge_model": model_tag(model) if isinstance(model, dict) and "base_url" in model else str(model or "none"),
        "judge_rubric_sha256": str(judge.get("rubric_sha256", "")),
        "judge_template_sha256": str(judge.get("template_sha256", "")),
        "judged_source": judged.measures.source,
        "judged_ratings": str(judged.ratings),
    }
    if judged.agreement is not None:
        tags["judge_trusted"] = str(judged.agreement.trusted).lower()
    tags |= {f"judged_win_rate.{c.name}": f"{c.win_rate:.3f}" for c in judged.measures.contenders}
    return {k: v for k, v in tags.items() if v}


def run_note(results: CompareResults) -> str:
    """The parent run's description: the recommendation, its reasons and warnings (Markdown)."""
    rec = results.recommendation
    return "\n".join(
        [f"**Recommendation: {rec.choice}**", ""]
        + [f"- {r}" for r in rec.reasons]
        + [f"- warning: {w}" for w in rec.warnings]
    )


def epoch_ms(stamp: str | None) -> int | None:
    """run.json's UTC time as MLflow's milliseconds (None: MLflow's now)."""
    return int(datetime.fromisoformat(stamp).timestamp() * 1000) if stamp else None
