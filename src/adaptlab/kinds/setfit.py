"""`setfit`: the sentence embedder tuned on pairs of training examples, then embed_classifier's
logistic-regression head on the tuned vectors: SetFit (Tunstall et al. 2022) with all-MiniLM-L6-v2.

Each training example is paired `pairs` times: half with another example of its label (target
cosine 1), half with an example of another label (target 0); CosineSimilarityLoss, SetFit's
default, pulls same-label sentences together. 160 rows x 20 pairs = 3,200 pairs, 200 steps of
16: 156 s on 2 shared CPU cores (bench/results/setfit-cpu.json). No LLM runs, so it is a
baseline beside embed_classifier.

Why sentence-transformers' own trainer and not the `setfit` package: setfit 1.2.0 installs next to
our pins (transformers 5.24, sentence-transformers 6.2, datasets 5.2) and runs, but it draws its
pairs with a fixed RandomState(42) whatever the seed, builds every one of the n(n+1)/2 pairs before
drawing (2,000 rows: 2 million pairs in memory), saves its head with joblib (pickle), switches its
logger to INFO on import, and brings nine more packages (evaluate, aiohttp, ...). The pairs are
drawn here, seeded, `pairs` per row; the training loop is sentence-transformers'.

Saved without pickle: solver.json holds the head (as embed_classifier's), setfit.safetensors the
tuned embedder's weights, loaded over a fresh copy of the embedder (one flat folder, as the
registry keeps it).
"""

from __future__ import annotations

import copy
import math
import time
from pathlib import Path
from typing import Literal

import numpy as np
from pydantic import Field, field_validator

from adaptlab.config import StrategyConfig
from adaptlab.data import Dataset
from adaptlab.errors import AdaptlabError, DataError, Problem
from adaptlab.kinds import Kind
from adaptlab.kinds.embed_classifier import HEAD, EmbedClassifierSolver, fit_head
from adaptlab.solver import Progress, read_solver_json
from adaptlab.task import Task

NAME = "setfit"
WEIGHTS = "setfit.safetensors"
LOSS = "CosineSimilarityLoss"


class SetFitConfig(StrategyConfig):
    """Baseline: the sentence embedder tuned on same-/different-label pairs, then logistic regression on its vectors
    (classify tasks)."""

    name: Literal["setfit"]
    pairs: int = Field(
        20,
        gt=0,
        le=1000,
        description="Pairs drawn per training example: half with another example of its label, half with an "
        "example of another label (so an even number). 160 rows x 20 = 3,200 pairs.",
    )
    epochs: int = Field(1, gt=0, le=100, description="Passes over the pairs.")
    batch_size: int = Field(16, gt=0, description="Pairs per optimizer step.")
    learning_rate: float = Field(
        2e-5,
        gt=0,
        description="Peak learning rate of the embedder (linear warm-up over the first 10% of steps, then linear "
        "decay); SetFit's default.",
    )

    @field_validator("pairs")
    @classmethod
    def _even(cls, pairs: int) -> int:
        if pairs % 2:
            raise ValueError(
                f"must be an even number (half same-label pairs, half different-label pairs); try {pairs + 1}"
            )
        return pairs

    @property
    def seeded(self) -> bool:
        return True  # which pairs are drawn, their order, dropout


def draw_pairs(outputs: list[str], pairs: int, seed: int = 0) -> list[tuple[int, int, float]]:
    """`pairs` (i, j, target) per row i: half with another row of its label (1.0), half with a row of another label
    (0.0).

    A label with one row has no partner of its own: its row gets only different-label pairs.
    """
    labels = sorted(set(outputs))
    rng = np.random.default_rng(seed)
    rows, labelled = np.arange(len(outputs)), np.array(outputs)
    members = {label: rows[labelled == label] for label in labels}
    others = {label: rows[labelled != label] for label in labels}
    drawn = []
    for i, label in enumerate(outputs):
        same = members[label][members[label] != i]
        if len(same):
            drawn += [(i, int(j), 1.0) for j in rng.choice(same, pairs // 2)]
        drawn += [(i, int(j), 0.0) for j in rng.choice(others[label], pairs // 2)]
    return drawn


def tune(
    model, texts: list[str], drawn: list[tuple[int, int, float]], config: SetFitConfig, seed: int = 0, on_step=None
) -> dict:
    """Fine-tune the SentenceTransformer `model` in place on the drawn pairs (cosine similarity towards each target);
    what it did."""
    import tempfile

    from datasets import Dataset as Pairs
    from sentence_transformers import SentenceTransformerTrainer, SentenceTransformerTrainingArguments
    from sentence_transformers.sentence_transformer.losses import CosineSimilarityLoss
    from transformers import PrinterCallback, TrainerCallback

    from adaptlab.finetune.trainer import StepReport

    lengths = [len(ids) for ids in model.tokenizer(list(texts))["input_ids"]]
    tokens_per_pair = sum(lengths[i] + lengths[j] for i, j, _ in drawn) / len(
        drawn
    )  # shown as tok/s beside fine-tuning's
    clock = time.perf_counter()

    class Trainer(SentenceTransformerTrainer):
        def add_model_card_callback(
            self, *args, **kwargs
        ):  # no model card is written: skip gathering one (sentence-transformers' documented override)
            pass

    class Report(TrainerCallback):
        def on_log(self, args, state, control, logs=None, **kwargs):
            if on_step and logs and "loss" in logs:
                seen = state.global_step * config.batch_size * tokens_per_pair
                on_step(
                    StepReport(
                        state.global_step,
                        state.max_steps,
                        max(1, math.ceil(state.epoch or 0)),
                        float(logs["loss"]),
                        seen / max(time.perf_counter() - clock, 1e-9),
                    )
                )

    pairs = Pairs.from_dict(
        {
            "sentence_1": [texts[i] for i, _, _ in drawn],
            "sentence_2": [texts[j] for _, j, _ in drawn],
            "label": [t for _, _, t in drawn],
        }
    )
    with (
        tempfile.TemporaryDirectory() as scratch
    ):  # the Trainer wants an output folder; with save_strategy "no" it writes nothing there
        args = SentenceTransformerTrainingArguments(
            output_dir=scratch,
            num_train_epochs=config.epochs,
            per_device_train_batch_size=config.batch_size,
            learning_rate=config.learning_rate,
            warmup_steps=0.1,
            seed=seed,
            data_seed=seed,
            report_to="none",
            save_strategy="no",
            logging_steps=1,
            disable_tqdm=True,
            dataloader_pin_memory=False,
        )
        trainer = Trainer(
            model=model, args=args, train_dataset=pairs, loss=CosineSimilarityLoss(model), callbacks=[Report()]
        )
        trainer.remove_callback(PrinterCallback)  # disable_tqdm's stand-in prints every log line
        out = trainer.train()
    return {
        "pairs_per_example": config.pairs,
        "pairs": len(drawn),
        "similar_pairs": int(sum(t for _, _, t in drawn)),
        "epochs": config.epochs,
        "steps": out.global_step,
        "batch_size": config.batch_size,
        "learning_rate": config.learning_rate,
        "loss": LOSS,
        "train_loss": round(float(out.training_loss), 5),
        "seconds": round(time.perf_counter() - clock, 2),
    }


def own_copy(embedder):
    """An Embedder to tune or to load tuned weights into: a copy of `embedder` (the shared one stays as it is), else the
    embedded all-MiniLM-L6-v2."""
    from adaptlab.models.embedder import Embedder

    return copy.deepcopy(embedder) if isinstance(embedder, Embedder) else Embedder()


class SetFitSolver(EmbedClassifierSolver):
    """embed_classifier's solver (a logistic head, predicted the same way) answering through its own tuned embedder."""

    strategy = NAME

    def describe(self) -> dict:
        return {
            "strategy": self.strategy,
            "embedder": "all-MiniLM-L6-v2, tuned on label pairs",
            "classifier": HEAD,
            **self.details,
        }

    def save(self, folder: Path) -> None:
        from safetensors.torch import save_file

        super().save(folder)
        save_file(
            {k: v.detach().cpu().contiguous() for k, v in self.embedder.model.state_dict().items()},
            str(Path(folder) / WEIGHTS),
        )

    @classmethod
    def load(cls, folder: Path, context=None) -> SetFitSolver:
        """Rebuild a saved solver: its head from solver.json, its embedder as a copy of `context`'s (else the embedded
        one) with the tuned weights."""
        from safetensors.torch import load_file

        info = read_solver_json(folder, NAME)
        embedder = own_copy(getattr(context, "embedder", None))
        try:
            embedder.model.load_state_dict(load_file(str(Path(folder) / WEIGHTS)))
        except (OSError, RuntimeError) as exc:
            raise AdaptlabError(
                f"{folder}: the tuned embedder's weights ({WEIGHTS}) do not load into the embedder "
                f"offered ({type(exc).__name__}: {str(exc)[:200]}); load it with the embedder it was "
                "tuned from"
            ) from None
        info.setdefault(
            "contrastive", info.get("tuning")
        )  # saved before the record was renamed (it met compare's settings search, `tuning`)
        return cls.from_saved(
            info,
            embedder,
            {k: info[k] for k in ("train_hash", "contrastive", "fit_seconds") if info.get(k) is not None},
        )


class SetFit:
    """Contrastive tuning of the sentence embedder on training pairs, then a logistic head on its vectors.

    >>> solver = strategy({"name": "setfit", "pairs": 20}).fit(task, train)    # doctest: +SKIP
    >>> solver.predict(["my card never came"])[0].output                       # doctest: +SKIP
    'card_arrival'
    """

    name = NAME

    def __init__(self, config: SetFitConfig, embedder=None, seed: int = 0, on_step=None):
        self.config, self.embedder, self.seed, self.on_step = config, embedder, seed, on_step

    def fit(
        self, task: Task, train: Dataset, dev: Dataset | None = None, progress: Progress | None = None
    ) -> SetFitSolver:
        if len(set(train.outputs)) < 2:
            raise DataError(
                [
                    Problem(
                        "one_label",
                        train.source,
                        None,
                        "output",
                        f"every training row has the label {train.outputs[0]!r}; setfit learns from "
                        "pairs of different labels",
                        "add rows of at least one other label",
                    )
                ]
            )
        clock = time.perf_counter()
        embedder = own_copy(self.embedder)
        tuning = tune(
            embedder.model,
            train.inputs,
            draw_pairs(train.outputs, self.config.pairs, self.seed),
            self.config,
            self.seed,
            self.on_step,
        )
        vectors = embedder.encode(train.inputs)  # not encode_cached: its cache holds the untuned embedder's vectors
        classes, coef, intercept = fit_head(vectors, train.outputs, self.seed)
        if progress:
            progress(len(train))
        details = {
            "train_hash": train.content_hash,
            "contrastive": tuning,
            "fit_seconds": round(time.perf_counter() - clock, 2),
        }
        return SetFitSolver(task, classes, coef, intercept, embedder, details)


# own_weights stays False: the new weights are a 22M-parameter embedder's, not a copy of the LLM.
KIND = Kind(
    NAME,
    "baseline",
    SetFitConfig,
    build=lambda config, ctx: SetFit(config, ctx.embedder, seed=ctx.seed, on_step=ctx.on_step),
    load=SetFitSolver.load,
    tier=1,
    llm=False,
    tasks=("classify",),
    summary="the sentence embedder tuned on same-/different-label pairs, then logistic regression",
)
