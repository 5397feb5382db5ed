"""A store opened (even watching) before a fork keeps following the file in every child.

Real forks through ``multiprocessing`` with the fork start method: each child is told the
model just written and answers once its own store serves it, or says what it served when
the deadline passed.
"""

from __future__ import annotations

import multiprocessing
import multiprocessing.connection
import time
from pathlib import Path

import pytest

from modelboard.core import Catalog, SelectionStore, open_store

CATALOG = Catalog.from_mapping({"openai": None})
CHILDREN = 4
DEADLINE_S = 10.0


def _serve_until_told(store: SelectionStore, conn: multiprocessing.connection.Connection,
                      start_in_child: bool) -> None:
    """A worker: for each model it is sent, wait until the store serves it; report."""
    if start_in_child:
        store.start_watching()  # what a post-fork hook or a worker's start-up would do
    seen: list[str] = []
    while True:
        wanted = conn.recv()
        if wanted is None:
            conn.send(seen)
            return
        deadline = time.monotonic() + DEADLINE_S
        model = store.model_for("openai", "none")
        while model != wanted and time.monotonic() < deadline:
            if not seen or seen[-1] != model:
                seen.append(model)
            time.sleep(0.002)
            model = store.model_for("openai", "none")
        if not seen or seen[-1] != model:
            seen.append(model)
        conn.send((model, store.watching))


@pytest.mark.parametrize("how", ["watching before the fork", "start_watching in the child"])
def test_every_forked_child_serves_each_new_model_in_order(tmp_path: Path, how: str) -> None:
    path = tmp_path / "model_selections.json"
    writer = open_store(path, catalog=CATALOG, actor="ops@here")
    writer.set_model_selection("openai", "model-0")
    store = open_store(path, catalog=CATALOG, watch=how == "watching before the fork")
    context = multiprocessing.get_context("fork")
    pipes, children = [], []
    for _ in range(CHILDREN):
        parent_end, child_end = context.Pipe()
        child = context.Process(target=_serve_until_told,
                                args=(store, child_end, how == "start_watching in the child"))
        child.start()
        pipes.append(parent_end)
        children.append(child)
    try:
        written = ["model-0"]
        for number in range(1, 6):
            model = f"model-{number}"
            writer.set_model_selection("openai", model)
            written.append(model)
            for pipe in pipes:
                pipe.send(model)
            answers = [pipe.recv() for pipe in pipes]
            assert answers == [(model, True)] * CHILDREN, f"after writing {model}"
        for pipe in pipes:
            pipe.send(None)
        for pipe in pipes:
            seen = pipe.recv()
            assert seen == written[written.index(seen[0]):]   # in order, none skipped back,
            assert set(seen) <= set(written)                 # never one nobody wrote
    finally:
        for child in children:
            child.join(timeout=DEADLINE_S)
            if child.is_alive():
                child.kill()
        store.close()
    assert [child.exitcode for child in children] == [0] * CHILDREN
