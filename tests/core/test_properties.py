"""Property tests: the file form round-trips and matches json.dumps, revisions follow
content and nothing else, names are validated safely, and no input crashes the parser."""

from __future__ import annotations

import json
import tempfile
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from types import MappingProxyType
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule

from modelboard.core import Catalog, ProviderSpec, Selection, open_store
from modelboard.core.errors import (
    ConfigurationError,
    ConflictError,
    LockedError,
    NotFoundError,
    ValidationError,
)
from modelboard.core.fileformat import (
    DocumentCodec,
    parse_document,
    render_document,
    revision_of,
)
from modelboard.core.models import check_name

FAST = settings(max_examples=100, deadline=None)


def is_valid_name(text: str) -> bool:
    try:
        check_name("provider", text)
    except ValidationError:
        return False
    return True


names = st.text(min_size=1, max_size=40).filter(is_valid_name)
json_scalars = (st.none() | st.booleans() | st.integers(-(10**30), 10**30)
                | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=20))
json_values = st.recursive(
    json_scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner,
                                                                max_size=4),
    max_leaves=12)
known = {"model_name", "editable", "last_updated", "updated_by", "lock_reason"}
extras = st.dictionaries(st.text(max_size=12).filter(lambda k: k not in known), json_values,
                         max_size=3)
timestamps = st.none() | st.datetimes(
    min_value=datetime(1970, 1, 2), max_value=datetime(9998, 1, 1),
    timezones=st.none() | st.just(UTC) | st.builds(
        lambda minutes: timezone(timedelta(minutes=minutes)), st.integers(-23 * 60, 23 * 60)))
selections = st.builds(
    lambda model, editable, stamp, by, reason, extra: Selection(
        model_name=model, editable=editable, last_updated=stamp, updated_by=by,
        lock_reason=reason, extra=MappingProxyType(extra)),
    names, st.booleans(), timestamps, st.none() | st.text(max_size=20),
    st.none() | st.text(max_size=20), extras)
documents = st.dictionaries(names, selections, max_size=4)


def as_json(document: dict[str, Selection]) -> dict[str, Any]:
    return {provider: selection.to_json() for provider, selection in document.items()}


@FAST
@given(documents)
def test_render_is_exactly_json_dumps_sorted_two_space_final_newline(
        document: dict[str, Selection]) -> None:
    expected = json.dumps(as_json(document), indent=2, sort_keys=True, ensure_ascii=False) + "\n"
    assert render_document(document) == expected.encode("utf-8")


@FAST
@given(documents)
def test_parse_of_render_gives_back_the_same_selections(document: dict[str, Selection]) -> None:
    parsed = parse_document(render_document(document), path="f.json")
    assert parsed == document
    assert render_document(parsed) == render_document(document)


@FAST
@given(documents, st.sampled_from([None, 0, 4]), st.booleans())
def test_revision_ignores_formatting_and_key_order(document: dict[str, Selection],
                                                   indent: int | None, ascii_only: bool) -> None:
    data = as_json(document)
    reordered = {p: dict(reversed(list(entry.items()))) for p, entry in reversed(data.items())}
    text = json.dumps(reordered, indent=indent, ensure_ascii=ascii_only)
    assert revision_of(parse_document(text.encode("utf-8"), path="f.json")) == revision_of(document)


@FAST
@given(documents, documents)
def test_revisions_differ_exactly_when_content_differs(first: dict[str, Selection],
                                                       second: dict[str, Selection]) -> None:
    assert (revision_of(first) == revision_of(second)) == (
        render_document(first) == render_document(second))


@FAST
@given(st.dictionaries(names, names, max_size=6), st.data())
def test_legacy_and_current_entries_mix_entry_by_entry(legacy: dict[str, str],
                                                       data: st.DataObject) -> None:
    upgrade = data.draw(st.sets(st.sampled_from(sorted(legacy)) if legacy else st.nothing()))
    mixed = {p: ({"model_name": m, "editable": True} if p in upgrade else m)
             for p, m in legacy.items()}
    parsed = parse_document(json.dumps(mixed).encode("utf-8"), path="f.json")
    assert {p: s.model_name for p, s in parsed.items()} == legacy
    assert all(s.editable and s.last_updated is None for s in parsed.values())


@FAST
@given(st.text(max_size=60))
def test_any_name_is_accepted_or_refused_with_one_safe_line(text: str) -> None:
    try:
        check_name("model", text)
    except ValidationError as error:
        assert str(error).isprintable()
        return
    assert text and text.isprintable() and text == text.strip()


@FAST
@given(st.text(max_size=30), st.text(max_size=30))
def test_catalog_validation_of_arbitrary_names(provider: str, model: str) -> None:
    catalog = Catalog([ProviderSpec("openai", ("gpt-4o", "gpt-4o-mini")),
                       ProviderSpec("vllm", any_model=True)])
    try:
        catalog.validate(provider, model)
    except ValidationError as error:
        assert str(error).isprintable()
        assert all(s in catalog or s in catalog.models("openai") for s in error.suggestions)
        return
    assert provider in catalog and (provider == "vllm" or model in catalog.models(provider))
    assert is_valid_name(model)


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=200) | st.text(max_size=200).map(lambda t: t.encode("utf-8")))
def test_arbitrary_bytes_parse_or_fail_with_one_line(data: bytes) -> None:
    try:
        parsed = parse_document(data, path="f.json")
    except ConfigurationError as error:
        assert str(error).startswith("f.json")
        assert str(error).isprintable()
        return
    assert parse_document(render_document(parsed), path="f.json") == parsed


@FAST
@given(st.dictionaries(st.text(max_size=10), json_values, max_size=5))
def test_arbitrary_json_parses_or_fails_with_one_line(value: dict[str, Any]) -> None:
    data = json.dumps(value).encode("utf-8")
    try:
        parsed = parse_document(data, path="f.json")
    except ConfigurationError as error:
        assert str(error).isprintable() and error.line is not None
        return
    assert parse_document(render_document(parsed), path="f.json") == parsed


class StoreAgainstAModel(RuleBasedStateMachine):
    """Random operations on a real store and file, checked against two plain dicts.

    ``truth`` is what the file must hold; ``view`` what the store has seen. Another
    process's writes change only the truth, so the model also predicts conflicts: a
    write touching a provider whose view differs from the truth must raise
    ConflictError (and refresh the view), and any other write must go through.
    """

    PROVIDERS = ("alpha", "beta", "gamma")
    REASON = "r"

    def __init__(self) -> None:
        super().__init__()
        self.folder = tempfile.TemporaryDirectory()
        self.path = Path(self.folder.name) / "model_selections.json"
        self.catalog = Catalog([ProviderSpec(p, any_model=True) for p in self.PROVIDERS])
        self.store = open_store(self.path, catalog=self.catalog, actor="model")
        self.truth: dict[str, tuple[str, bool]] = {}
        self.view: dict[str, tuple[str, bool]] = {}
        self.revisions: dict[str, str] = {}  # rendered content -> its revision

    def teardown(self) -> None:
        self.store.close()
        self.folder.cleanup()

    def predict(self, touched: list[str], change: Any,
                expect: tuple[str | None] | None = None) -> type[Exception] | None:
        """Apply ``change`` to the truth as the store must; return the error it must raise."""
        for provider in touched:
            stored = self.truth.get(provider)
            stale = ((stored[0] if stored else None) != expect[0] if expect is not None
                     else self.view.get(provider) != stored)
            if stale:
                self.view = dict(self.truth)  # a conflict shows the store the latest state
                return ConflictError
        after = dict(self.truth)
        try:
            change(after)
        except (LockedError, NotFoundError) as error:
            return type(error)
        if after != self.truth:
            self.truth = after
            self.view = dict(after)  # a write installs the whole latest state
        return None

    def run(self, call: Any, predicted: type[Exception] | None) -> None:
        try:
            call()
        except (ConflictError, LockedError, NotFoundError) as error:
            assert type(error) is predicted, f"{error!r}, predicted {predicted}"
            return
        assert predicted is None, f"no error, predicted {predicted}"

    @staticmethod
    def setter(provider: str, model: str) -> Any:
        def change(state: dict[str, tuple[str, bool]]) -> None:
            current = state.get(provider)
            if current is not None and current[0] == model:
                return  # already as asked: not refused even when locked
            if current is not None and not current[1]:
                raise LockedError(provider)
            state[provider] = (model, True)
        return change

    providers = st.sampled_from(PROVIDERS)
    models = st.sampled_from(["m1", "m2", "m3"])

    @rule(provider=providers, model=models)
    def set(self, provider: str, model: str) -> None:
        predicted = self.predict([provider], self.setter(provider, model))
        self.run(lambda: self.store.set_model_selection(provider, model), predicted)

    @rule(provider=providers, model=models, right=st.booleans())
    def set_with_expect(self, provider: str, model: str, right: bool) -> None:
        current = self.truth.get(provider)
        expect = (current[0] if current else None) if right else "never-this"
        predicted = self.predict([provider], self.setter(provider, model), (expect,))
        self.run(lambda: self.store.set_model_selection(provider, model, expect=expect),
                 predicted)

    @rule(provider=providers, locking=st.booleans())
    def lock_or_unlock(self, provider: str, locking: bool) -> None:
        def change(state: dict[str, tuple[str, bool]]) -> None:
            if provider not in state:
                raise NotFoundError(provider)
            state[provider] = (state[provider][0], not locking)
        predicted = self.predict([provider], change)
        if locking:
            self.run(lambda: self.store.lock(provider, reason=self.REASON), predicted)
        else:
            self.run(lambda: self.store.unlock(provider), predicted)

    @rule(provider=providers)
    def remove(self, provider: str) -> None:
        def change(state: dict[str, tuple[str, bool]]) -> None:
            if provider not in state:
                return  # removing nothing is a no-op
            if not state[provider][1]:
                raise LockedError(provider)
            del state[provider]
        predicted = self.predict([provider], change)
        self.run(lambda: self.store.remove_model_selection(provider), predicted)

    @rule(changes=st.dictionaries(providers, models, min_size=1))
    def bulk(self, changes: dict[str, str]) -> None:
        def change(state: dict[str, tuple[str, bool]]) -> None:
            for provider, model in changes.items():
                self.setter(provider, model)(state)
        predicted = self.predict(list(changes), change)
        self.run(lambda: self.store.bulk_set_model_selections(changes), predicted)

    @rule(changes=st.dictionaries(providers, models, min_size=1))
    def abandoned_transaction(self, changes: dict[str, str]) -> None:
        before = self.path.read_bytes() if self.path.exists() else None
        try:
            with self.store.transaction() as tx:
                for provider, model in changes.items():
                    tx.set_model_selection(provider, model)
                raise RuntimeError("abandon")
        except RuntimeError:
            pass
        assert (self.path.read_bytes() if self.path.exists() else None) == before

    @rule(provider=providers, model=models)
    def another_process_writes(self, provider: str, model: str) -> None:
        other = open_store(self.path, catalog=self.catalog, actor="other")
        try:
            after = dict(self.truth)
            try:
                self.setter(provider, model)(after)
            except LockedError:
                predicted: type[Exception] | None = LockedError
            else:
                predicted = None
                self.truth = after
            self.run(lambda: other.set_model_selection(provider, model), predicted)
        finally:
            other.close()

    @invariant()
    def store_and_file_agree_with_the_model(self) -> None:
        seen = {p: (s.model_name, s.editable) for p, s in self.store.snapshot.items()}
        assert seen == self.view
        if self.path.exists():
            on_disk = parse_document(self.path.read_bytes(), path=str(self.path))
            assert {p: (s.model_name, s.editable) for p, s in on_disk.items()} == self.truth
            for state in (on_disk, self.store.snapshot):
                content = render_document(state).decode()
                assert self.revisions.setdefault(content, revision_of(state)) == revision_of(state)
        content = render_document(self.store.snapshot).decode()
        assert self.revisions.setdefault(content, self.store.snapshot.revision) == \
            self.store.snapshot.revision


StoreAgainstAModel.TestCase.settings = settings(
    max_examples=30, stateful_step_count=15, deadline=None,
    suppress_health_check=[HealthCheck.too_slow])
test_store_against_a_model = StoreAgainstAModel.TestCase


@FAST
@given(st.lists(documents, min_size=1, max_size=4))
def test_the_incremental_codec_renders_and_parses_like_the_plain_functions(
        history: list[dict[str, Selection]]) -> None:
    codec = DocumentCodec()
    for document in history:
        rendered = codec.render(document)
        assert rendered == render_document(document)
        assert codec.parse(rendered, path="f.json") == parse_document(rendered, path="f.json")


def outcome(parse: Any, data: bytes) -> tuple[str, Any]:
    try:
        return "ok", parse(data, path="f.json")
    except ConfigurationError as error:
        return "error", str(error)


@FAST
@given(documents, documents, st.data())
def test_the_incremental_codec_agrees_on_hand_edited_files(
        first: dict[str, Selection], second: dict[str, Selection], data: st.DataObject) -> None:
    codec = DocumentCodec()
    codec.parse(codec.render(first), path="f.json")   # it remembers the first document
    # Editing the remembered document exercises reuse; editing another, the fallbacks.
    base = first if data.draw(st.booleans()) else {**first, **second}
    text = render_document(base).decode("utf-8")
    start = data.draw(st.integers(0, len(text)))
    end = data.draw(st.integers(start, min(len(text), start + 12)))
    insert = data.draw(st.sampled_from(["", "\n  },", "}", '"', ",", " ", "\n", "x", "\\u0000"]))
    edited = (text[:start] + insert + text[end:]).encode("utf-8")
    assert outcome(codec.parse, edited) == outcome(parse_document, edited)
