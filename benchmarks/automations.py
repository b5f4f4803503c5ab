"""Automations benchmark: state writes with 1,000 automations, each on its own entity.

The core benchmark's write workload (benchmarks/core.py: 200,000 writes cycling over 1,000
entities ``sensor.cp_<i>_power`` with a new value and one attribute, one tracker on the
first 100 entities, then block_till_done), run on a hub without automations (the bare core
figure) and on one where each entity has an automation with a numeric_state trigger (above
a threshold the values never reach, so every write is evaluated and none runs actions).
Prints both rates and the ratio; target >= 80%.

Rates are writes per second of the loop thread's CPU time (time.thread_time), so a
neighbour process taking the core does not count against either side; wall-clock rates are
printed too. Rounds alternate bare / with automations and the median of each is compared.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import statistics
import sys
import tempfile
import time
from pathlib import Path

from hub.bootstrap import new_hub
from hub.core import Context, State

ENTITIES = 1_000
TRACKED = 100


def write_config(directory: Path, automations: bool) -> None:
    # The recorder and the uptime engine are off on both sides: this measures what
    # automations cost.
    lines = ["http:", "  server_host: 127.0.0.1", "  server_port: 0", "  zeroconf: false"]
    lines += ["recorder: false", "uptime: false", "alerts:"]
    lines += ["  station_offline: false", "  connector_faulted: false", "  security_event: false"]
    if automations:
        lines.append("automations:")
        for i in range(ENTITIES):
            lines += [
                f"  - id: overpower_{i}",
                "    triggers:",
                "      - trigger: numeric_state",
                f"        entity_id: sensor.cp_{i}_power",
                "        above: 1000000000",
                "    actions:",
                "      - event: overpower",
            ]
    directory.joinpath("configuration.yaml").write_text("\n".join(lines) + "\n")


async def writes_per_second(automations: bool, writes: int) -> tuple[float, float]:
    """Return (writes per CPU second, writes per wall second)."""
    with tempfile.TemporaryDirectory() as config_dir:
        write_config(Path(config_dir), automations)
        hub = new_hub(config_dir)
        await hub.start()
        if automations:
            assert len(hub.data["automation.manager"].automations) == ENTITIES
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
        # As `evhub run` does after start-up (hub.util): what start-up made is frozen, so
        # collections during the writes do not walk the automations' configuration.
        gc.collect()
        gc.freeze()
        start = time.perf_counter()
        cpu_start = time.thread_time()
        for n in range(writes):
            set_state(
                entity_ids[n % ENTITIES], values[n // ENTITIES + 1], {"unit_of_measurement": "W"}
            )
        await hub.block_till_done()
        cpu = time.thread_time() - cpu_start
        elapsed = time.perf_counter() - start
        gc.unfreeze()
        unsub()
        assert seen == sum(1 for n in range(writes) if n % ENTITIES < TRACKED)
        await hub.stop()
    return writes / cpu, writes / elapsed


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--writes", type=int, default=200_000)
    parser.add_argument("--rounds", type=int, default=5, help="median of N rounds, interleaved")
    args = parser.parse_args()
    bare: list[tuple[float, float]] = []
    with_automations: list[tuple[float, float]] = []
    for _ in range(args.rounds):
        bare.append(await writes_per_second(False, args.writes))
        with_automations.append(await writes_per_second(True, args.writes))
    cpu_bare = statistics.median(r[0] for r in bare)
    cpu_auto = statistics.median(r[0] for r in with_automations)
    wall_bare = statistics.median(r[1] for r in bare)
    wall_auto = statistics.median(r[1] for r in with_automations)
    print(f"python {sys.version.split()[0]}, median of {args.rounds} interleaved rounds")
    print(f"state writes, no automations: {cpu_bare:,.0f}/s CPU ({wall_bare:,.0f}/s wall)")
    print(
        f"state writes, {ENTITIES:,} automations (one per entity): "
        f"{cpu_auto:,.0f}/s CPU ({wall_auto:,.0f}/s wall)"
    )
    print(f"ratio: {cpu_auto / cpu_bare:.0%} of the bare core (wall {wall_auto / wall_bare:.0%})")
    print("target >= 80%")


if __name__ == "__main__":
    asyncio.run(main())
