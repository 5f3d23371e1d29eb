"""`Table`: named declarations found by name: built-in modules of a package first, then a package entry point group.

Strategy kinds (adaptlab.kinds) and task kinds (adaptlab.tasks) are each one `Table`: every
built-in module holds a `KIND`, and another package adds its own through the group.

    >>> from adaptlab.kinds import Kind
    >>> table = Table("adaptlab.kinds", ("majority",), "adaptlab.kinds", Kind, "strategy kind")
    >>> table.get("majority").family
    'baseline'
"""

from __future__ import annotations

import importlib
from typing import Generic, Protocol, TypeVar

from adaptlab.errors import ConfigError


class _Named(Protocol):
    @property
    def name(self) -> str: ...


T = TypeVar("T", bound=_Named)


class Table(Generic[T]):
    """A name -> declaration table, filled on first use (so importing it imports no built-in module)."""

    def __init__(self, package: str, built_in: tuple[str, ...], group: str, kind: type[T], noun: str):
        self.package, self.built_in, self.group, self.kind, self.noun = package, built_in, group, kind, noun
        self._table: dict[str, T] = {}
        self._loaded = False

    def add(self, item: T) -> T:
        """Add (or replace) a declaration."""
        self._load()
        self._table[item.name] = item
        return item

    def remove(self, name: str) -> None:
        self._table.pop(name, None)

    def all(self) -> list[T]:
        """Every declaration, built-in ones first in table order."""
        self._load()
        return list(self._table.values())

    def get(self, name: str) -> T:
        """The declaration called `name`; a ConfigError lists the known ones."""
        self._load()
        if name not in self._table:
            raise ConfigError(f"unknown {self.noun} {name!r}; the {self.noun}s are {', '.join(self._table)}")
        return self._table[name]

    def _load(self) -> None:
        if self._loaded:
            return
        self._loaded = True
        for module in self.built_in:
            item = importlib.import_module(f"{self.package}.{module}").KIND
            self._table[item.name] = item
        from importlib.metadata import entry_points

        for point in entry_points(group=self.group):
            item = point.load()
            if not isinstance(item, self.kind):
                raise ConfigError(
                    f"entry point {point.name!r} in group {self.group} names {item!r}, not an "
                    f"{self.kind.__module__}.{self.kind.__name__}"
                )
            self._table[item.name] = item
