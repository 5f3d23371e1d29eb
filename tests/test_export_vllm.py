"""`adaptlab export --format vllm`: serve.sh's arguments, adapters that PEFT loads to the registered versions' scores,
client.py's prompts, label scores and generated answers through a stand-in of vLLM's HTTP API, and refusals that name
the version."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import threading
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path

import numpy as np
import pytest
from conftest import CARD_ROWS, cards_experiment
from typer.testing import CliRunner

from adaptlab.cli import app
from adaptlab.errors import ConfigError
from adaptlab.serve.vllm import ADAPTER_FILES, export_vllm

QUERIES = [
    "my card never came",
    "card was stolen",
    "the ATM kept it",
    "where's my card",
    "lost card",
    "ATM ate the card",
]
STUB_VLLM = '#!/bin/sh\nprintf \'%s\\n\' "$@" > "$VLLM_ARGV"\n'  # the stand-in `vllm`: one argument per line


@pytest.fixture
def registered(tmp_path, tiny_model_dir) -> dict:
    """compare on the tiny model: zero_shot, few_shot (random, k=2), lora (r=8) and lora_r12 (r=12), all registered."""
    from adaptlab.registry import default_registry
    from adaptlab.runs.compare import run_compare

    cards_experiment(
        tmp_path,
        tiny_model_dir,
        CARD_ROWS,
        [(q, o) for q, (_, o) in zip(QUERIES[:3], CARD_ROWS[::4])],
        """  - name: zero_shot
  - {name: few_shot, k: 2, selector: random}
  - {name: lora, epochs: 4, batch_size: 4, learning_rate: 0.05, bf16: false}
  - {name: lora, id: lora_r12, r: 12, epochs: 4, batch_size: 4, learning_rate: 0.05, bf16: false}
""",
    )
    run_compare(tmp_path / "experiment.yaml", tmp_path / "run")
    return {v.contender: v for v in default_registry().versions("cards")}


def run_serve_sh(out: Path, tmp_path: Path, *args: str, **env) -> list[str]:
    """serve.sh run with a stand-in `vllm` first on PATH; the arguments vllm was given."""
    stub = tmp_path / "stub-bin"
    stub.mkdir(exist_ok=True)
    (stub / "vllm").write_text(STUB_VLLM)
    (stub / "vllm").chmod(0o755)
    argv = tmp_path / "vllm-argv.txt"
    environment = {**os.environ, "PATH": f"{stub}{os.pathsep}{os.environ['PATH']}", "VLLM_ARGV": str(argv), **env}
    done = subprocess.run(
        ["sh", str(out / "serve.sh"), *args], env=environment, capture_output=True, text=True, timeout=30
    )
    assert done.returncode == 0, done.stderr
    return argv.read_text().splitlines()


class FakeVllm(BaseHTTPRequestHandler):
    """vLLM's /tokenize, /v1/completions with prompt_logprobs and greedy /v1/chat/completions, on the base model and
    the LoRA modules serve.sh names (each loaded with PEFT from the exported folder): what client.py calls."""

    tokenizer = model = served = None

    def do_POST(self):  # noqa: N802 (http.server's name)
        import torch

        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        if self.path == "/tokenize" and "messages" in body:
            text = self.tokenizer.apply_chat_template(
                body["messages"], tokenize=False, add_generation_prompt=body["add_generation_prompt"]
            )
            reply = {"tokens": self.tokenizer(text, add_special_tokens=body["add_special_tokens"])["input_ids"]}
        elif self.path == "/tokenize":
            reply = {
                "tokens": self.tokenizer(body["prompt"], add_special_tokens=body["add_special_tokens"])["input_ids"]
            }
        elif self.path == "/v1/completions":
            ids = body["prompt"]
            with torch.no_grad(), self._adapter(body["model"]):
                logprobs = torch.log_softmax(self.model(torch.tensor([ids])).logits[0].float(), dim=-1)
            steps = [None] + [
                {str(ids[i]): {"logprob": float(logprobs[i - 1, ids[i]]), "rank": None}} for i in range(1, len(ids))
            ]
            reply = {"choices": [{"index": 0, "text": "", "prompt_logprobs": steps}]}
        elif self.path == "/v1/chat/completions":
            ids = self.tokenizer(
                self.tokenizer.apply_chat_template(body["messages"], tokenize=False, add_generation_prompt=True),
                add_special_tokens=False,
            )["input_ids"]
            answer = []
            with torch.no_grad(), self._adapter(body["model"]):
                while len(answer) < body["max_tokens"]:
                    token = int(self.model(torch.tensor([ids + answer])).logits[0, -1].argmax())
                    if token == self.tokenizer.convert_tokens_to_ids("<|im_end|>"):
                        break
                    answer.append(token)
            text = self.tokenizer.decode(answer, skip_special_tokens=True)
            cut = min([text.find(stop) for stop in body.get("stop") or [] if stop in text], default=len(text))
            reply = {
                "choices": [
                    {"index": 0, "message": {"role": "assistant", "content": text[:cut]}, "finish_reason": "length"}
                ]
            }
        else:
            self.send_error(404)
            return
        data = json.dumps(reply).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    @contextmanager
    def _adapter(self, name: str):
        if not hasattr(self.model, "disable_adapter"):  # no LoRA modules: the plain base model
            yield
        elif name == self.served:
            with self.model.disable_adapter():
                yield
        else:
            self.model.set_adapter(name)
            yield

    def log_message(self, *args):
        pass


@contextmanager
def fake_vllm(argv: list[str]):
    """A FakeVllm for the arguments serve.sh gave vllm, on a free loopback port; yields its URL."""
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    base = argv[1]
    modules = (
        [m.split("=", 1) for m in argv[argv.index("--lora-modules") + 1 : argv.index("--max-lora-rank")]]
        if "--lora-modules" in argv
        else []
    )
    model = AutoModelForCausalLM.from_pretrained(base, dtype=torch.float32).eval()
    for name, path in modules:
        if isinstance(model, PeftModel):
            model.load_adapter(path, adapter_name=name)
        else:
            model = PeftModel.from_pretrained(model, path, adapter_name=name)
    handler = type(
        "Handler",
        (FakeVllm,),
        {
            "tokenizer": AutoTokenizer.from_pretrained(base),
            "model": model.eval(),
            "served": argv[argv.index("--served-model-name") + 1],
        },
    )
    server = HTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        thread.join(timeout=10)


def load_client(out: Path):
    """The exported client.py, imported from OUT."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("exported_client", out / "client.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_export_serve_sh_adapters_and_client_answer_as_the_registered_versions(registered, tmp_path, tiny_model_dir):
    from adaptlab import kinds
    from adaptlab.engine.lm_solver import _adapter
    from adaptlab.engine.prompt import build_messages
    from adaptlab.kinds.context import LocalModels

    lora, lora12, zero, few = (registered[k] for k in ("lora", "lora_r12", "zero_shot", "few_shot"))
    out = tmp_path / "vllm"
    result = CliRunner().invoke(
        app, ["export", lora.ref, lora12.ref, zero.ref, few.ref, "--out", str(out), "--format", "vllm"]
    )
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in out.iterdir()) == [
        "README.txt",
        "adapters",
        "client.py",
        "prompts.json",
        "serve.sh",
    ]  # no base/: a HF folder is named

    argv = run_serve_sh(out, tmp_path, "--port", "8123")
    here = str(out.resolve())
    assert argv == [
        "serve",
        str(Path(tiny_model_dir).resolve()),
        "--served-model-name",
        Path(tiny_model_dir).name,
        "--enable-lora",
        "--lora-modules",
        f"{lora.ref}={here}/adapters/cards-v{lora.version}",
        f"{lora12.ref}={here}/adapters/cards-v{lora12.version}",
        "--max-lora-rank",
        "16",
        "--max-loras",
        "2",  # ranks 8 and 12: vLLM takes 8, 16, 32, ..., so 12 needs 16
        "--port",
        "8123",
    ]
    assert run_serve_sh(out, tmp_path, ADAPTLAB_VLLM_BASE="/models/elsewhere")[1] == "/models/elsewhere"
    for version in (lora, lora12):
        folder = out / "adapters" / f"cards-v{version.version}"
        assert sorted(p.name for p in folder.iterdir()) == sorted(ADAPTER_FILES)
        assert all((folder / n).read_bytes() == (version.folder / n).read_bytes() for n in ADAPTER_FILES)

    prompts = json.loads((out / "prompts.json").read_text())
    assert prompts["versions"][few.ref]["model"] == prompts["versions"][zero.ref]["model"] == Path(tiny_model_dir).name
    assert prompts["versions"][lora.ref]["model"] == lora.ref and len(prompts["versions"][few.ref]["shots"]) == 2

    models = LocalModels(device="cpu")
    solvers = {v.ref: kinds.kind(v.strategy).load(v.folder, models) for v in (lora, lora12, zero, few)}
    client_module = load_client(out)
    with fake_vllm(argv) as url:
        client = client_module.Client(url)
        for ref, solver in solvers.items():
            shots = solver.shots.select(QUERIES) if solver.shots else [[] for _ in QUERIES]
            assert [client.messages(ref, q) for q in QUERIES] == [
                build_messages(solver.task, s, q) for s, q in zip(shots, QUERIES)
            ]
            with _adapter(solver.base, solver.adapter):  # fp32 label scores, as the registered version answers
                expected = solver._scores(solver.prompts(QUERIES)[0], None)[0]
            got = np.array([[client.label_scores(ref, q)[label] for label in solver.task.labels] for q in QUERIES])
            assert np.abs(got - expected).max() < 1e-3, ref
            assert [client.answer(ref, q) for q in QUERIES] == [p.output for p in solver.predict(QUERIES)]
        lora_scores = np.array([list(client.label_scores(lora.ref, q).values()) for q in QUERIES])
        zero_scores = np.array([list(client.label_scores(zero.ref, q).values()) for q in QUERIES])
        assert np.abs(lora_scores - zero_scores).max() > 0.01  # the adapter is on: the test could tell a missing one
        cli = subprocess.run(
            [sys.executable, str(out / "client.py"), "--url", url, lora.ref, QUERIES[0], QUERIES[1]],
            capture_output=True,
            text=True,
            timeout=60,
            env={**os.environ, "PYTHONPATH": ""},
        )
        assert cli.returncode == 0, cli.stderr
        assert cli.stdout.splitlines() == [p.output for p in solvers[lora.ref].predict(QUERIES[:2])]


def test_export_refuses_versions_vllm_cannot_serve_naming_each_and_writes_nothing(tmp_path, tiny_model_dir):
    from adaptlab.registry import default_registry

    registry = default_registry()
    task = {"name": "cards", "instruction": "Route the message.", "kind": "classify", "labels": ["a", "b"]}

    def add(strategy: str, **info) -> str:
        folder = tmp_path / f"solver-{len(list(tmp_path.glob('solver-*')))}"
        folder.mkdir()
        (folder / "solver.json").write_text(json.dumps({"task": task, "strategy": strategy, **info}))
        return registry.add_version("cards", strategy, folder, {}).ref

    zero = add("zero_shot", base_model=str(tiny_model_dir))
    classifier = add("embed_classifier")
    rag = add("rag", base_model=str(tiny_model_dir), retrieval={"k": 4, "retriever": "bm25"})
    remote = add("zero_shot", base_model={"base_url": "http://127.0.0.1:9/v1", "model": "gpt-x"}, endpoint={})
    other_base = add("zero_shot", base_model="/models/another", other=1)
    out = tmp_path / "out"

    with pytest.raises(ConfigError) as refused:
        export_vllm([zero, classifier, rag, remote], out)
    message = str(refused.value)
    assert f"{classifier} is a embed_classifier version: it runs no language model" in message
    assert f"{rag} is a rag version: it retrieves passages" in message
    assert f"{remote} was fitted on the endpoint http://127.0.0.1:9/v1" in message
    assert zero not in message  # the servable one is not blamed
    with pytest.raises(
        ConfigError,
        match="one vLLM server serves one base model.*export each base model's versions to a folder of its own",
    ):
        export_vllm([zero, other_base], out)
    # the runner does not go through main(), which prints these and exits with their code
    result = CliRunner().invoke(app, ["export", "cards@v99", "--out", str(out), "--format", "vllm"])
    assert "no version cards@v99; `adaptlab registry list` shows what there is" in str(result.exception)
    result = CliRunner().invoke(app, ["export", "a", "b", "--out", str(out), "--format", "peft"])
    assert isinstance(result.exception, ConfigError) and "exports one run folder, got 2" in str(result.exception)
    assert not out.exists()


def test_a_gguf_base_is_exported_as_the_safetensors_folder_adaptlab_converted_it_to(tmp_path, tiny_model_dir):
    """The embedded SmolLM2 is a GGUF, which vLLM is not given: OUT/base holds the converted folder, and serve.sh names
    it."""

    from adaptlab.models.base import weights_digest
    from adaptlab.models.embedded import gguf_cache_folder
    from adaptlab.registry import default_registry

    gguf = tmp_path / "tiny.gguf"
    gguf.write_bytes(b"GGUF")  # never read: its conversion is already in the cache, as after a first run
    shutil.copytree(tiny_model_dir, gguf_cache_folder(gguf))
    solver = tmp_path / "solver"
    solver.mkdir()
    task = {"name": "cards", "instruction": "Route the message.", "kind": "classify", "labels": ["a", "b"]}
    (solver / "solver.json").write_text(
        json.dumps(
            {
                "task": task,
                "strategy": "zero_shot",
                "base_model": str(gguf),
                "base_sha256": weights_digest(str(gguf))["weights_sha256"],
            }
        )
    )
    ref = default_registry().add_version("cards", "zero_shot", solver, {}).ref
    out = tmp_path / "out"
    result = export_vllm([ref], out)
    assert result.prompted == [ref] and result.adapters == []
    assert sorted(p.name for p in (out / "base").iterdir()) == sorted(p.name for p in Path(tiny_model_dir).iterdir())
    argv = run_serve_sh(out, tmp_path)
    assert argv == ["serve", f"{out.resolve()}/base", "--served-model-name", "tiny.gguf"]  # no adapters: no LoRA flags
    assert (
        "base/ holds the base model (tiny.gguf, converted from GGUF to safetensors)" in (out / "README.txt").read_text()
    )


def test_shots_chosen_per_query_travel_as_the_pool_and_client_py_picks_them_with_adaptlab(
    tmp_path, tiny_model_dir, hash_embedder, monkeypatch
):
    from adaptlab.data import Example
    from adaptlab.engine.prompt import build_messages
    from adaptlab.icl.selectors import SimilarSelector
    from adaptlab.registry import default_registry
    from adaptlab.task import Task

    task = Task("cards", "Route the message.", "classify", ("card_arrival", "card_swallowed", "lost_or_stolen_card"))
    pool = [Example(i, o, n) for n, (i, o) in enumerate(CARD_ROWS, start=1)]
    solver = tmp_path / "solver"
    solver.mkdir()
    selection = {"k": 3, "selector": "similar", "seed": 0, "lines": None, "exact_k": False}
    (solver / "solver.json").write_text(
        json.dumps(
            {"task": task.to_dict(), "strategy": "few_shot", "base_model": str(tiny_model_dir), "selection": selection}
        )
    )
    (solver / "pool.json").write_text(
        json.dumps(
            {
                "source": "train.jsonl",
                "examples": [{"input": e.input, "output": e.output, "line": e.line} for e in pool],
            }
        )
    )
    ref = default_registry().add_version("cards", "few_shot", solver, {}).ref
    result = export_vllm([ref], tmp_path / "out")
    assert result.notes == [
        f"{ref} picks its 3 shots per query by embedding similarity (selector 'similar'): client.py "
        "needs adaptlab and its embedder installed to choose them"
    ]
    entry = json.loads((tmp_path / "out" / "prompts.json").read_text())["versions"][ref]
    assert entry["shots"] is None and len(entry["pool"]) == len(CARD_ROWS)
    monkeypatch.setattr("adaptlab.models.embedder.default_embedder", lambda: hash_embedder)
    client = load_client(tmp_path / "out").Client()
    selector = SimilarSelector(pool, 3, hash_embedder)
    for query in QUERIES:
        assert client.messages(ref, query) == build_messages(task, selector.select([query])[0], query)

    # k 0 (a tuner may choose it) is the zero-shot prompt whatever the selector: no pool, no embedder beside client.py
    (solver / "solver.json").write_text(
        json.dumps(
            {
                "task": task.to_dict(),
                "strategy": "few_shot",
                "base_model": str(tiny_model_dir),
                "selection": selection | {"k": 0},
            }
        )
    )
    ref = default_registry().add_version("cards", "few_shot", solver, {}).ref
    result = export_vllm([ref], tmp_path / "out-k0")
    entry = json.loads((tmp_path / "out-k0" / "prompts.json").read_text())["versions"][ref]
    assert result.notes == [] and entry["shots"] == [] and "pool" not in entry


def test_a_generate_version_is_asked_with_its_answer_limit_and_stop_strings(tmp_path, tiny_model_dir, chatty_model):
    """client.py's generate path: a greedy chat completion, max_tokens and stop from the task, as the registered version
    answers."""
    from adaptlab import kinds
    from adaptlab.kinds.context import LocalModels
    from adaptlab.registry import default_registry
    from adaptlab.task import Task

    chatty = tmp_path / "chatty"  # weights N(0, 1): answers that differ by prompt
    shutil.copytree(tiny_model_dir, chatty)
    chatty_model.save_pretrained(chatty)
    task = Task("notes", "Write a note.", "generate", max_new_tokens=9, stop=("jumps",))
    solver = tmp_path / "solver"
    solver.mkdir()
    (solver / "solver.json").write_text(
        json.dumps({"task": task.to_dict(), "strategy": "zero_shot", "base_model": str(chatty)})
    )
    version = default_registry().add_version("notes", "zero_shot", solver, {})
    out = tmp_path / "out"
    export_vllm([version.ref], out)
    expected = [
        p.output for p in kinds.kind("zero_shot").load(version.folder, LocalModels(device="cpu")).predict(QUERIES)
    ]
    assert len(set(expected)) > 1 and not any(
        "jumps" in e for e in expected
    )  # they depend on the prompt, and the stop string cut them
    with fake_vllm(run_serve_sh(out, tmp_path)) as url:
        client = load_client(out).Client(url)
        assert [client.answer(version.ref, q) for q in QUERIES] == expected


def test_a_kind_declared_here_is_exported_by_what_it_declares(tmp_path, tiny_model_dir):
    """Export asks the kind: its `export_shots` hook gives the shots prompts.json carries, and a kind that
    `reads_documents` is refused, whatever its solver.json holds (no "retrieval" key here)."""
    from adaptlab import kinds
    from adaptlab.config import StrategyConfig
    from adaptlab.kinds import ExportedShots, Kind
    from adaptlab.registry import default_registry

    task = {
        "name": "cards",
        "instruction": "Route the message.",
        "kind": "classify",
        "labels": ["card_arrival", "lost_or_stolen_card"],
    }
    pinned = [{"input": "my card never came", "output": "card_arrival"}]

    def declared(name: str, **traits) -> Kind:
        return Kind(
            name,
            "prompted",
            StrategyConfig,
            build=lambda config, ctx: None,
            load=lambda folder, ctx: None,
            tier=2,
            **traits,
        )

    def add(strategy: str) -> str:
        folder = tmp_path / f"solver-{strategy}"
        folder.mkdir()
        (folder / "solver.json").write_text(
            json.dumps({"task": task, "strategy": strategy, "base_model": str(tiny_model_dir), "pin": 1})
        )
        return default_registry().add_version("cards", strategy, folder, {}).ref

    kinds.register(
        declared(
            "pinned_shots",
            export_shots=lambda folder, info: ExportedShots(
                pinned * info["pin"], {"pinned": True}, "carries one pinned shot"
            ),
        )
    )
    kinds.register(declared("reads_wiki", reads_documents=True))
    try:
        shots, wiki = add("pinned_shots"), add("reads_wiki")
        with pytest.raises(ConfigError, match=f"{wiki} is a reads_wiki version: it retrieves passages"):
            export_vllm([shots, wiki], tmp_path / "refused")
        result = export_vllm([shots], tmp_path / "out")
        entry = json.loads((tmp_path / "out" / "prompts.json").read_text())["versions"][shots]
        assert (
            entry["shots"] == pinned
            and entry["pinned"] is True
            and result.notes == [f"{shots} carries one pinned shot"]
        )
        assert load_client(tmp_path / "out").Client().messages(shots, "lost card")[1:] == [
            {"role": "user", "content": "my card never came"},
            {"role": "assistant", "content": "card_arrival"},
            {"role": "user", "content": "lost card"},
        ]
    finally:
        kinds.unregister("pinned_shots")
        kinds.unregister("reads_wiki")


@pytest.mark.parametrize("kind", ["generate", "classify"])
def test_client_py_sends_a_conversation_as_adaptlab_does(tmp_path, tiny_model_dir, kind):
    """A conversation's turns (its system message after the task's), or on a classify task the whole conversation as one
    text."""
    from adaptlab.data.conversation import History, Turn
    from adaptlab.engine.prompt import build_messages
    from adaptlab.registry import default_registry
    from adaptlab.task import Task

    task = (
        Task("bank", "Help the customer.", "generate")
        if kind == "generate"
        else Task("cards", "Route the message.", "classify", ("card_arrival", "lost_or_stolen_card"))
    )
    folder = tmp_path / "solver"
    folder.mkdir()
    (folder / "solver.json").write_text(
        json.dumps({"task": task.to_dict(), "strategy": "zero_shot", "base_model": str(tiny_model_dir)})
    )
    ref = default_registry().add_version(task.name, "zero_shot", folder, {}).ref
    export_vllm([ref], tmp_path / "out")
    client = load_client(tmp_path / "out").Client()
    turns = [
        ("system", "Be brief."),
        ("user", "Hi, my card"),
        ("assistant", "Which card?"),
        ("user", "the blue one, it never came"),
    ]
    sent = client.messages(ref, [{"role": r, "content": c} for r, c in turns])
    assert sent == build_messages(task, [], History(tuple(Turn(r, c) for r, c in turns)))
    assert sent[0]["content"].endswith("\n\nBe brief.") and len(sent) == (4 if kind == "generate" else 2)
    for single in (
        [("user", "lost card")],
        [("system", "Be brief."), ("user", "lost card")],
    ):  # no assistant turn: a single question, as adaptlab's server reads it
        assert (
            client.messages(ref, [{"role": r, "content": c} for r, c in single])
            == build_messages(task, [], "lost card")
            == client.messages(ref, "lost card")
        )
    with pytest.raises(SystemExit, match="ending on the user's turn"):
        client.messages(ref, [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello"}])
