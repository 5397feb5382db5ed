"""migrate(): selections and history copied between a file and Redis, either way."""

from __future__ import annotations

from pathlib import Path

import pytest
from redis_server import RedisServer

from modelboard.core import ConfigurationError, open_store, redisbackend
from modelboard.core.migrate import migrate


def fill_file(path: Path) -> None:
    store = open_store(path, actor="alice@ops")
    store.set_model_selection("openai", "gpt-4o")
    store.set_model_selection("openai", "gpt-5")
    store.set_model_selection("anthropic", "claude-sonnet-4-5", actor="bob@ops")
    store.lock("anthropic", reason="launch week")
    store.set_model_selection("vllm", "qwen3-coder-ünïcode")


def test_file_to_redis_to_file_keeps_state_and_history(tmp_path: Path, redis_url: str) -> None:
    original = tmp_path / "before" / "model_selections.json"
    fill_file(original)
    before = open_store(original)

    summary = migrate(str(original), redis_url)
    in_redis = open_store(redis_url)
    # The content hash is each backend's own (Redis sums one hash per field); the
    # revision numbers and the selections carry over.
    assert summary == (f"copied 3 selections and 5 history entries from {original} to "
                       f"{redis_url} (revision {in_redis.snapshot.revision})")
    assert dict(in_redis.snapshot) == dict(before.snapshot)
    assert [r.number for r in in_redis.revisions()] == [r.number for r in before.revisions()]
    assert in_redis.history() == before.history()
    assert in_redis.get_model_selection("anthropic").lock_reason == "launch week"

    back = tmp_path / "after" / "model_selections.json"
    assert migrate(redis_url, str(back)).startswith(f"copied 3 selections and 5 history "
                                                    f"entries from {redis_url} to {back}")
    assert back.read_bytes() == original.read_bytes()
    history_name = "model_selections.history.jsonl"
    assert (back.parent / history_name).read_bytes() == \
        (original.parent / history_name).read_bytes()
    # The migrated store works as usual, and its history goes on.
    after = open_store(back)
    after.set_model_selection("openai", "o3")
    assert [e.new for e in after.history("openai")] == ["o3", "gpt-5", "gpt-4o"]


def test_revisions_made_on_the_file_rebuild_and_roll_back_on_redis(tmp_path: Path,
                                                                  redis_url: str) -> None:
    """Checked with the content hash recorded where each was made (the file's)."""
    original = tmp_path / "before" / "model_selections.json"
    fill_file(original)
    before = open_store(original)
    migrate(str(original), redis_url)
    in_redis = open_store(redis_url)
    assert in_redis.document_at(2) == before.document_at(2)
    in_redis.set_model_selection("mistral", "codestral-latest")
    assert in_redis.document_at(3) == before.document_at(3)
    in_redis.rollback(2, include_locked=True)
    assert dict(in_redis.snapshot).keys() == before.document_at(2).keys()
    assert in_redis.snapshot.models() == {p: s.model_name
                                          for p, s in before.document_at(2).items()}


def test_redis_to_redis_under_another_key(redis_server: RedisServer, redis_url: str) -> None:
    store = open_store(redis_url)
    store.bulk_set_model_selections({"openai": "gpt-4o", "mistral": "codestral-latest"})
    other = redis_server.url("copy-of-" + redis_url.rsplit("=", 1)[1])
    migrate(redis_url, other)
    assert open_store(other).snapshot.models() == store.snapshot.models()
    assert len(open_store(other).history()) == 2


def test_refuses_a_destination_that_holds_anything(tmp_path: Path, redis_url: str,
                                                    redis_server: RedisServer) -> None:
    source = tmp_path / "source.json"
    fill_file(source)
    open_store(redis_url).set_model_selection("openai", "o3")
    client = redis_server.client()
    key = redis_url.rsplit("=", 1)[1]
    before = {k: client.dump(k) for k in client.keys(f"{key}:*")}
    with pytest.raises(ConfigurationError, match="already holds") as caught:
        migrate(str(source), redis_url)
    assert "\n" not in str(caught.value)
    assert {k: client.dump(k) for k in client.keys(f"{key}:*")} == before

    taken = tmp_path / "taken.json"
    taken.write_text('{"openai": "gpt-4"}\n')
    with pytest.raises(ConfigurationError, match="already exists"):
        migrate(redis_url, str(taken))
    assert taken.read_text() == '{"openai": "gpt-4"}\n'
    assert not (tmp_path / "taken.history.jsonl").exists()


def test_refuses_an_empty_or_corrupt_source(tmp_path: Path, redis_url: str,
                                            redis_server: RedisServer) -> None:
    with pytest.raises(ConfigurationError, match="nothing stored here to migrate"):
        migrate(str(tmp_path / "missing.json"), redis_url)
    broken = tmp_path / "broken.json"
    broken.write_text('{"openai": {"model_name": }\n')
    with pytest.raises(ConfigurationError, match=r"broken\.json:1:"):
        migrate(str(broken), redis_url)
    key = redis_url.rsplit("=", 1)[1]
    assert redis_server.client().keys(f"{key}:*") == []
    with pytest.raises(ConfigurationError, match="nothing stored here to migrate"):
        migrate(redis_url, str(tmp_path / "out.json"))
    assert not (tmp_path / "out.json").exists()


def test_refuses_to_copy_onto_itself(tmp_path: Path) -> None:
    source = tmp_path / "model_selections.json"
    fill_file(source)
    content = source.read_bytes()
    with pytest.raises(ConfigurationError, match="same"):
        migrate(str(source), str(tmp_path / "." / "model_selections.json"))
    assert source.read_bytes() == content


def test_history_longer_than_the_redis_limit_says_what_it_left_out(
        tmp_path: Path, redis_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(redisbackend, "HISTORY_LIMIT", 3)
    source = tmp_path / "model_selections.json"
    fill_file(source)  # 5 history entries
    summary = migrate(str(source), redis_url)
    assert "and 3 history entries" in summary
    assert summary.endswith("; the oldest 2 left out (the history keeps 3)")
    assert open_store(redis_url).history() == open_store(source).history()[:3]
