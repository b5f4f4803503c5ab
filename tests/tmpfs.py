"""Directories in memory for tests that write to disk tens of thousands of times.

A month of minutes on a manual clock saves the uptime store every simulated minute, each
save an fsync'd file and directory: on a disk that is most of such a test's time, in memory
(a tmpfs, /dev/shm) nearly none. Only for tests whose subject is not the disk: what they
prove does not depend on where the files are.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

SHM = Path("/dev/shm")
# Room left in /dev/shm for a directory there (a container's default is 64 MB).
MIN_FREE = 512 * 1024 * 1024


def memory_dir(fallback: Path) -> Iterator[Path]:
    """Yield a fresh directory in /dev/shm, removed afterwards; fallback where /dev/shm is
    not a writable tmpfs with room (a fixture's body)."""
    try:
        stats = os.statvfs(SHM)
        usable = os.access(SHM, os.W_OK) and stats.f_bavail * stats.f_frsize >= MIN_FREE
    except OSError:
        usable = False
    if not usable:
        yield fallback
        return
    directory = Path(tempfile.mkdtemp(prefix="evhub-test-", dir=SHM))
    try:
        yield directory
    finally:
        shutil.rmtree(directory, ignore_errors=True)
