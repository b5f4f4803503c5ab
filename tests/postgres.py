"""A real PostgreSQL for tests: the local one on 127.0.0.1:5432, or one started here with
initdb; a database made for the session, and a schema of its own for each test."""

from __future__ import annotations

import asyncio
import contextlib
import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import threading
import uuid
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any, NoReturn, TypeVar

import asyncpg
import pytest

_T = TypeVar("_T")
LOCAL_PG = "postgresql://postgres@127.0.0.1:5432/postgres"


def run_async(factory: Callable[[], Awaitable[_T]]) -> _T:
    """Run a coroutine to completion on a loop of its own, in a thread (from sync fixtures)."""
    box: dict[str, Any] = {}

    def target() -> None:
        try:
            box["result"] = asyncio.run(factory())  # type: ignore[arg-type]
        except BaseException as err:
            box["error"] = err

    thread = threading.Thread(target=target)
    thread.start()
    thread.join()
    if "error" in box:
        raise box["error"]
    return box["result"]  # type: ignore[no-any-return]


async def _reachable(dsn: str) -> bool:
    try:
        conn = await asyncpg.connect(dsn, timeout=3)
    except (TimeoutError, OSError, asyncpg.PostgresError):
        return False
    await conn.close()
    return True


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _as_postgres(args: list[str]) -> list[str]:
    # initdb and postgres refuse to run as root.
    if os.geteuid() == 0:
        return ["runuser", "-u", "postgres", "--", *args]
    return args


class PgServer:
    """A throw-away PostgreSQL cluster made with initdb, started and stopped with pg_ctl."""

    def __init__(self, bindir: Path) -> None:
        self.bindir = bindir
        self.base = Path(tempfile.mkdtemp(prefix="evhub-pg-"))
        if os.geteuid() == 0:
            entry = pwd.getpwnam("postgres")
            os.chown(self.base, entry.pw_uid, entry.pw_gid)
        self.data = self.base / "data"
        self.port = _free_port()
        subprocess.run(
            _as_postgres(
                [str(bindir / "initdb"), "-D", str(self.data), "-U", "postgres", "-A", "trust"]
            ),
            check=True,
            capture_output=True,
        )

    @classmethod
    def binaries(cls) -> Path | None:
        """Where initdb and pg_ctl are (None: not installed)."""
        found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
        return Path(found[-1]).parent if found else None

    @property
    def dsn(self) -> str:
        """The admin DSN of the cluster."""
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def _ctl(self, *args: str) -> list[str]:
        ctl = [str(self.bindir / "pg_ctl"), "-D", str(self.data), "-l", str(self.base / "log")]
        return _as_postgres([*ctl, "-w", *args])

    def start(self) -> None:
        """Start the server (again) on its port."""
        options = f"-p {self.port} -k {self.base} -c listen_addresses=127.0.0.1 -c fsync=off"
        subprocess.run(self._ctl("-o", options, "start"), check=True, capture_output=True)

    def stop(self) -> None:
        """Stop the server, ending its sessions."""
        subprocess.run(self._ctl("-m", "fast", "stop"), check=False, capture_output=True)

    def remove(self) -> None:
        """Stop the server and delete the cluster."""
        self.stop()
        shutil.rmtree(self.base, ignore_errors=True)


@contextlib.contextmanager
def _own_server() -> Iterator[str | None]:
    """Start a throw-away PostgreSQL with initdb/pg_ctl; yield its admin DSN (None: no binaries)."""
    bindir = PgServer.binaries()
    if bindir is None:
        yield None
        return
    server = PgServer(bindir)
    try:
        server.start()
        yield server.dsn
    finally:
        server.remove()


def no_postgres(message: str) -> NoReturn:
    """Skip a test for want of PostgreSQL, or fail it in CI."""
    if os.environ.get("CI") == "true":
        pytest.fail(message)
    pytest.skip(message)


@pytest.fixture
def own_pg() -> Iterator[PgServer]:
    """A PostgreSQL of the test's own, which it may stop and start."""
    bindir = PgServer.binaries()
    if bindir is None:
        no_postgres("no initdb to start a PostgreSQL")
    server = PgServer(bindir)
    try:
        server.start()
        yield server
    finally:
        server.remove()


@pytest.fixture(scope="session")
def pg_database() -> Iterator[str]:
    """A PostgreSQL database made for this test session (dropped after); yields its DSN."""
    with contextlib.ExitStack() as stack:
        admin: str | None = LOCAL_PG
        if not run_async(lambda: _reachable(LOCAL_PG)):
            admin = stack.enter_context(_own_server())
        if admin is None:
            no_postgres("no PostgreSQL on 127.0.0.1:5432 and no initdb to start one")
        name = f"evhub_test_{uuid.uuid4().hex[:12]}"

        async def create() -> None:
            conn = await asyncpg.connect(admin)
            try:
                await conn.execute(f'CREATE DATABASE "{name}"')
            finally:
                await conn.close()

        async def drop() -> None:
            conn = await asyncpg.connect(admin)
            try:
                await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            finally:
                await conn.close()

        run_async(create)
        try:
            yield admin.rsplit("/", 1)[0] + "/" + name
        finally:
            run_async(drop)


@pytest.fixture
def pg_schema(pg_database: str) -> Iterator[str]:
    """A schema of the test's own in the session's PostgreSQL database; yields its DSN."""
    schema = f"t_{uuid.uuid4().hex[:12]}"

    async def run(sql: str) -> None:
        conn = await asyncpg.connect(pg_database)
        try:
            await conn.execute(sql)
        finally:
            await conn.close()

    run_async(lambda: run(f"CREATE SCHEMA {schema}"))
    try:
        yield f"{pg_database}?search_path={schema}"
    finally:
        run_async(lambda: run(f"DROP SCHEMA {schema} CASCADE"))
