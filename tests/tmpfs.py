"""Directories in memory for tests that write to disk tens of thousands of times.

A month of minutes on a manual clock saves the uptime store every simulated minute, each
save an fsync'd file and directory: on a disk that is about half of such a test's time, in
memory (a tmpfs, /dev/shm) next to nothing. Only for tests whose subject is not the disk:
what they prove does not depend on where the files are.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

SHM = Path("/dev/shm")
# Room /dev/shm must have left for a directory there (a month's is under 1 MB; a container's
# default /dev/shm of 64 MB, which browsers use too, is left alone).
MIN_FREE = 256 * 1024 * 1024


def memory_dir(fallback: Path) -> Iterator[Path]:
    """Yield a fresh directory in /dev/shm, removed afterwards; fallback where there is no
    writable /dev/shm with room (a fixture's body)."""
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
