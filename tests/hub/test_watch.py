"""Behavioural tests of hub.states.watch: the one per-entity subscription."""

from __future__ import annotations

import asyncio
import logging
import math
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from hub import core
from hub.bootstrap import new_hub
from hub.const import EVENT_STATE_CHANGED
from hub.core import Context, Event, Hub, State, StateWatcher, Unsubscribe

Change = tuple[str, str | None, str | None]


@pytest.fixture
async def bare_hub(tmp_path: Path) -> AsyncIterator[Hub]:
    """A hub that was never started: no listener on the bus but the ones a test adds."""
    instance = new_hub(tmp_path)
    yield instance
    await instance.block_till_done()


def _recorder(name: str, calls: list[tuple[str, str]]) -> StateWatcher:
    def watcher(entity_id: str, old: State | None, new: State | None, ctx: Context) -> None:
        calls.append((name, entity_id))

    return watcher


def _changes(seen: list[Change]) -> StateWatcher:
    def watcher(entity_id: str, old: State | None, new: State | None, ctx: Context) -> None:
        seen.append((entity_id, old.state if old else None, new.state if new else None))

    return watcher


async def test_watcher_called_only_for_watched_entities(hub: Hub) -> None:
    seen: list[Change] = []
    hub.states.watch(["sensor.a"], _changes(seen))
    hub.states.set("sensor.b", "1")
    hub.states.set("sensor.a", "1")
    hub.states.set("sensor.a_b", "1")
    hub.states.set("sensor.ab", "1")
    hub.states.set("sensor.a", "2", {"x": 1})
    hub.states.set("sensor.a", "2", {"x": 2})  # attributes alone are a change too
    assert seen == [("sensor.a", None, "1"), ("sensor.a", "1", "2"), ("sensor.a", "2", "2")]


async def test_a_single_id_as_a_string_is_one_entity(hub: Hub) -> None:
    seen: list[Change] = []
    hub.states.watch("sensor.a", _changes(seen))
    hub.states.set("sensor.a", "1")
    assert seen == [("sensor.a", None, "1")]


async def test_watcher_gets_the_writes_context_after_the_event(hub: Hub) -> None:
    order: list[str] = []
    contexts: list[Context] = []

    def watcher(entity_id: str, old: State | None, new: State | None, ctx: Context) -> None:
        # Inside set(): the new state is already current and the bus has had its event.
        assert hub.states.get(entity_id) is new
        order.append("watcher")
        contexts.append(ctx)

    hub.bus.listen(EVENT_STATE_CHANGED, lambda event: order.append("bus"))
    hub.states.watch(["sensor.a"], watcher)
    context = Context()
    state = hub.states.set("sensor.a", "1", context=context)
    assert order == ["bus", "watcher"]
    assert contexts == [context]
    assert state.context is context


async def test_unchanged_write_does_not_call_watcher(hub: Hub) -> None:
    seen: list[Change] = []
    hub.states.watch(["sensor.a"], _changes(seen))
    hub.states.set("sensor.a", "1")
    hub.states.set("sensor.a", "1")
    assert seen == [("sensor.a", None, "1")]


async def test_removal_calls_watcher_with_new_state_none(hub: Hub) -> None:
    seen: list[Change] = []
    hub.states.set("sensor.a", "1")
    hub.states.watch(["sensor.a"], _changes(seen))
    hub.states.remove("sensor.a")
    hub.states.remove("sensor.a")  # already gone: nothing changes
    assert seen == [("sensor.a", "1", None)]


async def test_several_watchers_on_one_entity_in_order(hub: Hub) -> None:
    calls: list[tuple[str, str]] = []
    hub.states.watch(["sensor.a"], _recorder("first", calls))
    hub.states.watch(["sensor.a"], _recorder("second", calls))
    hub.states.watch("sensor.a", _recorder("third", calls))
    hub.states.set("sensor.a", "1")
    assert calls == [("first", "sensor.a"), ("second", "sensor.a"), ("third", "sensor.a")]


async def test_several_entities_one_watcher(hub: Hub) -> None:
    calls: list[tuple[str, str]] = []
    hub.states.watch(["sensor.a", "sensor.b", "sensor.a"], _recorder("one", calls))
    hub.states.set("sensor.a", "1")
    hub.states.set("sensor.b", "1")
    hub.states.set("sensor.c", "1")
    # Listed twice, still called once per write.
    assert calls == [("one", "sensor.a"), ("one", "sensor.b")]


async def test_entity_ids_from_a_generator(hub: Hub) -> None:
    calls: list[tuple[str, str]] = []
    unsub = hub.states.watch((f"sensor.s{i}" for i in range(3)), _recorder("g", calls))
    hub.states.set("sensor.s2", "1")
    unsub()
    hub.states.set("sensor.s2", "2")
    assert calls == [("g", "sensor.s2")]


async def test_same_watcher_twice_is_counted_twice(hub: Hub) -> None:
    calls: list[tuple[str, str]] = []
    watcher = _recorder("x", calls)
    unsub_first = hub.states.watch(["sensor.a"], watcher)
    unsub_second = hub.states.watch(["sensor.a"], watcher)
    hub.states.set("sensor.a", "1")
    assert len(calls) == 2
    unsub_first()
    unsub_first()  # twice undoes only its own subscription
    hub.states.set("sensor.a", "2")
    assert len(calls) == 3
    unsub_second()
    hub.states.set("sensor.a", "3")
    assert len(calls) == 3


async def test_unsubscribing_one_leaves_others(hub: Hub) -> None:
    calls: list[tuple[str, str]] = []
    unsub_a = hub.states.watch(["sensor.a", "sensor.b"], _recorder("a", calls))
    unsub_b = hub.states.watch(["sensor.a"], _recorder("b", calls))
    unsub_c = hub.states.watch(["sensor.b"], _recorder("c", calls))

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

    # The last one gone, nothing is called; watching again works.
    unsub_c()
    calls.clear()
    hub.states.set("sensor.b", "3")
    assert calls == []
    unsub_d = hub.states.watch(["sensor.b"], _recorder("d", calls))
    hub.states.set("sensor.b", "4")
    assert calls == [("d", "sensor.b")]
    unsub_d()


async def test_watcher_unsubscribing_itself_during_dispatch(hub: Hub) -> None:
    calls: list[tuple[str, str]] = []
    unsubs: list[Unsubscribe] = []

    def once(entity_id: str, old: State | None, new: State | None, ctx: Context) -> None:
        calls.append(("once", entity_id))
        unsubs[0]()

    unsubs.append(hub.states.watch(["sensor.a"], once))
    hub.states.watch(["sensor.a"], _recorder("stays", calls))
    hub.states.set("sensor.a", "1")
    hub.states.set("sensor.a", "2")
    assert calls == [("once", "sensor.a"), ("stays", "sensor.a"), ("stays", "sensor.a")]


async def test_only_watcher_unsubscribing_itself_during_dispatch(hub: Hub) -> None:
    calls: list[str] = []
    unsubs: list[Unsubscribe] = []

    def once(entity_id: str, old: State | None, new: State | None, ctx: Context) -> None:
        calls.append("once")
        unsubs[0]()

    unsubs.append(hub.states.watch(["sensor.a"], once))
    hub.states.set("sensor.a", "1")
    hub.states.set("sensor.a", "2")
    hub.states.remove("sensor.a")
    assert calls == ["once"]


async def test_range_watcher_unsubscribing_itself_during_dispatch(hub: Hub) -> None:
    calls: list[tuple[str, str]] = []
    unsubs: list[Unsubscribe] = []

    def once(entity_id: str, old: State | None, new: State | None, ctx: Context) -> None:
        calls.append(("once", entity_id))
        unsubs[0]()

    unsubs.append(hub.states.watch(["sensor.p"], once, between=(0.0, 10.0)))
    hub.states.watch(["sensor.p"], _recorder("stays", calls), between=(0.0, 10.0))
    hub.states.set("sensor.p", "1")
    hub.states.set("sensor.p", "2")
    assert calls == [("once", "sensor.p"), ("stays", "sensor.p"), ("stays", "sensor.p")]


async def test_watcher_added_for_other_entity_during_dispatch(hub: Hub) -> None:
    calls: list[tuple[str, str]] = []

    def adder(entity_id: str, old: State | None, new: State | None, ctx: Context) -> None:
        calls.append(("adder", entity_id))
        if len(calls) == 1:
            hub.states.watch(["sensor.b"], _recorder("added", calls))

    hub.states.watch(["sensor.a"], adder)
    hub.states.set("sensor.a", "1")
    hub.states.set("sensor.b", "1")
    assert calls == [("adder", "sensor.a"), ("added", "sensor.b")]


async def test_watcher_added_for_same_entity_during_dispatch_waits_for_next_write(
    hub: Hub,
) -> None:
    calls: list[str] = []

    def added(entity_id: str, old: State | None, new: State | None, ctx: Context) -> None:
        calls.append("added")

    def adder(entity_id: str, old: State | None, new: State | None, ctx: Context) -> None:
        calls.append("adder")
        if len(calls) == 1:
            hub.states.watch(["sensor.a"], added)

    hub.states.watch(["sensor.a"], adder)
    hub.states.set("sensor.a", "1")
    assert calls == ["adder"]
    hub.states.set("sensor.a", "2")
    assert calls == ["adder", "adder", "added"]


async def test_watcher_schedules_its_async_work_itself(hub: Hub) -> None:
    done: list[str] = []

    async def work(value: str) -> None:
        await asyncio.sleep(0)
        done.append(value)

    def watcher(entity_id: str, old: State | None, new: State | None, ctx: Context) -> None:
        assert new is not None
        hub.create_task(work(new.state), "watcher work")

    hub.states.watch(["sensor.a"], watcher)
    hub.states.set("sensor.a", "1")
    hub.states.set("sensor.a", "2")
    assert done == []  # not run inside set()
    await hub.block_till_done()
    assert done == ["1", "2"]


async def test_exception_in_one_watcher_does_not_stop_others(
    hub: Hub, caplog: pytest.LogCaptureFixture
) -> None:
    calls: list[tuple[str, str]] = []
    other_listener: list[Event] = []

    def broken(entity_id: str, old: State | None, new: State | None, ctx: Context) -> None:
        raise RuntimeError("watcher broke")

    hub.states.watch(["sensor.a"], _recorder("before", calls))
    hub.states.watch(["sensor.a"], broken)
    hub.states.watch(["sensor.a"], _recorder("after", calls))
    hub.bus.listen(EVENT_STATE_CHANGED, other_listener.append)
    hub.states.set("sensor.a", "1")
    assert calls == [("before", "sensor.a"), ("after", "sensor.a")]
    assert len(other_listener) == 1

    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert len(errors) == 1
    assert errors[0].exc_info is not None
    assert isinstance(errors[0].exc_info[1], RuntimeError)
    assert "sensor.a" in errors[0].getMessage()

    # Watching keeps working.
    hub.states.set("sensor.a", "2")
    assert len(calls) == 4


async def test_between_is_strict_and_numeric(hub: Hub) -> None:
    seen: list[Change] = []
    hub.states.set("sensor.p", "5")
    unsub = hub.states.watch(["sensor.p"], _changes(seen), between=(10.0, 20.0))
    for value in ("10", "10.5", "15", "20", "abc", "nan", "19.9", "25"):
        hub.states.set("sensor.p", value)
    hub.states.remove("sensor.p")  # no number: a range watcher is not told
    assert seen == [
        ("sensor.p", "10", "10.5"),
        ("sensor.p", "10.5", "15"),
        ("sensor.p", "nan", "19.9"),
    ]
    unsub()
    hub.states.set("sensor.p", "15")
    assert len(seen) == 3


async def test_between_open_ended_bounds(hub: Hub) -> None:
    seen: list[Change] = []
    hub.states.watch(["sensor.p"], _changes(seen), between=(0.0, math.inf))
    for value in ("-1", "0", "1e9", "inf"):
        hub.states.set("sensor.p", value)
    assert seen == [("sensor.p", "0", "1e9")]


async def test_same_watcher_plain_and_in_a_range_unsubscribes_separately(hub: Hub) -> None:
    calls: list[tuple[str, str]] = []
    watcher = _recorder("w", calls)
    unsub_range = hub.states.watch(["sensor.p"], watcher, between=(0.0, 10.0))
    unsub_plain = hub.states.watch(["sensor.p"], watcher)
    hub.states.set("sensor.p", "5")
    assert len(calls) == 2  # once as a range watcher, once as a plain one
    unsub_range()
    hub.states.set("sensor.p", "6")
    assert len(calls) == 3
    unsub_plain()
    hub.states.set("sensor.p", "7")
    assert len(calls) == 3


async def test_watching_adds_no_bus_listener_and_builds_no_event(
    bare_hub: Hub, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A watched write costs a dict lookup: with nobody on the bus, no Event is built."""
    events_built: list[Event] = []

    class CountingEvent(Event):
        __slots__ = ()

        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            events_built.append(self)

    monkeypatch.setattr(core, "Event", CountingEvent)
    calls: dict[str, int] = {}

    def watcher(entity_id: str, old: State | None, new: State | None, ctx: Context) -> None:
        calls[entity_id] = calls.get(entity_id, 0) + 1

    unsubs = [bare_hub.states.watch([f"sensor.s{i}"], watcher) for i in range(10_000)]
    unsubs.append(bare_hub.states.watch([f"sensor.r{i}" for i in range(10_000)], watcher))
    assert bare_hub.bus.listeners() == {}

    bare_hub.states.set("sensor.untracked", "1")
    bare_hub.states.set("sensor.s4242", "1")
    bare_hub.states.set("sensor.r17", "1")
    assert calls == {"sensor.s4242": 1, "sensor.r17": 1}
    assert events_built == []
    for unsub in unsubs:
        unsub()
    bare_hub.states.set("sensor.s4242", "2")
    assert calls == {"sensor.s4242": 1, "sensor.r17": 1}
