"""JSON text as exporters write it: compact lines (mongoexport) and indented arrays (Compass, --pretty).

The standard library only uses its C encoder without `indent`, so indented output gets a small renderer here;
sub-documents shared by many events (`Shared`) are rendered once per indentation level.
"""

from __future__ import annotations

import json
from json.encoder import encode_basestring  # the C-accelerated string escaper, non-ASCII kept as is

_compact = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), check_circular=False).encode


class Shared(dict):
    """A dict reused unchanged by many events (an event context): its indented text is cached."""

    __slots__ = ("_rendered",)

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self._rendered: dict[str, str] = {}


def compact(value) -> str:
    """One-line JSON with raw UTF-8, like mongoexport and JSON.stringify."""
    return _compact(value)


def indented(value, unit: str, newline: str = "\n") -> str:
    """Indented JSON; `newline` is the line break plus the indentation the value starts at."""
    kind = type(value)
    if kind is str:
        return encode_basestring(value)
    if kind is dict:
        return _object(value, unit, newline)
    if kind is list:
        return _array(value, unit, newline)
    if kind is Shared:
        cached = value._rendered.get(newline)
        if cached is None:
            cached = value._rendered[newline] = _object(value, unit, newline)
        return cached
    if value is None:
        return "null"
    if value is True:
        return "true"
    if value is False:
        return "false"
    if kind is int:
        return int.__repr__(value)
    if kind is float:
        return float.__repr__(value)
    raise TypeError(f"not JSON serialisable: {kind.__name__}")


def _object(value: dict, unit: str, newline: str) -> str:
    if not value:
        return "{}"
    inner = newline + unit
    members = [encode_basestring(key) + ": " + indented(item, unit, inner) for key, item in value.items()]
    return "{" + inner + ("," + inner).join(members) + newline + "}"


def _array(value: list, unit: str, newline: str) -> str:
    if not value:
        return "[]"
    inner = newline + unit
    return "[" + inner + ("," + inner).join([indented(item, unit, inner) for item in value]) + newline + "]"


class ArrayLayout:
    """How one exporter lays out a JSON array of documents: opening, separator, closing, indentation."""

    def __init__(
        self, name: str, unit: str, opening: str, separator: str, closing: str, nested: bool
    ) -> None:
        self.name = name
        self.unit = unit
        self.opening = opening
        self.separator = separator
        self.closing = closing
        self._nested = nested

    def document(self, value) -> str:
        if self._nested:
            return self.unit + indented(value, self.unit, "\n" + self.unit)
        return indented(value, self.unit)


# Compass "Export JSON": `[{` … `},\n{` … `}]`, two spaces.
COMPASS = ArrayLayout("compass", "  ", "[", ",\n", "]\n", nested=False)
# mongoexport --jsonArray --pretty: the same framing, tabs.
MONGOEXPORT_PRETTY = ArrayLayout("mongoexport_pretty", "\t", "[", ",\n", "]\n", nested=False)
# json.dump(rows, indent=1) from a script, as in the golden landing area.
SCRIPT_DUMP = ArrayLayout("script_dump", " ", "[\n", ",\n", "\n]", nested=True)

ARRAY_LAYOUTS = (COMPASS, SCRIPT_DUMP, MONGOEXPORT_PRETTY)
