"""The experiment's `model:`: Hub ids from a local cache (never downloaded unless told), dtype and device, the
memory check, and an endpoint as the experiment's model."""

import json
import shutil

import pytest
from test_remote import endpoint  # noqa: F401 (the stand-in OpenAI-compatible server, a fixture)

from adaptlab.errors import ConfigError, ModelError
from adaptlab.models import load_base_model
from adaptlab.models.hub import fetch_command
from adaptlab.models.memory import (
    ADAPTER_SHARE,
    MemoryNeed,
    check_memory,
    estimate_parameters,
    memory_need,
    parameter_count,
)
from adaptlab.models.spec import ModelSpec
from adaptlab.runs.experiment import parse_experiment

REPO = "tiny-org/tiny-chat"
SHA_MAIN, SHA_OLD = "a" * 40, "b" * 40


@pytest.fixture
def hub_cache(tmp_path, tiny_model_dir, monkeypatch):
    """A Hugging Face cache in tmp_path holding the tiny model at two commits, refs/main at the first; HF_HOME points at
    it."""
    repo = tmp_path / "hf" / "hub" / f"models--{REPO.replace('/', '--')}"
    for sha in (SHA_MAIN, SHA_OLD):
        shutil.copytree(tiny_model_dir, repo / "snapshots" / sha)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(SHA_MAIN)
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    monkeypatch.delenv("HF_HUB_CACHE", raising=False)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    return repo


@pytest.fixture
def no_download(monkeypatch):
    """Any call to the Hub's downloader fails the test."""
    import huggingface_hub

    def refuse(*args, **kwargs):
        raise AssertionError("adaptlab tried to download")

    monkeypatch.setattr(huggingface_hub, "snapshot_download", refuse)


def test_a_hub_id_loads_from_the_cache_at_refs_main_and_at_a_pinned_revision(hub_cache, no_download):
    base = load_base_model(REPO, device="cpu")
    assert base.name == REPO and base.folder == str(hub_cache / "snapshots" / SHA_MAIN) and base.revision == SHA_MAIN
    pinned = load_base_model(ModelSpec(REPO, revision=SHA_OLD), device="cpu")
    assert pinned.revision == SHA_OLD and pinned.folder.endswith(SHA_OLD)
    (hub_cache / "refs" / "v1").write_text(SHA_OLD)  # a tag or branch name is read through refs/
    assert load_base_model(ModelSpec(REPO, revision="v1"), device="cpu").revision == SHA_OLD


def test_a_missing_hub_id_names_the_fetch_command_and_downloads_nothing(hub_cache, no_download):
    with pytest.raises(ModelError) as error:
        load_base_model("tiny-org/not-cached", device="cpu")
    message = str(error.value)
    assert (
        fetch_command("tiny-org/not-cached") in message
        and "not in the Hugging Face cache" in message
        and str(hub_cache.parent) in message
    )
    with pytest.raises(ModelError, match="--revision " + "c" * 40):
        load_base_model(ModelSpec(REPO, revision="c" * 40), device="cpu")


def test_download_true_is_what_lets_adaptlab_fetch(hub_cache, tiny_model_dir, monkeypatch):
    import huggingface_hub

    asked = []

    def fake_download(repo_id, revision=None, cache_dir=None, **kwargs):
        asked.append((repo_id, revision))
        return str(tiny_model_dir)

    monkeypatch.setattr(huggingface_hub, "snapshot_download", fake_download)
    with pytest.raises(ModelError):
        load_base_model("tiny-org/elsewhere", device="cpu")
    assert asked == []
    assert load_base_model(ModelSpec("tiny-org/elsewhere", download=True), device="cpu").folder == str(tiny_model_dir)
    assert asked == [("tiny-org/elsewhere", None)]


def test_the_fetch_command_is_the_installed_huggingface_hubs():
    from importlib.metadata import version

    major, minor = (int(p) for p in version("huggingface_hub").split(".")[:2])
    assert (
        fetch_command("Qwen/Qwen2.5-1.5B-Instruct")
        == ("hf download" if (major, minor) >= (0, 34) else "huggingface-cli download") + " Qwen/Qwen2.5-1.5B-Instruct"
    )


@pytest.mark.parametrize("dtype, torch_name", [("fp32", "float32"), ("bf16", "bfloat16"), ("fp16", "float16")])
def test_dtype_gives_parameters_of_that_dtype(tiny_model_dir, dtype, torch_name):
    import torch

    base = load_base_model({"path": str(tiny_model_dir), "dtype": dtype, "device": "cpu"})
    assert {p.dtype for p in base.model.parameters()} == {getattr(torch, torch_name)}
    assert base.dtype == dtype and base.device == "cpu" and base.info()["dtype"] == dtype


def test_auto_keeps_fp32_on_the_cpu_whatever_the_checkpoint_says(tiny_model_dir, tmp_path):
    import json

    import torch

    folder = tmp_path / "bf16-checkpoint"
    shutil.copytree(tiny_model_dir, folder)
    config = json.loads((folder / "config.json").read_text())
    (folder / "config.json").write_text(json.dumps(config | {"torch_dtype": "bfloat16", "dtype": "bfloat16"}))
    base = load_base_model(ModelSpec(str(folder), device="cpu"))
    assert base.dtype == "fp32" and all(p.dtype == torch.float32 for p in base.model.parameters())


def test_the_config_reads_every_shape_of_model_and_refuses_bad_ones():
    base = {
        "task": {"name": "x", "instruction": "y"},
        "data": {"train": "a", "test": "b"},
        "strategies": [{"name": "zero_shot"}],
    }
    assert parse_experiment(base).model == "smollm2-135m-instruct"
    assert parse_experiment({**base, "model": "./some/folder"}).model == "./some/folder"
    local = parse_experiment(
        {**base, "model": {"id": "Qwen/Qwen2.5-1.5B-Instruct", "revision": "main", "dtype": "bf16", "device": "cuda:1"}}
    ).model
    assert local.spec() == ModelSpec("Qwen/Qwen2.5-1.5B-Instruct", "main", False, "bf16", "cuda:1")
    remote = parse_experiment({**base, "model": {"endpoint": "http://127.0.0.1:9/v1", "name": "big"}}).model
    assert remote.base_url == "http://127.0.0.1:9/v1"
    for bad, where in [
        ({"id": "a/b", "path": "c"}, "exactly one of path and id"),
        ({"id": "a/b", "dtype": "fp8"}, "model.local.dtype"),
        ({"path": "x", "device": "gpu"}, "model.local.device"),
    ]:
        with pytest.raises(ConfigError, match=where):
            parse_experiment({**base, "model": bad})


def test_parameters_are_counted_from_the_safetensors_header_and_estimated_from_the_config(tiny_base, tiny_model_dir):
    assert parameter_count(tiny_model_dir) == tiny_base.parameters
    smollm2 = {
        "hidden_size": 576,
        "num_hidden_layers": 30,
        "vocab_size": 49152,
        "intermediate_size": 1536,
        "num_attention_heads": 9,
        "num_key_value_heads": 3,
        "tie_word_embeddings": True,
    }
    assert estimate_parameters(smollm2) == pytest.approx(134.5e6, rel=0.01)


def test_the_memory_check_refuses_with_the_numbers_when_little_is_free(tiny_model_dir):
    need = MemoryNeed(weights=3_100_000_000, training=250_000_000)
    check_memory("Qwen/Qwen2.5-1.5B-Instruct", need, free=8_000_000_000, device="cpu", dtype="bf16")
    check_memory("Qwen/Qwen2.5-1.5B-Instruct", need, free=None, device="cpu", dtype="bf16")  # unknown: not refused
    with pytest.raises(ModelError) as error:
        check_memory("Qwen/Qwen2.5-1.5B-Instruct", need, free=2_000_000_000, device="cuda:0", dtype="bf16")
    assert all(
        s in str(error.value)
        for s in (
            "3.35 GB",
            "2.00 GB is free",
            "weights 3.10 GB (bf16)",
            "training state 0.25 GB",
            "smaller model",
            "batch_size",
        )
    )
    tiny = memory_need(tiny_model_dir, 4)
    assert tiny.weights == 4 * parameter_count(tiny_model_dir)
    assert memory_need(tiny_model_dir, 4, 1.0).total > memory_need(tiny_model_dir, 4, ADAPTER_SHARE).total > tiny.total


def test_loading_refuses_a_model_larger_than_the_free_memory(tiny_model_dir, monkeypatch):
    import adaptlab.models.base as base_module

    monkeypatch.setattr(base_module, "free_memory", lambda device: 1000)
    with pytest.raises(ModelError, match=r"but 0\.00 GB is free"):
        load_base_model(str(tiny_model_dir), device="cpu")
    monkeypatch.setattr(base_module, "free_memory", lambda device: 10**9)
    assert load_base_model(str(tiny_model_dir), device="cpu").dtype == "fp32"


def test_an_experiment_endpoint_makes_prompted_contenders_remote(endpoint, card_experiment, monkeypatch):  # noqa: F811 (the fixture)
    from adaptlab import kinds
    from adaptlab.kinds.context import BuildContext, experiment_models
    from adaptlab.remote import ChatClient, RemoteSolver
    from adaptlab.runs.experiment import load_experiment
    from adaptlab.runs.prepare import prepare

    fake, url = endpoint
    fake.answers = {"my card never came": "card_arrival"}
    text = card_experiment.read_text()
    text = text.replace(text.split("\n")[2], f"model: {{endpoint: '{url}', name: fake-model}}")
    text = text.replace("  - {name: lora, epochs: 2, batch_size: 4, learning_rate: 0.01, bf16: false}\n", "")
    card_experiment.write_text(text)
    config, root = load_experiment(card_experiment)
    prepared = prepare(config, root)
    models = experiment_models(config.model)
    assert isinstance(models.default, ChatClient)
    for strategy in config.strategies:
        solver = kinds.kind(strategy.name).build(strategy, BuildContext(models)).fit(prepared.task, prepared.train)
        assert isinstance(solver, RemoteSolver) and solver.describe()["base_model"] == {
            "base_url": url,
            "name": "fake-model",
        }
        assert solver.predict(["my card never came"])[0].output == "card_arrival"
    models.close()
    assert fake.requests


def test_with_an_endpoint_a_fine_tuned_contender_needs_its_own_local_model(tiny_model_dir):
    base = {
        "task": {"name": "x", "instruction": "y"},
        "data": {"train": "a", "test": "b"},
        "model": {"base_url": "http://127.0.0.1:9/v1", "name": "big"},
    }
    with pytest.raises(ConfigError, match=r"strategies\[1\] \(my_lora\) fine-tunes.*set its own local base"):
        parse_experiment({**base, "strategies": [{"name": "zero_shot"}, {"name": "lora", "id": "my_lora"}]})
    config = parse_experiment(
        {
            **base,
            "strategies": [{"name": "zero_shot"}, {"name": "lora", "model": str(tiny_model_dir)}, {"name": "majority"}],
        }
    )
    assert config.strategies[1].model == str(tiny_model_dir)
    local = parse_experiment(
        {**base, "strategies": [{"name": "full", "model": {"path": str(tiny_model_dir), "dtype": "bf16"}}]}
    )
    assert local.strategies[0].model.spec().dtype == "bf16"


def test_a_compare_with_an_endpoint_as_the_experiments_model(endpoint, card_experiment, tiny_model_dir):  # noqa: F811 (the fixture)
    """Prompted contenders call the endpoint; the fine-tuned one runs on its own local model; results record no local
    `model`."""
    from adaptlab.runs.compare import run_compare

    fake, url = endpoint
    fake.answers = {
        "my card never came": "card_arrival",
        "card was stolen": "lost_or_stolen_card",
        "the ATM kept it": "card_swallowed",
    }
    text = card_experiment.read_text()
    text = text.replace(f"model: {tiny_model_dir}\n", f"model: {{endpoint: '{url}', name: fake-model}}\n")
    text = text.replace("  - {name: lora", f"  - {{name: lora, model: '{tiny_model_dir}'")
    card_experiment.write_text(text)
    results, _ = run_compare(card_experiment, card_experiment.parent / "run")
    by_name = {s["name"]: s for s in results["strategies"]}
    assert (
        by_name["few_shot"]["solver"]["base_model"] == {"base_url": url, "name": "fake-model"}
        and by_name["zero_shot"]["solver"]["base_model"] == by_name["few_shot"]["solver"]["base_model"]
    )
    assert str(tiny_model_dir) in json.dumps(by_name["lora"]["solver"]["base_model"])
    assert results["model"] is None and results["base_model"] == {"base_url": url, "name": "fake-model"}
    assert fake.requests  # the endpoint answered the prompted contenders


def test_a_saved_version_loads_again_in_the_precision_it_was_measured_in(tiny_model_dir, tmp_path):
    import torch

    from adaptlab.kinds import kind, strategy
    from adaptlab.kinds.context import LocalModels
    from adaptlab.solver import read_solver_json
    from adaptlab.task import Task

    base = load_base_model({"path": str(tiny_model_dir), "dtype": "bf16", "device": "cpu"})
    solver = strategy({"name": "zero_shot"}, base).fit(Task("t", "Say the colour.", "generate"), None)
    solver.save(tmp_path / "v")
    assert read_solver_json(tmp_path / "v", "zero_shot")["base_dtype"] == "bf16"
    again = kind("zero_shot").load(tmp_path / "v", LocalModels(device="cpu"))
    assert again.base.dtype == "bf16" and {p.dtype for p in again.base.model.parameters()} == {torch.bfloat16}


def test_a_full_fine_tune_trains_an_fp32_copy_and_checks_room_for_its_optimizer(tiny_model_dir, monkeypatch):
    import torch

    import adaptlab.models.base as base_module
    from adaptlab.kinds.full import fresh_copy

    base = load_base_model({"path": str(tiny_model_dir), "dtype": "bf16", "device": "cpu"})
    copy = fresh_copy(base)
    assert copy.dtype == "fp32" and all(p.dtype == torch.float32 and p.requires_grad for p in copy.model.parameters())
    weights = memory_need(tiny_model_dir, 4).total
    monkeypatch.setattr(
        base_module, "free_memory", lambda device: weights * 2
    )  # the weights fit; with gradients and AdamW's moments (x4) they do not
    with pytest.raises(ModelError, match="training state"):
        fresh_copy(base)
