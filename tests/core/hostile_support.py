"""Real other users for the hostile-files tests: created with ``useradd`` when run as root.

Three accounts and one group: ``mb-owner`` and ``mb-member`` share the group ``mb-ops``
(an ops group that shares a config folder); ``mb-other`` is any other local user. They
are created once per machine (idempotent) and kept; CI runs as root, so there they are
always made, and a run that is not root skips these tests saying why (fails under CI).
"""

from __future__ import annotations

import grp
import os
import pwd
import subprocess
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import pytest

GROUP = "mb-ops"
CLI = [sys.executable, "-m", "modelboard.core.cli"]


@dataclass(frozen=True)
class User:
    name: str
    uid: int
    gid: int

    def run(self, command: Sequence[str], *, env: Mapping[str, str] | None = None,
            timeout: float = 60, **options: object) -> subprocess.CompletedProcess[str]:
        """``command`` as this user (its own groups, the test's environment otherwise)."""
        environment = {**os.environ, "HOME": "/tmp", "USER": self.name, "LOGNAME": self.name,
                       **(env or {})}
        return subprocess.run(
            ["setpriv", f"--reuid={self.uid}", f"--regid={self.gid}", "--init-groups", "--",
             *command], env=environment, capture_output=True, text=True, timeout=timeout,
            check=False, **options)  # type: ignore[call-overload]


@dataclass(frozen=True)
class Users:
    owner: User      # owns the shared folder and the data file; in mb-ops
    member: User     # another member of mb-ops
    other: User      # not in the group: may only read what others may read
    group: int       # gid of mb-ops


def running_in_ci() -> bool:
    """As tests/conftest.py's: CI must run these, never skip them."""
    return os.environ.get("CI", "").lower() in ("1", "true", "yes")


def need_root(why: str) -> None:
    if os.geteuid() == 0:
        return
    if running_in_ci():
        pytest.fail(f"CI must run as root: {why}")
    pytest.skip(f"needs root ({why})")


def _ensure_user(name: str, *groups: str) -> User:
    try:
        entry = pwd.getpwnam(name)
    except KeyError:
        command = ["useradd", "--no-create-home", "--shell", "/usr/sbin/nologin", name]
        if groups:
            command[1:1] = ["--groups", ",".join(groups)]
        subprocess.run(command, check=True, capture_output=True)
        entry = pwd.getpwnam(name)
    return User(name, entry.pw_uid, entry.pw_gid)


def make_users() -> Users:
    need_root("a second, unprivileged user is created with useradd")
    try:
        gid = grp.getgrnam(GROUP).gr_gid
    except KeyError:
        subprocess.run(["groupadd", GROUP], check=True, capture_output=True)
        gid = grp.getgrnam(GROUP).gr_gid
    return Users(_ensure_user("mb-owner", GROUP), _ensure_user("mb-member", GROUP),
                 _ensure_user("mb-other"), gid)


def one_line(text: str) -> str:
    lines = text.strip().splitlines()
    assert len(lines) == 1, f"expected one line, got: {text!r}"
    assert "Traceback" not in text
    return lines[0]
