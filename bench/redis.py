"""Figure 9: the Redis backend, beside raw Redis doing the least the same job needs.

- propagation: a write in this process until a subscriber's callback runs in another
  process, on stores of 1,000 and 10,000 providers; the baseline is raw Redis with the
  same processes: an ``HSET`` + ``PUBLISH`` in one ``MULTI`` here, the message received
  there, then one ``HGET`` of the provider; median and p95;
- a write's cost: ``set_model_selection`` on a store of 1,000 and of 10,000 providers in
  Redis against a raw ``HSET`` of one provider and a ``PUBLISH`` in one ``MULTI`` on the
  same server, alternating, medians compared. Both should be flat in the number of
  providers (one field per provider, deltas).

The server is started here (a temp folder, a free loopback port, append-only file
with an fsync per write, as recommended for a store whose writes must survive a
crash) and stopped at the end; no other server is touched.
"""

from __future__ import annotations

import contextlib
import os
import queue
import shutil
import socket
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
from collections.abc import Iterator

from bench.common import (
    Figure,
    any_model_catalog,
    median,
    percentile,
    sample_document,
    subprocess_env,
    writable_providers,
)

SIZES = (1_000, 10_000)
PROPAGATION_TARGET_RATIO = 3.0
WRITE_TARGET_RATIO = 2.0
LINE_TIMEOUT_S = 30.0

_SUBSCRIBER = textwrap.dedent("""
    import sys, time
    from modelboard.core import Catalog, open_store
    count = int(sys.argv[2])  # the sample providers of bench/common.py, any model
    catalog = Catalog.from_mapping(dict.fromkeys(f"provider-{i:05d}" for i in range(count)))
    store = open_store(sys.argv[1], read_only=True, catalog=catalog)
    store.subscribe(lambda event: event.changes and print(time.monotonic(), flush=True))
    store.start_watching()
    print("ready", flush=True)
    sys.stdin.readline()  # until the parent is done
""")

#: The baseline subscriber: raw redis-py, one HGET per message (exits when stdin closes).
_RAW_SUBSCRIBER = textwrap.dedent("""
    import os, sys, threading, time
    import redis
    url, key, channel = sys.argv[1], sys.argv[2], sys.argv[3]
    client = redis.Redis.from_url(url)
    pubsub = client.pubsub()
    pubsub.subscribe(channel)
    pubsub.get_message(timeout=10)  # the subscription's confirmation
    threading.Thread(target=lambda: (sys.stdin.read(), os._exit(0)), daemon=True).start()
    print("ready", flush=True)
    for message in pubsub.listen():
        if message["type"] == "message":
            client.hget(key, "vllm")
            print(time.monotonic(), flush=True)
""")


@contextlib.contextmanager
def _redis_server(folder: str) -> Iterator[int]:
    binary = shutil.which("redis-server")
    if binary is None:
        raise RuntimeError("redis-server is not installed (apt-get install redis-server)")
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = int(probe.getsockname()[1])
    process = subprocess.Popen(
        [binary, "--port", str(port), "--bind", "127.0.0.1", "--dir", folder,
         "--appendonly", "yes", "--appendfsync", "always", "--save", "",
         "--logfile", os.path.join(folder, "redis.log")],
        stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        import redis

        client = redis.Redis(port=port)
        deadline = time.monotonic() + 10
        while True:
            try:
                client.ping()
                break
            except redis.ConnectionError:
                if time.monotonic() > deadline or process.poll() is not None:
                    raise RuntimeError("redis-server did not start") from None
                time.sleep(0.02)
        client.close()
        yield port
    finally:
        process.terminate()
        process.wait(timeout=10)


class _Subscriber:
    """A process that prints the monotonic time whenever its store reports a change."""

    def __init__(self, *arguments: str, script: str = _SUBSCRIBER) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-c", script, *arguments], stdin=subprocess.PIPE,
            stdout=subprocess.PIPE, text=True, env=subprocess_env())
        self.lines: queue.Queue[str] = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()
        if self.next_line() != "ready":
            raise RuntimeError("the subscriber did not start")

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.lines.put(line.strip())

    def next_line(self) -> str:
        try:
            return self.lines.get(timeout=LINE_TIMEOUT_S)
        except queue.Empty:
            raise RuntimeError("the subscriber saw no change in time") from None

    def close(self) -> None:
        assert self.process.stdin is not None
        with contextlib.suppress(OSError):
            self.process.stdin.close()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()


def _fill(url: str, key: str, count: int) -> None:
    """A store of ``count`` sample providers under ``key``, written as modelboard does."""
    import redis

    from modelboard.core.fileformat import parse_document
    from modelboard.core.redisbackend import entry_value

    client = redis.Redis.from_url(url.split("?")[0])
    selections = parse_document(sample_document(count), path="sample")
    fields = {provider: entry_value(selection) for provider, selection in selections.items()}
    with client.pipeline(transaction=True) as pipe:
        pipe.hset(f"{key}:selections", mapping=fields)  # type: ignore[arg-type]
        pipe.hset(f"{key}:backup", mapping=fields)  # type: ignore[arg-type]
        pipe.execute()
    client.close()


def _propagation(url: str, key: str, count: int,
                 samples: int) -> tuple[list[float], list[float]]:
    """Seconds from the start of a write here to the callback in another process, ours
    and raw alternating (the machine's load drifts): the store's ``set_model_selection``
    to a watching store's subscriber; a raw HSET + PUBLISH in one MULTI to a raw
    subscriber's HGET after the message, on a hash of as many providers."""
    import redis

    from modelboard.core import open_store

    _fill(url, key, count)
    _fill(url, f"{key}-raw", count)
    location = f"{url}?key={key}"
    catalog = any_model_catalog(count)
    store = open_store(location, actor="bench@host", catalog=catalog)
    client = redis.Redis.from_url(url)
    raw_hash, raw_channel = f"{key}-raw:selections", f"{key}-raw:changes"
    ours = _Subscriber(location, str(count))
    raw = _Subscriber(url, raw_hash, raw_channel, script=_RAW_SUBSCRIBER)
    provider = writable_providers(count)[0]
    delays: tuple[list[float], list[float]] = ([], [])
    try:
        for index in range(samples + 2):  # two warm-up writes
            start = time.monotonic()
            store.set_model_selection(provider, f"bench-model-{index}")
            seen = float(ours.next_line())
            raw_start = time.monotonic()
            with client.pipeline(transaction=True) as pipe:
                pipe.hset(raw_hash, "vllm", f"bench-model-{index}")
                pipe.publish(raw_channel, "vllm")
                pipe.execute()
            raw_seen = float(raw.next_line())
            if index >= 2:
                delays[0].append(seen - start)
                delays[1].append(raw_seen - raw_start)
    finally:
        ours.close()
        raw.close()
        store.close()
        client.close()
    return delays


def _write_costs(url: str, writes: int) -> dict[object, list[float]]:
    """Seconds per write: ``set_model_selection`` on a store of each size, and the raw
    HSET + PUBLISH in one MULTI on a hash as large, interleaved write by write (the
    machine's load drifts; interleaving makes the sizes comparable with each other)."""
    import redis

    from modelboard.core import open_store

    client = redis.Redis.from_url(url)
    stores = {}
    for count in SIZES:
        _fill(url, f"writes-{count}", count)
        _fill(url, f"writes-{count}-raw", count)
        stores[count] = open_store(f"{url}?key=writes-{count}",
                                   catalog=any_model_catalog(count), actor="bench@host")
    providers = writable_providers(min(SIZES))
    times: dict[object, list[float]] = {key: [] for count in SIZES
                                        for key in (count, ("raw", count))}
    warmup = 3
    for index in range(warmup + writes):
        provider, model = providers[index % len(providers)], f"bench-model-{index}"
        for count, store in stores.items():
            start = time.perf_counter()
            store.set_model_selection(provider, model)
            elapsed = time.perf_counter() - start
            raw_start = time.perf_counter()
            with client.pipeline(transaction=True) as pipe:
                pipe.hset(f"writes-{count}-raw:selections", provider, model)
                pipe.publish(f"writes-{count}-raw:changes", provider)
                pipe.execute()
            raw_elapsed = time.perf_counter() - raw_start
            if index >= warmup:
                times[count].append(elapsed)
                times[("raw", count)].append(raw_elapsed)
    for store in stores.values():
        store.close()
    client.close()
    return times


def run(quick: bool) -> list[Figure]:
    samples = 20 if quick else 100
    writes = 30 if quick else 150
    with tempfile.TemporaryDirectory(prefix="modelboard-bench-") as folder, \
            _redis_server(folder) as port:
        url = f"redis://127.0.0.1:{port}/0"
        propagation = {count: _propagation(url, f"propagation-{count}", count, samples)
                       for count in SIZES}
        costs = _write_costs(url, writes)

    figures = []
    for count, (through_redis, through_raw) in propagation.items():
        redis_ms = [delay * 1e3 for delay in through_redis]
        raw_ms = [delay * 1e3 for delay in through_raw]
        for what, pick in (("median", median),
                           ("p95", lambda values: percentile(values, 0.95))):
            ours_ms, base_ms = pick(redis_ms), pick(raw_ms)
            figures.append(Figure(
                name=f"9 redis: propagation to another process, {count:,} providers ({what})",
                ours=ours_ms, baseline=base_ms, unit="ms",
                target=f"ratio <= {PROPAGATION_TARGET_RATIO:g}",
                passed=ours_ms <= PROPAGATION_TARGET_RATIO * base_ms,
                note=f"{samples} writes; ours: set_model_selection until the subscriber's "
                     "callback (the delta applied, no read); baseline: raw HSET + PUBLISH in "
                     "one MULTI -> message -> HGET, same processes"))
    for count in SIZES:
        ours, raw = costs[count], costs[("raw", count)]
        ours_ms, raw_ms = median(ours) * 1e3, median(raw) * 1e3
        figures.append(Figure(
            name=f"9 redis: set_model_selection, {count:,} providers",
            ours=ours_ms, baseline=raw_ms, unit="ms (median)",
            target=f"ratio <= {WRITE_TARGET_RATIO:g}",
            passed=ours_ms <= WRITE_TARGET_RATIO * raw_ms,
            note=f"p95 {percentile(ours, 0.95) * 1e3:.2f} ms vs "
                 f"{percentile(raw, 0.95) * 1e3:.2f} ms; {writes} writes; baseline: raw HSET "
                 "of one provider + PUBLISH in one MULTI on a hash as large, same server "
                 "(appendfsync always), interleaved"))
    small, large = min(SIZES), max(SIZES)
    for what, unit, values in (
            ("set_model_selection", "ms (median)", (costs[large], costs[small])),
            ("propagation", "ms (median)", (propagation[large][0], propagation[small][0]))):
        figures.append(Figure(
            name=f"9 redis: {what}, {large:,} vs {small:,} providers (flat in N)",
            ours=median(values[0]) * 1e3, baseline=median(values[1]) * 1e3, unit=unit,
            note="ours at the larger size against ours at the smaller, same run: near 1 "
                 "when the cost does not grow with the number of providers"))
    return figures
