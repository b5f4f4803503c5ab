"""Behavioural tests of the core: Hub lifecycle, EventBus, StateMachine, services, Context."""

from __future__ import annotations

import asyncio
import copy
import json
import logging
import math
import os
import signal
import threading
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import voluptuous as vol

from hub import core
from hub.bootstrap import new_hub
from hub.const import (
    ATTR_DOMAIN,
    ATTR_ENTITY_ID,
    ATTR_NEW_STATE,
    ATTR_OLD_STATE,
    ATTR_SERVICE,
    ATTR_SERVICE_DATA,
    ATTR_TARGET,
    EVENT_CALL_SERVICE,
    EVENT_HUB_CLOSE,
    EVENT_HUB_FINAL_WRITE,
    EVENT_HUB_START,
    EVENT_HUB_STARTED,
    EVENT_HUB_STOP,
    EVENT_SERVICE_REGISTERED,
    EVENT_SERVICE_REMOVED,
    EVENT_STATE_CHANGED,
    EVENT_STATE_REPORTED,
    MATCH_ALL,
    MAX_LENGTH_STATE,
)
from hub.core import Context, CoreState, Event, Hub, ServiceCall, State, StateWatcher
from hub.exceptions import (
    HubError,
    HubStateError,
    InvalidEntityIdError,
    InvalidStateError,
    ServiceExistsError,
    ServiceNotFoundError,
    ServiceValidationError,
)

LIFECYCLE_EVENTS = (
    EVENT_HUB_START,
    EVENT_HUB_STARTED,
    EVENT_HUB_STOP,
    EVENT_HUB_FINAL_WRITE,
    EVENT_HUB_CLOSE,
)


@pytest.fixture
async def bare_hub(tmp_path: Path) -> AsyncIterator[Hub]:
    """A hub that was never started: only the core objects, no integrations or listeners."""
    instance = new_hub(tmp_path)
    yield instance
    await instance.block_till_done()


@pytest.fixture
def event_counter(monkeypatch: pytest.MonkeyPatch) -> list[Event]:
    """Record every Event the bus builds."""
    built: list[Event] = []

    class CountingEvent(Event):
        __slots__ = ()

        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            built.append(self)

    monkeypatch.setattr(core, "Event", CountingEvent)
    return built


def _error_records(caplog: pytest.LogCaptureFixture, logger: str) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name == logger and r.levelno >= logging.ERROR]


# --------------------------------------------------------------------------- lifecycle


async def test_lifecycle_states_and_events_in_order(tmp_path: Path) -> None:
    instance = new_hub(tmp_path)
    seen: list[tuple[str, CoreState]] = []
    for event_type in LIFECYCLE_EVENTS:
        instance.bus.listen(
            event_type, lambda event: seen.append((event.event_type, instance.state))
        )

    assert instance.state is CoreState.not_running
    assert not instance.is_running
    await instance.start()
    assert instance.state is CoreState.running
    assert instance.is_running
    assert instance.started_at is not None
    await instance.stop()
    assert instance.state is CoreState.stopped
    assert not instance.is_running

    assert seen == [
        (EVENT_HUB_START, CoreState.starting),
        (EVENT_HUB_STARTED, CoreState.running),
        (EVENT_HUB_STOP, CoreState.stopping),
        (EVENT_HUB_FINAL_WRITE, CoreState.stopping),
        (EVENT_HUB_CLOSE, CoreState.stopped),
    ]


async def test_match_all_sees_lifecycle_events_in_order(tmp_path: Path) -> None:
    instance = new_hub(tmp_path)
    seen: list[str] = []
    instance.bus.listen(MATCH_ALL, lambda event: seen.append(event.event_type))
    await instance.start()
    await instance.stop()
    assert [t for t in seen if t in LIFECYCLE_EVENTS] == list(LIFECYCLE_EVENTS)


async def test_start_twice_raises(hub: Hub) -> None:
    with pytest.raises(HubStateError):
        await hub.start()
    assert hub.state is CoreState.running


async def test_start_after_stop_raises(hub: Hub) -> None:
    await hub.stop()
    with pytest.raises(HubStateError):
        await hub.start()
    assert hub.state is CoreState.stopped


async def test_failed_start_goes_back_to_not_running(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from hub import bootstrap

    class Boom(HubError):
        pass

    async def failing_setup(_hub: Hub) -> None:
        raise Boom("no")

    monkeypatch.setattr(bootstrap, "setup_hub", failing_setup)
    instance = new_hub(tmp_path)
    with pytest.raises(Boom):
        await instance.start()
    assert instance.state is CoreState.not_running


async def test_stop_twice_is_harmless(hub: Hub) -> None:
    stops: list[Event] = []
    closes: list[Event] = []
    hub.bus.listen(EVENT_HUB_STOP, stops.append)
    hub.bus.listen(EVENT_HUB_CLOSE, closes.append)
    await hub.stop()
    await hub.stop()
    assert hub.state is CoreState.stopped
    assert await hub.wait_stopped() == 0
    assert len(stops) == 1
    assert len(closes) == 1


async def test_concurrent_stops_both_return_after_stopped(hub: Hub) -> None:
    stops: list[Event] = []
    hub.bus.listen(EVENT_HUB_STOP, stops.append)
    await asyncio.gather(hub.stop(), hub.stop())
    assert hub.state is CoreState.stopped
    assert len(stops) == 1


async def test_request_stop_and_wait_stopped(hub: Hub) -> None:
    closes: list[Event] = []
    hub.bus.listen(EVENT_HUB_CLOSE, closes.append)
    hub.request_stop(3)
    # request_stop returns at once; the stop itself runs as a task.
    assert hub.state is CoreState.running
    hub.request_stop(5)  # a second request is ignored
    assert await hub.wait_stopped() == 3
    assert hub.state is CoreState.stopped
    assert len(closes) == 1


async def test_request_stop_default_exit_code_is_zero(hub: Hub) -> None:
    hub.request_stop()
    assert await hub.wait_stopped() == 0
    assert hub.state is CoreState.stopped


async def test_sigterm_stops_gracefully(hub: Hub) -> None:
    seen: list[str] = []
    for event_type in (EVENT_HUB_STOP, EVENT_HUB_FINAL_WRITE, EVENT_HUB_CLOSE):
        hub.bus.listen(event_type, lambda event: seen.append(event.event_type))
    hub.install_signal_handlers()
    try:
        os.kill(os.getpid(), signal.SIGTERM)
        assert await hub.wait_stopped() == 0
    finally:
        hub.remove_signal_handlers()
    assert hub.state is CoreState.stopped
    assert seen == [EVENT_HUB_STOP, EVENT_HUB_FINAL_WRITE, EVENT_HUB_CLOSE]


async def test_on_shutdown_jobs_run_during_stop(hub: Hub) -> None:
    order: list[str] = []
    hub.bus.listen(EVENT_HUB_STOP, lambda _: order.append("hub_stop"))
    hub.bus.listen(EVENT_HUB_FINAL_WRITE, lambda _: order.append("final_write"))

    async def job_a() -> None:
        order.append(f"a:{hub.state}")

    async def job_b() -> None:
        await asyncio.sleep(0)
        order.append(f"b:{hub.state}")

    async def removed_job() -> None:
        order.append("removed")

    hub.on_shutdown(job_a)
    hub.on_shutdown(job_b)
    remove = hub.on_shutdown(removed_job)
    remove()
    remove()  # removing twice is harmless
    assert order == []
    await hub.stop()

    assert order[0] == "hub_stop"
    assert order[-1] == "final_write"
    assert sorted(order[1:-1]) == [f"a:{CoreState.stopping}", f"b:{CoreState.stopping}"]
    assert "removed" not in order


async def test_failing_shutdown_job_is_logged_and_stop_completes(
    hub: Hub, caplog: pytest.LogCaptureFixture
) -> None:
    ran: list[str] = []

    async def bad() -> None:
        raise RuntimeError("shutdown job broke")

    async def good() -> None:
        ran.append("good")

    hub.on_shutdown(good)
    hub.on_shutdown(bad)
    await hub.stop()
    assert hub.state is CoreState.stopped
    assert ran == ["good"]
    errors = _error_records(caplog, "hub.core")
    assert any(r.exc_info and "shutdown job broke" in str(r.exc_info[1]) for r in errors)


async def test_background_tasks_are_cancelled_by_stop(hub: Hub) -> None:
    started = asyncio.Event()
    cleaned: list[str] = []

    async def forever() -> None:
        started.set()
        try:
            await asyncio.Event().wait()
        finally:
            cleaned.append("cleaned")

    task = hub.create_background_task(forever(), "forever")
    await started.wait()
    # block_till_done does not wait for background tasks.
    await hub.block_till_done()
    assert not task.done()
    await hub.stop()
    assert task.cancelled()
    assert cleaned == ["cleaned"]


# --------------------------------------------------------------------------- block_till_done


async def test_block_till_done_waits_for_nested_tasks(hub: Hub) -> None:
    done: list[str] = []

    async def leaf() -> None:
        for _ in range(5):
            await asyncio.sleep(0)
        done.append("leaf")

    async def middle() -> None:
        await asyncio.sleep(0)
        hub.create_task(leaf(), "leaf")
        done.append("middle")

    async def root() -> None:
        await asyncio.sleep(0)
        hub.create_task(middle(), "middle")
        done.append("root")

    hub.create_task(root(), "root")
    assert done == []
    await hub.block_till_done()
    assert done == ["root", "middle", "leaf"]


async def test_block_till_done_waits_for_tasks_made_by_call_soon(hub: Hub) -> None:
    done: list[str] = []

    async def work() -> None:
        await asyncio.sleep(0)
        done.append("work")

    hub.loop.call_soon(lambda: hub.create_task(work(), "work"))
    await hub.block_till_done()
    assert done == ["work"]


async def test_block_till_done_waits_for_executor_jobs(hub: Hub) -> None:
    release = threading.Event()
    done: list[str] = []

    def job(value: int) -> int:
        # Blocks until the loop, already inside block_till_done, lets it go.
        release.wait(60)
        done.append("job")
        return value * 2

    # An untracked task, so only the executor future itself is tracked by the hub.
    runner = asyncio.ensure_future(hub.run_in_executor(job, 21))
    await asyncio.sleep(0)
    hub.loop.call_soon(release.set)
    await hub.block_till_done()
    assert done == ["job"]
    assert await runner == 42


async def test_run_in_executor_raises_the_jobs_error(hub: Hub) -> None:
    def job() -> None:
        raise KeyError("from thread")

    with pytest.raises(KeyError, match="from thread"):
        await hub.run_in_executor(job)


async def test_block_till_done_waits_for_coroutine_listeners(hub: Hub) -> None:
    done: list[str] = []

    async def listener(event: Event) -> None:
        for _ in range(5):
            await asyncio.sleep(0)
        done.append(event.data["n"])

    hub.bus.listen("test_event", listener)
    hub.bus.fire("test_event", {"n": "one"})
    hub.bus.fire("test_event", {"n": "two"})
    assert done == []
    await hub.block_till_done()
    assert done == ["one", "two"]


async def test_block_till_done_inside_a_tracked_task_does_not_wait_for_itself(hub: Hub) -> None:
    done: list[str] = []

    async def other() -> None:
        for _ in range(3):
            await asyncio.sleep(0)
        done.append("other")

    async def waiter() -> None:
        hub.create_task(other(), "other")
        await hub.block_till_done()
        done.append("waiter")

    hub.create_task(waiter(), "waiter")
    await hub.block_till_done()
    assert done == ["other", "waiter"]


# --------------------------------------------------------------------------- EventBus


async def test_listeners_per_event_type_and_match_all(bare_hub: Hub) -> None:
    bus = bare_hub.bus
    typed: list[str] = []
    everything: list[str] = []
    unsub_typed = bus.listen("charger_message", lambda e: typed.append(e.event_type))
    unsub_all = bus.listen(MATCH_ALL, lambda e: everything.append(e.event_type))
    assert bus.listeners() == {"charger_message": 1, MATCH_ALL: 1}

    bus.fire("charger_message")
    bus.fire("other_event")
    assert typed == ["charger_message"]
    assert everything == ["charger_message", "other_event"]

    unsub_typed()
    unsub_all()
    assert bus.listeners() == {}


async def test_fire_without_data_gives_empty_mapping(bare_hub: Hub) -> None:
    seen: list[Event] = []
    bare_hub.bus.listen("x_event", seen.append)
    bare_hub.bus.fire("x_event")
    assert dict(seen[0].data) == {}


async def test_filter_gets_raw_data_before_event_is_built(
    bare_hub: Hub, event_counter: list[Event]
) -> None:
    bus = bare_hub.bus
    filtered: list[Any] = []
    called: list[Event] = []

    def reject(data: Any) -> bool:
        filtered.append(data)
        return False

    bus.listen("meter_value", called.append, reject)
    data = {"power": 7.4}
    bus.fire("meter_value", data)
    assert len(filtered) == 1
    assert filtered[0] is data
    assert not isinstance(filtered[0], Event)
    assert called == []
    assert event_counter == []  # nothing let it through, so no Event was built


async def test_accepting_filter_lets_listener_run(bare_hub: Hub) -> None:
    bus = bare_hub.bus
    called: list[Event] = []
    bus.listen("meter_value", called.append, lambda data: data["power"] > 5)
    bus.fire("meter_value", {"power": 1})
    bus.fire("meter_value", {"power": 11})
    assert [e.data["power"] for e in called] == [11]


async def test_one_event_object_shared_by_listeners(
    bare_hub: Hub, event_counter: list[Event]
) -> None:
    bus = bare_hub.bus
    seen: list[Event] = []
    bus.listen("x_event", seen.append)
    bus.listen("x_event", seen.append, lambda _: True)
    bus.listen(MATCH_ALL, seen.append)
    bus.fire("x_event", {"a": 1})
    assert len(seen) == 3
    assert seen[0] is seen[1] is seen[2]
    assert len(event_counter) == 1


async def test_listen_once_sync_fires_once_even_reentrant(bare_hub: Hub) -> None:
    bus = bare_hub.bus
    calls: list[int] = []

    def listener(event: Event) -> None:
        calls.append(event.data["n"])
        bus.fire("once_event", {"n": event.data["n"] + 1})  # re-entrant fire

    bus.listen_once("once_event", listener)
    bus.fire("once_event", {"n": 1})
    bus.fire("once_event", {"n": 10})
    assert calls == [1]
    assert "once_event" not in bus.listeners()


@pytest.mark.parametrize("is_async", [False, True])
async def test_listen_once_fires_once_when_an_earlier_listener_refires(
    bare_hub: Hub, is_async: bool
) -> None:
    """The outer dispatch still holds the once-listener after the inner one consumed it."""
    bus = bare_hub.bus
    calls: list[int] = []

    def refire(event: Event) -> None:
        if event.data["n"] == 1:
            bus.fire("once_event", {"n": 2})

    async def async_once(event: Event) -> None:
        calls.append(event.data["n"])

    bus.listen("once_event", refire)
    bus.listen_once("once_event", async_once if is_async else lambda e: calls.append(e.data["n"]))
    bus.fire("once_event", {"n": 1})
    await bare_hub.block_till_done()
    assert calls == [2]


async def test_listen_once_async_fires_once_even_reentrant(bare_hub: Hub) -> None:
    bus = bare_hub.bus
    calls: list[int] = []

    async def listener(event: Event) -> None:
        calls.append(event.data["n"])
        bus.fire("once_event", {"n": event.data["n"] + 1})  # re-entrant fire
        await asyncio.sleep(0)

    bus.listen_once("once_event", listener)
    # Two fires before the listener's task gets to run.
    bus.fire("once_event", {"n": 1})
    bus.fire("once_event", {"n": 10})
    await bare_hub.block_till_done()
    bus.fire("once_event", {"n": 100})
    await bare_hub.block_till_done()
    assert calls == [1]
    assert "once_event" not in bus.listeners()


async def test_listen_once_respects_filter(bare_hub: Hub) -> None:
    bus = bare_hub.bus
    calls: list[int] = []
    bus.listen_once("once_event", lambda e: calls.append(e.data["n"]), lambda d: d["n"] > 1)
    bus.fire("once_event", {"n": 1})
    bus.fire("once_event", {"n": 2})
    bus.fire("once_event", {"n": 3})
    assert calls == [2]


@pytest.mark.parametrize("is_async", [False, True])
async def test_listen_once_can_be_unsubscribed_before_firing(bare_hub: Hub, is_async: bool) -> None:
    bus = bare_hub.bus
    calls: list[Event] = []

    async def async_listener(event: Event) -> None:
        calls.append(event)

    unsub = bus.listen_once("once_event", async_listener if is_async else calls.append)
    unsub()
    unsub()  # twice is harmless
    bus.fire("once_event")
    await bare_hub.block_till_done()
    assert calls == []
    assert bus.listeners() == {}


async def test_unsubscribe(bare_hub: Hub) -> None:
    bus = bare_hub.bus
    calls: list[str] = []
    unsub_a = bus.listen("x_event", lambda _: calls.append("a"))
    bus.listen("x_event", lambda _: calls.append("b"))
    bus.fire("x_event")
    unsub_a()
    unsub_a()  # twice is harmless
    bus.fire("x_event")
    assert calls == ["a", "b", "b"]
    assert bus.listeners() == {"x_event": 1}


async def test_unsubscribe_during_dispatch(bare_hub: Hub) -> None:
    bus = bare_hub.bus
    calls: list[str] = []
    unsubs: dict[str, Any] = {}

    def self_removing(_: Event) -> None:
        calls.append("self_removing")
        unsubs["self"]()

    def remover_of_all(_: Event) -> None:
        calls.append("remover")
        unsubs["match_all"]()

    unsubs["self"] = bus.listen("x_event", self_removing)
    bus.listen("x_event", lambda _: calls.append("after"))
    bus.listen("x_event", remover_of_all)
    unsubs["match_all"] = bus.listen(MATCH_ALL, lambda _: calls.append("all"))

    bus.fire("x_event")
    # The listeners after the one that unsubscribed still ran for this event.
    assert calls[:3] == ["self_removing", "after", "remover"]
    calls.clear()
    bus.fire("x_event")
    assert calls == ["after", "remover"]
    assert bus.listeners() == {"x_event": 2}


async def test_listener_added_during_dispatch_waits_for_next_event(bare_hub: Hub) -> None:
    bus = bare_hub.bus
    calls: list[str] = []

    def adder(_: Event) -> None:
        calls.append("adder")
        if len(calls) == 1:
            bus.listen("x_event", lambda _: calls.append("added"))

    bus.listen("x_event", adder)
    bus.fire("x_event")
    assert calls == ["adder"]
    bus.fire("x_event")
    assert calls == ["adder", "adder", "added"]


async def test_listener_exception_is_logged_and_others_run(
    bare_hub: Hub, caplog: pytest.LogCaptureFixture
) -> None:
    bus = bare_hub.bus
    calls: list[str] = []

    def broken(_: Event) -> None:
        raise RuntimeError("listener broke")

    bus.listen("x_event", broken)
    bus.listen("x_event", lambda _: calls.append("second"))
    bus.listen(MATCH_ALL, lambda _: calls.append("all"))
    bus.fire("x_event", {"station": "cp-17"})
    assert calls == ["second", "all"]

    errors = _error_records(caplog, "hub.core")
    assert len(errors) == 1
    message = errors[0].getMessage()
    assert "x_event" in message
    assert "cp-17" in message
    assert errors[0].exc_info is not None
    assert isinstance(errors[0].exc_info[1], RuntimeError)

    # The bus keeps working, the broken listener stays subscribed.
    calls.clear()
    bus.fire("x_event")
    assert calls == ["second", "all"]
    assert len(_error_records(caplog, "hub.core")) == 2


async def test_async_listener_exception_is_logged(
    bare_hub: Hub, caplog: pytest.LogCaptureFixture
) -> None:
    bus = bare_hub.bus
    calls: list[str] = []

    async def broken(_: Event) -> None:
        await asyncio.sleep(0)
        raise RuntimeError("async listener broke")

    async def fine(_: Event) -> None:
        await asyncio.sleep(0)
        calls.append("fine")

    bus.listen("x_event", broken)
    bus.listen("x_event", fine)
    bus.fire("x_event", {"station": "cp-18"})
    await bare_hub.block_till_done()
    assert calls == ["fine"]
    errors = _error_records(caplog, "hub.core")
    assert len(errors) == 1
    assert "x_event" in errors[0].getMessage()
    assert errors[0].exc_info is not None
    assert isinstance(errors[0].exc_info[1], RuntimeError)


async def test_filter_exception_is_logged_and_others_run(
    bare_hub: Hub, caplog: pytest.LogCaptureFixture
) -> None:
    bus = bare_hub.bus
    calls: list[str] = []

    def broken_filter(_: Any) -> bool:
        raise KeyError("filter broke")

    bus.listen("x_event", lambda _: calls.append("filtered"), broken_filter)
    bus.listen("x_event", lambda _: calls.append("second"))
    bus.fire("x_event")
    assert calls == ["second"]
    errors = _error_records(caplog, "hub.core")
    assert len(errors) == 1
    assert "x_event" in errors[0].getMessage()
    assert errors[0].exc_info is not None
    assert isinstance(errors[0].exc_info[1], KeyError)

    calls.clear()
    bus.fire("x_event")
    assert calls == ["second"]


async def test_coroutine_listener_runs_as_task(bare_hub: Hub) -> None:
    calls: list[str] = []

    async def listener(_: Event) -> None:
        calls.append("ran")

    bare_hub.bus.listen("x_event", listener)
    bare_hub.bus.fire("x_event")
    assert calls == []  # not run inline
    await bare_hub.block_till_done()
    assert calls == ["ran"]


async def test_event_context_is_given_context(bare_hub: Hub) -> None:
    seen: list[Event] = []
    bare_hub.bus.listen("x_event", seen.append)
    ctx = Context(user_id="operator")
    bare_hub.bus.fire("x_event", {}, ctx)
    bare_hub.bus.fire("x_event")
    assert seen[0].context is ctx
    assert isinstance(seen[1].context, Context)
    assert seen[1].context.id == seen[1].context.id


async def test_event_time_fired_is_utc(bare_hub: Hub) -> None:
    seen: list[Event] = []
    bare_hub.bus.listen("x_event", seen.append)
    bare_hub.bus.fire("x_event")
    bare_hub.bus.fire("x_event", time_fired_ts=0.0)
    assert isinstance(seen[0].time_fired, datetime)
    assert seen[0].time_fired.tzinfo is not None
    assert seen[0].time_fired.utcoffset() == UTC.utcoffset(None)
    assert seen[1].time_fired == datetime(1970, 1, 1, tzinfo=UTC)


async def test_event_as_dict_is_json_serialisable_with_states(hub: Hub) -> None:
    seen: list[Event] = []
    hub.bus.listen(EVENT_STATE_CHANGED, seen.append)
    ctx = Context(user_id="u1")
    hub.states.set("sensor.power", "7.4", {"unit": "kW", "phases": [1, 2, 3]}, ctx)
    hub.states.set("sensor.power", "11", {"unit": "kW"})
    hub.states.remove("sensor.power")
    assert len(seen) == 3

    for event in seen:
        as_dict = event.as_dict()
        round_tripped = json.loads(json.dumps(as_dict))
        assert round_tripped["event_type"] == EVENT_STATE_CHANGED
        assert round_tripped["origin"] == "LOCAL"
        assert datetime.fromisoformat(round_tripped["time_fired"]) == event.time_fired
        assert round_tripped["context"]["id"] == event.context.id

    first = json.loads(json.dumps(seen[0].as_dict()))
    assert first["data"]["old_state"] is None
    assert first["data"]["new_state"]["state"] == "7.4"
    assert first["data"]["new_state"]["attributes"] == {"unit": "kW", "phases": [1, 2, 3]}
    assert first["context"] == {"id": ctx.id, "parent_id": None, "user_id": "u1"}
    last = json.loads(json.dumps(seen[2].as_dict()))
    assert last["data"]["new_state"] is None
    assert last["data"]["old_state"]["state"] == "11"


# --------------------------------------------------------------------------- StateMachine


@pytest.mark.parametrize(
    "entity_id", ["sensor", "Sensor.x", "sensor.", "_a.b", "a.b_", ".x", "a.b.c", "a-b.c", ""]
)
async def test_invalid_entity_ids_rejected(hub: Hub, entity_id: str) -> None:
    with pytest.raises(InvalidEntityIdError):
        hub.states.set(entity_id, "on")
    with pytest.raises(InvalidEntityIdError):
        State(entity_id, "on")
    assert hub.states.get(entity_id) is None


@pytest.mark.parametrize("entity_id", ["sensor.x", "a.b", "charger_1.connector_2_status", "a.b_c"])
async def test_valid_entity_ids_accepted(hub: Hub, entity_id: str) -> None:
    hub.states.set(entity_id, "on")
    assert hub.states.is_state(entity_id, "on")


def test_invalid_entity_id_error_is_a_hub_error() -> None:
    assert issubclass(InvalidEntityIdError, HubError)
    assert issubclass(InvalidEntityIdError, ValueError)
    assert issubclass(InvalidStateError, HubError)


@pytest.mark.parametrize("bad_state", [5, None, 1.5, b"on", "x" * (MAX_LENGTH_STATE + 1)])
async def test_invalid_states_rejected(hub: Hub, bad_state: Any) -> None:
    with pytest.raises(InvalidStateError):
        hub.states.set("sensor.x", bad_state)
    assert hub.states.get("sensor.x") is None
    hub.states.set("sensor.x", "ok")
    with pytest.raises(InvalidStateError):
        hub.states.set("sensor.x", bad_state)  # also for an existing entity
    assert hub.states.is_state("sensor.x", "ok")
    with pytest.raises(InvalidStateError):
        State("sensor.x", bad_state)


async def test_state_of_max_length_accepted(hub: Hub) -> None:
    value = "x" * MAX_LENGTH_STATE
    assert hub.states.set("sensor.x", value).state == value


@pytest.mark.parametrize(
    "field",
    [
        "entity_id",
        "state",
        "attributes",
        "last_changed_ts",
        "last_updated_ts",
        "last_reported_ts",
        "context",
        "last_changed",
        "domain",
        "new_field",
    ],
)
async def test_state_is_immutable(hub: Hub, field: str) -> None:
    state = hub.states.set("sensor.x", "on", {"a": 1})
    with pytest.raises(AttributeError):
        setattr(state, field, "changed")
    with pytest.raises(AttributeError):
        delattr(state, field)
    assert hub.states.get("sensor.x") == state
    assert state.state == "on"


async def test_state_has_no_instance_dict(hub: Hub) -> None:
    state = hub.states.set("sensor.x", "on")
    assert not hasattr(state, "__dict__")


async def test_state_attributes_are_read_only(hub: Hub) -> None:
    state = hub.states.set("sensor.x", "on", {"a": 1, "b": 2})
    attributes = state.attributes
    with pytest.raises(TypeError):
        attributes["a"] = 5
    with pytest.raises(TypeError):
        attributes["new"] = 5
    with pytest.raises(TypeError):
        attributes.update({"a": 5})
    with pytest.raises(TypeError):
        attributes.pop("a")
    with pytest.raises(TypeError):
        attributes.clear()
    with pytest.raises(TypeError):
        del attributes["a"]
    with pytest.raises(TypeError):
        attributes.setdefault("c", 3)
    with pytest.raises(TypeError):
        attributes.popitem()
    with pytest.raises(TypeError):
        attributes |= {"a": 5}
    assert dict(state.attributes) == {"a": 1, "b": 2}
    # A copy is an ordinary dict the caller may change.
    mutable = copy.copy(state.attributes)
    mutable["a"] = 9
    assert state.attributes["a"] == 1


async def test_caller_dict_is_copied(hub: Hub) -> None:
    attributes = {"a": 1}
    state = hub.states.set("sensor.x", "on", attributes)
    attributes["a"] = 2
    assert state.attributes == {"a": 1}
    assert hub.states.get("sensor.x").attributes == {"a": 1}  # type: ignore[union-attr]


async def test_timestamps_move_as_documented(hub: Hub) -> None:
    changed: list[Event] = []
    reported: list[Event] = []
    hub.bus.listen(EVENT_STATE_CHANGED, changed.append)
    hub.bus.listen(EVENT_STATE_REPORTED, reported.append)
    set_state = hub.states.set

    first = set_state("sensor.x", "a", {"k": 1}, timestamp=1000.0)
    assert (first.last_changed_ts, first.last_updated_ts, first.last_reported_ts) == (
        1000.0,
        1000.0,
        1000.0,
    )
    assert len(changed) == 1
    assert changed[0].time_fired_ts == 1000.0

    # Attributes change: last_updated moves, last_changed does not.
    second = set_state("sensor.x", "a", {"k": 2}, timestamp=2000.0)
    assert (second.last_changed_ts, second.last_updated_ts, second.last_reported_ts) == (
        1000.0,
        2000.0,
        2000.0,
    )
    assert len(changed) == 2

    # Unchanged write: only last_reported moves, state_reported instead of state_changed.
    third = set_state("sensor.x", "a", {"k": 2}, timestamp=3000.0)
    assert (third.last_changed_ts, third.last_updated_ts, third.last_reported_ts) == (
        1000.0,
        2000.0,
        3000.0,
    )
    assert len(changed) == 2
    assert len(reported) == 1
    assert reported[0].data[ATTR_ENTITY_ID] == "sensor.x"
    assert reported[0].data[ATTR_NEW_STATE] == third
    assert hub.states.get("sensor.x") == third

    # State string changes: everything moves.
    fourth = set_state("sensor.x", "b", {"k": 2}, timestamp=4000.0)
    assert (fourth.last_changed_ts, fourth.last_updated_ts, fourth.last_reported_ts) == (
        4000.0,
        4000.0,
        4000.0,
    )
    assert len(changed) == 3
    assert len(reported) == 1
    assert changed[-1].data[ATTR_OLD_STATE] == third

    assert fourth.last_changed == datetime.fromtimestamp(4000.0, UTC)
    assert fourth.last_updated.tzinfo is not None
    assert fourth.last_reported.utcoffset() == UTC.utcoffset(None)


async def test_unchanged_write_with_no_attributes_is_reported(hub: Hub) -> None:
    changed: list[Event] = []
    reported: list[Event] = []
    hub.bus.listen(EVENT_STATE_CHANGED, changed.append)
    hub.bus.listen(EVENT_STATE_REPORTED, reported.append)
    hub.states.set("sensor.x", "on")
    hub.states.set("sensor.x", "on")
    hub.states.set("sensor.x", "on", {})
    assert len(changed) == 1
    assert len(reported) == 2


async def test_force_update_fires_state_changed(hub: Hub) -> None:
    changed: list[Event] = []
    reported: list[Event] = []
    hub.bus.listen(EVENT_STATE_CHANGED, changed.append)
    hub.bus.listen(EVENT_STATE_REPORTED, reported.append)
    hub.states.set("sensor.x", "on", {"a": 1}, timestamp=1000.0)
    new = hub.states.set("sensor.x", "on", {"a": 1}, force_update=True, timestamp=2000.0)
    assert len(changed) == 2
    assert reported == []
    assert changed[1].data[ATTR_OLD_STATE].state == "on"
    assert changed[1].data[ATTR_NEW_STATE] is new
    assert new.last_updated_ts == 2000.0
    assert new.last_reported_ts == 2000.0


async def test_state_changed_carries_old_new_and_context(hub: Hub) -> None:
    changed: list[Event] = []
    hub.bus.listen(EVENT_STATE_CHANGED, changed.append)
    ctx1 = Context(user_id="ocpp")
    ctx2 = Context()
    first = hub.states.set("sensor.x", "a", context=ctx1)
    second = hub.states.set("sensor.x", "b", context=ctx2)

    assert changed[0].data == {
        ATTR_ENTITY_ID: "sensor.x",
        ATTR_OLD_STATE: None,
        ATTR_NEW_STATE: first,
    }
    assert changed[0].context is ctx1
    assert first.context is ctx1
    assert changed[1].data[ATTR_OLD_STATE] is first
    assert changed[1].data[ATTR_NEW_STATE] is second
    assert changed[1].context is ctx2
    assert second.context is ctx2


async def test_state_without_context_gets_one_shared_with_its_event(hub: Hub) -> None:
    changed: list[Event] = []
    hub.bus.listen(EVENT_STATE_CHANGED, changed.append)
    state = hub.states.set("sensor.x", "a")
    assert isinstance(state.context, Context)
    assert changed[0].context.id == state.context.id


async def test_remove(hub: Hub) -> None:
    changed: list[Event] = []
    hub.bus.listen(EVENT_STATE_CHANGED, changed.append)
    old = hub.states.set("sensor.x", "a")
    ctx = Context()
    assert hub.states.remove("sensor.x", ctx) is True
    assert hub.states.get("sensor.x") is None
    assert "sensor.x" not in hub.states
    assert changed[-1].data == {
        ATTR_ENTITY_ID: "sensor.x",
        ATTR_OLD_STATE: old,
        ATTR_NEW_STATE: None,
    }
    assert changed[-1].context is ctx
    count = len(changed)
    assert hub.states.remove("sensor.x") is False
    assert hub.states.remove("sensor.never_was") is False
    assert len(changed) == count


async def test_queries(hub: Hub) -> None:
    states = hub.states
    a = states.set("sensor.a", "1")
    b = states.set("sensor.b", "2")
    c = states.set("sensor_extra.c", "3")
    d = states.set("charger.d", "available")

    assert states.get("sensor.a") is a
    assert states.get("sensor.missing") is None
    assert {s.entity_id for s in states.all("sensor")} == {"sensor.a", "sensor.b"}
    assert sorted(states.entity_ids("sensor")) == ["sensor.a", "sensor.b"]
    assert states.all("sensor_extra") == [c]
    assert states.entity_ids("charger") == ["charger.d"]
    assert states.all("nothing") == []
    assert states.entity_ids("nothing") == []
    everything = {s.entity_id: s for s in states.all()}
    assert {eid: everything[eid] for eid in ("sensor.a", "sensor.b", "sensor_extra.c")} == {
        "sensor.a": a,
        "sensor.b": b,
        "sensor_extra.c": c,
    }
    assert everything["charger.d"] is d
    assert set(states.entity_ids()) >= {"sensor.a", "sensor.b", "sensor_extra.c", "charger.d"}
    assert states.is_state("sensor.a", "1")
    assert not states.is_state("sensor.a", "2")
    assert not states.is_state("sensor.missing", "1")
    assert "sensor.a" in states
    assert len(states) == len(states.all())
    # The returned lists are copies.
    states.all("sensor").clear()
    states.entity_ids("sensor").clear()
    assert len(states.all("sensor")) == 2


async def test_state_helpers(hub: Hub) -> None:
    state = hub.states.set("charger.cp_17_status", "available")
    assert state.domain == "charger"
    assert state.object_id == "cp_17_status"
    assert state.name == "cp 17 status"
    named = hub.states.set("charger.cp_18", "x", {"friendly_name": "Bay 18"})
    assert named.name == "Bay 18"


async def test_restore_puts_states_back_without_events(hub: Hub) -> None:
    events: list[Event] = []
    hub.bus.listen(MATCH_ALL, events.append)
    ctx = Context(user_id="someone")
    saved = [
        State("sensor.a", "1", {"x": 1}, 100.0, 200.0, 300.0, ctx),
        State("sensor.b", "2", None, 400.0),
    ]
    existing = hub.states.set("sensor.c", "live")
    restored_c = State("sensor.c", "stale", None, 1.0)
    events.clear()

    assert hub.states.restore([*saved, restored_c]) == 2
    await hub.block_till_done()
    assert events == []
    a = hub.states.get("sensor.a")
    assert a is not None
    assert (a.last_changed_ts, a.last_updated_ts, a.last_reported_ts) == (100.0, 200.0, 300.0)
    assert a.context is ctx
    assert a.attributes == {"x": 1}
    b = hub.states.get("sensor.b")
    assert b is not None
    assert (b.last_changed_ts, b.last_updated_ts, b.last_reported_ts) == (400.0, 400.0, 400.0)
    # A state already set is not overwritten by a restored one.
    assert hub.states.get("sensor.c") is existing


async def test_state_as_dict_from_dict_round_trip() -> None:
    ctx = Context("ctx-id", "parent-id", "user-id")
    state = State(
        "sensor.power",
        "7.4",
        {"unit": "kW", "phases": [1, 2, 3], "nested": {"a": None}},
        1_700_000_000.5,
        1_700_000_100.25,
        1_700_000_200.125,
        ctx,
    )
    as_dict = state.as_dict()
    through_json = json.loads(json.dumps(as_dict))
    back = State.from_dict(through_json)
    assert back == state
    assert back.as_dict() == as_dict
    assert back.context.id == "ctx-id"
    assert back.context.parent_id == "parent-id"
    assert back.context.user_id == "user-id"
    assert back.last_changed == state.last_changed
    assert back.last_reported_ts == 1_700_000_200.125
    assert as_dict["last_changed"] == datetime.fromtimestamp(1_700_000_000.5, UTC).isoformat()


async def test_state_as_dict_round_trip_of_a_live_state(hub: Hub) -> None:
    state = hub.states.set("sensor.x", "on", {"a": 1}, Context(user_id="u"))
    back = State.from_dict(json.loads(json.dumps(state.as_dict())))
    assert back.as_dict() == state.as_dict()
    assert back.entity_id == state.entity_id
    assert back.state == state.state
    assert back.attributes == state.attributes
    assert back.context == state.context


async def test_state_round_trip_is_exact_for_sub_microsecond_timestamps() -> None:
    state = State("sensor.x", "on", None, 1_700_000_000.1234567, context=Context("c"))
    back = State.from_dict(state.as_dict())
    assert back.last_changed_ts == state.last_changed_ts
    assert back == state


async def test_from_dict_without_last_reported_uses_last_updated() -> None:
    data = State("sensor.x", "on", None, 10.0, 20.0, 30.0).as_dict()
    del data["last_reported"], data["last_reported_ts"]
    assert State.from_dict(data).last_reported_ts == 20.0


@pytest.mark.parametrize(
    "data",
    [
        {"entity_id": "Bad", "state": "x", "last_changed": "2024-01-01T00:00:00+00:00"},
        {"entity_id": "sensor.x", "state": "x", "last_changed": "not a date"},
        {"entity_id": "sensor.x", "state": 3, "last_changed": "2024-01-01T00:00:00+00:00"},
    ],
)
def test_from_dict_rejects_bad_data(data: dict[str, Any]) -> None:
    with pytest.raises(ValueError):  # noqa: PT011 - each subclass of ValueError is fine here
        State.from_dict({**data, "last_updated": data["last_changed"]})


# --------------------------------------------------------------------------- services


SET_CURRENT_SCHEMA = vol.Schema(
    {
        vol.Required("current"): vol.All(vol.Coerce(int), vol.Range(min=6, max=32)),
        vol.Optional("phases", default=3): vol.In([1, 3]),
    }
)


async def test_service_schema_validates_and_passes_validated_data(hub: Hub) -> None:
    calls: list[ServiceCall] = []
    hub.services.register("test_charger", "set_current", calls.append, SET_CURRENT_SCHEMA)
    await hub.services.call("test_charger", "set_current", {"current": "16"})
    assert len(calls) == 1
    assert calls[0].data == {"current": 16, "phases": 3}
    assert calls[0].domain == "test_charger"
    assert calls[0].service == "set_current"
    assert calls[0].hub is hub


@pytest.mark.parametrize(
    ("data", "bad_key"),
    [
        ({"current": 100}, "current"),
        ({"current": "sixteen"}, "current"),
        ({}, "current"),
        ({"current": 16, "phases": 2}, "phases"),
        ({"current": 16, "voltage": 230}, "voltage"),
    ],
)
async def test_service_validation_error_names_the_key(
    hub: Hub, data: dict[str, Any], bad_key: str
) -> None:
    calls: list[ServiceCall] = []
    hub.services.register("test_charger", "set_current", calls.append, SET_CURRENT_SCHEMA)
    with pytest.raises(ServiceValidationError, match=bad_key) as info:
        await hub.services.call("test_charger", "set_current", data)
    assert "test_charger.set_current" in str(info.value)
    assert isinstance(info.value, HubError)
    # Validation fails before anything runs, also for a call that does not block.
    with pytest.raises(ServiceValidationError, match=bad_key):
        await hub.services.call("test_charger", "set_current", data, blocking=False)
    await hub.block_till_done()
    assert calls == []


async def test_plain_dict_schema_accepted(hub: Hub) -> None:
    calls: list[ServiceCall] = []
    hub.services.register("test_charger", "reset", calls.append, {vol.Required("kind"): str})
    await hub.services.call("test_charger", "reset", {"kind": "hard"})
    assert calls[0].data == {"kind": "hard"}
    with pytest.raises(ServiceValidationError, match="kind"):
        await hub.services.call("test_charger", "reset", {"kind": 1})


async def test_service_without_schema_gets_data_as_given(hub: Hub) -> None:
    calls: list[ServiceCall] = []
    hub.services.register("test_charger", "noop", calls.append)
    await hub.services.call("test_charger", "noop", {"anything": [1, 2]})
    await hub.services.call("test_charger", "noop")
    assert calls[0].data == {"anything": [1, 2]}
    assert calls[1].data == {}
    assert calls[1].target == {}


async def test_blocking_call_returns_sync_handler_result(hub: Hub) -> None:
    hub.services.register("test_math", "double", lambda call: call.data["n"] * 2)
    assert await hub.services.call("test_math", "double", {"n": 21}) == 42


async def test_blocking_call_returns_async_handler_result(hub: Hub) -> None:
    async def handler(call: ServiceCall) -> int:
        await asyncio.sleep(0)
        return int(call.data["n"]) * 3

    hub.services.register("test_math", "triple", handler)
    assert await hub.services.call("test_math", "triple", {"n": 5}) == 15


async def test_blocking_call_returns_result_of_sync_handler_returning_awaitable(hub: Hub) -> None:
    async def work(n: int) -> int:
        await asyncio.sleep(0)
        return n + 1

    hub.services.register("test_math", "inc", lambda call: work(call.data["n"]))
    assert await hub.services.call("test_math", "inc", {"n": 1}) == 2


class ChargerRefusedError(Exception):
    """A handler's own error type."""


@pytest.mark.parametrize("is_async", [False, True])
async def test_blocking_call_raises_handler_error(hub: Hub, is_async: bool) -> None:
    def sync_handler(_: ServiceCall) -> None:
        raise ChargerRefusedError("rejected by cp-17")

    async def async_handler(_: ServiceCall) -> None:
        await asyncio.sleep(0)
        raise ChargerRefusedError("rejected by cp-17")

    hub.services.register("test_charger", "reset", async_handler if is_async else sync_handler)
    with pytest.raises(ChargerRefusedError, match="rejected by cp-17"):
        await hub.services.call("test_charger", "reset")


@pytest.mark.parametrize("is_async", [False, True])
async def test_non_blocking_call_runs_later(hub: Hub, is_async: bool) -> None:
    calls: list[ServiceCall] = []

    async def async_handler(call: ServiceCall) -> str:
        await asyncio.sleep(0)
        calls.append(call)
        return "ignored"

    def sync_handler(call: ServiceCall) -> str:
        calls.append(call)
        return "ignored"

    hub.services.register("test_charger", "reset", async_handler if is_async else sync_handler)
    result = await hub.services.call("test_charger", "reset", {"a": 1}, blocking=False)
    assert result is None
    assert calls == []
    await hub.block_till_done()
    assert len(calls) == 1
    assert calls[0].data == {"a": 1}


async def test_non_blocking_call_error_is_logged(
    hub: Hub, caplog: pytest.LogCaptureFixture
) -> None:
    def handler(_: ServiceCall) -> None:
        raise ChargerRefusedError("late failure")

    hub.services.register("test_charger", "reset", handler)
    assert await hub.services.call("test_charger", "reset", blocking=False) is None
    await hub.block_till_done()
    errors = _error_records(caplog, "hub.core")
    assert len(errors) == 1
    assert "test_charger.reset" in errors[0].getMessage()
    assert errors[0].exc_info is not None
    assert isinstance(errors[0].exc_info[1], ChargerRefusedError)


async def test_unknown_service(hub: Hub) -> None:
    hub.services.register("test_charger", "reset", lambda _: None)
    with pytest.raises(ServiceNotFoundError) as info:
        await hub.services.call("test_charger", "explode")
    assert info.value.domain == "test_charger"
    assert info.value.service == "explode"
    assert "test_charger.explode" in str(info.value)
    with pytest.raises(ServiceNotFoundError):
        await hub.services.call("no_such_domain", "reset")
    with pytest.raises(ServiceNotFoundError):
        await hub.services.call("no_such_domain", "reset", blocking=False)
    with pytest.raises(ServiceNotFoundError):
        hub.services.remove("no_such_domain", "reset")


async def test_call_service_event(hub: Hub) -> None:
    events: list[Event] = []
    hub.bus.listen(EVENT_CALL_SERVICE, events.append)
    calls: list[ServiceCall] = []
    hub.services.register("test_charger", "set_current", calls.append, SET_CURRENT_SCHEMA)
    ctx = Context(user_id="operator")
    target = {"entity_id": ["charger.cp_17"]}
    data = {"current": 16, "phases": 1}
    await hub.services.call("test_charger", "set_current", data, target, ctx)

    assert len(events) == 1
    assert events[0].data == {
        ATTR_DOMAIN: "test_charger",
        ATTR_SERVICE: "set_current",
        ATTR_SERVICE_DATA: data,
        ATTR_TARGET: target,
    }
    assert events[0].context is ctx
    assert calls[0].context is ctx
    assert calls[0].target == target
    assert json.dumps(events[0].as_dict())


async def test_service_call_gets_a_context_when_none_given(hub: Hub) -> None:
    events: list[Event] = []
    calls: list[ServiceCall] = []
    hub.bus.listen(EVENT_CALL_SERVICE, events.append)
    hub.services.register("test_charger", "reset", calls.append)
    await hub.services.call("test_charger", "reset")
    assert isinstance(calls[0].context, Context)
    assert events[0].context.id == calls[0].context.id


async def test_service_registered_and_removed_events(hub: Hub) -> None:
    registered: list[Event] = []
    removed: list[Event] = []
    hub.bus.listen(EVENT_SERVICE_REGISTERED, registered.append)
    hub.bus.listen(EVENT_SERVICE_REMOVED, removed.append)

    unregister = hub.services.register("test_charger", "reset", lambda _: None)
    assert hub.services.has_service("test_charger", "reset")
    assert "reset" in hub.services.services()["test_charger"]
    assert [dict(e.data) for e in registered] == [
        {ATTR_DOMAIN: "test_charger", ATTR_SERVICE: "reset"}
    ]
    assert removed == []

    unregister()
    assert not hub.services.has_service("test_charger", "reset")
    assert "test_charger" not in hub.services.services()
    assert [dict(e.data) for e in removed] == [{ATTR_DOMAIN: "test_charger", ATTR_SERVICE: "reset"}]
    unregister()  # twice is harmless
    assert len(removed) == 1
    with pytest.raises(ServiceNotFoundError):
        await hub.services.call("test_charger", "reset")


async def test_a_registered_service_cannot_be_replaced_and_a_stale_unregister_is_harmless(
    hub: Hub,
) -> None:
    old_unregister = hub.services.register("test_charger", "reset", lambda _: "old")
    # Another registration (a plugin taking over charger.reset) is refused.
    with pytest.raises(ServiceExistsError, match="already registered"):
        hub.services.register("test_charger", "reset", lambda _: "new")
    assert await hub.services.call("test_charger", "reset") == "old"
    # The owner removes it, then registers it again; its old handle then changes nothing.
    old_unregister()
    hub.services.register("test_charger", "reset", lambda _: "new")
    old_unregister()
    assert hub.services.has_service("test_charger", "reset")
    assert await hub.services.call("test_charger", "reset") == "new"


async def test_remove_service(hub: Hub) -> None:
    hub.services.register("test_charger", "reset", lambda _: None)
    hub.services.register("test_charger", "unlock", lambda _: None)
    hub.services.remove("test_charger", "reset")
    assert not hub.services.has_service("test_charger", "reset")
    assert hub.services.has_service("test_charger", "unlock")


@pytest.mark.parametrize(("domain", "service"), [("Bad", "reset"), ("ok", "bad-name"), ("", "x")])
async def test_register_rejects_bad_names(hub: Hub, domain: str, service: str) -> None:
    with pytest.raises(ValueError, match="invalid service name"):
        hub.services.register(domain, service, lambda _: None)


async def test_services_copy_is_detached(hub: Hub) -> None:
    hub.services.register("test_charger", "reset", lambda _: None)
    copied = hub.services.services()
    copied["test_charger"].clear()
    copied.clear()
    assert hub.services.has_service("test_charger", "reset")


# --------------------------------------------------------------------------- Context


def test_context_id_is_lazy_and_stable() -> None:
    ctx = Context()
    first = ctx.id
    assert isinstance(first, str)
    assert first
    assert ctx.id == first
    assert ctx.as_dict() == {"id": first, "parent_id": None, "user_id": None}
    assert Context("given").id == "given"


def test_context_ids_are_unique() -> None:
    ids = {Context().id for _ in range(20_000)}
    assert len(ids) == 20_000


def test_context_ids_sort_by_creation(monkeypatch: pytest.MonkeyPatch) -> None:
    # Within one millisecond, ids still come out in creation order.
    monkeypatch.setattr(core, "_time", lambda: 1_700_000_000.0)
    ids = [Context().id for _ in range(1000)]
    assert ids == sorted(ids)
    assert len(set(ids)) == 1000


def test_context_child_links_parent() -> None:
    parent = Context(user_id="operator")
    child = parent.child()
    assert child.parent_id == parent.id
    assert child.user_id == "operator"
    assert child.id != parent.id
    other_user = parent.child(user_id="automation")
    assert other_user.user_id == "automation"
    assert other_user.parent_id == parent.id
    grandchild = child.child()
    assert grandchild.parent_id == child.id


def test_context_equality_and_hash_by_id() -> None:
    a = Context("same")
    b = Context("same", user_id="x")
    c = Context("other")
    assert a == b
    assert hash(a) == hash(b)
    assert a != c
    assert len({a, b, c}) == 2


async def test_context_travels_event_state_service(hub: Hub) -> None:
    """Charger message → state → automation → service call, linked by parent ids."""
    calls: list[ServiceCall] = []
    state_events: list[Event] = []
    call_events: list[Event] = []

    async def reset(call: ServiceCall) -> None:
        calls.append(call)

    hub.services.register("test_charger", "reset", reset)

    def on_message(event: Event) -> None:
        hub.states.set("charger.cp_17_status", event.data["status"], context=event.context.child())

    async def automation(event: Event) -> None:
        if event.data[ATTR_ENTITY_ID] != "charger.cp_17_status":
            return
        state_events.append(event)
        await hub.services.call("test_charger", "reset", {}, context=event.context.child())

    hub.bus.listen("ocpp_message", on_message)
    hub.bus.listen(EVENT_STATE_CHANGED, automation)
    hub.bus.listen(EVENT_CALL_SERVICE, call_events.append)

    root = Context(user_id="cp-17")
    hub.bus.fire("ocpp_message", {"status": "faulted"}, root)
    await hub.block_till_done()

    state = hub.states.get("charger.cp_17_status")
    assert state is not None
    assert state.context.parent_id == root.id
    assert state_events[0].context is state.context
    assert len(calls) == 1
    assert calls[0].context.parent_id == state.context.id
    assert call_events[0].context is calls[0].context
    # The user travels with the chain.
    assert calls[0].context.user_id == "cp-17"


async def test_state_watchers_are_called_directly_and_can_unwatch(
    hub: Hub, caplog: pytest.LogCaptureFixture
) -> None:
    seen: list[tuple[str, str | None, str | None]] = []

    def watcher(entity_id: str, old: State | None, new: State | None, ctx: Context) -> None:
        seen.append((entity_id, old.state if old else None, new.state if new else None))

    def broken(entity_id: str, old: State | None, new: State | None, ctx: Context) -> None:
        raise RuntimeError("watcher broke")

    unwatch = hub.states.watch(["sensor.a", "sensor.a"], watcher)
    hub.states.watch(["sensor.a"], broken)
    hub.states.set("sensor.a", "1")
    hub.states.set("sensor.b", "1")
    hub.states.set("sensor.a", "1")  # unchanged: reported, not changed
    hub.states.remove("sensor.a")
    assert seen == [("sensor.a", None, "1"), ("sensor.a", "1", None)]
    assert "watcher broke" in caplog.text
    unwatch()
    hub.states.set("sensor.a", "2")
    assert len(seen) == 2


async def test_range_watchers_see_only_numbers_inside_their_range(
    hub: Hub, caplog: pytest.LogCaptureFixture
) -> None:
    seen: list[tuple[str, str]] = []

    def recorder(name: str) -> StateWatcher:
        def watcher(entity_id: str, old: State | None, new: State | None, ctx: Context) -> None:
            assert new is not None
            seen.append((name, new.state))

        return watcher

    def broken(entity_id: str, old: State | None, new: State | None, ctx: Context) -> None:
        raise RuntimeError("range watcher broke")

    unwatch_hot = hub.states.watch(["sensor.p"], recorder("hot"), between=(100.0, math.inf))
    hub.states.watch(["sensor.p"], recorder("cold"), between=(-math.inf, 0.0))
    hub.states.watch(["sensor.p"], broken, between=(500.0, 600.0))
    hub.states.watch(["sensor.p"], recorder("plain"))
    for value in ("50", "150", "-3", "unknown", "100", "550", "nan", "inf"):
        hub.states.set("sensor.p", value)
    assert seen == [
        ("plain", "50"),
        ("hot", "150"),
        ("plain", "150"),
        ("cold", "-3"),
        ("plain", "-3"),
        ("plain", "unknown"),
        ("plain", "100"),  # bounds are exclusive
        ("hot", "550"),
        ("plain", "550"),
        ("plain", "nan"),
        ("plain", "inf"),  # not below an infinite upper bound
    ]
    assert "range watcher broke" in caplog.text
    seen.clear()
    unwatch_hot()
    hub.states.set("sensor.p", "200")
    hub.states.set("sensor.p", "-5")
    assert seen == [("plain", "200"), ("cold", "-5"), ("plain", "-5")]
