"""Behavioural tests of track_state_change: per-entity routing through one bus listener."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from hub import core
from hub.bootstrap import new_hub
from hub.const import ATTR_ENTITY_ID, ATTR_NEW_STATE, ATTR_OLD_STATE, EVENT_STATE_CHANGED
from hub.core import Event, EventBus, Hub
from hub.track import track_state_change


@pytest.fixture
async def bare_hub(tmp_path: Path) -> AsyncIterator[Hub]:
    """A hub that was never started: no listener on the bus but the ones a test adds."""
    instance = new_hub(tmp_path)
    yield instance
    await instance.block_till_done()


def _recorder(name: str, calls: list[tuple[str, str]]) -> Any:
    def action(event: Event) -> None:
        calls.append((name, event.data[ATTR_ENTITY_ID]))

    return action


def _state_changed_listeners(hub: Hub) -> int:
    return hub.bus.listeners().get(EVENT_STATE_CHANGED, 0)


async def test_action_called_only_for_tracked_entities(hub: Hub) -> None:
    events: list[Event] = []
    track_state_change(hub, "sensor.a", events.append)
    hub.states.set("sensor.b", "1")
    hub.states.set("sensor.a", "1")
    hub.states.set("sensor.a_b", "1")
    hub.states.set("sensor.ab", "1")
    hub.states.set("sensor.a", "2", {"x": 1})
    assert [e.data[ATTR_ENTITY_ID] for e in events] == ["sensor.a", "sensor.a"]
    assert events[0].event_type == EVENT_STATE_CHANGED
    assert events[0].data[ATTR_OLD_STATE] is None
    assert events[0].data[ATTR_NEW_STATE].state == "1"
    assert events[1].data[ATTR_OLD_STATE].state == "1"
    assert events[1].data[ATTR_NEW_STATE].state == "2"


async def test_unchanged_write_does_not_call_action(hub: Hub) -> None:
    events: list[Event] = []
    track_state_change(hub, "sensor.a", events.append)
    hub.states.set("sensor.a", "1")
    hub.states.set("sensor.a", "1")
    assert len(events) == 1


async def test_removal_calls_action(hub: Hub) -> None:
    events: list[Event] = []
    hub.states.set("sensor.a", "1")
    track_state_change(hub, "sensor.a", events.append)
    hub.states.remove("sensor.a")
    assert len(events) == 1
    assert events[0].data[ATTR_NEW_STATE] is None
    assert events[0].data[ATTR_OLD_STATE].state == "1"


async def test_several_actions_on_one_entity(hub: Hub) -> None:
    calls: list[tuple[str, str]] = []
    track_state_change(hub, "sensor.a", _recorder("first", calls))
    track_state_change(hub, "sensor.a", _recorder("second", calls))
    track_state_change(hub, ["sensor.a"], _recorder("third", calls))
    hub.states.set("sensor.a", "1")
    assert calls == [("first", "sensor.a"), ("second", "sensor.a"), ("third", "sensor.a")]


async def test_several_entities_one_action(hub: Hub) -> None:
    calls: list[tuple[str, str]] = []
    track_state_change(hub, ["sensor.a", "sensor.b", "sensor.a"], _recorder("one", calls))
    hub.states.set("sensor.a", "1")
    hub.states.set("sensor.b", "1")
    hub.states.set("sensor.c", "1")
    # Listed twice, still called once per write.
    assert calls == [("one", "sensor.a"), ("one", "sensor.b")]


async def test_entity_ids_from_a_generator(hub: Hub) -> None:
    calls: list[tuple[str, str]] = []
    unsub = track_state_change(hub, (f"sensor.s{i}" for i in range(3)), _recorder("g", calls))
    hub.states.set("sensor.s2", "1")
    unsub()
    hub.states.set("sensor.s2", "2")
    assert calls == [("g", "sensor.s2")]


async def test_same_action_tracked_twice_is_counted_twice(hub: Hub) -> None:
    calls: list[tuple[str, str]] = []
    action = _recorder("x", calls)
    unsub_first = track_state_change(hub, "sensor.a", action)
    track_state_change(hub, "sensor.a", action)
    hub.states.set("sensor.a", "1")
    assert len(calls) == 2
    unsub_first()
    hub.states.set("sensor.a", "2")
    assert len(calls) == 3


async def test_unsubscribing_one_leaves_others(hub: Hub) -> None:
    calls: list[tuple[str, str]] = []
    baseline = _state_changed_listeners(hub)
    unsub_a = track_state_change(hub, ["sensor.a", "sensor.b"], _recorder("a", calls))
    unsub_b = track_state_change(hub, "sensor.a", _recorder("b", calls))
    unsub_c = track_state_change(hub, "sensor.b", _recorder("c", calls))
    assert _state_changed_listeners(hub) == baseline + 1

    unsub_a()
    unsub_a()  # twice is harmless
    hub.states.set("sensor.a", "1")
    hub.states.set("sensor.b", "1")
    assert calls == [("b", "sensor.a"), ("c", "sensor.b")]

    unsub_b()
    calls.clear()
    hub.states.set("sensor.a", "2")
    hub.states.set("sensor.b", "2")
    assert calls == [("c", "sensor.b")]
    assert _state_changed_listeners(hub) == baseline + 1

    # The last one gone, the bus listener goes too; tracking again brings it back.
    unsub_c()
    assert _state_changed_listeners(hub) == baseline
    calls.clear()
    hub.states.set("sensor.b", "3")
    assert calls == []
    unsub_d = track_state_change(hub, "sensor.b", _recorder("d", calls))
    assert _state_changed_listeners(hub) == baseline + 1
    hub.states.set("sensor.b", "4")
    assert calls == [("d", "sensor.b")]
    unsub_d()
    assert _state_changed_listeners(hub) == baseline


async def test_action_unsubscribing_itself_during_dispatch(hub: Hub) -> None:
    calls: list[tuple[str, str]] = []
    unsubs: list[Any] = []

    def once(event: Event) -> None:
        calls.append(("once", event.data[ATTR_ENTITY_ID]))
        unsubs[0]()

    unsubs.append(track_state_change(hub, "sensor.a", once))
    track_state_change(hub, "sensor.a", _recorder("stays", calls))
    hub.states.set("sensor.a", "1")
    hub.states.set("sensor.a", "2")
    assert calls == [("once", "sensor.a"), ("stays", "sensor.a"), ("stays", "sensor.a")]


async def test_only_action_unsubscribing_itself_during_dispatch(hub: Hub) -> None:
    calls: list[str] = []
    unsubs: list[Any] = []

    def once(_: Event) -> None:
        calls.append("once")
        unsubs[0]()

    baseline = _state_changed_listeners(hub)
    unsubs.append(track_state_change(hub, "sensor.a", once))
    hub.states.set("sensor.a", "1")
    hub.states.set("sensor.a", "2")
    assert calls == ["once"]
    assert _state_changed_listeners(hub) == baseline


async def test_action_added_for_other_entity_during_dispatch(hub: Hub) -> None:
    calls: list[tuple[str, str]] = []

    def adder(event: Event) -> None:
        calls.append(("adder", event.data[ATTR_ENTITY_ID]))
        if len(calls) == 1:
            track_state_change(hub, "sensor.b", _recorder("added", calls))

    track_state_change(hub, "sensor.a", adder)
    hub.states.set("sensor.a", "1")
    hub.states.set("sensor.b", "1")
    assert calls == [("adder", "sensor.a"), ("added", "sensor.b")]


async def test_action_added_for_same_entity_during_dispatch_waits_for_next_write(
    hub: Hub,
) -> None:
    calls: list[str] = []

    def adder(_: Event) -> None:
        calls.append("adder")
        if len(calls) == 1:
            track_state_change(hub, "sensor.a", lambda _: calls.append("added"))

    track_state_change(hub, "sensor.a", adder)
    hub.states.set("sensor.a", "1")
    assert calls == ["adder"]


async def test_async_action_runs_as_task(hub: Hub) -> None:
    calls: list[str] = []

    async def action(event: Event) -> None:
        await asyncio.sleep(0)
        calls.append(event.data[ATTR_NEW_STATE].state)

    track_state_change(hub, "sensor.a", action)
    hub.states.set("sensor.a", "1")
    hub.states.set("sensor.a", "2")
    assert calls == []  # not run inline
    await hub.block_till_done()
    assert calls == ["1", "2"]


async def test_exception_in_one_action_does_not_stop_others(
    hub: Hub, caplog: pytest.LogCaptureFixture
) -> None:
    calls: list[tuple[str, str]] = []
    other_listener: list[Event] = []

    def broken(_: Event) -> None:
        raise RuntimeError("action broke")

    track_state_change(hub, "sensor.a", _recorder("before", calls))
    track_state_change(hub, "sensor.a", broken)
    track_state_change(hub, "sensor.a", _recorder("after", calls))
    hub.bus.listen(EVENT_STATE_CHANGED, other_listener.append)
    hub.states.set("sensor.a", "1")
    assert calls == [("before", "sensor.a"), ("after", "sensor.a")]
    assert len(other_listener) == 1

    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert len(errors) == 1
    assert errors[0].exc_info is not None
    assert isinstance(errors[0].exc_info[1], RuntimeError)
    assert "sensor.a" in errors[0].getMessage()

    # Tracking keeps working.
    hub.states.set("sensor.a", "2")
    assert len(calls) == 4


async def test_exception_in_async_action_does_not_stop_others(hub: Hub) -> None:
    calls: list[str] = []

    async def broken(_: Event) -> None:
        await asyncio.sleep(0)
        raise RuntimeError("async action broke")

    async def fine(_: Event) -> None:
        await asyncio.sleep(0)
        calls.append("fine")

    track_state_change(hub, "sensor.a", broken)
    track_state_change(hub, "sensor.a", fine)
    hub.states.set("sensor.a", "1")
    await hub.block_till_done()
    assert calls == ["fine"]


async def test_exception_in_async_action_is_logged(
    hub: Hub, caplog: pytest.LogCaptureFixture
) -> None:
    async def broken(_: Event) -> None:
        await asyncio.sleep(0)
        raise RuntimeError("async action broke")

    track_state_change(hub, "sensor.a", broken)
    hub.states.set("sensor.a", "1")
    await hub.block_till_done()
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR and r.name.startswith("hub")]
    assert len(errors) == 1
    assert errors[0].exc_info is not None
    assert isinstance(errors[0].exc_info[1], RuntimeError)


async def test_one_bus_listener_however_many_entities(bare_hub: Hub) -> None:
    assert bare_hub.bus.listeners() == {}
    unsubs = [track_state_change(bare_hub, "sensor.first", lambda _: None)]
    assert bare_hub.bus.listeners()[EVENT_STATE_CHANGED] == 1
    unsubs.extend(
        track_state_change(bare_hub, f"sensor.s{i}", lambda _: None) for i in range(10_000)
    )
    unsubs.append(
        track_state_change(bare_hub, [f"charger.c{i}" for i in range(10_000)], lambda _: None)
    )
    assert bare_hub.bus.listeners()[EVENT_STATE_CHANGED] == 1
    for unsub in unsubs:
        unsub()
    assert bare_hub.bus.listeners() == {}


async def test_write_to_untracked_entity_is_one_filter_call_and_no_event(
    bare_hub: Hub, monkeypatch: pytest.MonkeyPatch
) -> None:
    """O(1) per write, shown structurally: one filter call, no Event, no dispatch."""
    filter_calls: list[Any] = []
    events_built: list[Event] = []
    original_listen = EventBus.listen

    def counting_listen(
        self: EventBus, event_type: str, listener: Any, event_filter: Any = None
    ) -> Any:
        if event_filter is not None:
            inner = event_filter

            def event_filter(data: Any) -> bool:
                filter_calls.append(data)
                return bool(inner(data))

        return original_listen(self, event_type, listener, event_filter)

    class CountingEvent(Event):
        __slots__ = ()

        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            events_built.append(self)

    monkeypatch.setattr(EventBus, "listen", counting_listen)
    monkeypatch.setattr(core, "Event", CountingEvent)

    calls: dict[str, int] = {}

    def make_action(entity_id: str) -> Any:
        def action(_: Event) -> None:
            calls[entity_id] = calls.get(entity_id, 0) + 1

        return action

    for i in range(10_000):
        track_state_change(bare_hub, f"sensor.s{i}", make_action(f"sensor.s{i}"))
    assert bare_hub.bus.listeners() == {EVENT_STATE_CHANGED: 1}

    bare_hub.states.set("sensor.untracked", "1")
    assert len(filter_calls) == 1
    assert filter_calls[0][ATTR_ENTITY_ID] == "sensor.untracked"
    assert not isinstance(filter_calls[0], Event)
    assert events_built == []
    assert calls == {}

    filter_calls.clear()
    bare_hub.states.set("sensor.s4242", "1")
    assert len(filter_calls) == 1
    assert len(events_built) == 1
    assert calls == {"sensor.s4242": 1}
    await bare_hub.block_till_done()
