"""Shared fixtures: a started hub, and a check that no test leaves tasks or timers behind."""

from __future__ import annotations

import asyncio
import importlib
import shutil
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from hub.bootstrap import new_hub
from hub.core import Hub
from tests.postgres import own_pg, pg_database, pg_schema  # noqa: F401  (fixtures for every test)


@pytest.fixture(autouse=True)
async def _no_lingering_tasks() -> AsyncIterator[None]:
    """Fail a test that leaves tasks or timers running in the loop."""
    loop = asyncio.get_running_loop()
    before = asyncio.all_tasks(loop)
    yield
    # Give tasks that were cancelled a moment to finish.
    for _ in range(3):
        await asyncio.sleep(0)
    current = asyncio.current_task()
    lingering = [t for t in asyncio.all_tasks(loop) - before if t is not current and not t.done()]
    timers = [
        handle
        for handle in getattr(loop, "_scheduled", [])
        if not handle.cancelled() and "aiohttp" not in repr(handle)
    ]
    for task in lingering:
        task.cancel()
    for handle in timers:
        handle.cancel()
    assert not lingering, f"test left tasks behind: {lingering}"
    assert not timers, f"test left timers behind: {timers}"


@pytest.fixture
async def hub(tmp_path: Path) -> AsyncIterator[Hub]:
    """A started hub with an empty config dir (no configuration.yaml, so no HTTP server)."""
    instance = new_hub(tmp_path)
    await instance.start()
    yield instance
    await instance.stop()


@pytest.fixture(scope="session")
def acme_installed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """Install the example third-party package examples/evhub-acme with pip.

    It goes into a temporary target dir put on sys.path, so the entry point is found the
    way an installed distribution's is, and the project's venv stays untouched.
    """
    target = tmp_path_factory.mktemp("site")
    source = Path(__file__).parents[1] / "examples" / "evhub-acme"
    build = tmp_path_factory.mktemp("build")
    shutil.copytree(source, build / "evhub_acme")
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--quiet",
            "--no-deps",
            "--no-build-isolation",
            "--no-index",
            "--target",
            str(target),
            str(build / "evhub_acme"),
        ],
        check=True,
    )
    sys.path.insert(0, str(target))
    importlib.invalidate_caches()
    yield target
    sys.path.remove(str(target))
    for name in [m for m in sys.modules if m.startswith("evhub_acme")]:
        del sys.modules[name]
    importlib.invalidate_caches()
