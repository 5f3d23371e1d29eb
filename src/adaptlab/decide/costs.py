"""The cost model: what a strategy costs per 1,000 queries and once to fit, and when fine-tuning pays back.

Self-hosted strategies are priced by machine time: the measured wall time per query
(batched as `compare` ran it) and the fit time, at the hourly price of the device
they ran on (`costs.cpu_hour` or `costs.gpu_hour` in the experiment). A remote model
is priced by tokens, from its endpoint's `usage` and its own per-1k prices. The
prices used are written into results.json (`cost_assumptions`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from adaptlab import kinds
from adaptlab.evaluation import Evaluation


def strategy_cost(e: Evaluation, hourly: float) -> dict:
    """{"cost_per_1k_queries", "fit_cost", "basis"} for one evaluated strategy."""
    model = e.solver.get("base_model")
    if isinstance(model, dict):  # remote: tokens at the endpoint's prices
        usage, cost = e.solver.get("usage") or {}, e.solver.get("cost_usd")
        requests = usage.get("requests") or 0
        per_query = cost / requests if cost is not None and requests else None
        return {
            "cost_per_1k_queries": None if per_query is None else per_query * 1000,
            "fit_cost": 0.0,
            "basis": "endpoint tokens at the model's prices"
            if per_query is not None
            else "no prices set for this endpoint",
        }
    return {
        "cost_per_1k_queries": e.latency_ms_mean / 1000 / 3600 * hourly * 1000,
        "fit_cost": e.fit_seconds / 3600 * hourly,
        "basis": f"measured machine time at ${hourly:g}/hour",
    }


CHANGES_PER_MONTH = {
    "rarely": 1 / 12,
    "monthly": 1.0,
    "weekly": 52 / 12,
    "daily": 365 / 12,
}  # constraints.data_changes as a rate ("rarely": once a year)


def upkeep_cost(update: dict | None, data_changes: str | None) -> dict:
    """What keeping a contender current costs a month: absorbing one measured document update (re-index or
    retrain: evaluation.freshness) at the stated rate of change. Empty without a measured update or a rate."""
    if update is None or data_changes is None:
        return {}
    from adaptlab.evaluation.freshness import absorbed_by

    absorb, rate = update["absorb"], CHANGES_PER_MONTH[data_changes]
    return {
        "upkeep_per_month": absorb["dollars"] * rate,
        "upkeep_basis": f"{absorbed_by(absorb)} ({absorb['seconds']:.1f} s, ${absorb['dollars']:.4f}) {rate:.3g} "
        f"times a month (data_changes: {data_changes})",
    }


def break_even(costs: dict[str, dict], families: dict[str, str] | None = None) -> list[dict]:
    """For each fine-tuned contender against each prompted one (`families`: id -> family): the query volume at which the
    fit cost is paid back.

    queries = (fit cost difference) / (per-query saving); "from the first query" when
    fine-tuning costs no more to fit; "never" when it does not cost less per query.
    """
    if families is None:  # contenders named after their kinds
        families = {n: kinds.kind(n).family for n in costs if n in kinds.names()}
    out = []
    for tuned in (n for n in costs if kinds.family_trains(families.get(n))):
        for prompted in (n for n in costs if kinds.family_prompted(families.get(n))):
            t, p = costs[tuned], costs[prompted]
            if t["cost_per_1k_queries"] is None or p["cost_per_1k_queries"] is None:
                out.append(
                    {
                        "fine_tuned": tuned,
                        "prompted": prompted,
                        "queries": None,
                        "why": "a per-query cost is unknown (set the endpoint's prices)",
                    }
                )
                continue
            saving = (p["cost_per_1k_queries"] - t["cost_per_1k_queries"]) / 1000
            extra_fit = t["fit_cost"] - p["fit_cost"]
            if extra_fit <= 0:
                out.append(
                    {
                        "fine_tuned": tuned,
                        "prompted": prompted,
                        "queries": "from the first query",
                        "why": f"{tuned} cost no more to fit than {prompted}",
                    }
                )
            elif saving <= 0:
                out.append(
                    {
                        "fine_tuned": tuned,
                        "prompted": prompted,
                        "queries": "never",
                        "why": f"{tuned} costs {t['cost_per_1k_queries']:.4g} per 1k queries, not less than "
                        f"{prompted}'s {p['cost_per_1k_queries']:.4g}",
                    }
                )
            else:
                queries = math.ceil(
                    round(extra_fit / saving, 6)
                )  # round first: 0.1 / 0.0001 is 1000.0000000000001 in floats
                out.append(
                    {
                        "fine_tuned": tuned,
                        "prompted": prompted,
                        "queries": queries,
                        "why": f"${extra_fit:.4g} more to fit, ${saving * 1000:.4g} less per 1k queries",
                    }
                )
    return out


DEFAULT_QUERIES_PER_MONTH = 10_000  # the volume "cheaper" is priced at when constraints.queries_per_month is not set
HORIZON_MONTHS = 12  # fit cost is paid once, queries every month: totals are over this many months


@dataclass(frozen=True)
class Costing:
    """What "cheaper" means: total dollars over the horizon at the stated volume (fit cost + per-query cost x
    queries + keeping it current as the documents change, when measured), from the cost model; a contender whose cost is
    unknown (an endpoint without prices) sorts last.
    Without costs (hand-built evaluations), the kind's tier and then latency order them."""

    totals: dict = field(default_factory=dict)  # contender -> dollars over the horizon, or None when unknown
    queries_per_month: int = DEFAULT_QUERIES_PER_MONTH
    stated: bool = False  # the volume came from constraints.queries_per_month

    @classmethod
    def of(cls, costs: dict[str, dict] | None, queries_per_month: int | None) -> Costing:
        volume = queries_per_month if queries_per_month is not None else DEFAULT_QUERIES_PER_MONTH
        totals = {}
        for name, c in (costs or {}).items():
            per_1k = c.get("cost_per_1k_queries")
            totals[name] = (
                None
                if per_1k is None
                else (c.get("fit_cost") or 0.0)
                + (per_1k * volume / 1000 + c.get("upkeep_per_month", 0.0)) * HORIZON_MONTHS
            )
        return cls(totals, volume, queries_per_month is not None)

    def key(self, e: Evaluation) -> tuple:
        if not self.totals:
            return (e.tier, e.latency_ms_mean)
        total = self.totals.get(e.name)
        return (float("inf") if total is None else total, e.tier, e.latency_ms_mean)

    def words(self, cheap: Evaluation, dear: Evaluation) -> str:
        """How much cheaper, in dollars over the horizon (with the volume's source), then per query and to fit."""
        a, b = self.totals.get(cheap.name), self.totals.get(dear.name)
        money = ""
        if a is not None and b is not None:
            volume = f"{self.queries_per_month:,} queries a month" + (
                "" if self.stated else " (a default: set constraints.queries_per_month)"
            )
            money = f"{dollars(a, b)} over {HORIZON_MONTHS} months at {volume}; "
        words = f"{money}{cheap.latency_ms_mean:.0f} ms per query vs {dear.latency_ms_mean:.0f} ms"
        if dear.trains or not cheap.llm:
            words += f", {cheap.fit_seconds:.1f} s to fit vs {dear.fit_seconds:.1f} s"
        return words


def dollars(a: float, b: float) -> str:
    """Two sums with enough digits to tell them apart, and the saving as a share: "$0.041 vs $0.044 (7% less)".

    >>> dollars(0.0412, 0.0441), dollars(12.5, 12.5), dollars(3.0, 0.0), dollars(3.02, 2400)
    ('$0.041 vs $0.044 (7% less)', '$12.50 vs $12.50 (the same)', '$3.00 vs $0.00', '$3.02 vs $2400.00 (795x less)')
    """
    digits = 2
    while digits < 8 and f"{a:.{digits}f}" == f"{b:.{digits}f}" and a != b:
        digits += 1
    words = f"${a:.{digits}f} vs ${b:.{digits}f}"
    if a == b:
        return words + " (the same)"
    if b > 0 and a < b:
        return words + (f" ({(b - a) / b:.0%} less)" if a > b / 10 else f" ({b / a:,.0f}x less)" if a else " (free)")
    return words
