"""`advise`: advice before any data is measured, from the same factors, and the experiment that would settle it.

It rests on stated answers and on what is generally known (said as such), never on
figures; its last reason always names the `adaptlab` experiment that replaces the
guess with a measurement.
"""

from __future__ import annotations

from adaptlab.config import ConstraintsConfig
from adaptlab.decide.recommend import COLLECT_MORE_DATA, Decision
from adaptlab.tasks import task_kind as kind_of


def advise(labeled_examples: int, task_kind: str, constraints: ConstraintsConfig) -> Decision:
    """A leaning among zero_shot, few_shot, lora, full and collect_more_data, with a reason per factor."""
    c = constraints
    reasons, votes = [], {"zero_shot": 0, "few_shot": 0, "lora": 0, "full": 0}
    if labeled_examples < 20:
        reasons.append(f"{labeled_examples} labeled examples are too few to fine-tune on or to measure anything with confidence (a 20-row test set has a ±0.2 interval on accuracy)")
        votes["zero_shot"] += 1
        votes["few_shot"] += 1
    elif labeled_examples < 200:
        reasons.append(f"{labeled_examples} labeled examples: enough for few-shot prompting and a LoRA trial; fine-tuning on this few often trails good prompting (it did on the bundled intent slice)")
        votes["few_shot"] += 2
        votes["lora"] += 1
    else:
        reasons.append(f"{labeled_examples} labeled examples: enough to fine-tune; prompts can only carry a handful of them")
        votes["lora"] += 2
    if c.training_hardware == "none":
        reasons.append("no machine to train on: prompting only")
        votes["lora"] = votes["full"] = -99
    if c.one_model_many_tasks:
        reasons.append("one model must serve many tasks: prompts and LoRA adapters share one base model; full fine-tuning does not")
        votes["full"] = -99
    if c.data_changes in ("weekly", "daily"):
        reasons.append(f"the data changes {c.data_changes}: prompts pick up new examples at once; a fine-tuned model needs retraining")
        votes["few_shot"] += 1
    if c.queries_per_month is not None and c.queries_per_month >= 1_000_000:
        reasons.append(f"{c.queries_per_month:,} queries a month: short prompts (fine-tuned) cost less per query, which can pay back training")
        votes["lora"] += 1
    if c.latency_target_ms is not None and c.latency_target_ms < 300:
        reasons.append(f"a {c.latency_target_ms:.0f} ms latency target favours short prompts (fine-tuned models, or no LLM at all for classification)")
        votes["lora"] += 1
    if c.domain == "specialised":
        reasons.append("a specialised domain: the base model may lack its vocabulary, which fine-tuning can add and prompting cannot")
        votes["lora"] += 1
    if c.format_control == "strict":
        reasons.append("strict output format: fine-tuning usually holds a format more reliably than instructions")
        votes["lora"] += 1
    labelled = kind_of(task_kind).labelled
    if labelled:
        reasons.append("a classification task: measure a plain embedding classifier too; on the bundled intent slice it beat every LLM strategy")
    choice = max(votes, key=lambda k: (votes[k], -list(votes).index(k)))
    if labeled_examples < 20 and c.training_hardware != "none":
        choice = COLLECT_MORE_DATA if labeled_examples < 8 else choice
    strategies = "zero_shot, few_shot" + (", lora" if votes["lora"] > -99 else "") + " and the references"
    reasons.append(
        f"this is a leaning, not a measurement: label at least 100 examples (hold out 30%), then run `adaptlab compare` with {strategies}"
        + ("; `adaptlab sweep` shows from how many examples fine-tuning overtakes prompting" if votes["lora"] > -99 else "")
    )
    return Decision(choice, reasons)
