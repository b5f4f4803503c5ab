"""Versioned JSON stores: files on disk, atomic writes, migrations, delayed saves."""

from __future__ import annotations

import asyncio
import json
import os
import stat
import threading
from pathlib import Path
from typing import Any

import pytest

import hub.storage as storage_module
from hub.bootstrap import new_hub
from hub.clock import use_manual_clock
from hub.core import Hub
from hub.exceptions import StorageError
from hub.storage import Store


def read_file(path: Path) -> dict[str, Any]:
    return json.loads(path.read_text(encoding="utf-8"))  # type: ignore[no-any-return]


def write_file(hub: Hub, key: str, document: Any) -> Path:
    path = hub.path(".storage", key)
    path.parent.mkdir(exist_ok=True)
    text = document if isinstance(document, str) else json.dumps(document)
    path.write_text(text, encoding="utf-8")
    return path


def storage_listing(hub: Hub) -> list[str]:
    return sorted(os.listdir(hub.path(".storage")))


@pytest.fixture
def writes(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Record the name of every store file written to disk, once per write."""
    written: list[str] = []
    real_write = storage_module._write_atomic

    def counting_write(path: Path, payload: bytes, private: bool) -> None:
        written.append(path.name)
        real_write(path, payload, private)

    monkeypatch.setattr(storage_module, "_write_atomic", counting_write)
    return written


async def test_save_writes_versioned_document_and_load_reads_it(hub: Hub) -> None:
    store: Store[dict[str, Any]] = Store(hub, 2, "test.things", minor_version=3)
    assert store.path == hub.path(".storage", "test.things")
    assert await store.load() is None

    await store.save({"answer": 42, "name": "Borne Nord ⚡"})

    assert read_file(store.path) == {
        "version": 2,
        "minor_version": 3,
        "key": "test.things",
        "data": {"answer": 42, "name": "Borne Nord ⚡"},
    }
    # Every store may hold personal data: none is readable by other users.
    assert stat.S_IMODE(store.path.stat().st_mode) == 0o600
    fresh: Store[dict[str, Any]] = Store(hub, 2, "test.things", minor_version=3)
    assert await fresh.load() == {"answer": 42, "name": "Borne Nord ⚡"}


async def test_private_store_file_is_readable_by_owner_only(hub: Hub) -> None:
    store: Store[list[str]] = Store(hub, 1, "test.secrets", private=True)
    await store.save(["token"])
    assert stat.S_IMODE(store.path.stat().st_mode) == 0o600
    await store.save(["token", "another"])
    assert stat.S_IMODE(store.path.stat().st_mode) == 0o600


async def test_crash_during_write_leaves_old_file_and_no_temp_file(
    hub: Hub, monkeypatch: pytest.MonkeyPatch
) -> None:
    store: Store[dict[str, int]] = Store(hub, 1, "test.atomic")
    await store.save({"generation": 1})
    before = store.path.read_bytes()

    def crash(_src: Any, _dst: Any) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", crash)
    with pytest.raises(StorageError, match="No space left on device"):
        await store.save({"generation": 2})

    assert store.path.read_bytes() == before
    assert "test.atomic" in storage_listing(hub)
    assert [name for name in storage_listing(hub) if name.endswith(".tmp")] == []


async def test_save_serialises_data_when_called(hub: Hub) -> None:
    store: Store[dict[str, int]] = Store(hub, 1, "test.snapshot")
    data = {"value": 1}
    task = asyncio.ensure_future(store.save(data))
    await asyncio.sleep(0)  # the save has started and is waiting for the executor
    data["value"] = 2
    await task
    assert read_file(store.path)["data"] == {"value": 1}


async def test_saves_land_in_the_order_they_were_made(hub: Hub) -> None:
    store: Store[int] = Store(hub, 1, "test.order")
    await asyncio.gather(*(store.save(number) for number in range(20)))
    assert read_file(store.path)["data"] == 19


async def test_unserialisable_data_is_refused(hub: Hub) -> None:
    store: Store[Any] = Store(hub, 1, "test.bad_data")
    with pytest.raises(StorageError, match="cannot serialise"):
        await store.save({"when": object()})
    assert not store.path.exists()


async def test_values_orjson_refuses_never_fail_a_whole_store(hub: Hub) -> None:
    """A single attribute beyond 64 bits (or a lone surrogate) must not stop saving."""
    store: Store[dict[str, Any]] = Store(hub, 1, "test.odd")
    odd = {"big": 2**70, "small": -(2**70), "nan": float("nan"), "text": "bad \udc80 half"}
    rows = [{"i": index} for index in range(2500)] + [odd]
    await store.save({"odd": odd, "rows": rows})
    await store.save({"odd": odd, "rows": rows}, immutable=True)
    loaded = json.loads(store.path.read_text(encoding="ascii"))["data"]
    expected = {"big": 2**70, "small": -(2**70), "nan": None, "text": "bad \udc80 half"}
    assert loaded["odd"] == expected
    assert loaded["rows"][-1] == expected
    assert loaded["rows"][0] == {"i": 0}


async def test_restore_state_saves_despite_an_odd_attribute(hub: Hub) -> None:
    from hub.restore_state import async_load_restore_state, restore_state_data

    await async_load_restore_state(hub)
    hub.states.set("sensor.odd", "1", {"big": 2**70})
    hub.states.set("sensor.plain", "2", {"x": 1})
    data = restore_state_data(hub)
    assert data is not None
    await data.async_dump()
    saved = read_file(hub.path(".storage", "core.restore_state"))["data"]["states"]
    assert {row[0] for row in saved} >= {"sensor.odd", "sensor.plain"}


async def test_older_version_is_migrated_and_saved(hub: Hub) -> None:
    write_file(
        hub, "test.migrate", {"version": 1, "minor_version": 1, "key": "x", "data": ["a", "b"]}
    )
    calls: list[tuple[int, int, Any]] = []

    def migrate(version: int, minor: int, data: Any) -> Any:
        calls.append((version, minor, data))
        return {"items": data}

    store: Store[dict[str, list[str]]] = Store(hub, 2, "test.migrate", migrate=migrate)
    assert await store.load() == {"items": ["a", "b"]}
    assert calls == [(1, 1, ["a", "b"])]
    assert read_file(store.path) == {
        "version": 2,
        "minor_version": 1,
        "key": "test.migrate",
        "data": {"items": ["a", "b"]},
    }
    # Migrated once: the next load reads the new version as it is.
    again: Store[dict[str, list[str]]] = Store(hub, 2, "test.migrate", migrate=migrate)
    assert await again.load() == {"items": ["a", "b"]}
    assert len(calls) == 1


async def test_async_migration_of_a_minor_version(hub: Hub) -> None:
    write_file(hub, "test.minor", {"version": 1, "minor_version": 1, "key": "x", "data": {}})

    async def migrate(version: int, minor: int, data: Any) -> Any:
        await asyncio.sleep(0)
        return {**data, "added_in": f"{version}.{minor + 1}"}

    store: Store[dict[str, str]] = Store(hub, 1, "test.minor", minor_version=2, migrate=migrate)
    assert await store.load() == {"added_in": "1.2"}
    assert read_file(store.path)["minor_version"] == 2


async def test_older_major_version_without_migration_is_an_error(hub: Hub) -> None:
    write_file(hub, "test.nomigrate", {"version": 1, "key": "x", "data": 1})
    store: Store[int] = Store(hub, 2, "test.nomigrate")
    with pytest.raises(StorageError, match="needs a migration"):
        await store.load()


async def test_failing_migration_leaves_file_alone(hub: Hub) -> None:
    path = write_file(hub, "test.badmigrate", {"version": 1, "key": "x", "data": 1})
    before = path.read_bytes()

    def migrate(version: int, minor: int, data: Any) -> Any:
        raise KeyError("missing")

    store: Store[int] = Store(hub, 2, "test.badmigrate", migrate=migrate)
    with pytest.raises(StorageError, match=r"migration from version 1\.1 to 2\.1 failed"):
        await store.load()
    assert path.read_bytes() == before


async def test_newer_version_is_refused_and_never_overwritten(
    hub: Hub, caplog: pytest.LogCaptureFixture
) -> None:
    path = write_file(hub, "test.newer", {"version": 3, "key": "x", "data": {"future": True}})
    before = path.read_bytes()
    store: Store[dict[str, bool]] = Store(hub, 2, "test.newer")

    with pytest.raises(StorageError, match="newer") as err:
        await store.load()
    assert str(path) in str(err.value)

    with pytest.raises(StorageError, match="newer"):
        await store.save({"future": False})
    store.delay_save(lambda: {"future": False}, 60)
    with pytest.raises(StorageError, match="newer"):
        await store.flush()
    # A delayed write has no caller to raise to: it logs.
    clock = use_manual_clock(hub)
    store.delay_save(lambda: {"future": False}, 1)
    await clock.advance(1)
    await hub.block_till_done()
    assert "Error writing" in caplog.text
    assert path.read_bytes() == before


async def test_save_without_load_does_not_overwrite_a_newer_version(hub: Hub) -> None:
    path = write_file(hub, "test.newer2", {"version": 5, "key": "x", "data": []})
    before = path.read_bytes()
    store: Store[list[int]] = Store(hub, 1, "test.newer2")
    with pytest.raises(StorageError, match="newer"):
        await store.save([1])
    assert path.read_bytes() == before


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ('{"version": 1, "data": [1, 2', "invalid JSON at line 1 column"),
        ("", "invalid JSON at line 1 column 1"),
        ("[1, 2]", "expected a JSON object, found list"),
        ('{"data": 1}', "'version' and 'minor_version' must be integers"),
        ('{"version": "1", "data": 1}', "'version' and 'minor_version' must be integers"),
        ('{"version": 1}', "no 'data' key"),
    ],
)
async def test_corrupt_file_is_reported_with_its_name_and_fault(
    hub: Hub, content: str, message: str
) -> None:
    path = write_file(hub, "test.corrupt", content)
    store: Store[Any] = Store(hub, 1, "test.corrupt")
    with pytest.raises(StorageError, match=message) as err:
        await store.load()
    assert str(path) in str(err.value)


async def test_delay_save_coalesces_and_latest_data_wins(hub: Hub, writes: list[str]) -> None:
    clock = use_manual_clock(hub)
    store: Store[int] = Store(hub, 1, "test.delayed")
    called: list[int] = []

    def data_func(number: int) -> Any:
        def produce() -> int:
            called.append(number)
            return number

        return produce

    for number in range(5):
        store.delay_save(data_func(number), 10)
        await clock.advance(1)
    await clock.advance(4.9)
    assert not store.path.exists()
    assert called == []

    await clock.advance(0.1)  # the delay runs on the hub clock: no real time passes
    await hub.block_till_done()

    assert writes.count("test.delayed") == 1
    assert called == [4]
    assert read_file(store.path)["data"] == 4


async def test_delay_save_deadline_is_set_by_the_first_call(hub: Hub, writes: list[str]) -> None:
    clock = use_manual_clock(hub)
    store: Store[int] = Store(hub, 1, "test.deadline")
    store.delay_save(lambda: 1, 10)
    await clock.advance(5)
    store.delay_save(lambda: 2, 60)  # must not postpone the write a minute
    store.delay_save(lambda: 3, 1)  # but may bring it closer
    await clock.advance(0.9)
    assert not store.path.exists()
    await clock.advance(0.1)
    await hub.block_till_done()
    assert read_file(store.path)["data"] == 3
    assert writes.count("test.deadline") == 1


async def test_load_returns_data_pending_a_delayed_save(hub: Hub) -> None:
    store: Store[int] = Store(hub, 1, "test.pending")
    await store.save(1)
    store.delay_save(lambda: 2, 60)
    assert await store.load() == 2
    await store.flush()
    assert read_file(store.path)["data"] == 2


async def test_flush_writes_pending_data_and_cancels_the_timer(hub: Hub, writes: list[str]) -> None:
    store: Store[str] = Store(hub, 1, "test.flush")
    store.delay_save(lambda: "pending", 60)
    await store.flush()
    assert read_file(store.path)["data"] == "pending"
    await store.flush()  # nothing pending: no second write
    assert writes.count("test.flush") == 1


async def test_save_supersedes_a_pending_delayed_save(hub: Hub, writes: list[str]) -> None:
    store: Store[str] = Store(hub, 1, "test.supersede")
    store.delay_save(lambda: "old", 60)
    await store.save("new")
    await store.flush()
    assert read_file(store.path)["data"] == "new"
    assert writes.count("test.supersede") == 1


async def test_pending_delayed_save_is_written_when_the_hub_stops(
    tmp_path: Path, writes: list[str]
) -> None:
    hub = new_hub(tmp_path)
    await hub.start()
    store: Store[dict[str, str]] = Store(hub, 1, "test.final")
    data = {"state": "first"}
    store.delay_save(lambda: data, 3600)
    data["state"] = "last"
    await hub.stop()
    assert read_file(store.path)["data"] == {"state": "last"}
    assert writes.count("test.final") == 1


async def test_delay_save_after_stop_writes_without_a_timer(tmp_path: Path) -> None:
    hub = new_hub(tmp_path)
    await hub.start()
    await hub.stop()
    store: Store[int] = Store(hub, 1, "test.late")
    store.delay_save(lambda: 7, 3600)
    await hub.block_till_done()
    assert read_file(store.path)["data"] == 7


async def test_remove_deletes_file_and_drops_pending_save(hub: Hub) -> None:
    store: Store[int] = Store(hub, 1, "test.remove")
    await store.save(1)
    store.delay_save(lambda: 2, 60)
    await store.remove()
    assert not store.path.exists()
    await store.flush()
    assert not store.path.exists()
    await store.remove()  # removing a missing store is fine


async def test_large_store_round_trips_through_chunked_encoding(tmp_path: Path) -> None:
    """Lists longer than one encoding chunk are written compact and read back equal."""
    hub = new_hub(tmp_path)
    await hub.start()
    store: Store[dict[str, Any]] = Store(hub, 1, "big")
    data = {"rows": [{"n": n, "name": f"row {n}"} for n in range(4321)], "meta": {"a": [1]}}
    store.delay_save(lambda: data, 0.01)
    await store.flush()
    fresh: Store[dict[str, Any]] = Store(hub, 1, "big")
    assert await fresh.load() == data
    await hub.stop()


# Journals


def journal_files(hub: Hub, key: str) -> list[str]:
    return [name for name in storage_listing(hub) if name.startswith(f"{key}.journal.")]


async def journaled(hub: Hub, key: str, **kwargs: Any) -> Store[dict[str, int]]:
    store: Store[dict[str, int]] = Store(hub, 1, key, journal=True, **kwargs)
    await store.load_with_journal()
    return store


async def test_journal_records_reach_the_file_without_a_snapshot_and_are_replayed(
    hub: Hub, writes: list[str]
) -> None:
    store = await journaled(hub, "test.journal")
    store.append(["set", "a", 1])
    store.append(["set", "b", 2])
    store.append(["del", "a"])
    await hub.block_till_done()  # no sync(): written to the OS, not fsync'd
    assert writes == []
    assert journal_files(hub, "test.journal") == ["test.journal.journal.0"]
    lines = hub.path(".storage", "test.journal.journal.0").read_bytes().splitlines()
    assert lines == [b'["set","a",1]', b'["set","b",2]', b'["del","a"]']

    # Another process starting now (its store reads what this one wrote).
    fresh: Store[dict[str, int]] = Store(hub, 1, "test.journal", journal=True)
    assert await fresh.load_with_journal() == (
        None,
        [["set", "a", 1], ["set", "b", 2], ["del", "a"]],
    )


async def test_snapshot_folds_the_journal_in_and_later_records_follow_it(hub: Hub) -> None:
    store = await journaled(hub, "test.fold")
    store.append(["set", "a", 1])
    await store.save({"a": 1})
    assert journal_files(hub, "test.fold") == []
    assert read_file(store.path)["journal"] == 1
    store.append(["set", "b", 2])
    await store.sync()
    assert journal_files(hub, "test.fold") == ["test.fold.journal.1"]
    fresh: Store[dict[str, int]] = Store(hub, 1, "test.fold", journal=True)
    assert await fresh.load_with_journal() == ({"a": 1}, [["set", "b", 2]])


async def test_torn_last_line_is_skipped_with_a_log_line(
    hub: Hub, caplog: pytest.LogCaptureFixture
) -> None:
    write_file(hub, "test.torn", {"version": 1, "key": "test.torn", "journal": 3, "data": {}})
    hub.path(".storage", "test.torn.journal.3").write_bytes(
        b'["set","a",1]\n{not json}\n["set","b",2]\n["set","c",'
    )
    store: Store[dict[str, int]] = Store(hub, 1, "test.torn", journal=True)
    assert await store.load_with_journal() == ({}, [["set", "a", 1], ["set", "b", 2]])
    assert "Skipping a bad record in" in caplog.text
    assert "line 2:" in caplog.text
    assert "Skipping the torn last line of" in caplog.text
    assert "(11 bytes)" in caplog.text

    # New records never follow the torn line: they start a generation of their own.
    store.append(["set", "d", 4])
    await store.sync()
    assert journal_files(hub, "test.torn") == ["test.torn.journal.3", "test.torn.journal.4"]
    fresh: Store[dict[str, int]] = Store(hub, 1, "test.torn", journal=True)
    _data, records = await fresh.load_with_journal()
    assert records == [["set", "a", 1], ["set", "b", 2], ["set", "d", 4]]


async def test_records_made_while_a_snapshot_is_written_outlive_it(
    hub: Hub, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = await journaled(hub, "test.rotate")
    store.append(["set", "a", 1])
    await store.sync()
    real_write = storage_module._write_atomic
    writing = asyncio.Event()
    release = threading.Event()
    loop = asyncio.get_running_loop()

    def slow_write(path: Path, payload: bytes, private: bool) -> None:
        loop.call_soon_threadsafe(writing.set)
        release.wait(10)
        real_write(path, payload, private)

    monkeypatch.setattr(storage_module, "_write_atomic", slow_write)
    snapshot = asyncio.ensure_future(store.save({"a": 1}))
    await writing.wait()
    # Made after the snapshot's data was taken: only the journal has it.
    store.append(["set", "b", 2])
    await store.sync()
    # A crash now (the snapshot not on disk yet) keeps both.
    crashed: Store[dict[str, int]] = Store(hub, 1, "test.rotate", journal=True)
    assert await crashed.load_with_journal() == (None, [["set", "a", 1], ["set", "b", 2]])

    release.set()
    await snapshot
    assert journal_files(hub, "test.rotate") == ["test.rotate.journal.1"]
    fresh: Store[dict[str, int]] = Store(hub, 1, "test.rotate", journal=True)
    assert await fresh.load_with_journal() == ({"a": 1}, [["set", "b", 2]])


async def test_generations_a_snapshot_holds_are_never_replayed_over_it(hub: Hub) -> None:
    """A crash between the snapshot's rename and the deletion of the older generations."""
    write_file(hub, "test.stale", {"version": 1, "key": "test.stale", "journal": 5, "data": 2})
    hub.path(".storage", "test.stale.journal.4").write_bytes(b'["set","x",1]\n')
    hub.path(".storage", "test.stale.journal.5").write_bytes(b'["set","y",3]\n')
    store: Store[int] = Store(hub, 1, "test.stale", journal=True)
    assert await store.load_with_journal() == (2, [["set", "y", 3]])
    assert journal_files(hub, "test.stale") == ["test.stale.journal.5"]


async def test_concurrent_syncs_share_one_write_and_fsync(
    hub: Hub, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = await journaled(hub, "test.group")
    calls: list[tuple[int, bool]] = []
    real_write = storage_module._JournalFiles.write
    release = threading.Event()
    started = asyncio.Event()
    loop = asyncio.get_running_loop()

    def counting_write(self: Any, segments: list[tuple[int, list[bytes]]], sync: bool) -> None:
        calls.append((sum(len(lines) for _generation, lines in segments), sync))
        loop.call_soon_threadsafe(started.set)
        release.wait(10)
        real_write(self, segments, sync)

    monkeypatch.setattr(storage_module._JournalFiles, "write", counting_write)
    release.set()
    for n in range(5):
        store.append(["set", str(n), n])
    await asyncio.gather(*(store.sync() for _ in range(10)))
    assert sum(records for records, _sync in calls) == 5
    assert [sync for _records, sync in calls].count(True) == 1

    # Callers arriving while a write is in flight share the next one.
    calls.clear()
    release.clear()
    started.clear()
    store.append(["set", "x", 1])
    first = asyncio.ensure_future(store.sync())
    await started.wait()
    store.append(["set", "y", 2])
    later = [asyncio.ensure_future(store.sync()) for _ in range(10)]
    await asyncio.sleep(0.01)
    release.set()
    await asyncio.gather(first, *later)
    assert sum(records for records, _sync in calls) == 2
    assert [sync for _records, sync in calls].count(True) == 1
    written = len(calls)
    await store.sync()  # nothing new: no write at all
    assert len(calls) == written
    lines = hub.path(".storage", "test.group.journal.0").read_bytes().splitlines()
    assert lines[-2:] == [b'["set","x",1]', b'["set","y",2]']


async def test_sync_reports_a_journal_that_cannot_be_written(
    hub: Hub, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = await journaled(hub, "test.full")

    def full(self: Any, segments: Any, sync: bool) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(storage_module._JournalFiles, "write", full)
    store.append(["set", "a", 1])
    with pytest.raises(StorageError, match="No space left on device"):
        await store.sync()
    monkeypatch.undo()
    # Kept and written at the next attempt.
    await store.sync()
    lines = hub.path(".storage", "test.full.journal.0").read_bytes().splitlines()
    assert lines == [b'["set","a",1]']


@pytest.mark.parametrize("private", [True, False])
async def test_journal_is_private_and_removed_with_its_store(hub: Hub, private: bool) -> None:
    store = await journaled(hub, "test.private_journal", private=private)
    store.append(["set", "token", 1])
    await store.sync()
    journal = hub.path(".storage", "test.private_journal.journal.0")
    assert stat.S_IMODE(journal.stat().st_mode) == 0o600
    await store.remove()
    assert journal_files(hub, "test.private_journal") == []


async def test_journaled_store_refuses_the_calls_that_would_lose_records(hub: Hub) -> None:
    store: Store[int] = Store(hub, 1, "test.order_of_calls", journal=True)
    with pytest.raises(StorageError, match="load_with_journal"):
        await store.load()
    with pytest.raises(StorageError, match="load_with_journal"):
        store.append(["set", "a", 1])
    plain: Store[int] = Store(hub, 1, "test.plain")
    with pytest.raises(StorageError, match="no journal"):
        plain.append(["set", "a", 1])


# Temporary files of interrupted writes


@pytest.mark.parametrize("first", ["load", "save"])
async def test_stale_temp_files_of_the_store_are_removed_at_start(hub: Hub, first: str) -> None:
    storage = hub.path(".storage")
    storage.mkdir()
    own = [".test.things.k2j4_x9q.tmp", ".test.things.abcdefgh.tmp"]
    others = [
        ".test.things.x.abcdefgh.tmp",  # store test.things.x's
        ".test.thingsabcdefgh.tmp",
        ".test.things.abc.tmp",
        "test.things.abcdefgh.tmp",
        ".other.abcdefgh.tmp",
        "notes.tmp",
    ]
    for name in own + others:
        storage.joinpath(name).write_bytes(b"{}")
    store: Store[int] = Store(hub, 1, "test.things")
    if first == "load":
        assert await store.load() is None
    else:
        await store.save(1)
    assert sorted(storage_listing(hub)) == sorted(
        others + ([] if first == "load" else ["test.things"])
    )
