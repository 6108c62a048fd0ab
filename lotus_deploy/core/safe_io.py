"""Writing files without ever losing a user's: the one atomic write, permission and lock helpers.

Rules every writer in the project follows (README "Files on disk"):

* a file is written to a hidden temporary name in its final folder, then renamed into place, so a
  crash or Ctrl-C never leaves a half-written file under the final name;
* without ``overwrite`` the rename cannot replace anything (a hard link that fails if the name is
  taken), so two writers racing for one name cannot silently replace each other;
* files get ``0o666`` and folders ``0o777`` less the umask, as ``open()`` and ``mkdir`` would give
  them; the umask is read once, without changing it (that would race with writer threads);
* an output folder is checked (creatable, writable, not a file) before any model is loaded, and every
  filesystem error becomes one line naming the path and the fix.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import socket
import tempfile
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO, Any

from .errors import ArtifactExistsError, OutputPathError

_LOCKS_HELD: dict[Path, int] = {}


def _read_umask() -> int:
    """The process umask: from /proc (no side effect) where it exists, else by setting it back at once."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass  # no /proc (macOS): fall back to the classic read below
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


UMASK = _read_umask()
FILE_MODE = 0o666 & ~UMASK
DIR_MODE = 0o777 & ~UMASK


def describe_os_error(exc: OSError, path: Path | str) -> OutputPathError:
    """One line for a filesystem error on ``path``, with the fix for the common causes."""
    reason = exc.strerror or type(exc).__name__
    fixes = {
        errno.EACCES: "make it writable (chmod/chown) or choose another output",
        errno.EPERM: "it may be immutable (lsattr) or owned by another user; choose another output",
        errno.EROFS: "the filesystem is read-only; choose an output on a writable disk",
        errno.ENOSPC: "the disk is full; free space or choose another output",
        errno.EDQUOT: "the disk quota is exhausted; free space or choose another output",
        errno.ENOTDIR: "a part of the path is a file, not a folder; choose another output",
        errno.EEXIST: "choose another output, or pass --force",
        errno.EISDIR: "a folder has that name; choose another output",
    }
    return OutputPathError(f"cannot write {path}: {reason}", fixes.get(exc.errno or 0, "check the path and its permissions"))


def ensure_folder(folder: Path) -> Path:
    """Create ``folder`` (and parents) with the umask's permissions; one-line error if impossible."""
    folder = Path(folder)
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except FileExistsError:
        raise OutputPathError(f"{folder} exists and is not a folder", "choose another output folder") from None
    except OSError as exc:
        raise describe_os_error(exc, folder) from None
    return folder


def check_writable_folder(folder: Path) -> None:
    """Raise OutputPathError unless ``folder`` is (or can be created as) a folder we can write in.

    Probed by creating and removing a hidden file, because permission bits alone miss read-only
    mounts, immutable folders and ACLs. A folder that does not exist yet is left uncreated.
    """
    folder = Path(folder)
    existing = folder
    while not existing.exists():
        if existing.parent == existing:
            break
        existing = existing.parent
    if existing.exists() and not existing.is_dir():
        what = "exists and is not a folder" if existing == folder else f"cannot be created: {existing} is a file"
        raise OutputPathError(f"{folder} {what}", "choose another output folder")
    probe = existing / f".lotus-write-probe-{uuid.uuid4().hex[:12]}"
    try:
        fd = os.open(probe, os.O_CREAT | os.O_EXCL | os.O_WRONLY, FILE_MODE)
    except OSError as exc:
        raise describe_os_error(exc, folder if existing == folder else existing) from None
    os.close(fd)
    probe.unlink()


def check_result_files(paths: list[Path], force: bool) -> None:
    """Before any work: ``paths`` can be written (folder writable; existing ones only with ``force``)."""
    for folder in dict.fromkeys(Path(p).parent for p in paths):
        check_writable_folder(folder)
    for path in map(Path, paths):
        if path.is_dir():
            raise OutputPathError(f"{path} is a folder, but an output file of that name is due", "move it away or choose another --output/--name")
        if path.exists() and not force:
            raise ArtifactExistsError(f"{path} already exists", "pass --force to overwrite it, or choose another --output/--name")


def _temp_path(final: Path) -> Path:
    return final.parent / f".{final.name}.{uuid.uuid4().hex[:12]}.tmp"


def _open_new(path: Path, binary: bool) -> IO[Any]:
    fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, FILE_MODE)
    return os.fdopen(fd, "wb" if binary else "w", encoding=None if binary else "utf-8")


def publish_file(tmp: Path, final: Path, overwrite: bool) -> None:
    """Move a finished temporary file to ``final``: replacing only when ``overwrite``.

    Without ``overwrite`` a hard link publishes it, which fails when the name is taken (also by a
    concurrent writer); where hard links are not supported, a checked rename is the fallback.
    """
    if overwrite:
        os.replace(tmp, final)
        return
    try:
        os.link(tmp, final)
    except FileExistsError:
        tmp.unlink(missing_ok=True)
        raise ArtifactExistsError(f"{final} already exists", "pass --force to overwrite it, or choose another output") from None
    except OSError as exc:
        if exc.errno not in (errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP, errno.EXDEV, errno.EMLINK):
            raise
        if final.exists():
            tmp.unlink(missing_ok=True)
            raise ArtifactExistsError(f"{final} already exists", "pass --force to overwrite it, or choose another output") from None
        os.replace(tmp, final)
        return
    tmp.unlink()


def atomic_write(path: Path | str, write: Callable[[IO[Any]], object], binary: bool = True, overwrite: bool = True) -> Path:
    """Write ``path`` through a hidden temporary file in the same folder, then publish it.

    ``write`` receives the open file. Filesystem errors become one-line :class:`OutputPathError`s.
    """
    final = Path(path)
    tmp = _temp_path(final)
    try:
        with _open_new(tmp, binary) as handle:
            write(handle)
        publish_file(tmp, final, overwrite)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise describe_os_error(exc, final) from None
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return final


def write_text_atomic(path: Path | str, text: str, overwrite: bool = True) -> Path:
    return atomic_write(path, lambda handle: handle.write(text), binary=False, overwrite=overwrite)


def write_json_atomic(path: Path | str, data: Any, overwrite: bool = True) -> Path:
    """JSON (indented, UTF-8, trailing newline) written atomically."""
    return write_text_atomic(path, json.dumps(data, indent=2, sort_keys=False, default=str, ensure_ascii=False) + "\n", overwrite=overwrite)


def make_temp_folder(parent: Path, prefix: str) -> Path:
    """A new hidden folder in ``parent`` with the umask's permissions (mkdtemp alone gives 0700)."""
    try:
        folder = Path(tempfile.mkdtemp(prefix=prefix, dir=ensure_folder(parent)))
        os.chmod(folder, DIR_MODE)
    except OSError as exc:
        raise describe_os_error(exc, parent) from None
    return folder


def normalize_permissions(root: Path) -> None:
    """Give every file and folder under ``root`` the umask's permissions.

    Third-party writers (onnx's external data, ONNX Runtime, TensorRT) create files their own way;
    this runs on a staging folder just before it is published.
    """
    root = Path(root)
    os.chmod(root, DIR_MODE)
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames:
            os.chmod(Path(dirpath) / name, DIR_MODE)
        for name in filenames:
            path = Path(dirpath) / name
            if not path.is_symlink():
                os.chmod(path, FILE_MODE)


def _lock_owner_alive(lock: Path) -> bool:
    """False only when the lock names a process on this host that no longer exists."""
    try:
        owner = json.loads(lock.read_text())
        pid, host = int(owner["pid"]), str(owner["host"])
    except (OSError, ValueError, KeyError, TypeError):
        return True  # unreadable or being written: assume a live owner
    if host != socket.gethostname():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def lock_path(target: Path) -> Path:
    """The lock file for ``target``: hidden, beside it (``.NAME.lock``)."""
    target = Path(target)
    return target.parent / f".{target.name}.lock"


@contextlib.contextmanager
def publish_lock(target: Path, what: str = "artifact") -> Iterator[Path]:
    """Hold ``.NAME.lock`` beside ``target`` for the duration; a second holder fails in one line.

    Re-entrant within one process (a stage that builds its parent takes the lock of each). A lock
    left by a process that died on this host is taken over.
    """
    lock = lock_path(Path(target).absolute())
    if lock in _LOCKS_HELD:
        _LOCKS_HELD[lock] += 1
        try:
            yield lock
        finally:
            _LOCKS_HELD[lock] -= 1
        return
    ensure_folder(lock.parent)
    owner = json.dumps({"pid": os.getpid(), "host": socket.gethostname()})
    for _attempt in range(2):
        try:
            fd = os.open(lock, os.O_CREAT | os.O_EXCL | os.O_WRONLY, FILE_MODE)
            break
        except FileExistsError:
            if _lock_owner_alive(lock):
                raise ArtifactExistsError(
                    f"another lotus-deploy process is writing {target} (lock {lock})",
                    f"wait for it to finish, or delete {lock} if no such process runs",
                ) from None
            lock.unlink(missing_ok=True)  # its owner died: take the lock over
        except OSError as exc:
            raise describe_os_error(exc, lock) from None
    else:
        raise ArtifactExistsError(f"could not take the lock {lock} for {what} {target}", "retry")
    with os.fdopen(fd, "w") as handle:
        handle.write(owner)
    _LOCKS_HELD[lock] = 1
    try:
        yield lock
    finally:
        del _LOCKS_HELD[lock]
        lock.unlink(missing_ok=True)
