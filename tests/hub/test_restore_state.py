"""Restored states: a restart puts back the states of the last stop, exactly and silently."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from hub.bootstrap import new_hub
from hub.clock import use_manual_clock
from hub.const import EVENT_STATE_CHANGED, MATCH_ALL, STATE_UNAVAILABLE
from hub.core import Context, Event, Hub, State
from hub.restore_state import SAVE_INTERVAL, async_load_restore_state, last_state


def saved_document(config_dir: Path) -> dict[str, Any]:
    path = config_dir.joinpath(".storage", "core.restore_state")
    return json.loads(path.read_text())  # type: ignore[no-any-return]


def saved_entity_ids(config_dir: Path) -> set[str]:
    return {row[0] for row in saved_document(config_dir)["data"]["states"]}


async def start_hub(config_dir: Path) -> Hub:
    hub = new_hub(config_dir)
    await hub.start()
    await async_load_restore_state(hub)  # idempotent: a no-op once start-up does it
    return hub


async def test_states_come_back_identical_without_events(tmp_path: Path) -> None:
    hub = await start_hub(tmp_path)
    context = Context(user_id="operator")
    # A timestamp finer than a microsecond: ISO strings would round it.
    hub.states.set("sensor.bay_1_power", "7.4", {"unit_of_measurement": "kW"}, timestamp=1e9 + 1e-7)
    hub.states.set("sensor.bay_1_power", "7.4", {"unit_of_measurement": "kW"}, timestamp=1e9 + 5)
    hub.states.set(
        "sensor.bay_1_status",
        "Charging",
        {"friendly_name": "Bay 1 status", "nested": {"a": [1, 2]}},
        context,
    )
    before = {state.entity_id: state for state in hub.states.all()}
    await hub.stop()

    hub2 = new_hub(tmp_path)
    events: list[Event] = []
    hub2.bus.listen(MATCH_ALL, events.append, lambda data: "entity_id" in data)
    await hub2.start()
    await async_load_restore_state(hub2)

    after = {state.entity_id: state for state in hub2.states.all()}
    assert after == before
    power = after["sensor.bay_1_power"]
    assert power.last_changed_ts == 1e9 + 1e-7
    assert power.last_reported_ts == 1e9 + 5
    assert after["sensor.bay_1_status"].context.id == context.id
    assert after["sensor.bay_1_status"].context.user_id == "operator"
    assert events == []
    assert last_state(hub2, "sensor.bay_1_status") == before["sensor.bay_1_status"]
    assert last_state(hub2, "sensor.unknown") is None
    await hub2.stop()


async def test_states_removed_or_unavailable_while_stopping_are_saved_as_at_stop(
    tmp_path: Path,
) -> None:
    hub = await start_hub(tmp_path)
    hub.states.set("sensor.removed_on_unload", "42")
    hub.states.set("sensor.unavailable_on_unload", "Charging")
    hub.states.set("sensor.really_offline", STATE_UNAVAILABLE)
    hub.states.set("sensor.updated_on_unload", "1")
    at_stop = {state.entity_id: state for state in hub.states.all()}

    async def unload() -> None:
        hub.states.remove("sensor.removed_on_unload")
        hub.states.set("sensor.unavailable_on_unload", STATE_UNAVAILABLE)
        hub.states.set("sensor.updated_on_unload", "2")
        hub.states.set("sensor.added_on_unload", STATE_UNAVAILABLE)

    hub.on_shutdown(unload)
    await hub.stop()

    hub2 = await start_hub(tmp_path)
    assert hub2.states.get("sensor.removed_on_unload") == at_stop["sensor.removed_on_unload"]
    assert (
        hub2.states.get("sensor.unavailable_on_unload") == at_stop["sensor.unavailable_on_unload"]
    )
    assert hub2.states.get("sensor.really_offline") == at_stop["sensor.really_offline"]
    assert hub2.states.is_state("sensor.updated_on_unload", "2")
    assert hub2.states.is_state("sensor.added_on_unload", STATE_UNAVAILABLE)
    await hub2.stop()


async def test_restore_does_not_replace_a_state_set_first(tmp_path: Path) -> None:
    hub = await start_hub(tmp_path)
    hub.states.set("sensor.meter", "100")
    await hub.stop()

    hub2 = new_hub(tmp_path)
    hub2.states.set("sensor.meter", "200")  # an integration was quicker than the restore
    await async_load_restore_state(hub2)
    assert hub2.states.is_state("sensor.meter", "200")
    saved = last_state(hub2, "sensor.meter")
    assert saved is not None
    assert saved.state == "100"
    await hub2.start()
    assert hub2.states.is_state("sensor.meter", "200")
    await hub2.stop()


async def test_broken_entries_are_skipped_and_logged(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    good = State("sensor.good", "ok").as_dict()
    timeless = {k: v for k, v in good.items() if not k.endswith("_ts")}
    storage = tmp_path.joinpath(".storage")
    storage.mkdir()
    storage.joinpath("core.restore_state").write_text(
        json.dumps(
            {
                "version": 1,
                "key": "core.restore_state",
                "data": {
                    "states": [
                        {"state": {**good, "last_changed_ts": "garbage"}},
                        {"state": {**good, "entity_id": "Not An Id"}},
                        {
                            "state": {
                                **timeless,
                                "entity_id": "sensor.bad_time",
                                "last_changed": "x",
                            }
                        },
                        {"nothing": True},
                        "not even a mapping",
                    ]
                },
            }
        )
    )
    hub = await start_hub(tmp_path)
    assert hub.states.entity_ids() == ["sensor.good"]
    assert caplog.text.count("Skipping a saved state") == 4
    await hub.stop()


async def test_corrupt_file_does_not_stop_start_up(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    storage = tmp_path.joinpath(".storage")
    storage.mkdir()
    storage.joinpath("core.restore_state").write_text("{not json")
    hub = await start_hub(tmp_path)
    assert len(hub.states) == 0
    assert "Not restoring states" in caplog.text
    hub.states.set("sensor.fresh", "1")
    await hub.stop()
    assert saved_entity_ids(tmp_path) == {"sensor.fresh"}


async def test_states_are_saved_periodically_while_running(tmp_path: Path) -> None:
    hub = new_hub(tmp_path)
    clock = use_manual_clock(hub)
    await hub.start()
    await async_load_restore_state(hub)
    hub.states.set("sensor.first", "1")
    path = tmp_path.joinpath(".storage", "core.restore_state")
    await clock.advance(SAVE_INTERVAL - 1)
    assert not path.exists()
    await clock.advance(1)  # the save is on the hub clock: due now, no real time passed
    await hub.block_till_done()
    assert saved_entity_ids(tmp_path) == {"sensor.first"}
    assert saved_document(tmp_path)["version"] == 1
    assert saved_document(tmp_path)["data"]["saved_at"] == clock.time()
    hub.states.set("sensor.second", "2")
    await clock.advance(SAVE_INTERVAL)  # and again, every interval
    await hub.block_till_done()
    assert saved_entity_ids(tmp_path) == {"sensor.first", "sensor.second"}
    hub.states.set("sensor.third", "3")
    await hub.stop()  # the conftest check fails the test if the timer outlives the hub
    assert saved_entity_ids(tmp_path) == {"sensor.first", "sensor.second", "sensor.third"}


async def test_last_state_without_restore_data_is_none(tmp_path: Path) -> None:
    hub = new_hub(tmp_path)
    assert last_state(hub, "sensor.anything") is None


async def test_no_state_changed_event_on_restore(tmp_path: Path) -> None:
    hub = await start_hub(tmp_path)
    hub.states.set("binary_sensor.door", "on")
    await hub.stop()
    hub2 = new_hub(tmp_path)
    changed: list[Event] = []
    hub2.bus.listen(EVENT_STATE_CHANGED, changed.append)
    await hub2.start()
    await async_load_restore_state(hub2)
    assert hub2.states.is_state("binary_sensor.door", "on")
    assert changed == []
    await hub2.stop()


async def test_restored_states_of_an_integration_gone_are_unavailable(tmp_path: Path) -> None:
    from hub.registry import entity_registry

    hub = new_hub(tmp_path)
    await hub.start()
    gone = entity_registry(hub).get_or_create(
        "sensor", "gone_vendor", "u1", suggested_object_id="x"
    )
    hub.states.set(gone.entity_id, "42", {"unit_of_measurement": "W"})
    hub.states.set("sensor.no_registry_entry", "7")
    await hub.stop()

    again = new_hub(tmp_path)
    await again.start()
    try:
        state = again.states.get(gone.entity_id)
        assert state is not None
        assert state.state == "unavailable"
        assert dict(state.attributes) == {"unit_of_measurement": "W", "restored": True}
        # Outside the registry: nobody's to judge, so it stays as it was.
        assert again.states.get("sensor.no_registry_entry").state == "7"  # type: ignore[union-attr]
    finally:
        await again.stop()
