"""The configuration of ``modelboard notify``: a TOML file of endpoints and command hooks.

::

    store = "/etc/llm/model_selections.json"   # else --file / $MODELBOARD_FILE
    # state_dir = "/var/lib/modelboard-notify" # else beside the data file (or in Redis)
    start = "now"            # where a new cursor starts: "now" or "oldest"
    timeout = 15             # seconds an attempt may take (connect, send, answer; a hook)
    backoff_initial = 1      # the first retry's delay, doubled at each failure ...
    backoff_max = 300        # ... up to this, with jitter
    log_lines = 10000        # the delivery log keeps about this many lines
    election_interval = 1    # how often a standby notifier tries to take over

    [[endpoint]]
    name = "audit"
    url = "https://hooks.example.com/modelboard"
    secrets = ["whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"]   # several while a secret rotates

    [[hook]]
    name = "slack"
    command = "/usr/local/bin/post-to-slack"

A file that is not valid is refused whole, in one line naming the file, the line and
the key; nothing is delivered on half a configuration. Its hooks run as whoever runs
the notifier (root, often), so a file another user could change is refused too, as
sudo and sshd refuse theirs: see :func:`check_trusted`.
"""

from __future__ import annotations

import base64
import binascii
import os
import re
import stat
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from .errors import ConfigurationError
from .safefiles import read_regular_file, user_name

__all__ = ["SECRET_PREFIX", "NotifyConfig", "Target", "foreign_link", "load_notify_config",
           "untrusted"]

SECRET_PREFIX = "whsec_"
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")
_SETTINGS: dict[str, type | tuple[type, ...]] = {
    "store": str, "state_dir": str, "start": str, "timeout": (int, float),
    "backoff_initial": (int, float), "backoff_max": (int, float), "log_lines": int,
    "election_interval": (int, float), "lease_ms": int,
}
_ENDPOINT_KEYS = ("name", "url", "secrets", "secret", "timeout")
_HOOK_KEYS = ("name", "command", "timeout")
#: The largest configuration read (a few endpoints and hooks take a few kilobytes).
MAX_CONFIG_BYTES = 1024 * 1024


@dataclass(frozen=True, slots=True)
class Target:
    """One place revisions go: a Standard Webhooks endpoint or a command hook."""

    kind: Literal["endpoint", "hook"]
    name: str
    #: The endpoint's URL, or the hook's command (run by ``/bin/sh -c``).
    address: str
    #: The signing keys (decoded), newest first; empty for a hook.
    secrets: tuple[bytes, ...]
    timeout: float

    def describe(self) -> str:
        return f"{self.kind} {self.name}"


@dataclass(frozen=True, slots=True)
class NotifyConfig:
    path: Path
    store: str | None
    state_dir: Path | None
    start: Literal["now", "oldest"]
    timeout: float
    backoff_initial: float
    backoff_max: float
    log_lines: int
    election_interval: float
    lease_ms: int
    targets: tuple[Target, ...]


class _Where:
    """Finds the line of a key in the file's text, for messages (tomllib gives none)."""

    def __init__(self, path: Path, text: str) -> None:
        self.path = path
        self.lines = text.splitlines()

    def line_of(self, key: str, table: str | None = None, index: int = 0) -> int | None:
        start = 0
        if table is not None:
            headers = [n for n, line in enumerate(self.lines)
                       if re.match(rf"\s*\[\[\s*{re.escape(table)}\s*\]\]", line)]
            if index >= len(headers):
                return None
            start = headers[index]
            if not key:
                return start + 1
        pattern = re.compile(rf"\s*[\"']?{re.escape(key)}[\"']?\s*=")
        for number in range(start, len(self.lines)):
            if number > start and table is None and self.lines[number].lstrip().startswith("["):
                break  # top-level keys come before the first table
            if number > start and table is not None and \
                    self.lines[number].lstrip().startswith("["):
                break
            if pattern.match(self.lines[number]):
                return number + 1
        return start + 1 if table is not None else None

    def error(self, reason: str, key: str, table: str | None = None,
              index: int = 0) -> ConfigurationError:
        return ConfigurationError(reason, path=str(self.path),
                                  line=self.line_of(key, table, index))


def load_notify_config(path: Path) -> NotifyConfig:
    """Read and check the whole file; ConfigurationError (file, line, key) if anything is off."""
    try:
        raw = read_regular_file(path, MAX_CONFIG_BYTES,
                                vet=lambda status: check_trusted(path, status))
    except FileNotFoundError:
        raise ConfigurationError("no such notify configuration file", path=str(path)) from None
    except OSError as exc:
        raise ConfigurationError(f"cannot read: {exc.strerror}", path=str(path)) from None
    import tomllib

    try:
        text = raw.decode("utf-8")
        data = tomllib.loads(text)
    except UnicodeDecodeError:
        raise ConfigurationError("is not UTF-8 text", path=str(path)) from None
    except tomllib.TOMLDecodeError as exc:
        found = re.search(r"line (\d+), column (\d+)", str(exc))
        reason = str(exc).split(" (at ")[0]
        raise ConfigurationError(f"not valid TOML: {reason}", path=str(path),
                                 line=int(found.group(1)) if found else None,
                                 column=int(found.group(2)) if found else None) from None
    return _parse(data, _Where(path, text))


def untrusted(status: os.stat_result, *, folder: bool) -> str | None:
    """Who besides the running user and root may change this file or folder, if anyone."""
    if status.st_uid not in (0, os.geteuid()):
        return f"is owned by {user_name(status.st_uid)}"
    mode = stat.S_IMODE(status.st_mode)
    if folder and mode & stat.S_ISVTX:
        return None  # like /tmp: others may add names, not replace this user's
    if mode & 0o002:
        return f"is writable by every user (mode {mode:04o})"
    if mode & 0o020:
        return f"is writable by the group {_group_name(status.st_gid)} (mode {mode:04o})"
    return None


def _group_name(gid: int) -> str:
    import grp

    try:
        return grp.getgrgid(gid).gr_name
    except KeyError:
        return f"gid {gid}"


def foreign_link(path: Path) -> str | None:
    """``is reached through L, a symlink owned by U`` if a symlink on the way to ``path``
    belongs to a user other than the running one or root (who could point it elsewhere)."""
    absolute = Path(os.path.abspath(path))
    for step in (absolute, *absolute.parents):
        try:
            status = os.lstat(step)
        except OSError:
            continue
        if stat.S_ISLNK(status.st_mode) and status.st_uid not in (0, os.geteuid()):
            return f"is reached through {step}, a symlink owned by {user_name(status.st_uid)}"
    return None


def check_trusted(path: Path, status: os.stat_result) -> None:
    """Refuse a configuration that a user other than the running one or root could change.

    Its hooks are commands run as the notifier's user. The file must be owned by that
    user or root and writable by neither its group nor others; so must every folder on
    its way (after symlinks), except that a sticky one (``/tmp``) may be open to all; a
    symlink on the way must be the running user's or root's.
    """
    why = untrusted(status, folder=False)
    if why is not None:
        raise ConfigurationError(f"{why}; its hooks would run as you: refusing it (make it "
                                 "yours or root's, chmod go-w)", path=str(path))
    link = foreign_link(path)
    if link is not None:
        raise ConfigurationError(f"{link}: refusing it", path=str(path))
    for folder in Path(os.path.realpath(path)).parents:
        try:
            why = untrusted(os.stat(folder), folder=True)
        except OSError:
            continue
        if why is not None:
            raise ConfigurationError(f"is in {folder}, which {why}: "
                                     "others could replace it, and its hooks would run as "
                                     "you: refusing it", path=str(path))


def _number(where: _Where, key: str, value: Any, table: str | None = None,
            index: int = 0) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
        raise where.error(f"{key} must be a positive number of seconds", key, table, index)
    return float(value)


def _parse(data: Mapping[str, Any], where: _Where) -> NotifyConfig:
    settings: dict[str, Any] = {}
    for key, value in data.items():
        if key in ("endpoint", "hook"):
            if not isinstance(value, list) or not all(isinstance(v, dict) for v in value):
                raise where.error(f"{key} must be written as [[{key}]] tables", key)
            continue
        if key not in _SETTINGS:
            known = ", ".join((*_SETTINGS, "[[endpoint]]", "[[hook]]"))
            raise where.error(f"unknown setting {key!r} (known: {known})", key)
        settings[key] = value
    for key in ("store", "state_dir"):
        if key in settings and (not isinstance(settings[key], str) or not settings[key].strip()):
            raise where.error(f"{key} must be a non-empty string", key)
    start = settings.get("start", "now")
    if start not in ("now", "oldest"):
        raise where.error('start must be "now" or "oldest"', "start")
    timeout = _number(where, "timeout", settings.get("timeout", 15.0))
    backoff_initial = _number(where, "backoff_initial", settings.get("backoff_initial", 1.0))
    backoff_max = _number(where, "backoff_max", settings.get("backoff_max", 300.0))
    if backoff_max < backoff_initial:
        raise where.error("backoff_max must be at least backoff_initial", "backoff_max")
    election = _number(where, "election_interval", settings.get("election_interval", 1.0))
    log_lines = settings.get("log_lines", 10000)
    if isinstance(log_lines, bool) or not isinstance(log_lines, int) or log_lines < 10:
        raise where.error("log_lines must be a whole number, 10 or more", "log_lines")
    lease_ms = settings.get("lease_ms", 10000)
    if isinstance(lease_ms, bool) or not isinstance(lease_ms, int) or lease_ms < 100:
        raise where.error("lease_ms must be a whole number of milliseconds, 100 or more",
                          "lease_ms")
    targets: list[Target] = []
    for kind in ("endpoint", "hook"):
        for index, table in enumerate(data.get(kind, [])):
            target = _target(where, kind, index, table, timeout)
            if any(t.name == target.name for t in targets):
                raise where.error(f"name {target.name!r} is used twice; each endpoint and "
                                  "hook needs its own (it names its cursor)", "name", kind,
                                  index)
            targets.append(target)
    if not targets:
        raise ConfigurationError("no [[endpoint]] or [[hook]]: nothing to deliver to",
                                 path=str(where.path))
    state_dir = settings.get("state_dir")
    return NotifyConfig(
        path=where.path, store=settings.get("store"),
        state_dir=Path(state_dir) if state_dir else None, start=start, timeout=timeout,
        backoff_initial=backoff_initial, backoff_max=backoff_max, log_lines=log_lines,
        election_interval=election, lease_ms=lease_ms, targets=tuple(targets))


def _target(where: _Where, kind: Literal["endpoint", "hook"], index: int,
            table: Mapping[str, Any], default_timeout: float) -> Target:
    known = _ENDPOINT_KEYS if kind == "endpoint" else _HOOK_KEYS
    for key in table:
        if key not in known:
            raise where.error(f"[[{kind}]] has an unknown key {key!r} (known: "
                              f"{', '.join(known)})", key, kind, index)
    name = table.get("name")
    if not isinstance(name, str) or not _NAME.fullmatch(name):
        raise where.error(f"[[{kind}]] needs a name of letters, digits, '.', '_' or '-' "
                          "(64 at most)", "name" if "name" in table else "", kind, index)
    timeout = (_number(where, "timeout", table["timeout"], kind, index)
               if "timeout" in table else default_timeout)
    if kind == "hook":
        command = table.get("command")
        if not isinstance(command, str) or not command.strip():
            raise where.error(f"hook {name}: command must be a non-empty string",
                              "command" if "command" in table else "", kind, index)
        return Target("hook", name, command, (), timeout)
    url = table.get("url")
    if not isinstance(url, str) or not re.match(r"https?://[^\s/]+", url):
        raise where.error(f"endpoint {name}: url must be an http:// or https:// address",
                          "url" if "url" in table else "", kind, index)
    if "secret" in table and "secrets" in table:
        raise where.error(f"endpoint {name}: give secret or secrets, not both", "secret",
                          kind, index)
    key = "secrets" if "secrets" in table else "secret"
    given = table.get(key)
    values = [given] if isinstance(given, str) else given
    if not isinstance(values, list) or not values or \
            not all(isinstance(v, str) for v in values):
        raise where.error(f"endpoint {name}: {key} must be a whsec_ secret (secrets: a list "
                          "of them, newest first)", key if key in table else "", kind, index)
    secrets = tuple(_secret(where, name, key, value, index) for value in values)
    return Target("endpoint", name, url, secrets, timeout)


def _secret(where: _Where, name: str, key: str, value: str, index: int) -> bytes:
    if not value.startswith(SECRET_PREFIX):
        raise where.error(f"endpoint {name}: a secret starts with {SECRET_PREFIX} (then "
                          "base64)", key, "endpoint", index)
    try:
        decoded = base64.b64decode(value[len(SECRET_PREFIX):], validate=True)
    except (binascii.Error, ValueError):
        raise where.error(f"endpoint {name}: the secret after {SECRET_PREFIX} is not "
                          "base64", key, "endpoint", index) from None
    if len(decoded) < 16:
        raise where.error(f"endpoint {name}: the secret is {len(decoded)} bytes; use 16 to "
                          "64 random bytes", key, "endpoint", index)
    return decoded
