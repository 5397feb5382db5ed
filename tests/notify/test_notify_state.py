"""The notifier's own pieces without a process: the bounded delivery log, the signature
against the reference library, ``Retry-After``, and the lock file's election."""

from __future__ import annotations

import email.utils
import json
import os
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest
import standardwebhooks
from notify_support import OLD_SECRET, SECRET

from modelboard.core.errors import ConfigurationError
from modelboard.core.notify import retry_after_seconds, sign
from modelboard.core.notifyconfig import load_notify_config
from modelboard.core.notifystate import FileElector, FileNotifyState, TargetState


def test_the_delivery_log_keeps_the_newest_lines_within_its_bound(tmp_path: Path) -> None:
    data_file = tmp_path / "model_selections.json"
    data_file.write_text("{}\n")
    state = FileNotifyState(tmp_path, "model_selections", 10, data_file=data_file)
    for number in range(1, 26):
        state.log({"rev": number})
    lines = (tmp_path / "model_selections.notify.log.jsonl").read_text().splitlines()
    assert len(lines) <= 10
    assert [json.loads(line)["rev"] for line in lines][-1] == 25
    assert [r["rev"] for r in state.read_log(3)] == [23, 24, 25]
    # A fresh process counts what is there before appending, and keeps the bound too.
    again = FileNotifyState(tmp_path, "model_selections", 10, data_file=data_file)
    for number in range(26, 40):
        again.log({"rev": number})
    kept = [r["rev"] for r in again.read_log(100)]
    assert len(kept) <= 10 and kept[-1] == 39 and kept == sorted(kept)


def test_a_damaged_cursor_record_is_one_line_naming_it(tmp_path: Path) -> None:
    state = FileNotifyState(tmp_path, "m", 100, data_file=None)
    state.write("audit", TargetState(cursor=4))
    assert state.read("audit").cursor == 4
    (tmp_path / "m.notify.audit.json").write_text('{"cursor": "four"}')
    with pytest.raises(ConfigurationError, match=r"m\.notify\.audit\.json: is not a notifier's"):
        state.read("audit")


def test_the_signature_verifies_with_the_reference_library_for_each_secret(
        tmp_path: Path) -> None:
    config = tmp_path / "notify.toml"
    config.write_text(f'[[endpoint]]\nname = "a"\nurl = "http://h/"\n'
                      f'secrets = ["{SECRET}", "{OLD_SECRET}"]\n')
    target = load_notify_config(config).targets[0]
    body = json.dumps({"rev": 1, "model": "gpt-4o ünïcode"}, ensure_ascii=False).encode()
    now = int(time.time())
    headers = {"webhook-id": "msg_1", "webhook-timestamp": str(now),
               "webhook-signature": sign(target.secrets, "msg_1", now, body)}
    for secret in (SECRET, OLD_SECRET):
        assert standardwebhooks.Webhook(secret).verify(body, headers)["rev"] == 1
    with pytest.raises(standardwebhooks.webhooks.WebhookVerificationError):
        standardwebhooks.Webhook(SECRET).verify(body + b" ", headers)


def test_retry_after_as_seconds_or_an_http_date() -> None:
    now = datetime(2026, 12, 2, 3, 0, 0, tzinfo=UTC).timestamp()
    assert retry_after_seconds("7", now) == 7
    assert retry_after_seconds(email.utils.formatdate(now + 90, usegmt=True), now) == 90
    assert retry_after_seconds(email.utils.formatdate(now - 90, usegmt=True), now) == 0
    assert retry_after_seconds("soon", now) is None
    assert retry_after_seconds("99999999", now) == 86400  # a day at most


def test_one_lock_file_holder_at_a_time_and_the_next_after_it_lets_go(tmp_path: Path) -> None:
    (tmp_path / "m.json").write_text("{}\n")
    first = FileElector(tmp_path, "m.notify.lock", "m.json")
    second = FileElector(tmp_path, "m.notify.lock", "m.json")
    assert first.try_lead() and first.try_lead()
    assert not second.try_lead()
    assert f"pid {os.getpid()} since" in (second.holder() or "")
    # Removed while held: the holder notices and takes a new one.
    os.unlink(tmp_path / "m.notify.lock")
    assert first.try_lead()
    assert not second.try_lead()
    first.release()
    assert second.holder() is None
    assert second.try_lead()
    second.release()
