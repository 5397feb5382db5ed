"""Reading and writing the selections document (JSON) with exact error locations.

Parsing is strict about structure: every problem raises ConfigurationError with the
file, line, column and reason. It says nothing about the catalog; the store decides
what an unknown provider or model means.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import math
import re
from collections.abc import Collection, Mapping
from datetime import datetime
from itertools import compress
from operator import is_not, itemgetter, ne
from types import MappingProxyType
from typing import Any, NamedTuple

from .errors import ConfigurationError, ValidationError
from .models import Selection, check_name, names_are_valid

__all__ = [
    "MAX_DEPTH",
    "MAX_DOCUMENT_BYTES",
    "DocumentCodec",
    "document_digest",
    "parse_document",
    "parse_rendered",
    "render_document",
    "revision_of",
    "revision_of_bytes",
    "revision_of_digest",
]

#: The largest selections document read: about 190,000 providers with full metadata
#: (an entry is about 175 bytes). Past it a load is refused rather than allowed to take
#: seconds and hundreds of MiB; measured: 100,000 providers load in about a second.
MAX_DOCUMENT_BYTES = 32 * 1024 * 1024
MAX_DEPTH = 32
_KNOWN_FIELDS = ("model_name", "editable", "last_updated", "updated_by", "lock_reason")
_KNOWN_FIELD_SET = frozenset(_KNOWN_FIELDS)
_WHITESPACE = re.compile(r"[ \t\n\r]*")
# A \uD800-\uDFFF escape may decode to a lone surrogate, which UTF-8 cannot encode.
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")


class _Located(Exception):
    """Internal: a problem at a character offset of the text."""

    def __init__(self, reason: str, offset: int) -> None:
        super().__init__(reason)
        self.reason = reason
        self.offset = offset


def _skip_whitespace(text: str, offset: int) -> int:
    """The offset of the first non-whitespace character at or after ``offset``."""
    match = _WHITESPACE.match(text, offset)
    assert match is not None  # the pattern matches the empty string
    return match.end()


def _line_col(text: str, offset: int) -> tuple[int, int]:
    line = text.count("\n", 0, offset) + 1
    column = offset - (text.rfind("\n", 0, offset) + 1) + 1
    return line, column


class _LineCounter:
    """Line and column of increasing offsets in one pass (a count per entry is quadratic)."""

    def __init__(self, text: str) -> None:
        self._text = text
        self._offset = 0
        self._line = 1
        self._line_start = 0

    def locate(self, offset: int) -> tuple[int, int]:
        if offset < self._offset:
            return _line_col(self._text, offset)
        newlines = self._text.count("\n", self._offset, offset)
        if newlines:
            self._line += newlines
            self._line_start = self._text.rfind("\n", self._offset, offset) + 1
        self._offset = offset
        return self._line, offset - self._line_start + 1


class _BadToken(ValueError):
    """Raised by the decoder hooks; ``token`` is the text to point the error at."""

    def __init__(self, reason: str, token: str) -> None:
        super().__init__(reason)
        self.token = token


def _reject_constant(name: str) -> Any:
    raise _BadToken(f"{name} is not valid JSON", name)


def _finite_float(text: str) -> float:
    # 1e400 decodes to inf, which would be written back as the invalid token Infinity.
    value = float(text)
    if not math.isfinite(value):
        raise _BadToken(f"number {text} is out of range", text)
    return value


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key in result:
            raise ValueError(f"duplicate key {key!r}")
        result[key] = value
    return result


_DECODER = json.JSONDecoder(object_pairs_hook=_no_duplicates, parse_constant=_reject_constant,
                            parse_float=_finite_float)


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """An object's dict, refusing duplicate keys (the check at C speed: a dict and a len)."""
    result = dict(pairs)
    if len(result) != len(pairs):
        raise ValueError("duplicate key")  # the located parse says which, and where
    return result


#: The whole document in one call of the json module's C scanner. It says only *that*
#: something is wrong; the located parse (``_top_level_entries``) then says what and where.
_FAST_DECODER = json.JSONDecoder(object_pairs_hook=_unique_keys,
                                 parse_constant=_reject_constant, parse_float=_finite_float)


def _depth(value: Any, limit: int) -> int:
    """Nesting depth of a decoded JSON value, stopping once ``limit`` is passed."""
    if limit < 0:
        return 1
    if isinstance(value, dict):
        return 1 + max((_depth(v, limit - 1) for v in value.values()), default=0)
    if isinstance(value, list):
        return 1 + max((_depth(v, limit - 1) for v in value), default=0)
    return 0


def _has_containers(value: Any) -> bool:
    """True if an entry holds nested objects or arrays (only unknown fields may)."""
    if isinstance(value, dict):
        return any(isinstance(v, dict | list) for v in value.values())
    return isinstance(value, list)


def _decode_value(text: str, offset: int) -> tuple[Any, int]:
    try:
        return _DECODER.raw_decode(text, offset)
    except json.JSONDecodeError as exc:
        raise _Located(exc.msg, exc.pos) from None
    except RecursionError:
        raise _Located(f"nesting deeper than {MAX_DEPTH} levels", offset) from None
    except _BadToken as exc:  # NaN, Infinity or an overflowing number
        found = text.find(exc.token, offset)
        raise _Located(str(exc), found if found >= 0 else offset) from None
    except ValueError as exc:  # a duplicate key, or an integer too long to convert
        raise _Located(str(exc), offset) from None


def _top_level_entries(text: str) -> list[tuple[str, Any, int]]:
    """Decode the top-level object, returning (key, value, offset of key) in file order."""
    offset = _skip_whitespace(text, 0)
    if offset == len(text):
        raise _Located("file is empty; expected a JSON object", 0)
    if text[offset] != "{":
        value, _ = _decode_value(text, offset)
        kind = type(value).__name__ if value is not None else "null"
        raise _Located(
            f"top level must be an object of provider -> selection, not {_json_kind(kind)}",
            offset)
    offset += 1
    entries: list[tuple[str, Any, int]] = []
    seen: set[str] = set()
    while True:
        offset = _skip_whitespace(text, offset)
        if not entries and offset < len(text) and text[offset] == "}":
            offset += 1
            break
        if offset >= len(text) or text[offset] != '"':
            raise _Located("expecting a provider name in double quotes", offset)
        key_offset = offset
        try:
            key, offset = json.decoder.scanstring(text, offset + 1)  # type: ignore[attr-defined]
        except json.JSONDecodeError as exc:
            raise _Located(exc.msg, exc.pos) from None
        if key in seen:
            raise _Located(f"duplicate provider {key!r}", key_offset)
        seen.add(key)
        offset = _skip_whitespace(text, offset)
        if offset >= len(text) or text[offset] != ":":
            raise _Located("expecting ':' after the provider name", offset)
        offset = _skip_whitespace(text, offset + 1)
        value_offset = offset
        value, offset = _decode_value(text, offset)
        if _has_containers(value) and _depth(value, MAX_DEPTH) > MAX_DEPTH:
            raise _Located(f"nesting deeper than {MAX_DEPTH} levels", value_offset)
        entries.append((key, value, key_offset))
        offset = _skip_whitespace(text, offset)
        if offset < len(text) and text[offset] == ",":
            offset += 1
            continue
        if offset < len(text) and text[offset] == "}":
            offset += 1
            break
        raise _Located("expecting ',' or '}' after a selection", offset)
    offset = _skip_whitespace(text, offset)
    if offset != len(text):
        raise _Located("unexpected text after the top-level object", offset)
    return entries


def _json_kind(python_name: str) -> str:
    return {"list": "an array", "str": "a string", "int": "a number", "float": "a number",
            "bool": "a boolean", "null": "null"}.get(python_name, python_name)


def _optional_str(provider: str, entry: Mapping[str, Any], name: str) -> str | None:
    value = entry.get(name)
    if value is not None and not isinstance(value, str):
        raise ValueError(f"{provider}: {name} must be a string or null, "
                         f"not {_json_kind(type(value).__name__)}")
    return value


def _check_encodable(provider: str, value: Any) -> None:
    """Refuse lone surrogates: they load, but the next write could not encode them."""
    try:
        json.dumps(value, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError as exc:
        code = ord(exc.object[exc.start])
        raise ValueError(f"{provider}: contains a lone surrogate \\u{code:04x}, "
                         "which is not text") from None


def _selection_from_json(provider: str, value: Any) -> Selection:
    """Build a Selection from an entry in either the current or the legacy form."""
    if isinstance(value, str):  # legacy form: "provider": "model"
        return Selection(model_name=check_name("model", value))
    if not isinstance(value, dict):
        raise ValueError(f"{provider}: expected a model name or an object with model_name, "
                         f"not {_json_kind(type(value).__name__ if value is not None else 'null')}")
    if "model_name" not in value:
        raise ValueError(f"{provider}: missing model_name")
    model = check_name("model", value["model_name"])
    editable = value.get("editable", True)
    if not isinstance(editable, bool):
        kind = type(editable).__name__ if editable is not None else "null"
        raise ValueError(f"{provider}: editable must be true or false, not {_json_kind(kind)}")
    stamp = _optional_str(provider, value, "last_updated")
    try:
        last_updated = datetime.fromisoformat(stamp) if stamp else None
    except ValueError:
        raise ValueError(f"{provider}: last_updated {stamp!r} is not an ISO 8601 time") from None
    extra = {} if value.keys() <= _KNOWN_FIELD_SET else \
        {k: v for k, v in value.items() if k not in _KNOWN_FIELDS}
    return Selection(
        model_name=model,
        editable=editable,
        last_updated=last_updated,
        updated_by=_optional_str(provider, value, "updated_by"),
        lock_reason=_optional_str(provider, value, "lock_reason"),
        **({"extra": MappingProxyType(extra)} if extra else {}),
    )


def parse_document(data: bytes, *, path: str,
                   problems: list[ConfigurationError] | None = None,
                   positions: dict[str, tuple[int, int]] | None = None) -> dict[str, Selection]:
    """Parse the bytes of a selections file; raise ConfigurationError naming the spot.

    With ``problems`` given, a bad entry is recorded there and skipped instead of
    raised (so that ``validate`` can report every one); a broken document still raises.
    ``positions``, when given, receives each provider's line and column.
    """
    if len(data) > MAX_DOCUMENT_BYTES:
        raise ConfigurationError(
            f"file is {len(data) / 1e6:.1f} MB; the limit is "
            f"{MAX_DOCUMENT_BYTES // (1024 * 1024)} MiB", path=path)
    if data.startswith(b"\xef\xbb\xbf"):
        raise ConfigurationError(
            "file starts with a byte order mark; save it as UTF-8 without BOM",
            path=path, line=1, column=1)
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        prefix = data[: exc.start].decode("utf-8", errors="replace")
        line, column = _line_col(prefix, len(prefix))
        raise ConfigurationError(f"not valid UTF-8 (byte 0x{data[exc.start]:02x})",
                                 path=path, line=line, column=column) from None
    if problems is None and positions is None:
        fast = _parse_fast(text, path)
        if fast is not None:
            return fast
    try:
        entries = _top_level_entries(text)
    except _Located as exc:
        line, column = _line_col(text, exc.offset)
        raise ConfigurationError(exc.reason, path=path, line=line, column=column) from None
    selections: dict[str, Selection] = {}
    lines = _LineCounter(text)
    may_hold_surrogates = _SURROGATE_ESCAPE.search(text) is not None
    for provider, value, offset in entries:
        if positions is not None:
            positions[provider] = lines.locate(offset)
        try:
            check_name("provider", provider)
            if may_hold_surrogates:
                _check_encodable(provider, value)
            selections[provider] = _selection_from_json(provider, value)
        except (ValueError, ValidationError) as exc:
            reason = str(exc)
            if not reason.startswith(f"{provider}:"):
                reason = f"{provider!r}: {reason}"
            line, column = lines.locate(offset)
            error = ConfigurationError(reason, path=path, line=line, column=column)
            if problems is None:
                raise error from None
            problems.append(error)
    return selections


def _parse_fast(text: str, path: str) -> dict[str, Selection] | None:
    """The selections of a good document in one pass; None if anything is wrong with it.

    Measured at 10,000 providers: a third of the located parse's time, which walks the
    top level entry by entry to know each one's line and column. Only a document with a
    problem needs those, so the located parse runs only when this returns None (and
    then raises the same error as always).
    """
    try:
        top = _FAST_DECODER.decode(text)
    except (ValueError, RecursionError):  # JSONDecodeError, a bad token, a duplicate key
        return None
    return _selections_of(top, text)


#: No duplicate-key hook: the json module's C scanner at full speed (2.5x the hooked one).
_PLAIN_DECODER = json.JSONDecoder(parse_constant=_reject_constant, parse_float=_finite_float)


def parse_rendered(data: bytes) -> dict[str, Selection] | None:
    """The selections of a document known to be modelboard's own rendering of them.

    For a file whose hash is a revision modelboard recorded writing: it was rendered
    from a dict, so its keys are unique and the duplicate-key check is skipped (the
    caller also counts the top-level entries, see ``DocumentCodec.adopt``); every entry
    is still checked as in ``parse_document``. None if anything is off: the caller then
    parses it the strict way, which says what is wrong and where.
    """
    if len(data) > MAX_DOCUMENT_BYTES or data.startswith(b"\xef\xbb\xbf"):
        return None
    try:
        text = data.decode("utf-8")
        top = _PLAIN_DECODER.decode(text)
    except (ValueError, RecursionError):
        return None
    return _selections_of(top, text)


def _selections_of(top: Any, text: str) -> dict[str, Selection] | None:
    """The Selections of a decoded document, checked as ``parse_document`` checks them."""
    if not isinstance(top, dict):
        return None
    may_hold_surrogates = _SURROGATE_ESCAPE.search(text) is not None
    if not may_hold_surrogates:
        usual = _usual_selections(top)
        if usual is not None:
            return usual
    selections: dict[str, Selection] = {}
    try:
        for provider, value in top.items():
            check_name("provider", provider)
            if isinstance(value, dict) and not value.keys() <= _KNOWN_FIELD_SET \
                    and _has_containers(value) and _depth(value, MAX_DEPTH) > MAX_DEPTH:
                return None
            if may_hold_surrogates:
                _check_encodable(provider, value)
            selections[provider] = _selection_from_json(provider, value)
    except (ValueError, ValidationError):
        return None
    return selections


_STR_OR_NULL = frozenset({str, type(None)})


def _usual_selections(top: dict[str, Any]) -> dict[str, Selection] | None:
    """The Selections of a document whose entries are all in the usual form, or None.

    The usual form is what modelboard writes: an object of known fields, each of its
    type. For it, this builds exactly what ``_selection_from_json`` would, with the
    checks inlined and the names checked all at once (measured at 10,000 providers: half
    the time of an entry-by-entry call). Anything else (the legacy form, fields from a
    newer version, a wrong type, a bad name) returns None and is judged the careful way.
    """
    known = _KNOWN_FIELD_SET.issuperset
    from_iso = datetime.fromisoformat
    selections: dict[str, Selection] = {}
    models: list[str] = []
    for provider, value in top.items():
        if type(value) is not dict or not known(value):
            return None
        model = value.get("model_name")
        editable = value.get("editable", True)
        stamp = value.get("last_updated")
        updated_by = value.get("updated_by")
        lock_reason = value.get("lock_reason")
        if type(model) is not str or type(editable) is not bool \
                or type(stamp) not in _STR_OR_NULL or type(updated_by) not in _STR_OR_NULL \
                or type(lock_reason) not in _STR_OR_NULL:
            return None
        try:
            last_updated = from_iso(stamp) if stamp else None
        except ValueError:
            return None
        selections[provider] = Selection(model, editable, last_updated, updated_by, lock_reason)
        models.append(model)
    if not (names_are_valid(list(selections)) and names_are_valid(models)):
        return None
    return selections


_encode_str = json.encoder.encode_basestring


def _render_value(value: Any, indent: str) -> str:
    if isinstance(value, str):
        return _encode_str(value)
    if value is None or isinstance(value, bool | int | float):
        return json.dumps(value)
    nested = json.dumps(value, indent=2, sort_keys=True, ensure_ascii=False)
    return nested.replace("\n", "\n" + indent)


def render_document(selections: Mapping[str, Selection]) -> bytes:
    """The file form: sorted keys, two-space indent, final newline (small git diffs).

    Byte for byte what ``json.dumps(..., indent=2, sort_keys=True, ensure_ascii=False)``
    gives, built directly because that encoder falls back to pure Python with an indent
    and this runs on every write.
    """
    if not selections:
        return b"{}\n"
    entries = [_entry_bytes(provider, selections[provider]) for provider in sorted(selections)]
    return _join_entries(entries)


# The document is "{" + entries joined by _BETWEEN + _TAIL, where an entry's text runs
# from the newline before its provider name to its last field (its closing brace is in
# _BETWEEN or _TAIL). Raw newlines cannot occur inside JSON strings, and nested values
# are indented deeper, so _BETWEEN occurs in a rendered document only between entries.
_BETWEEN = b"\n  },"
_TAIL = b"\n  }\n}\n"


def _join_entries(entries: list[bytes]) -> bytes:
    """The document from its entries, built with one allocation of its size.

    At 1,000 providers and more a document is past malloc's mmap threshold, so each
    intermediate copy costs fresh, page-faulted memory: join once, not join-add-encode.
    """
    parts = entries.copy()
    parts[0] = b"{" + parts[0]
    parts[-1] += _TAIL
    return _BETWEEN.join(parts)


def _entry_bytes(provider: str, selection: Selection) -> bytes:
    return _entry_text(provider, selection).encode("utf-8")


def _entry_text(provider: str, selection: Selection) -> str:
    """One provider's part of the document (see _BETWEEN), its fields in sorted order."""
    if selection.extra:
        entry = selection.to_json()
        fields = [f"\n    {_encode_str(key)}: {_render_value(entry[key], '    ')}"
                  for key in sorted(entry)]
    else:  # the usual case, spelled out: the known fields are already in sorted order
        stamp = selection.last_updated
        fields = ["\n    \"editable\": true" if selection.editable
                  else "\n    \"editable\": false",
                  "\n    \"last_updated\": "
                  + (_encode_str(stamp.isoformat()) if stamp is not None else "null")]
        if selection.lock_reason is not None:
            fields.append("\n    \"lock_reason\": " + _encode_str(selection.lock_reason))
        fields.append("\n    \"model_name\": " + _encode_str(selection.model_name))
        if selection.updated_by is not None:
            fields.append("\n    \"updated_by\": " + _encode_str(selection.updated_by))
    return f"\n  {_encode_str(provider)}: {{" + ",".join(fields)


class _Remembered(NamedTuple):
    """What a DocumentCodec knows: providers in order, their selections and texts."""

    providers: list[str]
    selections: list[Selection]
    texts: list[bytes]  # texts[i] is exactly _entry_bytes(providers[i], selections[i])
    position: dict[str, int]
    #: The dict last rendered (or adopted) whose entries these are, if any: a write
    #: built from it names what it changed, and only those entries are looked at.
    source: dict[str, Selection] | None = None
    #: The document these texts make ("{" + _BETWEEN.join(texts) + _TAIL), when known:
    #: a write that changes a few entries copies it around them (see _spliced).
    document: bytes | None = None
    #: The byte length of each run of _BLOCK texts, separators excluded (None: not
    #: worked out yet), so that an entry's place in ``document`` is found in few steps.
    block_sizes: list[int] | None = None


_NOTHING_REMEMBERED = _Remembered([], [], [], {})

#: Texts per block of ``_Remembered.block_sizes``: finding an entry's offset sums at most
#: N / _BLOCK block sizes and _BLOCK text lengths.
_BLOCK = 256
#: More changed entries than this and the document is joined afresh rather than spliced.
_MAX_SPLICES = 64


def _block_sizes(texts: list[bytes]) -> list[int]:
    return [sum(map(len, texts[start:start + _BLOCK])) for start in range(0, len(texts), _BLOCK)]


def _entry_offset(texts: list[bytes], block_sizes: list[int], index: int) -> int:
    """Where ``texts[index]`` starts in the document the texts make."""
    block = index // _BLOCK
    return (1 + sum(block_sizes[:block]) + sum(map(len, texts[block * _BLOCK:index]))
            + index * len(_BETWEEN))


def _spliced(memory: _Remembered, texts: list[bytes],
             changed: list[int]) -> tuple[bytes, list[int] | None]:
    """The document of ``texts``, which differ from the remembered texts only at
    ``changed`` (ascending), and its block sizes.

    At 100,000 providers joining the 100,000 texts again took 6 to 9 ms of a write
    (measured); copying the remembered document around the changed entries is one copy
    of its bytes. Without a remembered document, or with many changes, texts are joined.
    """
    document, sizes = memory.document, memory.block_sizes
    if not changed and document is not None:
        return document, sizes
    if document is None or len(changed) > _MAX_SPLICES:
        return _join_entries(texts), None
    before = memory.texts
    if sizes is None:
        sizes = _block_sizes(before)
    view = memoryview(document)
    parts: list[bytes | memoryview] = []
    copied_to = 0
    for index in changed:
        start = _entry_offset(before, sizes, index)
        parts += (view[copied_to:start], texts[index])
        copied_to = start + len(before[index])
    parts.append(view[copied_to:])
    sizes = sizes.copy()
    for index in changed:
        sizes[index // _BLOCK] += len(texts[index]) - len(before[index])
    return b"".join(parts), sizes


class DocumentCodec:
    """Parses and renders one document again and again, redoing only the entries that changed.

    A file of 10,000 providers is 1.5 MB; a write or a reload usually changes one entry.
    The codec remembers the last document's providers, selections and entry texts, so
    rendering reuses the text of every selection it has seen (by identity: selections
    are immutable) and parsing reuses the selection of every entry whose text is the same.
    Whatever it cannot reuse goes through ``parse_document`` and ``render_document``'s
    own code, so results, bytes and error messages are the same as theirs.

    Safe to share between threads: what it remembers is replaced in one assignment (a
    stale memory is still a true one: it only saves less).
    """

    def __init__(self) -> None:
        self._memory = _NOTHING_REMEMBERED
        #: A document adopted but not yet split into entries: a fresh store that only
        #: reads never needs them (see ``adopt``), so that work waits for a render or parse.
        self._adopted: tuple[bytes, dict[str, Selection]] | None = None

    def _recall(self) -> _Remembered:
        """What is remembered, splitting an adopted document into its entries first."""
        adopted = self._adopted
        if adopted is not None:
            data, selections = adopted
            texts = data[1:-len(_TAIL)].split(_BETWEEN)
            providers = list(selections)
            if len(texts) == len(providers) and providers == sorted(providers):
                self._memory = _Remembered(providers, list(selections.values()), texts,
                                           {provider: i for i, provider in enumerate(providers)},
                                           selections, data)
            else:  # not one text per provider in rendering order: remember nothing
                self._memory = _NOTHING_REMEMBERED
            self._adopted = None
        return self._memory

    def render(self, selections: Mapping[str, Selection], *,
               built_from: Mapping[str, Selection] | None = None,
               rewritten: Collection[str] | None = None) -> bytes:
        """Exactly ``render_document(selections)``.

        ``built_from`` and ``rewritten``: ``selections`` is a copy of ``built_from`` in
        which only the providers ``rewritten`` were set or removed (how a write builds its
        state; mappings handed to the codec are never changed afterwards). When
        ``built_from`` is the dict last rendered, only those entries are rendered again:
        at 100,000 providers that skips comparing every selection (6 ms of a write).
        """
        if not selections:
            self._memory, self._adopted = _NOTHING_REMEMBERED, None
            return b"{}\n"
        memory = self._recall()
        source = selections if type(selections) is dict else None
        if rewritten is not None and built_from is not None and memory.source is built_from \
                and source is not None and len(selections) == len(memory.providers):
            position = memory.position
            indices = [position.get(provider) for provider in rewritten]
            if None not in indices and all(provider in selections for provider in rewritten):
                ordered, texts = memory.selections.copy(), memory.texts.copy()
                for index in indices:
                    assert index is not None
                    provider = memory.providers[index]
                    ordered[index] = selections[provider]
                    texts[index] = _entry_bytes(provider, ordered[index])
                at = sorted({index for index in indices if index is not None})
                document, sizes = _spliced(memory, texts, at)
                self._memory = _Remembered(memory.providers, ordered, texts, position, source,
                                           document, sizes)
                return document
        if len(selections) == len(memory.providers):
            # The same providers, most selections the same objects: fetch them all in one
            # C call, find the others in one pass by identity, and re-render only those.
            # A write keeps the order of the dict it was built from, so the values come in
            # the remembered order, as a rule: listing them is 30x cheaper than fetching
            # each (measured at 100,000 providers: 0.4 ms + 0.8 ms to compare the keys,
            # against 12 ms for the itemgetter).
            now: list[Selection] | None = None
            if isinstance(selections, dict) and list(selections) == memory.providers:
                now = list(selections.values())
            else:
                try:
                    fetched = itemgetter(*memory.providers)(selections)
                except KeyError:
                    pass  # another set of providers: the general way below
                else:
                    now = [fetched] if len(memory.providers) == 1 else list(fetched)
            if now is not None:
                changed = sorted(_differing(now, memory.selections))
                texts = memory.texts.copy() if changed else memory.texts
                for index in changed:
                    texts[index] = _entry_bytes(memory.providers[index], now[index])
                document, sizes = _spliced(memory, texts, changed)
                kept = memory.document is not None  # as in the general way below
                self._memory = _Remembered(memory.providers, now, texts, memory.position,
                                           source, document if kept else None,
                                           sizes if kept else None)
                return document
        providers = sorted(selections)
        ordered = [selections[provider] for provider in providers]
        texts = []
        for provider, selection in zip(providers, ordered, strict=True):
            seen_at = memory.position.get(provider)
            if seen_at is not None and memory.selections[seen_at] is selection:
                texts.append(memory.texts[seen_at])
            else:
                texts.append(_entry_bytes(provider, selection))
        # The document is not kept: a store that only reads would hold its file twice.
        # A write keeps the one it wrote (it holds it anyway) for the next to splice.
        self._memory = _Remembered(providers, ordered, texts,
                                   {provider: i for i, provider in enumerate(providers)},
                                   source)
        return _join_entries(texts)

    @property
    def remembers(self) -> bool:
        """Whether a document is remembered (rendering then redoes only what changed)."""
        return self._adopted is not None or bool(self._memory.providers)

    def adopt(self, data: bytes, selections: dict[str, Selection]) -> bool:
        """Remember ``data`` as the rendering of ``selections``, which it must be exactly.

        For a document proven to be ``render_document(selections)`` without rendering it
        (its hash is a revision modelboard wrote): its entries' texts are its own bytes.
        False (nothing remembered) if it does not have one text per provider. It is split
        into them only when a render or parse first needs them (a third of a cold load's
        time past the parse, at 10,000 providers, for a store that may only ever read).
        """
        if not selections or not (data.startswith(b"{") and data.endswith(_TAIL)) \
                or data.count(_BETWEEN) != len(selections) - 1:
            return False  # not one text per provider: not ours
        self._memory, self._adopted = _NOTHING_REMEMBERED, (data, selections)
        return True

    def parse(self, data: bytes, *, path: str) -> dict[str, Selection]:
        """Exactly ``parse_document(data, path=path)``, errors included."""
        return self.parse_exactly(data, path=path)[0]

    def parse_exactly(self, data: bytes, *,
                      path: str) -> tuple[dict[str, Selection], bool]:
        """``parse``, and whether ``data`` is known to be exactly the rendering of what it
        returns (True only when every entry was as modelboard writes it; False when
        that is not known)."""
        memory = self._recall()
        if len(data) > MAX_DOCUMENT_BYTES or data == b"{}\n" or not memory.providers \
                or not (data.startswith(b"{") and data.endswith(_TAIL)):
            # Not as we write it, or nothing to reuse: one pass over the whole document is
            # faster than entry by entry. Rendering the result fills the memory.
            return parse_document(data, path=path), False
        # Entries are compared as bytes: one equal to a remembered text is valid UTF-8
        # and parses to the remembered selection; only the others are decoded and parsed.
        entries = data[1:-len(_TAIL)].split(_BETWEEN)
        if len(entries) == len(memory.texts):
            # The usual reload: the same providers, a few entries edited. Compare the
            # texts at C speed and parse only the entries that differ.
            differing = list(compress(range(len(entries)), map(ne, entries, memory.texts)))
            ordered, texts = memory.selections, memory.texts
            if differing:
                ordered, texts = ordered.copy(), texts.copy()
            # The differing entries (what other writers changed) parsed in one go: with
            # eight writers each write found about twenty, a quarter of its time under
            # the lock when parsed one by one (cProfile, 1,000 providers).
            parsed_together = _parse_entries([entries[index] for index in differing], path)
            if parsed_together is None:  # for the error's line and column:
                return parse_document(data, path=path), False
            for index, (provider, selection, text) in zip(differing, parsed_together,
                                                          strict=True):
                if provider != memory.providers[index]:
                    break  # a provider renamed in place: take the general way below
                ordered[index] = selection
                texts[index] = text
            else:
                # Entries written as we write them: the document is ``data`` itself. It
                # is not kept (a reader would hold its file twice, as texts and as
                # bytes): a write on this state joins its texts once.
                exact = all(texts[index] == entries[index] for index in differing)
                result = dict(zip(memory.providers, ordered, strict=True))
                # ``result`` is the source a write builds on: it then renders only the
                # providers it changed.
                self._memory = _Remembered(memory.providers, ordered, texts, memory.position,
                                           result)
                return result, exact
        known, position = memory.texts, memory.position
        exact = True
        providers: list[str] = []
        ordered = []
        texts = []
        previous = ""
        for entry in entries:
            end = entry.find(b'": {\n', 4)
            try:
                name = entry[4:end].decode("utf-8") if entry.startswith(b'\n  "') and end > 0 \
                    else None
            except UnicodeDecodeError:
                name = None
            found = position.get(name) if name is not None else None
            if found is not None and known[found] == entry:
                provider, selection = memory.providers[found], memory.selections[found]
            else:
                parsed = _parse_entry(entry, path)
                if parsed is None:  # for the error's line and column:
                    return parse_document(data, path=path), False
                provider, selection = parsed
                text = _entry_bytes(provider, selection)  # the text as we would write it
                exact = exact and text == entry
                entry = text
            if provider <= previous:  # out of order, or a duplicate: let the full parse judge
                return parse_document(data, path=path), False
            previous = provider
            providers.append(provider)
            ordered.append(selection)
            texts.append(entry)
        if providers != memory.providers:
            position = {provider: i for i, provider in enumerate(providers)}
        result = dict(zip(providers, ordered, strict=True))
        self._memory = _Remembered(providers, ordered, texts, position, result)
        return result, exact


def _differing(now: list[Selection], before: list[Selection]) -> list[int]:
    """The indices where ``now`` holds another selection object than ``before`` (same
    lengths), in one pass at C speed. By identity, not equality: equal selections may
    render differently ({"x": 1} and {"x": 1.0} in an unknown field, one instant in two
    time zones)."""
    return list(compress(range(len(now)), map(is_not, now, before)))


def _parse_entries(entries: list[bytes],
                   path: str) -> list[tuple[str, Selection, bytes]] | None:
    """Entries' texts (see _BETWEEN), each parsed as it would be within the document:
    (provider, selection, its text as we would write it), in their order.

    They are parsed as one document, and that is trusted only for entries that are
    exactly as we write them: such an entry is one whole value, so it reads the same
    alone, beside others or within the document. Otherwise each is parsed alone (two
    hand-made entries could make one valid document together that the whole file
    does not). None when one is not exactly one good entry; the caller then parses the
    whole document, whose error names the right line and column.
    """
    if not entries:
        return []
    with contextlib.suppress(ConfigurationError):
        together = parse_document(b"{" + _BETWEEN.join(entries) + _TAIL, path=path)
        if len(together) == len(entries):
            found = [(provider, selection, _entry_bytes(provider, selection))
                     for provider, selection in together.items()]
            if all(text == entry for (_p, _s, text), entry in zip(found, entries, strict=True)):
                return found
    alone: list[tuple[str, Selection, bytes]] = []
    for entry in entries:
        parsed = _parse_entry(entry, path)
        if parsed is None:
            return None
        alone.append((*parsed, _entry_bytes(*parsed)))
    return alone


def _parse_entry(entry: bytes, path: str) -> tuple[str, Selection] | None:
    """One entry's text (see _BETWEEN) parsed alone, as it would be within the document.

    None when it is not exactly one good entry; the caller then parses the whole
    document, whose error names the right line and column.
    """
    try:
        alone = parse_document(b"{" + entry + _TAIL, path=path)
    except ConfigurationError:
        return None
    if len(alone) != 1:
        return None
    ((provider, selection),) = alone.items()
    return provider, selection


def document_digest(data: bytes) -> bytes:
    """SHA-256 of a document's bytes, from which its revision is taken.

    SHA-256 rather than BLAKE2b because every write hashes the whole document, and
    OpenSSL's SHA-256 uses the CPU's SHA instructions (x86 SHA-NI, ARMv8): measured
    1.8x faster than hashlib's BLAKE2b on a 1,000-provider document.
    """
    return hashlib.sha256(data).digest()


def revision_of_digest(digest: bytes) -> str:
    """The revision of the rendered document whose ``document_digest`` this is."""
    return digest.hex()[:16]


def revision_of_bytes(rendered: bytes) -> str:
    """The revision of a rendered document: 16 hex digits of its SHA-256."""
    return revision_of_digest(document_digest(rendered))


def revision_of(selections: Mapping[str, Selection]) -> str:
    """A content hash: equal selections give equal revisions, whatever the formatting."""
    return revision_of_bytes(render_document(selections))
