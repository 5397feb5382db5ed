"""Opening the files beside a data file safely, in a folder other users may write.

modelboard often runs as root in a folder an ops group shares (or in ``/tmp``). Every
file it keeps beside the data file (lock, backup, history, temp files, corrupt copies)
goes through :class:`Folder`:

- the folder is opened once, as a descriptor, and names are opened relative to it
  (``dir_fd=``), so a folder renamed or swapped mid-way cannot redirect the writes;
- a name is opened with ``O_NOFOLLOW | O_NONBLOCK | O_NOCTTY | O_CLOEXEC``, then
  ``fstat``-ed: a symlink, FIFO, socket or device is refused with one line naming it
  (and opening never blocks, not even on a FIFO nobody writes to);
- a new file is created with ``O_CREAT | O_EXCL`` (never through whatever another user
  put at the name first) and given the data file's owner, group and permission bits
  (:class:`Ownership`) on its descriptor, whoever creates it, root included;
- reads are bounded: never more than the cap + 1 bytes, whatever the file claims to be.
"""

from __future__ import annotations

import contextlib
import errno
import os
import stat
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from .errors import ConfigurationError

__all__ = ["Folder", "Ownership", "describe_kind", "read_bounded", "read_regular_file",
           "replace_private_file", "write_all"]

_OPEN_FLAGS = os.O_NOFOLLOW | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC
#: What a file gets when there is no data file to copy from yet (the data file itself,
#: or a sidecar written before it): read and write for its owner only.
PRIVATE_MODE = 0o600


def describe_kind(mode: int) -> str:
    """What a file of this ``st_mode`` is, for a refusal ("a FIFO", "a symlink" ...)."""
    if stat.S_ISLNK(mode):
        return "a symlink"
    if stat.S_ISFIFO(mode):
        return "a FIFO"
    if stat.S_ISSOCK(mode):
        return "a socket"
    if stat.S_ISCHR(mode):
        return "a character device"
    if stat.S_ISBLK(mode):
        return "a block device"
    if stat.S_ISDIR(mode):
        return "a folder"
    return "not a regular file"


@dataclass(frozen=True, slots=True)
class Ownership:
    """Owner, group and permission bits a new file beside the data file takes."""

    uid: int
    gid: int
    mode: int

    @classmethod
    def of(cls, status: os.stat_result) -> Ownership:
        """The data file's: its owner and group, its read and write bits."""
        return cls(status.st_uid, status.st_gid, stat.S_IMODE(status.st_mode) & 0o666)

    @classmethod
    def private(cls, gid: int | None = None) -> Ownership:
        """The running user's, 0600: for files written before any data file exists
        (with group ``gid`` when given, else the user's own)."""
        return cls(os.geteuid(), os.getegid() if gid is None else gid, PRIVATE_MODE)

    def for_lock(self) -> Ownership:
        """The lock's bits: a class that cannot write the data file gets nothing at all.

        ``flock`` works on a read-only descriptor too, so read access to the lock file
        alone would let a reader hold off every writer.
        """
        mode = 0
        for write, both in ((0o200, 0o600), (0o020, 0o060), (0o002, 0o006)):
            if self.mode & write:
                mode |= both
        return Ownership(self.uid, self.gid, mode)

    def can_write(self, uid: int) -> bool:
        """Whether user ``uid`` may write a file of this ownership (root always may)."""
        if uid == 0:
            return True
        if uid == self.uid:
            return bool(self.mode & 0o200)
        if _in_group(uid, self.gid):
            return bool(self.mode & 0o020)
        return bool(self.mode & 0o002)

    def apply(self, fd: int, name: str) -> None:
        """Give the open file ``fd`` this owner (as root), group and mode.

        A user other than root cannot give a file away: the file stays theirs, but it
        keeps the data file's group (a member of it may set it) and bits. If even the
        group cannot be set, the file is refused rather than left open to a group the
        data file does not grant, unless the bits give that group nothing that everyone
        else does not have anyway.
        """
        status = os.fstat(fd)
        try:
            if os.geteuid() == 0:
                if (status.st_uid, status.st_gid) != (self.uid, self.gid):
                    os.fchown(fd, self.uid, self.gid)
            elif status.st_gid != self.gid:
                os.fchown(fd, -1, self.gid)
        except PermissionError:
            if (self.mode >> 3) & 0o7 & ~self.mode:
                raise ConfigurationError(
                    f"cannot give it the data file's group (gid {self.gid}): you are not "
                    "a member of it", path=name) from None
        if stat.S_IMODE(status.st_mode) != self.mode:
            os.fchmod(fd, self.mode)


def _in_group(uid: int, gid: int) -> bool:
    import grp  # POSIX only, and only needed for a file that is not the user's own
    import pwd

    try:
        user = pwd.getpwuid(uid)
    except KeyError:
        return False
    if user.pw_gid == gid:
        return True
    try:
        return user.pw_name in grp.getgrgid(gid).gr_mem
    except KeyError:
        return False


class Folder:
    """A folder opened once; every name in it opened relative to it, never followed.

    Use as a context manager (the descriptor is closed on exit). Something other than a
    regular file at a name is refused with a ConfigurationError naming it; other
    failures are raised as the OSError they are, for the caller to say what it was doing
    (except :meth:`read`, which says "cannot read").
    """

    def __init__(self, path: Path, *, fd: int | None = None) -> None:
        self.path = path
        if fd is not None:  # opened already (see :meth:`subfolder`)
            self.fd = fd
            return
        try:
            self.fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        except (FileNotFoundError, NotADirectoryError):
            raise
        except OSError as exc:
            raise ConfigurationError(f"cannot open folder: {exc.strerror}",
                                     path=str(path)) from None

    def __enter__(self) -> Folder:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    def close(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1

    def where(self, name: str) -> str:
        """The path of ``name`` in the folder, for messages."""
        return os.path.join(self.path, name)  # a fifth of the cost of Path's / and str()

    # -- looking ----------------------------------------------------------------------------
    def lstat(self, name: str) -> os.stat_result | None:
        """``lstat`` of ``name`` in the folder (a symlink is not followed); None if absent.

        Other failures are raised as OSError."""
        try:
            return os.stat(name, dir_fd=self.fd, follow_symlinks=False)
        except FileNotFoundError:
            return None

    def names(self) -> list[str]:
        return os.listdir(self.fd)

    def ownership_for(self, data_name: str) -> Ownership:
        """What a new file here takes: the data file ``data_name``'s ownership when a
        regular file is there; else the running user's, 0600, with the folder's group if
        the folder is setgid (as the kernel gives it), so that a shared group folder
        needs only ``chmod 0660`` on the new data file to share it."""
        status = self.lstat(data_name)
        if status is not None and stat.S_ISREG(status.st_mode):
            return Ownership.of(status)
        folder = os.fstat(self.fd)
        return Ownership.private(folder.st_gid if folder.st_mode & stat.S_ISGID else None)

    # -- opening ----------------------------------------------------------------------------
    def subfolder(self, name: str, *, create_like: Ownership | None = None) -> Folder:
        """The folder ``name`` in this one, never followed through a symlink (ELOOP then).

        With ``create_like``, a missing one is made first, with that owner (as root),
        group and the bits a folder needs for those who may read such files (0640 gives
        0750). Failures are raised as the OSError they are.
        """
        if create_like is not None:
            mode = create_like.mode | ((create_like.mode & 0o444) >> 2)
            with contextlib.suppress(FileExistsError):
                os.mkdir(name, mode, dir_fd=self.fd)
                made = os.open(name, os.O_RDONLY | os.O_DIRECTORY | _OPEN_FLAGS, dir_fd=self.fd)
                try:
                    Ownership(create_like.uid, create_like.gid, mode).apply(
                        made, self.where(name))  # not narrowed by the umask
                finally:
                    os.close(made)
        fd = os.open(name, os.O_RDONLY | os.O_DIRECTORY | _OPEN_FLAGS, dir_fd=self.fd)
        return Folder(self.path / name, fd=fd)

    def open(self, name: str, flags: int = os.O_RDONLY) -> int | None:
        """Open an existing regular file; None if there is none at ``name``.

        Anything else at the name (a symlink, FIFO, socket, device, folder) is refused
        with one line naming it, without blocking.
        """
        try:
            fd = os.open(name, flags | _OPEN_FLAGS, dir_fd=self.fd)
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise self._refusal(name, exc) from None
        self._check_regular(fd, name)
        return fd

    def create(self, name: str, like: Ownership, flags: int = os.O_WRONLY) -> int:
        """Create ``name``, which must not exist (FileExistsError), with ``like``'s ownership."""
        try:
            fd = os.open(name, flags | os.O_CREAT | os.O_EXCL | _OPEN_FLAGS, PRIVATE_MODE,
                         dir_fd=self.fd)
        except FileExistsError:
            raise
        except OSError as exc:
            raise self._refusal(name, exc) from None
        try:
            like.apply(fd, self.where(name))
        except BaseException:
            os.close(fd)
            raise
        return fd

    def open_or_create(self, name: str, like: Ownership, flags: int = os.O_WRONLY, *,
                       vet: Callable[[os.stat_result], None] | None = None) -> int:
        """Open ``name`` if it is a regular file, else create it exclusively.

        ``vet``, when given, sees an existing file's status first and may refuse it
        (raise). An existing file this user may change (its own, or any as root) is
        then given ``like``'s ownership too: a lock or history first made by an older
        version, or by ``sudo`` before, then stops locking the data file's owner out.
        """
        for _attempt in range(5):
            fd = self.open(name, flags)
            if fd is None:
                try:
                    return self.create(name, like, flags)
                except FileExistsError:
                    continue  # another writer made it meanwhile: open theirs
            try:
                if vet is not None:
                    vet(os.fstat(fd))
                self.conform(fd, name, like)
            except BaseException:
                os.close(fd)
                raise
            return fd
        raise ConfigurationError("keeps appearing and disappearing; nothing was written",
                                 path=self.where(name))

    def open_append(self, name: str, like: Ownership, *,
                    vet: Callable[[os.stat_result], None] | None = None) -> int:
        """An append-only descriptor on ``name``, created (as ``like``) when missing."""
        return self.open_or_create(name, like, os.O_WRONLY | os.O_APPEND, vet=vet)

    def read(self, name: str, limit: int, *,
             vet: Callable[[os.stat_result], None] | None = None) -> bytes | None:
        """The whole of ``name``, or None if it is missing; never more than ``limit`` bytes.

        A bigger file is refused with one line, after reading at most ``limit`` + 1
        bytes (``/dev/zero`` is refused before any, being a device). ``vet``, when
        given, sees the file's status first and may refuse it (raise).
        """
        try:
            fd = self.open(name)
        except OSError as exc:
            raise ConfigurationError(f"cannot read: {exc.strerror}",
                                     path=self.where(name)) from None
        if fd is None:
            return None
        try:
            if vet is not None:
                vet(os.fstat(fd))
            return read_bounded(fd, limit, self.where(name))
        finally:
            os.close(fd)

    # -- changing ---------------------------------------------------------------------------
    def replace_with(self, name: str, data: bytes, like: Ownership) -> None:
        """Replace ``name`` with ``data`` durably: a temporary file created exclusively with
        ``like``'s ownership, written, fsynced, renamed over ``name`` (a symlink there is
        replaced, not followed), then the folder fsynced. OSError as is; no temp is left."""
        temp = f".{name}.tmp-{os.urandom(8).hex()}"
        fd = self.create(temp, like)
        try:
            try:
                write_all(fd, data)
                os.fsync(fd)
            finally:
                os.close(fd)
            self.replace(temp, name)
        except BaseException:
            with contextlib.suppress(OSError):
                self.unlink(temp)
            raise
        self.fsync()

    def replace(self, source: str, target: str) -> None:
        """Rename ``source`` over ``target``, both in this folder (OSError as is)."""
        os.replace(source, target, src_dir_fd=self.fd, dst_dir_fd=self.fd)

    def unlink(self, name: str) -> None:
        """Remove ``name`` if it is there (OSError as is, missing excepted)."""
        with contextlib.suppress(FileNotFoundError):
            os.unlink(name, dir_fd=self.fd)

    def fsync(self) -> None:
        os.fsync(self.fd)

    # -- helpers ----------------------------------------------------------------------------
    def _check_regular(self, fd: int, name: str) -> None:
        try:
            mode = os.fstat(fd).st_mode
        except OSError as exc:
            os.close(fd)
            raise self._refusal(name, exc) from None
        if not stat.S_ISREG(mode):
            os.close(fd)
            raise not_a_file(mode, self.where(name))

    def conform(self, fd: int, name: str, like: Ownership) -> None:
        """Give the open file ``name`` ``like``'s ownership, if this user may change it."""
        status = os.fstat(fd)
        if os.geteuid() != 0 and status.st_uid != os.geteuid():
            return  # another user's file: theirs to keep right (the lock checks it)
        if (status.st_uid, status.st_gid, stat.S_IMODE(status.st_mode)) != \
                (like.uid if os.geteuid() == 0 else status.st_uid, like.gid, like.mode):
            like.apply(fd, self.where(name))

    def _refusal(self, name: str, exc: OSError) -> OSError | ConfigurationError:
        """What to raise for ``exc``: a one-line refusal if something else than a regular
        file is at ``name``, else ``exc`` itself (the caller says what it was doing)."""
        if exc.errno in (errno.ELOOP, errno.EMLINK, errno.ENXIO, errno.ENODEV, errno.EISDIR,
                         errno.EOPNOTSUPP):
            # ELOOP: a symlink under O_NOFOLLOW; ENXIO: a FIFO with no reader opened for
            # writing without blocking, or a socket; ask lstat what it really is.
            try:
                status = os.stat(name, dir_fd=self.fd, follow_symlinks=False)
            except OSError:
                status = None
            if status is not None and not stat.S_ISREG(status.st_mode):
                return not_a_file(status.st_mode, self.where(name), owner=status.st_uid)
        return exc


def replace_private_file(path: Path, data: bytes) -> None:
    """Replace ``path`` with ``data`` durably, through :class:`Folder`'s safe primitives.

    The folder is created (0700) when missing and the file is 0600 (see
    :meth:`Folder.replace_with`). What a cache beside no data file needs (the Redis
    backend's local copy); OSError as is.
    """
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    with Folder(path.parent) as folder:
        folder.replace_with(path.name, data, Ownership.private())


def not_a_file(mode: int, where: str, *, owner: int | None = None) -> ConfigurationError:
    """The refusal of something that is not a regular file at ``where``."""
    if stat.S_ISDIR(mode):
        return ConfigurationError("is a folder, not a file", path=where)
    by = f" owned by {user_name(owner)}" if owner is not None and stat.S_ISLNK(mode) else ""
    return ConfigurationError(f"is {describe_kind(mode)}{by}, not a regular file; refusing "
                              "to use it", path=where)


def signature(status: os.stat_result) -> tuple[int, ...]:
    """A file's identity, size and change times: equal only if it was not written since.

    (The inode number alone can be reused once a file is gone: hold it open to be sure.)
    """
    return (status.st_dev, status.st_ino, status.st_size, status.st_mtime_ns,
            status.st_ctime_ns)


def close_if_still(fd: int, seen: tuple[int, ...]) -> None:
    """Close ``fd`` if it still is the file whose :func:`signature` was ``seen``.

    A descriptor kept open between writes can be closed behind our back (a library that
    daemonises closes every descriptor) and its number given to another file: that one
    is not ours to close.
    """
    try:
        now = os.fstat(fd)
    except OSError:
        return
    if (now.st_dev, now.st_ino) == seen[:2]:
        os.close(fd)


class KeptOpen:
    """A descriptor kept open between writes, with the :func:`signature` it had then.

    Its owner registers ``weakref.finalize(owner, kept.drop)``, so that one dropped
    without being closed still lets the descriptor go.
    """

    __slots__ = ("entry",)

    def __init__(self) -> None:
        self.entry: tuple[int, tuple[int, ...]] | None = None

    def take(self) -> tuple[int, tuple[int, ...]] | None:
        """The entry, no longer kept (the caller closes or keeps it again)."""
        entry, self.entry = self.entry, None
        return entry

    def drop(self) -> None:
        """Close the descriptor kept, if it is still that file."""
        entry = self.take()
        if entry is not None:
            close_if_still(*entry)


def write_all(fd: int, data: bytes) -> None:
    """``os.write`` until all of ``data`` is written; a write that makes no progress fails."""
    view = memoryview(data)
    while view:
        written = os.write(fd, view)
        if written <= 0:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        view = view[written:]


def read_regular_file(path: Path, limit: int, *,
                      vet: Callable[[os.stat_result], None] | None = None) -> bytes:
    """The bytes of a file an operator named (a catalog): a symlink to it is followed,
    but a FIFO, socket or device is refused without blocking, and so is a file over
    ``limit`` bytes. ``vet``, when given, sees the opened file's status and may refuse
    it (raise). FileNotFoundError and other OSErrors are raised as they are."""
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC)
    try:
        status = os.fstat(fd)
        if not stat.S_ISREG(status.st_mode):
            raise not_a_file(status.st_mode, str(path))
        if vet is not None:
            vet(status)
        return read_bounded(fd, limit, str(path))
    finally:
        os.close(fd)


def read_bounded(fd: int, limit: int, where: str) -> bytes:
    """Read ``fd`` to its end, refusing (one line) past ``limit`` bytes."""
    size = os.fstat(fd).st_size
    if size > limit:
        raise too_big(size, limit, where)
    chunks: list[bytes] = []
    total = 0
    want = max(size, 1)
    while True:
        try:
            chunk = os.read(fd, min(want, limit + 1 - total))
        except OSError as exc:
            raise ConfigurationError(f"cannot read: {exc.strerror}", path=where) from None
        if not chunk:
            break
        chunks.append(chunk)
        total += len(chunk)
        if total > limit:
            raise too_big(total, limit, where)
        want = 1 << 16  # the file grew while being read: go on in small steps
    return chunks[0] if len(chunks) == 1 else b"".join(chunks)


def too_big(size: int, limit: int, where: str) -> ConfigurationError:
    return ConfigurationError(f"file is over {limit // (1024 * 1024)} MiB "
                              f"({size / 1e6:.1f} MB or more); refusing to read it",
                              path=where)


def user_name(uid: int) -> str:
    """The login name of ``uid`` for a message, or ``uid N`` if it has none."""
    import pwd

    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return f"uid {uid}"
