"""What a proxy serves, given what is stored: the per-provider serving rule, as a pure function.

The stored state is what an operator (or a hand edit) left; the served state is what the
request path answers. They differ only where the catalog rejects a stored entry:

- a rejected entry never replaces a value served before: that value stays served;
- a rejected entry with nothing served before serves nothing (the proxy's default applies);
- *catalog drift* is the exception: a rejected value that was already being served, or
  that modelboard itself wrote after validating it (``vouched``), keeps being served.

Every stored entry served in place of, or despite, the catalog is an :class:`EntryProblem`.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass
from typing import Literal

from .catalog import Catalog
from .errors import ValidationError
from .models import Selection, Snapshot

__all__ = ["EntryProblem", "ProblemKind", "derive_served"]

ProblemKind = Literal["rejected", "drift"]


@dataclass(frozen=True, slots=True)
class EntryProblem:
    """A stored entry the catalog rejects, and what is served for its provider instead.

    ``kind`` is ``rejected`` (the stored value is not served; ``served`` is the last valid
    value, or None when there was none in this process) or ``drift`` (a value modelboard
    had validated, that the current catalog no longer knows: still served).
    """

    provider: str
    stored: Selection | None
    served: Selection | None
    reason: str
    kind: ProblemKind

    def describe(self) -> str:
        """One line for a log, ``validate`` or a health endpoint."""
        if self.kind == "drift":
            return f"{self.reason} (catalog drift: still serving it)"
        if self.served is None:
            return f"{self.reason} (not served; nothing is served for {self.provider})"
        return f"{self.reason} (not served; still serving {self.served.model_name})"

    def to_json(self) -> dict[str, object]:
        return {
            "provider": self.provider,
            "stored": self.stored.model_name if self.stored is not None else None,
            "served": self.served.model_name if self.served is not None else None,
            "reason": self.reason,
            "kind": self.kind,
        }


#: Rejected entries per derivation whose reason names close matches (a difflib search
#: each); beyond that, the reason only says what is wrong, so that a large store full of
#: unknown providers loads in milliseconds, not seconds.
DETAILED_REASONS = 100


def _rejection(catalog: Catalog, provider: str, model: str, *,
               detailed: bool = True) -> str | None:
    """Why the catalog rejects ``model`` for ``provider``, or None if it accepts it.

    The reason names the provider and the stored value, whichever is wrong.
    """
    spec = catalog.get(provider)
    if spec is not None and spec.accepts(model):
        return None  # the common case, without building a message
    unknown = f"unknown provider {provider!r}"
    named = f"{unknown} (stored model {model!r})"
    if not detailed:
        return named if spec is None else \
            f"{provider}: model {model!r} is not served by {provider}"
    try:
        catalog.validate(provider, model)
    except ValidationError as exc:
        # The catalog's message for an unknown provider leaves the model out: say it.
        return str(exc).replace(unknown, named, 1) if spec is None else str(exc)
    return None


def _all_accepted(catalog: Catalog, stored: Mapping[str, Selection]) -> bool:
    """Whether the catalog accepts every stored entry (``_rejection`` is None for each),
    with the check inlined: a load judges every entry, 10,000 of them in 2 ms."""
    spec_of = catalog.get
    for provider, selection in stored.items():
        spec = spec_of(provider)
        if spec is None or not spec.accepts(selection.model_name):
            return False
    return True


def derive_served(stored: Mapping[str, Selection], *, catalog: Catalog,
                  served_before: Mapping[str, Selection],
                  stored_before: Mapping[str, Selection] | None = None,
                  problems_before: Mapping[str, EntryProblem] | None = None,
                  vouched: Callable[[str, Selection], bool] = lambda _p, _s: False,
                  changed: Collection[str] | None = None,
                  ) -> tuple[Mapping[str, Selection], tuple[EntryProblem, ...]]:
    """The served selections for ``stored``, and the problems, in ``stored``'s order.

    ``served_before`` is what was served until now. ``stored_before`` and
    ``problems_before`` (optional) let an entry that did not change since (the same
    object) keep its verdict without being validated again (a reload of a large store
    with many rejected entries costs no more than one with none).
    ``vouched(provider, selection)`` tells whether modelboard itself wrote that value
    after validating it. ``changed``, when the backend knows it, names every provider
    that differs from ``stored_before``: only those are judged again (a delta costs the
    same at 10 providers as at 100,000).
    """
    served: dict[str, Selection] = {}
    problems: list[EntryProblem] = []
    unchanged = stored_before if stored_before is not None else {}
    known = problems_before if problems_before is not None else {}

    def judge(provider: str, selection: Selection) -> None:
        reason = _rejection(catalog, provider, selection.model_name,
                            detailed=len(problems) < DETAILED_REASONS)
        if reason is None:
            served[provider] = selection
            return
        before = served_before.get(provider)
        if (before is not None and before.model_name == selection.model_name) \
                or vouched(provider, selection):
            served[provider] = selection
            problems.append(EntryProblem(provider, selection, selection, reason, "drift"))
        else:
            if before is not None:
                served[provider] = before
            problems.append(EntryProblem(provider, selection, before, reason, "rejected"))

    if changed is None and not known and _all_accepted(catalog, stored):
        return stored, ()  # the usual full derivation (a load): nothing to keep or refuse
    if changed is not None and stored_before is not None:
        if not known and all(_rejection(catalog, provider, selection.model_name) is None
                             for provider in changed
                             if (selection := stored.get(provider)) is not None):
            return stored, ()  # nothing rejected before or now: what is stored is served
        served = served_before.as_dict() if isinstance(served_before, Snapshot) \
            else dict(served_before)
        problems = [problem for provider, problem in known.items() if provider not in changed]
        for provider in changed:
            served.pop(provider, None)
            selection = stored.get(provider)
            if selection is not None:
                judge(provider, selection)
        return served, tuple(problems)
    for provider, selection in stored.items():
        if unchanged.get(provider) is selection:  # untouched since last time: same verdict
            problem = known.get(provider)
            if problem is None and served_before.get(provider) is selection:
                served[provider] = selection
                continue
            if problem is not None and problem.stored is selection:
                if problem.served is not None:
                    served[provider] = problem.served
                problems.append(problem)
                continue
        judge(provider, selection)
    return served, tuple(problems)
