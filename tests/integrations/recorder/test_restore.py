"""After a crash, states come back from the history when it is newer than the last save."""

from __future__ import annotations

import shutil
from pathlib import Path

from hub.core import Hub, State
from hub.restore_state import STORAGE_KEY, restore_newer

from .conftest import StartHub


async def test_states_newer_than_the_last_save_come_back_from_the_history(
    start_hub: StartHub, tmp_path: Path
) -> None:
    hub, _recorder = await start_hub()
    hub.states.set("sensor.energy", "100", {"unit_of_measurement": "Wh"})
    hub.states.set("sensor.kept", "a")
    await hub.stop()
    saved = tmp_path / ".storage" / STORAGE_KEY
    stale = tmp_path / "stale_restore_state"
    shutil.copy(saved, stale)

    hub, recorder = await start_hub()
    assert hub.states.get("sensor.energy").state == "100"  # type: ignore[union-attr]
    hub.states.set("sensor.energy", "250", {"unit_of_measurement": "Wh"})
    hub.states.set("sensor.new", "x")
    await recorder.flush()
    await hub.stop()
    # A crash: the last periodic save is older than the history.
    shutil.copy(stale, saved)

    hub, _recorder = await start_hub()
    energy = hub.states.get("sensor.energy")
    assert energy is not None
    assert (energy.state, dict(energy.attributes)) == ("250", {"unit_of_measurement": "Wh"})
    assert hub.states.get("sensor.new").state == "x"  # type: ignore[union-attr]
    assert hub.states.get("sensor.kept").state == "a"  # type: ignore[union-attr]


async def test_a_state_set_since_start_up_is_left_alone(hub: Hub) -> None:
    hub.states.set("sensor.live", "now")
    live = hub.states.get("sensor.live")
    assert live is not None
    older = State("sensor.live", "then", {}, 1.0, live.last_updated_ts + 5, 1.0)
    restored = State("sensor.gone", "back", {}, 1.0, 2.0, 2.0)
    assert restore_newer(hub, [older, restored]) == 1
    assert hub.states.get("sensor.live") is live
    assert hub.states.get("sensor.gone") == restored
