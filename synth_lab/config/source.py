"""TOML text in, plain data plus key positions out.

The standard library parser (``tomllib``) decides what is valid TOML, so we accept exactly what
the reference client accepts. It reports no positions for keys, so :func:`key_positions` scans
the text once to map every key path to its ``line:col``; error messages use it to point at the
offending key. ``tomlkit`` is imported only to edit a document while keeping its comments.
"""

from __future__ import annotations

import re
import sys
from typing import Any

from synth_lab.errors import ConfigError, Problem

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on Python 3.10 only
    import tomli as tomllib

KeyPath = tuple[str, ...]
Position = tuple[int, int]

_BARE_OR_QUOTED = r'(?:[A-Za-z0-9_-]+|"(?:[^"\\]|\\.)*"|\'[^\']*\')'
_DOTTED = rf"{_BARE_OR_QUOTED}(?:\s*\.\s*{_BARE_OR_QUOTED})*"
_HEADER = re.compile(rf"^(\s*)\[(\[?)\s*({_DOTTED})\s*\]")
_KEY = re.compile(rf"^(\s*)({_DOTTED})\s*=")
_INLINE_KEY = re.compile(rf"[{{,]\s*({_DOTTED})\s*=")
_AT = re.compile(r"\(at line (\d+), column (\d+)\)$")
_ARITHMETIC = re.compile(r"=\s*[-+]?[\d_.]+(?:[eE][-+]?\d+)?\s*[-+*/%]")


def _split_dotted(text: str) -> KeyPath:
    parts = re.findall(_BARE_OR_QUOTED, text)
    return tuple(p[1:-1] if p[:1] in "\"'" else p for p in parts)


def key_positions(text: str) -> dict[KeyPath, Position]:
    """Map each key path (and each table header) in ``text`` to its 1-based ``(line, col)``.

    A line scanner, not a parser: it runs only on text that ``tomllib`` already accepted (or to
    place an error), skips multi-line strings, and also finds keys inside one-line inline tables.
    """
    positions: dict[KeyPath, Position] = {}
    table: KeyPath = ()
    in_string: str | None = None
    for lineno, line in enumerate(text.splitlines(), start=1):
        if in_string:
            if line.count(in_string) % 2 == 1:
                in_string = None
            continue
        header = _HEADER.match(line)
        if header:
            table = _split_dotted(header.group(3))
            positions.setdefault(table, (lineno, len(header.group(1)) + 1))
            continue
        key = _KEY.match(line)
        if not key:
            continue
        path = table + _split_dotted(key.group(2))
        positions.setdefault(path, (lineno, len(key.group(1)) + 1))
        rest = line[key.end() :]
        for quote in ('"""', "'''"):
            if rest.count(quote) % 2 == 1:
                in_string = quote
        if rest.lstrip().startswith("{"):
            offset = key.end()
            for inner in _INLINE_KEY.finditer(rest):
                inner_path = path + _split_dotted(inner.group(1))
                positions.setdefault(inner_path, (lineno, offset + inner.start(1) + 1))
    return positions


def locate(positions: dict[KeyPath, Position], path: KeyPath) -> Position | tuple[None, None]:
    """Position of ``path``, else of its closest enclosing table that appears in the text."""
    for end in range(len(path), 0, -1):
        if path[:end] in positions:
            return positions[path[:end]]
    return (None, None)


def parse_toml(text: str) -> dict[str, Any]:
    """Parse TOML text, raising :class:`ConfigError` with ``line:col`` and the reason."""
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        problem = _syntax_problem(text, str(exc))
        raise ConfigError("Invalid TOML", [problem], source=text) from None


def _syntax_problem(text: str, reason: str) -> Problem:
    lines = text.splitlines() or [""]
    match = _AT.search(reason)
    if match:
        line, col = int(match.group(1)), int(match.group(2))
        reason = reason[: match.start()].rstrip()
    else:  # "(at end of document)": point at the last line
        reason = reason.replace("(at end of document)", "").rstrip() + " at end of file"
        line, col = len(lines), len(lines[-1]) + 1
    source_line = lines[line - 1] if 0 < line <= len(lines) else ""
    hint = "check the TOML syntax on that line"
    if _ARITHMETIC.search(source_line):
        hint = "TOML has no arithmetic: write the computed number (e.g. 4096, not 2048*2)"
    elif "twice" in reason or "overwrite" in reason:
        hint = "each key and table may appear only once; merge the duplicates"
    elif "Unterminated string" in reason:
        hint = "close the string with a matching quote"
    elif "table declaration" in reason:
        hint = "table headers look like [section] or [section.sub]"
    key = _KEY.match(source_line)
    path = key.group(2).strip() if key else ""
    return Problem(path, line, col, f"invalid TOML: {reason}", hint, code="invalid_toml")


def edit_toml(text: str, updates: dict[str, Any]) -> str:
    """Return ``text`` with dotted-path ``updates`` applied, keeping comments and key order.

    A value of ``None`` removes the key. Missing tables are created.
    """
    import tomlkit

    doc = tomlkit.parse(text)
    try:
        _apply(doc, updates)
    except (tomlkit.exceptions.TOMLKitError, TypeError, ValueError) as exc:
        raise ConfigError("Cannot update the config", [_unwritable(str(exc))]) from None
    return tomlkit.dumps(doc)


def _apply(doc: Any, updates: dict[str, Any]) -> None:
    import tomlkit

    for dotted, value in updates.items():
        parts = dotted.split(".")
        node: Any = doc
        for part in parts[:-1]:
            if part not in node:
                if value is None:
                    break
                node[part] = tomlkit.table()
            node = node[part]
            if not isinstance(node, dict):
                raise ConfigError(
                    "Cannot update the config",
                    [Problem(dotted, None, None, f"'{part}' is a value, not a table")],
                )
        else:
            leaf = parts[-1]
            if value is None:
                node.pop(leaf, None)
            else:
                node[leaf] = _drop_none(value)


def dumps_toml(data: dict[str, Any]) -> str:
    """Serialise plain data as TOML (tables for nested mappings); ``None`` means "not set"."""
    import tomlkit

    try:
        return tomlkit.dumps(_drop_none(data))
    except (tomlkit.exceptions.TOMLKitError, TypeError, ValueError) as exc:
        raise ConfigError("Cannot write the config as TOML", [_unwritable(str(exc))]) from None


def _drop_none(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _drop_none(v) for k, v in value.items() if v is not None}
    if isinstance(value, (list, tuple)):
        return [_drop_none(v) for v in value if v is not None]
    return value


def _unwritable(reason: str) -> Problem:
    return Problem("", None, None, reason, "use strings, numbers, booleans, lists and tables")
