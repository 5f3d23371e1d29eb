"""LoRA's targets (all-linear unless named, recorded in the solver), QLoRA's refusal off CUDA, bench/gpu.py without a
GPU."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from pydantic import ValidationError
from test_finetune import TASK, TRAIN

from adaptlab.errors import ConfigError
from adaptlab.kinds import strategy
from adaptlab.kinds.lora import LoraConfig, attach_lora, check_quantize, trained_modules

ROOT = Path(__file__).resolve().parents[1]
EVERY_LINEAR = [
    "down_proj",
    "gate_proj",
    "k_proj",
    "o_proj",
    "q_proj",
    "up_proj",
    "v_proj",
]  # a llama layer's linears, sorted; not lm_head
FAST = dict(epochs=1, batch_size=4, bf16=False, dev_fraction=0)  # one quick epoch, every row trained on


def wrapped(model) -> set[str]:
    """Full names of the modules carrying a LoRA adapter."""
    from peft.tuners.lora import LoraLayer

    return {name for name, module in model.named_modules() if isinstance(module, LoraLayer)}


def test_default_targets_are_every_linear_layer_but_the_output_head(tiny_base):
    assert LoraConfig(name="lora").target_modules == "all-linear"
    adapter = attach_lora(tiny_base, "t", LoraConfig(name="lora"), seed=0)
    trained = trained_modules(tiny_base.model, adapter)
    assert trained["target_modules"] == EVERY_LINEAR
    assert trained["layers"] == 2 * 7 == len(wrapped(tiny_base.model))  # 2 layers x 7 linears
    assert not any("lm_head" in name or "embed" in name for name in wrapped(tiny_base.model))
    # r 8 on each: (in + out) x 8 weights; hidden 16, intermediate 32, one KV head of 8 (k, v: 16 -> 8)
    per_layer = 8 * ((16 + 16) * 2 + (16 + 8) * 2 + (16 + 32) * 2 + (32 + 16))
    assert trained["trainable_parameters"] == 2 * per_layer


def test_named_targets_are_kept(tiny_base):
    adapter = attach_lora(tiny_base, "t", LoraConfig(name="lora", target_modules=["q_proj", "v_proj"]), seed=0)
    assert trained_modules(tiny_base.model, adapter)["target_modules"] == ["q_proj", "v_proj"]
    assert {name.rsplit(".", 1)[-1] for name in wrapped(tiny_base.model)} == {"q_proj", "v_proj"}


def test_the_solver_records_and_saves_the_modules_it_trained(tiny_base, tmp_path):
    solver = strategy(LoraConfig(name="lora", **FAST), tiny_base, seed=0).fit(TASK, TRAIN)
    assert solver.details["lora"]["target_modules"] == EVERY_LINEAR and solver.details["lora"]["quantize"] is None
    assert solver.details["config"]["target_modules"] == "all-linear"
    solver.save(tmp_path / "solver")
    saved = json.loads((tmp_path / "solver" / "solver.json").read_text())
    assert saved["lora"] == solver.details["lora"]
    adapter_config = json.loads((tmp_path / "solver" / "adapter_config.json").read_text())
    assert {name.rsplit(".", 1)[-1] for name in adapter_config["target_modules"]} == set(
        EVERY_LINEAR
    )  # resolved names, not the shorthand


def test_two_lora_contenders_keep_their_own_adapters(tiny_base):
    first = strategy(LoraConfig(name="lora", id="lora-a", **FAST), tiny_base, seed=0).fit(TASK, TRAIN)
    second = strategy(LoraConfig(name="lora", id="lora-b", target_modules=["q_proj"], **FAST), tiny_base, seed=0).fit(
        TASK, TRAIN
    )
    assert first.adapter != second.adapter and {first.adapter, second.adapter} <= set(tiny_base.model.peft_config)
    assert trained_modules(tiny_base.model, first.adapter)["target_modules"] == EVERY_LINEAR


@pytest.mark.parametrize(
    "bad", [{"target_modules": []}, {"target_modules": "all"}, {"quantize": "8bit"}, {"quantize": 4}]
)
def test_config_refuses_bad_targets_and_quantize(bad):
    with pytest.raises(ValidationError) as caught:
        LoraConfig(name="lora", **bad)
    assert next(iter(bad)) in str(caught.value)


def test_quantize_4bit_on_a_cpu_is_a_config_error_naming_the_fix(tiny_base):
    assert (
        LoraConfig(name="lora", quantize="4bit").quantize == "4bit"
    )  # valid as a setting; refused where it cannot run
    with pytest.raises(ConfigError) as caught:
        strategy(LoraConfig(name="lora", id="q", quantize="4bit"), tiny_base, seed=0)
    message = str(caught.value)
    assert (
        "'q'" in message
        and "quantize: 4bit" in message
        and "CUDA GPU" in message
        and "pip install bitsandbytes" in message
        and "cpu" in message
    )


def test_quantize_on_a_gpu_without_bitsandbytes_says_how_to_install_it(monkeypatch):
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name == "bitsandbytes" else real(name, *a)
    )
    with pytest.raises(ConfigError, match=r"needs bitsandbytes: `pip install bitsandbytes`"):
        check_quantize(LoraConfig(name="lora", quantize="4bit"), "cuda:0")
    check_quantize(LoraConfig(name="lora"), "cpu")  # no quantize: nothing to refuse


def test_bench_gpu_without_cuda_exits_2_and_says_why():
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU: bench/gpu.py would run")
    done = subprocess.run([sys.executable, str(ROOT / "bench" / "gpu.py")], capture_output=True, text=True, timeout=120)
    assert done.returncode == 2, done.stderr
    assert "needs a CUDA GPU" in done.stderr and "torch.cuda.is_available() is False" in done.stderr
    assert done.stdout == ""  # nothing measured, no JSON line
