"""Batched greedy generation: answer tokens per second against the usual ways, and against the hardware.

On the embedded SmolLM2-135M, for prompts of 50 and 1,000 tokens at batch sizes 1, 8 and 32:
  engine       adaptlab's `generate` (engine/generate.py) in fp32, and in bf16 where this CPU
               runs bf16 faster (what `compare` picks then, after checking answers agree);
  one-by-one   transformers' `model.generate`, one prompt at a time (its default cache and
               attention), on --baseline-prompts prompts; its rate does not depend on the batch;
  llama.cpp    llama-cpp-python's low-level API on the same GGUF file (Q4_1 weights: 4-bit,
               where the engine runs the dequantised fp32/bf16 weights), every prompt a sequence
               of one batch, greedy (argmax of the logits), if `llama_cpp` is importable.
Every row generates exactly --tokens answer tokens (the end of turn is ignored), so the rates
compare the same work. Prompts are real text (Restaurant-8k utterances, CC-BY-4.0) cut to the
length, a different slice per row: no shared prefix, the engine's prefix cache does not help.

  answer tok/s   answer tokens / wall time of the call (prompt processing included);
  of 2N limit    answer tok/s x 2N FLOPs / this process's measured matmul FLOP/s (2048^3, fp32;
                 bf16 for bf16 rows). With 1,000-token prompts most of the work is the prompt,
                 so "all tok/s" (prompt + answer tokens per second) is shown beside it.
The engine's answers are checked against one-by-one's (same tokens, fp32) on the baseline prompts.

    python bench/generate.py [--tokens 64] [--cases 50x1,50x8,...] [--baseline-prompts 2] [--out
    bench/results/generate-cpu.json]

Last line: one JSON object, which the script also writes to --out.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
from _results import write_result

from adaptlab.engine.generate import generate
from adaptlab.models import load_base_model
from adaptlab.models.device import bf16_is_fast
from adaptlab.models.embedded import embedded_gguf

DATA = Path(__file__).parents[1] / "examples" / "booking-sql" / "test.jsonl"
CASES = [(50, 1), (50, 8), (50, 32), (1000, 1), (1000, 8), (1000, 32)]


class NoStop:
    """A tokenizer stand-in for `generate`: no end-of-sequence token, so every row runs to the limit."""

    eos_token_id = None
    pad_token_id = 0

    def decode(self, ids, skip_special_tokens=True):
        return " ".join(map(str, ids))


def matmul_flops(dtype) -> float:
    import torch

    a = torch.randn(2048, 2048, dtype=dtype)
    a @ a
    start = time.perf_counter()
    for _ in range(5):
        a @ a
    return 5 * 2 * 2048**3 / (time.perf_counter() - start)


def real_prompts(tokenizer, length: int, count: int) -> list[list[int]]:
    """`count` different slices of `length` tokens of real text."""
    texts = [json.loads(line)["input"] for line in DATA.read_text().splitlines()]
    stream = tokenizer("\n".join(texts * 50), add_special_tokens=False)["input_ids"]
    if len(stream) < length * count:
        raise SystemExit(f"{DATA} holds {len(stream)} tokens; {length * count} needed")
    return [stream[i * length : (i + 1) * length] for i in range(count)]


def engine(base, prompts, tokens, bf16):
    generate(base.model, NoStop(), prompts[:2], -1, base.device, 2, bf16=bf16)  # warm-up
    start = time.perf_counter()
    answers = generate(base.model, NoStop(), prompts, -1, base.device, tokens, bf16=bf16)
    return time.perf_counter() - start, answers


def one_by_one(base, prompts, tokens):
    import torch

    with torch.inference_mode():  # warm-up
        base.model.generate(input_ids=torch.tensor([prompts[0]]), max_new_tokens=2, do_sample=False, pad_token_id=0)
    out, start = [], time.perf_counter()
    with torch.inference_mode():
        for p in prompts:
            ids = torch.tensor([p])
            new = base.model.generate(
                input_ids=ids,
                attention_mask=torch.ones_like(ids),
                max_new_tokens=tokens,
                min_new_tokens=tokens,
                do_sample=False,
                pad_token_id=0,
            )
            out.append(new[0, len(p) :].tolist())
    return time.perf_counter() - start, out


class LlamaCpp:
    """Batched greedy decoding with llama.cpp: one sequence per prompt, all in each llama_decode call."""

    def __init__(self, gguf: Path, threads: int):
        import llama_cpp as L

        self.L, self.threads = L, threads
        L.llama_backend_init()
        self.model = L.llama_model_load_from_file(str(gguf).encode(), L.llama_model_default_params())
        self.n_vocab = L.llama_vocab_n_tokens(L.llama_model_get_vocab(self.model))

    def run(self, prompts: list[list[int]], tokens: int) -> tuple[float, list[list[int]]]:
        L = self.L
        params = L.llama_context_default_params()
        params.n_ctx = len(prompts) * (len(prompts[0]) + tokens) + 64
        params.n_batch = params.n_ubatch = 512
        params.n_seq_max = len(prompts)
        params.n_threads = params.n_threads_batch = self.threads
        ctx = L.llama_init_from_model(self.model, params)
        batch = L.llama_batch_init(max(512, len(prompts)), 0, len(prompts))
        try:
            start = time.perf_counter()
            # The prompts, 512 tokens per llama_decode call; each sequence's last token gives logits.
            flat = [(t, pos, s, pos == len(p) - 1) for s, p in enumerate(prompts) for pos, t in enumerate(p)]
            chosen = {}  # sequence -> its first answer token
            for chunk in range(0, len(flat), 512):
                batch.n_tokens, last = 0, {}
                for t, pos, s, want in flat[chunk : chunk + 512]:
                    self._add(batch, t, pos, s, want)
                    if want:
                        last[s] = batch.n_tokens - 1
                self._decode(ctx, batch)
                chosen |= {s: self._argmax(ctx, i) for s, i in last.items()}
            answers = [[chosen[s]] for s in range(len(prompts))]
            for step in range(1, tokens):
                batch.n_tokens = 0
                for s, p in enumerate(prompts):
                    self._add(batch, answers[s][-1], len(p) + step - 1, s, True)
                self._decode(ctx, batch)
                for s in range(len(prompts)):
                    answers[s].append(self._argmax(ctx, s))
            return time.perf_counter() - start, answers
        finally:
            L.llama_batch_free(batch)
            L.llama_free(ctx)

    @staticmethod
    def _add(batch, token, pos, seq, logits):
        i = batch.n_tokens
        batch.token[i], batch.pos[i], batch.n_seq_id[i], batch.logits[i] = token, pos, 1, logits
        batch.seq_id[i][0] = seq
        batch.n_tokens += 1

    def _decode(self, ctx, batch):
        if self.L.llama_decode(ctx, batch) != 0:
            raise RuntimeError("llama_decode failed")

    def _argmax(self, ctx, i):
        return int(np.ctypeslib.as_array(self.L.llama_get_logits_ith(ctx, i), shape=(self.n_vocab,)).argmax())


def main():
    import torch

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tokens", type=int, default=64, help="answer tokens per row")
    parser.add_argument("--baseline-prompts", type=int, default=2, help="prompts one-by-one runs per prompt length")
    parser.add_argument(
        "--cases", default=",".join(f"{p}x{b}" for p, b in CASES), help="prompt tokens x batch size, comma-separated"
    )
    parser.add_argument("--out", default=str(Path(__file__).parent / "results" / "generate-cpu.json"))
    args = parser.parse_args()
    cases = [tuple(map(int, c.split("x"))) for c in args.cases.split(",")]

    threads = torch.get_num_threads()
    base = load_base_model("smollm2-135m-instruct")
    two_n = 2 * base.parameters
    peak = {"fp32": matmul_flops(torch.float32), "bf16": matmul_flops(torch.bfloat16)}
    precisions = ["fp32"] + (["bf16"] if bf16_is_fast(base.device) else [])
    try:
        llama = LlamaCpp(embedded_gguf(), threads)
    except ImportError:
        llama = None
    rows, baseline, agree = [], {}, {}
    for length in sorted({p for p, _ in cases}):
        prompts = real_prompts(base.tokenizer, length, max(b for _, b in cases))
        seconds, reference = one_by_one(base, prompts[: args.baseline_prompts], args.tokens)
        baseline[length] = args.baseline_prompts * args.tokens / seconds
        _, ours = engine(base, prompts[: args.baseline_prompts], args.tokens, False)
        agree[length] = all(a.text == " ".join(map(str, r)) for a, r in zip(ours, reference))
        for size in sorted(b for p, b in cases if p == length):
            for precision in precisions:
                seconds, _ = engine(base, prompts[:size], args.tokens, precision == "bf16")
                rows.append(
                    {
                        "prompt": length,
                        "batch": size,
                        "method": f"engine {precision}",
                        "seconds": seconds,
                        "precision": precision,
                    }
                )
                print(f"  prompt {length} batch {size} engine {precision}: {seconds:.1f} s", flush=True)
            if llama:
                seconds, _ = llama.run(prompts[:size], args.tokens)
                rows.append(
                    {
                        "prompt": length,
                        "batch": size,
                        "method": "llama.cpp Q4_1",
                        "seconds": seconds,
                        "precision": "q4_1",
                    }
                )
                print(f"  prompt {length} batch {size} llama.cpp: {seconds:.1f} s", flush=True)
    for row in rows:
        answer = row["batch"] * args.tokens / row["seconds"]
        row |= {
            "answer_tok_s": answer,
            "all_tok_s": row["batch"] * (row["prompt"] + args.tokens) / row["seconds"],
            "x_one_by_one": answer / baseline[row["prompt"]],
            "of_2n_limit": answer * two_n / peak[row["precision"]] if row["precision"] in peak else None,
        }
    for row in rows:
        same = next(
            (
                r
                for r in rows
                if r["method"].startswith("llama") and (r["prompt"], r["batch"]) == (row["prompt"], row["batch"])
            ),
            None,
        )
        row["x_llama_cpp"] = row["answer_tok_s"] / same["answer_tok_s"] if same and row is not same else None

    print(
        f"\nSmolLM2-135M, {args.tokens} answer tokens per row, {threads} threads; one-by-one transformers generate: "
        + ", ".join(f"{v:.1f} tok/s at prompt {k}" for k, v in baseline.items())
    )
    print(
        f"measured matmul: fp32 {peak['fp32'] / 1e9:.0f} GFLOP/s, bf16 {peak['bf16'] / 1e9:.0f} "
        f"GFLOP/s; 2N = {two_n / 1e9:.2f} GFLOP per token"
    )
    print(
        f"{'prompt':>6} {'batch':>5}  {'method':<15} {'answer tok/s':>12} {'all tok/s':>9} "
        f"{'x one-by-one':>12} {'of 2N limit':>11} {'x llama.cpp':>11}"
    )
    for r in rows:
        limit = f"{r['of_2n_limit']:.0%}" if r["of_2n_limit"] is not None else "-"
        versus = f"{r['x_llama_cpp']:.2f}" if r["x_llama_cpp"] is not None else "-"
        print(
            f"{r['prompt']:>6} {r['batch']:>5}  {r['method']:<15} {r['answer_tok_s']:>12.1f} "
            f"{r['all_tok_s']:>9.0f} {r['x_one_by_one']:>12.1f} {limit:>11} {versus:>11}"
        )
    print("engine fp32 answers = one-by-one's: " + ", ".join(f"prompt {k}: {v}" for k, v in agree.items()))
    result = {
        "bench": "generate",
        "model": base.name,
        "parameters": base.parameters,
        "threads": threads,
        "answer_tokens": args.tokens,
        "matmul_gflops": {k: v / 1e9 for k, v in peak.items()},
        "one_by_one_tok_s": {str(k): v for k, v in baseline.items()},
        "engine_matches_one_by_one": agree,
        "llama_cpp": llama is not None,
        "rows": rows,
    }
    write_result(args.out, result)


if __name__ == "__main__":
    main()
