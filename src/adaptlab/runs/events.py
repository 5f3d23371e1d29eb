"""`Events`: how a run reports while it works: messages, a status line for a slow step, progress bars.

The library never prints. A run takes an `Events`; the default one is silent, the CLI's
(cli/events.py) draws them with rich, and a notebook or a script can pass its own:

    >>> class Printing(Events):
    ...     def message(self, text, level="info"):
    ...         print(level, text)
    >>> Printing().message("3 training rows")
    info 3 training rows
"""

from __future__ import annotations

from contextlib import contextmanager


class Bar:
    """One progress bar: `update` sets how much is done (and a line of detail), `advance` adds to it."""

    def update(self, completed: int, info: str = "") -> None:
        pass

    def advance(self, n: int = 1) -> None:
        pass


class Events:
    """Silent: every report is dropped. Override what you want to see."""

    def message(self, text: str, level: str = "info") -> None:
        """A line of news; `level` is info, note or warning."""

    @contextmanager
    def status(self, text: str):
        """A slow step with no count of its own (loading a model, auditing)."""
        yield

    @contextmanager
    def bars(self):
        """A group of progress bars shown together while the block runs."""
        yield

    def bar(self, label: str, total: int | None, completed: int = 0) -> Bar:
        """A new bar in the current group; nothing is counted until it is updated."""
        return Bar()


class TrainingBar:
    """A fit's progress bar, as an `on_step` callback: drawn at the first step (only then is the total known).

    `completed`: steps already done before this process (a resumed fine-tune)."""

    def __init__(self, events: Events, label: str, resumed: bool = False):
        self.events, self.label, self.resumed = events, label, resumed
        self.bar: Bar | None = None

    def __call__(self, report) -> None:
        if self.bar is None:
            self.bar = self.events.bar(
                f"{self.label}: training", report.total_steps, completed=report.step - 1 if self.resumed else 0
            )
        self.bar.update(report.step, report.describe())
