"""One exception family; only the CLI turns these into messages and exit codes."""

from __future__ import annotations

from dataclasses import dataclass


class AdaptlabError(Exception):
    """Base of every error adaptlab raises on purpose."""

    exit_code = 1


class ConfigError(AdaptlabError):
    """The experiment file or a command-line option is wrong."""

    exit_code = 2


class ModelError(AdaptlabError):
    """A base model cannot be found or loaded."""


class QueryTooLong(AdaptlabError):
    """A query's prompt does not fit the model's context: shorten the query (the server answers 400)."""


class MessagesRefused(AdaptlabError):
    """The model's chat template refuses a prompt's messages by its own rule ("Conversation roles must alternate
    user/assistant/..."): send messages it accepts (the server answers 400)."""


@dataclass(frozen=True)
class Problem:
    """One thing wrong with one place in a data file."""

    code: str
    file: str
    line: int | None
    field: str | None
    message: str
    hint: str = ""

    def __str__(self) -> str:
        where = self.file
        if self.line is not None:
            where += f" line {self.line}"
        if self.field:
            where += f": field '{self.field}'"
        text = f"{where}: {self.message}"
        return f"{text}; {self.hint}" if self.hint else text

    def to_dict(self) -> dict:
        return {
            "code": self.code,
            "file": self.file,
            "line": self.line,
            "field": self.field,
            "message": self.message,
            "hint": self.hint,
        }


class DataError(AdaptlabError):
    """A data file has problems; every problem found (up to a limit) is listed."""

    exit_code = 2

    def __init__(self, problems: list[Problem], truncated: bool = False):
        self.problems = problems
        self.truncated = truncated
        lines = [str(p) for p in problems]
        if truncated:
            lines.append(f"(stopped after {len(problems)} problems)")
        super().__init__("\n".join(lines))
