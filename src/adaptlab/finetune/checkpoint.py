"""Checkpoints: everything training needs to continue exactly, written so a crash never leaves half of one.

A checkpoint is a folder `step-000120/` holding the trainable weights
(safetensors), the optimizer and scheduler states and each rank's random
streams (torch.save, read back only with `weights_only=True`), the best
dev-scored weights so far, and `state.json` (step, epoch, position in the epoch,
losses, dev scores). It is written into `.tmp-step-000120/`, each file fsynced,
then renamed into place: a folder named `step-<digits>` is always complete, a
leftover `.tmp-*` from a crash is ignored and cleared by the next save, and any
other name (`junk/`, `step-abc/`) is not a checkpoint: ignored, never deleted.
"""

from __future__ import annotations

import json
import os
import re
import shutil
from dataclasses import asdict
from pathlib import Path

from adaptlab.errors import AdaptlabError
from adaptlab.files import fsync
from adaptlab.finetune.distributed import Dist
from adaptlab.finetune.trainer import Resume, TrainState, rng_state

PREFIX = "step-"
NAME = re.compile(r"step-([0-9]+)")


class CheckpointFolder:
    """Saves a checkpoint every `every` steps (and when asked to stop) into `folder`, keeping the newest `keep`."""

    def __init__(self, folder: Path, every: int, keep: int = 2):
        self.folder = Path(folder)
        self.every = every
        self.keep = keep

    def due(self, step: int) -> bool:
        return self.every > 0 and step % self.every == 0

    def save(self, state: TrainState, trainable: dict, optimizer, scheduler, best: dict | None, dist: Dist) -> None:
        import torch
        from safetensors.torch import save_file

        final = self.folder / f"{PREFIX}{state.step:06d}"
        tmp = self.folder / f".tmp-{final.name}"
        if dist.is_main:
            for stale in self.folder.glob(".tmp-*"):
                shutil.rmtree(stale, ignore_errors=True)
            tmp.mkdir(parents=True)
        dist.barrier()
        torch.save(rng_state(), tmp / f"rng-{dist.rank}.pt")
        fsync(tmp / f"rng-{dist.rank}.pt")
        dist.barrier()
        if dist.is_main:
            save_file(_cpu(trainable), str(tmp / "trainable.safetensors"))
            if best is not None:
                save_file(_cpu(best), str(tmp / "best.safetensors"))
            torch.save({"optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict()}, tmp / "optimizer.pt")
            (tmp / "state.json").write_text(json.dumps(asdict(state)) + "\n", encoding="utf-8")
            for path in tmp.iterdir():
                fsync(path)
            os.replace(tmp, final)
            fsync(self.folder)
            for old in checkpoints(self.folder)[: -self.keep]:
                shutil.rmtree(old, ignore_errors=True)
        dist.barrier()


def checkpoints(folder: Path) -> list[Path]:
    """Complete checkpoints in `folder` (folders named step-<digits>), oldest first."""
    folder = Path(folder)
    if not folder.is_dir():
        return []
    return sorted((p for p in folder.iterdir() if p.is_dir() and NAME.fullmatch(p.name)), key=checkpoint_step)


def checkpoint_step(path: Path) -> int:
    """The step a checkpoint folder holds, from its name."""
    match = NAME.fullmatch(Path(path).name)
    assert match is not None, path  # a folder `checkpoints` found
    return int(match.group(1))


def load_checkpoint(path: Path, rank: int = 0) -> Resume:
    """Read a checkpoint back; tensors only (`weights_only=True`), never arbitrary pickles."""
    import torch
    from safetensors.torch import load_file

    path = Path(path)
    try:
        state = TrainState(**json.loads((path / "state.json").read_text(encoding="utf-8")))
        trainable = load_file(str(path / "trainable.safetensors"))
        best = load_file(str(path / "best.safetensors")) if (path / "best.safetensors").is_file() else None
        states = torch.load(path / "optimizer.pt", weights_only=True)
        rng_file = path / f"rng-{rank}.pt"
        rng = torch.load(rng_file if rng_file.is_file() else path / "rng-0.pt", weights_only=True)
    except Exception as exc:  # safetensors, pickle and JSON each fail their own way; all mean: unreadable
        raise AdaptlabError(
            f"{path}: checkpoint cannot be read ({type(exc).__name__}: {exc}); delete this folder to "
            "resume from the one before it"
        ) from None
    return Resume(state, trainable, states["optimizer"], states["scheduler"], rng, best)


def _cpu(tensors: dict) -> dict:
    return {k: v.detach().contiguous().cpu() for k, v in tensors.items()}
