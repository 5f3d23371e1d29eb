"""Orchestration: compare, sweep and finetune runs, each writing one run-folder shape (runs/folder.py).

They report through `Events` (runs/events.py) and never print; the CLI draws the events.
"""

from adaptlab.runs.events import Events

__all__ = ["Events"]
