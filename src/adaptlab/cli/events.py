"""`RichEvents`: a run's messages, status lines and progress bars, drawn with rich on the terminal."""

from __future__ import annotations

from contextlib import contextmanager

from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

from adaptlab.runs.events import Bar, Events

STYLES = {"warning": "[yellow]warning:[/] ", "note": "[yellow]note:[/] ", "info": ""}


class RichEvents(Events):
    def __init__(self, console: Console):
        self.console = console
        self.progress: Progress | None = None

    def message(self, text: str, level: str = "info") -> None:
        self.console.print(STYLES.get(level, "") + escape(text), highlight=False)

    @contextmanager
    def status(self, text: str):
        with self.console.status(escape(text)):
            yield

    @contextmanager
    def bars(self):
        columns = [
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[info]}"),
            TimeElapsedColumn(),
            TimeRemainingColumn(),
        ]
        with Progress(*columns, console=self.console) as progress:
            self.progress = progress
            try:
                yield
            finally:
                self.progress = None

    def bar(self, label: str, total: int | None, completed: int = 0) -> Bar:
        if self.progress is None:
            return Bar()
        return _RichBar(
            self.progress, self.progress.add_task(escape(label), total=total, completed=completed, info="", start=False)
        )


class _RichBar(Bar):
    def __init__(self, progress: Progress, task):
        self.progress, self.task = progress, task

    def update(self, completed: int, info: str = "") -> None:
        self.progress.start_task(self.task)
        self.progress.update(self.task, completed=completed, info=escape(info))

    def advance(self, n: int = 1) -> None:
        self.progress.start_task(self.task)
        self.progress.advance(self.task, n)
