"""Delivering every revision of a store to Standard Webhooks endpoints and command hooks.

One notifier per store delivers (see core/notifystate.py for the election); the others
stand by. The deliverer follows the store (its change subscription wakes it) and reads
the revisions after each target's cursor from the revision log, oldest first. Per
target, in order: the revision's JSON is sent, retried until it is taken (2xx, or exit
0 for a hook), and only then is the cursor moved past it. So delivery is at least once:
a notifier killed before the cursor moved sends that revision again, with the same
``webhook-id``, after a restart or from the notifier that takes over.

Signing follows the Standard Webhooks specification: ``webhook-id``, ``webhook-timestamp``
(seconds, of this attempt) and ``webhook-signature``, ``v1,`` + base64 of
HMAC-SHA256(secret, ``id.timestamp.body``), one per configured secret, space-separated.
"""

from __future__ import annotations

import base64
import email.utils
import hashlib
import hmac
import json
import os
import random
import signal
import subprocess
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from .errors import ModelboardError
from .history import Revision
from .logs import logger
from .notifyconfig import NotifyConfig, Target
from .notifystate import Elector, NotifyState, TargetState, now_text
from .store import SelectionStore
from .text import strip_controls
from .versions import revisions_after

__all__ = ["Answer", "Notifier", "payload", "sign", "status", "webhook_id"]

log = logger(__name__)

#: The longest ``Retry-After`` honoured (a day): a typo there must not park a target for ever.
RETRY_AFTER_MAX_S = 86400.0
#: How long a caught-up target sleeps before looking at the revision log again anyway.
IDLE_RECHECK_S = 30.0
USER_AGENT = "modelboard-notify"


def webhook_id(target: Target, revision: Revision) -> str:
    """The same for every attempt at one revision to one target, on every host."""
    digest = hashlib.sha256(f"{target.name}\0{revision.number}\0{revision.revision}".encode())
    return f"msg_{digest.hexdigest()[:32]}"


def payload(store: str, revision: Revision, previous: int | None) -> bytes:
    """The body: the revision as ``modelboard log --json`` shows it, with its store and
    the number of the revision before it. The same bytes at every attempt."""
    # The revision's shape is the command line's (one vocabulary for every JSON modelboard
    # prints); imported here, since the command line imports this module.
    from .cli.shapes import revision_json

    body = {"type": "modelboard.revision", "store": store, "previous_rev": previous,
            **revision_json(revision)}
    return json.dumps(body, sort_keys=True, ensure_ascii=False,
                      separators=(",", ":")).encode("utf-8")


def sign(secrets: tuple[bytes, ...], message_id: str, timestamp: int, body: bytes) -> str:
    """``webhook-signature``: one ``v1,<base64>`` per secret, space-separated."""
    signed = f"{message_id}.{timestamp}.".encode() + body
    return " ".join("v1," + base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest())
                    .decode() for key in secrets)


@dataclass(frozen=True, slots=True)
class Answer:
    """What one attempt got: taken or not, in words, and what the receiver asked for."""

    ok: bool
    text: str
    #: Seconds the receiver asked to wait (``Retry-After``), if it did.
    retry_after: float | None = None
    #: The receiver answered 410 Gone: do not send there again.
    gone: bool = False


def retry_after_seconds(value: str | None, now: float | None = None) -> float | None:
    """``Retry-After`` as seconds from now: a number of seconds or an HTTP date."""
    if value is None:
        return None
    value = value.strip()
    if value.isdigit():
        return min(float(value), RETRY_AFTER_MAX_S)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    wait = when.timestamp() - (now if now is not None else time.time())
    return min(max(wait, 0.0), RETRY_AFTER_MAX_S)


def _one_line(text: str, limit: int = 200) -> str:
    return strip_controls(" ".join(text.split()), replacement=" ")[:limit]


class _Sender:
    """Makes one attempt at one target."""

    def __init__(self, target: Target) -> None:
        self.target = target
        self._client: Any = None

    def send(self, message_id: str, revision: Revision, body: bytes) -> Answer:
        if self.target.kind == "hook":
            return self._run(message_id, revision, body)
        return self._post(message_id, body)

    def _post(self, message_id: str, body: bytes) -> Answer:
        import httpx

        if self._client is None:
            self._client = httpx.Client(follow_redirects=False,
                                        headers={"user-agent": USER_AGENT})
        timestamp = int(time.time())
        headers = {
            "content-type": "application/json",
            "webhook-id": message_id,
            "webhook-timestamp": str(timestamp),
            "webhook-signature": sign(self.target.secrets, message_id, timestamp, body),
        }
        try:
            response = self._client.post(self.target.address, content=body, headers=headers,
                                         timeout=self.target.timeout)
        except httpx.TimeoutException:
            return Answer(False, f"timed out after {self.target.timeout:g} s")
        except httpx.HTTPError as exc:
            return Answer(False, _one_line(f"failed: {exc}") or "failed")
        code = response.status_code
        text = f"{code} {response.reason_phrase}".strip()
        if 200 <= code < 300:
            return Answer(True, text)
        return Answer(False, text, retry_after_seconds(response.headers.get("retry-after")),
                      gone=code == 410)

    def _run(self, message_id: str, revision: Revision, body: bytes) -> Answer:
        env = {**os.environ, "MODELBOARD_WEBHOOK_ID": message_id,
               "MODELBOARD_REV": str(revision.number)}
        try:
            process = subprocess.Popen(
                ["/bin/sh", "-c", self.target.address], stdin=subprocess.PIPE,
                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env,
                start_new_session=True)  # its own group: a timeout kills its children too
        except OSError as exc:
            return Answer(False, f"cannot start: {exc.strerror}")
        try:
            _out, err = process.communicate(body, timeout=self.target.timeout)
        except subprocess.TimeoutExpired:
            _kill_group(process)
            return Answer(False, f"timed out after {self.target.timeout:g} s; killed")
        if process.returncode == 0:
            return Answer(True, "exit 0")
        last = err.decode("utf-8", "replace").strip().splitlines()[-1:] if err else []
        status = (f"killed by signal {-process.returncode}" if process.returncode < 0
                  else f"exit {process.returncode}")
        return Answer(False, status + (f": {_one_line(last[0])}" if last else ""))

    def close(self) -> None:
        if self._client is not None:
            self._client.close()


def _kill_group(process: subprocess.Popen[bytes]) -> None:
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except OSError:
        process.kill()
    process.communicate()


class Notifier:
    """Follows one store and delivers its revisions to every target of the configuration.

    ``run(stop)`` blocks until ``stop`` is set: it takes part in the election, and while
    it leads, one thread per target delivers. ``say`` gets the lines an operator should
    see (standing by, taking over, a target disabled).
    """

    def __init__(self, store: SelectionStore, config: NotifyConfig, state: NotifyState,
                 elector: Elector, *, say: Callable[[str], None]) -> None:
        self.store = store
        self.config = config
        self.state = state
        self.elector = elector
        self.say = say
        self.leading = threading.Event()
        self._stop = threading.Event()
        self._wakes = {target.name: threading.Event() for target in config.targets}
        self._state_lock = threading.Lock()
        #: What was said last per subject, so that a lasting problem is said once.
        self._said: dict[str, str] = {}

    # -- the election ----------------------------------------------------------------------
    def run(self, stop: threading.Event) -> None:
        self._stop = stop
        unsubscribe = self.store.subscribe(lambda _event: self._wake_all())
        self.store.start_watching()
        workers = [threading.Thread(target=self._deliver_to, args=(target,), daemon=True,
                                    name=f"modelboard-notify-{target.name}")
                   for target in self.config.targets]
        for worker in workers:
            worker.start()
        said_standby = False
        renew = min(self.config.election_interval, self.config.lease_ms / 3000)
        try:
            while not stop.is_set():
                try:
                    leads = self.elector.try_lead()
                    if self._said.pop("election", None) is not None:
                        said_standby = False  # the refusal is over: say who delivers now
                except (ModelboardError, OSError) as exc:
                    self._say_once("election", f"cannot take part in the election: {exc}; "
                                   "trying again")
                    leads = False
                    said_standby = True  # the refusal is said; no one is known to deliver
                if leads and not self.leading.is_set():
                    self.say(f"delivering the revisions of {self.store.location} "
                             f"(the elected notifier; {len(self.config.targets)} target"
                             f"{'s' if len(self.config.targets) != 1 else ''})")
                    said_standby = False
                    self.leading.set()
                    self._wake_all()
                elif not leads and self.leading.is_set():
                    self.leading.clear()
                    self.say("lost the lead; standing by")
                if not leads and not said_standby:
                    holder = self.elector.holder()
                    self.say(f"standing by: {holder or 'another notifier'} delivers the "
                             f"revisions of {self.store.location}; taking over when it stops")
                    said_standby = True
                stop.wait(renew if leads else self.config.election_interval)
        finally:
            self.leading.clear()
            self._wake_all()
            unsubscribe()
            for worker in workers:
                worker.join(timeout=1.0)
            self.elector.release()

    def _say_once(self, subject: str, text: str) -> None:
        if self._said.get(subject) != text:
            self._said[subject] = text
            self.say(text)

    def _wake_all(self) -> None:
        for wake in self._wakes.values():
            wake.set()

    # -- one target ------------------------------------------------------------------------
    def _deliver_to(self, target: Target) -> None:
        sender = _Sender(target)
        wake = self._wakes[target.name]
        said_disabled = False
        try:
            while not self._stop.is_set():
                if not self.leading.is_set():
                    wake.wait(self.config.election_interval)
                    wake.clear()
                    continue
                wake.clear()
                try:
                    # Read again at each pass: another notifier may have moved it before
                    # this one took over, and ``--enable`` clears ``disabled``.
                    state = self.state.read(target.name)
                    if state.disabled is not None:
                        if not said_disabled:
                            self.say(f"{target.describe()} is disabled since "
                                     f"{state.disabled.get('disabled_at')} "
                                     f"({state.disabled.get('message')}); "
                                     f"'modelboard notify --enable {target.name}' sends "
                                     "to it again")
                            said_disabled = True
                        wake.wait(max(self.config.election_interval, 1.0))
                        continue
                    said_disabled = False
                    if state.cursor is None:
                        state.cursor = self._starting_cursor()
                        self.state.write(target.name, state)
                    waiting = self._deliver_pending(target, sender, state)
                    self._said.pop(target.name, None)
                except ModelboardError as exc:
                    self._say_once(target.name, f"{target.describe()}: {exc}; trying again")
                    waiting = self.config.backoff_max
                except Exception as exc:  # a long-running deliverer outlives a surprise
                    log.exception("%s: delivery failed", target.describe())
                    self._say_once(target.name, f"{target.describe()}: unexpected "
                                   f"{type(exc).__name__}: {exc}; trying again")
                    waiting = self.config.backoff_max
                if waiting:
                    wake.wait(waiting)
        finally:
            sender.close()

    def _starting_cursor(self) -> int:
        if self.config.start == "oldest":
            return 0
        newest = self.store.revisions(limit=1)
        return (newest[0].number or 0) if newest else 0

    def _deliver_pending(self, target: Target, sender: _Sender, state: TargetState) -> float:
        """Deliver what is after the cursor; how long to wait before the next pass."""
        assert state.cursor is not None
        pending, previous = revisions_after(self.store.backend, state.cursor)
        if not pending:
            return IDLE_RECHECK_S
        if previous is None and state.cursor > 0 and pending[0].number != state.cursor + 1:
            self.say(f"{target.describe()}: revisions {state.cursor + 1} to "
                     f"{(pending[0].number or 1) - 1} are no longer in the history; going on "
                     f"from {pending[0].number}")
        for revision in pending:
            assert revision.number is not None
            if not self._deliver_one(target, sender, state, revision, previous):
                return 0.0  # stopped, lost the lead, or disabled: the loop decides
            state.cursor = previous = revision.number
            self.state.write(target.name, state)
        return 0.0  # look again at once: more may have come meanwhile

    def _deliver_one(self, target: Target, sender: _Sender, state: TargetState,
                     revision: Revision, previous: int | None) -> bool:
        message_id = webhook_id(target, revision)
        body = payload(self.store.location, revision, previous)
        failures = 0
        while not self._stop.is_set() and self.leading.is_set():
            began = time.monotonic()
            answer = sender.send(message_id, revision, body)
            record: dict[str, Any] = {
                "attempted_at": now_text(), "target": target.name, "kind": target.kind,
                "rev": revision.number, "id": message_id, "attempt": failures + 1,
                "answer": answer.text, "ok": answer.ok,
                "ms": round((time.monotonic() - began) * 1000)}
            state.last_attempt = {key: record[key]
                                  for key in ("attempted_at", "rev", "id", "attempt", "answer",
                                              "ok")}
            if answer.gone:
                state.disabled = {"disabled_at": record["attempted_at"],
                                  "message": f"{answer.text} at "
                                  f"revision {revision.number}"}
            delay = self._delay(failures, answer.retry_after)
            if not answer.ok:
                record["retry_in_s"] = None if answer.gone else round(delay, 3)
            self._record(target, state, record)
            if answer.ok:
                return True
            if answer.gone:
                self.say(f"{target.describe()} answered {answer.text}: disabled; revisions "
                         f"from {revision.number} on wait for "
                         f"'modelboard notify --enable {target.name}'")
                return False
            failures += 1
            if failures == 1:  # said once per revision; the log has every attempt
                self.say(f"{target.describe()}: revision {revision.number} not delivered "
                         f"({answer.text}); retrying")
            self._pause(delay)
        return False

    def _delay(self, failures: int, retry_after: float | None) -> float:
        if retry_after is not None:
            return retry_after
        ceiling = min(self.config.backoff_max, self.config.backoff_initial * 2.0 ** failures)
        return ceiling / 2 + random.uniform(0, ceiling / 2)  # jitter: hosts do not march

    def _pause(self, seconds: float) -> None:
        deadline = time.monotonic() + seconds
        while not self._stop.is_set() and self.leading.is_set():
            left = deadline - time.monotonic()
            if left <= 0:
                return
            self._stop.wait(min(left, 0.5))

    def _record(self, target: Target, state: TargetState, record: dict[str, Any]) -> None:
        with self._state_lock:  # one log, written by every target's thread
            try:
                self.state.write(target.name, state)
                self.state.log(record)
            except ModelboardError as exc:
                self._say_once(f"{target.name} record", f"{target.describe()}: {exc}")


def enable(state: NotifyState, config: NotifyConfig, name: str) -> bool:
    """Clear a target's ``disabled`` mark; False if it was not disabled."""
    if name not in {target.name for target in config.targets}:
        raise ModelboardError(f"{config.path}: no endpoint or hook is named {name!r}")
    record = state.read(name)
    if record.disabled is None:
        return False
    record.disabled = None
    state.write(name, record)
    return True


def status(store: SelectionStore, config: NotifyConfig, state: NotifyState,
           elector: Elector) -> dict[str, Any]:
    """Per target: cursor, backlog, last attempt and answer, disabled; and who delivers."""
    newest = store.revisions(limit=1)
    targets = []
    for target in config.targets:
        record = state.read(target.name)
        backlog = (len(revisions_after(store.backend, record.cursor)[0])
                   if record.cursor is not None else None)
        targets.append({"name": target.name, "kind": target.kind, "address": target.address,
                        "cursor": record.cursor, "backlog": backlog,
                        "last_attempt": record.last_attempt,
                        "disabled": record.disabled})
    return {"store": store.location, "state": state.where,
            "newest_rev": newest[0].number if newest else None,
            "deliverer": elector.holder(), "targets": targets,
            "checked_at": datetime.now(UTC).isoformat(timespec="seconds")}
