"""The table of strategy kinds: every kind is one module, found here by its name.

A kind declares, once: its name, its family (`baseline`, `prompted`, `fine_tuned`), its
config model (a `StrategyConfig` with `name: Literal[...]`), how to build its Strategy,
how to load a saved Solver, and the traits the decision reads. Nothing else in adaptlab
branches on a kind's name: decide/, serve/, the registry and the report read traits.

The traits other modules ask instead of guessing from a name:

    trait               what it says                                  read by
    llm                 runs a language model                         advice (candidates), decide.recommend, vLLM export
    trains (family)     needs a training run (a machine to train on)  advice, decide, finetune, sweep, vLLM export
    prompted (family)   an LLM answering from its prompt, untrained   decide (data churn, domain, format), sweep, init
    tunes_instruction   `tune:` searches its instruction              runs.tune (prompted LLM kinds)
    own_weights         a whole model per task: shares no base model  advice, decide.constraints, vLLM export
    examples_in_prompt  training examples ride in each prompt         advice (few examples; data that changes)
    short_prompts       trained to answer from the query alone        advice (volume, latency)
    reads_documents     answers from the documents' index at query    advice, freshness (re-index, no retrain),
                        time (its solver is a `DocumentReader`)       vLLM export (retrieval runs in adaptlab)
    export_shots        the shots a saved prompt carries              vLLM export (prompts.json)

    >>> kind("few_shot").family
    'prompted'
    >>> [k.name for k in kinds() if k.trains]
    ['lora', 'full']

A package adds a kind through the `adaptlab.kinds` entry point group (the entry point
names a `Kind` object), or, in a script or a test, with `register(Kind(...))`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from adaptlab.errors import ConfigError
from adaptlab.plugins import Table

if TYPE_CHECKING:
    from adaptlab.config import StrategyConfig

FAMILIES = ("baseline", "prompted", "fine_tuned")
BUILT_IN = (
    "zero_shot",
    "few_shot",
    "rag",
    "lora",
    "full",
    "majority",
    "embed_classifier",
    "setfit",
    "constant",
    "nearest",
    "abstain",
    "extract",
)  # modules of this package, in table order
ENTRY_POINT_GROUP = "adaptlab.kinds"


@dataclass(frozen=True)
class Kind:
    """One way of adapting (or not adapting) a model to a task."""

    name: str
    family: str  # baseline (no adaptation of an LLM), prompted (in-context learning) or fine_tuned (new weights)
    config: type[StrategyConfig]  # the pydantic model of its experiment entry
    build: Callable[[Any, Any], Any]  # (config, BuildContext) -> Strategy
    load: Callable[[Path, Any], Any]  # (folder a solver saved, LoadContext) -> Solver
    tier: int  # cost order for the recommendation's "cheaper": no LLM < LLM prompted < LLM trained
    llm: bool = True  # runs a language model (the baselines do not)
    constant: bool = False  # gives one answer whatever the input (a floor: beating it means something was learned)
    own_weights: bool = False  # makes a whole new model per task (cannot share one base model across tasks)
    # the share of the shared base model's parameters it trains (adapters: models.memory.ADAPTER_SHARE), for the memory
    # check before loading
    trained_share: float = 0.0
    tasks: tuple[
        str, ...
        # the task kinds it can answer (adaptlab.tasks); () for every kind. A task kind's `references` name the kinds
        # run
        # beside every comparison
    ] = ()
    servable: bool = True  # adaptlab serve can answer with a saved solver of this kind
    summary: str = ""
    space: dict | None = (
        # `tune:` searches these settings: name -> ("choice", [values]) or ("log", low, high); None: not tunable
        # (prompted LLM kinds also search the instruction)
        None
    )
    acting: Callable[[dict], dict] | None = (
        None  # tuning: settings as they act, so draws that act alike are fitted once (few_shot k 0: no selector)
    )
    # training examples ride in its prompts, picked per query: a few dozen are enough, and new ones count at once,
    # without retraining
    examples_in_prompt: bool = False
    # trained to answer from the query alone: no examples or passages in its prompts, so cheap and quick per query (a
    # fine-tune)
    short_prompts: bool = False
    # answers from an index of the documents, read at query time: needs data.docs; its solver is a
    # `solver.DocumentReader`, and a document change is absorbed by re-indexing, not retraining
    reads_documents: bool = False
    export_shots: Callable[[Path, dict], ExportedShots] | None = (
        # vLLM export of a saved prompted solver: (its folder, its solver.json) -> the shots its prompt carries; None:
        # no shots (the instruction only)
        None
    )

    def answers(self, task_kind: str) -> bool:
        """Whether it can answer tasks of `task_kind`."""
        return not self.tasks or task_kind in self.tasks

    @property
    def trains(self) -> bool:
        """Whether it needs a training run of the language model (its family says so)."""
        return family_trains(self.family)

    @property
    def prompted(self) -> bool:
        """Whether it is a language model answering from its prompt alone, untrained (its family says so)."""
        return family_prompted(self.family)

    @property
    def tunes_instruction(self) -> bool:
        """Whether `tune:` searches its instruction: a language model that is prompted, not trained."""
        return self.prompted and self.llm

    def traits(self, config=None) -> dict:
        """What results.json records of the kind beside each contender; `config` (its entry) may make it fine-tuned (rag
        with fine_tune)."""
        family = getattr(config, "family", None) or self.family
        tier = max(self.tier, 3) if family_trains(family) else self.tier
        return {
            "kind": self.name,
            "family": family,
            "tier": tier,
            "llm": self.llm,
            "constant": self.constant,
            "own_weights": self.own_weights,
        }


@dataclass(frozen=True)
class ExportedShots:
    """What a saved prompted solver puts before each query, for a server that sees only messages (`adaptlab export
    --format vllm`)."""

    shots: (
        list[dict] | None
    )  # the {"input", "output"} turns before every query; None: chosen per query (`extra` carries what chooses them)
    extra: dict = field(
        default_factory=dict
        # further prompts.json fields for client.py (few_shot: its selection, and the pool when shots are chosen per
        # query)
    )
    note: str = ""  # what the user must know, said after the version's ref ("picks its 3 shots per query ...")


def family_trains(family: str | None) -> bool:
    """Whether a contender of `family` (a kind's, or its settings': `Kind.traits`) needs a training run."""
    return family == "fine_tuned"


def family_prompted(family: str | None) -> bool:
    """Whether a contender of `family` is a language model answering from its prompt alone, untrained."""
    return family == "prompted"


_TABLE: Table[Kind] = Table(__name__, BUILT_IN, ENTRY_POINT_GROUP, Kind, "strategy kind")


def register(k: Kind) -> Kind:
    """Add (or replace) a kind in the table."""
    if k.family not in FAMILIES:
        raise ConfigError(f"kind {k.name!r}: family must be one of {', '.join(FAMILIES)}, got {k.family!r}")
    return _TABLE.add(k)


def unregister(name: str) -> None:
    """Remove a kind (tests that declare their own kinds clean up with this)."""
    _TABLE.remove(name)


def kinds() -> list[Kind]:
    """Every kind, built-in ones first in table order."""
    return _TABLE.all()


def kind(name: str) -> Kind:
    """The kind called `name`; a ConfigError lists the known ones."""
    return _TABLE.get(name)


def names(family: str | None = None) -> tuple[str, ...]:
    """The kinds' names, of one family or all."""
    return tuple(k.name for k in kinds() if family is None or k.family == family)


def strategy(spec, base=None, *, seed: int = 0, embedder=None, dev=None, on_step=None, documents=None, **extra):
    """The Strategy an experiment entry describes (a mapping or a kind's config), on `base`: for scripts, notebooks and
    tests.

    >>> strategy({"name": "majority"}).fit(task, train)    # doctest: +SKIP
    """
    from adaptlab.kinds.context import BuildContext, ModelSource

    k = kind(spec["name"] if isinstance(spec, dict) else spec.name)
    config = k.config.model_validate(spec) if isinstance(spec, dict) else spec
    return k.build(
        config,
        BuildContext(ModelSource(base) if base is not None else None, seed, on_step, dev, embedder, documents, extra),
    )
