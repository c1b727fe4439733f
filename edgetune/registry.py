"""One small generic registry (register/get/list) with close-match hints for unknown names."""

from __future__ import annotations

import difflib
import fnmatch
from collections.abc import Callable, Iterator
from typing import Generic, TypeVar

from edgetune.errors import UnknownNameError

T = TypeVar("T")


class Registry(Generic[T]):
    """Name → object. `kind` names what is registered, for error messages ("model", "target")."""

    def __init__(self, kind: str, *, list_command: str | None = None) -> None:
        self.kind = kind
        self.list_command = list_command
        self._items: dict[str, T] = {}
        self._loader: Callable[[], None] | None = None

    def set_loader(self, loader: Callable[[], None]) -> None:
        """Defer filling the registry (e.g. reading YAML files) until first use."""
        self._loader = loader

    def _ensure_loaded(self) -> None:
        if self._loader is not None:
            loader, self._loader = self._loader, None
            loader()

    def register(self, name: str, item: T, *, replace: bool = False) -> T:
        if name in self._items and not replace:
            raise ValueError(f"{self.kind} {name!r} is registered twice")
        self._items[name] = item
        return item

    def get(self, name: str) -> T:
        self._ensure_loaded()
        try:
            return self._items[name]
        except KeyError:
            raise UnknownNameError(self._unknown_message(name), hint=self._hint()) from None

    def _unknown_message(self, name: str) -> str:
        close = difflib.get_close_matches(name, list(self._items), n=3, cutoff=0.5)
        msg = f"unknown {self.kind} {name!r}"
        if close:
            msg += "; did you mean " + " or ".join(repr(c) for c in close) + "?"
        return msg

    def _hint(self) -> str:
        if self.list_command:
            return f"`{self.list_command}` lists them"
        return "known: " + ", ".join(sorted(self._items))

    def names(self, pattern: str = "*") -> list[str]:
        self._ensure_loaded()
        return sorted(n for n in self._items if fnmatch.fnmatch(n, pattern))

    def __contains__(self, name: object) -> bool:
        self._ensure_loaded()
        return name in self._items

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())
