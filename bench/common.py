"""What every benchmark module returns, and small timing helpers shared by them.

Each module in ``bench/`` exposes ``run(quick: bool) -> list[Figure]``; ``bench/run.py``
collects them into one table. A figure is always ours beside a baseline measured in
the same run, because this machine is shared and absolute times drift.
"""

from __future__ import annotations

import fcntl
import os
import statistics
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from modelboard.core import Catalog


@dataclass(frozen=True)
class Figure:
    """One row of the results table.

    ``target`` is human-readable (``"ratio <= 3"``, ``"p95 < 50 ms"``); ``passed`` is
    None when a figure is reported without a target.
    """

    name: str
    ours: float
    baseline: float | None
    unit: str
    target: str = ""
    passed: bool | None = None
    note: str = ""

    @property
    def ratio(self) -> float | None:
        if self.baseline in (None, 0):
            return None
        return self.ours / self.baseline  # type: ignore[operator]

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "ratio": self.ratio}


def percentile(values: list[float], fraction: float) -> float:
    """The value below which ``fraction`` of ``values`` fall (nearest rank)."""
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(fraction * len(ordered)) - 1))
    return ordered[index]


def median(values: list[float]) -> float:
    return statistics.median(values)


def time_per_call(function: Callable[[], object], *, repeat: int = 7,
                  number: int = 10_000) -> float:
    """Best-of-``repeat`` seconds per call of ``function`` over ``number`` calls."""
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        for _ in range(number):
            function()
        best = min(best, (time.perf_counter() - start) / number)
    return best


# -- fixtures shared by the figures ------------------------------------------------------------

#: Models the sample providers choose from (names as long as real ones).
_SAMPLE_MODELS = ("gpt-4o-mini", "claude-sonnet-4-5", "gemini-2.5-flash", "mistral-large-latest",
                  "llama-3.3-70b-instruct", "qwen2.5-coder-32b-instruct", "o4-mini")


def provider_names(count: int) -> list[str]:
    return [f"provider-{index:05d}" for index in range(count)]


def sample_document(count: int) -> bytes:
    """A selections file of ``count`` providers as modelboard writes it.

    Every entry carries what a real one does (time, actor), one in ten is locked with a
    reason, so parsing and rendering do their full work.
    """
    from modelboard.core import Selection
    from modelboard.core.fileformat import render_document

    stamp = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    selections = {}
    for index, provider in enumerate(provider_names(count)):
        locked = index % 10 == 0
        selections[provider] = Selection(
            model_name=_SAMPLE_MODELS[index % len(_SAMPLE_MODELS)], editable=not locked,
            last_updated=stamp, updated_by=f"ops{index % 5}@bastion",
            lock_reason="pinned for the evaluation" if locked else None)
    return render_document(selections)


def any_model_catalog(count: int) -> Catalog:
    """A catalog knowing the sample providers, each accepting any model name."""
    from modelboard.core import Catalog

    return Catalog.from_mapping(dict.fromkeys(provider_names(count)))


def writable_providers(count: int) -> list[str]:
    """Sample providers that are not locked (the ones a write may change)."""
    return [name for index, name in enumerate(provider_names(count)) if index % 10 != 0]


def fsync_folder(folder: str) -> None:
    fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


#: A history line as long as the store's (time, actor, provider, old, new, revision).
RAW_HISTORY_LINE = (b'{"action": "set", "actor": "bench@host", "new": "bench-model-0", '
                    b'"old": "gpt-4o-mini", "provider": "provider-00001", '
                    b'"revision": "0123456789abcdef", "time": "2026-01-02T03:04:05+00:00"}\n')


def raw_atomic_write(path: str, data: bytes, *, history: bytes | None = RAW_HISTORY_LINE) -> None:
    """The physical floor of a safe write, with the same guarantees the store gives.

    ``flock`` on ``path.lock`` (the primitive the store takes, not filelock, whose
    bookkeeping the store does not pay), a temp file written and fsynced, ``os.replace``,
    the folder fsynced, and one history line appended and fsynced (what makes an
    acknowledged change auditable). Written here on purpose rather than borrowed from the
    core, so the baseline cannot inherit the core's overheads.
    """
    folder = os.path.dirname(path)
    lock = os.open(path + ".lock", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
    try:
        fcntl.flock(lock, fcntl.LOCK_EX)
        fd, temp_path = tempfile.mkstemp(dir=folder, prefix=".raw.", suffix=".tmp")
        try:
            os.write(fd, data)
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(temp_path, path)
        fsync_folder(folder)
        if history is not None:
            log = os.open(path + ".history", os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
            try:
                os.write(log, history)
                os.fsync(log)
            finally:
                os.close(log)
    finally:
        os.close(lock)  # closing the descriptor releases the flock


def subprocess_env() -> dict[str, str]:
    """The environment for helper processes: the repository importable, no user file."""
    env = dict(os.environ)
    env.pop("MODELBOARD_FILE", None)
    env["PYTHONPATH"] = os.pathsep.join(
        filter(None, [str(REPOSITORY), env.get("PYTHONPATH", "")]))
    return env


REPOSITORY = Path(__file__).resolve().parent.parent


def per_read_ns(statement: str, baseline: str, *, providers: int, quick: bool,
                seed: int) -> tuple[float, float, str]:
    """ns per read of ``statement`` and of ``baseline``, each run for every provider.

    Both run against the same read-only store of ``providers`` sample providers (names
    in the namespace: ``store``, ``models`` {provider: model}, ``selections``
    {provider: Selection}, ``p``), in a shuffled order, best of several rounds, timed
    alternately so that both see the same machine. Also returns how it was measured.
    """
    import random
    import tempfile
    import timeit

    from modelboard.core import open_store

    rounds, loops = (5, 50 if providers <= 1_000 else 1) if quick else \
        (15, 200 if providers <= 1_000 else 3)
    with tempfile.TemporaryDirectory(prefix="modelboard-bench-") as folder:
        path = Path(folder) / "model_selections.json"
        path.write_bytes(sample_document(providers))
        store = open_store(path, catalog=any_model_catalog(providers), read_only=True)
        selections = store.get_all_selections()
        models = {provider: selection.model_name for provider, selection in selections.items()}
        order = provider_names(providers)
        random.Random(seed).shuffle(order)
        namespace = {"store": store, "models": models, "selections": selections,
                     "order": order}
        ours_timer = timeit.Timer(f"for p in order: {statement}", globals=namespace)
        baseline_timer = timeit.Timer(f"for p in order: {baseline}", globals=namespace)
        ours = base = float("inf")
        for _ in range(rounds):
            ours = min(ours, ours_timer.timeit(loops))
            base = min(base, baseline_timer.timeit(loops))
        store.close()
    per_read = 1e9 / (loops * providers)
    return ours * per_read, base * per_read, \
        f"best of {rounds} rounds of {loops} x {providers:,} reads"
