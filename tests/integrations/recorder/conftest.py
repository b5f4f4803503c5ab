"""Recorder fixtures: hubs on both backends (PostgreSQL: tests/postgres.py)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from hub.bootstrap import new_hub
from hub.core import Hub
from integrations.recorder import Recorder, get_recorder
from tests.postgres import LOCAL_PG, PgServer, no_postgres, run_async

__all__ = ["LOCAL_PG", "PgServer", "StartHub", "no_postgres", "run_async"]


@pytest.fixture(params=["sqlite", "postgresql"])
async def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[str | None]:
    """The recorder's db_url for each backend: None (evhub.db in the config dir) or a schema
    of its own in the session's PostgreSQL database."""
    if request.param == "sqlite":
        yield None
        return
    yield request.getfixturevalue("pg_schema")


StartHub = Callable[..., Awaitable[tuple[Hub, Recorder]]]


@pytest.fixture
async def start_hub(tmp_path: Path, db_url: str | None) -> AsyncIterator[StartHub]:
    """Start hubs with a recorder on the backend under test; all are stopped at the end."""
    hubs: list[Hub] = []

    async def start(
        recorder: dict[str, Any] | None = None,
        before_start: Callable[[Hub], None] | None = None,
        config_dir: Path | None = None,
        **sections: Any,
    ) -> tuple[Hub, Recorder]:
        section = dict(recorder or {})
        if db_url is not None:
            section.setdefault("db_url", db_url)
        directory = config_dir or tmp_path
        config = {"http": {"server_host": "127.0.0.1", "server_port": 0}, "recorder": section}
        config.update(sections)
        directory.joinpath("configuration.yaml").write_text(yaml.safe_dump(config))
        hub = new_hub(directory)
        if before_start is not None:
            before_start(hub)
        await hub.start()
        hubs.append(hub)
        return hub, get_recorder(hub)

    yield start
    for hub in hubs:
        await hub.stop()
