"""Time triggers on a manual clock: one timer to the next fire time, DST, stalls (issue 12)."""

from __future__ import annotations

import textwrap
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

import hub.restore_state as restore_state_module
from hub.bootstrap import new_hub
from hub.clock import ManualClock, Timer, use_manual_clock
from hub.core import Hub, ServiceCall
from integrations.automation.schedule import next_pattern_match, next_time_of_day

BERLIN = ZoneInfo("Europe/Berlin")
HOUR = 3600.0
DAY = 86400.0
DAYS = 400  # from 2027-03-01: both changes of 2027 and the spring one of 2028


def berlin(*fields: int, fold: int = 0) -> float:
    return datetime(*fields, tzinfo=BERLIN, fold=fold).timestamp()  # type: ignore[misc]


def local(timestamp: float) -> str:
    return datetime.fromtimestamp(timestamp, BERLIN).isoformat()


class Fired:
    """A test.fired service: which automation fired, at what time of the hub clock."""

    def __init__(self, hub: Hub, clock: ManualClock) -> None:
        self.calls: list[tuple[str, str, str]] = []

        def record(call: ServiceCall) -> None:
            self.calls.append((call.data["who"], local(clock.time()), call.data["now"]))

        hub.services.register("test", "fired", record)

    def of(self, who: str) -> list[str]:
        """The local times at which `who` fired (as the trigger's `now` says)."""
        return [now for name, _at, now in self.calls if name == who]


Start = Callable[[str, float], Awaitable[tuple[Hub, ManualClock, Fired]]]


@pytest.fixture
async def start(tmp_path: Path) -> AsyncIterator[Start]:
    """Start a hub in Europe/Berlin on a manual clock with the given automations."""
    hubs: list[Hub] = []

    async def run(automations: str, at: float) -> tuple[Hub, ManualClock, Fired]:
        tmp_path.joinpath("configuration.yaml").write_text(
            "hub:\n  time_zone: Europe/Berlin\nhttp:\n  server_host: 127.0.0.1\n  server_port: 0\n"
            # Only automations: the others' timers would make a year of days slow to run.
            "recorder: false\nuptime: false\nalerts: false\nreports: false\n"
            "charge_success: false\n"
            "automations:\n" + textwrap.indent(textwrap.dedent(automations).strip() + "\n", "  ")
        )
        hub = new_hub(tmp_path)
        manual = use_manual_clock(hub, at)
        fired = Fired(hub, manual)
        await hub.start()
        hubs.append(hub)
        return hub, manual, fired

    yield run
    for hub in hubs:
        await hub.stop()


def automation(name: str, trigger: str) -> str:
    return f"""
    - id: {name}
      triggers:
        - {trigger}
      actions:
        - action: test.fired
          data: {{who: {name}, now: "{{{{ trigger.now }}}}"}}
    """


async def test_at_and_a_daily_pattern_fire_once_a_day_for_a_year(
    start: Start, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The states saved for restore every 15 minutes would be 38,400 writes.
    monkeypatch.setattr(restore_state_module, "SAVE_INTERVAL", 30 * DAY)
    _hub, clock, fired = await start(
        automation("morning", 'trigger: time\n          at: "06:00"')
        + automation("night", "trigger: time_pattern\n          hours: 3\n          minutes: 0"),
        berlin(2027, 3, 1, 12, 0),
    )
    calls: list[Callable[[], Any]] = []
    real_call_later = clock.call_later

    def counting(delay: float, callback: Callable[[], Any]) -> Timer:
        if "_attach_time" in callback.__qualname__:
            calls.append(callback)
        return real_call_later(delay, callback)

    clock.call_later = counting  # type: ignore[method-assign]
    for _ in range(DAYS):
        await clock.advance(DAY)
    days = [datetime(2027, 3, 2) + timedelta(days=n) for n in range(DAYS)]
    assert fired.of("morning") == [
        datetime(d.year, d.month, d.day, 6, tzinfo=BERLIN).isoformat() for d in days
    ]
    assert fired.of("night") == [
        datetime(d.year, d.month, d.day, 3, tzinfo=BERLIN).isoformat() for d in days
    ]
    # One timer a fire, not one a second.
    assert len(calls) == 2 * DAYS


async def test_a_time_in_the_spring_gap_fires_once_at_its_end(start: Start) -> None:
    # 2027-03-28 in Berlin: 02:00 CET is followed by 03:00 CEST.
    _hub, clock, fired = await start(
        automation("gap", 'trigger: time\n          at: "02:30"')
        + automation("both", 'trigger: time\n          at: ["02:00", "02:59:59", "03:00"]'),
        berlin(2027, 3, 27, 12, 0),
    )
    await clock.advance(berlin(2027, 3, 28, 2, 59, 59, fold=1) - clock.time())
    await clock.advance(1)
    assert fired.calls == [
        ("gap", "2027-03-28T03:00:00+02:00", "2027-03-28T03:00:00+02:00"),
        ("both", "2027-03-28T03:00:00+02:00", "2027-03-28T03:00:00+02:00"),
    ]
    await clock.advance(DAY)
    assert fired.of("gap") == ["2027-03-28T03:00:00+02:00", "2027-03-29T02:30:00+02:00"]
    assert fired.of("both") == [
        "2027-03-28T03:00:00+02:00",
        "2027-03-29T02:00:00+02:00",
        "2027-03-29T02:59:59+02:00",
        "2027-03-29T03:00:00+02:00",
    ]


async def test_a_time_in_the_repeated_autumn_hour_fires_once(start: Start) -> None:
    # 2027-10-31 in Berlin: 03:00 CEST is followed by 02:00 CET, so 02:30 occurs twice.
    _hub, clock, fired = await start(
        automation("twice_seen", 'trigger: time\n          at: "02:30"')
        + automation(
            "half_hours", "trigger: time_pattern\n          hours: 2\n          minutes: /30"
        ),
        berlin(2027, 10, 30, 12, 0),
    )
    await clock.advance(2 * DAY)
    assert fired.of("twice_seen") == ["2027-10-31T02:30:00+02:00", "2027-11-01T02:30:00+01:00"]
    # A pattern keeps real time: both passes of the repeated hour match.
    assert fired.of("half_hours") == [
        "2027-10-31T02:00:00+02:00",
        "2027-10-31T02:30:00+02:00",
        "2027-10-31T02:00:00+01:00",
        "2027-10-31T02:30:00+01:00",
        "2027-11-01T02:00:00+01:00",
        "2027-11-01T02:30:00+01:00",
    ]


async def test_a_stall_past_the_time_fires_late_once(start: Start) -> None:
    _hub, clock, fired = await start(
        automation("morning", 'trigger: time\n          at: "08:00:05"'),
        berlin(2027, 6, 1, 8, 0),
    )
    await clock.advance(HOUR, stall=True)  # the loop was stuck for an hour
    assert fired.of("morning") == ["2027-06-01T09:00:00+02:00"]
    await clock.advance(DAY)
    assert fired.of("morning") == ["2027-06-01T09:00:00+02:00", "2027-06-02T08:00:05+02:00"]


async def test_a_stall_does_not_fire_a_burst_of_pattern_matches(start: Start) -> None:
    _hub, clock, fired = await start(
        automation("every_second", 'trigger: time_pattern\n          seconds: "*"'),
        berlin(2027, 6, 1, 8, 0),
    )
    await clock.advance(2)
    await clock.advance(HOUR, stall=True)
    # 3,600 seconds were due during the stall: they fire once, then every second again.
    assert fired.of("every_second") == [
        "2027-06-01T08:00:01+02:00",
        "2027-06-01T08:00:02+02:00",
        "2027-06-01T09:00:02+02:00",
    ]
    await clock.advance(2)
    assert fired.of("every_second")[3:] == [
        "2027-06-01T09:00:03+02:00",
        "2027-06-01T09:00:04+02:00",
    ]


async def test_a_stall_over_days_fires_once(start: Start) -> None:
    _hub, clock, fired = await start(
        automation("morning", 'trigger: time\n          at: "08:00"'), berlin(2027, 6, 1, 7, 0)
    )
    await clock.advance(3 * DAY, stall=True)
    assert fired.of("morning") == ["2027-06-04T07:00:00+02:00"]
    await clock.advance(HOUR)
    assert fired.of("morning")[1:] == ["2027-06-04T08:00:00+02:00"]


def test_next_fire_times_over_both_changes() -> None:
    after = berlin(2027, 3, 28, 1, 59, 59)
    assert local(next_time_of_day(after, [(2, 0, 0)], BERLIN)) == "2027-03-28T03:00:00+02:00"
    assert local(next_time_of_day(after, [(1, 0, 0)], BERLIN)) == "2027-03-29T01:00:00+02:00"
    autumn = berlin(2027, 10, 31, 2, 30)
    assert local(next_time_of_day(autumn, [(2, 30, 0)], BERLIN)) == "2027-11-01T02:30:00+01:00"
    # Every second across the spring gap: 01:59:59 CET is followed by 03:00:00 CEST.
    every = list(range(24)), list(range(60)), list(range(60))
    assert local(next_pattern_match(after, *every, BERLIN)) == "2027-03-28T03:00:00+02:00"
    # Half-hour zones (Lord Howe shifts by 30 minutes) still land on the matching minute.
    howe = ZoneInfo("Australia/Lord_Howe")
    start = datetime(2027, 4, 4, 1, 0, tzinfo=howe).timestamp()
    found = next_pattern_match(start, [2], [15], [0], howe)
    assert datetime.fromtimestamp(found, howe).strftime("%H:%M:%S") == "02:15:00"


@pytest.mark.parametrize(
    ("field", "value"), [("minutes", 60), ("hours", 24), ("seconds", "x"), ("seconds", "/0")]
)
def test_a_pattern_outside_its_range_is_refused(field: str, value: Any) -> None:
    import voluptuous as vol

    from integrations.automation.triggers import validate_trigger

    with pytest.raises(vol.Invalid, match="expected a number below"):
        validate_trigger({"trigger": "time_pattern", field: value})


def test_at_needs_a_time_with_seconds_in_range() -> None:
    import voluptuous as vol

    from integrations.automation.triggers import validate_trigger

    with pytest.raises(vol.Invalid):
        validate_trigger({"trigger": "time", "at": "08:00:60"})
    with pytest.raises(vol.Invalid):
        validate_trigger({"trigger": "time", "at": []})
