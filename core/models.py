"""Value types of the core: a provider's Selection, the immutable Snapshot, and change records."""

from __future__ import annotations

import json
import unicodedata
from collections.abc import Collection, ItemsView, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from types import MappingProxyType
from typing import Any, Literal

from .errors import ValidationError, describe_lock

__all__ = [
    "MAX_NAME_LENGTH",
    "ChangeEvent",
    "HistoryEntry",
    "ProviderChange",
    "Selection",
    "Snapshot",
    "check_name",
    "names_are_valid",
    "utc_now",
]

MAX_NAME_LENGTH = 200
#: How an absent model reads in a change: ``(none) -> gpt-4o``.
NOTHING = "(none)"
_NO_EXTRA: Mapping[str, Any] = MappingProxyType({})


def utc_now() -> datetime:
    """The current time in UTC, to the second (what ``last_updated`` records)."""
    return datetime.now(UTC).replace(microsecond=0)


def check_name(kind: str, value: object) -> str:
    """Return ``value`` if it is a usable provider or model name, else raise ValidationError.

    Names reach terminals and log lines, so control and format characters (escape
    sequences, bidi overrides, line separators) are refused outright.
    """
    if not isinstance(value, str):
        raise ValidationError(f"{kind} name must be a string, got {type(value).__name__}")
    if not value:
        raise ValidationError(f"{kind} name is empty")
    if len(value) > MAX_NAME_LENGTH:
        raise ValidationError(
            f"{kind} name is {len(value)} characters long; the limit is {MAX_NAME_LENGTH}")
    if value != value.strip():
        raise ValidationError(f"{kind} name {value.strip()!r} has leading or trailing spaces")
    if not value.isprintable():  # C fast path; find the culprit only on failure
        for char in value:
            if not char.isprintable() and char != " ":
                what = "control" if unicodedata.category(char) in ("Cc", "Cf") else "unprintable"
                raise ValidationError(
                    f"{kind} name {value!r} contains the {what} character U+{ord(char):04X}")
    return value


def names_are_valid(names: list[str]) -> bool:
    """True if ``check_name`` accepts every one of ``names`` (strings), in a few C-speed
    passes instead of a call per name: for loading thousands at once. When it says False,
    ``check_name`` on each says which one is wrong and why."""
    return (all(names) and max(map(len, names), default=0) <= MAX_NAME_LENGTH
            and "".join(names).isprintable()  # printable iff every character is
            and list(map(str.strip, names)) == names)


@dataclass(frozen=True, slots=True)
class Selection:
    """The model chosen for one provider.

    ``editable`` is the lock flag: False means locked. ``extra`` holds fields that a
    newer version of modelboard wrote; they are kept verbatim on every rewrite.
    """

    model_name: str
    editable: bool = True
    last_updated: datetime | None = None
    updated_by: str | None = None
    lock_reason: str | None = None
    extra: Mapping[str, Any] = field(default_factory=lambda: _NO_EXTRA, hash=False)

    @property
    def locked(self) -> bool:
        return not self.editable

    def to_json(self) -> dict[str, Any]:
        """The entry as written to the file (unknown fields first, known ones win)."""
        data: dict[str, Any] = dict(self.extra)
        data["model_name"] = self.model_name
        data["editable"] = self.editable
        data["last_updated"] = (
            self.last_updated.isoformat() if self.last_updated is not None else None)
        if self.updated_by is not None:
            data["updated_by"] = self.updated_by
        if self.lock_reason is not None:
            data["lock_reason"] = self.lock_reason
        return data


class Snapshot(Mapping[str, Selection]):
    """An immutable mapping provider -> Selection, with the content's revision.

    The store replaces its snapshot in one assignment, so a reader holding one never
    sees it change. ``revision`` is a hash of the content: equal content, equal revision.
    """

    __slots__ = ("_selections", "revision")

    def __init__(self, selections: Mapping[str, Selection], revision: str) -> None:
        self._selections: dict[str, Selection] = dict(selections)
        self.revision = revision

    @classmethod
    def adopting(cls, selections: dict[str, Selection], revision: str) -> Snapshot:
        """A snapshot that takes ``selections`` as its own, without a copy: the caller
        hands the dict over and never changes it again (a backend's delta, see
        ``StoredState.changed``), so a write costs one copy of a large store, not two."""
        snapshot = cls.__new__(cls)
        snapshot._selections = selections
        snapshot.revision = revision
        return snapshot

    def __getitem__(self, provider: str) -> Selection:
        return self._selections[provider]

    def get(self, provider: str, default: Any = None) -> Any:  # faster than Mapping.get
        return self._selections.get(provider, default)

    def items(self) -> ItemsView[str, Selection]:  # the dict's own view: C speed, read-only
        return self._selections.items()

    def __contains__(self, provider: object) -> bool:
        return provider in self._selections

    def __iter__(self) -> Iterator[str]:
        return iter(self._selections)

    def __len__(self) -> int:
        return len(self._selections)

    def __repr__(self) -> str:
        return f"Snapshot(revision={self.revision!r}, providers={len(self._selections)})"

    def as_dict(self) -> dict[str, Selection]:
        """A new, mutable copy of the mapping."""
        return dict(self._selections)

    def models(self) -> dict[str, str]:
        """provider -> model name, for logging or a quick comparison."""
        return {p: s.model_name for p, s in self._selections.items()}


ChangeKind = Literal["added", "removed", "model", "lock"]


@dataclass(frozen=True, slots=True)
class ProviderChange:
    """What happened to one provider between two snapshots.

    ``kind`` is ``added``, ``removed``, ``model`` (the model changed) or ``lock``
    (only the lock flag changed). A change of both model and lock reports ``model``
    with both old and new selections, so nothing is hidden.
    """

    provider: str
    kind: ChangeKind
    old: Selection | None
    new: Selection | None

    @property
    def actor(self) -> str | None:
        """Who made the change, when the new entry records it."""
        return self.new.updated_by if self.new is not None else None

    def describe(self) -> str:
        """The change in one line, as the editor's notices and ``modelboard watch`` show it.

        ``openai: gpt-4o -> gpt-4.1 by alice``, ``xai: grok-4 locked by bob: launch``,
        ``openai: gpt-4o updated by carol`` (only its time, author or extra fields moved).
        Names and free text are as stored: the caller makes the line terminal-safe.
        """
        provider, by = self.provider, f" by {self.actor}" if self.actor else ""
        old = self.old.model_name if self.old else NOTHING
        new = self.new.model_name if self.new else NOTHING
        if self.kind == "added":
            return f"{provider}: set to {new}{by}"
        if self.kind == "removed" or self.new is None:
            return f"{provider}: {old} removed"
        if self.kind == "lock" or (self.old is not None and old == new):
            if not self.new.editable:
                return f"{provider}: {new} {describe_lock(self.actor, self.new.lock_reason)}"
            return f"{provider}: {new} {'unlocked' if self.kind == 'lock' else 'updated'}{by}"
        return f"{provider}: {old} -> {new}{by}"


def diff_snapshots(old: Mapping[str, Selection], new: Mapping[str, Selection], *,
                   only: Collection[str] | None = None) -> tuple[ProviderChange, ...]:
    """Per-provider differences from ``old`` to ``new``, in provider order.

    ``only``, when the caller knows it, names every provider that may differ (a delta),
    so the others are not looked at.
    """
    changes: list[ProviderChange] = []
    # A write or reload keeps every unchanged Selection object, so an identity check
    # skips them cheaply; only the few left are sorted and compared by value.
    before_map = old._selections if isinstance(old, Snapshot) else old
    after_map = new._selections if isinstance(new, Snapshot) else new
    if only is not None:
        touched = list(only)
    else:
        touched = [p for p, after in after_map.items() if before_map.get(p) is not after]
        touched.extend(p for p in before_map if p not in after_map)
    for provider in sorted(touched):
        before, after = old.get(provider), new.get(provider)
        if before == after:
            continue
        if before is None:
            changes.append(ProviderChange(provider, "added", None, after))
        elif after is None:
            changes.append(ProviderChange(provider, "removed", before, None))
        elif before.model_name != after.model_name:
            changes.append(ProviderChange(provider, "model", before, after))
        elif before.editable != after.editable:
            changes.append(ProviderChange(provider, "lock", before, after))
        else:
            # Only metadata (time, actor, reason, extra fields) moved; still a change.
            changes.append(ProviderChange(provider, "model", before, after))
    return tuple(changes)


@dataclass(frozen=True, slots=True)
class ChangeEvent:
    """What subscribers receive: the old and new snapshots and what changed.

    ``old``, ``new`` and ``changes`` describe the stored state (what an editor shows);
    ``served`` is what the store serves after the event (``store.snapshot``), which
    differs from ``new`` only where the catalog rejects a stored entry. When the backend
    holds something that could not be loaded, ``error`` says why; then ``old is new``
    (the last good snapshot stays) and ``changes`` is empty.
    """

    old: Snapshot
    new: Snapshot
    changes: tuple[ProviderChange, ...]
    error: Exception | None = None
    source: Literal["local", "external"] = "external"
    served: Snapshot | None = None


@dataclass(frozen=True, slots=True)
class HistoryEntry:
    """One line of the history: who changed which provider, from what to what, when."""

    time: datetime
    actor: str
    provider: str
    action: str
    old: str | None
    new: str | None
    revision: str
    reason: str | None = None
    #: The revision number (1, 2, 3 … per store); None on lines older than numbering.
    number: int | None = None
    #: The content hash of the document this write was made on.
    base_revision: str | None = None
    #: The provider's whole entry before and after (None: absent), when ``has_states``.
    before: Mapping[str, Any] | None = None
    after: Mapping[str, Any] | None = None
    has_states: bool = False

    def describe(self) -> str:
        """What the entry changed: ``gpt-4o -> gpt-4.1``, or the model and the lock reason."""
        if self.action in ("lock", "unlock"):
            reason = f" ({self.reason})" if self.reason else ""
            return f"{self.new or self.old or ''}{reason}"
        return f"{self.old or NOTHING} -> {self.new or NOTHING}"

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "time": self.time.isoformat(),
            "actor": self.actor,
            "provider": self.provider,
            "action": self.action,
            "old": self.old,
            "new": self.new,
            "revision": self.revision,
            **({"reason": self.reason} if self.reason is not None else {}),
        }
        if self.number is not None:
            data["rev"] = self.number
        if self.base_revision is not None:
            data["base_revision"] = self.base_revision
        if self.has_states:
            data["before"] = dict(self.before) if self.before is not None else None
            data["after"] = dict(self.after) if self.after is not None else None
        return data

    def to_line(self) -> str:
        """The entry as one line of history (JSON, sorted keys, no newline)."""
        return json.dumps(self.to_json(), ensure_ascii=False, sort_keys=True)

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> HistoryEntry:
        return cls(
            time=datetime.fromisoformat(data["time"]),
            actor=str(data.get("actor", "")),
            provider=str(data["provider"]),
            action=str(data.get("action", "set")),
            old=data.get("old"),
            new=data.get("new"),
            revision=str(data.get("revision", "")),
            reason=data.get("reason"),
            number=number if isinstance(number := data.get("rev"), int) else None,
            base_revision=data.get("base_revision"),
            before=_mapping_or_none(data.get("before")),
            after=_mapping_or_none(data.get("after")),
            has_states="before" in data and "after" in data,
        )


def _mapping_or_none(value: Any) -> Mapping[str, Any] | None:
    return value if isinstance(value, dict) else None
