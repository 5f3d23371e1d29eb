"""Ask the versions of an `adaptlab export --format vllm` folder, served by its serve.sh (Python 3.9+, stdlib only).

Copied into the export as client.py, beside prompts.json:

    python client.py cards@v5 "my card never came"        # one answer
    python client.py cards@v5 < queries.txt                # one query per line, one answer per line
    python client.py --list                                # the versions, and the model each one calls
    python client.py --url http://gpu-box:8000 cards@v4 "where is my card"
    python client.py --chat bank@v2 < chats.jsonl          # one conversation per line: {"messages": [...]}

or from Python: `Client("http://localhost:8000").answer("cards@v5", "my card never came")`; a
conversation is a list of {"role", "content"} turns ending on the user's, answered as adaptlab's
own server answers it: `client.answer("bank@v2", [{"role": "user", "content": "Hi"}, ...])`.

Each version's prompt is built as adaptlab builds it: the system turn (instruction, and
for classify tasks the label set; a conversation's own system message after them), the
shots as user/assistant turns, then the query (a conversation: its turns; a classify task
reads a conversation whole, as one text, as adaptlab does). Shots from a pool of
conversations are chosen and sent as their text (the turns written out), not as turns.
Classify tasks are answered as adaptlab answers them: every label is scored by the
summed log-probability of its tokens and the end-of-turn token (vLLM's /tokenize and
`prompt_logprobs`), and the best label wins. Generate and qa tasks get a greedy chat
completion with the task's answer limit and stop strings. An API key, if the server
was started with one, comes from VLLM_API_KEY or OPENAI_API_KEY.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import urllib.error
import urllib.request
from pathlib import Path

HERE = Path(__file__).resolve().parent
RECENT_TURNS = 6  # a conversation's shots are chosen by its last turns written out (adaptlab's History)
SPEAKERS = {"user": "User", "assistant": "Assistant"}


def conversation(query) -> str | list[dict]:
    """`query` as adaptlab's server reads a chat: a text stays a text, and so do turns without an assistant turn
    before the last user turn (its text alone is the question); others are the conversation's turns."""
    if isinstance(query, str):
        return query
    turns = [{"role": t["role"], "content": t["content"]} for t in query]
    roles = [t["role"] for t in turns]
    if (
        not turns
        or roles[-1] != "user"
        or any(r not in ("system", "user", "assistant") for r in roles)
        or "system" in roles[1:]
    ):
        raise SystemExit(
            "a conversation is user and assistant turns (one system turn first, if any) ending on "
            f"the user's turn to answer; got roles {roles}"
        )
    return turns if "assistant" in roles else turns[-1]["content"]


def written_out(turns: list[dict]) -> str:
    """Turns as adaptlab writes a conversation as text: one `Speaker: text` line each."""
    return "\n".join(f"{SPEAKERS[t['role']]}: {t['content']}" for t in turns)


class Client:
    """The exported versions (prompts.json), asked over vLLM's HTTP API."""

    def __init__(
        self,
        url: str = "http://localhost:8000",
        prompts: Path = HERE / "prompts.json",
        api_key: str | None = None,
        timeout: float = 120,
    ):
        self.url = url.rstrip("/")
        if self.url.endswith("/v1"):
            self.url = self.url[: -len("/v1")]
        data = json.loads(Path(prompts).read_text(encoding="utf-8"))
        self.base, self.versions, self.aliases = data["base"], data["versions"], data.get("aliases", {})
        self.api_key = api_key or os.environ.get("VLLM_API_KEY") or os.environ.get("OPENAI_API_KEY")
        self.timeout = timeout
        self._selectors: dict = {}

    def version(self, name: str) -> dict:
        """The prompts.json entry of version `name` (task@vN, or the task name it was exported as)."""
        name = self.aliases.get(name, name)
        if name not in self.versions:
            raise SystemExit(f"version {name!r} is not in this export; it has: {', '.join(self.versions)}")
        return self.versions[name]

    def messages(self, name: str, query) -> list[dict]:
        """The chat messages adaptlab sends for `query` (a text, or a conversation's turns): system turn, shots as
        user/assistant turns, the query."""
        entry = self.version(name)
        query = conversation(query)
        turns = [{"role": "user", "content": query}] if isinstance(query, str) else query
        system = entry["system"] + "".join(f"\n\n{t['content']}" for t in turns if t["role"] == "system")
        spoken = [t for t in turns if t["role"] != "system"]
        messages = [{"role": "system", "content": system}]
        asked = (
            query if isinstance(query, str) else written_out(spoken[-RECENT_TURNS:])
        )  # what similarity reads, as adaptlab's History
        for shot in self._shots(name, entry, asked):
            messages += [{"role": "user", "content": shot["input"]}, {"role": "assistant", "content": shot["output"]}]
        if entry["task"].get("labels") and len(spoken) > 1:  # a labelled conversation is classified as one text
            return messages + [{"role": "user", "content": written_out(spoken)}]
        return messages + spoken

    def answer(self, name: str, query) -> str:
        """The version's answer: the best-scored label (classify), or the greedy completion (generate, qa)."""
        entry = self.version(name)
        if entry["task"].get("labels"):  # a label set: the labels are scored, not generated
            scores = self.label_scores(name, query)
            return max(entry["task"]["labels"], key=lambda label: scores[label])  # ties: the first label, as adaptlab
        body = {
            "model": entry["model"],
            "messages": self.messages(name, query),
            "temperature": 0,
            "max_tokens": entry["task"].get("max_new_tokens", 128),
        }
        ends = entry["task"].get("ends") or []
        if (
            entry["task"].get("stop") or ends
        ):  # an end string stops the answer too, and is kept (vLLM drops what stops it)
            body["stop"] = list(entry["task"].get("stop") or []) + list(ends)
        reply = self._post("/v1/chat/completions", body)
        text = reply["choices"][0]["message"]["content"] or ""
        if ends and reply["choices"][0].get("stop_reason") in ends:
            text += reply["choices"][0]["stop_reason"]
        return text.strip()

    def label_scores(self, name: str, query) -> dict[str, float]:
        """Each label's summed log-probability, end of turn included, after the version's prompt for `query`."""
        entry = self.version(name)
        served = self.base["served_name"]
        prompt = self._post(
            "/tokenize",
            {
                "model": served,
                "messages": self.messages(name, query),
                "add_generation_prompt": True,
                "add_special_tokens": False,
            },
        )["tokens"]
        scores = {}
        for label in entry["task"]["labels"]:
            answer = self._post("/tokenize", {"model": served, "prompt": label, "add_special_tokens": False})[
                "tokens"
            ] + [self.base["end_of_turn_id"]]
            reply = self._post(
                "/v1/completions",
                {
                    "model": entry["model"],
                    "prompt": prompt + answer,
                    "max_tokens": 1,
                    "temperature": 0,
                    "prompt_logprobs": 0,
                },
            )
            steps = reply["choices"][0]["prompt_logprobs"][len(prompt) :]
            scores[label] = sum(step[str(token)]["logprob"] for step, token in zip(steps, answer))
        return scores

    def _shots(self, name: str, entry: dict, query: str) -> list[dict]:
        if entry.get("shots") is not None:
            return entry["shots"]
        if name not in self._selectors:  # shots chosen per query: adaptlab's own selector and embedder pick them
            selection = entry["selection"]
            try:
                from adaptlab.data import Example
                from adaptlab.icl.selectors import EMBEDDING_SELECTORS
                from adaptlab.models.embedder import default_embedder
            except ImportError:
                raise SystemExit(
                    f"{name} picks its shots per query by embedding similarity (selector {selection['selector']!r}); "
                    "install adaptlab and its embedder on this machine (docs/getting-started.md) to choose them"
                ) from None
            pool = [Example(e["input"], e["output"], e["line"]) for e in entry["pool"]]
            self._selectors[name] = EMBEDDING_SELECTORS[selection["selector"]](pool, selection["k"], default_embedder())
        return [{"input": e.input, "output": e.output} for e in self._selectors[name].select([query])[0]]

    def _post(self, path: str, body: dict) -> dict:
        headers = {"Content-Type": "application/json"}
        if self.api_key:
            headers["Authorization"] = f"Bearer {self.api_key}"
        request = urllib.request.Request(self.url + path, json.dumps(body).encode(), headers)
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                return json.loads(response.read())
        except urllib.error.HTTPError as exc:
            raise SystemExit(
                f"{self.url}{path} answered {exc.code}: {exc.read().decode(errors='replace')[:500]}"
            ) from None
        except urllib.error.URLError as exc:
            raise SystemExit(
                f"cannot reach the vLLM server at {self.url} ({exc.reason}); start it with `sh serve.sh`, or pass --url"
            ) from None


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Ask a version exported for vLLM.")
    parser.add_argument("version", nargs="?", help="task@vN (see --list)")
    parser.add_argument("queries", nargs="*", help="queries; none: one per line from stdin")
    parser.add_argument(
        "--url",
        default=os.environ.get("ADAPTLAB_VLLM_URL", "http://localhost:8000"),
        help="the vLLM server (default: $ADAPTLAB_VLLM_URL or http://localhost:8000)",
    )
    parser.add_argument("--list", action="store_true", help="list the versions and the model name each one calls")
    parser.add_argument(
        "--chat",
        action="store_true",
        help='each query (argument or stdin line) is a conversation as JSON: {"messages": [...]} or a list of turns',
    )
    args = parser.parse_args(argv)
    client = Client(args.url)
    if args.list or not args.version:
        for name, entry in client.versions.items():
            print(f"{name}\t{entry['kind']}\t{entry['task']['kind']}\tmodel={entry['model']}")
        return
    for query in args.queries or (line.rstrip("\n") for line in sys.stdin):
        if args.chat:
            read = json.loads(query)
            query = read["messages"] if isinstance(read, dict) else read
        print(json.dumps(client.answer(args.version, query)) if args.chat else client.answer(args.version, query))


if __name__ == "__main__":
    main()
