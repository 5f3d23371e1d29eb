"""LoRA training and generation on a GPU at a ~1B llama shape: tokens/s, MFU, peak GPU memory (and QLoRA).

Goal: LoRA training at MFU >= 30% (bf16) on an H100-class GPU.

The model is built from a config with random weights (timing needs no trained weights):
hidden 2048, 16 layers, 32 heads (8 KV heads), intermediate 8192, vocabulary 32,000, tied
embeddings: 1.04B parameters (16 x 60.8M per layer + 65.5M embedding), the shape of
Llama-3.2-1B with a smaller vocabulary. Base weights in bf16. It measures, in this order:
  generate   adaptlab's engine (engine/generate.py, as bench/generate.py drives it), greedy,
             --prompt-tokens prompts, --answer-tokens answer tokens per row (no end of turn),
             at batch 1, 8 and 32: answer tokens/s;
  lora       adaptlab's training loop (finetune/trainer.py `train`) over an adapter that
             `kinds/lora.attach_lora` attaches with the lora kind's defaults (r 8, all-linear),
             bf16 autocast, --batch rows of --seq tokens: tokens/s over every input token, after
             --warmup steps that are not timed;
  qlora      the same, over a 4-bit copy made by `kinds/lora.quantized_copy` (bitsandbytes NF4,
             bf16 compute), when bitsandbytes is importable; else skipped.
Peak GPU memory (torch.cuda.max_memory_allocated) is measured per phase.

  MFU = 6 x N x tokens/s / peak dense bf16 FLOP/s, N = every parameter (tied: the embedding once,
  which is the output layer's matmul). Peak figures used (vendor dense bf16, no sparsity):
  H100 SXM and H200 989 TFLOP/s, H100 PCIe 756, H100 NVL 835, A100 312, L40S 362, L4 121; another
  card needs --peak-tflops. 6N is the usual convention (PaLM's MFU). A LoRA step does ~4N per token
  (no gradients for the frozen weights; ../shared MEASURED), so `mfu_4n` beside it is the
  share of the peak the hardware actually ran. Attention's own FLOPs (12 x layers x hidden x seq
  per token, ~3% at 512 tokens) are left out of both.

    python bench/gpu.py [--batch 16] [--seq 512] [--steps 20] [--peak-tflops 989] [--out
    bench/results/gpu-<device>.json]
    python bench/gpu.py --smoke      # a 2-layer model on whatever device there is: checks the script, not the GPU

Without CUDA (and without --smoke) it exits with code 2 and says so. Last line: one JSON object,
which the script also writes to --out.
"""

from __future__ import annotations

import argparse
import gc
import re
import sys
import tempfile
import time
from pathlib import Path

from _results import write_result
from generate import NoStop  # a tokenizer stand-in: no end of sequence, so every row runs to the limit

SHAPE = dict(
    hidden_size=2048,
    intermediate_size=8192,
    num_hidden_layers=16,
    num_attention_heads=32,
    num_key_value_heads=8,
    vocab_size=32000,
)
SMOKE_SHAPE = dict(
    hidden_size=64,
    intermediate_size=128,
    num_hidden_layers=2,
    num_attention_heads=4,
    num_key_value_heads=2,
    vocab_size=1000,
)
PEAK_BF16_TFLOPS = [
    ("H100 NVL", 835.0),
    ("H100 PCIe", 756.0),
    ("H100", 989.0),
    ("H200", 989.0),
    ("GH200", 989.0),
    ("A100", 312.0),
    ("L40S", 362.0),
    ("L4", 121.0),
]  # dense; first match wins
GENERATE_BATCHES = (1, 8, 32)
NO_CUDA = (
    "bench/gpu.py needs a CUDA GPU: torch.cuda.is_available() is False on this machine. Run it on a GPU "
    "machine (or add --smoke to check the script itself on this one)."
)


def peak_tflops(device_name: str, given: float | None) -> float | None:
    if given is not None:
        return given
    return next((tflops for name, tflops in PEAK_BF16_TFLOPS if name.lower() in device_name.lower()), None)


def sync(device: str) -> None:
    import torch

    if device.startswith("cuda"):
        torch.cuda.synchronize()


def reset_memory(device: str) -> None:
    import torch

    gc.collect()
    if device.startswith("cuda"):
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats()


def peak_memory_gb(device: str) -> float | None:
    import torch

    return torch.cuda.max_memory_allocated() / 2**30 if device.startswith("cuda") else None


def build_model(shape: dict, device: str):
    """A llama of `shape` with random weights, bf16, made directly on `device`."""
    import torch
    from transformers import AutoModelForCausalLM, LlamaConfig

    config = LlamaConfig(max_position_embeddings=4096, tie_word_embeddings=True, **shape)
    torch.manual_seed(0)
    with torch.device(device):
        model = AutoModelForCausalLM.from_config(config, dtype=torch.bfloat16)
    return model.eval()


def random_ids(count: int, length: int, vocab: int, seed: int) -> list[list[int]]:
    import torch

    g = torch.Generator().manual_seed(seed)
    return torch.randint(10, vocab, (count, length), generator=g).tolist()


def measure_generate(model, device: str, prompt_tokens: int, answer_tokens: int, vocab: int) -> list[dict]:
    from adaptlab.engine.generate import generate

    rows = []
    for batch in GENERATE_BATCHES:
        prompts = random_ids(batch, prompt_tokens, vocab, seed=batch)
        generate(model, NoStop(), prompts[:1], -1, device, 2)  # warm-up
        reset_memory(device)
        sync(device)
        start = time.perf_counter()
        generate(model, NoStop(), prompts, -1, device, answer_tokens)
        sync(device)
        seconds = time.perf_counter() - start
        rows.append(
            {
                "batch": batch,
                "seconds": seconds,
                "answer_tok_s": batch * answer_tokens / seconds,
                "peak_gpu_gb": peak_memory_gb(device),
            }
        )
        print(f"  generate batch {batch}: {rows[-1]['answer_tok_s']:.0f} answer tok/s", flush=True)
    return rows


def measure_training(base, device: str, args, vocab: int, quantize: str | None = None) -> dict:
    """Warm-up steps, then --steps timed steps of adaptlab's loop over a fresh default LoRA adapter."""
    from adaptlab.finetune.loss import TrainRow
    from adaptlab.finetune.trainer import TrainSettings, train
    from adaptlab.kinds.lora import LoraConfig, attach_lora, trained_modules

    cfg = LoraConfig(name="lora", quantize=quantize)
    adapter = attach_lora(base, "bench", cfg, seed=0)
    answer = max(1, args.seq // 4)  # the loss on the last quarter of each row, as a prompt and its answer

    def rows(steps: int, seed: int) -> list:
        ids = random_ids(steps * args.batch, args.seq, vocab, seed)
        return [TrainRow(r[:-answer], r[-answer:]) for r in ids]

    def run(steps: int, seed: int):
        settings = TrainSettings(
            epochs=1,
            learning_rate=1e-4,
            batch_size=args.batch,
            warmup_ratio=0.0,
            bf16=True,
            seed=seed,
            length_grouped=False,
            patience=None,
        )
        sync(device)
        return train(base.model, rows(steps, seed), settings, device, pad_id=0)

    run(args.warmup, seed=1)
    reset_memory(device)
    sync(device)
    start = time.perf_counter()
    result = run(args.steps, seed=2)
    sync(device)
    seconds = time.perf_counter() - start
    tokens = result.state.tokens
    return {
        "quantize": quantize,
        "steps": args.steps,
        "batch": args.batch,
        "seq": args.seq,
        "tokens": tokens,
        "seconds": seconds,
        "tok_s": tokens / seconds,
        "loop_tok_s": result.to_dict()["tokens_per_second"],
        "peak_gpu_gb": peak_memory_gb(device),
        **trained_modules(base.model, adapter),
    }


def saved(model) -> Path:
    """The random weights as a model folder (before an adapter wraps its layers), for the QLoRA copy to load."""
    folder = Path(tempfile.mkdtemp(prefix="adaptlab-gpu-bench-"))
    model.save_pretrained(folder, safe_serialization=True)
    return folder


def qlora_base(folder: Path, device: str):
    """Those weights loaded again in 4-bit through the lora kind's own QLoRA path."""
    from adaptlab.kinds.lora import quantized_copy
    from adaptlab.models import BaseModel

    return quantized_copy(BaseModel(str(folder), None, None, device, -1, 4096))


def main() -> None:
    import importlib.util

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--batch", type=int, default=16, help="rows per training step")
    parser.add_argument("--seq", type=int, default=512, help="tokens per training row")
    parser.add_argument("--steps", type=int, default=20, help="timed training steps")
    parser.add_argument("--warmup", type=int, default=3, help="training steps before the timed ones")
    parser.add_argument("--prompt-tokens", type=int, default=128)
    parser.add_argument("--answer-tokens", type=int, default=128)
    parser.add_argument("--peak-tflops", type=float, help="the GPU's dense bf16 peak, for a card not in the table")
    parser.add_argument(
        "--smoke", action="store_true", help="a 2-layer model, on a CPU if there is no GPU: checks the script runs"
    )
    parser.add_argument("--out", help="default: bench/results/gpu-<device>.json")
    args = parser.parse_args()

    import torch

    if not torch.cuda.is_available() and not args.smoke:
        print(NO_CUDA, file=sys.stderr)
        sys.exit(2)
    device = "cuda" if torch.cuda.is_available() else "cpu"
    device_name = torch.cuda.get_device_name() if device == "cuda" else "cpu"
    shape = SMOKE_SHAPE if args.smoke else SHAPE
    if args.smoke:
        args.batch, args.seq, args.steps, args.warmup, args.prompt_tokens, args.answer_tokens = 2, 32, 2, 1, 8, 4
    peak = peak_tflops(device_name, args.peak_tflops)
    slug = re.sub(r"[^a-z0-9]+", "-", device_name.lower()).strip("-") + ("-smoke" if args.smoke else "")
    out = args.out or str(Path(__file__).parent / "results" / f"gpu-{slug}.json")

    from adaptlab.models import BaseModel

    model = build_model(shape, device)
    params = sum(p.numel() for p in model.parameters())
    print(f"{device_name}: llama {shape}, {params / 1e9:.3f}B parameters, bf16 peak {peak or '?'} TFLOP/s", flush=True)
    has_bnb = importlib.util.find_spec("bitsandbytes") is not None and device == "cuda"
    folder = saved(model) if has_bnb else None
    generation = measure_generate(model, device, args.prompt_tokens, args.answer_tokens, shape["vocab_size"])
    trainings = [
        measure_training(BaseModel("random-llama", model, None, device, -1, 4096), device, args, shape["vocab_size"])
    ]
    if folder is not None:
        del model  # the bf16 copy's 2 GB, before the 4-bit one loads
        trainings.append(
            measure_training(qlora_base(folder, device), device, args, shape["vocab_size"], quantize="4bit")
        )
    for t in trainings:
        t["mfu"] = 6 * params * t["tok_s"] / (peak * 1e12) if peak else None
        t["mfu_4n"] = 4 * params * t["tok_s"] / (peak * 1e12) if peak else None

    print(f"\n{'what':<22} {'tok/s':>10} {'MFU (6N)':>9} {'4N':>6} {'peak GPU GB':>11}")
    for g in generation:
        memory = f"{g['peak_gpu_gb']:.1f}" if g["peak_gpu_gb"] is not None else "-"
        print(f"{'generate batch ' + str(g['batch']):<22} {g['answer_tok_s']:>10.0f} {'-':>9} {'-':>6} {memory:>11}")
    for t in trainings:
        name = "qlora 4bit train" if t["quantize"] else "lora bf16 train"
        mfu, mfu4 = (f"{t['mfu']:.1%}", f"{t['mfu_4n']:.1%}") if t["mfu"] is not None else ("-", "-")
        memory = f"{t['peak_gpu_gb']:.1f}" if t["peak_gpu_gb"] is not None else "-"
        print(f"{name:<22} {t['tok_s']:>10.0f} {mfu:>9} {mfu4:>6} {memory:>11}")
    if not has_bnb:
        print("qlora: skipped (needs CUDA and bitsandbytes: pip install bitsandbytes)")
    lora = trainings[0]
    if lora["mfu"] is not None:
        print(
            f"goal LoRA MFU >= 30%: {'met' if lora['mfu'] >= 0.30 else 'not met'} "
            f"({lora['mfu']:.1%}, {lora['target_modules']}, r 8)"
        )
    write_result(
        out,
        {
            "bench": "gpu",
            "device": device_name,
            "smoke": args.smoke,
            "shape": shape,
            "parameters": params,
            "peak_bf16_tflops": peak,
            "torch": torch.__version__,
            "generate": generation,
            "train": trainings,
            "qlora": has_bnb,
        },
    )


if __name__ == "__main__":
    main()
