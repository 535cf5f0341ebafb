"""One lock between processes, for every place two ndogo processes could collide.

A stage being built, a model being timed, a sweep folder, a training run and the
me5s conversion each take an exclusive `flock` on a file beside what they
protect. The OS drops the lock when its holder dies (even on kill -9), so a
crashed run never leaves a stale lock behind. Imports nothing of ndogo.
"""

from __future__ import annotations

import fcntl
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


@contextmanager
def file_lock(path: str | Path, *, wait: bool = True, busy: Exception | None = None) -> Iterator[None]:
    """Hold an exclusive lock on `path` (created, with its folder) for the block.

    With `wait=False` a lock another process holds is not waited for: `busy` (or a
    BlockingIOError) is raised at once, for work that must not run twice at the same time.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
        except BlockingIOError:
            if busy is not None:
                raise busy from None
            raise
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
