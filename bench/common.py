"""What every benchmark module returns, and small timing helpers shared by them.

Each module in ``bench/`` exposes ``run(quick: bool) -> list[Figure]``; ``bench/run.py``
collects them into one table. A figure is always ours beside a baseline measured in
the same run, because this machine is shared and absolute times drift.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any


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


def time_per_call(function: Callable[[], object], *, repeat: int = 7, number: int = 10_000) -> float:
    """Best-of-``repeat`` seconds per call of ``function`` over ``number`` calls."""
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        for _ in range(number):
            function()
        best = min(best, (time.perf_counter() - start) / number)
    return best
