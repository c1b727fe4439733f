"""YAML reading through `safe_load` only, with one-line errors that name the file."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from edgetune.errors import EdgetuneError
from edgetune.untrusted import MAX_YAML_BYTES, load_yaml, read_text, shown


def load_yaml_mapping(path: Path, error: type[EdgetuneError], what: str) -> dict[str, Any]:
    """Read `path` as a YAML mapping or raise `error` naming the file and the problem. Size,
    nesting and alias expansion are bounded (edgetune.untrusted): profiles are hand-written."""
    text = read_text(path, limit=MAX_YAML_BYTES, what=what, error=error)
    try:
        data = load_yaml(text, what=f"{what} {path}", error=error)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark is not None else ""
        raise error(f"{what} {path} is not valid YAML{where}",
                    hint="check indentation and quoting") from None
    if not isinstance(data, dict):
        raise error(f"{what} {path} must be a YAML mapping, got {type(data).__name__}")
    return data


class FieldReader:
    """Typed access to a YAML mapping that reports `file: field: problem` on bad input."""

    def __init__(self, data: dict[str, Any], source: str, error: type[EdgetuneError], prefix: str = ""):
        self.data = data
        self.source = source
        self.error = error
        self.prefix = prefix

    def _name(self, key: str) -> str:
        return f"{self.prefix}{key}"

    def _fail(self, key: str, problem: str) -> EdgetuneError:
        return self.error(f"{self.source}: field '{self._name(key)}' {problem}")

    def get(self, key: str, types: type | tuple[type, ...], default: Any = ..., *,
            check=None, expect: str | None = None) -> Any:
        if key not in self.data or self.data[key] is None:
            if default is ...:
                raise self._fail(key, "is missing")
            return default
        value = self.data[key]
        if isinstance(value, bool) and bool not in (types if isinstance(types, tuple) else (types,)):
            raise self._fail(key, f"must be {expect or _type_names(types)}, got {shown(value)}")
        if not isinstance(value, types):
            raise self._fail(key, f"must be {expect or _type_names(types)}, got {shown(value)}")
        if check is not None and not check(value):
            raise self._fail(key, f"must be {expect}, got {shown(value)}")
        return value

    def sub(self, key: str, default: Any = ...) -> FieldReader:
        value = self.get(key, dict, default)
        return FieldReader(value or {}, self.source, self.error, prefix=f"{self._name(key)}.")


def _type_names(types: type | tuple[type, ...]) -> str:
    ts = types if isinstance(types, tuple) else (types,)
    names = {int: "an integer", float: "a number", str: "a string", list: "a list", dict: "a mapping",
             bool: "true/false"}
    return " or ".join(names.get(t, t.__name__) for t in ts)
