"""Do the judged intervals cover, and how many ratings do they save? A simulation with a known truth.

Planted world: K = 4 contenders of strengths 1.0, 0.6, 0.3 and 0. On each row an answer's quality is its strength
plus a standard normal row effect; a person prefers the better answer, and calls it a tie when the two are within
0.3 of each other. The truth of a pair is P(a preferred) + P(tie) / 2 over 1,000,000 rows (0.58 to 0.76 here), a
contender's truth the mean of its pairs'. The proxy (a judge) gives people's verdict with probability q and one of
the two others otherwise, for q = 0.95, 0.85, 0.70, 1/3 (a judge at random) and 0 (one that always contradicts
people). Each draw: N test rows; people rate n rows of each pair at random; the proxy judges every row.
adaptlab.decide.judged.judged_measures computes every figure, as a run does:

  coverage  the share of 95% intervals holding the truth: every pair's PPI interval (target 90-98%), the
            people-only interval beside it (the baseline, from the same ratings), and every contender's win rate
  width     mean width of the pair intervals, PPI and people-only, and their ratio
  ratings   per q, the ratings per pair at which the mean half-width of a pair's interval is at most 0.10 and 0.05
            (N = 1,000 rows, 2 contenders of strengths 1.0 and 0.6): "how many ratings a decision needs". Measured
            on a grid of n (GRID), the first n that reaches the target scaled down to it as 1/sqrt(n)

    python bench/judged.py [--draws 300] [--out bench/results/judged-cpu.json]

About 2 minutes on 2 CPU cores. Last line: one JSON object, which the script also writes to --out.
"""

from __future__ import annotations

import argparse
import math
import time
from itertools import combinations
from pathlib import Path

import numpy as np
from _results import write_result

from adaptlab.decide.judged import judged_measures

STRENGTHS = {"w": 1.0, "x": 0.6, "y": 0.3, "z": 0.0}  # strongest first: every pair from the stronger side
TIE = 0.3  # answers within this much of each other: a tie
AGREEMENT = {"0.95": 0.95, "0.85": 0.85, "0.70": 0.70, "random": 1 / 3, "adversarial": 0.0}
# (N test rows, n rated per pair): 50-100 ratings over a run's ~6 pairs worth comparing is 10-15 per pair
SIZES = ((80, 15), (80, 30), (80, 60), (300, 10), (300, 50), (1000, 100))
GRID = (10, 20, 30, 50, 75, 100, 150, 200, 300, 400, 600, 800)
VALUES = np.array([1.0, 0.5, 0.0])  # a preferred, tie, b preferred


def verdicts(quality: np.ndarray, a: int, b: int) -> np.ndarray:
    """People's verdict per row as an index of VALUES."""
    gap = quality[:, a] - quality[:, b]
    return np.where(gap > TIE, 0, np.where(gap < -TIE, 2, 1))


def truths(names: list[str]) -> dict[tuple[str, str], float]:
    rng = np.random.default_rng(12345)
    quality = np.array([STRENGTHS[n] for n in names]) + rng.standard_normal((1_000_000, len(names)))
    return {
        (names[i], names[j]): float(VALUES[verdicts(quality, i, j)].mean())
        for i, j in combinations(range(len(names)), 2)
    }


def draw(names: list[str], n_rows: int, n_rated: int, agree: float, rng) -> tuple[list, dict]:
    """People's ratings (n_rated rows per pair) and the proxy's value on every row of every pair."""
    quality = np.array([STRENGTHS[n] for n in names]) + rng.standard_normal((n_rows, len(names)))
    people, proxy = [], {}
    for i, j in combinations(range(len(names)), 2):
        truth = verdicts(quality, i, j)
        judged = np.where(rng.random(n_rows) < agree, truth, (truth + rng.integers(1, 3, n_rows)) % 3)
        for r in rng.choice(n_rows, n_rated, replace=False):
            people.append((int(r), names[i], names[j], float(VALUES[truth[r]])))
        proxy |= {(r, names[i], names[j]): float(VALUES[judged[r]]) for r in range(n_rows)}
    return people, proxy


def inside(ci, truth: float) -> int:
    return int(ci is not None and ci[0] - 1e-12 <= truth <= ci[1] + 1e-12)


def coverage(names: list[str], truth: dict, n_rows: int, n_rated: int, agree: float, draws: int, rng) -> dict:
    won = {c: float(np.mean([t if c == a else 1 - t for (a, b), t in truth.items() if c in (a, b)])) for c in names}
    hits = {"ppi": 0, "people": 0, "win_rate": 0}
    width = {"ppi": 0.0, "people": 0.0}
    pairs = missing = 0
    for _ in range(draws):
        people, proxy = draw(names, n_rows, n_rated, agree, rng)
        found = judged_measures(names, range(n_rows), people, proxy, "judge")
        for p in found.pairs:
            pairs += 1
            if p.ci is None or p.people_ci is None:
                missing += 1
                continue
            hits["ppi"] += inside(p.ci, truth[(p.a, p.b)])
            hits["people"] += inside(p.people_ci, truth[(p.a, p.b)])
            width["ppi"] += p.ci[1] - p.ci[0]
            width["people"] += p.people_ci[1] - p.people_ci[0]
        hits["win_rate"] += sum(inside(c.ci, won[c.name]) for c in found.contenders)
    counted = pairs - missing
    return {
        "ppi_coverage": hits["ppi"] / counted,
        "people_coverage": hits["people"] / counted,
        "win_rate_coverage": hits["win_rate"] / (draws * len(names)),
        "ppi_width": width["ppi"] / counted,
        "people_width": width["people"] / counted,
        "width_ratio": width["ppi"] / width["people"],
        "intervals": counted,
        "without_interval": missing,
    }


def ratings_needed(agree: float, draws: int, rng) -> dict:
    """The first n of GRID at which the mean half-width of the pair's interval is at most 0.10 and 0.05."""
    names, out = ["w", "x"], {}
    half = {"ppi": [], "people": []}
    for n in GRID:
        widths = {"ppi": [], "people": []}
        for _ in range(draws):
            people, proxy = draw(names, 1000, n, agree, rng)
            pair = judged_measures(names, range(1000), people, proxy, "judge").pairs[0]
            if pair.ci and pair.people_ci:
                widths["ppi"].append((pair.ci[1] - pair.ci[0]) / 2)
                widths["people"].append((pair.people_ci[1] - pair.people_ci[0]) / 2)
        for k in half:
            half[k].append(float(np.mean(widths[k])))
    for k in half:
        for target in (0.10, 0.05):
            # the first n of the grid that reaches the target, scaled down to it as widths go (1/sqrt(n))
            first = next(((n, h) for n, h in zip(GRID, half[k]) if h <= target), None)
            out[f"{k}_for_{target:.2f}"] = None if first is None else math.ceil(first[0] * (first[1] / target) ** 2)
        out[f"{k}_half_width"] = dict(zip(GRID, half[k]))
    return out


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--draws", type=int, default=300, help="draws per setting (default 300)")
    parser.add_argument("--out", default=str(Path(__file__).parent / "results" / "judged-cpu.json"))
    args = parser.parse_args()
    start, rng, rows, needed = time.perf_counter(), np.random.default_rng(1), [], {}
    names = list(STRENGTHS)
    truth = truths(names)
    print("truth per pair: " + ", ".join(f"{a}>{b} {t:.3f}" for (a, b), t in truth.items()))
    print(f"{'proxy agrees':<12} {'N':>5} {'n':>4} {'PPI':>6} {'people':>7} {'win rate':>9} {'width':>6} {'people':>7}")
    for label, agree in AGREEMENT.items():
        for n_rows, n_rated in SIZES:
            row = {"proxy_agrees": label, "N": n_rows, "n": n_rated, "draws": args.draws}
            row |= coverage(names, truth, n_rows, n_rated, agree, args.draws, rng)
            rows.append(row)
            print(
                f"{label:<12} {n_rows:>5} {n_rated:>4} {row['ppi_coverage']:>6.1%} {row['people_coverage']:>7.1%} "
                f"{row['win_rate_coverage']:>9.1%} {row['ppi_width']:>6.3f} {row['people_width']:>7.3f}",
                flush=True,
            )
    print(f"\nratings per pair for a half-width of 0.10 / 0.05 (N = 1,000 rows, {args.draws // 3} draws per n)")
    for label, agree in AGREEMENT.items():
        needed[label] = ratings_needed(agree, args.draws // 3, rng)
        got = needed[label]
        print(
            f"{label:<12} PPI {got['ppi_for_0.10']} / {got['ppi_for_0.05']}   people only "
            f"{got['people_for_0.10']} / {got['people_for_0.05']}",
            flush=True,
        )
    covered = [r["ppi_coverage"] for r in rows]
    summary = {
        "ppi_coverage_min": min(covered),
        "ppi_coverage_max": max(covered),
        "ppi_coverage_mean": float(np.mean(covered)),
        "people_coverage_mean": float(np.mean([r["people_coverage"] for r in rows])),
        "win_rate_coverage_min": min(r["win_rate_coverage"] for r in rows),
        "intervals": sum(r["intervals"] for r in rows),
    }
    print(
        f"\nPPI coverage {summary['ppi_coverage_min']:.1%} to {summary['ppi_coverage_max']:.1%} "
        f"(mean {summary['ppi_coverage_mean']:.1%}) over {summary['intervals']:,} pair intervals (target 90-98%); "
        f"people-only {summary['people_coverage_mean']:.1%}; win rates at least {summary['win_rate_coverage_min']:.1%}"
    )
    print(f"{time.perf_counter() - start:.0f} s")
    write_result(
        args.out,
        {
            "bench": "judged",
            "truth": {f"{a}>{b}": t for (a, b), t in truth.items()},
            "rows": rows,
            "ratings_needed": needed,
            "summary": summary,
            "wall_s": time.perf_counter() - start,
        },
    )


if __name__ == "__main__":
    main()
