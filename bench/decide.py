"""A check of the decision itself: recommend from a small test split, then judge the pick on a large one.

On slices of every task kind (bench/decide_slices.py: Banking77 for classify, Restaurant-8k
for generate, northwind-benefits and pyref-qa for qa), every contender is fitted once and
answers every test row: the task kind's references (classify: majority, embed_classifier;
generate: constant, nearest; qa: abstain, extract), zero_shot, and few_shot (k 4, similar)
or, on documents, rag (k 4, hybrid); lora (2 epochs) with --lora. The recommendation is made
from the small split (classify: 10 rows per label; generate: 20 rows; qa: a third of the
rows, answerable and unanswerable alike), exactly as `compare` makes it, and then measured on
the rest (the large split):

  regret    best large-split score minus the large-split score of the pick, as a fraction
            of the headline metric's scale (accuracy and qa_score are 0-1 already; chrF,
            0-100, is divided by 100). A pick of collect_more_data ("nothing beats the
            trivial reference") scores what the trivial reference (the kind's first: majority,
            constant, abstain) scores on the large split.
  coverage  the share of contenders whose large-split score lies inside the 95% interval the
            small split gave it, widened by sqrt(1 + n_small / n_large): the large split is a
            sample too, so a correct 95% interval around the small split's mean covers the large
            split's mean only ~89% of the time at 20 + 40 rows (P(|Z| < 1.96 / sqrt(1.5)));
            the widened interval is the 95% prediction interval for it. `coverage_raw` counts
            the interval as given.
  intervals the headline's 95% interval (adaptlab.metrics.bootstrap_ci, as compare computes it)
            against a known truth: each contender's per-row scores on all the slice's test rows
            are the population (the truth is their mean); DRAWS samples of n_small rows drawn
            from it with replacement, an interval from each.

Each slice is judged under --seeds splits: seed 0 is the slice's own small/large split, seed k a
fresh random split of the same test rows into the same sizes (per label for classify, answerable
and unanswerable apart for qa). The contenders are fitted and answer once per slice, so the seeds
vary which rows the decision sees, not the fits.

The table shows, per slice, the pick, its small- and large-split scores on the metric's own
scale (collect_more_data: the trivial reference's), the best contender on the large split, the
regret (as a fraction) and how many intervals covered. results JSON: every slice's row, and
`per_kind` {classify, generate, qa}: regret_mean, regret_worst, coverage, slices; the top-level
regret_worst is the worst over the kinds.

Targets (issues 17, 43): worst regret <= 0.05 on every task kind; coverage 90-98% per kind over
at least 24 intervals each.

    python bench/decide.py [--kinds classify,generate,qa] [--slices N] [--seeds N] [--lora]
                           [--out bench/results/decide-cpu.json]

--slices N takes at most N slices of each kind (default 3 of each: the full run, 26 minutes on
this 2-core CPU alone, 77 with other jobs; `--slices 1 --seeds 1` is the quick check, a few
minutes). Time per slice on 2 CPU cores shared with other jobs: classify ~4-7 min, generate
~5.5-7.5, qa pyref ~11.5 and northwind ~20 (rag's ~1,000-token prompts: ~12 s a row); the seeds
cost next to nothing (no model runs).
Last line: one JSON object, which the script also writes to --out.
"""

from __future__ import annotations

import argparse
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
from _results import write_result
from decide_slices import ABSTAIN, DEFAULT_SLICES, MAKERS, Slice

from adaptlab import kinds
from adaptlab.data import Dataset
from adaptlab.decide import recommend
from adaptlab.decide.costs import strategy_cost
from adaptlab.evaluation import evaluate
from adaptlab.metrics import bootstrap_ci, row_table, task_metrics
from adaptlab.solver import Prediction
from adaptlab.task import make_task
from adaptlab.tasks import task_kind

COLLECT_MORE_DATA = "collect_more_data"  # recommend's choice when no contender beats the trivial reference
DRAWS = 100  # samples per contender in the known-truth interval check
HEADER = (
    f"{'kind':<9} {'slice/split':<22} {'pick':<17} {'small':>7} {'large':>7} "
    f"{'best large':>18} {'regret':>7} {'covered':>8}"
)


def contenders(kind: str, lora: bool) -> list[dict]:
    """The task kind's references, zero_shot, and the prompted contender that fits it (rag on documents, else
    few_shot)."""
    spec = task_kind(kind)
    prompted = (
        {"name": "rag", "k": 4, "retriever": "hybrid"}
        if spec.documents
        else {"name": "few_shot", "k": 4, "selector": "similar"}
    )
    return (
        [{"name": r} for r in spec.references]
        + [{"name": "zero_shot"}, prompted]
        + ([{"name": "lora", "epochs": 2}] if lora else [])
    )


def part(e, idx: np.ndarray, task, test: Dataset):
    """The evaluation restricted to test rows `idx` (the small split): its metrics, intervals, per-row scores and
    checks."""
    rows = [e.predictions[i] for i in idx]
    expected, predicted = [r["expected"] for r in rows], [r["predicted"] for r in rows]
    spec = task.spec
    answers = [Prediction(r["predicted"], 0, 0, 0.0, passages=tuple(r.get("passages", ()))) for r in rows]
    context = (
        spec.context(task, Dataset([test.examples[i] for i in idx], test.source), answers) if spec.context else None
    )
    table = row_table(task.spec, expected, predicted, context, list(task.labels))
    metrics, ci = task_metrics(task.spec, expected, predicted, list(task.labels), resamples=1000, rows=table)
    cut = [bool(r.get("cut")) for r in rows]
    flags = [] if e.constant else spec.checks(expected, predicted, cut, task.abstain)
    return replace(
        e,
        metrics=metrics,
        ci=ci,
        scores=table[spec.row_key].tolist(),
        predictions=rows,
        flags=flags,
        answers_cut=sum(cut) if e.answers_cut is not None else None,
    )


def choose(small: list, task, costs: dict) -> str:
    """recommend's choice, as `compare` makes it (with the task kind's words for its trivial reference and remedy)."""
    return recommend(
        small,
        task.metric,
        len(task.labels),
        costs=costs,
        trivial_words=task.spec.trivial_words,
        remedy=task.spec.remedy,
    ).choice


def run_slice(s: Slice, specs: list[dict], base, embedder) -> tuple[list, object]:
    """Fit every contender on the slice and evaluate it on all its test rows; prints a line per contender."""
    from adaptlab.kinds.context import BuildContext, ModelSource
    from adaptlab.knowledge.index import Documents

    task = make_task(s.name, s.instruction, s.train, s.test, kind=s.kind, max_new_tokens=s.max_new_tokens)
    models, documents = ModelSource(base), Documents(s.docs, base.tokenizer) if s.docs else None
    evaluations = []
    for spec in specs:
        clock, k = time.perf_counter(), kinds.kind(spec["name"])
        strategy = k.build(
            k.config.model_validate(spec), BuildContext(models, s.seed, embedder=embedder, documents=documents)
        )
        evaluations.append(evaluate(strategy, task, s.train, s.test, name=spec["name"], traits=k.traits())[0])
        print(
            f"  {s.name} {spec['name']}: {task.metric} {evaluations[-1].metrics[task.metric]:.3f} on "
            f"{len(s.test)} rows, {time.perf_counter() - clock:.0f} s",
            flush=True,
        )
    return evaluations, task


def split(s: Slice, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """The small and large test rows: the slice's own for seed 0, else a seeded random split of the same sizes,
    per group (classify: label; qa: answerable or not; generate: one group)."""
    if seed == 0:
        return np.arange(s.n_small), np.arange(s.n_small, len(s.test))
    key = {"classify": lambda x: x.output, "qa": lambda x: x.output == ABSTAIN}.get(s.kind, lambda x: 0)
    rng, small = np.random.default_rng(seed), []
    groups: dict = {}
    for i, x in enumerate(s.test.examples):
        groups.setdefault(key(x), []).append(i)
    for members in groups.values():
        take = sum(1 for i in members if i < s.n_small)  # the slice's own small split's share of this group
        small += rng.permutation(members)[:take].tolist()
    small_idx = np.array(sorted(small))
    return small_idx, np.setdiff1d(np.arange(len(s.test)), small_idx)


def judge(s: Slice, evaluations: list, task, seed: int = 0) -> dict:
    """Recommend from the small split; regret and interval coverage on the large split."""
    small_idx, large_idx = split(s, seed)
    small = [part(e, small_idx, task, s.test) for e in evaluations]
    large = {e.name: float(np.mean([e.scores[i] for i in large_idx])) for e in evaluations}
    costs = {e.name: strategy_cost(e, 0.10) for e in small}
    choice = choose(small, task, costs)
    scored_as = task.spec.references[0] if choice == COLLECT_MORE_DATA else choice
    best, scale = max(large, key=large.get), task.spec.metric(task.metric).scale
    widen = float(np.sqrt(1 + len(small_idx) / len(large_idx)))  # the prediction interval for the large split's mean
    covered, raw = [], []
    for e in small:
        m, (lo, hi) = e.metrics[task.metric], e.ci[task.metric]
        covered.append(bool(m - (m - lo) * widen <= large[e.name] <= m + (hi - m) * widen))
        raw.append(bool(lo <= large[e.name] <= hi))
    return {
        "kind": s.kind,
        "slice": s.name,
        "split_seed": seed,
        "metric": task.metric,
        "scale": scale,
        "labels": len(task.labels),
        "seed": s.seed,
        "train": len(s.train),
        "small_test": len(small_idx),
        "large_test": len(large_idx),
        "choice": choice,
        "scored_as": scored_as,
        "small": {e.name: e.metrics[task.metric] for e in small},
        "small_ci": {e.name: list(e.ci[task.metric]) for e in small},
        "large": large,
        "best": best,
        "regret": (large[best] - large[scored_as]) / scale if scored_as in large else None,
        "covered": sum(covered),
        "covered_raw": sum(raw),
        "contenders": len(covered),
    }


def intervals(s: Slice, evaluations: list, task, draws: int = DRAWS) -> dict:
    """The headline interval's coverage of a known truth: per contender, `draws` samples of n_small rows from its
    per-row scores on all the test rows (the population), each sample's interval against the population's mean."""
    scale, covered, total, widths = task.spec.metric(task.metric).scale, 0, 0, []
    rng = np.random.default_rng(s.seed)
    for e in evaluations:
        population = np.asarray(e.scores, dtype=float)
        for d in range(draws):
            lo, hi = bootstrap_ci(rng.choice(population, s.n_small), 1000, d, scale)
            covered += int(lo - 1e-12 <= population.mean() <= hi + 1e-12)
            total += 1
            widths.append((hi - lo) / scale)
    return {"covered": covered, "intervals": total, "width_mean": float(np.mean(widths))}


def table_line(row: dict) -> str:
    digits = task_kind(row["kind"]).metric(row["metric"]).digits
    picked = row["scored_as"]
    small, large = row["small"].get(picked, float("nan")), row["large"].get(picked, float("nan"))
    regret = "n/a" if row["regret"] is None else f"{row['regret']:.3f}"
    return (
        f"{row['kind']:<9} {row['slice'] + '/' + str(row['split_seed']):<22} {row['choice']:<17} "
        f"{small:>7.{digits}f} {large:>7.{digits}f} "
        f"{row['best'] + ' ' + format(row['large'][row['best']], f'.{digits}f'):>18} {regret:>7} "
        f"{row['covered']}/{row['contenders']:<6}"
    )


def summary(rows: list[dict], known: list[dict]) -> dict:
    """regret (mean, worst), interval coverage (and the intervals counted) over `rows`, the known-truth coverage over
    `known`, and the slices' names."""
    regrets = [r["regret"] for r in rows if r["regret"] is not None]
    counted = sum(r["contenders"] for r in rows)
    drawn = sum(k["intervals"] for k in known)
    return {
        "regret_mean": float(np.mean(regrets)) if regrets else None,
        "regret_worst": float(max(regrets)) if regrets else None,
        "coverage": sum(r["covered"] for r in rows) / counted if counted else None,
        "coverage_raw": sum(r["covered_raw"] for r in rows) / counted if counted else None,
        "intervals": counted,
        "known_truth_coverage": sum(k["covered"] for k in known) / drawn if drawn else None,
        "known_truth_intervals": drawn,
        "decisions": len(rows),
        "slices": sorted({r["slice"] for r in rows}),
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--kinds", default="classify,generate,qa", help="task kinds to check, comma-separated")
    parser.add_argument(
        "--slices",
        type=int,
        default=None,
        help="at most this many slices of each kind (default 3 of each)",
    )
    parser.add_argument(
        "--seeds", type=int, default=2, help="splits of each slice's test rows to decide on (default 2; see above)"
    )
    parser.add_argument(
        "--lora", action="store_true", help="add lora (2 epochs) to the contenders (minutes per slice on a CPU)"
    )
    parser.add_argument("--out", default=str(Path(__file__).parent / "results" / "decide-cpu.json"))
    args = parser.parse_args()
    chosen = [k.strip() for k in args.kinds.split(",") if k.strip()]
    unknown = [k for k in chosen if k not in MAKERS]
    if unknown:
        parser.error(f"--kinds: unknown task kind {', '.join(unknown)}; use some of {', '.join(MAKERS)}")
    from adaptlab.models import load_base_model
    from adaptlab.models.embedder import default_embedder

    start, base, embedder = time.perf_counter(), load_base_model("smollm2-135m-instruct"), default_embedder()
    out, known, names = [], [], []
    for kind in chosen:
        specs = contenders(kind, args.lora)
        names += [s["name"] for s in specs if s["name"] not in names]
        for s in MAKERS[kind](args.slices if args.slices is not None else DEFAULT_SLICES[kind]):
            clock = time.perf_counter()
            print(
                f"{kind} {s.name}: {len(s.train)} training rows, {s.n_small} + {len(s.test) - s.n_small} test rows",
                flush=True,
            )
            evaluations, task = run_slice(s, specs, base, embedder)
            seconds = time.perf_counter() - clock
            rows = [judge(s, evaluations, task, seed) | {"seconds": seconds} for seed in range(args.seeds)]
            known.append({"kind": kind, "slice": s.name} | intervals(s, evaluations, task))
            out += rows
            print(HEADER + "\n" + "\n".join(table_line(row) for row in rows) + "\n", flush=True)
    print(HEADER)
    for row in out:
        print(table_line(row))
    per_kind = {
        kind: summary([r for r in out if r["kind"] == kind], [k for k in known if k["kind"] == kind]) for kind in chosen
    }
    print()
    for kind, got in per_kind.items():
        if got["regret_worst"] is not None:
            print(
                f"{kind}: regret mean {got['regret_mean']:.3f}, worst {got['regret_worst']:.3f} (target <= 0.05) "
                f"over {got['decisions']} decisions; coverage {got['coverage']:.1%} of {got['intervals']} "
                f"intervals ({got['coverage_raw']:.1%} unwidened); known truth {got['known_truth_coverage']:.1%} "
                f"of {got['known_truth_intervals']} (target 90-98%)"
            )
    total = summary(out, known)
    worst = max((got["regret_worst"] for got in per_kind.values() if got["regret_worst"] is not None), default=None)

    def shown(v, spec=".3f"):
        return "n/a" if v is None else format(v, spec)

    print(
        f"\nall kinds: regret mean {shown(total['regret_mean'])}, worst {shown(worst)} (target <= "
        f"0.05 on every kind); interval coverage {shown(total['coverage'], '.1%')}, known truth "
        f"{shown(total['known_truth_coverage'], '.1%')} (target 90-98%); {time.perf_counter() - start:.0f} s"
    )
    write_result(
        args.out,
        {
            "bench": "decide",
            "slices": out,
            "known_truth": known,
            "regret_mean": total["regret_mean"],
            "regret_worst": worst,
            "coverage": total["coverage"],
            "coverage_raw": total["coverage_raw"],
            "known_truth_coverage": total["known_truth_coverage"],
            "contenders": names,
            "per_kind": per_kind,
            "kinds": chosen,
            "seeds": args.seeds,
            "wall_s": time.perf_counter() - start,
        },
    )


if __name__ == "__main__":
    main()
