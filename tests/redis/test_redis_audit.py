"""The history hash chain on Redis: every stream entry carries the hash of the one before,
appended with the write; ``audit verify`` names the first broken link in a real stream."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable

import pytest
import redis
from redis_server import RedisServer

from modelboard.core import open_store
from modelboard.core.history import seal, seal_of

CLI = [sys.executable, "-m", "modelboard.core.cli"]


def five_revisions(url: str) -> None:
    store = open_store(url, actor="alice@ops")
    store.set_model_selection("openai", "gpt-4o", reason="launch")
    store.set_model_selection("anthropic", "claude-sonnet-4-5")
    store.set_model_selection("openai", "gpt-4.1")
    store.lock("anthropic", reason="eval")
    store.set_model_selection("mistral", "codestral-latest")


def entries(client: redis.Redis, key: str) -> list[bytes]:
    return [fields[b"entry"] for _id, fields in client.xrange(f"{key}:history")]


def rewrite(client: redis.Redis, key: str, values: list[bytes]) -> None:
    """The stream replaced by ``values``, in order (a stream cannot be edited in place)."""
    with client.pipeline() as pipe:
        pipe.delete(f"{key}:history")
        for index, value in enumerate(values, start=1):
            pipe.xadd(f"{key}:history", {"entry": value}, id=f"1-{index}")
        pipe.execute()


def edited(values: list[bytes]) -> list[bytes]:
    values[2] = values[2].replace(b'"gpt-4.1"', b'"gpt-9"')
    return values


def inserted(values: list[bytes]) -> list[bytes]:
    return [*values[:2], values[1], *values[2:]]


def swapped(values: list[bytes]) -> list[bytes]:
    values[2], values[3] = values[3], values[2]
    return values


def verify(url: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*CLI, "--file", url, "audit", "verify"], capture_output=True,
                          text=True, timeout=60, check=False,
                          env={**os.environ, "NO_COLOR": "1"})


def test_every_entry_is_chained_and_verify_counts_the_revisions(redis_url: str,
                                                                redis_server: RedisServer,
                                                                redis_key: str) -> None:
    five_revisions(redis_url)
    records = [json.loads(value) for value in entries(redis_server.client(), redis_key)]
    assert records[0]["prev"].startswith("genesis:")
    assert [r["prev"] for r in records[1:]] == [r["hash"] for r in records[:-1]]
    assert [r["rev"] for r in records] == [1, 2, 3, 4, 5]
    done = verify(redis_url)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "5 revisions verified (5 lines in 1 file): the chain is whole"


@pytest.mark.parametrize(("tamper", "problem"), [
    (edited, "its content does not match its hash"),
    (None, "does not follow the line before it"),  # entry 3 deleted (XDEL)
    (inserted, "does not follow the line before it"),
    (swapped, "does not follow the line before it"),
], ids=["edited", "deleted", "inserted", "swapped"])
def test_a_tampered_stream_fails_verify_at_the_first_broken_entry(
        redis_url: str, redis_server: RedisServer, redis_key: str,
        tamper: Callable[[list[bytes]], list[bytes]] | None, problem: str) -> None:
    five_revisions(redis_url)
    client = redis_server.client()
    if tamper is None:
        ((third, _fields),) = client.xrange(f"{redis_key}:history", "-", "+")[2:3]
        client.xdel(f"{redis_key}:history", third)
        stream_id = client.xrange(f"{redis_key}:history")[2][0].decode()
    else:
        rewrite(client, redis_key, tamper(entries(client, redis_key)))
        stream_id = "1-3"
    result = open_store(redis_url, read_only=True).backend.verify_history()  # type: ignore[attr-defined]
    assert not result.ok
    assert result.where == (f"{redis_key}:history", 3)
    assert result.problem.startswith(problem)
    assert f"(entry 3, stream id {stream_id})" in result.problem
    done = verify(redis_url)
    assert done.returncode == 1
    assert f"{redis_key}:history line 3: {problem}" in done.stderr
    assert "Traceback" not in done.stderr


def test_deleting_the_first_entry_breaks_the_genesis(redis_url: str, redis_server: RedisServer,
                                                     redis_key: str) -> None:
    five_revisions(redis_url)
    client = redis_server.client()
    ((first, _fields),) = client.xrange(f"{redis_key}:history", count=1)
    client.xdel(f"{redis_key}:history", first)
    result = open_store(redis_url, read_only=True).backend.verify_history()  # type: ignore[attr-defined]
    assert not result.ok and result.where == (f"{redis_key}:history", 1)
    assert "genesis" in result.problem
    assert result.notes == ("1 entries were deleted from the stream",)


def test_a_write_after_an_entry_added_by_hand_chains_onto_it(
        redis_url: str, redis_server: RedisServer, redis_key: str) -> None:
    """The script checks the chain's end: a writer that missed an entry chains onto it
    rather than fork the chain, and verify then blames the hand-made entry."""
    five_revisions(redis_url)
    client = redis_server.client()
    client.xadd(f"{redis_key}:history", {"entry": b'{"action": "set", "note": "by hand"}'})
    open_store(redis_url).set_model_selection("openai", "o3")
    result = open_store(redis_url, read_only=True).backend.verify_history()  # type: ignore[attr-defined]
    assert not result.ok and result.where == (f"{redis_key}:history", 6)
    assert result.problem.startswith("has no hash, though the lines before it are chained")


def test_a_write_after_a_sealed_entry_added_by_hand_chains_onto_its_hash(
        redis_url: str, redis_server: RedisServer, redis_key: str) -> None:
    """The script reads the seal at the end of the stream's last entry, however long the
    entry: a writer that missed a sealed entry chains onto that entry's hash and then
    stores its change (it used to report the change as made and store nothing)."""
    five_revisions(redis_url)
    store = open_store(redis_url, actor="alice@ops")  # believes the chain ends at entry 5
    client = redis_server.client()
    head = seal_of(entries(client, redis_key)[-1])
    assert head is not None
    by_hand = seal({"action": "set", "note": "by hand " + "x" * 2000}, head)
    client.xadd(f"{redis_key}:history", {"entry": by_hand})
    store.set_model_selection("openai", "o3")
    last = json.loads(entries(client, redis_key)[-1])
    assert last["prev"] == seal_of(by_hand) and last["provider"] == "openai"
    assert open_store(redis_url).get_model_selection("openai").model_name == "o3"
    # The chain is whole through the hand-made entry: verify blames that entry, nothing after.
    result = open_store(redis_url, read_only=True).backend.verify_history()  # type: ignore[attr-defined]
    assert not result.ok and result.where == (f"{redis_key}:history", 6)
    assert "revision number" in result.problem


def test_rollbacks_on_redis_keep_the_chain_whole_and_round_trip(redis_url: str) -> None:
    five_revisions(redis_url)
    store = open_store(redis_url, actor="bob@ops")
    first = store.document_at(1)
    done = store.rollback(1, reason="regressed")
    assert done.kept_locked == ("anthropic",) and done.number == 6
    assert store.get_model_selection("openai").model_name == "gpt-4o"
    store.rollback(5, include_locked=True)  # and forward again, lock and all
    assert open_store(redis_url).snapshot.models() == {
        "openai": "gpt-4.1", "anthropic": "claude-sonnet-4-5", "mistral": "codestral-latest"}
    assert open_store(redis_url).get_model_selection("anthropic").lock_reason == "eval"
    assert store.document_at(1) == first  # old revisions still rebuild exactly
    verified = store.backend.verify_history()  # type: ignore[attr-defined]
    assert verified.ok and verified.revisions == 7
