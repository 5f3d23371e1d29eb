"""The team's constraints in the recommendation: hard limits that rule strategies out, and factors that add reasons.

Pure functions of the evaluations, their costs and the stated constraints; every
line they produce names the measured figure or the stated constraint it rests on.
"""

from __future__ import annotations

from adaptlab import kinds
from adaptlab.config import ConstraintsConfig
from adaptlab.evaluation import Evaluation


def rule_out(
    evaluations: list[Evaluation], constraints: ConstraintsConfig, costs: dict[str, dict] | None = None
) -> tuple[list[Evaluation], list[str]]:
    """(the strategies the constraints allow, a reason for each one they rule out)."""
    costs = costs or {}
    allowed, reasons = [], []
    for e in evaluations:
        why = None
        if constraints.latency_target_ms is not None and e.latency_ms_p95 > constraints.latency_target_ms:
            why = (
                f"{e.name} is ruled out by the latency target: p95 {e.latency_ms_p95:.0f} ms per query "
                f"measured, {constraints.latency_target_ms:.0f} ms allowed"
            )
        elif e.trains and constraints.training_hardware == "none":
            why = f"{e.name} is ruled out: the constraints say there is no machine to train on"
        elif (
            e.trains
            and constraints.training_budget_usd is not None
            and (costs.get(e.name, {}).get("fit_cost") or 0) > constraints.training_budget_usd
        ):
            why = (
                f"{e.name} is ruled out by the training budget: ${costs[e.name]['fit_cost']:.4g} to fit "
                f"measured, ${constraints.training_budget_usd:.4g} allowed"
            )
        elif e.own_weights and constraints.one_model_many_tasks:
            why = (
                f"{e.name} is ruled out: one base model must serve many tasks, and "
                f"{e.traits.get('kind', e.name)} makes a new model per task (LoRA adapters and prompts "
                "share one)"
            )
        (reasons.append(why) if why else allowed.append(e))
    return allowed, reasons


def factor_reasons(
    choice: str, constraints: ConstraintsConfig, break_even: list[dict] | None = None, family: str | None = None
) -> list[str]:
    """Reasons from the softer factors (`family`: the chosen contender's): data churn, volume against break-even,
    domain, format control."""
    out = []
    tuned, prompted = kinds.family_trains(family), kinds.family_prompted(family)
    if constraints.data_changes in ("weekly", "daily") and tuned:
        out.append(
            f"the data changes {constraints.data_changes}: {choice} must be retrained to learn new "
            "examples, while a prompt picks them up at once; budget for retraining"
        )
    elif constraints.data_changes in ("weekly", "daily") and prompted:
        out.append(f"the data changes {constraints.data_changes}: {choice} uses new examples without retraining")
    volume = constraints.queries_per_month
    for row in break_even or []:
        if volume is None or row["fine_tuned"] != choice and row["prompted"] != choice:
            continue
        if isinstance(row["queries"], int):
            side = "above" if volume >= row["queries"] else "below"
            out.append(
                f"at {volume:,} queries a month you are {side} the {row['queries']:,}-query "
                f"break-even of {row['fine_tuned']} against {row['prompted']} ({row['why']})"
            )
        elif row["queries"]:
            out.append(f"{row['fine_tuned']} against {row['prompted']}: break-even {row['queries']} ({row['why']})")
    if constraints.domain == "specialised" and prompted:
        out.append(
            "the domain is specialised: prompting relies on what the base model already knows; watch "
            "the per-label F1 of rare labels"
        )
    if constraints.format_control == "strict" and prompted:
        out.append(
            "outputs must follow a strict format: fine-tuning usually holds a format more reliably "
            "than instructions; check the failures in the predictions"
        )
    return out
