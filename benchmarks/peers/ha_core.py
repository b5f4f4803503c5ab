"""The core benchmark's workload on Home Assistant's core, for a ratio measured in one run.

Run by benchmarks/core.py with a Python that has the `homeassistant` package installed;
prints one JSON line: {"version", "python", "writes_per_s", "events_per_s"}.
"""

from __future__ import annotations

import asyncio
import json
import sys
import tempfile
import time

from homeassistant import const, core
from homeassistant.helpers.event import async_track_state_change_event

ENTITIES = 1_000
TRACKED = 100


async def state_writes(writes: int) -> float:
    with tempfile.TemporaryDirectory() as config_dir:
        hass = core.HomeAssistant(config_dir)
        entity_ids = [f"sensor.cp_{i}_power" for i in range(ENTITIES)]
        seen = 0

        @core.callback
        def on_change(event: core.Event) -> None:
            nonlocal seen
            seen += 1

        unsub = async_track_state_change_event(hass, entity_ids[:TRACKED], on_change)
        set_state = hass.states.async_set
        values = [str(v) for v in range(writes // ENTITIES + 2)]
        start = time.perf_counter()
        for n in range(writes):
            set_state(
                entity_ids[n % ENTITIES], values[n // ENTITIES + 1], {"unit_of_measurement": "W"}
            )
        await hass.async_block_till_done()
        elapsed = time.perf_counter() - start
        unsub()
        assert seen == sum(1 for n in range(writes) if n % ENTITIES < TRACKED)
        await hass.async_stop(force=True)
    return writes / elapsed


async def events(fires: int) -> float:
    with tempfile.TemporaryDirectory() as config_dir:
        hass = core.HomeAssistant(config_dir)
        count = 0

        @core.callback
        def listener(event: core.Event) -> None:
            nonlocal count
            count += 1

        hass.bus.async_listen("charger_heartbeat", listener)
        fire = hass.bus.async_fire
        data = {"charge_point_id": "CP1", "seq": 1}
        start = time.perf_counter()
        for _ in range(fires):
            fire("charger_heartbeat", data)
        await hass.async_block_till_done()
        elapsed = time.perf_counter() - start
        assert count == fires
        await hass.async_stop(force=True)
    return fires / elapsed


async def main() -> None:
    writes, fires, rounds = (int(arg) for arg in sys.argv[1:4])
    best_writes = max([await state_writes(writes) for _ in range(rounds)])
    best_events = max([await events(fires) for _ in range(rounds)])
    print(
        json.dumps(
            {
                "version": const.__version__,
                "python": sys.version.split()[0],
                "writes_per_s": best_writes,
                "events_per_s": best_events,
            }
        )
    )


if __name__ == "__main__":
    asyncio.run(main())
