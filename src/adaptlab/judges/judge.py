"""`Judge`: a model asked which of two answers is better (both orders), or how good one answer is (1-5).

    judge = Judge(JudgeConfig(model={"base_url": "http://127.0.0.1:8000/v1", "name": "smollm2-135m-instruct"}),
                  rubric_for(None, "generate"))
    verdicts = judge.compare([Pair(row=0, a="lora", b="nearest", input="...", reference="...",
                                   answer_a="...", answer_b="...")])

Each pair is asked twice, a's answer shown first and then b's. A verdict stands only
when both orders give it; one that flips with the order (the judge preferring a
position, as MT-Bench found judges do) is a tie, and so is a reply without a verdict
line (counted). Two answers that are the same after folding case and spacing are a tie
without asking. Replies come from the cache when an earlier run asked the same
question (`cache.JudgeCache`); the rest go to an endpoint through `ChatClient.chat_many`
(concurrent, retried) or to a local model through the engine's batched `generate`.
"""

from __future__ import annotations

import hashlib
import json
import re
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

from adaptlab.config import JudgeConfig, RemoteModelConfig
from adaptlab.judges.cache import JudgeCache, cache_key
from adaptlab.judges.verdicts import Score, Side, Verdict
from adaptlab.solver import Progress

if TYPE_CHECKING:
    from adaptlab.models import BaseModel
    from adaptlab.remote.client import ChatClient

SYSTEM = "You are a fair, careful judge of answers.\n\n{rubric}"
INSTRUCTION = "## The assistant's instructions\n{instruction}\n\n"
INPUT = "## The input it answered\n{input}\n\n"
PASSAGES = "## The passages it was given\n{passages}\n\n"
REFERENCE = "## A reference answer (one good answer; others can be as good)\n{reference}\n\n"
# The verdict comes first, so a reply cut at max_tokens still holds it; a judge that starts writing a new section
# is stopped there (STOP): the embedded 135M model echoes the prompt's sections after its verdict.
PAIRWISE = (
    "## Answer A\n{first}\n\n## Answer B\n{second}\n\n"
    'Which answer is better, A or B? Start your reply with "Verdict: A", "Verdict: B" or "Verdict: tie", then say '
    "in a few words why."
)
POINTWISE = (
    "## The answer to rate\n{answer}\n\n"
    "How good is this answer, from 1 (useless or wrong) to 5 (as good as the reference)? Start your reply with "
    '"Score: N" (N from 1 to 5), then say in a few words why.'
)
STOP = ["\n## "]
SECTIONS = {"instruction": INSTRUCTION, "input": INPUT, "passages": PASSAGES, "reference": REFERENCE}  # in this order
TEMPLATE = {"system": SYSTEM, **SECTIONS, "pairwise": PAIRWISE, "pointwise": POINTWISE, "stop": "|".join(STOP)}
TEMPLATE_SHA256 = hashlib.sha256(json.dumps(TEMPLATE, sort_keys=True).encode()).hexdigest()
# Characters kept of each part: 6,000 + 3 x 3,000 + 4,000 ~ 5k tokens at ~4 characters a token, under an 8k context
# (SmolLM2's) with the reply. An input keeps its end (a conversation's latest turns); the others their start.
LIMITS = {"instruction": 3000, "input": 6000, "passages": 4000, "reference": 3000, "answer": 3000}
SWAPPED: dict[Side, Side] = {"a": "b", "b": "a", "tie": "tie"}  # a verdict read with the answers' order swapped
CHUNK = 64  # requests asked at once; their replies are cached before the next chunk, so a stopped run loses little

_VERDICT_LINE = re.compile(r"verdict\W{0,4}(?:answer\s+|assistant\s+)?[\*\"'\[(]*(A|B|tie)\b", re.IGNORECASE)
_LEADING = re.compile(r"^\W{0,3}(A|B|[Tt]ie)(?:$|[\n:.,)*\]]|\s+(?:is|wins)\b)")
_PHRASE = re.compile(r"\b(?:answer|response|assistant)\s+(A|B)\s+is\s+(?:the\s+)?better\b", re.IGNORECASE)
_SCORE_LINE = re.compile(r"score\W{0,4}([1-5])\b", re.IGNORECASE)
_LEADING_SCORE = re.compile(r"^\W{0,3}([1-5])(?:$|[\s/.,)])")


@dataclass(frozen=True)
class Pair:
    """Two answers to one row, to compare: `a`'s and `b`'s (contender ids; in a file of pairs, 'a' and 'b')."""

    row: int
    a: str
    b: str
    input: str
    answer_a: str
    answer_b: str
    reference: str | None = None
    passages: str | None = None


@dataclass(frozen=True)
class Answer:
    """One contender's answer to one row, to score 1-5 against the reference."""

    row: int
    contender: str
    input: str
    answer: str
    reference: str | None = None
    passages: str | None = None


def parse_verdict(reply: str) -> Side | None:
    """The verdict in a reply (its first "Verdict: X"): "a" (the answer shown first), "b" (shown second), "tie", or
    None (no verdict).

    >>> parse_verdict("B is more helpful.\\nVerdict: B"), parse_verdict("A\\n\\nA is correct.")
    ('b', 'a')
    >>> parse_verdict("A good answer asks for the account."), parse_verdict("Verdict: **Tie**")
    (None, 'tie')
    """
    # the first verdict line: the judge is asked to start with it, and a small one may go on to echo the prompt's
    # "Verdict: A", "Verdict: B" or "Verdict: tie"
    found = _VERDICT_LINE.findall(reply) or _LEADING.findall(reply.strip()) or _PHRASE.findall(reply)
    return _side(found[0]) if found else None


def parse_score(reply: str) -> int | None:
    """The 1-5 score in a reply (its first "Score: 4", or a reply that starts with the digit); None without one.

    >>> parse_score("Polite but wrong.\\nScore: 2"), parse_score("4/5"), parse_score("great")
    (2, 4, None)
    """
    found = _SCORE_LINE.findall(reply) or _LEADING_SCORE.findall(reply.strip())
    return int(found[0]) if found else None


def _side(letter: str) -> Side:
    return "tie" if letter.lower() == "tie" else "a" if letter.upper() == "A" else "b"


def folded(text: str) -> str:
    """Case and spacing folded away: two answers equal here are the same answer."""
    return " ".join(text.split()).casefold()


def _cut(text: str, limit: int, keep_end: bool = False) -> str:
    if len(text) <= limit:
        return text
    return "[...]" + text[-limit:] if keep_end else text[:limit] + "[...]"


class Judge:
    """Asks a judge model about pairs of answers (`compare`) or single answers (`score`), through the cache."""

    def __init__(
        self,
        config: JudgeConfig,
        rubric: str,
        instruction: str | None = None,
        cache: JudgeCache | None = None,
        transport=None,
    ):
        self.config, self.rubric, self.instruction = config, rubric, instruction
        self.cache = cache if cache is not None else JudgeCache()
        self.transport = transport  # an httpx transport for the endpoint (tests script one)
        self.asked = self.cached = self.unparsed = 0
        self.too_long = 0  # prompts over a local judge's context: not asked, not cached, each a reply without a verdict
        self.seconds = 0.0
        self._client: ChatClient | None = None
        self._base: BaseModel | None = None

    @property
    def remote(self) -> bool:
        return isinstance(self.config.model, RemoteModelConfig)

    def model_key(self) -> dict:
        """What identifies the judge's replies before any model loads: an endpoint's base_url and model name; a local
        model's files (a Hub id's snapshot), revision and dtype."""
        model = self.config.model
        if isinstance(model, RemoteModelConfig):
            return {"base_url": model.base_url.rstrip("/"), "name": model.name}
        from adaptlab.models.base import model_source
        from adaptlab.models.spec import spec_of

        spec = spec_of(model)
        return {"name": spec.source, "source": str(model_source(spec)), "revision": spec.revision, "dtype": spec.dtype}

    def identity(self) -> dict:
        """The judge as results record it: the model as loaded (an endpoint: base_url and name; a local model its
        ModelInfo, or its files when every reply was cached and it never loaded), the rubric and both sha256s."""
        model = self._base.info() if self._base is not None else self.model_key()
        return {
            "model": model,
            "rubric": self.rubric,
            "rubric_sha256": hashlib.sha256(self.rubric.encode("utf-8")).hexdigest(),
            "template_sha256": TEMPLATE_SHA256,
            "max_tokens": self.config.max_tokens,
        }

    def compare(self, pairs: list[Pair], progress: Progress | None = None) -> list[Verdict]:
        """A verdict per pair, each asked in both orders (identical answers: a tie, not asked)."""
        asked = [p for p in pairs if folded(p.answer_a) != folded(p.answer_b)]
        questions = [q for p in asked for q in (self._pairwise(p, True), self._pairwise(p, False))]
        replies = iter(self.replies(questions, progress))
        out = []
        for pair in pairs:
            if folded(pair.answer_a) == folded(pair.answer_b):
                out.append(_verdict(pair, None, None, identical=True))
            else:
                out.append(_verdict(pair, next(replies), next(replies)))
        self.unparsed += sum(v.unparsed for v in out)
        return out

    def score(self, answers: list[Answer], progress: Progress | None = None) -> list[Score]:
        """A 1-5 score per answer against its reference (None where the reply holds none)."""
        replies = self.replies([self._pointwise(a) for a in answers], progress)
        scores = [Score(row=a.row, contender=a.contender, score=parse_score(r)) for a, r in zip(answers, replies)]
        self.unparsed += sum(s.score is None for s in scores)
        return scores

    def _parts(self, item: Pair | Answer) -> dict:
        """The row's parts of a prompt, cut to LIMITS."""
        return {
            "instruction": _cut(self.instruction, LIMITS["instruction"]) if self.instruction else None,
            "input": _cut(item.input, LIMITS["input"], keep_end=True),
            "passages": _cut(item.passages, LIMITS["passages"]) if item.passages else None,
            "reference": _cut(item.reference, LIMITS["reference"]) if item.reference is not None else None,
        }

    def _messages(self, parts: dict, ask: str) -> list[dict]:
        user = "".join(text.format(**{k: parts[k]}) for k, text in SECTIONS.items() if parts[k] is not None)
        return [
            {"role": "system", "content": SYSTEM.format(rubric=self.rubric)},
            {"role": "user", "content": user + ask},
        ]

    def _pairwise(self, pair: Pair, a_first: bool) -> tuple[dict, list[dict]]:
        shown = [_cut(pair.answer_a, LIMITS["answer"]), _cut(pair.answer_b, LIMITS["answer"])]
        shown = shown if a_first else shown[::-1]
        parts = self._parts(pair)
        return parts | {"answers": shown, "ask": PAIRWISE}, self._messages(
            parts, PAIRWISE.format(first=shown[0], second=shown[1])
        )

    def _pointwise(self, answer: Answer) -> tuple[dict, list[dict]]:
        shown = _cut(answer.answer, LIMITS["answer"])
        parts = self._parts(answer)
        return parts | {"answers": [shown], "ask": POINTWISE}, self._messages(parts, POINTWISE.format(answer=shown))

    def replies(self, questions: list[tuple[dict, list[dict]]], progress: Progress | None = None) -> list[str]:
        """The raw reply to each (question, messages): cached ones from the cache, the rest asked CHUNK at a time and
        cached as each chunk returns."""
        clock = time.perf_counter()
        who = self.model_key()
        common = {"rubric": self.rubric, "template_sha256": TEMPLATE_SHA256, "max_tokens": self.config.max_tokens}
        keys = [cache_key(who, common | q) for q, _ in questions]
        known = self.cache.get(keys)
        todo = {k: m for k, (_, m) in zip(keys, questions) if k not in known}  # one request per distinct question
        self.cached += len(set(keys)) - len(todo)
        if progress and len(keys) > len(todo):  # cached ones, and a question met twice (asked once)
            progress(len(keys) - len(todo))
        pending = list(todo.items())
        for start in range(0, len(pending), CHUNK):
            chunk = pending[start : start + CHUNK]
            texts = self._ask([m for _, m in chunk], progress)
            got = {k: t for (k, _), t in zip(chunk, texts) if t is not None}
            self.cache.put(got, who)
            known.update({k: t if t is not None else "" for (k, _), t in zip(chunk, texts)})
            self.asked += len(got)
            self.too_long += len(chunk) - len(got)
        self.seconds += time.perf_counter() - clock
        return [known[k] for k in keys]

    def _ask(self, conversations: list[list[dict]], progress: Progress | None) -> list[str | None]:
        """Replies from the model itself (None: a prompt over a local model's context, not asked)."""
        if self.remote:
            if self._client is None:
                from adaptlab.remote.client import ChatClient

                assert isinstance(self.config.model, RemoteModelConfig)
                self._client = ChatClient(self.config.model, transport=self.transport)
            return [r.text for r in self._client.chat_many(conversations, self.config.max_tokens, STOP, progress)]
        return self._generate(conversations, progress)

    def _generate(self, conversations: list[list[dict]], progress: Progress | None) -> list[str | None]:
        """The local judge's greedy replies, batched by the engine; a prompt that does not fit its context is left
        unasked."""
        from adaptlab.engine.generate import generate
        from adaptlab.engine.lm_solver import encode_chat
        from adaptlab.models import load_base_model

        if self._base is None:
            self._base = load_base_model(self.config.model)
        base = self._base
        prompts = [encode_chat(base.tokenizer, m) for m in conversations]
        fits = [i for i, p in enumerate(prompts) if len(p) + self.config.max_tokens <= base.context_length]
        answers = generate(
            base.model,
            base.tokenizer,
            [prompts[i] for i in fits],
            base.eot_id,
            base.device,
            self.config.max_tokens,
            progress=progress,
            stop=tuple(STOP),
        )
        out: list[str | None] = [None] * len(prompts)
        for i, answer in zip(fits, answers):
            out[i] = answer.text
        if progress and len(fits) < len(prompts):
            progress(len(prompts) - len(fits))
        return out

    def close(self) -> None:
        """Close the endpoint's connections and free the local model."""
        if self._client is not None:
            self._client.close()
            self._client = None
        self._base = None


def _verdict(pair: Pair, first_reply: str | None, second_reply: str | None, identical: bool = False) -> Verdict:
    """Both orders' replies as one verdict: `first_reply` with a's answer shown first, `second_reply` with b's."""
    la, lb = len(pair.answer_a.strip()), len(pair.answer_b.strip())
    longer = "a" if la > lb else "b" if lb > la else None
    if identical:
        return Verdict(
            row=pair.row,
            a=pair.a,
            b=pair.b,
            preference="tie",
            first="tie",
            second="tie",
            consistent=True,
            longer=longer,
            identical=True,
        )
    one, two = parse_verdict(first_reply or ""), parse_verdict(second_reply or "")
    first: Side = one or "tie"
    second: Side = SWAPPED[two] if two else "tie"  # b was shown first: its "A" is b
    return Verdict(
        row=pair.row,
        a=pair.a,
        b=pair.b,
        preference=first if first == second else "tie",
        first=first,
        second=second,
        consistent=first == second and one is not None and two is not None,
        longer=longer,
        unparsed=(one is None) + (two is None),
    )
