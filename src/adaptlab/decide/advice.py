"""`advise`: advice before any data is measured, from the same factors, and the experiment that would settle it.

It rests on stated answers and on what is generally known (said as such), never on
figures; its last reason always names the `adaptlab` experiment that replaces the
guess with a measurement.

Each factor votes for the kinds whose traits it favours (`adaptlab.kinds.Kind`), so a
kind a package registers is advised by what it declares, never by its name:

    factor                                  votes for (or rules out)
    under 20 labeled examples               +1 every kind that needs no training
    20-199 labeled examples                 +2 examples_in_prompt, +1 trains
    200 or more                             +2 trains
    training_hardware: none                 rules out every kind that trains
    one_model_many_tasks                    rules out own_weights
    data changes weekly or daily            +1 examples_in_prompt
    1M+ queries a month, latency < 300 ms   +1 short_prompts, each
    specialised domain, strict format       +1 trains, each
    answers from documents (qa)             +3 reads_documents

A kind ruled out stays out, however many votes other factors give it: it is neither the
leaning nor in the settling experiment. The candidates are the kinds that run a language model and can answer the task
kind; the
references (no language model) stand beside every comparison and are not voted on, and a
kind that reads documents is a candidate only for a task kind that answers from documents
(`TaskKind.documents`). A tie goes to the cheaper kind (its tier), then to one sharing its
base model, then to table order.
"""

from __future__ import annotations

from collections.abc import Callable

from adaptlab import kinds
from adaptlab.config import ConstraintsConfig
from adaptlab.decide.recommend import COLLECT_MORE_DATA, NONE_FITS, Decision
from adaptlab.kinds import Kind
from adaptlab.tasks import task_kind as kind_of


def candidates(task_kind: str) -> list[Kind]:
    """The kinds advice weighs for `task_kind`, in table order: language-model kinds that answer it, those that read
    documents only where its answers come from documents."""
    spec = kind_of(task_kind)
    return [
        k
        for k in kinds.kinds()
        if k.llm
        and k.answers(task_kind)
        and k.name not in spec.references
        and (spec.documents or not k.reads_documents)
    ]


def advise(labeled_examples: int, task_kind: str, constraints: ConstraintsConfig) -> Decision:
    """A leaning among the candidate kinds (`candidates`) and collect_more_data, with a reason per factor."""
    c = constraints
    pool = candidates(task_kind)
    votes = {k.name: 0 for k in pool}
    ruled_out: set[str] = set()

    def vote(n: int, favoured: Callable[[Kind], bool]) -> None:
        for k in pool:
            if favoured(k):
                votes[k.name] += n

    reasons = []
    if labeled_examples < 20:
        reasons.append(
            f"{labeled_examples} labeled examples are too few to fine-tune on or to measure anything "
            "with confidence (a 20-row test set has a ±0.2 interval on accuracy)"
        )
        vote(1, lambda k: not k.trains)
    elif labeled_examples < 200:
        reasons.append(
            f"{labeled_examples} labeled examples: enough for few-shot prompting and a LoRA trial; "
            "fine-tuning on this few often trails good prompting (it did on the bundled intent "
            "slice)"
        )
        vote(2, lambda k: k.examples_in_prompt)
        vote(1, lambda k: k.trains)
    else:
        reasons.append(
            f"{labeled_examples} labeled examples: enough to fine-tune; prompts can only carry a handful of them"
        )
        vote(2, lambda k: k.trains)
    if c.training_hardware == "none":
        reasons.append("no machine to train on: prompting only")
        ruled_out |= {k.name for k in pool if k.trains}
    if c.one_model_many_tasks:
        reasons.append(
            "one model must serve many tasks: prompts and LoRA adapters share one base model; full fine-tuning does not"
        )
        ruled_out |= {k.name for k in pool if k.own_weights}
    if c.data_changes in ("weekly", "daily"):
        reasons.append(
            f"the data changes {c.data_changes}: prompts pick up new examples at once; a fine-tuned "
            "model needs retraining"
        )
        vote(1, lambda k: k.examples_in_prompt)
    if c.queries_per_month is not None and c.queries_per_month >= 1_000_000:
        reasons.append(
            f"{c.queries_per_month:,} queries a month: short prompts (fine-tuned) cost less per "
            "query, which can pay back training"
        )
        vote(1, lambda k: k.short_prompts)
    if c.latency_target_ms is not None and c.latency_target_ms < 300:
        reasons.append(
            f"a {c.latency_target_ms:.0f} ms latency target favours short prompts (fine-tuned "
            "models, or no LLM at all for classification)"
        )
        vote(1, lambda k: k.short_prompts)
    if c.domain == "specialised":
        reasons.append(
            "a specialised domain: the base model may lack its vocabulary, which fine-tuning can add "
            "and prompting cannot"
        )
        vote(1, lambda k: k.trains)
    if c.format_control == "strict":
        reasons.append("strict output format: fine-tuning usually holds a format more reliably than instructions")
        vote(1, lambda k: k.trains)
    if kind_of(task_kind).documents:
        reasons.append(
            "answers from the team's documents: a kind that reads them at query time answers from the passages it "
            "retrieves and absorbs a document change by re-indexing; a fine-tune only learns the facts its training "
            "answers hold (knowledge tasks usually favour retrieval; it can be trained to read the passages too: "
            "docs/knowledge.md)"
        )
        vote(3, lambda k: k.reads_documents)
    if kind_of(task_kind).labelled:
        reasons.append(
            "a classification task: measure a plain embedding classifier too; on the bundled intent "
            "slice it beat every LLM strategy"
        )
    left = [k for k in pool if k.name not in ruled_out]
    order = {k.name: i for i, k in enumerate(pool)}
    best = max(left, key=lambda k: (votes[k.name], -k.tier, not k.own_weights, -order[k.name]), default=None)
    choice = best.name if best is not None else NONE_FITS
    if labeled_examples < 20 and c.training_hardware != "none":
        choice = COLLECT_MORE_DATA if labeled_examples < 8 else choice
    reasons.append(settling_experiment(left, votes, kind_of(task_kind).documents))
    return Decision(choice, reasons)


def settling_experiment(left: list[Kind], votes: dict[str, int], documents: bool = False) -> str:
    """The last reason: the `adaptlab compare` (and, where a kind trains, `adaptlab sweep`) that measures what was
    guessed.

    A kind that trains a whole model per task waits for a second run when one that trains over the shared base got as
    many votes: it costs more to fit and to serve, and the first run shows whether training pays at all.
    """
    shared = max((votes[k.name] for k in left if k.trains and not k.own_weights), default=None)
    tried = [k for k in left if not (k.own_weights and shared is not None and shared >= votes[k.name])]
    strategies = ", ".join(k.name for k in tried) + " and the references" if tried else "the references"
    trains = any(k.trains for k in tried)
    return (
        "this is a leaning, not a measurement: label at least 100 examples (hold out 30%), then run "
        f"`adaptlab compare` with {strategies}"
        + (" (data.docs: the documents)" if documents else "")
        + ("; `adaptlab sweep` shows from how many examples fine-tuning overtakes prompting" if trains else "")
    )
