"""Atomic file creation: write under a hidden temporary name, `os.replace` on success.

A reader never sees a half-written output: until `commit()` the data lives in
`.<name>.partial-<pid>-<random>` beside the target (same directory, so the rename is atomic on
POSIX). On an exception, on `abort()`, or when the object is garbage-collected (or the
interpreter exits) without `commit()`, the temporary file is deleted. A process killed with
SIGKILL can leave the hidden `.partial-` file behind, never a file under the final name;
`clean_stale_partials` removes those whose process is gone (the CLI calls it for its output).
"""

from __future__ import annotations

import os
import secrets
import shutil
import weakref
from typing import BinaryIO

PARTIAL_TAG = ".partial-"  # every temporary output is `.<name>.partial-<pid>[-...]`


def temp_path_for(path: str | os.PathLike[str]) -> str:
    """A fresh hidden temporary name in the directory of `path`: `.<name>.partial-<pid>-<hex>`."""
    path = os.path.abspath(os.fspath(path))
    d, name = os.path.split(path)
    return os.path.join(d, f".{name}{PARTIAL_TAG}{os.getpid()}-{secrets.token_hex(4)}")


def pid_alive(pid: int) -> bool:
    """True if a process `pid` exists (also when it belongs to another user)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def clean_stale_partials(path: str | os.PathLike[str]) -> list[str]:
    """Removes `.<name>.partial-<pid>...` files and directories beside `path` whose process is
    gone (left by a killed run). Returns what was removed. Entries of live processes are kept."""
    path = os.path.abspath(os.fspath(path))
    d, name = os.path.split(path)
    prefix = f".{name}{PARTIAL_TAG}"
    removed = []
    try:
        entries = os.listdir(d)
    except OSError:
        return removed
    for entry in entries:
        if not entry.startswith(prefix):
            continue
        pid_text = entry[len(prefix):].split("-")[0]
        if not pid_text.isdigit() or pid_alive(int(pid_text)):
            continue
        full = os.path.join(d, entry)
        try:
            if os.path.isdir(full) and not os.path.islink(full):
                shutil.rmtree(full)
            else:
                os.unlink(full)
            removed.append(full)
        except OSError:
            pass
    return removed


def _discard(handle: BinaryIO | None, tmp: str) -> None:
    if handle is not None and not handle.closed:
        handle.close()
    try:
        os.unlink(tmp)
    except FileNotFoundError:
        pass


class AtomicFile:
    """A binary file that appears under `path` only when `commit()` succeeds.

        with AtomicFile("out.bin") as f:   # commit on normal exit, abort on exception
            f.write(b"...")
    """

    def __init__(self, path: str | os.PathLike[str]):
        self.path = os.fspath(path)
        self.tmp_path = temp_path_for(self.path)
        # O_EXCL + mode 0o666 so the final file gets the usual umask-derived permissions.
        fd = os.open(self.tmp_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
        self._file: BinaryIO = os.fdopen(fd, "wb")
        self._finalizer = weakref.finalize(self, _discard, self._file, self.tmp_path)

    @property
    def closed(self) -> bool:
        return not self._finalizer.alive

    def write(self, data) -> int:
        return self._file.write(data)

    def commit(self) -> None:
        """Flushes, fsyncs and renames the temporary file to `path`."""
        if not self._finalizer.alive:
            raise ValueError(f"{self.path}: already committed or aborted")
        try:
            self._file.flush()
            os.fsync(self._file.fileno())
            self._file.close()
            os.replace(self.tmp_path, self.path)
        except BaseException:
            self._finalizer()
            raise
        self._finalizer.detach()

    def abort(self) -> None:
        """Deletes the temporary file; `path` is left untouched."""
        self._finalizer()

    def __enter__(self) -> AtomicFile:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.commit()
        else:
            self.abort()


def atomic_write_bytes(path: str | os.PathLike[str], data: bytes) -> None:
    with AtomicFile(path) as f:
        f.write(data)
