"""Check the engine and trainer on a GPU: same answers as the plain way, and how fast.

Builds a randomly initialised model of SmolLM2-135M's shape (weights are not needed
to time it or to compare two ways of computing the same thing), then measures:
  1. label scoring: the engine's batched, prefix-cached pass vs naive re-encoding
     (fp32 agreement; bf16 choice agreement; queries/s);
  2. a LoRA training step: fp32 vs bf16 autocast, shared-prefix vs whole rows
     (loss agreement in fp32; tokens/s);
  3. batched greedy generation: batch of 8 with left padding vs one at a time.
Prints a table; the last line is one JSON object with every figure.

    python bench/cuda_check.py            # cuda if available, else cpu
    python bench/cuda_check.py --small    # a 2-layer model, for a quick CPU smoke run
"""

from __future__ import annotations

import argparse
import json
import time

import torch
from transformers import LlamaConfig, LlamaForCausalLM

from adaptlab.engine.scoring import label_logprobs
from adaptlab.finetune.loss import TrainRow, batch_loss, shared_prefix


def sync(device):
    if device == "cuda":
        torch.cuda.synchronize()


def timed(fn, device, repeats=3):
    fn()  # warm-up
    sync(device)
    start = time.perf_counter()
    for _ in range(repeats):
        out = fn()
    sync(device)
    return out, (time.perf_counter() - start) / repeats


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--small", action="store_true")
    args = parser.parse_args()
    device = "cuda" if torch.cuda.is_available() else "cpu"
    torch.manual_seed(0)
    shape = (
        dict(
            hidden_size=576, intermediate_size=1536, num_hidden_layers=30, num_attention_heads=9, num_key_value_heads=3
        )
        if not args.small
        else dict(
            hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2
        )
    )
    config = LlamaConfig(vocab_size=49152, max_position_embeddings=2048, tie_word_embeddings=True, **shape)
    model = LlamaForCausalLM(config).to(device).eval()
    gen = torch.Generator().manual_seed(0)

    def ids(n):
        return torch.randint(100, 49000, (n,), generator=gen).tolist()

    prefix = ids(390)  # ~ 8 shots + instruction
    prompts = [prefix + ids(int(n)) for n in torch.randint(20, 40, (32,), generator=gen)]
    labels = [ids(int(n)) + [2] for n in torch.randint(2, 8, (8,), generator=gen)]
    figures: dict = {
        "device": torch.cuda.get_device_name() if device == "cuda" else "cpu",
        "params_m": sum(p.numel() for p in model.parameters()) / 1e6,
    }

    # 1. label scoring
    (engine_scores, _, _), t_engine = timed(lambda: label_logprobs(model, prompts, labels, device), device, 2)
    sub = prompts[:4]

    def naive():
        out = torch.zeros(len(sub), len(labels))
        with torch.inference_mode():
            for q, p in enumerate(sub):
                for j, lab in enumerate(labels):
                    logp = torch.log_softmax(
                        model(input_ids=torch.tensor([p + lab], device=device)).logits[0].float(), -1
                    )
                    out[q, j] = sum(logp[len(p) + i - 1, t].item() for i, t in enumerate(lab))
        return out

    naive_scores, t_naive = timed(naive, device, 1)
    figures["score_max_abs_diff_fp32"] = float((torch.tensor(engine_scores[:4]) - naive_scores).abs().max())
    figures["qps_engine_fp32"] = len(prompts) / t_engine
    figures["qps_naive_fp32"] = len(sub) / t_naive
    bf16_model = LlamaForCausalLM(config).to(device).eval()
    bf16_model.load_state_dict(model.state_dict())
    bf16_model.to(torch.bfloat16)
    (bf16_scores, _, _), t_bf16 = timed(lambda: label_logprobs(bf16_model, prompts, labels, device), device, 2)
    figures["qps_engine_bf16"] = len(prompts) / t_bf16
    figures["bf16_same_choices"] = float((bf16_scores.argmax(1) == engine_scores.argmax(1)).mean())

    # 2. LoRA training step
    from peft import LoraConfig, get_peft_model

    lora = get_peft_model(
        model, LoraConfig(r=8, lora_alpha=16, lora_dropout=0.0, target_modules=["q_proj", "k_proj", "v_proj", "o_proj"])
    )
    rows = [TrainRow(prefix[:70] + ids(18), ids(6) + [2]) for _ in range(16)]
    shared = shared_prefix(rows)
    params = [p for p in lora.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=1e-4)
    tokens = sum(len(r.input_ids) for r in rows)

    def step(use_shared, bf16):
        lora.train()
        with torch.autocast(device_type=device, dtype=torch.bfloat16, enabled=bf16):
            loss = batch_loss(lora, rows, shared if use_shared else [], 2, device)
        loss.backward()
        opt.zero_grad(set_to_none=True)
        return loss.item()

    for key, use_shared, bf16 in [
        ("whole_fp32", False, False),
        ("shared_fp32", True, False),
        ("whole_bf16", False, True),
        ("shared_bf16", True, True),
    ]:
        loss, t = timed(lambda: step(use_shared, bf16), device, 3)  # noqa: B023 (called at once)
        figures[f"train_tok_s_{key}"] = tokens / t
        figures[f"train_loss_{key}"] = loss
    figures["train_loss_abs_diff_fp32"] = abs(figures["train_loss_shared_fp32"] - figures["train_loss_whole_fp32"])
    lora.eval()

    # 3. batched generation
    from adaptlab.engine.generate import generate

    class Tok:  # generate() only needs these, and decode
        eos_token_id = 2
        pad_token_id = 2

        def decode(self, ids, skip_special_tokens=True):
            return " ".join(map(str, ids))

    gen_prompts = [ids(int(n)) for n in torch.randint(10, 60, (8,), generator=gen)]
    with lora.disable_adapter():
        batched, t_batched = timed(
            lambda: generate(lora, Tok(), gen_prompts, 1, device, max_new_tokens=32, max_batch=8), device, 1
        )
        alone, t_alone = timed(
            lambda: [generate(lora, Tok(), [p], 1, device, max_new_tokens=32)[0] for p in gen_prompts], device, 1
        )
    figures["generate_same_outputs"] = [a.text for a in batched] == [a.text for a in alone]
    figures["generate_speedup_batch8"] = t_alone / t_batched

    print(f"{'figure':32} value")
    for key, value in figures.items():
        print(f"{key:32} {value:.4g}" if isinstance(value, float) else f"{key:32} {value}")
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
