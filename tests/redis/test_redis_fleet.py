"""Ten real reader processes on one Redis server: the fleet in Redis, judged by its clock."""

from __future__ import annotations

import json
import re
import socket
import subprocess
import sys
from typing import Any

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


def modelboard(url: str, *args: str) -> subprocess.CompletedProcess[str]:
    """The real command on the store at ``url``."""
    return subprocess.run([sys.executable, "-m", "modelboard.core.cli", "--file", url, *args],
                          capture_output=True, text=True, timeout=60, check=False)


def fleet_json(url: str) -> tuple[int, dict[str, Any]]:
    done = modelboard(url, "fleet", "--json")
    assert done.returncode in (0, 1) and "Traceback" not in done.stderr, done
    return done.returncode, json.loads(done.stdout)


def fleet_statuses(data: dict[str, Any]) -> dict[str, str]:
    return {r["report"]["name"]: r["status"] for r in data["readers"] if r["report"]}


def test_the_command_line_on_redis_with_a_stopped_reader(redis_url: str) -> None:
    """``fleet --json`` and ``set --wait`` as real processes, readers SIGSTOPped and resumed.

    A stopped reader still within its three heartbeats is live and behind: both fail,
    naming it. Once stale it is listed as such, and neither the check nor the wait counts
    it (README, Fleet). After SIGCONT it catches up and both pass with it counted again.
    """
    writer = open_store(redis_url, actor="deployer")
    writer.set_model_selection("openai", "gpt-4o")
    slow_beat = 4.0  # stale after 12 s: time for two commands while it is stopped but live
    with reader_processes(redis_url, ["proxy-0", "proxy-1"]), \
            reader_processes(redis_url, ["proxy-slow"],
                             env={"MODELBOARD_HEARTBEAT_S": str(slow_beat)}) as [slow]:
        code, data = wait_until(lambda: fleet_json(redis_url), lambda run: fleet_statuses(
            run[1]) == dict.fromkeys(["proxy-0", "proxy-1", "proxy-slow"], "current"))
        assert code == 0 and data["all_current"] is True
        assert data["summary"] == "3 readers: 3 current"

        # Stopped just after a heartbeat, so that it stays live through the next commands.
        fleet = Fleet(writer)

        def sequence() -> int:
            (seen,) = [r for r in fleet.readers() if r.report and r.report.pid == slow.pid]
            assert seen.report is not None
            return seen.report.sequence
        first = sequence()
        wait_until(sequence, lambda now: now != first, timeout=3 * slow_beat,
                   what="the slow reader's heartbeat")
        slow.pause()
        done = modelboard(redis_url, "set", "openai", "gpt-4.1", "--wait=1")
        assert done.returncode == 1, done
        assert re.fullmatch(rf"modelboard: 2 of 3 after 1 s; proxy-slow "
                            rf"\({re.escape(socket.gethostname())}, pid {slow.pid}\) still on "
                            r"[0-9a-f]{6}…\n", done.stderr), done.stderr
        code, data = fleet_json(redis_url)
        assert code == 1 and data["all_current"] is False
        assert fleet_statuses(data) == {"proxy-0": "current", "proxy-1": "current",
                                        "proxy-slow": "behind"}

        # Three heartbeats missed: stale, listed, and no longer what the check waits on.
        code, data = wait_until(lambda: fleet_json(redis_url),
                                lambda run: fleet_statuses(run[1]).get("proxy-slow") == "stale",
                                timeout=3 * slow_beat + 15, what="the stopped reader")
        assert code == 0 and data["all_current"] is True
        assert data["summary"] == "3 readers: 2 current, 1 stale"
        (stale,) = [r for r in data["readers"] if r["status"] == "stale"]
        assert stale["report"]["pid"] == slow.pid and stale["age_s"] > 3 * slow_beat
        done = modelboard(redis_url, "set", "openai", "gpt-4o-mini", "--wait=1")
        assert done.returncode == 0, done.stderr
        assert re.search(r"^reached 2 of 2 readers in \d+ ms$", done.stdout, re.M), done.stdout

        # SIGCONT: it catches up, and both count it again.
        slow.resume()
        code, data = wait_until(lambda: fleet_json(redis_url), lambda run: run[0] == 0 and run[
            1]["summary"] == "3 readers: 3 current", what="the resumed reader")
        writer.reload()  # the commands wrote since
        assert data["revision"] == writer.snapshot.revision
        done = modelboard(redis_url, "set", "openai", "gpt-4.1", "--wait=5")
        assert done.returncode == 0, done.stderr
        assert re.search(r"^reached 3 of 3 readers in \d+ ms$", done.stdout, re.M), done.stdout


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
