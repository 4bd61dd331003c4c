"""Areas: the repositories a Database and its Transactions hold, by attribute name."""

from __future__ import annotations

__all__ = ["Areas"]

import keyword
from collections.abc import Iterator, Mapping
from typing import Any, TypeVar

from vdata.engine.repository import Executor, Repository

R = TypeVar("R", bound=Repository)


class Areas(Mapping[str, type[Repository]]):
    """Repository classes by area name: ``db.<name>`` and ``tx.<name>`` are instances.

    A holder (Database, Transaction) creates an area's repository on first
    access, bound to itself as the executor, and keeps it in its own
    ``__dict__``: every later access is a plain attribute lookup, which
    matters on the hot path (``db.users.get``).
    """

    __slots__ = ("_by_class", "_by_name")

    def __init__(self, areas: Mapping[str, type[Repository]], *, reserved: frozenset[str]) -> None:
        for name, cls in areas.items():
            if not name.isidentifier() or keyword.iskeyword(name) or name.startswith("_"):
                raise ValueError(f"area name {name!r} is not a public Python identifier")
            if name in reserved:
                raise ValueError(f"area name {name!r} is taken by the database's own API")
            if not (isinstance(cls, type) and issubclass(cls, Repository)):
                raise TypeError(f"area {name!r} must be a vdata.Repository subclass, not {cls!r}")
        self._by_name = dict(areas)
        self._by_class = {cls: name for name, cls in self._by_name.items()}

    def __getitem__(self, name: str) -> type[Repository]:
        return self._by_name[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._by_name)

    def __len__(self) -> int:
        return len(self._by_name)

    def instance(self, holder: Executor, name: str) -> Any:
        """Return *holder*'s repository for area *name*, made once; AttributeError if none."""
        cls = self._by_name.get(name)
        if cls is None:
            known = ", ".join(sorted(self._by_name)) or "none"
            raise AttributeError(
                f"{type(holder).__name__} has no attribute or area {name!r} (areas: {known})"
            )
        repository = cls(holder)
        holder.__dict__[name] = repository
        return repository

    def of_class(self, holder: Executor, cls: type[R]) -> R:
        """Return *holder*'s repository of class *cls*; LookupError if it is not registered."""
        name = self._by_class.get(cls)
        if name is None:
            raise LookupError(f"{cls.__name__} is not a registered area")
        repository = holder.__dict__.get(name)
        if repository is None:
            repository = self.instance(holder, name)
        assert isinstance(repository, cls)
        return repository
