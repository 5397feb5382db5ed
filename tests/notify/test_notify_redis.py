"""Notifiers on a Redis store, against a real redis-server: one elected through a lease key
(SET NX PX, renewed, deleted only by its holder), the cursor and the log under the prefix."""

from __future__ import annotations

import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from notify_support import FAST, NotifierProcess, Writer, endpoint, status, wait_for

sys.path.insert(0, str(Path(__file__).parent.parent / "redis"))
from redis_server import RedisServer, redis_server_binary


@pytest.fixture
def redis_store(pytestconfig: pytest.Config, tmp_path: Path) -> Iterator[tuple[RedisServer, str]]:
    server = RedisServer(redis_server_binary(pytestconfig), tmp_path / "redis").start()
    prefix = f"test-{uuid.uuid4().hex[:8]}"
    yield server, prefix
    server.stop()


def test_two_notifiers_on_redis_elect_one_by_lease_and_the_survivor_takes_over(
        tmp_path, redis_store, receivers):
    server, prefix = redis_store
    url = server.url(prefix)
    writer = Writer(url)
    receiver = receivers()
    config = tmp_path / "notify.toml"
    config.write_text('start = "oldest"\n' + FAST + endpoint("audit", receiver.url))
    made: list[NotifierProcess] = []
    try:
        made.append(one := NotifierProcess(url, config, tmp_path / "one.log"))
        wait_for(lambda: one.says("delivering the revisions of"), what="the first elected")
        made.append(two := NotifierProcess(url, config, tmp_path / "two.log"))
        wait_for(lambda: two.says("standing by: "), what="the second standing by")
        client = server.client()
        lease = client.get(f"{prefix}:notify:lease").decode()
        assert f"pid {one.pid} since" in lease
        assert 0 < client.pttl(f"{prefix}:notify:lease") <= 1000  # lease_ms, renewed

        revs = [writer.revision() for _ in range(4)]
        wait_for(lambda: receiver.taken_revs() == revs, what="four revisions")
        revs.append(writer.revision())
        wait_for(lambda: receiver.taken_revs() == revs, what="a fifth, and no copies")
        assert len(receiver.all()) == len(revs)

        # Killed with nothing in flight (the cursor at the newest), so that what comes
        # next shows whether the survivor sends each revision once; a kill mid-delivery
        # is test_killed_mid_delivery_and_restarted_... in test_notify_processes.py.
        wait_for(lambda: status(url, config)["targets"][0]["cursor"] == revs[-1],
                 what="the cursor at the newest")
        one.kill()  # its lease runs out (1 s); the standby takes it
        wait_for(lambda: two.says("delivering the revisions of"), what="the takeover")
        later = [writer.revision() for _ in range(2)]
        wait_for(lambda: receiver.taken_revs() == revs + later, what="after the takeover")
        assert all(all(d.verified.values()) for d in receiver.all())
        state = status(url, config)
        assert state["targets"][0]["cursor"] == later[-1]
        assert state["targets"][0]["backlog"] == 0
        assert f"pid {two.pid} since" in state["deliverer"]
        assert client.llen(f"{prefix}:notify:log") == len(revs + later)
        assert two.stop() == 0  # SIGTERM: the lease is given back at once, not left to expire
        assert client.get(f"{prefix}:notify:lease") is None
    finally:
        for notifier in made:
            notifier.stop()
        writer.store.close()
