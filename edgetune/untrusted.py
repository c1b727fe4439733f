"""Bounds for everything that arrives from a file or a device: names, paths, sizes, nesting.

Run folders are copied between machines, profiles are hand-written and devices answer over ssh,
so none of them is trusted. Every limit lives here, once, with the reason for its value; each
breach is one typed error naming the file and the limit, never a traceback or gigabytes of RAM.
"""

from __future__ import annotations

import json
import re
import reprlib
from pathlib import Path
from typing import Any

from edgetune.errors import DataError, EdgetuneError, RunDirError

# A name that becomes a path component (profile, target, file in an export folder): letters,
# digits, '.', '_', '-', starting with a letter or digit; no separator, so no '..' or absolute
# path can ride in it. 64 characters is twice the longest shipped name.
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")

# Text files edgetune reads (profiles, cards, data.yaml, manifests, export.json, bench JSON).
# The largest real one is an export.json with a 1000-class confusion matrix (~6 MB).
MAX_JSON_BYTES = 64 << 20
MAX_YAML_BYTES = 1 << 20  # shipped profiles and cards are < 8 KB
# YAML aliases are shared references when parsed, but every consumer that walks or prints the
# result expands them: 9 levels of 9 aliases are 387 million nodes from a 1.8 KB file.
MAX_YAML_NODES = 100_000
MAX_NESTING = 64  # the deepest shipped file nests 4 levels
# An image or a clip that is read whole into memory (hashed, then decoded). The decoders bound
# what the contents may expand to; this bounds the bytes themselves (a 12-bit 100 MP TIFF is
# ~300 MB uncompressed; a 35-min float WAV ~134 MB).
MAX_MEDIA_BYTES = 512 << 20
MAX_TEXT_BYTES = 64 << 20  # label files, image lists, validation_list.txt


_REPR = reprlib.Repr()
_REPR.maxstring = _REPR.maxother = 80


def shown(value: Any) -> str:
    """repr() of an untrusted value, bounded while it is built (a YAML alias bomb or a device's
    answer must not print, or even build, megabytes of text)."""
    return _REPR.repr(value)


NAME_RULE = "a plain name: letters, digits, '.', '_' and '-' (at most 64, no '..' or '/')"


def is_safe_name(value: Any) -> bool:
    return isinstance(value, str) and bool(_NAME.fullmatch(value)) and ".." not in value


def safe_name(value: Any, what: str, *, error: type[EdgetuneError] = RunDirError) -> str:
    """`value` if it is a plain name that can be one path component; else one line naming it."""
    if not is_safe_name(value):
        raise error(f"{what} {shown(value)} is not a valid name",
                    hint=f"a name must be {NAME_RULE}")
    return value


def inside(base: Path, *parts: str) -> Path:
    """`base / parts…`, proven (symlinks resolved) to stay inside `base`; raise otherwise."""
    path = Path(base).joinpath(*parts)
    root = Path(base).resolve()
    if not path.resolve().is_relative_to(root):
        raise RunDirError(f"{path} leads outside {base} (a '..', an absolute name or a symlink)",
                          hint="remove the link or rename the entry; edgetune writes only inside its folders")
    return path


def read_text(path: Path, *, limit: int, what: str, error: type[EdgetuneError] = RunDirError) -> str:
    """A UTF-8 text file of at most `limit` bytes (checked before reading)."""
    try:
        size = Path(path).stat().st_size
        if size > limit:
            raise error(f"{what} {path} is {size:,} bytes; edgetune reads at most {limit:,}",
                        hint="is this the right file?")
        return Path(path).read_text()
    except OSError as exc:
        raise error(f"cannot read {what} {path}: {exc.strerror}") from None
    except UnicodeDecodeError:
        raise error(f"{what} {path} is not UTF-8 text", hint="save it as UTF-8") from None


def read_bytes(path: Path, *, limit: int | None = None, what: str = "file",
               error: type[EdgetuneError] = DataError) -> bytes:
    """A file read whole, at most `limit` bytes (default MAX_MEDIA_BYTES; checked before reading)."""
    limit = MAX_MEDIA_BYTES if limit is None else limit
    size = Path(path).stat().st_size
    if size > limit:
        raise error(f"{what} {path} is {size:,} bytes; edgetune reads at most {limit:,}",
                    hint="is this the right file?")
    return Path(path).read_bytes()


def parse_json(text: str, *, what: str, error: type[EdgetuneError] = RunDirError,
               hint: str | None = None) -> Any:
    """json.loads with one-line errors, nesting included (deep arrays raise RecursionError)."""
    try:
        data = json.loads(text)
    except (json.JSONDecodeError, ValueError) as exc:
        raise error(f"{what} is not valid JSON ({exc})", hint=hint) from None
    except RecursionError:
        raise error(f"{what} is nested deeper than edgetune reads", hint=hint) from None
    check_nesting(data, what=what, error=error)
    return data


def check_nesting(data: Any, *, what: str, error: type[EdgetuneError]) -> None:
    """Refuse data nested deeper than MAX_NESTING (iterative: a deep value cannot overflow the stack)."""
    stack = [(data, 0)]
    while stack:
        value, depth = stack.pop()
        if depth > MAX_NESTING:
            raise error(f"{what} is nested more than {MAX_NESTING} levels deep", hint="is this the right file?")
        if isinstance(value, dict):
            stack.extend((v, depth + 1) for v in value.values())
        elif isinstance(value, list):
            stack.extend((v, depth + 1) for v in value)


def load_yaml(text: str, *, what: str, error: type[EdgetuneError]) -> Any:
    """yaml safe_load with the alias expansion and the nesting bounded (see MAX_YAML_NODES)."""
    import yaml

    loader = yaml.SafeLoader(text)
    try:
        node = loader.get_single_node()
        if node is not None:
            _check_yaml_graph(node, what=what, error=error)
        return loader.construct_document(node) if node is not None else None
    except RecursionError:
        raise error(f"{what} is nested more than {MAX_NESTING} levels deep", hint="is this the right file?") from None
    finally:
        loader.dispose()


def _yaml_children(node: Any) -> list[Any]:
    import yaml

    if isinstance(node, yaml.MappingNode):
        return [c for pair in node.value for c in pair]
    return list(node.value) if isinstance(node, yaml.SequenceNode) else []


def _check_yaml_graph(root: Any, *, what: str, error: type[EdgetuneError]) -> None:
    """Count the values a consumer would see after alias expansion, without expanding them
    (iterative depth-first walk; an aliased node is sized once, a recursive alias refused)."""
    sizes: dict[int, int] = {}
    visiting: set[int] = set()
    stack: list[tuple[Any, int, bool]] = [(root, 0, False)]
    while stack:
        node, depth, done = stack.pop()
        key = id(node)
        if done:
            visiting.discard(key)
            sizes[key] = 1 + sum(sizes[id(c)] for c in _yaml_children(node))
            if sizes[key] > MAX_YAML_NODES:
                raise error(f"{what} expands to more than {MAX_YAML_NODES:,} values (YAML aliases)",
                            hint="write the values out; edgetune refuses alias bombs")
            continue
        if key in sizes:
            continue
        if key in visiting:
            raise error(f"{what} has a recursive YAML alias", hint="write the values out")
        if depth > MAX_NESTING:
            raise error(f"{what} is nested more than {MAX_NESTING} levels deep", hint="is this the right file?")
        visiting.add(key)
        stack.append((node, depth, True))
        stack.extend((c, depth + 1, False) for c in _yaml_children(node) if id(c) not in sizes)
