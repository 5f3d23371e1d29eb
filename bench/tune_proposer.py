"""What the embedded model writes as an instruction proposer (`tune.proposer`), and whether its instructions win.

On the banking-cards demo's split (examples/banking-cards/experiment-tuned.yaml: the 16 dev rows
held out of train, the same for both runs), zero_shot and few_shot are each tuned twice with the
same budget: without a proposer (the four built-in instruction variants), and with SmolLM2-135M
itself writing `--proposals` instructions from trial 0's wrong dev rows (OPRO-style). Each run's
best settings are then measured on the 80 test rows. The proposer is meant for a large model
behind an endpoint; this measures the embedded one, the only model here.

    python bench/tune_proposer.py [--trials 6] [--proposals 2]

Last line: one JSON object, also written to bench/results/tune-proposer-cpu.json.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from _results import write_result

from adaptlab.evaluation import evaluate
from adaptlab.kinds import kind
from adaptlab.kinds.context import BuildContext, ModelSource
from adaptlab.models import load_base_model
from adaptlab.runs.experiment import load_experiment
from adaptlab.runs.prepare import equal_data, prepare
from adaptlab.runs.tune import proposer_for, tune

EXAMPLE = Path(__file__).parents[1] / "examples" / "banking-cards" / "experiment-tuned.yaml"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--trials", type=int, default=6)
    parser.add_argument("--proposals", type=int, default=2)
    parser.add_argument("--kinds", nargs="+", default=["zero_shot", "few_shot"])
    parser.add_argument("--out", default=str(Path(__file__).parent / "results" / "tune-proposer-cpu.json"))
    args = parser.parse_args()
    config, root = load_experiment(EXAMPLE)
    prepared = prepare(config, root)
    train, dev, _ = equal_data(config, prepared.train, prepared.dev, True)
    task, test = prepared.task, prepared.test
    models = ModelSource(load_base_model(config.model))
    writer = kind("zero_shot").config.model_validate({"name": "zero_shot", "id": "writer"})
    rows, start = [], time.perf_counter()
    print(f"{'kind':9} {'proposer':8} {'dev own':>7} {'dev best':>8} {'test best':>9} {'seconds':>7}  chosen")
    for name in args.kinds:
        spec = kind(name)
        for with_proposer in (False, True):
            tuning = {"trials": args.trials} | (
                {"proposer": "writer", "proposals": args.proposals} if with_proposer else {}
            )
            contender = spec.config.model_validate({"name": name, "tune": tuning})
            proposer = proposer_for(contender, [contender, writer], models)
            build = lambda c, spec=spec: spec.build(c, BuildContext(models, config.seed))  # noqa: E731
            tuned = tune(contender, spec, task, train, dev, build, config.seed, proposer=proposer)
            measured, _ = evaluate(build(tuned.config), tuned.task, train, test, name=name)
            r = tuned.record
            row = {
                "kind": name,
                "proposer": with_proposer,
                "dev_own": r["untuned"]["dev_score"],
                "dev_best": r["best"]["dev_score"],
                "chosen": r["best"]["settings"],
                "test_best": measured.metrics["accuracy"],
                "test_best_ci": list(measured.ci["accuracy"]),
                "seconds": r["seconds"],
                "trials": r["trials"],
                "written": r.get("proposer"),
                "instructions": r["instructions"],
            }
            rows.append(row)
            print(
                f"{name:9} {'yes' if with_proposer else 'no':8} {row['dev_own']:>7.3f} "
                f"{row['dev_best']:>8.3f} {row['test_best']:>9.3f} {row['seconds']:>7.0f}  "
                f"{row['chosen']}",
                flush=True,
            )
            for text in (r.get("proposer") or {}).get("instructions", []):
                print(f"{'':27} proposed: {text[:150]!r}")
    write_result(
        args.out,
        {
            "bench": "tune_proposer",
            "experiment": str(EXAMPLE.relative_to(EXAMPLE.parents[2])),
            "trials": args.trials,
            "proposals": args.proposals,
            "dev_rows": len(dev),
            "test_rows": len(test),
            "seconds": time.perf_counter() - start,
            "rows": rows,
        },
    )


if __name__ == "__main__":
    main()
