"""Read spec YAML safely, remembering the line of every key so errors can point at it."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from factory_dagster.spec.errors import SpecError

KeyPath = tuple[str | int, ...]


@dataclass
class YamlDocument:
    """A parsed spec file: its data and the line (1-based) of each key path."""

    path: Path
    data: dict[str, Any]
    lines: dict[KeyPath, int] = field(default_factory=dict)

    def line_of(self, key_path: KeyPath) -> int | None:
        """The line of the deepest prefix of `key_path` that has a known position."""
        for end in range(len(key_path), -1, -1):
            line = self.lines.get(tuple(key_path[:end]))
            if line is not None:
                return line
        return None


def _record_lines(node: yaml.Node, path: KeyPath, lines: dict[KeyPath, int], file: Path) -> None:
    lines.setdefault(path, node.start_mark.line + 1)
    if isinstance(node, yaml.MappingNode):
        seen: dict[str, int] = {}
        for key_node, value_node in node.value:
            key = key_node.value
            line = key_node.start_mark.line + 1
            if key in seen:
                raise SpecError(
                    file,
                    format_key_path((*path, key)),
                    f"duplicate key '{key}' (first defined on line {seen[key]})",
                    line,
                )
            seen[key] = line
            lines[(*path, key)] = line
            _record_lines(value_node, (*path, key), lines, file)
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            _record_lines(item, (*path, index), lines, file)


def not_utf8(text_bytes: bytes, offset: int) -> str:
    """The reason for a file that is not UTF-8 text, with where the first bad byte is."""
    line = text_bytes.count(b"\n", 0, offset) + 1
    return f"not UTF-8 text: byte 0x{text_bytes[offset]:02x} on line {line}; save the file as UTF-8"


def load_yaml(path: Path) -> YamlDocument:
    """Parse one spec file with the safe loader; the top level must be a mapping."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise SpecError(path, "", f"cannot read file: {exc.strerror or exc}") from None
    except UnicodeDecodeError as exc:
        raise SpecError(path, "", not_utf8(exc.object, exc.start)) from None
    try:
        node, data = _parse(text, FAST_LOADER)
    except yaml.YAMLError:
        try:  # libyaml words some problems differently: report (or accept) as the Python parser does
            node, data = _parse(text, yaml.SafeLoader)
        except yaml.YAMLError as exc:
            raise _invalid(path, exc) from None
    if data is None or node is None:
        return YamlDocument(path, {})
    if not isinstance(data, dict):
        raise SpecError(path, "", "the top level must be a mapping of sections", 1)
    lines: dict[KeyPath, int] = {}
    _record_lines(node, (), lines, path)
    return YamlDocument(path, data, lines)


# libyaml's parser when PyYAML was built with it: the pure-Python one spent about a second of a
# definitions load on the specs.
FAST_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def _parse(text: str, loader: type) -> tuple[yaml.Node | None, Any]:
    """The document's node tree (for the lines of keys) and its data, with one safe loader."""
    node = yaml.compose(text, Loader=loader)
    return node, (yaml.load(text, Loader=loader) if node is not None else None)


def _invalid(path: Path, exc: yaml.YAMLError) -> SpecError:
    mark = getattr(exc, "problem_mark", None)
    problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
    return SpecError(path, "", f"invalid YAML: {problem}", mark.line + 1 if mark else None)


def format_key_path(path: KeyPath) -> str:
    """`("models", "m", "features", 0)` → `models.m.features[0]`."""
    out = ""
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out
