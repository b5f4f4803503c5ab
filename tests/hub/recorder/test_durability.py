"""A hub recording under load is killed with SIGKILL: after a restart the database holds every
row older than about a second before the kill."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import textwrap
import time
from pathlib import Path

import yaml

from .conftest import StartHub

CHILD = textwrap.dedent(
    """
    import asyncio, sys, time
    from hub.charger import fire_charger_event
    from hub.core import Hub

    async def main():
        hub = Hub(sys.argv[1])
        await hub.start()
        print("ready", flush=True)
        i = 0
        while True:
            for _ in range(20):
                hub.states.set("sensor.counter", str(i), {"n": i % 7}, timestamp=time.time())
                if i % 100 == 0:
                    fire_charger_event(hub, "session_started", station_id="st1",
                        data={"transaction_id": i, "started_at": time.time()})
                i += 1
            await asyncio.sleep(0.005)

    asyncio.run(main())
    """
)


async def test_sigkill_loses_at_most_about_a_second(
    start_hub: StartHub, db_url: str | None, tmp_path: Path
) -> None:
    child_dir = tmp_path / "child"
    child_dir.mkdir()
    section: dict[str, object] = {"commit_interval": 1}
    if db_url is not None:
        section["db_url"] = db_url
    child_dir.joinpath("configuration.yaml").write_text(
        yaml.safe_dump(
            {"http": {"server_host": "127.0.0.1", "server_port": 0}, "recorder": section}
        )
    )
    script = tmp_path / "child.py"
    script.write_text(CHILD)
    proc = await asyncio.create_subprocess_exec(
        sys.executable, str(script), str(child_dir), stdout=asyncio.subprocess.PIPE
    )
    assert proc.stdout is not None
    line = await asyncio.wait_for(proc.stdout.readline(), 60)
    assert line.strip() == b"ready"
    await asyncio.sleep(3.5)  # let it record under load for a while
    killed_at = time.time()
    os.kill(proc.pid, signal.SIGKILL)
    await proc.wait()

    _hub, recorder = await start_hub(config_dir=child_dir)
    rows = (await recorder.history(["sensor.counter"], 0, killed_at + 10))["sensor.counter"]
    values = [int(row["state"]) for row in rows]
    # Nothing missing in between: the committed rows are exactly 0..n-1.
    assert values == list(range(len(values)))
    assert len(values) > 1000
    newest = rows[-1]["last_updated"]
    # Commits are at most 1 s apart; allow the last commit's own write time on a busy box.
    assert newest >= killed_at - 1.5, f"lost {killed_at - newest:.2f} s of history"
    sessions = await recorder.sessions(0, killed_at + 10, ["st1"])
    assert (
        sorted(int(s["transaction_id"]) for s in sessions)
        == list(range(0, len(values), 100))[: len(sessions)]
    )
    assert len(sessions) >= len(values) // 100
