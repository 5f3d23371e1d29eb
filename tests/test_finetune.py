"""Fine-tuning: the loop's batches and updates, dev scoring, checkpoints, kill-and-resume, SIGTERM, accelerate,
outputs."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from conftest import CARD_ROWS, write_jsonl
from safetensors.torch import load_file

from adaptlab.data import Dataset, Example
from adaptlab.errors import AdaptlabError, ConfigError
from adaptlab.finetune.checkpoint import CheckpointFolder, checkpoints, load_checkpoint
from adaptlab.finetune.distributed import Dist
from adaptlab.finetune.fit import training_rows
from adaptlab.finetune.loss import TrainRow, batch_loss, mean_loss, micro_batches, prefix_cache, shared_prefix
from adaptlab.finetune.trainer import Hooks, TrainSettings, _step, epoch_batches, train
from adaptlab.kinds import strategy
from adaptlab.kinds.full import FullConfig
from adaptlab.kinds.lora import LoraConfig
from adaptlab.runs.events import Events
from adaptlab.task import make_task

TRAIN = Dataset([Example(i, o, n + 1) for n, (i, o) in enumerate(CARD_ROWS)], source="train.jsonl")
TASK = make_task("cards", "Route the message.", TRAIN, TRAIN)
SRC = str(Path(__file__).resolve().parents[1] / "src")


class Heard(Events):
    """Events that keep every message, to assert on what a run reported."""

    def __init__(self):
        self.messages = []

    def message(self, text, level="info"):
        self.messages.append(text)


def test_epoch_batches_cover_every_row_once_and_replay_from_seed_and_epoch():
    lengths = [5, 40, 7, 33, 12, 25, 9, 38, 11, 30, 6, 29, 8, 35, 10, 27] * 4
    for grouped in (False, True):
        batches = epoch_batches(lengths, 4, seed=3, epoch=1, grouped=grouped)
        assert sorted(i for b in batches for i in b) == list(range(len(lengths)))
        assert batches == epoch_batches(lengths, 4, seed=3, epoch=1, grouped=grouped)
        assert batches != epoch_batches(lengths, 4, seed=3, epoch=2, grouped=grouped)

    def padding(batches):
        return sum(max(lengths[i] for i in b) * len(b) - sum(lengths[i] for i in b) for b in batches)

    assert padding(epoch_batches(lengths, 4, 3, 1, True)) < 0.5 * padding(epoch_batches(lengths, 4, 3, 1, False))


def _lora_params(model):
    return {n: p.detach().clone() for n, p in model.named_parameters() if p.requires_grad}


def test_gradient_accumulation_and_a_token_budget_give_the_same_update(tiny_model_dir):
    from adaptlab.kinds.lora import attach_lora
    from adaptlab.models import load_base_model

    after = []
    for accumulation, budget in ((1, 10_000), (3, 10_000), (1, 40)):  # 40 tokens: a row or two per micro-batch
        base = load_base_model(str(tiny_model_dir), device="cpu")
        attach_lora(base, "acc", LoraConfig(name="lora", dropout=0.0), seed=0)
        rows = training_rows(base, TASK, TRAIN)
        settings = TrainSettings(
            1, 0.01, 12, 0.0, False, 0, gradient_accumulation=accumulation, max_batch_tokens=budget
        )
        result = train(base.model, rows, settings, "cpu", base.tokenizer.pad_token_id)
        assert result.state.step == 1
        after.append(_lora_params(base.model))
    for other in after[1:]:
        for name, value in after[0].items():
            assert torch.allclose(value, other[name], atol=1e-6), name


def test_a_recomputed_prefix_gives_the_same_cache_and_gradients_with_dropout_on(tiny_base):
    from peft import LoraConfig as PeftLoraConfig
    from peft import get_peft_model

    model = get_peft_model(
        tiny_base.model,
        PeftLoraConfig(
            r=4, lora_alpha=8, lora_dropout=0.5, target_modules=["q_proj", "k_proj", "v_proj"], init_lora_weights=False
        ),
    ).train()
    params = [p for p in model.parameters() if p.requires_grad]
    shared = training_rows(tiny_base, TASK, TRAIN)[0].prompt
    results = []
    for recompute in (False, True):
        torch.manual_seed(1)
        model.zero_grad()
        kv = [t for layer in prefix_cache(model, shared, "cpu", recompute=recompute) for t in layer]
        torch.manual_seed(2 + recompute)  # the backward's recompute must replay the forward's dropout, not draw anew
        torch.autograd.backward(kv, [torch.ones_like(t) for t in kv])
        results.append(
            ([t.detach() for t in kv], [torch.zeros_like(p) if p.grad is None else p.grad.clone() for p in params])
        )  # the last layer's q_proj shapes no key or value
    (kv_kept, grads_kept), (kv_again, grads_again) = results
    assert all(torch.equal(a, b) for a, b in zip(kv_kept, kv_again))
    assert all(torch.allclose(a, b, atol=1e-6) for a, b in zip(grads_kept, grads_again))


def test_micro_batches_keep_to_the_token_budget_and_the_accumulation():
    rows = [TrainRow([1] * 10 + [7] * p, [3] * a) for p, a in [(5, 2), (30, 10), (12, 3), (8, 1), (20, 20), (3, 3)]]
    own = {id(r): len(r.input_ids) - 10 for r in rows}  # 10 shared tokens are not counted
    for accumulation, budget in ((1, 10_000), (2, 10_000), (1, 60), (3, 45), (1, 10)):
        parts = micro_batches(rows, 10, accumulation, budget)
        assert sorted(id(r) for p in parts for r in p) == sorted(id(r) for r in rows)
        assert len(parts) >= accumulation
        for part in parts:
            assert len(part) == 1 or len(part) * max(own[id(r)] for r in part) <= budget
    assert [len(p) for p in micro_batches(rows, 10, 1, 10_000)] == [6]
    assert [len(p) for p in micro_batches(rows, 10, 1, 10)] == [1] * 6  # every row is over 10 tokens: each alone


def test_the_answer_only_loss_matches_the_full_logits_loss_with_and_without_the_shared_prefix(tiny_base, monkeypatch):
    from peft import LoraConfig as PeftLoraConfig
    from peft import get_peft_model

    from adaptlab.engine import session

    torch.manual_seed(0)
    model = get_peft_model(
        tiny_base.model,
        PeftLoraConfig(
            r=4, lora_alpha=8, lora_dropout=0.0, target_modules=["q_proj", "v_proj"], init_lora_weights=False
        ),
    )
    rows = training_rows(tiny_base, TASK, TRAIN)[:5]
    pad = tiny_base.tokenizer.pad_token_id
    width = max(len(r.input_ids) for r in rows)
    ids = torch.tensor([r.input_ids + [pad] * (width - len(r.input_ids)) for r in rows])
    labels = torch.tensor([r.labels + [-100] * (width - len(r.labels)) for r in rows])
    mask = torch.tensor([[1] * len(r.input_ids) + [0] * (width - len(r.input_ids)) for r in rows])
    params = [p for p in model.parameters() if p.requires_grad]
    model.zero_grad()
    plain = model(input_ids=ids, attention_mask=mask, labels=labels, use_cache=False).loss  # every position's logits
    plain.backward()
    expected = [p.grad.clone() for p in params]
    for shared in ([], shared_prefix(rows)):
        model.zero_grad()
        loss = batch_loss(model, rows, shared, pad, "cpu")
        loss.backward()
        assert loss.item() == pytest.approx(plain.item(), abs=1e-5)
        for got, want in zip((p.grad for p in params), expected):
            assert torch.allclose(got, want, atol=1e-5)
        model.eval()
        assert mean_loss(model, rows, pad, "cpu", max_batch_tokens=30) == pytest.approx(
            plain.item(), abs=1e-5
        )  # several micro-batches, no gradients
        model.train()
    # a training step: the prefix runs once, micro-batches of at most 30 tokens gather its gradient
    model.zero_grad()
    settings = TrainSettings(1, 0.01, 5, 0.0, False, 0, max_batch_tokens=30)
    assert len(micro_batches(rows, len(shared_prefix(rows)), 1, 30)) > 1
    loss, _ = _step(model, model, rows, shared_prefix(rows), pad, "cpu", settings, Dist())
    assert loss == pytest.approx(plain.item(), abs=1e-5)
    for got, want in zip((p.grad for p in params), expected):
        assert torch.allclose(got, want, atol=1e-5)
    # with the attention `train` uses on a CPU: explicit scores, and the fused kernel above EXPLICIT_SCORES
    for explicit_up_to in (session.EXPLICIT_SCORES, 0):
        monkeypatch.setattr(session, "EXPLICIT_SCORES", explicit_up_to)
        model.zero_grad()
        with session.native_attention(model, training=True):
            assert model.config._attn_implementation == session.TRAINING_ATTENTION
            loss, _ = _step(model, model, rows, shared_prefix(rows), pad, "cpu", settings, Dist())
        assert model.config._attn_implementation == "sdpa"
        assert loss == pytest.approx(plain.item(), abs=1e-5)
        for got, want in zip((p.grad for p in params), expected):
            assert torch.allclose(got, want, atol=1e-5)


def test_dev_scores_stop_early_and_the_best_weights_are_kept(tiny_base):
    from adaptlab.kinds.lora import attach_lora

    attach_lora(tiny_base, "dev", LoraConfig(name="lora"), seed=0)
    rows = training_rows(tiny_base, TASK, TRAIN)
    scores = iter([0.5, 0.9, 0.4, 0.3, 0.95])
    snapshots = {}

    def evaluate():
        snapshots[len(snapshots) + 1] = _lora_params(tiny_base.model)
        return next(scores)

    settings = TrainSettings(5, 0.05, 4, 0.0, False, 0, eval_every=2, patience=2)
    result = train(tiny_base.model, rows, settings, "cpu", tiny_base.tokenizer.pad_token_id, Hooks(evaluate=evaluate))
    state = result.state
    assert [e["score"] for e in state.evals] == [0.5, 0.9, 0.4, 0.3] and state.stopped_early and state.step == 8
    assert state.best_step == 4 and result.restored_best
    for name, value in _lora_params(tiny_base.model).items():
        assert torch.equal(value, snapshots[2][name])


SQL_ROWS = [
    (f"book a table for {n} at {t}", f"INSERT INTO bookings (party, time) VALUES ({n}, '{t}');")
    for n, t in [
        (2, "7pm"),
        (4, "8pm"),
        (3, "noon"),
        (5, "6pm"),
        (6, "9pm"),
        (2, "1pm"),
        (8, "7pm"),
        (4, "5pm"),
        (3, "8pm"),
        (2, "6pm"),
    ]
]
SQL = Dataset([Example(i, o, n + 1) for n, (i, o) in enumerate(SQL_ROWS)], source="train.jsonl")
SQL_TASK = make_task("sql", "Write the INSERT statement.", SQL, SQL, kind="generate", max_new_tokens=24)


def test_generate_tasks_score_dev_by_answer_log_likelihood_without_generating(tiny_base, monkeypatch):
    from adaptlab.engine.lm_solver import LMSolver

    def no_generation(self, *args, **kwargs):
        raise AssertionError("the dev split was answered by generation")

    monkeypatch.setattr(LMSolver, "predict", no_generation)
    dev = Dataset(SQL.examples[:3], "dev.jsonl")
    fit = strategy(
        LoraConfig(name="lora", epochs=2, batch_size=4, learning_rate=0.02, bf16=False, patience=None),
        tiny_base,
        seed=0,
    )
    solver = fit.fit(SQL_TASK, Dataset(SQL.examples[3:], "train.jsonl"), dev)
    assert solver.details["dev_metric"] == "loglik" and solver.details["dev_metric_rows"] == 3
    scores = [e["score"] for e in solver.details["training"]["evals"]]
    assert (
        len(scores) == 2 and all(s < 0 for s in scores) and scores[1] > scores[0]
    )  # mean log-probability rises as it learns
    tiny_base.model.eval()
    assert -mean_loss(
        tiny_base.model, training_rows(tiny_base, SQL_TASK, dev), tiny_base.tokenizer.pad_token_id, "cpu"
    ) == pytest.approx(scores[1], abs=1e-5)  # the kept (best, last) weights


def test_dev_metric_generate_answers_only_dev_generate_rows_and_classify_keeps_accuracy(tiny_base, monkeypatch):
    from adaptlab.engine.lm_solver import LMSolver

    asked = []
    predict = LMSolver.predict

    def recorded(self, inputs, *args, **kwargs):
        asked.append(list(inputs))
        return predict(self, inputs, *args, **kwargs)

    monkeypatch.setattr(LMSolver, "predict", recorded)
    config = dict(name="lora", epochs=1, batch_size=4, learning_rate=0.02, bf16=False)
    solver = strategy(LoraConfig(**config, dev_metric="generate", dev_generate_rows=2), tiny_base, seed=0).fit(
        SQL_TASK, SQL, Dataset(SQL.examples[:5], "dev.jsonl")
    )
    assert (
        asked == [SQL.inputs[:2]] and solver.details["dev_metric"] == "chrf" and solver.details["dev_metric_rows"] == 2
    )
    asked.clear()
    solver = strategy(LoraConfig(**config), tiny_base, seed=0).fit(
        TASK, TRAIN, Dataset(TRAIN.examples[:5], "dev.jsonl")
    )
    assert asked == [TRAIN.inputs[:5]] and solver.details["dev_metric"] == "accuracy"
    assert 0 <= solver.details["training"]["evals"][0]["score"] <= 1


def test_a_half_written_checkpoint_is_ignored_and_a_corrupt_one_is_refused(tiny_base, tmp_path):
    from adaptlab.kinds.lora import attach_lora

    attach_lora(tiny_base, "ck", LoraConfig(name="lora"), seed=0)
    rows = training_rows(tiny_base, TASK, TRAIN)
    folder = tmp_path / "ckpt"
    train(
        tiny_base.model,
        rows,
        TrainSettings(2, 0.01, 4, 0.0, False, 0),
        "cpu",
        tiny_base.tokenizer.pad_token_id,
        Hooks(checkpoints=CheckpointFolder(folder, every=2, keep=2)),
    )
    assert [p.name for p in checkpoints(folder)] == ["step-000004", "step-000006"]
    (folder / ".tmp-step-000008").mkdir()  # what a kill during a save leaves
    (folder / ".tmp-step-000008" / "state.json").write_text("{", encoding="utf-8")
    assert checkpoints(folder)[-1].name == "step-000006"
    resume = load_checkpoint(checkpoints(folder)[-1])
    assert resume.state.step == 6 and resume.state.epoch == 2 and resume.state.batch == 0
    weights = folder / "step-000006" / "trainable.safetensors"
    weights.write_bytes(weights.read_bytes()[:100])
    with pytest.raises(AdaptlabError, match="delete this folder"):
        load_checkpoint(checkpoints(folder)[-1])


def test_stray_folders_in_checkpoints_are_ignored_and_kept(tiny_base, tmp_path):
    from adaptlab.kinds.lora import attach_lora

    folder = tmp_path / "ckpt"
    stray = ["junk", "step-abc", "step-", "step-12x", "step-\u0661\u0662", ".tmp-step-000099-x"]
    for name in stray:
        (folder / name).mkdir(parents=True)
    (folder / "step-000050").write_text("", encoding="utf-8")  # a file, not a folder
    assert checkpoints(folder) == []
    attach_lora(tiny_base, "ck", LoraConfig(name="lora"), seed=0)
    rows = training_rows(tiny_base, TASK, TRAIN)
    train(
        tiny_base.model,
        rows,
        TrainSettings(2, 0.01, 4, 0.0, False, 0),
        "cpu",
        tiny_base.tokenizer.pad_token_id,
        Hooks(checkpoints=CheckpointFolder(folder, every=2, keep=2)),
    )
    assert [p.name for p in checkpoints(folder)] == ["step-000004", "step-000006"]
    assert all((folder / name).is_dir() for name in stray[:-1]) and (folder / "step-000050").is_file()


def test_each_step_is_reported_before_its_checkpoint_is_written(tiny_base, tmp_path):
    from adaptlab.kinds.lora import attach_lora

    events = []

    class Recorded(CheckpointFolder):
        def save(self, state, *args):
            events.append(("checkpoint", state.step))

    attach_lora(tiny_base, "order", LoraConfig(name="lora"), seed=0)
    rows = training_rows(tiny_base, TASK, TRAIN)
    hooks = Hooks(on_step=lambda r: events.append(("step", r.step)), checkpoints=Recorded(tmp_path, every=2))
    train(
        tiny_base.model, rows, TrainSettings(1, 0.01, 4, 0.0, False, 0), "cpu", tiny_base.tokenizer.pad_token_id, hooks
    )
    # so a kill between the two never leaves a checkpointed step missing from steps.jsonl
    assert events == [("step", 1), ("step", 2), ("checkpoint", 2), ("step", 3)]


def test_full_fine_tuning_trains_a_copy_and_saves_a_loadable_model(tiny_base, tmp_path):
    from transformers import AutoModelForCausalLM

    before = {n: p.detach().clone() for n, p in tiny_base.model.named_parameters()}
    solver = strategy(
        FullConfig(name="full", epochs=3, batch_size=4, learning_rate=1e-2, bf16=False), tiny_base, seed=0
    ).fit(TASK, TRAIN)
    losses = solver.details["training"]["epoch_losses"]
    assert losses[-1] < losses[0]
    assert all(torch.equal(p, before[n]) for n, p in tiny_base.model.named_parameters()), (
        "the shared base model changed"
    )
    solver.save(tmp_path / "full")
    reloaded = AutoModelForCausalLM.from_pretrained(tmp_path / "full").eval()
    ids = torch.tensor([[5, 6, 7, 8]])
    with torch.no_grad():
        assert torch.allclose(reloaded(ids).logits, solver.base.model(ids).logits, atol=1e-5)


# --- the `adaptlab finetune` run: subprocesses, as a user (or a crash) would see it ---

CHILD = """
import os, signal, sys
from pathlib import Path
from adaptlab.runs.finetune import run_finetune
kill_at = int(sys.argv[3])
def on_step(report):
    if report.step == kill_at:
        os.kill(os.getpid(), signal.SIGKILL)
if sys.argv[1] == "resume":
    run_finetune(resume=Path(sys.argv[2]), checkpoint_every=2)
else:
    run_finetune(sys.argv[1], out=Path(sys.argv[2]), checkpoint_every=2, on_step=on_step)
"""


@pytest.fixture
def finetune_experiment(tmp_path, tiny_model_dir) -> Path:
    write_jsonl(tmp_path / "train.jsonl", CARD_ROWS)
    write_jsonl(
        tmp_path / "test.jsonl",
        [
            ("my card never came", "card_arrival"),
            ("card was stolen", "lost_or_stolen_card"),
            ("the ATM kept it", "card_swallowed"),
        ],
    )
    write_jsonl(
        tmp_path / "dev.jsonl",
        [
            ("where's my card", "card_arrival"),
            ("lost card", "lost_or_stolen_card"),
            ("ATM ate the card", "card_swallowed"),
        ],
    )
    (tmp_path / "experiment.yaml").write_text(
        f"""task: {{name: cards, instruction: "Route the message."}}
data: {{train: train.jsonl, test: test.jsonl, dev: dev.jsonl}}
model: {tiny_model_dir}
strategies:
  - {{name: lora, epochs: 3, batch_size: 4, learning_rate: 0.02, bf16: false, patience: null, dropout: 0.1}}  # dropout: a resume must restore its random stream too
""",
        encoding="utf-8",
    )
    return tmp_path / "experiment.yaml"


def _child(*args, **kwargs) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": SRC}
    return subprocess.run(
        [sys.executable, "-c", CHILD, *map(str, args)], capture_output=True, text=True, env=env, timeout=300, **kwargs
    )


def _adapter(run: Path) -> dict:
    return load_file(str(run / "adapter" / "adapter_model.safetensors"))


def _steps(run: Path) -> list[dict]:
    return [json.loads(line) for line in (run / "steps.jsonl").read_text(encoding="utf-8").splitlines()]


def test_kill_9_mid_epoch_then_resume_is_bit_equal_to_an_uninterrupted_run(finetune_experiment, tmp_path):
    whole, broken = tmp_path / "whole", tmp_path / "broken"
    done = _child(finetune_experiment, whole, 0)
    assert done.returncode == 0, done.stderr
    killed = _child(finetune_experiment, broken, 5)  # steps 4-6 are epoch 2; the last checkpoint is step 4
    assert killed.returncode == -signal.SIGKILL
    assert json.loads((broken / "run.json").read_text())["status"] == "running"
    assert [p.name for p in checkpoints(broken / "checkpoints")][-1] == "step-000004"
    resumed = _child("resume", broken, 0)
    assert resumed.returncode == 0, resumed.stderr
    a, b = _adapter(whole), _adapter(broken)
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    assert [(s["step"], s["lines"], s["loss"]) for s in _steps(whole)] == [
        (s["step"], s["lines"], s["loss"]) for s in _steps(broken)
    ]
    lineage = json.loads((broken / "lineage.json").read_text())
    assert (
        lineage["training"]["steps"] == 9
        and lineage["data"]["dev"]["sha256"]
        and lineage["base_model"]["weights_sha256"]
    )
    assert json.loads((broken / "run.json").read_text())["status"] == "completed"


class Crash(Exception):
    """Stands in for a kill: the run stops wherever it is."""


def test_a_torn_last_line_of_steps_jsonl_is_dropped_on_resume(finetune_experiment, tmp_path):
    from adaptlab.runs.finetune import run_finetune

    run = tmp_path / "run"

    def crash(report):
        if report.step == 5:
            raise Crash

    with pytest.raises(Crash):
        run_finetune(finetune_experiment, out=run, checkpoint_every=2, on_step=crash)
    before = (run / "steps.jsonl").read_text(encoding="utf-8").splitlines()
    assert [json.loads(line)["step"] for line in before] == [1, 2, 3, 4, 5]
    with (run / "steps.jsonl").open("a", encoding="utf-8") as f:
        f.write('{"step": 6, "epoch": 2, "lo')  # a kill while step 6 was being appended
    heard = Heard()
    lineage, _ = run_finetune(resume=run, checkpoint_every=2, events=heard)
    assert any("dropped the torn last line of steps.jsonl" in text for text in heard.messages)
    steps = _steps(run)
    assert [s["step"] for s in steps] == list(range(1, 10)) and lineage["training"]["steps"] == 9
    assert [json.dumps(s) for s in steps[:4]] == before[:4]  # kept as they were
    assert not [p.name for p in run.iterdir() if p.name.endswith(".tmp")]  # rewritten through a temp file and a rename


def test_a_broken_line_before_the_last_in_steps_jsonl_is_refused_naming_it(tmp_path):
    from adaptlab.runs.finetune import _trim_steps

    path = tmp_path / "steps.jsonl"
    path.write_text('{"step": 1}\n{"step": 2, "lo\n{"step": 3}\n', encoding="utf-8")
    with pytest.raises(AdaptlabError, match="steps.jsonl line 2: not a step record"):
        _trim_steps(path, 3, rank=0)
    path.write_text('{"step": 1}\n{"step": 2}\n\n{"step": 3, "lo', encoding="utf-8")
    assert _trim_steps(path, 3, rank=0) is True
    assert path.read_text(encoding="utf-8") == '{"step": 1}\n{"step": 2}\n'


def test_resuming_a_completed_run_says_so_and_trains_nothing(finetune_experiment, tmp_path):
    from adaptlab.runs.finetune import run_finetune

    lineage, run = run_finetune(finetune_experiment, out=tmp_path / "run")
    files = {
        name: (run / name).read_bytes()
        for name in ("steps.jsonl", "run.json", "lineage.json", "adapter/adapter_model.safetensors")
    }
    reports, heard = [], Heard()
    again, same = run_finetune(resume=run, events=heard, on_step=reports.append)
    assert reports == [] and again == lineage and same == run
    assert any("already completed" in text and "start a new run" in text for text in heard.messages)
    assert {name: (run / name).read_bytes() for name in files} == files


def test_sigterm_finishes_the_step_checkpoints_and_exits_143(finetune_experiment, tmp_path):
    text = finetune_experiment.read_text().replace("epochs: 3", "epochs: 60")
    finetune_experiment.write_text(text)
    run = tmp_path / "run"
    env = {**os.environ, "PYTHONPATH": SRC}
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "adaptlab",
            "finetune",
            str(finetune_experiment),
            "--out",
            str(run),
            "--checkpoint-every",
            "1000",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    deadline = time.time() + 120
    while time.time() < deadline and not ((run / "steps.jsonl").is_file() and len(_steps(run)) >= 3):
        time.sleep(0.02)
    proc.send_signal(signal.SIGTERM)
    _, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 143, stderr
    assert "--resume" in stderr and "Traceback" not in stderr
    step = len(_steps(run))
    info = json.loads((run / "run.json").read_text())
    assert info["status"] == "interrupted" and info["step"] == step < 180
    assert [p.name for p in checkpoints(run / "checkpoints")] == [f"step-{step:06d}"]
    resumed = subprocess.run(
        [sys.executable, "-m", "adaptlab", "finetune", "--resume", str(run)],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert resumed.returncode == 0, resumed.stderr
    assert [s["step"] for s in _steps(run)] == list(range(1, 181))


def test_finetune_cli_writes_a_peft_adapter_lineage_and_merged_weights(finetune_experiment, tmp_path):
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    from adaptlab.runs.finetune import run_finetune

    lineage, run = run_finetune(finetune_experiment, out=tmp_path / "run", merge=True)
    assert {"adapter_config.json", "adapter_model.safetensors"} <= {p.name for p in (run / "adapter").iterdir()}
    lo, hi = lineage["metrics"]["test_ci95"]["accuracy"]
    assert lo <= lineage["metrics"]["test"]["accuracy"] <= hi and lineage["metrics"]["test"]["accuracy"] * 3 in (
        0,
        1,
        2,
        3,
    )  # 3 test rows
    assert lineage["config"]["r"] == 8 and lineage["seed"] == 0 and lineage["training"]["evals"]
    from typer.testing import CliRunner

    from adaptlab.cli import app
    from adaptlab.registry import default_registry

    version = default_registry().get(lineage["registered_as"])  # registered in compare's shape: {metric: value}, ci
    assert version.lineage["metrics"] == lineage["metrics"]["test"] and version.lineage["ci"]["accuracy"] == [lo, hi]
    listed = CliRunner().invoke(app, ["registry", "list"])
    assert listed.exit_code == 0 and f"accuracy {lineage['metrics']['test']['accuracy']:.3f}" in listed.output, (
        listed.output
    )
    model_dir = lineage["base_model"]["folder"]
    adapted = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(model_dir), run / "adapter").eval()
    merged = AutoModelForCausalLM.from_pretrained(run / "merged").eval()
    ids = torch.tensor([[5, 6, 7, 8, 9]])
    with torch.no_grad():
        assert torch.allclose(adapted(ids).logits, merged(ids).logits, atol=1e-4)


def test_finetune_refuses_what_it_cannot_do(finetune_experiment, tmp_path):
    from adaptlab.runs.finetune import run_finetune

    text = finetune_experiment.read_text()
    finetune_experiment.write_text(text.replace("strategies:\n", "strategies:\n  - {name: full, epochs: 1}\n"))
    with pytest.raises(ConfigError, match="choose one with --strategy"):
        run_finetune(finetune_experiment, out=tmp_path / "a")
    finetune_experiment.write_text(
        text.replace("name: lora", "name: zero_shot").replace(
            ", epochs: 3, batch_size: 4, learning_rate: 0.02, bf16: false, patience: null, dropout: 0.1", ""
        )
    )
    with pytest.raises(ConfigError, match="add a strategy"):
        run_finetune(finetune_experiment, out=tmp_path / "b")
    with pytest.raises(ConfigError, match="not a fine-tuning run folder"):
        run_finetune(resume=tmp_path)
    (tmp_path / "c").mkdir()
    (tmp_path / "c" / "x").write_text("")
    finetune_experiment.write_text(text)
    with pytest.raises(ConfigError, match="--resume"):
        run_finetune(finetune_experiment, out=tmp_path / "c")


def test_accelerate_launch_two_cpu_processes_stay_in_sync_and_save_once(finetune_experiment, tmp_path):
    accelerate = Path(sys.executable).with_name("accelerate")
    run = tmp_path / "ddp"
    env = {**os.environ, "PYTHONPATH": SRC, "OMP_NUM_THREADS": "1"}
    command = [
        str(accelerate),
        "launch",
        "--multi_gpu",
        "--num_processes",
        "2",
        "--num_machines",
        "1",
        "--mixed_precision",
        "no",
        "--dynamo_backend",
        "no",
        "--main_process_port",
        "29517",
        "-m",
        "adaptlab",
        "finetune",
        str(finetune_experiment),
        "--out",
        str(run),
        "--checkpoint-every",
        "3",
    ]
    done = subprocess.run(command, capture_output=True, text=True, env=env, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    lineage = json.loads((run / "lineage.json").read_text())
    assert lineage["training"]["world_size"] == 2 and lineage["training"]["steps"] == 9
    assert done.stdout.count("lineage:") == 1  # rank 0 alone reports and writes
    assert sorted(p.name for p in run.iterdir()) == [
        "adapter",
        "checkpoints",
        "experiment.yaml",
        "lineage.json",
        "run.json",
        "steps.jsonl",
    ]
    assert sorted(p.name for p in (run / "checkpoints").iterdir()) == ["step-000006", "step-000009"]
    assert {"rng-0.pt", "rng-1.pt"} <= {p.name for p in (run / "checkpoints" / "step-000009").iterdir()}
    assert Dist().world == 1  # this process was not part of it


def test_export_peft_and_merged_load_back_and_predict_as_before(finetune_experiment, tmp_path):
    from peft import PeftModel
    from typer.testing import CliRunner

    from adaptlab.cli import app
    from adaptlab.engine.lm_solver import LMSolver
    from adaptlab.models import BaseModel, load_base_model
    from adaptlab.runs.finetune import run_finetune

    lineage, run = run_finetune(finetune_experiment, out=tmp_path / "run")
    runner = CliRunner()
    for fmt in ("peft", "merged"):
        result = runner.invoke(app, ["export", str(run), "--out", str(tmp_path / fmt), "--format", fmt])
        assert result.exit_code == 0, result.output
    assert {"adapter_config.json", "adapter_model.safetensors", "adaptlab.json"} <= {
        p.name for p in (tmp_path / "peft").iterdir()
    }
    queries = ["my card never came", "card was stolen", "the ATM kept it", "where is it", "ATM", "stolen"]
    task = make_task("cards", "Route the message.", TRAIN, TRAIN)
    base = load_base_model(lineage["base_model"]["name"], device="cpu")
    peft_base = BaseModel(
        "peft",
        PeftModel.from_pretrained(base.model, tmp_path / "peft").eval(),
        base.tokenizer,
        "cpu",
        base.eot_id,
        base.context_length,
    )
    merged = load_base_model(str(tmp_path / "merged"), device="cpu")
    from_peft = LMSolver("x", peft_base, task, adapter="default")._scores(
        LMSolver("x", peft_base, task, adapter="default").prompts(queries)[0], None
    )[0]
    from_merged = LMSolver("x", merged, task)._scores(LMSolver("x", merged, task).prompts(queries)[0], None)[0]
    assert (from_peft.argmax(1) == from_merged.argmax(1)).all() and abs(from_peft - from_merged).max() < 1e-3
    from adaptlab.errors import ModelError
    from adaptlab.finetune.export import export

    with pytest.raises(ConfigError, match="already exists"):
        export(run, "peft", tmp_path / "peft")
    lineage["base_model"]["weights_sha256"] = "0" * 64
    (run / "lineage.json").write_text(json.dumps(lineage))
    with pytest.raises(ModelError, match="different weights"):
        export(run, "merged", tmp_path / "again")
    assert not (tmp_path / "again").exists()
