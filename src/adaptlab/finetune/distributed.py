"""`Dist`: this process's place among the ranks `accelerate launch` (or torchrun) started; a no-op alone."""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any


@dataclass
class Dist:
    """This process's place among the ranks `accelerate launch` (or torchrun) started."""

    rank: int = 0
    world: int = 1
    accelerator: Any = None  # an accelerate.Accelerator when world > 1 (accelerate has no type information)

    @classmethod
    def from_env(cls, device: str) -> Dist:
        world = int(os.environ.get("WORLD_SIZE", "1"))
        if world == 1:
            return cls()
        from accelerate import Accelerator

        accelerator = Accelerator(cpu=device == "cpu")
        return cls(accelerator.process_index, accelerator.num_processes, accelerator)

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def wrap(self, model):
        return model if self.world == 1 else self.accelerator.prepare_model(model)

    def share(self, batch: list[int]) -> list[int]:
        """This rank's rows of a batch (every rank gets at least one)."""
        if self.world == 1:
            return batch
        mine = batch[self.rank :: self.world]
        return mine or batch[-1:]

    def barrier(self) -> None:
        if self.world > 1:
            self.accelerator.wait_for_everyone()

    def sum(self, value: int) -> int:
        return int(self._reduce(float(value), "sum"))

    def any(self, flag: bool) -> bool:
        return bool(self._reduce(float(flag), "max"))

    def _reduce(self, value: float, op: str) -> float:
        if self.world == 1:
            return value
        import torch
        import torch.distributed as td

        tensor = torch.tensor([value], dtype=torch.float64, device=self.accelerator.device)
        td.all_reduce(tensor, op=td.ReduceOp.SUM if op == "sum" else td.ReduceOp.MAX)
        return float(tensor.item())

    def check_in_sync(self, params) -> None:
        """Every rank must end with the same weights; a mismatch is a bug worth failing loudly on."""
        if self.world == 1:
            return
        import torch

        checksum = torch.stack([p.detach().double().sum() for p in params]).sum().reshape(1).to(self.accelerator.device)
        sums = self.accelerator.gather(checksum)
        if not torch.all(sums == sums[0]):
            raise RuntimeError(f"ranks ended with different weights (checksums {sums.tolist()}); report this as a bug")
