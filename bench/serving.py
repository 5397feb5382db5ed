"""Figure 11: what serving costs a proxy, and how fast forked workers follow a change.

``store.model_for(p, default)`` on a 1,000-provider store is timed beside ``models.get(p,
default)`` on ``{provider: model}``, as compiled loops over the providers in random order
(``bench.common.per_read_ns``, as figure 1).

Then a watching store is opened, and 4 workers are forked from it (``multiprocessing``
with the fork start method, as gunicorn ``--preload`` does). Each worker polls
``model_for`` every 0.5 ms and reports the monotonic time (system-wide on Linux) at which
it first serves the new model; a figure is the time from ``set_model_selection``
returning in another store to the last of the 4 reports.
"""

from __future__ import annotations

import multiprocessing
import multiprocessing.connection
import tempfile
import time
from pathlib import Path

from bench.common import Figure, median, per_read_ns, percentile

PROVIDERS = 1_000
TARGET_RATIO = 3.0
WORKERS = 4
POLL_S = 0.0005
WAIT_S = 30.0


def _read_cost(quick: bool) -> Figure:
    ours, baseline, how = per_read_ns('store.model_for(p, "x")', 'models.get(p, "x")',
                                      providers=PROVIDERS, quick=quick, seed=10)
    return Figure(
        name=f"11 serving: model_for(p, default), {PROVIDERS:,} providers",
        ours=ours, baseline=baseline, unit="ns/read",
        target=f"ratio <= {TARGET_RATIO:g}", passed=ours <= TARGET_RATIO * baseline,
        note=f"baseline: dict.get(p, default) on {{provider: model}}; {how}")


def _worker(store: object, conn: multiprocessing.connection.Connection) -> None:
    """Wait for each model named on ``conn``; answer the monotonic time it was served."""
    model_for = store.model_for  # type: ignore[attr-defined]
    conn.send("ready")
    while True:
        wanted = conn.recv()
        if wanted is None:
            return
        deadline = time.monotonic() + WAIT_S
        while model_for("openai", "") != wanted and time.monotonic() < deadline:
            time.sleep(POLL_S)
        conn.send(time.monotonic() if model_for("openai", "") == wanted else None)


def _forked_workers(quick: bool) -> Figure:
    from modelboard.core import Catalog, open_store

    samples = 5 if quick else 20
    catalog = Catalog.from_mapping({"openai": None})
    context = multiprocessing.get_context("fork")
    delays: list[float] = []      # from set returning to the last worker serving it
    from_start: list[float] = []  # from set being called
    with tempfile.TemporaryDirectory(prefix="modelboard-bench-") as folder:
        path = Path(folder) / "model_selections.json"
        writer = open_store(path, catalog=catalog, actor="bench@host")
        writer.set_model_selection("openai", "model-0")
        store = open_store(path, catalog=catalog, watch=True)
        pipes, workers = [], []
        for _ in range(WORKERS):
            mine, theirs = context.Pipe()
            worker = context.Process(target=_worker, args=(store, theirs), daemon=True)
            worker.start()
            pipes.append(mine)
            workers.append(worker)
        try:
            for pipe in pipes:
                pipe.recv()
            for index in range(1, samples + 3):  # two warm-up changes
                model = f"model-{index}"
                for pipe in pipes:
                    pipe.send(model)
                started = time.monotonic()
                writer.set_model_selection("openai", model)
                returned = time.monotonic()
                served = [pipe.recv() for pipe in pipes]
                if any(at is None for at in served):
                    raise AssertionError(f"a forked worker never served {model}")
                if index > 2:
                    delays.append(max(served) - returned)
                    from_start.append(max(served) - started)
                time.sleep(0.05)  # let the workers settle between samples
        finally:
            for pipe in pipes:
                pipe.send(None)
            for worker in workers:
                worker.join(timeout=10)
            store.close()
    return Figure(
        name=f"11 serving: set returns -> all {WORKERS} forked workers serve it",
        ours=median(delays) * 1e3, baseline=None, unit="ms (median)",
        note=f"p95 {percentile(delays, 0.95) * 1e3:.1f} ms over {samples} changes (below 0: "
             "served before set returned); from the call of set: median "
             f"{median(from_start) * 1e3:.1f} ms, p95 {percentile(from_start, 0.95) * 1e3:.1f}"
             " ms; workers forked from a watching store (as gunicorn --preload), polling "
             "every 0.5 ms")


def run(quick: bool) -> list[Figure]:
    return [_read_cost(quick), _forked_workers(quick)]
