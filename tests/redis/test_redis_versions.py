"""Revisions and rollback on the Redis backend, against a real redis-server: the same
numbers as on the file (1, 2, 3 …), whole documents of old revisions, one-write rollback."""

from __future__ import annotations

import pytest

from modelboard.core import ConflictError, open_store


def test_revisions_are_numbered_and_rolled_back_to_in_one_write(redis_url: str) -> None:
    store = open_store(redis_url, actor="alice@ops")
    store.bulk_set_model_selections({"openai": "gpt-4o", "anthropic": "claude-3-opus"},
                                    reason="launch")
    store.set_model_selection("openai", "gpt-4.1")
    store.lock("anthropic", reason="pinned")
    store.set_model_selection("mistral", "mistral-large-latest")

    revisions = store.revisions()
    assert [r.number for r in revisions] == [4, 3, 2, 1]
    assert revisions[-1].reason == "launch"
    assert store.document_at(2).keys() == {"openai", "anthropic"}
    assert store.document_at(2)["openai"].model_name == "gpt-4.1"

    kept = store.rollback(1, reason="back to launch")
    assert kept.kept_locked == ("anthropic",) and kept.number == 5
    assert store.snapshot.models() == {"openai": "gpt-4o", "anthropic": "claude-3-opus"}
    everything = store.rollback(2, include_locked=True)
    assert everything.kept_locked == ()
    fresh = open_store(redis_url)
    assert fresh.snapshot.models() == {"openai": "gpt-4.1", "anthropic": "claude-3-opus"}
    assert fresh.get_model_selection("anthropic").editable
    newest = fresh.revisions(limit=2)
    assert [(r.number, r.reason) for r in newest] == [
        (6, "rollback to 2"), (5, "rollback to 1: back to launch")]
    # Rolling back to 4 (the state before both rollbacks) restores the lock too.
    fresh.rollback(4, include_locked=True)
    assert fresh.get_model_selection("anthropic").lock_reason == "pinned"
    assert fresh.snapshot.models() == {"openai": "gpt-4.1", "anthropic": "claude-3-opus",
                                       "mistral": "mistral-large-latest"}


def test_a_conflict_during_a_redis_rollback_writes_nothing(redis_url: str) -> None:
    store = open_store(redis_url)
    store.set_model_selection("openai", "gpt-4o")
    store.set_model_selection("openai", "gpt-4.1")
    open_store(redis_url, actor="bob@ops").set_model_selection("openai", "o3")
    with pytest.raises(ConflictError):
        store.rollback(1)
    assert open_store(redis_url).snapshot.models() == {"openai": "o3"}
    assert [r.number for r in store.revisions()] == [3, 2, 1]
