"""Reader processes for the fleet tests: real proxies-to-be that watch a store and report.

Each child opens the store read-only and watching (as a proxy does), under a name, with
a fast heartbeat, and obeys lines on its stdin: ``stop-watching`` (a worker whose watch
died, as after a fork without re-arming), ``close``.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from typing import TypeVar

import pytest

#: Seconds between heartbeats in the tests: stale after three, so about a second.
TEST_HEARTBEAT_S = 0.3

READER = textwrap.dedent("""
    import logging, os, sys  # logging: the core imports it when it first logs, maybe after the drop
    from modelboard.core import open_store
    location, name = sys.argv[1], sys.argv[2]
    if len(sys.argv) > 3:  # drop to an unprivileged user first (Python lives under /root)
        uid = int(sys.argv[3])
        os.setgroups([]); os.setgid(uid); os.setuid(uid)
    store = open_store(location, read_only=True, watch=True, reader_name=name)
    print("ready", flush=True)
    for line in sys.stdin:
        command = line.strip()
        if command == "stop-watching":
            store.stop_watching()
        elif command == "close":
            store.close()
        print("done", command, flush=True)
""")

T = TypeVar("T")


def require_root(why: str) -> None:
    """Skip unless root (fail instead under CI, which runs as root)."""
    if os.geteuid() != 0:
        if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
            pytest.fail(f"needs root: {why}")
        pytest.skip(f"needs root: {why}")


class ReaderProcess:
    """One reader child; ``pause``/``resume``/``kill`` send it real signals."""

    def __init__(self, location: str, name: str, *, uid: int | None = None,
                 env: Mapping[str, str] | None = None) -> None:
        self.name = name
        environment = {**os.environ, "MODELBOARD_HEARTBEAT_S": str(TEST_HEARTBEAT_S)}
        environment.pop("MODELBOARD_READERS_DIR", None)  # only where a test gives one
        environment.update(env or {})
        args = [sys.executable, "-c", READER, location, name]
        if uid is not None:
            args.append(str(uid))
        self.process = subprocess.Popen(args, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                        stderr=subprocess.PIPE, text=True, env=environment,
                                        cwd="/")
        self.pid = self.process.pid

    def wait_ready(self) -> None:
        assert self.process.stdout is not None
        line = self.process.stdout.readline()
        if line.strip() != "ready":
            raise AssertionError(f"{self.name} did not start: "
                                 f"{self.process.stderr.read() if self.process.stderr else ''}")

    def send(self, command: str) -> None:
        assert self.process.stdin is not None and self.process.stdout is not None
        self.process.stdin.write(command + "\n")
        self.process.stdin.flush()
        assert self.process.stdout.readline().strip() == f"done {command}"

    def pause(self) -> None:
        os.kill(self.pid, signal.SIGSTOP)

    def resume(self) -> None:
        os.kill(self.pid, signal.SIGCONT)

    def kill(self) -> None:
        os.kill(self.pid, signal.SIGKILL)
        self.process.wait(timeout=10)

    def end(self) -> None:
        if self.process.poll() is None:
            os.kill(self.pid, signal.SIGCONT)
            self.process.kill()
        self.process.wait(timeout=10)
        for stream in (self.process.stdin, self.process.stdout, self.process.stderr):
            if stream is not None:
                stream.close()


@contextmanager
def reader_processes(location: str, names: Iterable[str],
                     **options: object) -> Iterator[list[ReaderProcess]]:
    """Start one reader per name (all at once, then wait for each); end them all after."""
    readers = [ReaderProcess(location, name, **options) for name in names]  # type: ignore[arg-type]
    try:
        for reader in readers:
            reader.wait_ready()
        yield readers
    finally:
        for reader in readers:
            reader.end()


def wait_until(probe: Callable[[], T], done: Callable[[T], bool], *,
               timeout: float = 20.0, what: str = "the fleet") -> T:
    """Poll ``probe`` until ``done`` holds for its value; fail with the last value."""
    deadline = time.monotonic() + timeout
    while True:
        value = probe()
        if done(value):
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} did not get there in {timeout:.0f} s: {value!r}")
        time.sleep(0.05)
