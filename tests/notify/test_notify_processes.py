"""Notifiers as real processes: killed with SIGKILL mid-delivery and restarted, and two on
one store electing one deliverer through the store's lock file."""

from __future__ import annotations

import threading
from collections import defaultdict

from notify_support import FAST, Delivery, endpoint, status, wait_for


def _ids_by_rev(deliveries: list[Delivery]) -> dict[int, set[str]]:
    found: dict[int, set[str]] = defaultdict(set)
    for delivery in deliveries:
        found[delivery.rev].add(delivery.id)
    return found


def test_killed_mid_delivery_and_restarted_every_revision_arrives_duplicates_with_one_id(
        tmp_path, data_file, writer, receivers, notifiers):
    arrived = threading.Event()
    hold = threading.Event()

    def answer(_n: int, body: dict[str, object]) -> tuple[int, dict[str, str], float]:
        if body.get("rev") == 3 and not hold.is_set():
            arrived.set()
            return 200, {}, 20.0  # the answer is on its way when the notifier dies
        return 200, {}, 0.0

    receiver = receivers(answer=answer)
    config = tmp_path / "notify.toml"
    config.write_text('start = "oldest"\n' + FAST.replace("timeout = 0.5", "timeout = 30")
                      + endpoint("audit", receiver.url))
    revs = [writer.revision() for _ in range(5)]
    first = notifiers(config)
    wait_for(arrived.is_set, what="revision 3 in flight")
    first.kill()
    hold.set()
    receiver.release.set()  # the answer to the dead notifier goes nowhere
    assert status(data_file, config)["targets"][0]["cursor"] == 2  # 3 was never confirmed
    notifiers(config)
    wait_for(lambda: set(revs) <= set(receiver.taken_revs()), what="every revision")
    delivered = receiver.all()
    assert all(all(d.verified.values()) for d in delivered)
    by_rev = _ids_by_rev(delivered)
    assert sorted(by_rev) == revs
    assert all(len(ids) == 1 for ids in by_rev.values()), by_rev  # a duplicate keeps its id
    assert [d.rev for d in delivered].count(3) == 2  # sent again after the restart
    assert [d.rev for d in delivered] == [1, 2, 3, 3, 4, 5]  # and in order


def test_two_notifiers_on_one_store_deliver_each_revision_once_and_the_survivor_takes_over(
        tmp_path, data_file, writer, receivers, notifiers):
    receiver = receivers()
    config = tmp_path / "notify.toml"
    config.write_text('start = "oldest"\n' + FAST + endpoint("audit", receiver.url))
    one = notifiers(config)
    wait_for(lambda: one.says("delivering the revisions of"), what="the first one elected")
    two = notifiers(config)
    wait_for(lambda: two.says("standing by: "), what="the second one standing by")
    assert f"pid {one.pid} since" in two.output()  # it names who delivers
    revs = [writer.revision() for _ in range(6)]
    wait_for(lambda: receiver.taken_revs() == revs, what="six revisions")
    revs.append(writer.revision())  # one more, after the others: no copy came meanwhile
    wait_for(lambda: receiver.taken_revs() == revs, what="the seventh")
    assert len(receiver.all()) == len(revs)
    assert not two.says("delivering the revisions of")

    # Killed with nothing in flight (the cursor at the newest), so that what comes
    # next shows whether the survivor sends each revision once; a kill mid-delivery
    # is test_killed_mid_delivery_and_restarted_... in test_notify_processes.py.
    wait_for(lambda: status(data_file, config)["targets"][0]["cursor"] == revs[-1],
             what="the cursor at the newest")
    one.kill()
    wait_for(lambda: two.says("delivering the revisions of"), what="the survivor takes over")
    later = [writer.revision() for _ in range(3)]
    wait_for(lambda: receiver.taken_revs() == revs + later, what="revisions after the takeover")
    assert all(all(d.verified.values()) for d in receiver.all())
    assert all(len(ids) == 1 for ids in _ids_by_rev(receiver.all()).values())
    assert f"pid {two.pid} since" in status(data_file, config)["deliverer"]
