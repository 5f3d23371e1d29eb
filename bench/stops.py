"""Answers that stop: the inferred end strings and loop stopping, against letting every answer run, on the generate
slices.

On each slice the same fitted contender (zero_shot, few_shot k=4 similar; --lora adds a
LoRA fit) answers the test rows twice on the embedded SmolLM2-135M:
  off   no stop strings, no end strings, no loop stopping: each answer runs to the end of
        turn or max_new_tokens
  on    what a compare does by default: the stop/end strings the training outputs show
        (task.answer_endings) and loop stopping (engine.generate.loop_start)
Reported per slice and contender: chrF of each, the paired 95% interval of on - off over
the test rows, predict seconds of each, and answers cut at the limit or ended by a loop.
A rule that changes answers must not lower scores: `worst_difference` is the lowest
on - off mean over every slice and contender.

  booking-sql   examples/booking-sql (80 train / 30 test): every output ends with one ';'
  r8k-json      Restaurant-8k messages -> slots as one-line JSON (100 train / 40 test)
  r8k-slots     Restaurant-8k messages -> "slot: value" lines (200 train / 40 test): nothing inferred, loops only

    python bench/stops.py [--out bench/results/stops-cpu.json] [--lora]

Last line: one JSON object, which the script also writes to --out.
"""

from __future__ import annotations

import argparse
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
from _results import write_result
from references import read_messages, render, slices

from adaptlab.data import Dataset, Example
from adaptlab.metrics import bootstrap_ci, row_scores
from adaptlab.task import make_task

SLICES = {"booking-sql": None, "r8k-json": ("json", 100, 40), "r8k-slots": ("slots", 200, 40)}


def data() -> list[tuple[str, Dataset, Dataset]]:
    """(name, train, test) of each slice: booking-sql as the example has it, the Restaurant-8k ones cut smaller."""
    out = [next(s for s in slices() if s[0] == "booking-sql")]
    train, test = read_messages("train"), read_messages("test")
    for name, spec in SLICES.items():
        if spec:
            how, n_train, n_test = spec

            def rows(pairs, source, how=how):
                return Dataset([Example(i, render(s, how), n + 1) for n, (i, s) in enumerate(pairs)], source)

            out.append((name, rows(train[:n_train], "train"), rows(test[:n_test], "test")))
    return out


def contenders(lora: bool) -> list[tuple[str, dict]]:
    out = [("zero_shot", {"name": "zero_shot"}), ("few_shot", {"name": "few_shot", "k": 4, "selector": "similar"})]
    return out + ([("lora", {"name": "lora"})] if lora else [])


def measure(solver, task, test: Dataset) -> dict:
    clock = time.perf_counter()
    predictions = solver.predict(test.inputs)
    seconds = time.perf_counter() - clock
    answers = [p.output for p in predictions]
    scores = row_scores(task.spec, test.outputs, answers)
    return {
        "chrf": float(scores.mean()),
        "seconds": seconds,
        "cut": sum(p.cut for p in predictions),
        "looped": sum(p.looped for p in predictions),
        "scores": scores,
        "tokens": float(np.mean([p.completion_tokens for p in predictions])),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", default=str(Path(__file__).parent / "results" / "stops-cpu.json"))
    parser.add_argument("--lora", action="store_true")
    args = parser.parse_args()

    from adaptlab import kinds
    from adaptlab.engine.prompt import encode_text
    from adaptlab.kinds.context import BuildContext, ModelSource
    from adaptlab.models import load_base_model
    from adaptlab.models.embedded import EMBEDDED_NAME

    base = load_base_model(EMBEDDED_NAME)
    models = ModelSource(base)
    count = lambda t: len(encode_text(base.tokenizer, t))  # noqa: E731
    rows = []
    print(
        f"{'slice':<12} {'contender':<10} {'inferred':<22} {'chrF off':>8} {'chrF on':>8} "
        f"{'on-off 95% CI':>17} {'s off':>7} {'s on':>7} {'cut off':>7} {'cut on':>6} {'looped':>6}"
    )
    for name, train, test in data():
        on_task = make_task(name, "Answer as the examples do.", train, test, "generate", count_tokens=count)
        off_task = replace(on_task, stop=(), ends=(), stop_loops=False)
        for label, settings in contenders(args.lora):
            kind = kinds.kind(settings["name"])
            config = kind.config(**settings)
            solver = kind.build(config, BuildContext(models, 0)).fit(on_task, train)
            runs = {}
            for side, task in (("off", off_task), ("on", on_task)):
                solver.task = task
                runs[side] = measure(solver, task, test)
            diff = runs["on"]["scores"] - runs["off"]["scores"]
            lo, hi = bootstrap_ci(diff)
            inferred = (f"stop {on_task.stop!r}" if on_task.stop else "") + (
                f"ends {on_task.ends!r}" if on_task.ends else ""
            ) or "nothing"
            rows.append(
                {
                    "slice": name,
                    "contender": label,
                    "inferred": inferred,
                    "max_new_tokens": on_task.max_new_tokens,
                    "rows": len(test),
                }
                | {
                    f"{k}_{side}": (round(v, 3) if isinstance(v, float) else v)
                    for side, r in runs.items()
                    for k, v in r.items()
                    if k != "scores"
                }
                | {"difference": float(diff.mean()), "difference_ci": [lo, hi]}
            )
            r = rows[-1]
            print(
                f"{name:<12} {label:<10} {inferred[:22]:<22} {r['chrf_off']:>8.1f} "
                f"{r['chrf_on']:>8.1f} {f'[{lo:+.1f}, {hi:+.1f}]':>17} {r['seconds_off']:>7.1f} "
                f"{r['seconds_on']:>7.1f} {r['cut_off']:>7} {r['cut_on']:>6} {r['looped_on']:>6}"
            )
            if settings["name"] == "lora":
                models.close()
                models = ModelSource(load_base_model(EMBEDDED_NAME))
    models.close()
    result = {
        "bench": "stops",
        "rows": rows,
        "worst_difference": min(r["difference"] for r in rows),
        "seconds_off": sum(r["seconds_off"] for r in rows),
        "seconds_on": sum(r["seconds_on"] for r in rows),
    }
    print(
        f"worst on - off chrF: {result['worst_difference']:+.2f}; predict seconds off "
        f"{result['seconds_off']:.0f}, on {result['seconds_on']:.0f}"
    )
    write_result(args.out, result)


if __name__ == "__main__":
    main()
