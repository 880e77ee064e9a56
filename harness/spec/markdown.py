"""The integration spec as a filled-in copy of the team's Markdown template, both ways.

People plan integrations in ``api-integration-spec-template.md``; the harness needs YAML that
passes the schema. Rather than make teams keep two documents in step, ``harness spec import``
reads a filled-in template straight into spec data and ``harness spec export`` writes any spec
back out as one. Export then import is the identity on the model, which is what lets either
form be the one people edit.

The Markdown is read through markdown-it's token stream (headings, list items, bold labels,
the table, fenced code), never by pattern-matching the whole file, so authors may add prose,
notes and sections of their own: paragraphs are free text everywhere, and so are plain list
items that carry neither a checkbox nor a bold label. What *looks* like data but is not
understood - an unknown checklist item, an unknown bold label in a list, a malformed table
row - is reported, one ``Problem`` per finding, each with its Markdown line.

Conventions both directions keep (also the documentation of the format):

* **Checklists.** ``- [x]`` is ``true`` and ``- [ ]`` is ``false``. A checklist key the spec
  does not state (``None``) is written as *no item at all*; an item deleted from a list is
  likewise "not stated". Unknown checklist items are errors (a tick must never be dropped
  silently).
* **Error Handling.** A ticked item has an entry in ``error_handling``; its parameters are a
  nested list of bold labels (``- **Max retries:** 4``). An unticked item has no entry (its
  nested list, if any, is ignored). "Request timeouts" is a sixth item the template lacks.
* **Success Criteria** are the numbers in their sentences ("Successful data sync for 1000
  records", "Error rate below 1%", "Response time under 2 seconds", "Zero data loss incidents"
  or "At most 3 data loss incidents"). They are launch targets, so their checkbox is not read;
  export writes ``- [ ]``.
* **Stakeholder Approval** items read ``- [x] Role: Name - YYYY-MM-DD``; the tick is
  ``approved``.
* **Transformation** cells of the Data Mapping table use this grammar (case-insensitive
  keywords; an empty cell means the row has no transformation):

  - ``None``
  - ``Format date: FROM -> TO`` and ``Format datetime: FROM -> TO`` (strftime formats)
  - ``Map enum values: available=in_stock, sold=gone`` - a bare value ``true``/``false`` is a
    boolean and a bare integer an integer; write ``"1"`` (JSON quoting) for the string, and
    quote any key or value holding ``=``, ``,`` or ``"``
  - ``Convert to TYPE`` or ``Convert to TYPE (xFACTOR)``, TYPE one of string, integer, number,
    boolean, e.g. ``Convert to integer (x1000)``
  - ``Function: module:function``

* **Values.** Yes/No for booleans; numbers as written (an integer stays an integer); lists
  comma-separated, ``none`` for an empty list; rates as ``600 requests per minute`` (also
  ``600/min``; several joined by commas); response times as ``p50 200 ms, p95 800 ms``; the
  SLA as ``99.9% - description``. A value in a code span is taken literally, which is how
  export writes anything Markdown would otherwise alter.
* **Placeholders.** Text still in ``[...]`` brackets outside code spans, a choice line still
  listing every option, and the template's sample rows (``Use case 2``, ``source.field1``)
  are reported as unfilled placeholders.
* **Harness Settings.** Whatever has no home in the template (live-provider settings, the
  integration under test, values Markdown cannot carry faithfully) is a YAML block in a final
  ``## Harness Settings`` section, merged into the rest; giving a key both there and in the
  template part is an error.
"""

from __future__ import annotations

import copy
import difflib
import io
import json
import math
import re
import textwrap
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import cattrs
from markdown_it import MarkdownIt
from markdown_it.token import Token
from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.scalarstring import LiteralScalarString

from harness.problems import InputError, Problem, format_path
from harness.spec.loader import LoadedSpec, load_spec_text
from harness.spec.model import IntegrationSpec
from harness.spec.schema import spec_schema
from harness.yamlsource import SourceMap, parse_text, read_text

__all__ = ["export_markdown", "import_markdown", "load_markdown_spec", "markdown_to_yaml"]

DataPath = tuple[str | int, ...]
Data = dict[str, Any]

_MD = MarkdownIt("commonmark").enable("table")
_TITLE_PREFIX = "API Integration Spec"
_SETTINGS_TITLE = "Harness Settings"
_SETTINGS_NOTE = (
    "Settings the template has no place for. The harness reads this block as YAML and merges\n"
    "it into the spec above."
)
_JUSTIFICATION_COMMENT = (
    "<!-- Why do we need this integration? What business value does it provide? -->"
)

# --------------------------------------------------------------------------------------------
# The document, as the few block shapes the template uses
# --------------------------------------------------------------------------------------------


@dataclass
class _Line:
    """Inline content of one source line (or one list item), and the 1-based line it is on."""

    children: list[Token]
    line: int


@dataclass
class _List:
    line: int
    ordered: bool
    items: list[_Item]


@dataclass
class _Item:
    line: int
    first: _Line | None
    lists: list[_List]


@dataclass
class _Para:
    line: int
    children: list[Token]


@dataclass
class _Row:
    line: int
    cells: list[_Line]
    width: int  # cells on the source line: markdown-it silently drops the extra ones


@dataclass
class _Table:
    line: int
    header: list[_Line]
    rows: list[_Row]


@dataclass
class _Fence:
    line: int
    info: str
    content: str


_Block = _Para | _List | _Table | _Fence


@dataclass
class _Section:
    title: str
    title_children: list[Token]
    line: int
    level: int
    blocks: list[_Block] = field(default_factory=list)
    subsections: list[_Section] = field(default_factory=list)

    def sub(self, title: str) -> list[_Section]:
        wanted = _norm(title)
        return [s for s in self.subsections if _norm(s.title) == wanted]

    def all_blocks(self) -> list[_Block]:
        return self.blocks + [b for s in self.subsections for b in s.blocks]


def _line_of(token: Token) -> int:
    return token.map[0] + 1 if token.map else 0


def _skip(tokens: list[Token], i: int) -> int:
    """Index after the container opened at ``tokens[i]`` (a blockquote, say): free text."""
    depth = 0
    while i < len(tokens):
        depth += tokens[i].nesting
        i += 1
        if depth <= 0:
            break
    return i


def _read_block(tokens: list[Token], i: int, source: list[str]) -> tuple[_Block | None, int]:
    tok = tokens[i]
    kind = tok.type
    if kind == "paragraph_open":
        return _Para(_line_of(tok), list(tokens[i + 1].children or [])), i + 3
    if kind in ("bullet_list_open", "ordered_list_open"):
        return _read_list(tokens, i, source)
    if kind == "table_open":
        return _read_table(tokens, i, source)
    if kind in ("fence", "code_block"):
        return _Fence(_line_of(tok), tok.info.strip(), tok.content), i + 1
    if tok.nesting == 1:
        return None, _skip(tokens, i)
    return None, i + 1


def _read_list(tokens: list[Token], i: int, source: list[str]) -> tuple[_List, int]:
    opener = tokens[i]
    result = _List(_line_of(opener), opener.type == "ordered_list_open", [])
    close = opener.type.replace("_open", "_close")
    i += 1
    while tokens[i].type != close:
        item = _Item(_line_of(tokens[i]), None, [])
        i += 1
        while tokens[i].type != "list_item_close":
            block, i = _read_block(tokens, i, source)
            if isinstance(block, _Para) and item.first is None and not item.lists:
                item.first = _Line(block.children, block.line)
            elif isinstance(block, _List):
                item.lists.append(block)
        result.items.append(item)
        i += 1
    return result, i + 1


def _count_cells(line: str) -> int:
    body = line.strip()
    body = body.removeprefix("|")
    if body.endswith("|") and not body.endswith("\\|"):
        body = body[:-1]
    return len(re.split(r"(?<!\\)\|", body))


def _read_table(tokens: list[Token], i: int, source: list[str]) -> tuple[_Table, int]:
    table = _Table(_line_of(tokens[i]), [], [])
    in_head = False
    row: _Row | None = None
    i += 1
    while tokens[i].type != "table_close":
        tok = tokens[i]
        if tok.type == "thead_open":
            in_head = True
        elif tok.type == "thead_close":
            in_head = False
        elif tok.type == "tr_open":
            line = _line_of(tok)
            width = _count_cells(source[line - 1]) if 0 < line <= len(source) else 0
            row = _Row(line, [], width)
        elif tok.type == "inline" and row is not None:
            row.cells.append(_Line(list(tok.children or []), row.line))
        elif tok.type == "tr_close" and row is not None:
            if in_head:
                table.header = row.cells
            else:
                table.rows.append(row)
            row = None
        i += 1
    return table, i + 1


def _document(text: str) -> list[_Section]:
    """Top-level sections (the title and every ``##``), each holding its ``###`` sections."""
    tokens = _MD.parse(text)
    source = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    top: list[_Section] = [_Section("", [], 1, 0)]
    current = top[0]
    i = 0
    while i < len(tokens):
        tok = tokens[i]
        if tok.type == "heading_open":
            children = list(tokens[i + 1].children or [])
            level = int(tok.tag[1:])
            section = _Section(_text(children), children, _line_of(tok), level)
            if level <= 2:
                top.append(section)
                current = section
            elif level == 3:
                top[-1].subsections.append(section)
                current = section
            # deeper headings are the author's own structure: their blocks stay in `current`
            i += 3
            continue
        block, i = _read_block(tokens, i, source)
        if block is None:
            continue
        if isinstance(block, _Para) and _is_pseudo_heading(block.children, "Stakeholder Approval"):
            # The template ends with a bold line, not a heading, above the sign-off list.
            section = _Section("Stakeholder Approval", [], block.line, 2)
            top.append(section)
            current = section
            continue
        current.blocks.append(block)
    return top


def _is_pseudo_heading(children: list[Token], title: str) -> bool:
    found = _label(children)
    return found is not None and _norm(found[0]) == _norm(title) and not _text(found[1])


# --------------------------------------------------------------------------------------------
# Inline content: text, checkboxes, bold labels, placeholders
# --------------------------------------------------------------------------------------------


def _norm(text: str) -> str:
    """Comparison form of a label or item: case, spacing and a trailing colon do not matter."""
    return " ".join(text.replace("\u2019", "'").lower().split()).rstrip(":").rstrip()


def _text(children: Sequence[Token], hard: str = " ") -> str:
    """What a reader sees, with Markdown's own escapes resolved and code spans taken literally.

    Emphasis markers are kept as typed, so ``*word*`` in a value stays ``*word*`` rather than
    vanishing; only the outer whitespace of plain text is trimmed, never that of a code span.
    A soft line break is a space, as Markdown renders it, so authors may wrap long values;
    prose reads a hard break (a line ending in a backslash) as a newline.
    """
    parts: list[tuple[str, bool]] = []  # (text, trimmable)
    for tok in children:
        kind = tok.type
        if kind == "text":
            parts.append((tok.content, True))
        elif kind in ("code_inline", "html_inline"):
            parts.append((tok.content, False))
        elif kind == "softbreak":
            parts.append((" ", True))
        elif kind == "hardbreak":
            parts.append((hard, True))
        elif kind == "image":
            parts.append((tok.content, True))
        elif kind.startswith("link_"):
            continue
        elif kind.endswith(("_open", "_close")):
            parts.append((tok.markup, False))
    while parts and parts[0][1] and not parts[0][0].strip():
        parts.pop(0)
    while parts and parts[-1][1] and not parts[-1][0].strip():
        parts.pop()
    if parts and parts[0][1]:
        parts[0] = (parts[0][0].lstrip(), True)
    if parts and parts[-1][1]:
        parts[-1] = (parts[-1][0].rstrip(), True)
    return "".join(p for p, _ in parts)


def _href(children: Sequence[Token]) -> str | None:
    """The target of the single link making up a value, so ``[API docs](https://..)`` works."""
    links = [t for t in children if t.type == "link_open"]
    meaningful = [t for t in children if not (t.type == "text" and not t.content.strip())]
    if len(links) == 1 and meaningful and meaningful[0] is links[0]:
        target = links[0].attrGet("href")
        return str(target) if target is not None else None
    return None


_PLACEHOLDER = re.compile(r"\[[^\[\]\n]+\]")


def _placeholders(children: Sequence[Token]) -> list[str]:
    """Bracketed template prompts left in plain text (code spans and link text excepted)."""
    found: list[str] = []
    depth = 0
    for tok in children:
        if tok.type == "link_open":
            depth += 1
        elif tok.type == "link_close":
            depth -= 1
        elif tok.type == "text" and depth == 0:
            found.extend(_PLACEHOLDER.findall(tok.content))
    return found


def _placeholder_message(found: Sequence[str]) -> str:
    return f"placeholder {', '.join(found)} not filled in"


_CHECKBOX = re.compile(r"^\[([ xX])\](?:[ \t]+|$)")


def _checkbox(children: list[Token]) -> tuple[bool | None, list[Token]]:
    """A task-list tick at the start of an item: checked or not, and the item without it."""
    for index, tok in enumerate(children):
        if tok.type != "text":
            return None, children
        if not tok.content:
            continue
        match = _CHECKBOX.match(tok.content)
        if match is None:
            return None, children
        rest = tok.copy(content=tok.content[match.end() :])
        return match.group(1) != " ", [rest, *children[index + 1 :]]
    return None, children


def _label(children: list[Token]) -> tuple[str, list[Token]] | None:
    """``**Label:** value`` -> (``Label``, value tokens); ``None`` if the line has no label."""
    index = 0
    while index < len(children) and children[index].type == "text" and not children[index].content:
        index += 1
    if index >= len(children) or children[index].type != "strong_open":
        return None
    end = index + 1
    while end < len(children) and children[end].type != "strong_close":
        end += 1
    if end >= len(children):
        return None
    label = _text(children[index + 1 : end]).strip()
    rest = children[end + 1 :]
    if rest and rest[0].type == "text" and rest[0].content.lstrip().startswith(":"):
        rest = [rest[0].copy(content=rest[0].content.lstrip()[1:]), *rest[1:]]
    return label.rstrip(":").strip(), rest


def _split_lines(children: list[Token], first_line: int) -> list[_Line]:
    lines = [_Line([], first_line)]
    for tok in children:
        if tok.type in ("softbreak", "hardbreak"):
            lines.append(_Line([], lines[-1].line + 1))
        else:
            lines[-1].children.append(tok)
    return lines


# --------------------------------------------------------------------------------------------
# Values: the small grammars of label values and table cells
# --------------------------------------------------------------------------------------------


class _Bad(Exception):
    """A value that does not follow its documented grammar; the message says what would."""


_NUMBER = r"[-+]?(?:\d[\d,]*(?:\.\d*)?|\.\d+)(?:[eE][-+]?\d+)?"


def _load_number(text: str) -> int | float:
    t = text.strip()
    if re.fullmatch(r"[-+]?\d+", t):
        return int(t)
    if re.fullmatch(r"[-+]?\d{1,3}(?:,\d{3})+", t):
        return int(t.replace(",", ""))
    if re.fullmatch(r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?", t):
        value = float(t)
        if math.isfinite(value):
            return value
    raise _Bad(f"expected a number, got '{t}'")


def _dump_number(value: Any) -> str | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    if isinstance(value, int):
        return str(value)
    if not math.isfinite(value):
        return None
    if value.is_integer() and abs(value) < 1e16:
        return str(int(value))
    return repr(value)


def _load_text(text: str) -> str:
    return text


def _dump_text(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def _load_bool(text: str) -> bool:
    low = _norm(text)
    if low in ("yes", "true", "y"):
        return True
    if low in ("no", "false", "n"):
        return False
    raise _Bad(f"expected Yes or No, got '{text}'")


def _dump_bool(value: Any) -> str | None:
    return ("Yes" if value else "No") if isinstance(value, bool) else None


def _load_list(text: str) -> list[str]:
    if _norm(text) == "none":
        return []
    items = [part.strip() for part in text.split(",")]
    if any(not item for item in items):
        raise _Bad(f"expected a comma-separated list, got '{text}'")
    return items


def _dump_list(value: Any) -> str | None:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        return None
    return ", ".join(value) if value else "none"


_BARE = re.compile(r'[^\s=,"](?:[^=,"]*[^\s=,"])?')


def _dump_token(value: Any, *, key: bool) -> str | None:
    if isinstance(value, bool) and not key:
        return "true" if value else "false"
    if isinstance(value, int) and not isinstance(value, bool) and not key:
        return str(value)
    if not isinstance(value, str):
        return None
    looks_typed = value in ("true", "false") or re.fullmatch(r"[-+]?\d+", value) is not None
    if _BARE.fullmatch(value) and (key or not looks_typed):
        return value
    return json.dumps(value, ensure_ascii=False)


def _dump_map(value: Any) -> str | None:
    if not isinstance(value, dict) or not value:
        return None
    parts: list[str] = []
    for k, v in value.items():
        dk, dv = _dump_token(k, key=True), _dump_token(v, key=False)
        if dk is None or dv is None:
            return None
        parts.append(f"{dk}={dv}")
    return ", ".join(parts)


def _load_map(text: str) -> dict[str, Any]:
    """``a=b, "c d"=1, e=true``: a tiny scanner, since keys and values may be JSON-quoted."""
    result: dict[str, Any] = {}
    pos = 0

    def token(stop: str) -> tuple[Any, int]:
        nonlocal pos
        while pos < len(text) and text[pos] == " ":
            pos += 1
        if pos < len(text) and text[pos] == '"':
            decoder = json.JSONDecoder()
            try:
                value, end = decoder.raw_decode(text, pos)
            except json.JSONDecodeError:
                raise _Bad(f"unterminated quoted value in '{text}'") from None
            pos = end
            return value, True
        end = pos
        while end < len(text) and text[end] not in stop:
            end += 1
        raw = text[pos:end].strip()
        pos = end
        return raw, False

    while True:
        key, _quoted = token("=,")
        while pos < len(text) and text[pos] == " ":
            pos += 1
        if not key or pos >= len(text) or text[pos] != "=":
            raise _Bad(f"expected key=value pairs separated by commas, got '{text}'")
        pos += 1
        value, quoted = token(",")
        if value == "" and not quoted:
            raise _Bad(f"missing value for '{key}' in '{text}'")
        if not quoted:
            if value in ("true", "false"):
                value = value == "true"
            elif re.fullmatch(r"[-+]?\d+", value):
                value = int(value)
        if key in result:
            raise _Bad(f"'{key}' is mapped twice")
        result[key] = value
        while pos < len(text) and text[pos] == " ":
            pos += 1
        if pos >= len(text):
            return result
        if text[pos] != ",":
            raise _Bad(f"expected a comma after '{key}={value}' in '{text}'")
        pos += 1


@dataclass(frozen=True)
class _Conv:
    """How one value is written and read back: ``dump`` answers ``None`` when it cannot be."""

    dump: Callable[[Any], str | None]
    load: Callable[[str], Any]


TEXT = _Conv(_dump_text, _load_text)
NUMBER = _Conv(_dump_number, _load_number)
BOOL = _Conv(_dump_bool, _load_bool)
LIST = _Conv(_dump_list, _load_list)
MAP = _Conv(_dump_map, _load_map)


class _Codec(Protocol):
    """Writes some keys of one spec object as a label's text, and reads that text back."""

    def dump(self, obj: Mapping[str, Any]) -> tuple[str, tuple[str, ...]] | None: ...

    def load(self, text: str) -> Data: ...


@dataclass(frozen=True)
class _Key:
    key: str
    conv: _Conv

    def dump(self, obj: Mapping[str, Any]) -> tuple[str, tuple[str, ...]] | None:
        if self.key not in obj:
            return None
        text = self.conv.dump(obj[self.key])
        return None if text is None else (text, (self.key,))

    def load(self, text: str) -> Data:
        return {self.key: self.conv.load(text)}


@dataclass(frozen=True)
class _Choice:
    """One of a fixed set, shown by its template name (``REST API``) and read by either name."""

    key: str
    names: Mapping[str, str]
    what: str

    def dump(self, obj: Mapping[str, Any]) -> tuple[str, tuple[str, ...]] | None:
        value = obj.get(self.key)
        if not isinstance(value, str) or value not in self.names:
            return None
        return self.names[value], (self.key,)

    def load(self, text: str) -> Data:
        lookup = {_norm(name): value for value, name in self.names.items()}
        lookup.update({_norm(value): value for value in self.names})
        parts = [p.strip() for p in text.split("|")]
        if len(parts) > 1:
            if all(_norm(p) in lookup for p in parts):
                raise _Bad(
                    f"placeholder: still lists the choices '{text}'; keep the one that applies"
                )
            raise _Bad(f"choose one {self.what}, got '{text}'")
        value = lookup.get(_norm(text))
        if value is None:
            choices = ", ".join(self.names.values())
            raise _Bad(f"unknown {self.what} '{text}'; choose one of: {choices}")
        return {self.key: value}


_RATE_KEYS = {
    "second": "requests_per_second",
    "minute": "requests_per_minute",
    "hour": "requests_per_hour",
}
_UNIT_WORDS = {
    "s": "second", "sec": "second", "second": "second", "seconds": "second",
    "m": "minute", "min": "minute", "minute": "minute", "minutes": "minute",
    "h": "hour", "hr": "hour", "hour": "hour", "hours": "hour",
}  # fmt: skip
_RATE = re.compile(
    rf"^(?P<n>{_NUMBER})\s*(?:requests?|req|calls?)?\s*(?:per\s+|/\s*)(?P<unit>[a-z]+)$", re.I
)


@dataclass(frozen=True)
class _Rates:
    """``600 requests per minute`` (several joined by commas), directly or under ``container``."""

    container: str | None = None

    def dump(self, obj: Mapping[str, Any]) -> tuple[str, tuple[str, ...]] | None:
        source = obj.get(self.container) if self.container else obj
        if not isinstance(source, dict):
            return None
        parts: list[str] = []
        for unit, key in _RATE_KEYS.items():
            if key in source:
                number = _dump_number(source[key])
                if number is None:
                    return None
                parts.append(f"{number} requests per {unit}")
        if not parts:
            return None
        if self.container:
            return ", ".join(parts), (self.container,)
        return ", ".join(parts), tuple(k for k in _RATE_KEYS.values() if k in source)

    def load(self, text: str) -> Data:
        rates: Data = {}
        for part in re.split(r"\s*[,;]\s+|\s+and\s+", text.strip()):
            match = _RATE.match(part.strip())
            unit = _UNIT_WORDS.get(match.group("unit").lower()) if match else None
            if match is None or unit is None:
                raise _Bad(f"expected a rate such as '600 requests per minute', got '{part}'")
            key = _RATE_KEYS[unit]
            if key in rates:
                raise _Bad(f"more than one rate per {unit}")
            rates[key] = _load_number(match.group("n"))
        return {self.container: rates} if self.container else rates


@dataclass(frozen=True)
class _Sla:
    """``99.9% - description``, either part optional."""

    def dump(self, obj: Mapping[str, Any]) -> tuple[str, tuple[str, ...]] | None:
        uptime, description = obj.get("uptime_percent"), obj.get("description")
        keys = tuple(k for k in ("uptime_percent", "description") if k in obj)
        number = _dump_number(uptime) if "uptime_percent" in obj else None
        if "uptime_percent" in obj and number is None:
            return None
        if description is not None and not isinstance(description, str):
            return None
        if number is not None and description is not None:
            return f"{number}% - {description}", keys
        if number is not None:
            return f"{number}%", keys
        return (description, keys) if description is not None else None

    def load(self, text: str) -> Data:
        match = re.match(rf"^({_NUMBER})\s*%(.*)$", text.strip(), re.S)
        if match is None:
            return {"description": text}
        result: Data = {"uptime_percent": _load_number(match.group(1))}
        rest = match.group(2).strip()
        rest = re.sub(r"^(?:uptime\b)?\s*[-\u2013\u2014:,]?\s*", "", rest, count=1, flags=re.I)
        if rest:
            result["description"] = rest
        return result


@dataclass(frozen=True)
class _ResponseTimes:
    """``p50 200 ms, p95 800 ms, p99 1500 ms`` as ``response_time``."""

    def dump(self, obj: Mapping[str, Any]) -> tuple[str, tuple[str, ...]] | None:
        times = obj.get("response_time")
        if not isinstance(times, dict) or not times:
            return None
        parts: list[str] = []
        for key, value in times.items():
            number = _dump_number(value)
            if key not in ("p50_ms", "p95_ms", "p99_ms") or number is None:
                return None
            parts.append(f"{key[:-3]} {number} ms")
        return ", ".join(parts), ("response_time",)

    def load(self, text: str) -> Data:
        times: Data = {}
        for part in re.split(r"\s*[,;]\s+", text.strip()):
            match = re.fullmatch(
                rf"p(50|95|99)\s*(?::|=|<=|\u2264|<)?\s*({_NUMBER})\s*ms", part.strip(), re.I
            )
            if match is None:
                raise _Bad(f"expected e.g. 'p50 200 ms, p95 800 ms', got '{part}'")
            key = f"p{match.group(1)}_ms"
            if key in times:
                raise _Bad(f"{key[:-3]} given twice")
            times[key] = _load_number(match.group(2))
        return {"response_time": times}


def _dump_transformation(value: Any) -> str | None:
    if not isinstance(value, dict):
        return None
    kind = value.get("kind")
    if kind == "none":
        return "None"
    if kind in ("date", "datetime"):
        return f"Format {kind}: {value.get('from_format')} -> {value.get('to_format')}"
    if kind == "enum":
        values = _dump_map(value.get("values"))
        return None if values is None else f"Map enum values: {values}"
    if kind == "convert":
        text = f"Convert to {value.get('to_type')}"
        if "factor" in value:
            factor = _dump_number(value["factor"])
            if factor is None:
                return None
            text += f" (x{factor})"
        return text
    if kind == "function":
        return f"Function: {value.get('function')}"
    return None


_TRANSFORMATION_FORMS = (
    "None, Format date: FROM -> TO, Format datetime: FROM -> TO, "
    "Map enum values: a=b, c=d, Convert to TYPE (xFACTOR), Function: module:function"
)
_TO_TYPES = ("string", "integer", "number", "boolean")


def _load_transformation(text: str) -> Data | None:
    t = text.strip()
    if not t:
        return None
    if _norm(t) == "none":
        return {"kind": "none"}
    match = re.fullmatch(r"format (date|datetime)\b\s*(?::\s*(.*))?", t, re.I | re.S)
    if match:
        kind = match.group(1).lower()
        formats = re.split(r"\s+(?:->|\u2192)\s+", match.group(2) or "")
        if len(formats) != 2 or not all(f.strip() for f in formats):
            raise _Bad(f"give both formats: 'Format {kind}: %Y-%m-%d -> %d.%m.%Y'")
        return {"kind": kind, "from_format": formats[0].strip(), "to_format": formats[1].strip()}
    match = re.fullmatch(r"map enum values\b\s*(?::\s*(.*))?", t, re.I | re.S)
    if match:
        if not (match.group(1) or "").strip():
            raise _Bad("list the values: 'Map enum values: available=in_stock, sold=gone'")
        return {"kind": "enum", "values": _load_map(match.group(1))}
    match = re.fullmatch(
        rf"convert to\s+(\w+)\s*(?:\(\s*(?:x|\u00d7|\*)\s*({_NUMBER})\s*\))?", t, re.I
    )
    if match:
        to_type = match.group(1).lower()
        if to_type not in _TO_TYPES:
            raise _Bad(f"cannot convert to '{match.group(1)}'; use one of: {', '.join(_TO_TYPES)}")
        result: Data = {"kind": "convert", "to_type": to_type}
        if match.group(2) is not None:
            result["factor"] = _load_number(match.group(2))
        return result
    match = re.fullmatch(r"function\s*:\s*(\S+)", t, re.I)
    if match:
        return {"kind": "function", "function": match.group(1)}
    raise _Bad(f"unrecognised transformation '{t}'; use one of: {_TRANSFORMATION_FORMS}")


def _same(a: Any, b: Any) -> bool:
    """Equal as the model will see it: 300 and 300.0 alike, but True is not 1."""
    if isinstance(a, bool) or isinstance(b, bool):
        return type(a) is type(b) and a == b
    if isinstance(a, int | float) and isinstance(b, int | float):
        return a == b
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, list | tuple) and isinstance(b, list | tuple):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=True))
    return type(a) is type(b) and bool(a == b)


# --------------------------------------------------------------------------------------------
# What goes where: labels, checklist items and the keys they carry
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Field:
    """A bold-labelled value (``**Label:** text``) holding some keys of the object at ``base``."""

    label: str
    base: tuple[str, ...]
    codec: _Codec
    children: tuple[_Field, ...] = ()
    href: bool = False
    colon: bool = True


@dataclass(frozen=True)
class _Flag:
    """A checklist item: its tick is the boolean ``base.key``."""

    text: str
    base: tuple[str, ...]
    key: str

    @property
    def core(self) -> str:
        return self.text.split(" (")[0]


@dataclass(frozen=True)
class _Entry:
    """An Error Handling item: ticked means ``base.key`` exists, with nested bold parameters."""

    text: str
    base: tuple[str, ...]
    key: str
    fields: tuple[_Field, ...]

    @property
    def core(self) -> str:
        return self.text.split(" (")[0]


@dataclass(frozen=True)
class _Criterion:
    """A Success Criteria item: a sentence carrying one number."""

    text: str
    key: str
    keyword: str
    dump: Callable[[Any], str | None]
    load: Callable[[str], Any]

    @property
    def core(self) -> str:
        return self.text


_Check = _Flag | _Entry | _Criterion
_ListItem = _Field | _Check


def _claims(check: _Check, norm: str) -> bool:
    if isinstance(check, _Criterion):
        return check.keyword in norm
    core = _norm(check.core)
    return norm == core or (norm.startswith(core) and not norm[len(core)].isalnum())


def _flags(base: tuple[str, ...], *pairs: tuple[str, str]) -> tuple[_Flag, ...]:
    return tuple(_Flag(text, base, key) for text, key in pairs)


_INTEGRATION_TYPES = {
    "rest": "REST API",
    "graphql": "GraphQL",
    "webhook": "Webhook",
    "service": "Third-party Service",
}
_EFFORTS = {"small": "Small", "medium": "Medium", "large": "Large"}
_AUTH_KINDS = {
    "oauth2_client_credentials": "OAuth",
    "api_key": "API Key",
    "basic": "Basic Auth",
    "bearer": "Bearer token",
    "custom": "Custom",
    "none": "None",
}

_HEADER = (
    _Field("Date", (), _Key("date", TEXT)),
    _Field("Author", (), _Key("author", TEXT)),
    _Field("Integration Type", (), _Choice("integration_type", _INTEGRATION_TYPES, "type")),
    _Field("Effort", (), _Choice("effort", _EFFORTS, "effort")),
)

_AUTH = ("authentication",)
_AUTH_FIELDS = (
    _Field("Token operation", _AUTH, _Key("token_operation", TEXT)),
    _Field("Token URL", _AUTH, _Key("token_url", TEXT)),
    _Field("Client ID", _AUTH, _Key("client_id", TEXT)),
    _Field("Client secret", _AUTH, _Key("client_secret", TEXT)),
    _Field("Scopes", _AUTH, _Key("scopes", LIST)),
    _Field("Token TTL (seconds)", _AUTH, _Key("token_ttl_seconds", NUMBER)),
    _Field("Refresh tokens", _AUTH, _Key("refresh_tokens", BOOL)),
    _Field("API key", _AUTH, _Key("api_key", TEXT)),
    _Field("Key in", _AUTH, _Key("key_in", TEXT)),
    _Field("Key name", _AUTH, _Key("key_name", TEXT)),
    _Field("Username", _AUTH, _Key("username", TEXT)),
    _Field("Password", _AUTH, _Key("password", TEXT)),
    _Field("Token", _AUTH, _Key("token", TEXT)),
    _Field("Description", _AUTH, _Key("description", TEXT)),
)
_LIMITS = ("rate_limits",)
_LIMIT_FIELDS = (
    _Field("Burst", _LIMITS, _Key("burst", NUMBER)),
    _Field("Counted per", _LIMITS, _Key("per", TEXT)),
    _Field("Retry-After format", _LIMITS, _Key("retry_after_format", TEXT)),
    _Field("Rate-limit headers", _LIMITS, _Key("headers", LIST)),
    _Field("Operation costs", _LIMITS, _Key("operation_costs", MAP)),
)
_SERVICE = (
    _Field("Provider", ("provider",), _Key("name", TEXT)),
    _Field("Documentation", ("provider",), _Key("documentation", TEXT), href=True),
    _Field("OpenAPI document", ("provider",), _Key("openapi", TEXT)),
    _Field("Authentication", _AUTH, _Choice("kind", _AUTH_KINDS, "authentication"), _AUTH_FIELDS),
    _Field("Rate Limits", _LIMITS, _Rates(), _LIMIT_FIELDS),
    _Field("SLA/Uptime", ("sla",), _Sla()),
)
_STORY = ("use_cases", "primary")
_PRIMARY = (
    _Field("As a", _STORY, _Key("as_a", TEXT), colon=False),
    _Field("I want", _STORY, _Key("i_want", TEXT), colon=False),
    _Field("So that", _STORY, _Key("so_that", TEXT), colon=False),
)
_DEST = ("destination",)
_DESTINATION = (
    _Field("Destination name", _DEST, _Key("name", TEXT)),
    _Field("Destination kind", _DEST, _Key("kind", TEXT)),
    _Field("Destination OpenAPI document", _DEST, _Key("openapi", TEXT)),
    _Field("Destination operation", _DEST, _Key("operation", TEXT)),
    _Field("Destination file", _DEST, _Key("path", TEXT)),
    _Field("Destination table", _DEST, _Key("table", TEXT)),
)
_MAPPING = ("data_mapping",)
_MAPPING_FIELDS = (
    _Field("Source operation", _MAPPING, _Key("source_operation", TEXT)),
    _Field("Records path", _MAPPING, _Key("records_path", TEXT)),
)
_EH = ("error_handling",)
_CF = (*_EH, "connection_failures")
_RL = (*_EH, "rate_limit")
_ID = (*_EH, "invalid_data")
_AF = (*_EH, "authentication_failures")
_SU = (*_EH, "service_unavailable")
_RT = (*_EH, "request_timeout")
_ERROR_HANDLING = (
    _Entry("Connection failures (retry logic)", _EH, "connection_failures", (
        _Field("Max retries", _CF, _Key("max_retries", NUMBER)),
        _Field("Backoff", _CF, _Key("backoff", TEXT)),
        _Field("Initial delay (ms)", _CF, _Key("initial_delay_ms", NUMBER)),
        _Field("Max delay (ms)", _CF, _Key("max_delay_ms", NUMBER)),
        _Field("Jitter", _CF, _Key("jitter", TEXT)),
    )),
    _Entry("Rate limit exceeded (backoff strategy)", _EH, "rate_limit", (
        _Field("Honour Retry-After", _RL, _Key("honour_retry_after", BOOL)),
        _Field("Client-side limit (requests/second)", _RL,
               _Key("client_requests_per_second", NUMBER)),
        _Field("Max retries", _RL, _Key("max_retries", NUMBER)),
    )),
    _Entry("Invalid data format (validation and logging)", _EH, "invalid_data", (
        _Field("Action", _ID, _Key("action", TEXT)),
        _Field("Log", _ID, _Key("log", TEXT)),
    )),
    _Entry("Authentication failures (re-auth flow)", _EH, "authentication_failures", (
        _Field("Re-authentication", _AF, _Key("reauth", TEXT)),
        _Field("Max attempts", _AF, _Key("max_attempts", NUMBER)),
    )),
    _Entry("Service unavailable (graceful degradation)", _EH, "service_unavailable", (
        _Field("Strategy", _SU, _Key("strategy", TEXT)),
        _Field("Max retries", _SU, _Key("max_retries", NUMBER)),
        _Field("Circuit open (seconds)", _SU, _Key("circuit_open_seconds", NUMBER)),
        _Field("Failure threshold", _SU, _Key("failure_threshold", NUMBER)),
    )),
    _Entry("Request timeouts (per-request timeout)", _EH, "request_timeout", (
        _Field("Timeout (seconds)", _RT, _Key("seconds", NUMBER)),
    )),
)  # fmt: skip
_PERF = ("performance",)
_PERFORMANCE = (
    _Field("Response Time", _PERF, _ResponseTimes()),
    _Field("Throughput", _PERF, _Rates("throughput")),
    _Field("Batch Size", _PERF, _Key("batch_size", NUMBER)),
)
_SEC = ("security",)
_SECURITY: tuple[_ListItem, ...] = (
    *_flags(
        _SEC,
        ("API keys/credentials stored securely", "credentials_stored_securely"),
        ("Data encryption in transit", "encryption_in_transit"),
        ("Data encryption at rest (if applicable)", "encryption_at_rest"),
        ("Audit logging implemented", "audit_logging"),
        ("GDPR/privacy compliance reviewed", "privacy_reviewed"),
        ("Rate limiting implemented", "rate_limiting"),
    ),
    _Field("PII fields", _SEC, _Key("pii_fields", LIST)),
)
_METRICS = _flags(
    ("monitoring", "metrics"),
    ("Request success/failure rates", "success_failure_rates"),
    ("Response times", "response_times"),
    ("Rate limit usage", "rate_limit_usage"),
    ("Data sync accuracy", "data_sync_accuracy"),
    ("Error frequencies by type", "error_frequencies"),
)
_CHANNEL = ("monitoring", "alert_channel")
_ALERTS: tuple[_ListItem, ...] = (
    *_flags(
        ("monitoring", "alerts"),
        ("Integration failure alert", "integration_failure"),
        ("High error rate alert", "high_error_rate"),
        ("Rate limit threshold alert", "rate_limit_threshold"),
        ("Service availability alert", "service_availability"),
    ),
    _Field(
        "Alert channel",
        _CHANNEL,
        _Choice("kind", {"webhook": "Webhook", "log_pattern": "Log pattern"}, "alert channel"),
        (
            _Field("Webhook path", _CHANNEL, _Key("path", TEXT)),
            _Field("Pattern", _CHANNEL, _Key("pattern", TEXT)),
        ),
    ),
)
_TESTS = ("testing_strategy",)
_UNIT_TESTS = _flags(
    (*_TESTS, "unit"),
    ("Data transformation logic", "data_transformation"),
    ("Error handling scenarios", "error_handling"),
    ("Authentication flows", "authentication_flows"),
)
_INTEGRATION_TESTS = _flags(
    (*_TESTS, "integration"),
    ("End-to-end data flow", "end_to_end"),
    ("Error scenarios with actual API", "error_scenarios"),
    ("Rate limiting behavior", "rate_limiting"),
    ("Authentication renewal", "authentication_renewal"),
)
_PERFORMANCE_TESTS = _flags(
    (*_TESTS, "performance"),
    ("Load testing with expected volume", "load_testing"),
    ("Rate limit compliance testing", "rate_limit_compliance"),
    ("Timeout handling", "timeout_handling"),
)
_PHASES_BASE = ("launch", "phases")
_PHASES = (
    _Field("Development/Testing", _PHASES_BASE, _Key("development", TEXT)),
    _Field("Staging Validation", _PHASES_BASE, _Key("staging", TEXT)),
    _Field("Production Rollout", _PHASES_BASE, _Key("production", TEXT)),
)


def _sentence(pattern: str, template: str, integer: bool = False) -> tuple[Any, Any]:
    """Dump/load for a criterion sentence with one ``{n}``."""

    def dump(value: Any) -> str | None:
        if integer and (isinstance(value, bool) or not isinstance(value, int)):
            return None
        number = _dump_number(value)
        return None if number is None else template.format(n=number)

    def load(text: str) -> Any:
        match = re.fullmatch(pattern, text.strip(), re.I)
        if match is None:
            raise _Bad(f"expected '{template.format(n='N')}', got '{text}'")
        return _load_number(match.group(1))

    return dump, load


def _dump_loss(value: Any) -> str | None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        return None
    return "Zero data loss incidents" if value == 0 else f"At most {value} data loss incidents"


def _load_loss(text: str) -> int | float:
    t = text.strip()
    if re.fullmatch(r"(?:zero|no) data loss incidents?\.?", t, re.I):
        return 0
    match = re.fullmatch(
        rf"(?:at most|no more than)\s+({_NUMBER})\s+data loss incidents?\.?", t, re.I
    )
    if match is None:
        raise _Bad(
            f"expected 'Zero data loss incidents' or 'At most N data loss incidents', got '{t}'"
        )
    return _load_number(match.group(1))


_CRITERIA = (
    _Criterion(
        "Successful data sync for [X] records", "records_synced", "data sync",
        *_sentence(rf"successful data sync for ({_NUMBER}) records?\.?",
                   "Successful data sync for {n} records", integer=True),
    ),
    _Criterion(
        "Error rate below [X]%", "max_error_rate_percent", "error rate",
        *_sentence(rf"error rate below ({_NUMBER})\s*%\.?", "Error rate below {n}%"),
    ),
    _Criterion(
        "Response time under [X] seconds", "max_response_time_seconds", "response time",
        *_sentence(rf"response time under ({_NUMBER})\s*(?:seconds?|s)\.?",
                   "Response time under {n} seconds"),
    ),
    _Criterion("Zero data loss incidents", "max_data_loss_incidents", "data loss",
               _dump_loss, _load_loss),
)  # fmt: skip
_CRITERIA_BASE = ("launch", "success_criteria")
_DEPENDENCIES = _flags(
    ("dependencies",),
    ("API access credentials obtained", "credentials_obtained"),
    ("Network firewall rules configured", "firewall_rules_configured"),
    ("Database schema changes deployed", "database_schema_deployed"),
    ("Monitoring/alerting setup complete", "monitoring_setup_complete"),
)
_DOCUMENTATION = _flags(
    ("documentation",),
    ("API integration guide", "integration_guide"),
    ("Troubleshooting runbook", "troubleshooting_runbook"),
    ("Data mapping documentation", "data_mapping_documentation"),
    ("Monitoring dashboard created", "monitoring_dashboard"),
)
_TABLE_COLUMNS = ("Source Field", "Destination Field", "Transformation", "Required")
_SAMPLE_ROW = re.compile(r"^(?:source|dest)\.field\d+$")
_SAMPLE_USE_CASE = re.compile(r"^use case \d+$", re.I)
_SIGNED = re.compile(r"(?:(.*?)\s+)?[-\u2013\u2014]\s+([\d./-]+)", re.S)


# --------------------------------------------------------------------------------------------
# Import
# --------------------------------------------------------------------------------------------


class _Reader:
    """Collects spec data, where each part came from, and every problem, in one pass."""

    def __init__(self, file: str) -> None:
        self.file = file
        self.data: Data = {}
        self.lines: dict[DataPath, int] = {(): 1}
        self.labels: dict[DataPath, str] = {}
        self.problems: list[Problem] = []

    def problem(self, line: int | None, where: str, message: str) -> None:
        self.problems.append(Problem(self.file, line, where, message))

    def _note(self, path: DataPath, line: int, where: str) -> None:
        self.lines.setdefault(path, line)
        self.labels.setdefault(path, where)

    def ensure(self, path: DataPath, line: int, where: str) -> Data | None:
        """The mapping at ``path``, created if absent; ``None`` if a value already sits there."""
        node = self.data
        for depth, key in enumerate(path):
            child = node.get(str(key))
            if child is None:
                child = node[str(key)] = {}
                self._note(path[: depth + 1], line, where)
            elif not isinstance(child, dict):
                first = self.lines.get(path[: depth + 1])
                self.problem(line, where, f"conflicts with the value given on line {first}")
                return None
            node = child
        return node

    def put(self, path: DataPath, value: Any, line: int, where: str) -> None:
        parent = self.ensure(path[:-1], line, where)
        if parent is None:
            return
        key = str(path[-1])
        if key in parent:
            first = self.lines.get(path)
            self.problem(line, where, f"given twice (first on line {first})")
            return
        parent[key] = value
        self._note(path, line, where)


def _find(label: str, fields: Sequence[_Field]) -> _Field | None:
    wanted = _norm(label)
    return next((f for f in fields if _norm(f.label) == wanted), None)


def _hint(text: str, options: Sequence[str]) -> str:
    close = difflib.get_close_matches(text, list(options), n=1, cutoff=0.6)
    return f" (did you mean '{close[0]}'?)" if close else f"; expected one of: {', '.join(options)}"


def _apply_field(r: _Reader, f: _Field, children: list[Token], line: int, where: str) -> None:
    here = f"{where} > {f.label}"
    found = _placeholders(children)
    if found:
        r.problem(line, here, _placeholder_message(found))
        return
    text = _text(children)
    if f.href:
        text = _href(children) or text
    if not text:
        return
    try:
        loaded = f.codec.load(text)
    except _Bad as exc:
        r.problem(line, here, str(exc))
        return
    for key, value in loaded.items():
        r.put((*f.base, key), value, line, here)


def _read_items(
    r: _Reader, lst: _List, spec: Sequence[_ListItem], where: str, group: str = ""
) -> None:
    """One list of labelled values and/or checklist items.

    Problems about a known label or item are located as ``Section > Label``; those about an
    item nothing matched name the ``group`` (the ``###`` heading) instead, as that is all there
    is to go by.
    """
    unknown = f"{where} > {group}" if group else where
    fields = [s for s in spec if isinstance(s, _Field)]
    checks = [s for s in spec if not isinstance(s, _Field)]
    seen: dict[_Check, int] = {}
    for item in lst.items:
        if item.first is None:
            continue
        children, line = item.first.children, item.line
        ticked, rest = _checkbox(children)
        if ticked is not None:
            text = _text(rest)
            check = next((c for c in checks if _claims(c, _norm(text))), None)
            if check is None:
                hint = _hint(text, [c.text for c in checks]) if checks else ""
                r.problem(line, unknown, f"unknown checklist item '{text}'{hint}")
                continue
            if check in seen:
                r.problem(line, f"{where} > {check.core}", f"listed twice (line {seen[check]})")
                continue
            seen[check] = line
            _read_check(r, check, ticked, rest, item, where)
            continue
        labelled = _label(children)
        if labelled is not None:
            field_ = _find(labelled[0], fields)
            if field_ is None:
                hint = _hint(labelled[0], [f.label for f in fields]) if fields else ""
                r.problem(line, unknown, f"unknown label '{labelled[0]}'{hint}")
                continue
            _apply_field(r, field_, labelled[1], line, where)
            if field_.children:
                for sub in item.lists:
                    _read_items(r, sub, field_.children, f"{where} > {field_.label}")
            continue
        text = _text(children)
        if any(_claims(c, _norm(text)) for c in checks):
            message = f"'{text}' needs a checkbox: '- [x] {text}' or '- [ ] {text}'"
            r.problem(line, unknown, message)
        # anything else is the author's free text


def _read_check(
    r: _Reader, check: _Check, ticked: bool, rest: list[Token], item: _Item, where: str
) -> None:
    here = f"{where} > {check.core}"
    if isinstance(check, _Flag):
        r.put((*check.base, check.key), ticked, item.line, here)
    elif isinstance(check, _Entry):
        if ticked:
            r.ensure((*check.base, check.key), item.line, here)
            for sub in item.lists:
                _read_items(r, sub, check.fields, here)
    else:
        found = _placeholders(rest)
        if found:
            r.problem(item.line, here, _placeholder_message(found))
            return
        try:
            value = check.load(_text(rest))
        except _Bad as exc:
            r.problem(item.line, here, str(exc))
            return
        r.put((*_CRITERIA_BASE, check.key), value, item.line, here)


def _lists(blocks: Sequence[_Block]) -> list[_List]:
    return [b for b in blocks if isinstance(b, _List)]


def _read_para_fields(r: _Reader, para: _Para, fields: Sequence[_Field], where: str) -> None:
    """Labelled lines of one paragraph; an unlabelled line continues the value above it."""
    groups: list[tuple[_Field, list[Token], int]] = []
    current: list[Token] | None = None
    for line in _split_lines(para.children, para.line):
        labelled = _label(line.children)
        if labelled is None:
            if current is not None:
                current.extend([Token("softbreak", "br", 0), *line.children])
            continue
        field_ = _find(labelled[0], fields)
        if field_ is None:
            close = difflib.get_close_matches(labelled[0], [f.label for f in fields], cutoff=0.75)
            if close:
                message = f"unknown label '{labelled[0]}' (did you mean '{close[0]}'?)"
                r.problem(line.line, where, message)
            current = None
            continue
        current = list(labelled[1])
        groups.append((field_, current, line.line))
    for field_, children, line_number in groups:
        _apply_field(r, field_, children, line_number, where)


def _read_title(r: _Reader, section: _Section) -> None:
    found = _placeholders(section.title_children)
    if found:
        r.problem(section.line, "Title", _placeholder_message(found))
    else:
        name = _name_from_title(section.title_children)
        if name:
            r.put(("name",), name, section.line, "Title")
    for block in section.blocks:
        if isinstance(block, _Para):
            _read_para_fields(r, block, _HEADER, "Header")


def _name_from_title(children: list[Token]) -> str:
    title = _text(children)
    prefix = re.match(rf"^\s*{re.escape(_TITLE_PREFIX)}\s*(?::\s*|$)", title, re.I)
    return title[prefix.end() :] if prefix else title


def _read_texts(
    r: _Reader, blocks: Sequence[_Block], path: DataPath, where: str, sample: re.Pattern[str] | None
) -> None:
    texts: list[str] = []
    lines: list[int] = []
    for lst in _lists(blocks):
        for item in lst.items:
            if item.first is None:
                continue
            found = _placeholders(item.first.children)
            text = _text(item.first.children)
            if found:
                r.problem(item.line, where, _placeholder_message(found))
            elif sample is not None and sample.match(text):
                r.problem(item.line, where, f"placeholder: template sample '{text}' left in")
            elif text:
                texts.append(text)
                lines.append(item.line)
    if texts:
        r.put(path, texts, lines[0], where)
        for index, line in enumerate(lines):
            r.lines[(*path, index)] = line


def _read_overview(r: _Reader, section: _Section) -> None:
    where = section.title
    for sub in section.sub("Service/API Details"):
        for lst in _lists(sub.blocks):
            _read_items(r, lst, _SERVICE, where, sub.title)
    for sub in section.sub("Business Justification"):
        paragraphs = [b for b in sub.blocks if isinstance(b, _Para)]
        text = "\n\n".join(_text(p.children, hard="\n") for p in paragraphs)
        if text:
            r.put(("business_justification",), text, paragraphs[0].line, where)


def _read_use_cases(r: _Reader, section: _Section) -> None:
    where = section.title
    for sub in section.sub("Primary Use Case"):
        for block in sub.blocks:
            if isinstance(block, _Para):
                _read_para_fields(r, block, _PRIMARY, where)
    for sub in section.sub("Additional Use Cases"):
        here = f"{where} > {sub.title}"
        _read_texts(r, sub.blocks, ("use_cases", "additional"), here, _SAMPLE_USE_CASE)


def _read_technical(r: _Reader, section: _Section) -> None:
    where = section.title
    for sub in section.sub("Data Flow"):
        for block in sub.blocks:
            if isinstance(block, _Fence):
                _read_flow(r, block, f"{where} > Data Flow")
            elif isinstance(block, _List):
                _read_items(r, block, _DESTINATION, where, sub.title)
    for sub in section.sub("Data Mapping"):
        for block in sub.blocks:
            if isinstance(block, _Table):
                _read_table_rows(r, block, f"{where} > Data Mapping")
            elif isinstance(block, _List):
                _read_items(r, block, _MAPPING_FIELDS, where, sub.title)
    for sub in section.sub("Error Handling"):
        for lst in _lists(sub.blocks):
            _read_items(r, lst, _ERROR_HANDLING, where, sub.title)
    for sub in section.sub("Performance Requirements"):
        for lst in _lists(sub.blocks):
            _read_items(r, lst, _PERFORMANCE, where, sub.title)


_ARROW = re.compile(r"\s*(?:\u2192|->)\s*")


def _read_flow(r: _Reader, fence: _Fence, where: str) -> None:
    if not fence.content.strip():
        return
    try:
        parts = _parse_flow(fence.content)
    except _Bad as exc:
        r.problem(fence.line + 1, where, str(exc))
        return
    for key, part in zip(("source", "integration_layer", "destination"), parts, strict=True):
        r.put(("data_flow", key), part, fence.line + 1, where)


def _parse_flow(content: str) -> list[str]:
    found = _PLACEHOLDER.findall(content)
    if found:
        raise _Bad(_placeholder_message(found))
    content = content.strip()
    parts = _ARROW.split(content)
    if "\n" in content or len(parts) != 3 or not all(parts):
        raise _Bad("expected one line 'Source System → Integration Layer → Destination System'")
    return parts


def _read_table_rows(r: _Reader, table: _Table, where: str) -> None:
    header = [_norm(_text(c.children)).rstrip("?") for c in table.header]
    if header != [_norm(c) for c in _TABLE_COLUMNS]:
        r.problem(table.line, where, f"expected the columns {' | '.join(_TABLE_COLUMNS)}")
        return
    rows: list[Data] = []
    for number, row in enumerate(table.rows, start=1):
        here = f"{where} > row {number}"
        if row.width > len(_TABLE_COLUMNS):
            r.problem(row.line, here, f"has {row.width} cells, expected {len(_TABLE_COLUMNS)}")
            continue
        cells = [_text(c.children) for c in row.cells]
        found = [p for c in row.cells for p in _placeholders(c.children)]
        if found:
            r.problem(row.line, here, _placeholder_message(found))
            continue
        if _SAMPLE_ROW.match(cells[0]) or _SAMPLE_ROW.match(cells[1]):
            message = "placeholder: template sample row left in; replace or delete it"
            r.problem(row.line, here, message)
            continue
        ok = True
        for index, name in ((0, "Source Field"), (1, "Destination Field"), (3, "Required")):
            if not cells[index]:
                r.problem(row.line, f"{here} > {name}", "missing")
                ok = False
        entry: Data = {"source": cells[0], "destination": cells[1]}
        try:
            transformation = _load_transformation(cells[2])
        except _Bad as exc:
            r.problem(row.line, f"{here} > Transformation", str(exc))
            ok = False
        else:
            if transformation is not None:
                entry["transformation"] = transformation
        if cells[3]:
            try:
                entry["required"] = _load_bool(cells[3])
            except _Bad as exc:
                r.problem(row.line, f"{here} > Required", str(exc))
                ok = False
        if ok:
            r.lines[("data_mapping", "fields", len(rows))] = row.line
            r.labels[("data_mapping", "fields", len(rows))] = here
            rows.append(entry)
    if rows:
        r.put(("data_mapping", "fields"), rows, table.rows[0].line, where)


def _read_security(r: _Reader, section: _Section) -> None:
    for lst in _lists(section.all_blocks()):
        _read_items(r, lst, _SECURITY, section.title)


def _read_monitoring(r: _Reader, section: _Section) -> None:
    for title, spec in (("Metrics to Track", _METRICS), ("Alerts", _ALERTS)):
        for sub in section.sub(title):
            for lst in _lists(sub.blocks):
                _read_items(r, lst, spec, section.title, sub.title)


def _read_testing(r: _Reader, section: _Section) -> None:
    groups = (
        ("Unit Tests", _UNIT_TESTS),
        ("Integration Tests", _INTEGRATION_TESTS),
        ("Performance Tests", _PERFORMANCE_TESTS),
    )
    for title, spec in groups:
        for sub in section.sub(title):
            for lst in _lists(sub.blocks):
                _read_items(r, lst, spec, section.title, sub.title)


def _read_rollback(r: _Reader, section: _Section) -> None:
    where = section.title
    for sub in section.sub("Failure Scenarios"):
        _read_texts(
            r, sub.blocks, ("rollback", "failure_scenarios"), f"{where} > {sub.title}", None
        )
    for sub in section.sub("Rollback Steps"):
        _read_texts(r, sub.blocks, ("rollback", "steps"), f"{where} > {sub.title}", None)


def _read_launch(r: _Reader, section: _Section) -> None:
    for sub in section.sub("Phases"):
        for lst in _lists(sub.blocks):
            _read_items(r, lst, _PHASES, section.title, sub.title)
    for sub in section.sub("Success Criteria"):
        for lst in _lists(sub.blocks):
            _read_items(r, lst, _CRITERIA, section.title, sub.title)


def _checklist_reader(spec: Sequence[_ListItem]) -> Callable[[_Reader, _Section], None]:
    def read(r: _Reader, section: _Section) -> None:
        for lst in _lists(section.all_blocks()):
            _read_items(r, lst, spec, section.title)

    return read


def _read_approvals(r: _Reader, section: _Section) -> None:
    entries: list[Data] = []
    lines: list[int] = []
    for lst in _lists(section.all_blocks()):
        for item in lst.items:
            if item.first is None:
                continue
            ticked, rest = _checkbox(item.first.children)
            if ticked is None:
                continue
            text = _text(rest)
            role, _, person = text.partition(":")
            here = f"{section.title} > {role.strip() or text}"
            found = _placeholders(rest)
            if found:
                r.problem(item.line, here, _placeholder_message(found))
                continue
            entry = _parse_approval(role.strip(), person.strip())
            if entry is None:
                r.problem(
                    item.line, section.title, f"expected 'Role: Name - YYYY-MM-DD', got '{text}'"
                )
                continue
            entry["approved"] = ticked
            entries.append(entry)
            lines.append(item.line)
    if entries:
        r.put(("approvals",), entries, lines[0], section.title)
        for index, line in enumerate(lines):
            r.lines[("approvals", index)] = line
            r.labels[("approvals", index)] = f"{section.title} > {entries[index]['role']}"


def _parse_approval(role: str, person: str) -> Data | None:
    """``Name - 2026-11-18``: the part after the last dash is the date if it looks like one."""
    if not role:
        return None
    entry: Data = {"role": role}
    match = _SIGNED.fullmatch(person)
    name, date = (match.group(1) or "", match.group(2)) if match else (person, "")
    if name:
        entry["name"] = name
    if date:
        entry["date"] = date
    return entry


def _read_settings(r: _Reader, section: _Section) -> None:
    for block in section.all_blocks():
        if not isinstance(block, _Fence):
            continue
        first = block.line + 1  # the fence's first content line
        try:
            document = parse_text(block.content, r.file)
        except InputError as exc:
            for p in exc.problems:
                line = None if p.line is None else p.line + first - 1
                r.problem(line, _SETTINGS_TITLE, p.message)
            continue
        if document.data is None:
            continue
        if not isinstance(document.data, dict):
            r.problem(first, _SETTINGS_TITLE, "expected a YAML mapping of spec sections")
            continue
        _merge(r, document.data, (), document.source, first - 1)


def _merge(r: _Reader, data: Data, path: DataPath, source: SourceMap, offset: int) -> None:
    for key, value in data.items():
        here = (*path, key)
        line = (source.line_of(here) or 1) + offset
        where = f"{_SETTINGS_TITLE} > {format_path(here)}"
        if isinstance(value, dict):
            if r.ensure(here, line, where) is not None:
                _merge(r, value, here, source, offset)
        else:
            r.put(here, value, line, where)
            for sub, sub_line in source.lines.items():
                if len(sub) > len(here) and sub[: len(here)] == here:
                    r.lines.setdefault(sub, sub_line + offset)


_SECTIONS: dict[str, Callable[[_Reader, _Section], None]] = {
    _norm("Integration Overview"): _read_overview,
    _norm("Use Cases"): _read_use_cases,
    _norm("Technical Requirements"): _read_technical,
    _norm("Security & Compliance"): _read_security,
    _norm("Monitoring & Alerting"): _read_monitoring,
    _norm("Testing Strategy"): _read_testing,
    _norm("Rollback Plan"): _read_rollback,
    _norm("Launch Plan"): _read_launch,
    _norm("Dependencies"): _checklist_reader(_DEPENDENCIES),
    _norm("Documentation Requirements"): _checklist_reader(_DOCUMENTATION),
    _norm("Stakeholder Approval"): _read_approvals,
    _norm(_SETTINGS_TITLE): _read_settings,
}


def _import(text: str, file: str) -> _Reader:
    r = _Reader(file)
    for section in _document(text):
        if section.level == 1:
            _read_title(r, section)
        elif section.level == 2 and (reader := _SECTIONS.get(_norm(section.title))):
            reader(r, section)
    r.data.setdefault("spec_version", 1)
    r.data = _ordered(r.data, spec_schema(), spec_schema())
    return r


def import_markdown(text: str, file: str) -> dict[str, Any]:
    """Spec data from a filled-in template, ready for schema validation.

    Raises ``InputError`` with every problem found (placeholders left in, values that do not
    follow the grammar, unknown checklist items), each located by Markdown line.
    """
    r = _import(text, file)
    if r.problems:
        raise InputError(sorted(r.problems, key=lambda p: (p.line or 0, p.path, p.message)))
    return r.data


def load_markdown_spec(path: Path | str) -> LoadedSpec:
    """Import a filled-in template and validate it exactly as ``load_spec`` validates YAML.

    The data goes through the normal loader (as the YAML ``spec import`` would write), so every
    schema and consistency check applies; its problems are then pointed back at the Markdown:
    the line of the nearest label or item, and the label path next to the YAML key path.
    """
    path = Path(path)
    name = str(path)
    r = _import(read_text(path, name), name)
    if r.problems:
        raise InputError(sorted(r.problems, key=lambda p: (p.line or 0, p.path, p.message)))
    try:
        loaded = load_spec_text(_dump_yaml(r.data), path, display=name)
    except InputError as exc:
        raise InputError(_relocate(exc.problems, r)) from None
    source = SourceMap(name, dict(r.lines))
    return LoadedSpec(loaded.spec, r.data, source, path.resolve())


def _relocate(problems: Sequence[Problem], r: _Reader) -> list[Problem]:
    """YAML-located problems, re-pointed at the Markdown line and label they came from."""
    known = {format_path(p): p for p in r.lines}
    result: list[Problem] = []
    for problem in problems:
        best: DataPath | None = None
        for text, data_path in known.items():
            inside = not text or problem.path.startswith((f"{text}.", f"{text}["))
            if (inside or problem.path == text) and (best is None or len(data_path) > len(best)):
                best = data_path
        line = r.lines.get(best) if best is not None else None
        label = _label_for(r, best) if best is not None else ""
        where = f"{label} ({problem.path})" if label and problem.path else label or problem.path
        result.append(Problem(r.file, line, where, problem.message))
    return sorted(result, key=lambda p: (p.line or 0, p.path, p.message))


def _label_for(r: _Reader, path: DataPath) -> str:
    probe = path
    while probe:
        if probe in r.labels:
            return r.labels[probe]
        probe = probe[:-1]
    return ""


def markdown_to_yaml(path: Path | str) -> str:
    """The YAML ``integration.yaml`` for a filled-in template (what ``spec import`` writes)."""
    loaded = load_markdown_spec(path)
    header = f"Imported from {Path(path).name} by `harness spec import`."
    return _dump_yaml(loaded.data, header)


# --------------------------------------------------------------------------------------------
# YAML helpers (schema key order, block style)
# --------------------------------------------------------------------------------------------


def _resolve(node: Mapping[str, Any], root: Mapping[str, Any]) -> Mapping[str, Any]:
    while isinstance(node.get("$ref"), str):
        target: Any = root
        for part in str(node["$ref"]).removeprefix("#/").split("/"):
            target = target[part]
        node = target
    return node


def _ordered(value: Any, schema: Mapping[str, Any], root: Mapping[str, Any]) -> Any:
    """``value`` with every mapping's keys in the order the schema declares them."""
    schema = _resolve(schema, root)
    if isinstance(value, dict):
        props: Mapping[str, Any] = schema.get("properties", {})
        extra = schema.get("additionalProperties")
        keys = [k for k in props if k in value] + [k for k in value if k not in props]
        return {
            k: _ordered(value[k], props.get(k) or (extra if isinstance(extra, dict) else {}), root)
            for k in keys
        }
    if isinstance(value, list):
        items = schema.get("items")
        return [_ordered(v, items if isinstance(items, dict) else {}, root) for v in value]
    return value


def _commented(value: Any, literal: bool) -> Any:
    if isinstance(value, dict):
        result = CommentedMap()
        for k, v in value.items():
            result[k] = _commented(v, literal)
        return result
    if isinstance(value, list):
        return CommentedSeq([_commented(v, literal) for v in value])
    if literal and isinstance(value, str) and "\n" in value.strip("\n"):
        return LiteralScalarString(value)
    return value


def _emit(document: Any) -> str:
    yaml = YAML(typ="rt")
    yaml.default_flow_style = False
    yaml.indent(mapping=2, sequence=4, offset=2)
    yaml.width = 4096  # folding long lines would leave trailing spaces behind
    stream = io.StringIO()
    yaml.dump(document, stream)
    return stream.getvalue()


def _dump_yaml(data: Data, header: str | None = None) -> str:
    """Block-style YAML in schema key order; multi-line text as literal blocks where they fit.

    Every candidate is read back before it is used: a literal block cannot carry every string
    (trailing spaces, control characters) and ruamel's quoting has corner cases of its own.
    JSON, which YAML contains, is the last resort that always reads back exactly.
    """
    ordered = _ordered(data, spec_schema(), spec_schema())
    for literal in (True, False):
        document = _commented(ordered, literal)
        if header:
            document.yaml_set_start_comment(header)
        text = _emit(document)
        try:
            if _same(parse_text(text, "<yaml>").data, data):
                return text
        except InputError:
            pass
    comment = f"# {header}\n" if header else ""
    return comment + _SURROGATES.sub(_astral, json.dumps(ordered, indent=2)) + "\n"


# JSON writes a character beyond U+FFFF as a surrogate pair, which YAML does not recombine;
# YAML's own escape for it is \UXXXXXXXX. Escaped backslashes are matched first, as units.
_SURROGATES = re.compile(r"\\\\|\\u(d[89ab][0-9a-f]{2})\\u(d[c-f][0-9a-f]{2})")


def _astral(match: re.Match[str]) -> str:
    if match.group(1) is None:
        return match.group(0)
    high, low = int(match.group(1), 16), int(match.group(2), 16)
    return f"\\U{0x10000 + ((high - 0xD800) << 10) + (low - 0xDC00):08x}"


# --------------------------------------------------------------------------------------------
# Export
# --------------------------------------------------------------------------------------------

_unstructure = cattrs.Converter(omit_if_default=True)
_unstructure.register_unstructure_hook(tuple, list)


class _Writer:
    """The spec data not yet written: what is left at the end becomes Harness Settings."""

    def __init__(self, data: Data) -> None:
        self.rest = data
        self.created: set[DataPath] = set()

    def value(self, path: DataPath) -> Any:
        node: Any = self.rest
        for key in path:
            if not isinstance(node, dict) or key not in node:
                return None
            node = node[key]
        return node

    def obj(self, path: DataPath) -> Data | None:
        node = self.value(path)
        return node if isinstance(node, dict) else None

    def mark(self, path: DataPath) -> None:
        """The Markdown will create ``path`` (and so its parents) on import."""
        for depth in range(len(path) + 1):
            self.created.add(path[:depth])

    def take(self, base: DataPath, keys: Sequence[str]) -> None:
        node = self.obj(base)
        assert node is not None
        for key in keys:
            del node[key]
        self.mark(base)

    def leftover(self) -> Data:
        def prune(node: Data, path: DataPath) -> None:
            for key in list(node):
                child = node[key]
                if isinstance(child, dict):
                    prune(child, (*path, key))
                    if not child and (*path, key) in self.created:
                        del node[key]

        prune(self.rest, ())
        if self.rest.get("spec_version") == 1:
            del self.rest["spec_version"]
        return self.rest


def _code_span(text: str) -> str | None:
    if not text or "\n" in text:
        return None
    longest = max((len(run) for run in re.findall(r"`+", text)), default=0)
    fence = "`" * (longest + 1)
    pad = text.startswith("`") or text.endswith("`")
    pad = pad or (text.startswith(" ") and text.endswith(" ") and bool(text.strip()))
    space = " " if pad else ""
    return f"{fence}{space}{text}{space}{fence}"


def _escaped(text: str) -> str:
    return re.sub(r"([!-/:-@\[-`{-~])", r"\\\1", text)


# Text Markdown never alters in any context used here: no markup characters, no leading
# block marker, no outer spaces. Most values are like this; they skip the trial parse.
_PLAIN = re.compile(r"[A-Za-z](?:[A-Za-z0-9 .,;:/()'\"%+=?@$-]*[A-Za-z0-9.,;:/()'\"%+=?@$-])?")


def _fit(text: str, check: Callable[[str], bool]) -> str | None:
    """Markdown that reads back as exactly ``text`` in its context, or ``None`` if none does.

    Plain text first (what a person would type), then a code span (taken literally), then
    backslash escapes; ``check`` parses the candidate in place with the importer's own code.
    """
    if not text:
        return None
    if _PLAIN.fullmatch(text):
        return text
    for candidate in (text, _code_span(text), _escaped(text)):
        if candidate is not None and check(candidate):
            return candidate
    return None


def _types(tokens: list[Token]) -> list[str]:
    return [t.type for t in tokens]


_ITEM_SHAPE = [
    "bullet_list_open", "list_item_open", "paragraph_open", "inline",
    "paragraph_close", "list_item_close", "bullet_list_close",
]  # fmt: skip


def _fits_label(head: str, text: str, *, in_paragraph: bool) -> Callable[[str], bool]:
    """Whether ``head md`` reads back as ``text``, in a list item or a paragraph line."""

    def check(md: str) -> bool:
        if in_paragraph:
            tokens = _MD.parse(f"{head} {md}  \n**Z:** z\n")
            if _types(tokens) != ["paragraph_open", "inline", "paragraph_close"]:
                return False
            lines = _split_lines(list(tokens[1].children or []), 1)
            if len(lines) != 2 or _label(lines[1].children) is None:
                return False
            children = lines[0].children
        else:
            tokens = _MD.parse(f"- {head} {md}\n")
            if _types(tokens) != _ITEM_SHAPE:
                return False
            children = list(tokens[3].children or [])
        found = _label(children)
        return found is not None and not _placeholders(found[1]) and _text(found[1]) == text

    return check


def _fits_item(text: str, marker: str = "-") -> Callable[[str], bool]:
    def check(md: str) -> bool:
        tokens = _MD.parse(f"{marker} {md}\n")
        shape = list(_ITEM_SHAPE)
        if marker != "-":
            shape[0], shape[-1] = "ordered_list_open", "ordered_list_close"
        if _types(tokens) != shape:
            return False
        children = list(tokens[3].children or [])
        return (
            _checkbox(children)[0] is None
            and not _placeholders(children)
            and _text(children) == text
        )

    return check


def _fits_cell(text: str) -> Callable[[str], bool]:
    def check(md: str) -> bool:
        tokens = _MD.parse(f"| X |\n|---|\n| {md} |\n")
        inlines = [t for t in tokens if t.type == "inline"]
        if len(inlines) != 2 or _count_cells(f"| {md} |") != 1:
            return False
        children = list(inlines[1].children or [])
        return not _placeholders(children) and _text(children) == text

    return check


def _cell(text: str) -> str | None:
    """A table cell: as :func:`_fit`, with pipes escaped as GFM tables need."""
    if _PLAIN.fullmatch(text):
        return text
    if not text:
        return None
    for candidate in (text, _code_span(text), _escaped(text)):
        if candidate is None:
            continue
        candidate = candidate.replace("|", "\\|")
        if _fits_cell(text)(candidate):
            return candidate
    return None


def _write_field(
    w: _Writer, f: _Field, prefix: str, indent: str = "", *, in_paragraph: bool = False
) -> list[str]:
    """The label line for ``f`` (and its nested ones), taking the keys it carries from ``w``.

    Writes nothing, leaving the keys for Harness Settings, unless the text reads back as the
    same value both through the grammar and through Markdown.
    """
    obj = w.obj(f.base)
    if obj is None:
        return []
    dumped = f.codec.dump(obj)
    if dumped is None:
        return []
    text, keys = dumped
    try:
        back = f.codec.load(text)
    except _Bad:
        return []
    if not _same(back, {k: obj[k] for k in keys}):
        return []
    head = f"**{f.label}:**" if f.colon else f"**{f.label}**"
    md = _fit(text, _fits_label(head, text, in_paragraph=in_paragraph))
    if md is None:
        return []
    w.take(f.base, keys)
    lines = [f"{indent}{prefix}{' ' if prefix else ''}{head} {md}"]
    for child in f.children:
        lines += _write_field(w, child, "-", indent + "  ")
    return lines


def _write_check(w: _Writer, check: _Check) -> list[str]:
    if isinstance(check, _Flag):
        obj = w.obj(check.base)
        if obj is None or not isinstance(obj.get(check.key), bool):
            return []
        ticked = obj[check.key]
        w.take(check.base, [check.key])
        return [f"- [{'x' if ticked else ' '}] {check.text}"]
    if isinstance(check, _Entry):
        path = (*check.base, check.key)
        if w.obj(path) is None:
            return [f"- [ ] {check.text}"]
        w.mark(path)
        lines = [f"- [x] {check.text}"]
        for f in check.fields:
            lines += _write_field(w, f, "-", "  ")
        return lines
    obj = w.obj(_CRITERIA_BASE)
    if obj is None or check.key not in obj:
        return []
    text = check.dump(obj[check.key])
    if text is None:
        return []
    try:
        back = check.load(text)
    except _Bad:
        return []
    if not _same(back, obj[check.key]):
        return []
    w.take(_CRITERIA_BASE, [check.key])
    return [f"- [ ] {text}"]


def _write_items(w: _Writer, spec: Sequence[_ListItem], ordered: bool = False) -> list[str]:
    lines: list[str] = []
    for item in spec:
        if isinstance(item, _Field):
            prefix = f"{sum(1 for x in lines if not x.startswith(' ')) + 1}." if ordered else "-"
            lines += _write_field(w, item, prefix)
        else:
            lines += _write_check(w, item)
    return lines


def _write_para_fields(w: _Writer, fields: Sequence[_Field]) -> list[str]:
    lines: list[str] = []
    for f in fields:
        lines += _write_field(w, f, "", in_paragraph=True)
    return [line + "  " for line in lines[:-1]] + lines[-1:]


def _write_texts(
    w: _Writer, path: tuple[str, ...], ordered: bool = False, sample: re.Pattern[str] | None = None
) -> list[str]:
    items = w.value(path)
    if not isinstance(items, list) or not items:
        return []
    lines: list[str] = []
    for index, text in enumerate(items, start=1):
        if not isinstance(text, str) or (sample is not None and sample.match(text)):
            return []
        md = _fit(text, _fits_item(text, "1." if ordered else "-"))
        if md is None:
            return []
        lines.append(f"{index}. {md}" if ordered else f"- {md}")
    w.take(path[:-1], [path[-1]])
    return lines


def _block(lines: list[str]) -> list[str]:
    return [*lines, ""] if lines else []


def _write_title(w: _Writer) -> list[str]:
    name = w.value(("name",))
    md = None
    if isinstance(name, str):

        def check(candidate: str) -> bool:
            tokens = _MD.parse(f"# {_TITLE_PREFIX}: {candidate}\n")
            if _types(tokens) != ["heading_open", "inline", "heading_close"]:
                return False
            children = list(tokens[1].children or [])
            return not _placeholders(children) and _name_from_title(children) == name

        md = _fit(name, check)
    if md is None:
        return [f"# {_TITLE_PREFIX}"]
    w.take((), ["name"])
    return [f"# {_TITLE_PREFIX}: {md}"]


def _write_justification(w: _Writer) -> list[str]:
    text = w.value(("business_justification",))
    lines = [_JUSTIFICATION_COMMENT]
    if not isinstance(text, str) or not text:
        return lines
    written: list[str] = []
    for paragraph in text.split("\n\n"):
        md = _prose(paragraph)
        if md is None:
            return lines
        written.append(md)
    w.take((), ["business_justification"])
    return [*lines, "", *"\n\n".join(written).split("\n")]


def _prose(paragraph: str) -> str | None:
    """One paragraph of prose, wrapped at 100 columns when wrapping changes nothing on import."""

    def check(md: str) -> bool:
        tokens = _MD.parse(md + "\n")
        shape = ["paragraph_open", "inline", "paragraph_close"]
        return _types(tokens) == shape and _text(tokens[1].children or [], hard="\n") == paragraph

    if not paragraph:
        return None
    for escape in (False, True):
        lines = [_escaped(line) if escape else line for line in paragraph.split("\n")]
        wrapped = "\\\n".join(
            "\n".join(textwrap.wrap(line, 100, break_long_words=False, break_on_hyphens=False))
            for line in lines
        )
        for candidate in (wrapped, "\\\n".join(lines)):
            if check(candidate):
                return candidate
    return None


def _write_flow(w: _Writer) -> list[str]:
    flow = w.obj(("data_flow",))
    keys = ("source", "integration_layer", "destination")
    if flow is None or not all(isinstance(flow.get(k), str) for k in keys):
        return []
    parts = [flow[k] for k in keys]
    line = " \u2192 ".join(parts)
    if "`" in line:
        return []
    tokens = _MD.parse(f"```\n{line}\n```\n")
    try:
        if _types(tokens) != ["fence"] or _parse_flow(tokens[0].content) != parts:
            return []
    except _Bad:
        return []
    w.take(("data_flow",), keys)
    return ["```", line, "```"]


def _write_table(w: _Writer) -> list[str]:
    head = [
        "| " + " | ".join(_TABLE_COLUMNS) + " |",
        "|--------------|-------------------|----------------|----------|",
    ]
    rows = w.value(("data_mapping", "fields"))
    if not isinstance(rows, list) or not rows:
        return head
    lines: list[str] = []
    for row in rows:
        written = _write_row(row)
        if written is None:
            return head
        lines.append(written)
    w.take(("data_mapping",), ["fields"])
    return head + lines


def _write_row(row: Any) -> str | None:
    if not isinstance(row, dict) or not set(row) <= {
        "source", "destination", "transformation", "required"
    }:  # fmt: skip
        return None
    source, destination = row.get("source"), row.get("destination")
    if not isinstance(source, str) or not isinstance(destination, str):
        return None
    if _SAMPLE_ROW.match(source) or _SAMPLE_ROW.match(destination):
        return None  # the importer would take it for the template's sample row
    cells: list[str | None] = [_cell(source), _cell(destination)]
    if "transformation" in row:
        text = _dump_transformation(row["transformation"])
        if text is None:
            return None
        try:
            back = _load_transformation(text)
        except _Bad:
            return None
        if not _same(back, row["transformation"]):
            return None
        cells.append(_cell(text))
    else:
        cells.append("")
    required = row.get("required")
    cells.append(_dump_bool(required) if "required" in row else None)
    if any(c is None for c in cells):
        return None
    return "| " + " | ".join(str(c) for c in cells) + " |"


def _write_approvals(w: _Writer) -> list[str]:
    approvals = w.value(("approvals",))
    if not isinstance(approvals, list) or not approvals:
        return []
    lines: list[str] = []
    for entry in approvals:
        line = _write_approval(entry)
        if line is None:
            return []
        lines.append(line)
    w.take((), ["approvals"])
    return lines


def _write_approval(entry: Any) -> str | None:
    if not isinstance(entry, dict) or not set(entry) <= {"role", "name", "date", "approved"}:
        return None
    role, name, date = entry.get("role"), entry.get("name"), entry.get("date")
    approved = entry.get("approved", False)
    if not isinstance(role, str) or not isinstance(approved, bool):
        return None
    text = role
    if name is not None or date is not None:
        text += ":"
        if name is not None:
            text += f" {name}"
        if date is not None:
            text += f" - {date}"
    expected = {k: v for k, v in entry.items() if k != "approved"}
    role_part, _, person = text.partition(":")
    if _parse_approval(role_part.strip(), person.strip()) != expected or ":" in role:
        return None
    if name == "" or (isinstance(name, str) and name != name.strip()):
        return None
    box = "[x]" if approved else "[ ]"

    def check(md: str) -> bool:
        tokens = _MD.parse(f"- {box} {md}\n")
        if _types(tokens) != _ITEM_SHAPE:
            return False
        ticked, rest = _checkbox(list(tokens[3].children or []))
        return ticked is approved and not _placeholders(rest) and _text(rest) == text

    md = _fit(text, check)
    return None if md is None else f"- {box} {md}"


def export_markdown(spec: IntegrationSpec) -> str:
    """The spec as a filled-in copy of the template; :func:`import_markdown` reads it back.

    Everything the template has a place for is written there, in the template's words; the
    rest - including any value Markdown could not carry exactly - goes to one YAML block at
    the end, so nothing is lost and ``import_markdown(export_markdown(s))`` rebuilds ``s``.
    """
    w = _Writer(copy.deepcopy(_unstructure.unstructure(spec)))
    out: list[str] = [*_write_title(w), *_write_para_fields(w, _HEADER), "", "---", ""]
    out += ["## Integration Overview", "### Service/API Details"]
    out += _block(_write_items(w, _SERVICE))
    out += ["### Business Justification", *_write_justification(w), ""]

    out += ["## Use Cases", "### Primary Use Case"]
    out += _block(_write_para_fields(w, _PRIMARY))
    additional = _write_texts(w, ("use_cases", "additional"), sample=_SAMPLE_USE_CASE)
    out += ["### Additional Use Cases", *_block(additional)]

    out += ["## Technical Requirements", "", "### Data Flow"]
    out += _block(_write_flow(w))
    out += _block(_write_items(w, _DESTINATION))
    out += ["### Data Mapping", *_block(_write_items(w, _MAPPING_FIELDS))]
    out += _block(_write_table(w))
    out += ["### Error Handling", *_block(_write_items(w, _ERROR_HANDLING))]
    out += ["### Performance Requirements", *_block(_write_items(w, _PERFORMANCE))]

    out += ["## Security & Compliance", *_block(_write_items(w, _SECURITY))]
    out += ["## Monitoring & Alerting", "### Metrics to Track"]
    out += _block(_write_items(w, _METRICS))
    out += ["### Alerts", *_block(_write_items(w, _ALERTS))]

    out += ["## Testing Strategy", "### Unit Tests", *_block(_write_items(w, _UNIT_TESTS))]
    out += ["### Integration Tests", *_block(_write_items(w, _INTEGRATION_TESTS))]
    out += ["### Performance Tests", *_block(_write_items(w, _PERFORMANCE_TESTS))]

    out += ["## Rollback Plan", "### Failure Scenarios"]
    out += _block(_write_texts(w, ("rollback", "failure_scenarios")))
    out += ["### Rollback Steps", *_block(_write_texts(w, ("rollback", "steps"), ordered=True))]

    out += ["## Launch Plan", "### Phases", *_block(_write_items(w, _PHASES, ordered=True))]
    out += ["### Success Criteria", *_block(_write_items(w, _CRITERIA))]

    out += ["## Dependencies", *_block(_write_items(w, _DEPENDENCIES))]
    out += ["## Documentation Requirements", *_block(_write_items(w, _DOCUMENTATION))]
    out += ["---", "", "**Stakeholder Approval:**", *_write_approvals(w)]

    leftover = w.leftover()
    if leftover:
        yaml_text = _dump_yaml(leftover)
        longest = max((len(run) for run in re.findall(r"^`+", yaml_text, re.M)), default=0)
        fence = "`" * max(3, longest + 1)
        out += ["", f"## {_SETTINGS_TITLE}", _SETTINGS_NOTE, "", f"{fence}yaml"]
        out += [*yaml_text.rstrip("\n").split("\n"), fence]
    return "\n".join(out).rstrip("\n") + "\n"
