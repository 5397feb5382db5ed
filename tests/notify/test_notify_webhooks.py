"""``modelboard notify`` against real HTTP receivers on loopback, each delivery checked by the
Standard Webhooks reference library (``standardwebhooks``), not by modelboard's own code."""

from __future__ import annotations

import email.utils
import itertools
import json
import time
from pathlib import Path

from notify_support import (
    FAST,
    OLD_SECRET,
    SECRET,
    check_notification,
    endpoint,
    run_cli,
    status,
    target_status,
    wait_for,
)


def test_every_revision_arrives_signed_in_order_with_the_revision_as_body(
        tmp_path, data_file, writer, receivers, notifiers):
    receiver = receivers(secrets=(SECRET, OLD_SECRET))
    config = tmp_path / "notify.toml"
    # Two secrets, as during a rotation: each must verify on its own.
    config.write_text('start = "oldest"\n' + FAST
                      + endpoint("audit", receiver.url, SECRET, OLD_SECRET))
    first = writer.revision(reason="first model")
    notifier = notifiers(config)
    wait_for(lambda: receiver.taken_revs() == [first], what="the first revision")
    writer.store.bulk_set_model_selections({"openai": "gpt-4.1", "anthropic": "claude-opus-4-5"},
                                           reason="launch")
    writer.store.lock("openai", reason="pinned")
    newest = writer.store.revisions(limit=1)[0].number
    wait_for(lambda: receiver.taken_revs() == [first, first + 1, newest],
             what="three revisions in order")

    for delivery in receiver.all():
        assert delivery.verified == {SECRET: True, OLD_SECRET: True}, delivery.headers
        assert len(delivery.headers["webhook-signature"].split(" ")) == 2
        assert delivery.headers["content-type"] == "application/json"
    one, two, three = (d.payload for d in receiver.taken())
    assert one["type"] == "modelboard.revision"
    assert one["store"] == str(data_file)
    assert (one["rev"], one["previous_rev"], one["reason"], one["changed_by"]) == \
        (first, None, "first model", "alice@ops")
    assert one["entries"][0]["provider"] == "ollama" and one["entries"][0]["new"] == "llama-1"
    assert (two["rev"], two["previous_rev"], two["reason"]) == (first + 1, first, "launch")
    # The changes provider by provider, in the words and fields of `modelboard log --json`.
    assert sorted(c["provider"] for c in two["entries"]) == ["anthropic", "openai"]
    assert {c["provider"]: (c["old"], c["new"], c["after"]["model_name"])
            for c in two["entries"]} == {"openai": (None, "gpt-4.1", "gpt-4.1"),
                                         "anthropic": (None, "claude-opus-4-5",
                                                       "claude-opus-4-5")}
    assert three["entries"][0]["action"] == "lock" and three["previous_rev"] == first + 1
    for body in (one, two, three):  # the shape the package's JSON Schema gives it
        check_notification(body)
    logged = json.loads(run_cli(data_file, "log", "--json").stdout)
    for body in (one, two, three):
        same = next(r for r in logged if r["rev"] == body["rev"])
        assert {k: body[k] for k in same} == same  # the body is the log's record, and more
    ids = [d.id for d in receiver.taken()]
    assert len(set(ids)) == 3 and all(i.startswith("msg_") for i in ids)
    assert notifier.says("delivering the revisions of")


def test_a_receiver_answering_500_gets_the_same_id_again_until_it_takes_it(
        tmp_path, writer, receivers, notifiers, data_file):
    receiver = receivers(answer=lambda n, _b: (500 if n <= 3 else 200, {}, 0.0))
    config = tmp_path / "notify.toml"
    config.write_text('start = "oldest"\n' + FAST + endpoint("flaky", receiver.url))
    rev = writer.revision()
    writer.revision()
    notifiers(config)
    wait_for(lambda: receiver.taken_revs() == [rev, rev + 1], what="both revisions taken")
    attempts = receiver.all()
    assert [d.status for d in attempts] == [500, 500, 500, 200, 200]
    # At least once and in order: the first revision, retried with its id, before the next.
    assert [d.rev for d in attempts] == [rev, rev, rev, rev, rev + 1]
    assert len({d.id for d in attempts[:4]}) == 1
    assert all(all(d.verified.values()) for d in attempts)  # re-signed at every attempt
    gaps = [b.at - a.at for a, b in itertools.pairwise(attempts[:4])]
    assert all(gap >= 0.02 for gap in gaps), gaps  # backed off (0.05 s, jittered down to half)
    state = wait_for(lambda: (s := target_status(data_file, config, "flaky"))["cursor"] == rev + 1
                     and s, what="the cursor at the newest revision")
    assert state["backlog"] == 0 and state["last_attempt"]["answer"] == "200 OK"
    lines = [json.loads(line) for line in
             data_file.with_name("model_selections.notify.log.jsonl").read_text().splitlines()]
    assert [(r["rev"], r["attempt"], r["ok"]) for r in lines] == \
        [(rev, 1, False), (rev, 2, False), (rev, 3, False), (rev, 4, True), (rev + 1, 1, True)]
    assert lines[0]["answer"] == "500 Internal Server Error"


def test_a_receiver_that_hangs_past_the_timeout_is_given_up_on_and_tried_again(
        tmp_path, writer, receivers, notifiers):
    receiver = receivers(answer=lambda n, _b: (200, {}, 30.0 if n == 1 else 0.0))
    config = tmp_path / "notify.toml"
    config.write_text('start = "oldest"\n' + FAST + endpoint("slow", receiver.url))
    rev = writer.revision()
    began = time.monotonic()
    notifiers(config)
    wait_for(lambda: len(receiver.taken()) == 2, what="a second attempt after the timeout")
    first, second = receiver.all()[:2]
    assert first.id == second.id and first.rev == second.rev == rev
    assert 0.45 <= second.at - first.at < 5, second.at - first.at  # timeout = 0.5 s
    assert all(all(d.verified.values()) for d in receiver.all())
    assert time.monotonic() - began < 10
    log = (writer.store.backend.target.with_name("model_selections.notify.log.jsonl")  # type: ignore[attr-defined]
           .read_text().splitlines())
    assert json.loads(log[0])["answer"] == "timed out after 0.5 s"


def test_429_with_retry_after_in_seconds_and_as_a_date_is_honoured(
        tmp_path, writer, receivers, notifiers):
    def answer(n: int, _body: object) -> tuple[int, dict[str, str], float]:
        if n == 1:
            return 429, {"Retry-After": "1"}, 0.0
        if n == 3:
            when = email.utils.formatdate(time.time() + 2, usegmt=True)
            return 429, {"Retry-After": when}, 0.0
        return 200, {}, 0.0

    receiver = receivers(answer=answer)
    config = tmp_path / "notify.toml"
    config.write_text('start = "oldest"\n' + FAST + endpoint("busy", receiver.url))
    rev = writer.revision()
    writer.revision()
    notifiers(config)
    wait_for(lambda: receiver.taken_revs() == [rev, rev + 1], timeout=20, what="both taken")
    d = receiver.all()
    # backoff_max is 0.2 s: only Retry-After explains waits this long.
    assert d[1].at - d[0].at >= 0.95, d[1].at - d[0].at
    assert d[3].at - d[2].at >= 1.0, d[3].at - d[2].at  # a date 2 s ahead, to the second
    assert d[0].id == d[1].id and d[2].id == d[3].id != d[0].id
    assert all(all(x.verified.values()) for x in d)


def test_410_gone_disables_that_endpoint_only_and_says_so_once(
        tmp_path, data_file, writer, receivers, notifiers):
    gone = receivers(answer=lambda _n, _b: (410, {}, 0.0))
    fine = receivers()
    config = tmp_path / "notify.toml"
    config.write_text('start = "oldest"\n' + FAST + endpoint("gone", gone.url)
                      + endpoint("fine", fine.url))
    rev = writer.revision()
    notifier = notifiers(config)
    wait_for(lambda: fine.taken_revs() == [rev], what="the healthy endpoint served")
    wait_for(lambda: target_status(data_file, config, "gone")["disabled"], what="disabled")
    writer.revision()
    writer.revision()
    wait_for(lambda: fine.taken_revs() == [rev, rev + 1, rev + 2], what="later revisions")
    assert len(gone.all()) == 1  # never tried again
    assert all(all(d.verified.values()) for d in gone.all() + fine.all())
    assert notifier.output().count("answered 410 Gone: disabled") == 1
    report = status(data_file, config)
    gone_state = next(t for t in report["targets"] if t["name"] == "gone")
    assert gone_state["cursor"] == rev - 1 and gone_state["backlog"] == 3
    assert gone_state["disabled"]["message"] == f"410 Gone at revision {rev}"
    assert f" pid {notifier.pid} since " in report["deliverer"]

    # Enabled again (the receiver came back): it gets everything from its cursor on.
    gone.answer = lambda _n, _b: (200, {}, 0.0)
    done = run_cli(data_file, "notify", "--config", str(config), "--enable", "gone")
    assert done.returncode == 0 and "enabled again" in done.stdout
    wait_for(lambda: gone.taken_revs() == [rev, rev + 1, rev + 2], what="the backlog sent")


def test_status_shows_each_endpoint_in_text(tmp_path, data_file, writer, receivers, notifiers):
    receiver = receivers()
    config = tmp_path / "notify.toml"
    config.write_text(FAST + endpoint("audit", receiver.url))
    writer.revision()
    notifier = notifiers(config)
    wait_for(lambda: target_status(data_file, config, "audit")["cursor"] is not None,
             what="the cursor started")
    rev = writer.revision()
    wait_for(lambda: receiver.taken_revs() == [rev], what="the new revision only")  # start=now
    text = run_cli(data_file, "notify", "--config", str(config), "--status")
    assert text.returncode == 0
    lines = text.stdout.splitlines()
    assert lines[0] == f"store: {data_file} (newest revision {rev})"
    assert lines[1].startswith("delivering: ") and f"pid {notifier.pid}" in lines[1]
    assert lines[2] == f"endpoint audit: cursor {rev}, backlog 0, enabled"
    assert lines[3].startswith("    last attempt ") and lines[3].endswith(
        f" UTC, rev {rev} (attempt 1): 200 OK")
    assert max(len(line) for line in lines[2:]) <= 80
    notifier.stop()
    stopped = run_cli(data_file, "notify", "--config", str(config), "--status")
    assert "delivering: no notifier is running" in stopped.stdout


def test_cursor_and_log_files_take_the_data_file_owner_and_mode(
        tmp_path, data_file, writer, receivers, notifiers):
    receiver = receivers()
    config = tmp_path / "notify.toml"
    config.write_text('start = "oldest"\n' + FAST + endpoint("audit", receiver.url))
    writer.revision()
    data_file.chmod(0o640)
    notifiers(config)
    wait_for(lambda: receiver.taken(), what="a delivery")
    for name in ("model_selections.notify.audit.json", "model_selections.notify.log.jsonl"):
        path: Path = data_file.with_name(name)
        wait_for(path.exists, what=name)
        assert path.stat().st_mode & 0o777 == 0o640, name
