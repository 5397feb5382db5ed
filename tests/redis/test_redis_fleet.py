"""Ten real reader processes on one Redis server: the fleet in Redis, judged by its clock."""

from __future__ import annotations

import pytest
from fleet_readers import TEST_HEARTBEAT_S, reader_processes, wait_until
from redis_server import RedisServer

from modelboard.core import open_store
from modelboard.core.fleet import DEAD_AFTER_S, Fleet, Reader, summary

pytestmark = pytest.mark.slow


def statuses(readers: list[Reader]) -> dict[str, str]:
    return {r.report.name if r.report else r.key: r.status for r in readers}


def test_ten_readers_on_one_redis(redis_server: RedisServer, redis_url: str,
                                  redis_key: str) -> None:
    writer = open_store(redis_url, actor="deployer")
    writer.set_model_selection("openai", "gpt-4o")
    client = writer.backend.client  # type: ignore[attr-defined]
    # One reader logs in as a Redis user of its own, which later loses the right to read
    # the selections (only its report key stays writable): its load fails.
    user = f"reader-{redis_key}"
    client.execute_command("ACL", "SETUSER", user, "on", ">secret", "~*", "&*", "+@all")
    limited_url = redis_server.url(redis_key).replace("redis://", f"redis://{user}:secret@", 1)
    names = [f"proxy-{n}" for n in range(9)]
    everyone = [*names, "proxy-acl"]
    with reader_processes(redis_url, names) as readers, \
            reader_processes(limited_url, ["proxy-acl"]):
        fleet = Fleet(writer)
        seen = wait_until(fleet.readers, lambda rs: statuses(rs) == dict.fromkeys(
            everyone, "current"))
        assert summary(seen) == "10 readers: 10 current"
        keys = sorted(k.decode() for k in client.scan_iter(match=f"{redis_key}:reader:*"))
        assert len(keys) == 10
        assert all(0 < client.ttl(key) <= DEAD_AFTER_S for key in keys)  # dead hosts expire

        writer.set_model_selection("openai", "gpt-4.1")
        waited = fleet.wait_for(writer.snapshot.revision, timeout_s=10)
        assert waited.reached and (waited.count, waited.total) == (10, 10)

        stopped, killed, deaf = readers[1], readers[2], readers[3]
        stopped.pause()
        killed.kill()
        deaf.send("stop-watching")
        # It loses the selections and the change channel: a watcher that still heard the
        # channel would serve the new revision from the delta alone, reading nothing.
        client.execute_command("ACL", "SETUSER", user, "resetkeys", f"~{redis_key}:reader:*",
                               "resetchannels")
        writer.set_model_selection("openai", "gpt-4o-mini")
        expected = {**dict.fromkeys(everyone, "current"), stopped.name: "stale",
                    killed.name: "stale", deaf.name: "behind", "proxy-acl": "error"}
        seen = wait_until(fleet.readers, lambda rs: statuses(rs) == expected,
                          timeout=3 * TEST_HEARTBEAT_S + 15)
        assert summary(seen) == "10 readers: 6 current, 1 behind, 2 stale, 1 error"
        (refused,) = [r for r in seen if r.status == "error"]
        assert "NOPERM" in refused.describe() or "permission" in refused.describe()
        waited = fleet.wait_for(writer.snapshot.revision, timeout_s=1)
        assert not waited.reached and (waited.count, waited.total) == (6, 8)
        assert sorted(r.report.name for r in waited.laggards if r.report) == [
            deaf.name, "proxy-acl"]

        stopped.resume()
        wait_until(fleet.readers, lambda rs: statuses(rs).get(stopped.name) == "current")

        # A killed reader's key expires by itself; an hour is simulated by its TTL.
        (key,) = [r.key for r in fleet.readers() if r.report and r.report.pid == killed.pid]
        client.pexpire(key, 1)
        wait_until(fleet.readers, lambda rs: killed.name not in statuses(rs))

        readers[0].send("close")
        wait_until(fleet.readers, lambda rs: readers[0].name not in statuses(rs))


def test_a_foreign_entry_under_the_prefix_is_unreadable(redis_url: str, redis_key: str) -> None:
    store = open_store(redis_url)
    store.set_model_selection("openai", "gpt-4o")
    client = store.backend.client  # type: ignore[attr-defined]
    client.set(f"{redis_key}:reader:intruder", b'{"format": "something else"}', ex=60)
    (seen,) = Fleet(store).readers()
    assert (seen.status, seen.problem) == ("unreadable", "not a modelboard reader report")


def test_a_prefix_with_glob_characters_sees_its_own_readers(redis_server: RedisServer,
                                                            redis_key: str) -> None:
    odd = redis_server.url(f"{redis_key}[x]")
    neighbour = redis_server.url(f"{redis_key}x")  # what an unescaped [x] would match
    open_store(odd).set_model_selection("openai", "gpt-4o")
    open_store(neighbour).set_model_selection("openai", "gpt-4o")
    ours = open_store(odd, watch=True, reader_name="ours")
    theirs = open_store(neighbour, watch=True, reader_name="theirs")
    try:
        seen = wait_until(ours.readers, lambda rs: len(rs) >= 1)
        assert [r.report.name for r in seen if r.report] == ["ours"]
    finally:
        ours.close()
        theirs.close()
