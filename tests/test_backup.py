"""`evhub backup` while the hub runs, `evhub restore` on a fresh machine, what restore refuses.

The main test runs a real hub with OCPP chargers charging over websockets, backs it up
through the command while the chargers keep charging, deletes the config dir, restores the
archive into a new empty dir and starts a hub there: every user, every transaction and every
session acknowledged before the backup began is there, found through the API and in the
databases.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import json
import os
import shutil
import signal
import sqlite3
import stat
import subprocess
import sys
import tarfile
import time
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg
import pytest

from hub import __version__
from tests.hub_process import free_port, kill, open_charger, start_hub, wait_port
from tests.integrations.ocpp.conftest import RawChargePoint
from tests.postgres import run_async
from tests.test_session_durability import Acked, charge, now_iso

EVHUB = [sys.executable, "-m", "hub.cli"]
PASSWORD = "correct horse battery"
CHARGERS = 4


def evhub(
    *args: str, stdin: str = "", env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        [*EVHUB, *args],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
        env=env,
    )
    assert "Traceback" not in result.stderr, result.stderr
    return result


async def aevhub(*args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    """The command run from a test's event loop without blocking it (chargers keep talking)."""
    return await asyncio.to_thread(evhub, *args, stdin=stdin)


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def write_site(config_dir: Path, http_port: int, ocpp_port: int) -> None:
    """A site: configuration with a secret and an included file, four OCPP chargers."""
    config_dir.mkdir()
    chargers = "".join(f"    - id: CP-{i}\n" for i in range(CHARGERS))
    (config_dir / "configuration.yaml").write_text(
        "hub:\n  name: !secret site_name\n"
        f"http:\n  server_host: 127.0.0.1\n  server_port: {http_port}\n  zeroconf: false\n"
        "ocpp:\n"
        "  listeners:\n"
        f"    - {{port: {ocpp_port}, host: 127.0.0.1, security_profile: 0}}\n"
        "  heartbeat_interval: 30\n"
        "  authorize_unknown_id_tags: true\n"
        "  rate_limit: {rate: 1000, burst: 1000}\n"
        "  chargers:\n" + chargers + "automations: !include automations.yaml\n"
    )
    os.chmod(config_dir / "configuration.yaml", 0o644)
    (config_dir / "automations.yaml").write_text(
        "- id: note_start\n  triggers: [{trigger: hub, event: start}]\n"
        "  actions: [{event: started}]\n"
    )
    secrets = config_dir / "secrets.yaml"
    secrets.write_text("site_name: Depot North\n")
    os.chmod(secrets, 0o600)


async def transaction(cp: RawChargePoint, cp_id: str, acked: Acked, stop: bool = True) -> None:
    start = {"connectorId": 1, "idTag": "TAG", "meterStart": 0, "timestamp": now_iso()}
    tx_id = (await cp.call("StartTransaction", start))["transactionId"]
    acked.starts.add((cp_id, tx_id))
    if stop:
        await cp.call(
            "StopTransaction", {"transactionId": tx_id, "meterStop": 1200, "timestamp": now_iso()}
        )
        acked.stops.add((cp_id, tx_id))


async def stop_hub(child: asyncio.subprocess.Process) -> None:
    if child.returncode is None:
        child.send_signal(signal.SIGTERM)
        try:
            await asyncio.wait_for(child.wait(), 60)
        except TimeoutError:
            await kill(child)
    assert child.returncode == 0


async def wait_healthy(port: int, child: asyncio.subprocess.Process) -> None:
    """Wait until the hub answers /api/health (it serves HTTP once set up)."""
    await wait_port(port, child=child)
    deadline = time.monotonic() + 60
    async with aiohttp.ClientSession() as session:
        while True:
            with contextlib.suppress(aiohttp.ClientError):
                async with session.get(f"http://127.0.0.1:{port}/api/health") as response:
                    if response.status == 200:
                        return
            assert child.returncode is None, "the hub exited"
            assert time.monotonic() < deadline, "the hub never answered /api/health"
            await asyncio.sleep(0.2)


async def api(
    session: aiohttp.ClientSession,
    port: int,
    method: str,
    path: str,
    token: str | None = None,
    body: Any = None,
) -> tuple[int, Any]:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    async with session.request(
        method, f"http://127.0.0.1:{port}{path}", json=body, headers=headers
    ) as response:
        text = await response.text()
        return response.status, json.loads(text) if text else None


async def test_backup_while_charging_restores_on_a_fresh_machine(tmp_path: Path) -> None:
    http_port, ocpp_port = free_port(), free_port()
    source = tmp_path / "site"
    write_site(source, http_port, ocpp_port)
    added = await aevhub(
        "user", "add", "ada", "--role", "admin", "--password-stdin", "-c", str(source),
        stdin=PASSWORD + "\n",
    )  # fmt: skip
    assert added.returncode == 0, added.stderr
    made = await aevhub("token", "create", "ci", "--user", "ada", "-c", str(source))
    assert made.returncode == 0, made.stderr
    token = made.stdout.strip()

    before = Acked()  # acknowledged before the backup began: all must come back
    during = Acked()
    archive = tmp_path / "site-backup.tar.gz"
    child = await start_hub(source)
    chargers: list[RawChargePoint] = []
    load: list[asyncio.Task[None]] = []
    try:
        await wait_healthy(http_port, child)
        await wait_port(ocpp_port, child=child)
        async with aiohttp.ClientSession() as session:
            # A user made in the running hub: in its memory and on disk at once.
            status, body = await api(
                session, http_port, "POST", "/api/users", token,
                {"username": "olga", "password": PASSWORD, "role": "operator"},
            )  # fmt: skip
            assert status == 201, body
        for i in range(CHARGERS):
            chargers.append(await open_charger(ocpp_port, f"CP-{i}"))
        for _ in range(3):
            await asyncio.gather(
                *(transaction(cp, f"CP-{i}", before) for i, cp in enumerate(chargers))
            )
        await transaction(chargers[0], "CP-0", before, stop=False)  # still charging
        # The other chargers keep charging while the backup runs.
        load = [
            asyncio.create_task(charge(cp, f"CP-{i}", during)) for i, cp in enumerate(chargers) if i
        ]
        backup = await aevhub("backup", "-c", str(source), "-o", str(archive))
        assert backup.returncode == 0, backup.stderr
        assert backup.stdout.startswith(f"wrote {archive}: ")
        assert "evhub.db" in backup.stdout
        assert "ocpp_transactions.db" in backup.stdout
        assert len(during.stops) > 0, "the chargers did not charge during the backup"
        assert child.returncode is None  # the hub ran on, undisturbed
    finally:
        for task in load:
            task.cancel()
        await asyncio.gather(*load, return_exceptions=True)
        for cp in chargers:
            with contextlib.suppress(Exception):
                await cp.close()
        await stop_hub(child)
    assert mode(archive) == 0o600  # it holds the secrets

    # A fresh machine: the old config dir is gone.
    shutil.rmtree(source)
    fresh = tmp_path / "new-machine" / "evhub"
    restored = await aevhub("restore", str(archive), "-c", str(fresh))
    assert restored.returncode == 0, restored.stderr
    assert restored.stdout.startswith("restored ")
    assert mode(fresh / "secrets.yaml") == 0o600
    assert mode(fresh / "configuration.yaml") == 0o644
    assert mode(fresh / ".storage") == 0o700
    assert (fresh / "automations.yaml").is_file()
    assert not list(fresh.glob("*-wal"))

    child = await start_hub(fresh)
    try:
        await wait_healthy(http_port, child)
        async with aiohttp.ClientSession() as session:
            for name in ("ada", "olga"):
                status, _ = await api(
                    session, http_port, "POST", "/api/auth/login", None,
                    {"username": name, "password": PASSWORD},
                )  # fmt: skip
                assert status == 200, name
            status, users = await api(session, http_port, "GET", "/api/users", token)
            assert status == 200
            assert {(u["username"], u["role"]) for u in users} == {
                ("ada", "admin"),
                ("olga", "operator"),
            }
            # The recorder's sessions: rebuilt from the transaction store where it lagged.
            deadline = time.monotonic() + 60
            while True:
                status, rows = await api(
                    session, http_port, "GET", "/api/sessions?limit=10000", token
                )
                assert status == 200, rows
                sessions = {(r["charge_point_id"], r["transaction_id"]): r for r in rows}
                missing = [k for k in before.starts if (k[0], str(k[1])) not in sessions]
                if not missing or time.monotonic() > deadline:
                    break
                await asyncio.sleep(0.5)
        assert not missing, f"sessions missing after the restore: {missing}"
        for key in before.stops:
            assert sessions[(key[0], str(key[1]))]["stopped_at"] is not None, key
        (open_key,) = before.starts - before.stops
        assert sessions[(open_key[0], str(open_key[1]))]["stopped_at"] is None
    finally:
        await stop_hub(child)

    with contextlib.closing(sqlite3.connect(fresh / "ocpp_transactions.db")) as db:
        stored = {
            (cp_id, int(tx_id)): stopped
            for cp_id, tx_id, stopped in db.execute(
                "SELECT charge_point_id, id, stopped_at FROM transactions"
            )
        }
    assert before.starts <= set(stored)
    assert all(stored[key] is not None for key in before.stops)
    with contextlib.closing(sqlite3.connect(fresh / "evhub.db")) as db:
        recorded = {
            (cp_id, int(tx_id))
            for cp_id, tx_id in db.execute("SELECT charge_point_id, transaction_id FROM sessions")
        }
        restores = db.execute(
            "SELECT source, target, result FROM audit WHERE action = 'backup.restore'"
        ).fetchall()
    # One snapshot: whatever the backup's transaction store holds has its session too.
    assert set(stored) <= recorded
    assert len(restores) == 1
    assert restores[0][0] == "cli"
    assert restores[0][1].startswith(f"{archive.name} (made ")
    assert restores[0][2] == "ok"


# What restore refuses ---------------------------------------------------------------------


def small_site(directory: Path) -> None:
    """A config dir without a running hub: YAML, a store, a database."""
    directory.mkdir(parents=True)
    (directory / "configuration.yaml").write_text("hub:\n  name: Test\n")
    (directory / "secrets.yaml").write_text("x: y\n")
    os.chmod(directory / "secrets.yaml", 0o600)
    storage = directory / ".storage"
    storage.mkdir(mode=0o700)
    (storage / "core.device_registry").write_text('{"version": 1, "data": {"devices": []}}')
    os.chmod(storage / "core.device_registry", 0o600)
    with contextlib.closing(sqlite3.connect(directory / "evhub.db")) as db:
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("CREATE TABLE t (x)")
        db.execute("INSERT INTO t VALUES (42)")
        db.commit()


def members(archive: Path) -> list[tuple[tarfile.TarInfo, bytes | None]]:
    with tarfile.open(archive) as tar:
        found = []
        for member in tar.getmembers():
            handle = tar.extractfile(member) if member.isfile() else None
            found.append((member, handle.read() if handle else None))
        return found


def rewrite(
    archive: Path,
    target: Path,
    change: Any = None,
    manifest_change: Any = None,
    extra: list[tuple[tarfile.TarInfo, bytes | None]] | None = None,
    drop: str | None = None,
) -> Path:
    """Write a copy of an archive with a member changed, added or left out."""
    with tarfile.open(target, "w:gz") as tar:
        for member, original in [*members(archive), *(extra or [])]:
            if member.name == drop:
                continue
            data = original
            if member.name == "manifest.json" and manifest_change is not None:
                manifest = json.loads(original or b"")
                manifest_change(manifest)
                data = json.dumps(manifest).encode()
            elif change is not None and original is not None:
                data = change(member.name, original)
            if data is not None:
                member.size = len(data)
                tar.addfile(member, io.BytesIO(data))
            else:
                tar.addfile(member)
    return target


def listed_file(name: str, data: bytes) -> Any:
    import hashlib

    def add(manifest: dict[str, Any]) -> None:
        manifest["files"].append(
            {
                "path": name,
                "kind": "file",
                "size": len(data),
                "sha256": hashlib.sha256(data).hexdigest(),
                "mode": 0o644,
            }
        )

    return add


def file_member(name: str, data: bytes) -> tuple[tarfile.TarInfo, bytes]:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    return info, data


def test_restore_checks_the_archive_and_the_target(tmp_path: Path) -> None:
    site = tmp_path / "site"
    small_site(site)
    archive = tmp_path / "good.tar.gz"
    made = evhub("backup", "-c", str(site), "-o", str(archive))
    assert made.returncode == 0, made.stderr
    assert made.stdout.strip() == (f"wrote {archive}: 4 file(s), 1 SQLite database(s) (evhub.db)")
    again = evhub("backup", "-c", str(site), "-o", str(archive))
    assert again.returncode == 1
    assert "exists already" in again.stderr
    names = [member.name for member, _ in members(archive)]
    assert names[0] == "manifest.json"
    assert "config/evhub.db-wal" not in names
    assert "config/.storage/.lock" not in names
    manifest = json.loads({m.name: d for m, d in members(archive)}["manifest.json"] or b"")
    assert manifest["format"] == "evhub-backup"
    assert manifest["evhub_version"] == __version__
    assert {f["path"]: f["mode"] for f in manifest["files"]}["config/secrets.yaml"] == 0o600

    def refused(archive_path: Path, message: str, *extra: str) -> None:
        target = tmp_path / f"target-{len(list(tmp_path.iterdir()))}"
        result = evhub("restore", str(archive_path), "-c", str(target), *extra)
        assert result.returncode == 1, result.stdout
        assert message in result.stderr, result.stderr
        # Nothing was left behind: no half-restored config dir, no staging dir.
        leftovers = [p.name for p in target.rglob("*")] if target.exists() else []
        assert set(leftovers) <= {".storage", ".lock"}, leftovers

    refused(tmp_path / "nothing.tar.gz", "no backup archive at")
    junk = tmp_path / "junk.tar.gz"
    junk.write_bytes(os.urandom(2048))
    refused(junk, "is not an evhub backup archive")
    cut = tmp_path / "cut.tar.gz"
    cut.write_bytes(archive.read_bytes()[: archive.stat().st_size // 2])
    refused(cut, "is damaged or cut short")
    tampered = rewrite(
        archive,
        tmp_path / "tampered.tar.gz",
        change=lambda name, data: (
            data.replace(b"Test", b"Evil") if name.endswith("n.yaml") else data
        ),
    )
    refused(tampered, "the archive is damaged: config/configuration.yaml does not match")
    refused(
        rewrite(archive, tmp_path / "short.tar.gz", drop="config/secrets.yaml"),
        "the archive is incomplete: config/secrets.yaml missing",
    )
    refused(
        rewrite(archive, tmp_path / "extra.tar.gz", extra=[file_member("config/cron.yaml", b"x")]),
        "unlisted file 'config/cron.yaml'",
    )
    escape = b"* * * * * root evil\n"
    for name, unsafe in (("escape", "config/../../etc/cron.d/evil"), ("absolute", "/etc/evil")):
        refused(
            rewrite(
                archive,
                tmp_path / f"{name}.tar.gz",
                manifest_change=listed_file(unsafe, escape),
                extra=[file_member(unsafe, escape)],
            ),
            f"unsafe path '{unsafe}'",
        )
    link = tarfile.TarInfo("config/link")
    link.type, link.linkname = tarfile.SYMTYPE, "/etc/passwd"
    refused(
        rewrite(archive, tmp_path / "link.tar.gz", extra=[(link, None)]),
        "link or device 'config/link'",
    )

    def newer_format(manifest: dict[str, Any]) -> None:
        manifest["format_version"] = 2

    refused(
        rewrite(archive, tmp_path / "format.tar.gz", manifest_change=newer_format),
        "backup format 2, newer than this evhub reads (1)",
    )

    def other_format(manifest: dict[str, Any]) -> None:
        manifest["format"] = "something-else"

    refused(
        rewrite(archive, tmp_path / "other.tar.gz", manifest_change=other_format),
        "not an evhub backup",
    )

    def newer_evhub(manifest: dict[str, Any]) -> None:
        manifest["evhub_version"] = "999.0.0"

    newer = rewrite(archive, tmp_path / "newer.tar.gz", manifest_change=newer_evhub)
    refused(newer, "made by evhub 999.0.0, newer than this evhub")
    forced = evhub("restore", str(newer), "-c", str(tmp_path / "forced"), "--force")
    assert forced.returncode == 0, forced.stderr

    # A config dir a hub holds: refused, whether or not it is empty.
    from hub.util import lock_config_dir

    held_dir = tmp_path / "held"
    held_dir.mkdir()
    with lock_config_dir(held_dir):
        refused_running = evhub("restore", str(archive), "-c", str(held_dir))
        assert refused_running.returncode == 1
        assert f"a hub is running on {held_dir}: stop it first" in refused_running.stderr
    assert [p.name for p in held_dir.rglob("*")] == [".storage", ".lock"]

    # A config dir in use: refused without --force; with it, the old files are moved aside.
    target = tmp_path / "in-use"
    target.mkdir()
    (target / "configuration.yaml").write_text("hub:\n  name: Old\n")
    (target / "evhub.db-wal").write_bytes(b"stale")
    not_empty = evhub("restore", str(archive), "-c", str(target))
    assert not_empty.returncode == 1
    assert "is not empty (configuration.yaml, evhub.db-wal)" in not_empty.stderr
    assert (target / "configuration.yaml").read_text() == "hub:\n  name: Old\n"
    replaced = evhub("restore", str(archive), "-c", str(target), "--force")
    assert replaced.returncode == 0, replaced.stderr
    assert "the config dir's previous files are in" in replaced.stderr
    (aside,) = tmp_path.glob("in-use.pre-restore-*")
    assert (aside / "configuration.yaml").read_text() == "hub:\n  name: Old\n"
    assert (aside / "evhub.db-wal").read_bytes() == b"stale"
    assert not (target / "evhub.db-wal").exists()  # a stale WAL would be replayed
    assert (target / "configuration.yaml").read_text() == "hub:\n  name: Test\n"
    assert mode(target / "secrets.yaml") == 0o600
    with contextlib.closing(sqlite3.connect(target / "evhub.db")) as db:
        assert db.execute("SELECT x FROM t").fetchall() == [(42,)]
    # The restore is in the restored hub's pending audit entries.
    auth = json.loads((target / ".storage" / "core.auth").read_text())["data"]
    assert [e["action"] for e in auth["pending_audit"]] == ["backup.restore"]


def test_a_recorder_database_outside_the_config_dir(tmp_path: Path) -> None:
    site = tmp_path / "site"
    small_site(site)
    elsewhere = tmp_path / "var" / "recorder.db"
    elsewhere.parent.mkdir()
    shutil.move(site / "evhub.db", elsewhere)
    (site / "configuration.yaml").write_text(f"recorder:\n  db_url: sqlite:///{elsewhere}\n")
    archive = tmp_path / "b.tar.gz"
    made = evhub("backup", "-c", str(site), "-o", str(archive))
    assert made.returncode == 0, made.stderr
    assert "(recorder.db)" in made.stdout
    elsewhere.unlink()
    restored = evhub("restore", str(archive), "-c", str(tmp_path / "new"))
    assert restored.returncode == 0, restored.stderr
    assert f"the recorder's database is back at {elsewhere}" in restored.stderr
    with contextlib.closing(sqlite3.connect(elsewhere)) as db:
        assert db.execute("SELECT x FROM t").fetchall() == [(42,)]
    # Restored again elsewhere, the database there is not overwritten without --force.
    again = evhub("restore", str(archive), "-c", str(tmp_path / "newer"))
    assert again.returncode == 1
    assert f"{elsewhere} (the recorder's database outside the config dir) exists" in again.stderr


def test_a_postgresql_recorder_is_dumped_or_said_to_be_missing(
    tmp_path: Path, pg_schema: str
) -> None:
    schema = pg_schema.rsplit("search_path=", 1)[1]

    async def fill() -> None:
        conn = await asyncpg.connect(pg_schema.split("?", maxsplit=1)[0])
        try:
            await conn.execute(f"CREATE TABLE {schema}.probe_sessions (tx text)")
            await conn.execute(f"INSERT INTO {schema}.probe_sessions VALUES ('tx-1')")
        finally:
            await conn.close()

    run_async(fill)
    site = tmp_path / "site"
    site.mkdir()
    (site / "configuration.yaml").write_text(f"recorder:\n  db_url: {pg_schema}\n")
    archive = tmp_path / "pg.tar.gz"
    made = evhub("backup", "-c", str(site), "-o", str(archive))
    assert made.returncode == 0, made.stderr
    assert "a PostgreSQL dump" in made.stdout
    assert "note:" not in made.stderr
    restored = evhub("restore", str(archive), "-c", str(tmp_path / "new"))
    assert restored.returncode == 0, restored.stderr
    dump = tmp_path / "new" / "recorder-postgresql.dump"
    assert mode(dump) == 0o600
    assert f"pg_restore --clean --if-exists --no-owner --dbname URL {dump}" in restored.stderr
    listing = subprocess.run(
        ["pg_restore", "--list", str(dump)], capture_output=True, text=True, check=True
    )
    assert f"TABLE {schema} probe_sessions" in listing.stdout
    # The dump is not backed up again with the restored config dir.
    second = evhub("backup", "-c", str(tmp_path / "new"), "-o", str(tmp_path / "again.tar.gz"))
    assert second.returncode == 0, second.stderr
    assert "recorder-postgresql.dump" not in {m.name for m, _ in members(tmp_path / "again.tar.gz")}

    # Without pg_dump the backup is made, and says plainly what it lacks.
    env = {**os.environ, "PATH": str(tmp_path / "no-tools")}
    without = evhub("backup", "-c", str(site), "-o", str(tmp_path / "nopg.tar.gz"), env=env)
    assert without.returncode == 0, without.stderr
    assert "the recorder's PostgreSQL database is NOT in this backup" in without.stderr
    restored = evhub("restore", str(tmp_path / "nopg.tar.gz"), "-c", str(tmp_path / "new2"))
    assert restored.returncode == 0, restored.stderr
    assert "does not hold the recorder's PostgreSQL database" in restored.stderr


@pytest.mark.parametrize("args", [("backup",), ("restore", "x.tar.gz")])
def test_a_missing_config_dir_or_archive_is_a_message(
    tmp_path: Path, args: tuple[str, ...]
) -> None:
    result = evhub(*args, "-c", str(tmp_path / "nowhere"))
    assert result.returncode == 1
    assert "nowhere" in result.stderr or "no backup archive" in result.stderr
