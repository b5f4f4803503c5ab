"""Core benchmark: state writes with a tracker, event fires, and the size of a State.

Workload (issue 2): 1,000 entities ``sensor.cp_<i>_power``, one tracker (hub.states.watch)
on the first 100, 200,000 writes cycling through the entities with a new value and one
attribute, then block_till_done; and one listener with 1,000,000 fire() calls of one event
type with small data, then block_till_done. Prints writes/s and events/s over the whole of each.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from hub.bootstrap import new_hub
from hub.core import Context, Event, State

ENTITIES = 1_000
TRACKED = 100


async def bench_state_writes(writes: int) -> float:
    """Return state writes per second."""
    with tempfile.TemporaryDirectory() as config_dir:
        hub = new_hub(config_dir)
        await hub.start()
        entity_ids = [f"sensor.cp_{i}_power" for i in range(ENTITIES)]
        seen = 0

        def on_change(
            entity_id: str, old: State | None, new: State | None, context: Context
        ) -> None:
            nonlocal seen
            seen += 1

        unsub = hub.states.watch(entity_ids[:TRACKED], on_change)
        set_state = hub.states.set
        values = [str(v) for v in range(writes // ENTITIES + 2)]
        start = time.perf_counter()
        for n in range(writes):
            value = values[n // ENTITIES + 1]
            set_state(entity_ids[n % ENTITIES], value, {"unit_of_measurement": "W"})
        await hub.block_till_done()
        elapsed = time.perf_counter() - start
        unsub()
        expected = sum(1 for n in range(writes) if n % ENTITIES < TRACKED)
        assert seen == expected, (seen, expected)
        await hub.stop()
    return writes / elapsed


async def bench_events(fires: int) -> float:
    """Return events fired and delivered per second."""
    with tempfile.TemporaryDirectory() as config_dir:
        hub = new_hub(config_dir)
        await hub.start()
        count = 0

        def listener(event: Event) -> None:
            nonlocal count
            count += 1

        hub.bus.listen("charger_heartbeat", listener)
        fire = hub.bus.fire
        data = {"charge_point_id": "CP1", "seq": 1}
        start = time.perf_counter()
        for _ in range(fires):
            fire("charger_heartbeat", data)
        await hub.block_till_done()
        elapsed = time.perf_counter() - start
        assert count == fires
        await hub.stop()
    return fires / elapsed


def deep_size(obj: Any, shared: set[int]) -> int:
    """Size of obj and what it owns, not counting objects in shared."""
    seen: set[int] = set(shared)
    total = 0
    stack = [obj]
    while stack:
        item = stack.pop()
        if id(item) in seen:
            continue
        seen.add(id(item))
        total += sys.getsizeof(item)
        if isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, tuple | list):
            stack.extend(item)
        elif isinstance(item, Context):
            stack.extend((item.parent_id, item.user_id))
    return total


def state_size(own_context: bool) -> int:
    """Bytes held by one State with three attributes.

    Shared by every state of the entity, and not counted: the entity id, the attribute keys
    and the constant attribute values (unit, device class, name come from the entity's
    description). A driver passes one Context per inbound message to all the states that
    message writes; with own_context the State's Context is counted as its own.
    """
    attributes = {"unit_of_measurement": "W", "device_class": "power", "friendly_name": "CP 1"}
    entity_id = "sensor.cp_1_power"
    context = Context()
    state = State(entity_id, str(7421.5), dict(attributes), time.time(), context=context)
    shared = {id(k) for k in attributes} | {id(v) for v in attributes.values()}
    shared |= {id(entity_id), id(None)}
    if not own_context:
        shared.add(id(context))
    return deep_size(state, shared)


PEER = Path(__file__).parent / "peers" / "ha_core.py"


def run_peer(python: str, writes: int, fires: int, rounds: int) -> dict[str, Any] | None:
    """Run the same workload on Home Assistant's core with the given interpreter."""
    result = subprocess.run(
        [python, str(PEER), str(writes), str(fires), str(rounds)],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    if result.returncode != 0:
        print(f"peer: Home Assistant run failed: {result.stderr.strip()[-500:]}")
        return None
    peer: dict[str, Any] = json.loads(result.stdout.strip().splitlines()[-1])
    return peer


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--writes", type=int, default=200_000)
    parser.add_argument("--fires", type=int, default=1_000_000)
    parser.add_argument("--rounds", type=int, default=3, help="best of N rounds")
    parser.add_argument(
        "--peer-python",
        default=os.environ.get("EVHUB_HA_PYTHON"),
        help="a Python with homeassistant installed, to run the same workload on its core",
    )
    args = parser.parse_args()
    gc.collect()
    print(f"python {sys.version.split()[0]}, best of {args.rounds} rounds")
    writes = max([await bench_state_writes(args.writes) for _ in range(args.rounds)])
    print(
        f"state writes: {writes:,.0f}/s ({args.writes:,} writes, {ENTITIES:,} entities, "
        f"tracker on {TRACKED}); target 250,000/s"
    )
    events = max([await bench_events(args.fires) for _ in range(args.rounds)])
    print(f"events: {events:,.0f}/s ({args.fires:,} fires, one listener); target 550,000/s")
    if args.peer_python:
        peer = run_peer(args.peer_python, args.writes, args.fires, args.rounds)
        if peer is not None:
            print(
                f"peer Home Assistant {peer['version']} core on Python {peer['python']}: "
                f"{peer['writes_per_s']:,.0f} state writes/s, {peer['events_per_s']:,.0f} events/s"
            )
            print(
                f"ratio evhub/Home Assistant: state writes {writes / peer['writes_per_s']:.2f}x, "
                f"events {events / peer['events_per_s']:.2f}x"
            )
    else:
        print("peer: none (scripts/bench core sets up Home Assistant when Python 3.13 exists)")
    print(
        f"State with three attributes: {state_size(own_context=False)} bytes with its message's"
        f" context, {state_size(own_context=True)} bytes with a context of its own; target < 400"
    )


if __name__ == "__main__":
    asyncio.run(main())
