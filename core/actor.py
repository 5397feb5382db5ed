"""Who is making a change: the person behind sudo or SSH, at this host."""

from __future__ import annotations

import getpass
import os
import socket

__all__ = ["default_actor"]


def default_actor() -> str:
    """``user@host``, preferring the user who ran sudo over root.

    Over SSH the login name is already the remote user; under ``sudo`` the
    interesting person is ``SUDO_USER``, not root.
    """
    user = os.environ.get("SUDO_USER") or os.environ.get("LOGNAME") or os.environ.get("USER")
    if not user:
        try:
            user = getpass.getuser()
        except (KeyError, OSError):
            user = f"uid{os.getuid()}"
    host = socket.gethostname().split(".")[0] or "localhost"
    return "".join(ch for ch in f"{user}@{host}" if ch.isprintable())
