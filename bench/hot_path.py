"""Figure 1: the proxy's read on every request, against a plain dict lookup.

``store.get_model_selection(p).model_name`` on a 100,000-provider store is timed beside
``selections.get(p).model_name`` on a plain ``{provider: Selection}`` dict (the same
lookup and attribute, nothing else), over the providers in random order. Both are timed
as compiled loops (timeit, see ``bench.common.per_read_ns``) so no lambda call inflates
either side; the best of several rounds is kept, rounds alternating between the two.
"""

from __future__ import annotations

from bench.common import Figure, per_read_ns

PROVIDERS = 100_000
TARGET_RATIO = 2.0


def run(quick: bool) -> list[Figure]:
    ours, baseline, how = per_read_ns("store.get_model_selection(p).model_name",
                                      "selections.get(p).model_name",
                                      providers=PROVIDERS, quick=quick, seed=6)
    return [Figure(
        name=f"1 hot path: get_model_selection(p).model_name, {PROVIDERS:,} providers",
        ours=ours, baseline=baseline, unit="ns/read",
        target=f"ratio <= {TARGET_RATIO:g}", passed=ours <= TARGET_RATIO * baseline,
        note=f"baseline: dict.get + attribute on {{provider: Selection}}; {how}")]
