"""notify.* services: retries with backoff, failures recorded, persistent notifications."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path
from typing import Any

import pytest

from hub.bootstrap import new_hub
from hub.clock import use_manual_clock
from hub.core import Event, Hub
from hub.exceptions import ServiceValidationError
from hub.notify import (
    EVENT_NOTIFICATION_FAILED,
    EVENT_NOTIFICATION_SENT,
    MAX_PERSISTENT,
    Notification,
    NotifyError,
    NotifyPermanentError,
    NotifyTarget,
    PersistentStatus,
    persistent_notifications,
    register_notifier,
    setup_persistent_notifications,
)


class ScriptedTarget(NotifyTarget):
    """A target that fails a given number of times, then delivers."""

    def __init__(self, name: str, failures: int, error: Exception | None = None) -> None:
        super().__init__(name)
        self.failures = failures
        self.error = error or NotifyError("receiver down")
        self.received: list[Notification] = []
        self.attempts = 0

    async def send(self, message: Notification) -> None:
        self.attempts += 1
        if self.attempts <= self.failures:
            raise self.error
        self.received.append(message)


def record_created_at(hub: Hub) -> float:
    [record] = persistent_notifications(hub)
    return record.created_at


def collect(hub: Hub, event_type: str) -> list[Event]:
    events: list[Event] = []
    hub.bus.listen(event_type, events.append)
    return events


async def test_delivered_after_retries(hub: Hub) -> None:
    clock = use_manual_clock(hub)
    target = ScriptedTarget("ops", failures=2)
    register_notifier(hub, "ops", target, retries=3, backoff=10)
    sent = collect(hub, EVENT_NOTIFICATION_SENT)

    call = asyncio.ensure_future(
        hub.services.call(
            "notify", "ops", {"message": "Station down", "title": "Alert", "target": "desk"}
        )
    )
    # The retries wait on the hub clock, backing off 10 s then 20 s.
    await clock.advance(0)
    assert target.attempts == 1
    await clock.advance(9.9)
    assert target.attempts == 1
    await clock.advance(0.1)
    assert target.attempts == 2
    await clock.advance(19.9)
    assert target.attempts == 2
    await clock.advance(0.1)
    result = await call

    assert result["status"] == "delivered"
    assert result["attempts"] == 3
    assert target.attempts == 3
    [notification] = target.received
    assert notification.message == "Station down"
    assert notification.title == "Alert"
    assert notification.target == ["desk"]
    assert notification.id == result["id"]
    await hub.block_till_done()
    assert [e.data for e in sent] == [{"notifier": "ops", "id": result["id"], "attempts": 3}]
    assert persistent_notifications(hub) == []


async def test_failed_delivery_is_recorded_not_lost(
    hub: Hub, caplog: pytest.LogCaptureFixture
) -> None:
    clock = use_manual_clock(hub)
    target = ScriptedTarget("ops", failures=100)
    register_notifier(hub, "ops", target, retries=2, backoff=10)
    failed = collect(hub, EVENT_NOTIFICATION_FAILED)

    with caplog.at_level(logging.ERROR, logger="hub.notify"):
        call = asyncio.ensure_future(
            hub.services.call("notify", "ops", {"message": "Charger offline"})
        )
        await clock.advance(0)  # the first attempt
        await clock.advance(10)
        await clock.advance(20)
        result = await call
    assert record_created_at(hub) == clock.time()

    assert result["status"] == "failed"
    assert result["attempts"] == 3
    assert result["error"] == "receiver down"
    assert target.attempts == 3
    await hub.block_till_done()
    [event] = failed
    assert event.data["notifier"] == "ops"
    assert event.data["id"] == result["id"]
    assert event.data["error"] == "receiver down"
    [record] = persistent_notifications(hub)
    assert record.status is PersistentStatus.failed
    assert record.notifier == "ops"
    assert record.error == "receiver down"
    assert "Charger offline" in record.message
    assert event.data["persistent_id"] == record.id
    assert any(
        r.levelno == logging.ERROR and "notify.ops" in r.getMessage() for r in caplog.records
    )


async def test_permanent_error_is_not_retried(hub: Hub) -> None:
    target = ScriptedTarget("ops", failures=100, error=NotifyPermanentError("bad credentials"))
    register_notifier(hub, "ops", target, retries=5, backoff=10)

    result = await hub.services.call("notify", "ops", {"message": "x"})

    assert result == {
        "id": result["id"],
        "status": "failed",
        "attempts": 1,
        "error": "bad credentials",
    }
    assert target.attempts == 1


async def test_unexpected_exception_counts_as_failure(hub: Hub) -> None:
    target = ScriptedTarget("ops", failures=1, error=ConnectionResetError("reset by peer"))
    register_notifier(hub, "ops", target, retries=0, backoff=0)

    result = await hub.services.call("notify", "ops", {"message": "x"})

    assert result["status"] == "failed"
    assert result["error"] == "ConnectionResetError: reset by peer"


async def test_service_schema(hub: Hub) -> None:
    register_notifier(hub, "ops", ScriptedTarget("ops", failures=0))
    with pytest.raises(ServiceValidationError, match="message"):
        await hub.services.call("notify", "ops", {"title": "no message"})
    with pytest.raises(ServiceValidationError, match="target"):
        await hub.services.call("notify", "ops", {"message": "m", "target": 5})


async def test_register_refuses_reserved_and_duplicate_names(hub: Hub) -> None:
    target = ScriptedTarget("ops", failures=0)
    unregister = register_notifier(hub, "ops", target)
    with pytest.raises(NotifyError, match="already registered"):
        register_notifier(hub, "ops", target)
    with pytest.raises(NotifyError, match="reserved"):
        register_notifier(hub, "dismiss", target)
    with pytest.raises(NotifyError, match="invalid notifier name"):
        register_notifier(hub, "Ops Desk", target)
    unregister()
    assert not hub.services.has_service("notify", "ops")
    register_notifier(hub, "ops", target)
    assert hub.services.has_service("notify", "ops")


async def test_persistent_create_read_dismiss(hub: Hub) -> None:
    await setup_persistent_notifications(hub)
    await setup_persistent_notifications(hub)  # idempotent

    result = await hub.services.call(
        "notify", "persistent", {"message": "Firmware update ready", "title": "Update"}
    )
    [record] = persistent_notifications(hub)
    assert record.id == result["id"]
    assert record.title == "Update"
    assert record.status is PersistentStatus.unread

    await hub.services.call("notify", "mark_read", {"id": record.id})
    assert persistent_notifications(hub)[0].status is PersistentStatus.read

    await hub.services.call("notify", "dismiss", {"id": record.id})
    assert persistent_notifications(hub) == []
    with pytest.raises(NotifyError, match="no persistent notification"):
        await hub.services.call("notify", "dismiss", {"id": record.id})


async def test_persistent_same_id_replaces(hub: Hub) -> None:
    await setup_persistent_notifications(hub)
    for text in ("first", "second"):
        await hub.services.call(
            "notify", "persistent", {"message": text, "notification_id": "backup"}
        )
    [record] = persistent_notifications(hub)
    assert (record.id, record.message) == ("backup", "second")


async def test_persistent_capped(hub: Hub) -> None:
    manager = await setup_persistent_notifications(hub)
    for number in range(MAX_PERSISTENT + 5):
        manager.create(f"n{number}")
    records = persistent_notifications(hub)
    assert len(records) == MAX_PERSISTENT
    assert records[0].message == "n5"
    assert records[-1].message == f"n{MAX_PERSISTENT + 4}"


async def test_persistent_survive_restart(tmp_path: Path) -> None:
    hub = new_hub(tmp_path)
    await hub.start()
    try:
        await setup_persistent_notifications(hub)
        register_notifier(hub, "ops", ScriptedTarget("ops", failures=100), retries=0)
        await hub.services.call("notify", "persistent", {"message": "kept", "title": "T"})
        await hub.services.call("notify", "ops", {"message": "lost?"})
        ids: list[Any] = [(r.id, r.status) for r in persistent_notifications(hub)]
    finally:
        await hub.stop()
    assert tmp_path.joinpath(".storage", "core.notifications").exists()

    hub = new_hub(tmp_path)
    await hub.start()
    try:
        await setup_persistent_notifications(hub)
        records = persistent_notifications(hub)
        assert [(r.id, r.status) for r in records] == ids
        assert [r.status for r in records] == [PersistentStatus.unread, PersistentStatus.failed]
        assert records[0].title == "T"
    finally:
        await hub.stop()


async def test_failure_without_setup_sets_persistent_up(hub: Hub) -> None:
    """A failed delivery is recorded even if the hub never set up persistent notifications."""
    register_notifier(hub, "ops", ScriptedTarget("ops", failures=1), retries=0)
    await hub.services.call("notify", "ops", {"message": "m"})
    assert len(persistent_notifications(hub)) == 1
    assert hub.services.has_service("notify", "persistent")
