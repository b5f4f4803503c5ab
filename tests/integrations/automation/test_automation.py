"""Automations: triggers, for: deadlines on a manual clock, conditions, actions, modes, traces."""

from __future__ import annotations

import asyncio
import logging
import textwrap
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from hub.bootstrap import new_hub
from hub.clock import ManualClock, use_manual_clock
from hub.core import Hub, ServiceCall
from integrations.automation import DATA, traces

START = 1_800_000_000.0  # 2027-01-15T08:00:00Z


class Recorder:
    """A test.record service that remembers its calls."""

    def __init__(self, hub: Hub) -> None:
        self.calls: list[ServiceCall] = []
        hub.services.register("test", "record", self.calls.append)

    @property
    def data(self) -> list[dict[str, Any]]:
        return [call.data for call in self.calls]


Start = Callable[..., Awaitable[tuple[Hub, ManualClock, Recorder]]]


@pytest.fixture
async def start(tmp_path: Path) -> AsyncIterator[Start]:
    """Start a hub whose automations section is given, on a manual clock."""
    hubs: list[Hub] = []

    async def run(
        automations: str, states: dict[str, str] | None = None, clock_start: float = START
    ) -> tuple[Hub, ManualClock, Recorder]:
        tmp_path.joinpath("configuration.yaml").write_text(
            "hub:\n  time_zone: UTC\nhttp:\n  server_host: 127.0.0.1\n  server_port: 0\n"
            "automations:\n" + textwrap.indent(textwrap.dedent(automations).strip() + "\n", "  ")
        )
        hub = new_hub(tmp_path)
        manual = use_manual_clock(hub, clock_start)
        recorder = Recorder(hub)
        for entity_id, value in (states or {}).items():
            hub.states.set(entity_id, value, timestamp=manual.time())
        await hub.start()
        hubs.append(hub)
        return hub, manual, recorder

    yield run
    for hub in hubs:
        await hub.stop()


FAULT_FOR_2_MIN = """
- id: reset_faulted
  alias: Reset a faulted connector
  triggers:
    - trigger: state
      entity_id: sensor.bay_1_1_status
      to: Faulted
      for: {minutes: 2}
  actions:
    - action: test.record
      data: {what: reset}
"""


async def test_state_trigger_with_for_on_a_manual_clock(start: Start) -> None:
    hub, clock, recorder = await start(FAULT_FOR_2_MIN, {"sensor.bay_1_1_status": "Available"})
    hub.states.set("sensor.bay_1_1_status", "Faulted", timestamp=clock.time())
    await clock.advance(119)
    assert recorder.data == []
    await clock.advance(1)
    assert recorder.data == [{"what": "reset"}]
    # Recovering before the deadline cancels it.
    hub.states.set("sensor.bay_1_1_status", "Available", timestamp=clock.time())
    hub.states.set("sensor.bay_1_1_status", "Faulted", timestamp=clock.time())
    await clock.advance(60)
    hub.states.set("sensor.bay_1_1_status", "Available", timestamp=clock.time())
    await clock.advance(300)
    assert len(recorder.calls) == 1


async def test_for_deadline_survives_a_restart(start: Start, tmp_path: Path) -> None:
    hub, clock, _recorder = await start(FAULT_FOR_2_MIN, {"sensor.bay_1_1_status": "Available"})
    hub.states.set("sensor.bay_1_1_status", "Faulted", timestamp=clock.time())
    await clock.advance(90)
    await hub.stop()
    # The hub comes back 10 s later: the state is restored with its last_changed, and the
    # remaining 20 s of the deadline are re-armed rather than forgotten.
    again = new_hub(tmp_path)
    again_clock = use_manual_clock(again, clock.time() + 10)
    again_recorder = Recorder(again)
    await again.start()
    try:
        await again_clock.advance(19)
        assert again_recorder.data == []
        await again_clock.advance(1)
        assert again_recorder.data == [{"what": "reset"}]
    finally:
        await again.stop()


async def test_numeric_state_crossing_and_event_trigger(start: Start) -> None:
    hub, _clock, recorder = await start(
        """
        - id: overpower
          triggers:
            - trigger: numeric_state
              entity_id: sensor.bay_1_1_power
              above: 22000
          actions:
            - action: test.record
              data: {what: over}
        - id: on_boot
          triggers:
            - trigger: event
              event_type: ocpp_boot
              event_data: {reason: RemoteReset}
          actions:
            - action: test.record
              data: {what: boot}
        """,
        {"sensor.bay_1_1_power": "1000"},
    )
    for value in ("23000", "24000", "100", "30000"):  # 24000 is still above: no new run
        hub.states.set("sensor.bay_1_1_power", value)
        await hub.block_till_done()
    hub.bus.fire("ocpp_boot", {"reason": "PowerUp"})
    hub.bus.fire("ocpp_boot", {"reason": "RemoteReset"})
    await hub.block_till_done()
    assert recorder.data == [{"what": "over"}, {"what": "over"}, {"what": "boot"}]


async def test_conditions(start: Start) -> None:
    hub, clock, recorder = await start(
        """
        - id: guarded
          triggers:
            - trigger: event
              event_type: go
          conditions:
            - condition: state
              entity_id: sensor.mode
              state: [auto, eco]
            - condition: or
              conditions:
                - condition: numeric_state
                  entity_id: sensor.price
                  below: 0.3
                - condition: not
                  conditions:
                    - condition: time
                      after: "06:00"
                      before: "22:00"
          actions:
            - action: test.record
        """,
        {"sensor.mode": "auto", "sensor.price": "0.5"},
    )
    # 08:00 UTC, price high: the or fails.
    hub.bus.fire("go")
    await hub.block_till_done()
    assert recorder.calls == []
    run = traces(hub, "guarded")[-1]
    assert run["outcome"] == "condition_failed"
    assert run["conditions"] == [
        {"path": "condition/0", "result": True},
        {"path": "condition/1", "result": False},
    ]
    hub.states.set("sensor.price", "0.2")
    hub.bus.fire("go")
    await hub.block_till_done()
    assert len(recorder.calls) == 1
    hub.states.set("sensor.price", "0.9")
    await clock.advance(15 * 3600)  # 23:00: outside the day window
    hub.bus.fire("go")
    await hub.block_till_done()
    assert len(recorder.calls) == 2


async def test_actions_sequence_and_trace(start: Start) -> None:
    hub, clock, recorder = await start(
        """
        - id: steps
          variables: {level: 2}
          triggers:
            - trigger: event
              event_type: go
          actions:
            - action: test.record
              data: {step: 1}
            - delay: {minutes: 5}
            - if:
                - condition: state
                  entity_id: sensor.mode
                  state: auto
              then:
                - action: test.record
                  data: {step: then}
              else:
                - action: test.record
                  data: {step: else}
            - choose:
                - conditions:
                    - condition: numeric_state
                      entity_id: sensor.price
                      above: 1
                  sequence:
                    - action: test.record
                      data: {step: expensive}
              default:
                - action: test.record
                  data: {step: cheap}
            - event: steps_done
              event_data: {ok: true}
            - action: test.missing
              continue_on_error: true
            - stop: all done
            - action: test.record
              data: {step: never}
        """,
        {"sensor.mode": "auto", "sensor.price": "0.5"},
    )
    done: list[Any] = []
    hub.bus.listen("steps_done", lambda event: done.append(event.data))
    hub.bus.fire("go")
    await hub.block_till_done()
    assert recorder.data == [{"step": 1}]
    await clock.advance(300)
    assert recorder.data == [{"step": 1}, {"step": "then"}, {"step": "cheap"}]
    assert done == [{"ok": True}]
    run = traces(hub, "steps")[-1]
    assert run["outcome"] == "stopped"
    assert [step["kind"] for step in run["steps"]] == [
        "action",
        "delay",
        "if",
        "action",
        "choose",
        "action",
        "event",
        "action",
        "stop",
    ]
    missing = run["steps"][7]
    assert "ServiceNotFoundError" in missing["error"]
    # The context chain: the service call's context is a child of the run's.
    assert recorder.calls[0].context.parent_id is not None


async def test_modes(start: Start) -> None:
    hub, clock, recorder = await start(
        """
        - id: single
          mode: single
          triggers: [{trigger: event, event_type: go}]
          actions:
            - action: test.record
              data: {who: single}
            - delay: 10
        - id: queued
          mode: queued
          triggers: [{trigger: event, event_type: go}]
          actions:
            - action: test.record
              data: {who: queued}
            - delay: 10
        - id: restart
          mode: restart
          triggers: [{trigger: event, event_type: go}]
          actions:
            - delay: 10
            - action: test.record
              data: {who: restart}
        - id: parallel
          mode: parallel
          max: 2
          triggers: [{trigger: event, event_type: go}]
          actions:
            - action: test.record
              data: {who: parallel}
            - delay: 10
        """
    )
    for _ in range(3):
        hub.bus.fire("go")
        await hub.block_till_done()
        await clock.advance(1)
    await clock.advance(40)
    counts: dict[str, int] = {}
    for data in recorder.data:
        counts[data["who"]] = counts.get(data["who"], 0) + 1
    assert counts == {"single": 1, "queued": 3, "restart": 1, "parallel": 2}
    outcomes = [t["outcome"] for t in traces(hub, "restart")]
    assert outcomes == ["cancelled", "cancelled", "finished"]


async def test_services_reload_turn_off_and_trigger(start: Start, tmp_path: Path) -> None:
    hub, _clock, recorder = await start(
        """
        - id: first
          triggers: [{trigger: event, event_type: go}]
          actions: [{action: test.record, data: {who: first}}]
        """
    )
    await hub.services.call("automation", "turn_off", {"automation_id": "first"})
    hub.bus.fire("go")
    await hub.block_till_done()
    assert recorder.calls == []
    await hub.services.call("automation", "turn_on", {"automation_id": "first"})
    result = await hub.services.call("automation", "trigger", {"automation_id": "first"})
    assert result["outcome"] == "finished"
    config = tmp_path / "configuration.yaml"
    config.write_text(config.read_text().replace("who: first", "who: second"))
    assert await hub.services.call("automation", "reload") == {"automations": 1}
    hub.bus.fire("go")
    await hub.block_till_done()
    assert recorder.data == [{"who": "first"}, {"who": "second"}]


async def test_bad_automation_is_reported_and_others_load(
    start: Start, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.ERROR):
        hub, _clock, recorder = await start(
            """
            - id: good
              triggers: [{trigger: event, event_type: go}]
              actions: [{action: test.record}]
            - id: bad
              triggers:
                - trigger: sunrise
              actions: [{action: test.record}]
            - id: good
              triggers: [{trigger: event, event_type: go}]
              actions: [{action: test.record}]
            """
        )
    assert (
        "configuration.yaml:12: automations[1].triggers[0]: unknown trigger 'sunrise'"
        in caplog.text
    )
    assert "automation id 'good' used twice" in caplog.text
    assert list(hub.data[DATA].automations) == ["good"]
    hub.bus.fire("go")
    await asyncio.sleep(0)
    await hub.block_till_done()
    assert len(recorder.calls) == 1


async def test_template_time_and_pattern_triggers(start: Start) -> None:
    hub, clock, recorder = await start(
        """
        - id: hot
          triggers:
            - trigger: template
              value_template: "{{ states('sensor.temp') | float(0) > 60 }}"
              for: 30
          conditions:
            - condition: template
              value_template: "{{ is_state('sensor.mode', 'auto') }}"
          actions:
            - action: test.record
              data: {who: hot, temp: "{{ states('sensor.temp') }}"}
        - id: morning
          triggers:
            - trigger: time
              at: "08:00:05"
          actions:
            - action: test.record
              data: {who: morning}
        - id: every_quarter
          triggers:
            - trigger: time_pattern
              minutes: /15
          actions:
            - action: test.record
              data: {who: quarter}
        """,
        {"sensor.temp": "20", "sensor.mode": "auto"},
    )
    # START is 08:00:00 UTC.
    await clock.advance(6)
    assert recorder.data == [{"who": "morning"}]
    hub.states.set("sensor.temp", "65", timestamp=clock.time())
    await clock.advance(29)
    assert len(recorder.data) == 1
    await clock.advance(1)
    assert recorder.data[-1] == {"who": "hot", "temp": 65}
    await clock.advance(15 * 60)
    assert recorder.data[-1] == {"who": "quarter"}


async def test_charger_trigger(start: Start) -> None:
    from hub.charger import ChargerEventKind, fire_charger_event

    hub, _clock, recorder = await start(
        """
        - id: lock_on_tamper
          triggers:
            - trigger: charger
              event: security_event
          actions:
            - action: test.record
              data:
                station: "{{ trigger.station_id }}"
                type: "{{ trigger.type }}"
        - id: faults
          triggers:
            - trigger: charger
              event: [fault, recovered]
              device_id: station-1
          actions:
            - action: test.record
              data: {kind: "{{ trigger.kind }}"}
        """
    )
    fire_charger_event(
        hub,
        ChargerEventKind.SECURITY_EVENT,
        station_id="station-9",
        data={"type": "TamperDetectionActivated", "severity": "critical"},
    )
    fault = {"port": 1, "status": "Faulted", "error_code": "GroundFailure"}
    fire_charger_event(
        hub, ChargerEventKind.FAULT, station_id="station-1", device_id="port-1", data=fault
    )
    fire_charger_event(
        hub, ChargerEventKind.FAULT, station_id="station-2", device_id="port-2", data=fault
    )
    fire_charger_event(hub, ChargerEventKind.BOOT, station_id="station-1")
    await hub.block_till_done()
    assert recorder.data == [
        {"station": "station-9", "type": "TamperDetectionActivated"},
        {"kind": "fault"},
    ]


async def test_waits_and_repeats(start: Start) -> None:
    hub, clock, recorder = await start(
        """
        - id: waits
          triggers: [{trigger: event, event_type: go}]
          actions:
            - wait_template: "{{ is_state('sensor.door', 'closed') }}"
              timeout: 60
            - action: test.record
              data: {step: door, completed: "{{ wait.completed }}"}
            - wait_for_trigger:
                - trigger: state
                  entity_id: sensor.plug
                  to: "on"
              timeout: 30
            - action: test.record
              data: {step: plug, completed: "{{ wait.completed }}"}
            - repeat:
                count: 2
                sequence:
                  - action: test.record
                    data: {step: "count {{ repeat.index }}"}
            - repeat:
                for_each: [a, b]
                sequence:
                  - action: test.record
                    data: {step: "item {{ repeat.item }}"}
            - repeat:
                until:
                  - condition: numeric_state
                    entity_id: sensor.n
                    above: 1
                sequence:
                  - action: test.record
                    data: {step: until}
                  - variables: {dummy: 1}
            - wait_template: "{{ is_state('sensor.never', 'x') }}"
              timeout: 5
              continue_on_timeout: false
            - action: test.record
              data: {step: unreachable}
        """,
        {"sensor.door": "open", "sensor.plug": "off", "sensor.n": "5"},
    )
    hub.bus.fire("go")
    await hub.block_till_done()
    assert recorder.data == []
    hub.states.set("sensor.door", "closed")
    await hub.block_till_done()
    assert recorder.data == [{"step": "door", "completed": True}]
    await clock.advance(31)  # the plug never comes: timeout, the run goes on
    assert recorder.data[1] == {"step": "plug", "completed": False}
    assert [d["step"] for d in recorder.data[2:]] == [
        "count 1",
        "count 2",
        "item a",
        "item b",
        "until",
    ]
    await clock.advance(5)
    run = traces(hub, "waits")[-1]
    assert run["outcome"] == "error"
    assert run["error"] == "wait_template timed out"


async def test_template_conditions_see_the_run_variables(start: Start) -> None:
    """Every place a condition is checked renders its templates with the run's variables:
    trigger, this, the automation's and the actions' variables, wait and repeat."""
    hub, _clock, recorder = await start(
        """
        - id: everywhere
          variables:
            station: "{{ trigger.event.data.station }}"
          triggers: [{trigger: event, event_type: go}]
          conditions:
            - condition: template
              value_template: >-
                {{ trigger.event.data.station == 'CP-1' and this.id == 'everywhere' }}
            - condition: or
              conditions:
                - condition: template
                  value_template: "{{ station == 'CP-1' }}"
          actions:
            - variables: {limit: 2}
            - condition: template
              value_template: "{{ limit == 2 and station == 'CP-1' }}"
            - if:
                - condition: template
                  value_template: "{{ trigger.event.data.station == station }}"
              then:
                - action: test.record
                  data: {step: if}
            - choose:
                - conditions:
                    - condition: template
                      value_template: "{{ limit == 3 }}"
                  sequence: [{action: test.record, data: {step: wrong}}]
                - conditions:
                    - condition: not
                      conditions:
                        - condition: template
                          value_template: "{{ limit == 3 }}"
                  sequence: [{action: test.record, data: {step: choose}}]
            - repeat:
                while:
                  - condition: template
                    value_template: "{{ repeat.index <= limit }}"
                sequence: [{action: test.record, data: {step: "while {{ repeat.index }}"}}]
            - repeat:
                until:
                  - condition: template
                    value_template: "{{ repeat.index >= limit }}"
                sequence: [{action: test.record, data: {step: "until {{ repeat.index }}"}}]
            - wait_template: "{{ station == 'CP-1' }}"
            - if:
                - condition: template
                  value_template: "{{ wait.completed }}"
              then:
                - action: test.record
                  data: {step: waited}
            - wait_for_trigger: [{trigger: event, event_type: plug}]
              timeout: 30
            - if:
                - condition: template
                  value_template: "{{ wait.completed and wait.trigger.event.data.n == 1 }}"
              then:
                - action: test.record
                  data: {step: "plugged at {{ station }}"}
        """
    )
    hub.bus.fire("go", {"station": "CP-2"})  # the top-level condition fails
    await hub.block_till_done()
    assert traces(hub, "everywhere")[-1]["outcome"] == "condition_failed"
    hub.bus.fire("go", {"station": "CP-1"})
    await hub.block_till_done()
    hub.bus.fire("plug", {"n": 1})
    await hub.block_till_done()
    run = traces(hub, "everywhere")[-1]
    assert run["error"] is None
    assert run["outcome"] == "finished"
    assert [data["step"] for data in recorder.data] == [
        "if",
        "choose",
        "while 1",
        "while 2",
        "until 1",
        "until 2",
        "waited",
        "plugged at CP-1",
    ]


async def test_wait_for_a_template_trigger_with_the_run_variables(start: Start) -> None:
    """A template trigger in wait_for_trigger is watched as the wait goes on, seeing the run's
    variables (it was rendered once when the wait began, so it never fired)."""
    hub, _clock, recorder = await start(
        """
        - id: wait_plug
          triggers: [{trigger: event, event_type: go}]
          actions:
            - wait_for_trigger:
                - trigger: template
                  value_template: "{{ is_state('sensor.plug', trigger.event.data.want) }}"
              timeout: 60
            - action: test.record
              data: {completed: "{{ wait.completed }}"}
        """,
        {"sensor.plug": "off"},
    )
    hub.bus.fire("go", {"want": "on"})
    await hub.block_till_done()
    hub.states.set("sensor.plug", "idle")
    await hub.block_till_done()
    assert recorder.data == []
    hub.states.set("sensor.plug", "on")
    await hub.block_till_done()
    assert recorder.data == [{"completed": True}]
    assert traces(hub, "wait_plug")[-1]["outcome"] == "finished"


async def test_traces_are_saved_and_read_by_the_cli(start: Start, tmp_path: Path) -> None:
    hub, _clock, _recorder = await start(
        """
        - id: traced
          triggers: [{trigger: event, event_type: go}]
          actions:
            - action: test.record
              data: {n: 1}
            - action: test.nope
        """
    )
    hub.bus.fire("go")
    await hub.block_till_done()
    await hub.stop()
    found = await cli(tmp_path, "traced")
    assert found.returncode == 0, found.stderr
    assert ": error in " in found.stdout
    assert "action/0 action -> None" in found.stdout
    assert "action/1 action error ServiceNotFoundError" in found.stdout
    missing = await cli(tmp_path, "nothing")
    assert missing.returncode == 1
    assert "no traces of automation 'nothing'" in missing.stderr


async def cli(config_dir: Path, automation_id: str) -> Any:
    """Run `evhub automation trace` in a child process without blocking the loop."""
    import subprocess
    import sys
    from types import SimpleNamespace

    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "hub.cli",
        "automation",
        "trace",
        automation_id,
        "--config",
        str(config_dir),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    stdout, stderr = await asyncio.wait_for(process.communicate(), 60)
    return SimpleNamespace(
        returncode=process.returncode, stdout=stdout.decode(), stderr=stderr.decode()
    )
