"""`RemoteSolver`: zero- and few-shot prompting of a remote chat model, answers parsed to labels.

The messages are the ones a local model gets (system turn with the instruction and,
for classification, the label list; shots as user/assistant turns). A remote
endpoint returns text, not label likelihoods, so a classification answer is parsed
to a label (`Task.parse_label`); when the text names none and the endpoint returned
log-probabilities, the first token's top alternatives pick the label they uniquely
start. An answer that still names no label counts as wrong and is listed in the
results (`unparseable`), never dropped.
"""

from __future__ import annotations

from pathlib import Path

from adaptlab.engine.prompt import build_messages
from adaptlab.remote.client import ChatClient
from adaptlab.solver import Prediction, Progress, write_solver_json
from adaptlab.task import Task

CLASSIFY_MAX_TOKENS = 32
SHOWN_UNPARSEABLE = 20


class RemoteSolver:
    """A task answered by an OpenAI-compatible endpoint; `saved` and `files` as LMSolver's (what its strategy saves to
    rebuild it)."""

    def __init__(
        self,
        strategy: str,
        client: ChatClient,
        task: Task,
        shots=None,
        saved: dict | None = None,
        files: dict[str, dict] | None = None,
    ):
        self.strategy = strategy
        self.client = client
        self.task = task
        self.shots = shots
        self.unparseable: list[dict] = []
        self.by_logprobs = 0
        self.usage = {"requests": 0, "prompt_tokens": 0, "completion_tokens": 0, "retries": 0}
        self.saved = saved or {}  # what its strategy adds to solver.json to rebuild it
        self.files = files or {}  # further JSON files saved beside solver.json, by name

    def predict(self, inputs: list[str], progress: Progress | None = None) -> list[Prediction]:
        chosen = self.shots.select(inputs) if self.shots else [[] for _ in inputs]
        conversations = [build_messages(self.task, shots, query) for query, shots in zip(inputs, chosen)]
        classify = self.task.spec.labelled
        max_tokens = CLASSIFY_MAX_TOKENS if classify else self.task.max_new_tokens
        replies = self.client.chat_many(conversations, max_tokens, None if classify else list(self.task.stop), progress)
        predictions = []
        for query, shots, reply in zip(inputs, chosen, replies):
            self.usage["requests"] += 1
            self.usage["prompt_tokens"] += reply.prompt_tokens
            self.usage["completion_tokens"] += reply.completion_tokens
            self.usage["retries"] += reply.retries
            output = self._label(query, reply) if classify else _cut(reply.text, self.task)
            predictions.append(
                Prediction(output, reply.prompt_tokens, reply.completion_tokens, reply.seconds, len(shots))
            )
        return predictions

    def _label(self, query: str, reply) -> str:
        label = self.task.parse_label(reply.text)
        if label is None and reply.first_token_logprobs:
            label = label_from_logprobs(reply.first_token_logprobs, self.task.labels)
            self.by_logprobs += label is not None
        if label is None:
            self.unparseable.append({"input": query, "answer": reply.text[:200]})
            return ""  # matches no label: counted wrong
        return label

    def describe(self) -> dict:
        config = self.client.config
        cost = None
        if config.price_input_per_1k is not None or config.price_output_per_1k is not None:
            cost = (
                self.usage["prompt_tokens"] * (config.price_input_per_1k or 0)
                + self.usage["completion_tokens"] * (config.price_output_per_1k or 0)
            ) / 1000
        return {
            "strategy": self.strategy,
            "base_model": self.client.describe(),
            "shots": self.shots.describe() if self.shots else None,
            "choice_rule": "answer text parsed to a label (labels listed in the prompt); the first token's top "
            "log-probs where the text names none"
            if self.task.spec.labelled
            else "greedy (temperature 0)",
            "usage": dict(self.usage),
            "cost_usd": cost,
            "labels_from_logprobs": self.by_logprobs,
            "unparseable": len(self.unparseable),
            "unparseable_examples": self.unparseable[:SHOWN_UNPARSEABLE],
        }

    def save(self, folder: Path, **extra) -> None:
        """solver.json with the endpoint's settings (the name of the key's variable, never the key), and the strategy's
        files;
        `extra`: further solver.json fields from a solver that wraps this one (a RagSolver's index)."""
        write_solver_json(
            folder,
            self,
            self.task,
            self.files,
            endpoint=self.client.config.model_dump(mode="json"),
            **self.saved,
            **extra,
        )


def label_from_logprobs(top: dict[str, float], labels: tuple[str, ...]) -> str | None:
    """The label named by the most probable first token that starts exactly one label.

    >>> label_from_logprobs({"The": -0.1, "card": -0.9, "lost": -1.5}, ("card_arrival", "lost_or_stolen_card"))
    'card_arrival'
    """
    for token, _ in sorted(top.items(), key=lambda item: -item[1]):
        piece = token.strip().lower()
        matches = [label for label in labels if piece and label.lower().startswith(piece)]
        if len(matches) == 1:
            return matches[0]
    return None


def _cut(text: str, task: Task) -> str:
    """The answer in an endpoint's reply: before the first stop string, after the first end string (the endpoint saw
    only the stops)."""
    from adaptlab.engine.generate import Ending

    end = Ending(task.stop, task.ends).cut(text)
    return text if end is None else text[:end]
