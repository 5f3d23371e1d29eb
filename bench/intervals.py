"""Do the headline intervals cover? A simulation with a known truth, per score shape and test-split size.

Each population is 2,000 per-row scores shaped like a task kind's (seeded):
  classify  right/wrong rows at accuracies 0.5, 0.9 and 0.97
  generate  chrF per row (0-100): a mix of exact answers, misses and partial credit, as Restaurant-8k's
            slot answers score (mostly exact; mostly missed; in between), and a narrow middle
  qa        qa_score per row (0-1): abstentions right or wrong (0/1) beside token F1 on answered rows
Each draws `--draws` samples of n rows (12, 20, 50: the small splits bench/decide.py decides on) with
replacement and computes three 95% intervals of the mean from each sample:
  bca       scipy.stats.bootstrap, BCa, 1,000 resamples (adaptlab's headline interval before issue 43)
  wilson    Wilson's score interval at the effective sample size (adaptlab.metrics.wilson)
  adaptlab  adaptlab.metrics.bootstrap_ci as compare computes it: Wilson for 0/1 rows, else the wider of the two
and counts how often each holds the population's mean (target 90-98%), and its mean width as a share of the scale.

    python bench/intervals.py [--draws 400] [--out bench/results/intervals-cpu.json]

About a minute on 2 CPU cores. Last line: one JSON object, which the script also writes to --out.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
from _results import write_result

from adaptlab.metrics import _bca, bootstrap_ci, wilson

SIZES = (12, 20, 50)
POPULATION = 2000


def populations(seed: int = 0) -> list[tuple[str, str, float, np.ndarray]]:
    """(kind, shape, scale, per-row scores)."""
    rng = np.random.default_rng(seed)

    def mix(exact: float, miss: float, a: float, b: float) -> np.ndarray:
        kinds = rng.choice(3, POPULATION, p=[exact, miss, 1 - exact - miss])
        return np.where(kinds == 0, 100.0, np.where(kinds == 1, 0.0, rng.beta(a, b, POPULATION) * 100))

    def qa(abstain: float, right_abstain: float, a: float, b: float) -> np.ndarray:
        abstains = rng.random(POPULATION) < abstain
        return np.where(abstains, (rng.random(POPULATION) < right_abstain).astype(float), rng.beta(a, b, POPULATION))

    return [
        ("classify", "accuracy 0.5", 1.0, (rng.random(POPULATION) < 0.5).astype(float)),
        ("classify", "accuracy 0.9", 1.0, (rng.random(POPULATION) < 0.9).astype(float)),
        ("classify", "accuracy 0.97", 1.0, (rng.random(POPULATION) < 0.97).astype(float)),
        ("generate", "mostly exact", 100.0, mix(0.8, 0.02, 5, 2)),
        ("generate", "mostly missed", 100.0, mix(0.05, 0.6, 2, 5)),
        ("generate", "exact, missed, partial", 100.0, mix(0.3, 0.15, 2, 2)),
        ("generate", "narrow middle", 100.0, rng.beta(8, 8, POPULATION) * 100),
        ("qa", "a third abstain", 1.0, qa(1 / 3, 0.8, 2, 3)),
        ("qa", "most abstain", 1.0, qa(0.8, 0.9, 1, 4)),
    ]


def measure(scores: np.ndarray, scale: float, n: int, draws: int, rng) -> dict:
    truth, methods = float(scores.mean()), ("bca", "wilson", "adaptlab")
    covered, width = dict.fromkeys(methods, 0), dict.fromkeys(methods, 0.0)
    for d in range(draws):
        sample = rng.choice(scores, n)
        w = wilson(sample / scale)
        for method, (lo, hi) in (
            ("bca", _bca(sample, 1000, d)),
            ("wilson", (w[0] * scale, w[1] * scale)),
            ("adaptlab", bootstrap_ci(sample, 1000, d, scale)),
        ):
            covered[method] += int(lo - 1e-9 <= truth <= hi + 1e-9)
            width[method] += (hi - lo) / scale / draws
    return {f"{m}_coverage": covered[m] / draws for m in methods} | {f"{m}_width": width[m] for m in methods}


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--draws", type=int, default=400, help="samples per population and size (default 400)")
    parser.add_argument("--out", default=str(Path(__file__).parent / "results" / "intervals-cpu.json"))
    args = parser.parse_args()
    start, rng, rows = time.perf_counter(), np.random.default_rng(1), []
    print(f"{'kind':<9} {'shape':<24} {'n':>3} {'bca':>7} {'wilson':>7} {'adaptlab':>9} {'width':>7}")
    for kind, shape, scale, scores in populations():
        for n in SIZES:
            row = {"kind": kind, "shape": shape, "n": n, "draws": args.draws} | measure(
                scores, scale, n, args.draws, rng
            )
            rows.append(row)
            print(
                f"{kind:<9} {shape:<24} {n:>3} {row['bca_coverage']:>7.1%} {row['wilson_coverage']:>7.1%} "
                f"{row['adaptlab_coverage']:>9.1%} {row['adaptlab_width']:>7.3f}",
                flush=True,
            )
    per_kind = {}
    for kind in dict.fromkeys(r["kind"] for r in rows):
        mine = [r for r in rows if r["kind"] == kind]
        per_kind[kind] = {
            f"{m}_{stat}": float(np.mean([r[f"{m}_coverage"] for r in mine]))
            if stat == "coverage"
            else float(min(r[f"{m}_coverage"] for r in mine))
            for m in ("bca", "wilson", "adaptlab")
            for stat in ("coverage", "worst")
        } | {"intervals": sum(r["draws"] for r in mine)}
    print()
    for kind, got in per_kind.items():
        print(
            f"{kind}: adaptlab {got['adaptlab_coverage']:.1%} (worst cell {got['adaptlab_worst']:.1%}), BCa alone "
            f"{got['bca_coverage']:.1%} (worst {got['bca_worst']:.1%}) over {got['intervals']:,} intervals each "
            "(target 90-98%)"
        )
    print(f"{time.perf_counter() - start:.0f} s")
    write_result(
        args.out,
        {"bench": "intervals", "rows": rows, "per_kind": per_kind, "wall_s": time.perf_counter() - start},
    )


if __name__ == "__main__":
    main()
