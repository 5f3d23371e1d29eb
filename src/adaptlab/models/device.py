"""What the hardware can do, measured rather than assumed."""

from __future__ import annotations

import time
from functools import cache


@cache
def bf16_is_fast(device: str) -> bool:
    """True where bf16 math is supported and faster than fp32 on this device.

    CPUs differ wildly: with native bf16 units a matmul runs ~4x faster than fp32;
    without them it can run ~100x slower (both seen on 2-core cloud machines). A
    256^3 matmul of each (well under a second even in the slow case) settles it.
    """
    import torch

    if device.startswith("cuda"):
        return torch.cuda.is_bf16_supported()
    if device != "cpu":
        return False

    def seconds(dtype) -> float:
        a = torch.randn(256, 256, dtype=dtype)
        a @ a  # warm-up
        start = time.perf_counter()
        for _ in range(3):
            a @ a
        return time.perf_counter() - start

    return seconds(torch.bfloat16) < 0.8 * seconds(torch.float32)


def default_device() -> str:
    """This process's accelerator: its rank's GPU under `accelerate launch`/torchrun, else the first GPU, else the
    CPU."""
    import os

    import torch

    if torch.cuda.is_available():
        return f"cuda:{int(os.environ.get('LOCAL_RANK', '0'))}"
    return "cpu"
