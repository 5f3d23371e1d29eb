"""Shared fixtures: a tiny random llama model with a real chat template, built in seconds."""

from __future__ import annotations

import json
import os
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")

CHAT_TEMPLATE = (
    "{% for message in messages %}"
    "{{ '<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)
CORPUS = [
    "my card has not arrived yet",
    "where is my new card",
    "I lost my card",
    "someone stole my card",
    "the ATM swallowed my card",
    "my card does not work",
    "card_arrival lost_or_stolen_card card_swallowed",
    "positive negative neutral",
    "the quick brown fox jumps over the lazy dog",
    "Answer with exactly one label from:",
]


@pytest.fixture(autouse=True)
def _home(tmp_path, monkeypatch):
    """Every test gets its own ADAPTLAB_HOME."""
    monkeypatch.setenv("ADAPTLAB_HOME", str(tmp_path / "home"))


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory) -> Path:
    """A 2-layer, hidden-16 llama with a byte-level BPE tokenizer and a ChatML template, saved as a HF folder."""
    import torch
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    folder = tmp_path_factory.mktemp("tiny-model")
    bpe = Tokenizer(models.BPE())
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    bpe.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=400,
        special_tokens=["<|endoftext|>", "<|im_start|>", "<|im_end|>"],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
    )
    bpe.train_from_iterator(CORPUS * 5, trainer)
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=bpe,
        bos_token="<|endoftext|>",
        eos_token="<|im_end|>",
        pad_token="<|im_end|>",
        unk_token="<|endoftext|>",
    )
    tokenizer.chat_template = CHAT_TEMPLATE
    torch.manual_seed(0)
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=16,
        intermediate_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        num_key_value_heads=1,
        max_position_embeddings=512,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        tie_word_embeddings=True,
    )
    LlamaForCausalLM(config).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


@pytest.fixture
def tiny_base(tiny_model_dir):
    """A freshly loaded tiny BaseModel (LoRA fits mutate it, so each test gets its own)."""
    from adaptlab.models import load_base_model

    return load_base_model(str(tiny_model_dir), device="cpu")


@pytest.fixture
def chatty_model(tiny_base):
    """The tiny model with weights drawn N(0, 1): its greedy answers differ by prompt and vary token to token
    (the fixture's own weights answer every prompt with one repeated token)."""
    import copy

    import torch

    model = copy.deepcopy(tiny_base.model)
    torch.manual_seed(0)
    with torch.no_grad():
        for p in model.parameters():
            p.normal_(0, 1.0)
    return model


class HashEmbedder:
    """A deterministic stand-in for the sentence embedder: normalised character-trigram counts."""

    def encode(self, texts):
        out = np.zeros((len(texts), 64), dtype=np.float32)
        for i, text in enumerate(texts):
            t = f"  {text.lower()}  "
            for j in range(len(t) - 2):
                out[i, sum(map(ord, t[j : j + 3])) % 64] += 1
        return out / np.maximum(np.linalg.norm(out, axis=1, keepdims=True), 1e-9)


@pytest.fixture
def hash_embedder():
    return HashEmbedder()


CARD_ROWS = [
    ("my card has not arrived yet", "card_arrival"),
    ("where is my new card", "card_arrival"),
    ("still waiting for my card", "card_arrival"),
    ("when will the card come", "card_arrival"),
    ("I lost my card", "lost_or_stolen_card"),
    ("someone stole my card", "lost_or_stolen_card"),
    ("my wallet was stolen with the card", "lost_or_stolen_card"),
    ("cannot find my card anywhere", "lost_or_stolen_card"),
    ("the ATM swallowed my card", "card_swallowed"),
    ("machine kept my card", "card_swallowed"),
    ("ATM did not return the card", "card_swallowed"),
    ("cash machine ate my card", "card_swallowed"),
]


# A small knowledge task: two documents, questions with their sources, one of each split not answered by them.
HANDBOOK = """# Leave

Employees get 25 days of paid leave a year. Unused days carry over until March 31.

# Equipment

The company reimburses a standing desk up to $400 once every three years.
"""
FAQ = "Parking: the garage on Elm Street is free for employees after 6 pm. Badges are renewed every 2 years."

QUESTIONS_TRAIN = [
    {"input": "How many days of paid leave do employees get?", "output": "25 days a year.", "sources": ["handbook.md"]},
    {"input": "Until when do unused leave days carry over?", "output": "Until March 31.", "sources": ["handbook.md"]},
    {"input": "Is the garage free?", "output": "Yes, after 6 pm.", "sources": ["faq.txt"]},
    {"input": "What is the capital of Peru?", "output": None},
]
QUESTIONS_TEST = [
    {
        "input": "How much is a standing desk reimbursed?",
        "output": "Up to $400 once every three years.",
        "sources": ["handbook.md"],
    },
    {"input": "How often are badges renewed?", "output": "Every 2 years.", "sources": ["faq.txt"]},
    {"input": "Who won the 1998 World Cup?", "output": None},
]


def free_port() -> int:
    """A TCP port free on loopback now."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def serving(app):
    """`app` served by uvicorn on a free loopback port, in a thread, for the with-block; yields its URL."""
    import threading
    import time

    import uvicorn

    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.time() + 30
    while not server.started and time.time() < deadline:
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=30)


def chromium_browser():
    """Headless Chromium under selenium (Debian's chromium and chromium-driver, which .ci/run installs), its console
    log kept; the test is skipped where they are missing. Used by the report and review-page tests."""
    import shutil

    if not (shutil.which("chromium") and shutil.which("chromedriver")):
        pytest.skip("Debian's chromium and chromium-driver are not installed (.ci/run installs them)")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = shutil.which("chromium")
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"):
        options.add_argument(arg)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    return webdriver.Chrome(service=Service(shutil.which("chromedriver")), options=options)


def write_jsonl(path: Path, rows) -> Path:
    path.write_text("".join(json.dumps({"input": i, "output": o}) + "\n" for i, o in rows), encoding="utf-8")
    return path


def cards_experiment(root: Path, model_dir, train, test, strategies: str, name: str = "experiment.yaml") -> Path:
    """The cards task on the tiny model, without baselines: `train` and `test` rows written as JSONL, `strategies` the
    YAML list's lines."""
    write_jsonl(root / "train.jsonl", train)
    write_jsonl(root / "test.jsonl", test)
    (root / name).write_text(
        f"""task: {{name: cards, instruction: "Route the message."}}
data: {{train: train.jsonl, test: test.jsonl}}
model: {model_dir}
baselines: false
strategies:
{strategies}""",
        encoding="utf-8",
    )
    return root / name


@pytest.fixture
def card_experiment(tmp_path, tiny_model_dir) -> Path:
    """A small classify experiment on the tiny model: 12 training rows, 6 test rows, three strategies."""
    write_jsonl(tmp_path / "train.jsonl", CARD_ROWS)
    write_jsonl(
        tmp_path / "test.jsonl",
        [
            ("my card never came", "card_arrival"),
            ("card was stolen", "lost_or_stolen_card"),
            ("the ATM kept it", "card_swallowed"),
            ("where's my card", "card_arrival"),
            ("lost card", "lost_or_stolen_card"),
            ("ATM ate the card", "card_swallowed"),
        ],
    )
    (tmp_path / "experiment.yaml").write_text(
        f"""task: {{name: cards, instruction: "Route the message."}}
data: {{train: train.jsonl, test: test.jsonl}}
model: {tiny_model_dir}
strategies:
  - name: zero_shot
  - {{name: few_shot, k: 2, selector: random}}
  - {{name: lora, epochs: 2, batch_size: 4, learning_rate: 0.01, bf16: false}}
""",
        encoding="utf-8",
    )
    return tmp_path / "experiment.yaml"
