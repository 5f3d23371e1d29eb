"""`lora`: a PEFT LoRA adapter trained over the shared base model, loss on the answer tokens only.

The adapter is the only new thing: many tasks share one base model in memory, each
switching its own adapter on (the server does exactly that).

Adapters go on every linear layer of the architecture but the output head (PEFT's
`all-linear`) unless `target_modules` names them; the solver's details list the
modules that were trained (`lora.target_modules`). `quantize: 4bit` is QLoRA: on a
CUDA GPU, a 4-bit copy of the base model (bitsandbytes NF4, bf16 compute) is trained
under the adapter instead of the shared one.
"""

from __future__ import annotations

import hashlib
import importlib.util
import re
from dataclasses import replace
from pathlib import Path
from typing import Annotated, Final, Literal

from pydantic import Field

from adaptlab.config import TrainConfig
from adaptlab.engine.lm_solver import LMSolver
from adaptlab.errors import AdaptlabError, ConfigError
from adaptlab.finetune.fit import FineTune
from adaptlab.kinds import Kind
from adaptlab.models import BaseModel
from adaptlab.models.memory import ADAPTER_SHARE
from adaptlab.solver import read_solver_json
from adaptlab.task import Task

NAME = "lora"
ALL_LINEAR: Final = "all-linear"  # PEFT's shorthand: every nn.Linear (and Conv1D, Linear4bit) but the output head


class LoraConfig(TrainConfig):
    """PEFT LoRA fine-tuning, loss on the answer tokens only."""

    name: Literal["lora"]
    r: int = Field(8, gt=0, description="LoRA rank.")
    alpha: int = Field(16, gt=0, description="LoRA scaling numerator (scale = alpha / r).")
    dropout: float = Field(
        0.0,
        ge=0,
        lt=1,
        description="Dropout on the LoRA input. 0 by default: 0.05 scored the same on the three examples (2 "
        "seeds each) and trained 11-26% slower with more memory (docs/defaults.md).",
    )
    target_modules: Annotated[list[str], Field(min_length=1)] | Literal["all-linear"] = Field(
        ALL_LINEAR,
        description="Module names that get adapters (e.g. [q_proj, k_proj, v_proj, o_proj]), or all-linear: "
        "every linear layer of the architecture but the output head (PEFT's all-linear; on "
        "llama-shaped models q, k, v, o, gate, up and down). The names trained are in the solver's "
        "details (lora.target_modules).",
    )
    quantize: Literal["4bit"] | None = Field(
        None,
        description="4bit: QLoRA. The base model is loaded again in 4-bit (bitsandbytes NF4, bf16 compute) and "
        "the adapter trained over that copy; the saved adapter loads onto the usual base model. "
        "Needs a CUDA GPU and `pip install bitsandbytes` (or adaptlab[qlora]); leave out to train "
        "over the shared base model as loaded.",
    )
    learning_rate: float = Field(
        5e-3,
        gt=0,
        description="Peak learning rate (linear warm-up, cosine decay); docs/defaults.md: why 5e-3 at 135M parameters.",
    )


def attach_lora(base: BaseModel, name: str, cfg: LoraConfig, seed: int) -> str:
    """Add a fresh LoRA adapter to the shared base model; only its weights will train. Returns its name."""
    import torch
    from peft import LoraConfig as PeftLoraConfig
    from peft import PeftModel, get_peft_model

    adapter = re.sub(r"\W", "_", name)
    targets = cfg.target_modules if cfg.target_modules == ALL_LINEAR else list(cfg.target_modules)
    peft_config = PeftLoraConfig(
        r=cfg.r, lora_alpha=cfg.alpha, lora_dropout=cfg.dropout, target_modules=targets, task_type="CAUSAL_LM"
    )
    torch.manual_seed(seed)  # the adapter's initial weights
    model = base.model
    if isinstance(model, PeftModel):
        if adapter in model.peft_config:
            model.delete_adapter(adapter)
        model.add_adapter(adapter, peft_config)
    else:
        model = base.model = get_peft_model(model, peft_config, adapter_name=adapter)
    model.set_adapter(adapter)
    for param_name, param in model.named_parameters():
        param.requires_grad = "lora_" in param_name and f".{adapter}." in param_name
    return adapter


def trained_modules(model, adapter: str) -> dict:
    """What an attached adapter trains: the module names it sits on (as `target_modules` would name them), how many
    layers, how many weights."""
    from peft.tuners.lora import LoraLayer

    layers = [
        name for name, module in model.named_modules() if isinstance(module, LoraLayer) and adapter in module.lora_A
    ]
    weights = sum(p.numel() for name, p in model.named_parameters() if "lora_" in name and f".{adapter}." in name)
    return {
        "target_modules": sorted({name.rsplit(".", 1)[-1] for name in layers}),
        "layers": len(layers),
        "trainable_parameters": weights,
    }


def check_quantize(cfg: LoraConfig, device: str) -> None:
    """Refuse `quantize` where it cannot run: bitsandbytes' 4-bit kernels need a CUDA GPU and the package itself."""
    if cfg.quantize is None:
        return
    if not device.startswith("cuda"):
        raise ConfigError(
            f"strategy {cfg.key!r} has quantize: {cfg.quantize} (QLoRA), which needs a CUDA GPU; the "
            f"base model is on {device}. Run it on a machine with one (and `pip install "
            "bitsandbytes`), or remove quantize"
        )
    if importlib.util.find_spec("bitsandbytes") is None:
        raise ConfigError(
            f"strategy {cfg.key!r} has quantize: {cfg.quantize} (QLoRA), which needs bitsandbytes: "
            "`pip install bitsandbytes` (or `pip install adaptlab[qlora]`), or remove quantize"
        )


def quantized_copy(base: BaseModel) -> BaseModel:
    """The base model loaded again in 4-bit NF4 on its GPU, bf16 compute, ready for an adapter (QLoRA); the shared copy
    stays as it was."""
    import torch
    from peft import prepare_model_for_kbit_training
    from transformers import AutoModelForCausalLM, BitsAndBytesConfig

    from adaptlab.models.base import resolve_model_folder

    four_bit = BitsAndBytesConfig(
        load_in_4bit=True,
        bnb_4bit_quant_type="nf4",
        bnb_4bit_compute_dtype=torch.bfloat16,
        bnb_4bit_use_double_quant=True,
    )
    model = AutoModelForCausalLM.from_pretrained(
        resolve_model_folder(base.name),
        local_files_only=True,
        quantization_config=four_bit,
        dtype=torch.bfloat16,
        device_map={"": base.device},
    )
    # Norms and embeddings to fp32, inputs' gradients on; the loop keeps its own memory settings (no checkpointing
    # here).
    model = prepare_model_for_kbit_training(model, use_gradient_checkpointing=False)
    return replace(base, model=model)


def load_adapter(base: BaseModel, folder: Path, name: str) -> str:
    """Load a saved adapter into `base` under `name` (PEFT multi-adapter); a failed load leaves nothing behind.

    PEFT keeps a failed adapter's name (a retry would find it and answer with no
    weights), and a failed first adapter leaves its layers wrapped around the base
    model's. Both are undone here.
    """
    from peft import PeftConfig, PeftModel

    name = re.sub(r"\W", "_", name)
    model = base.model
    if isinstance(model, PeftModel) and name in model.peft_config:
        return name
    try:
        config = PeftConfig.from_pretrained(str(folder))
    except Exception as exc:
        raise AdaptlabError(f"{Path(folder).name}: adapter_config.json cannot be read ({type(exc).__name__})") from None
    wrapped = model if isinstance(model, PeftModel) else PeftModel(model, config, adapter_name=name)
    try:
        wrapped.load_adapter(str(folder), adapter_name=name)
    except Exception as exc:
        if wrapped is model:
            if name in model.peft_config:
                model.delete_adapter(name)
        else:
            wrapped.unload()  # the base model's own layers back in place
        raise AdaptlabError(
            f"the adapter does not load onto base model {base.name!r} ({type(exc).__name__}); was it "
            "trained on another base?"
        ) from None
    base.model = wrapped
    base.model.eval()
    return name


def _prepare(base: BaseModel, task: Task, cfg: LoraConfig, seed: int):
    check_quantize(cfg, base.device)
    if cfg.quantize:
        base = quantized_copy(base)
    return base, attach_lora(
        base, f"{task.name}_{cfg.key}", cfg, seed
    )  # by key: two lora contenders of one run keep their own adapters


class LoraFineTune(FineTune[LoraConfig]):
    """The one fine-tuning strategy; the solver's details also say which modules the adapter trained."""

    def fit(self, task: Task, train_set, dev=None, progress=None) -> LMSolver:
        solver = super().fit(task, train_set, dev, progress)
        assert solver.adapter is not None  # _prepare attached one
        solver.details["lora"] = trained_modules(solver.base.model, solver.adapter) | {"quantize": self.config.quantize}
        return solver


def build(config: LoraConfig, ctx) -> FineTune:
    base = ctx.model(config.model)
    check_quantize(config, base.device)  # when the contender is built, before its data is read or a step is trained
    return LoraFineTune(
        base, config, _prepare, seed=ctx.seed, on_step=ctx.on_step, dev=ctx.dev, documents=ctx.documents, **ctx.extra
    )


def load(folder: Path, ctx) -> LMSolver:
    """The adapter in `folder`, loaded into the base model it was trained on (`ctx.base_for` refuses another)."""
    info = read_solver_json(folder, NAME)
    base = ctx.base_for(info)
    return LMSolver(NAME, base, Task.from_dict(info["task"]), adapter=load_saved_adapter(base, folder))


def load_saved_adapter(base: BaseModel, folder: Path) -> str:
    """The adapter a solver saved in `folder`, loaded under a name of its own (one per saved folder)."""
    return load_adapter(base, folder, "v_" + hashlib.sha256(str(Path(folder).resolve()).encode()).hexdigest()[:12])


SPACE = {
    "learning_rate": ("log", 5e-4, 1e-2),
    "epochs": ("choice", [1, 2, 3, 5]),
    "r": ("choice", [4, 8, 16]),
}  # docs/defaults.md: below 5e-4 underfit, above 1e-2 diverged, on both data sets
KIND = Kind(
    NAME,
    "fine_tuned",
    LoraConfig,
    build=build,
    load=load,
    tier=3,
    short_prompts=True,
    trained_share=ADAPTER_SHARE,
    summary="a LoRA adapter over the shared base model",
    space=SPACE,
)
