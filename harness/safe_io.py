"""Reading and writing files in a folder that learner code can also write.

A notebook runs as the same user as the runner, so it can replace any file in its
workspace with a link (to grader data) or a FIFO (whose open() blocks the caller).
These helpers never follow a link, never block on a FIFO or device, and read at
most a given number of bytes.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path


def read_regular(path: Path, limit: int) -> bytes | None:
    """Return the file's bytes if it is a regular file of at most `limit` bytes, else None."""
    try:
        descriptor = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except OSError:
        return None
    with os.fdopen(descriptor, "rb") as handle:
        info = os.fstat(handle.fileno())
        if not stat.S_ISREG(info.st_mode) or info.st_size > limit:
            return None
        data = handle.read(limit + 1)
    return data if len(data) <= limit else None


def copy_regular(source: Path, target: Path, limit: int) -> bool:
    """Copy source to target if it is a regular file within `limit` bytes; return whether it was copied."""
    data = read_regular(source, limit)
    if data is None:
        return False
    target.write_bytes(data)
    return True


def write_replacing(path: Path, data: bytes) -> None:
    """Write a new regular file at path, first removing whatever is there (a link, a FIFO, a file)."""
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass
    except IsADirectoryError:
        raise
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o644)
    with os.fdopen(descriptor, "wb") as handle:
        handle.write(data)
