"""The pure uptime formulas: intervals, NEVI uptime, CEC caps, operating hours, 15-minute data."""

from __future__ import annotations

import math
import zoneinfo
from datetime import UTC, datetime

import pytest
import voluptuous as vol

from integrations.uptime.config import CONFIG_SCHEMA, hours_for
from integrations.uptime.const import DAY, REASONS
from integrations.uptime.figures import (
    CEC_RULES,
    INTERVAL_DOWN,
    INTERVAL_EXCLUDED,
    INTERVAL_UP,
    NEVI_RULES,
    NEVI_YEAR_SECONDS,
    PortHistory,
    UptimeFigures,
    excluded_intervals,
    mean_percent,
    trailing_window,
)
from integrations.uptime.hours import OperatingHours
from integrations.uptime.intervals import clip, intersect, merge, subtract, take_first, total
from integrations.uptime.records import ExclusionRecord, OutageRecord

UTC_ZONE = zoneinfo.ZoneInfo("UTC")
BERLIN = zoneinfo.ZoneInfo("Europe/Berlin")
H = 3600.0
M = 60.0


def ts(*parts: int, zone: zoneinfo.ZoneInfo = UTC_ZONE) -> float:
    return datetime(*parts, tzinfo=zone).timestamp()  # type: ignore[misc]


def outage(
    start: float, end: float | None, port: str = "p1", cause: str = "faulted"
) -> OutageRecord:
    return OutageRecord(f"o{start}-{port}-{cause}", port, "s1", start, end, cause)


def exclusion(
    start: float,
    end: float | None,
    reason: str,
    port: str | None = "p1",
    station: str | None = "s1",
    ident: str | None = None,
) -> ExclusionRecord:
    return ExclusionRecord(ident or f"x{start}-{reason}", port, station, start, end, reason)


def history(
    outages: list[OutageRecord],
    exclusions: list[ExclusionRecord] = (),  # type: ignore[assignment]
    *,
    until: float,
    port: str = "p1",
    zone: zoneinfo.ZoneInfo = UTC_ZONE,
    hours: OperatingHours | None = None,
) -> PortHistory:
    return PortHistory.build(port, "s1", outages, exclusions, until=until, zone=zone, hours=hours)


# Interval arithmetic ------------------------------------------------------------------------


def test_merge_intersect_subtract() -> None:
    assert merge([(5, 7), (0, 2), (1, 3), (3, 4), (9, 9)]) == [(0, 4), (5, 7)]
    assert intersect([(0, 4), (5, 10)], [(3, 6), (8, 20)]) == [(3, 4), (5, 6), (8, 10)]
    assert subtract([(0, 10)], [(2, 3), (5, 7)]) == [(0, 2), (3, 5), (7, 10)]
    assert subtract([(0, 10), (20, 30)], [(-5, 1), (9, 21), (29, 40)]) == [(1, 9), (21, 29)]
    assert subtract([(0, 10)], []) == [(0, 10)]
    assert clip([(0, 10), (20, 30)], 5, 25) == [(5, 10), (20, 25)]
    assert clip([(0, 10)], 5, 5) == []
    assert take_first([(0, 10), (20, 30)], 15) == [(0, 10), (20, 25)]
    assert total([(0, 10), (20, 25)]) == 15


# NEVI formula ---------------------------------------------------------------------------------


def test_nevi_formula_trailing_year() -> None:
    now = ts(2026, 6, 1)
    start, end = trailing_window(now)
    assert end - start == NEVI_YEAR_SECONDS == 525_600 * 60
    # 5,256 minutes down, 1,256 of them excluded: (525,600 - 4,000) / 525,600.
    down_start = ts(2026, 3, 1)
    port = history(
        [outage(down_start, down_start + 5256 * M)],
        [exclusion(down_start, down_start + 1256 * M, "utility_power")],
        until=now,
    )
    figures = port.figures(start, end)
    assert figures.t_outage_min == 5256
    assert figures.t_excluded_min == 1256
    assert figures.window_min == 525_600
    assert figures.uptime_percent == pytest.approx((525_600 - 4000) / 525_600 * 100)


def test_empty_window_has_no_figure() -> None:
    # No minute in the window (not in service, or not begun): no uptime, not 100 %.
    assert UptimeFigures(10.0, 10.0, 0.0, 0.0).uptime_percent is None
    assert UptimeFigures(10.0, 10.0, 0.0, 0.0).as_dict()["uptime_percent"] is None
    assert UptimeFigures(0.0, 600.0, 600.0, 0.0).uptime_percent == 0.0
    assert mean_percent([UptimeFigures(0, 600, 60, 0), UptimeFigures(5, 5, 0, 0)]) == 90.0
    assert mean_percent([UptimeFigures(5, 5, 0, 0)]) is None


def test_windows_are_clipped_to_the_in_service_start() -> None:
    # First seen 24 November 2026 10:00; a one-hour outage on the 25th.
    seen = ts(2026, 11, 24, 10)
    down = ts(2026, 11, 25, 8)
    now = ts(2026, 11, 26, 10)
    port = PortHistory.build(
        "p1", "s1", [outage(down, down + H)], [], until=now, zone=UTC_ZONE, in_service=seen
    )
    november = port.figures(ts(2026, 11, 1), ts(2026, 12, 1))
    assert (november.start, november.end) == (seen, now)
    assert november.window_min == 2 * 24 * 60  # its 2,880 in-service minutes, not 36,000
    assert november.uptime_percent == pytest.approx((2880 - 60) / 2880 * 100)
    october = port.figures(ts(2026, 10, 1), ts(2026, 11, 1))
    assert october.window_s == 0
    assert october.uptime_percent is None  # not in service: no figure, not 100 %
    # The trailing 12 months of a two-day-old port: W = 2,880 minutes, not 525,600.
    year = port.figures(*trailing_window(now))
    assert year.window_min == 2880
    assert year.uptime_percent == pytest.approx((2880 - 60) / 2880 * 100)
    never = PortHistory.build("p1", "s1", [], [], until=now, zone=UTC_ZONE, in_service=math.inf)
    assert never.figures(ts(2026, 1, 1), now).uptime_percent is None
    assert never.intervals(now - H, now) == []


def test_intervals_before_the_in_service_start_are_left_out() -> None:
    t0 = ts(2026, 8, 3, 10, 0)
    port = PortHistory.build(
        "p1",
        "s1",
        [outage(t0 + 20 * M, t0 + 25 * M)],
        [],
        until=t0 + DAY,
        zone=UTC_ZONE,
        in_service=t0 + 20 * M,
    )
    rows = port.intervals(t0, t0 + 45 * M)
    # 10:00-10:15 is before the port existed: left out; 10:15-10:30 counts from 10:20.
    assert [(row.start, row.status, row.outage_s) for row in rows] == [
        (t0 + 15 * M, INTERVAL_DOWN, 5 * M),
        (t0 + 30 * M, INTERVAL_UP, 0),
    ]


def test_overlapping_outages_of_one_port_count_once() -> None:
    t0 = ts(2026, 1, 10)
    port = history(
        [
            outage(t0, t0 + 600, cause="faulted"),
            outage(t0 + 300, t0 + 900, cause="offline"),
            outage(t0 + 800, t0 + 1000, cause="no_power"),
        ],
        until=t0 + DAY,
    )
    figures = port.figures(t0 - H, t0 + H)
    assert figures.outage_s == 1000
    assert figures.window_s == 2 * H
    assert figures.uptime_percent == pytest.approx((7200 - 1000) / 7200 * 100)


def test_other_ports_outages_do_not_count() -> None:
    t0 = ts(2026, 1, 10)
    port = history([outage(t0, t0 + 600, port="p2")], until=t0 + DAY)
    assert port.figures(t0, t0 + H).outage_s == 0


def test_exclusions_outside_outages_count_zero() -> None:
    t0 = ts(2026, 1, 10)
    port = history(
        [outage(t0, t0 + H)],
        [
            exclusion(t0 - 5 * H, t0 - H, "maintenance"),
            exclusion(t0 + 2 * H, t0 + 9 * H, "utility_power"),
            exclusion(t0 + 30 * M, t0 + 90 * M, "natural_disaster"),
        ],
        until=t0 + DAY,
    )
    figures = port.figures(t0 - DAY, t0 + DAY)
    assert figures.t_outage_min == 60
    assert figures.t_excluded_min == 30  # only 00:30-01:00 overlaps the outage


def test_window_clipping_and_open_outages() -> None:
    t0 = ts(2026, 2, 1)
    # Starts 30 minutes before the window, still open: counted up to `until` only.
    port = history([outage(t0 - 30 * M, None)], until=t0 + 45 * M)
    figures = port.figures(t0, t0 + H)
    assert figures.end == t0 + 45 * M  # time after `until` is not counted
    assert figures.t_outage_min == 45
    assert figures.window_min == 45
    assert figures.uptime_percent == 0.0
    assert port.figures(t0 - H, t0).t_outage_min == 30


def test_exclusion_scope_port_station_site() -> None:
    t0 = ts(2026, 4, 1)
    outages = [outage(t0, t0 + H, port="p1"), outage(t0, t0 + H, port="p2")]
    exclusions = [
        exclusion(t0, t0 + 10 * M, "utility_power", port="p2", station="s1", ident="port-p2"),
        exclusion(
            t0 + 10 * M, t0 + 20 * M, "utility_power", port=None, station="s1", ident="station"
        ),
        exclusion(
            t0 + 20 * M, t0 + 25 * M, "utility_power", port=None, station="s9", ident="other"
        ),
        exclusion(t0 + 30 * M, t0 + 35 * M, "utility_power", port=None, station=None, ident="site"),
    ]
    p1 = history(outages, exclusions, until=t0 + DAY, port="p1").figures(t0, t0 + DAY)
    p2 = history(outages, exclusions, until=t0 + DAY, port="p2").figures(t0, t0 + DAY)
    assert p1.t_excluded_min == 15  # station-wide 10 + site-wide 5
    assert p2.t_excluded_min == 25  # its own 10 + station 10 + site 5


# CEC caps -------------------------------------------------------------------------------------


def test_vandalism_capped_at_ten_days_per_incident() -> None:
    t0 = ts(2026, 3, 1)
    port = history(
        [outage(t0, t0 + 12 * DAY), outage(t0 + 20 * DAY, t0 + 23 * DAY)],
        [
            exclusion(t0, t0 + 12 * DAY, "vandalism", ident="v1"),
            exclusion(t0 + 20 * DAY, t0 + 23 * DAY, "vandalism", ident="v2"),
        ],
        until=t0 + 40 * DAY,
    )
    figures = port.figures(t0, t0 + 30 * DAY, CEC_RULES)
    assert figures.outage_s == 15 * DAY
    assert figures.excluded_s == 13 * DAY  # 10 (capped) + 3
    # The first 10 days of the incident are excluded, the last two count as downtime.
    assert port.excluded_by["cec"][0] == (t0, t0 + 10 * DAY)
    # NEVI has no caps: all 15 days are excluded.
    assert port.figures(t0, t0 + 30 * DAY, NEVI_RULES).excluded_s == 15 * DAY


def test_maintenance_capped_at_72_hours_per_calendar_year() -> None:
    t0 = ts(2026, 5, 4)
    outages = [outage(t0 + i * 7 * DAY, t0 + i * 7 * DAY + 30 * H) for i in range(3)]
    exclusions = [
        exclusion(t0 + i * 7 * DAY, t0 + i * 7 * DAY + 30 * H, "maintenance", ident=f"m{i}")
        for i in range(3)
    ]
    port = history(outages, exclusions, until=t0 + 60 * DAY)
    figures = port.figures(t0, t0 + 30 * DAY, CEC_RULES)
    assert figures.outage_s == 90 * H
    assert figures.excluded_s == 72 * H  # 30 + 30 + 12 of the third
    assert port.excluded_by["cec"][-1] == (t0 + 14 * DAY, t0 + 14 * DAY + 12 * H)
    assert port.figures(t0, t0 + 30 * DAY, NEVI_RULES).excluded_s == 90 * H


def test_maintenance_cap_restarts_with_the_calendar_year() -> None:
    # 70 hours in December, then an outage over New Year: 2 hours left in 2026, a fresh
    # 72 hours from 1 January 2027 (local time, Europe/Berlin).
    dec = ts(2026, 12, 1, zone=BERLIN)
    new_year = ts(2027, 1, 1, zone=BERLIN)
    outages = [outage(dec, dec + 70 * H), outage(new_year - 10 * H, new_year + 100 * H)]
    exclusions = [
        exclusion(dec, dec + 70 * H, "maintenance", ident="dec"),
        exclusion(new_year - 10 * H, new_year + 100 * H, "maintenance", ident="nye"),
    ]
    port = history(outages, exclusions, until=new_year + 30 * DAY, zone=BERLIN)
    assert port.figures(dec, new_year, CEC_RULES).excluded_s == 72 * H
    assert port.figures(new_year, new_year + 30 * DAY, CEC_RULES).excluded_s == 72 * H
    assert (new_year - 10 * H, new_year - 8 * H) in port.excluded_by["cec"]


def test_uncapped_reasons_do_not_use_the_maintenance_budget() -> None:
    t0 = ts(2026, 7, 1)
    port = history(
        [outage(t0, t0 + 100 * H)],
        [
            exclusion(t0, t0 + 50 * H, "utility_power", ident="a"),
            exclusion(t0, t0 + 100 * H, "maintenance", ident="b"),
        ],
        until=t0 + 10 * DAY,
    )
    # 50 h utility power, then maintenance takes its 50 remaining hours (under 72).
    assert port.figures(t0, t0 + 10 * DAY, CEC_RULES).excluded_s == 100 * H


def test_reasons_per_regulation() -> None:
    """A vehicle's failure is excluded under NEVI, not CEC; time outside operating hours
    likewise; a reason neither rule names (recorded as "other" by earlier versions) counts
    nothing."""
    t0 = ts(2026, 7, 1)
    outages = [outage(t0, t0 + 2 * H), outage(t0 + 4 * H, t0 + 6 * H)]
    exclusions = [
        exclusion(t0, t0 + 1 * H, "vehicle", ident="v"),
        exclusion(t0 + 4 * H, t0 + 6 * H, "other", ident="o"),
    ]
    port = history(outages, exclusions, until=t0 + DAY, hours=OperatingHours.parse("01:30-24:00"))
    assert port.figures(t0, t0 + DAY, NEVI_RULES).excluded_s == 1.5 * H  # vehicle, then closed
    assert port.figures(t0, t0 + DAY, CEC_RULES).excluded_s == 0


def test_excluded_intervals_never_exceed_down_time() -> None:
    down = [(0.0, 100.0)]
    found = excluded_intervals(
        down, [ExclusionRecord("x", "p1", None, -50, 500, "utility_power")], UTC_ZONE
    )
    assert found == [(0.0, 100.0)]


# Operating hours ------------------------------------------------------------------------------


def test_outside_operating_hours_counts_as_excluded() -> None:
    hours = OperatingHours.parse("06:00-22:00")
    start = ts(2026, 3, 10, 20, 0, zone=BERLIN)
    end = ts(2026, 3, 11, 8, 0, zone=BERLIN)
    port = history([outage(start, end)], until=end + DAY, zone=BERLIN, hours=hours)
    figures = port.figures(start - DAY, end + H)
    assert figures.t_outage_min == 12 * 60
    assert figures.t_excluded_min == 8 * 60  # 22:00-06:00 local


def test_overnight_hours_and_dst() -> None:
    hours = OperatingHours.parse("22:00-06:00")
    assert str(hours) == "22:00-06:00"
    # The night of the spring change in Berlin (29 March 2026, 02:00 -> 03:00): open
    # 22:00-06:00 is 7 real hours that night, so closed 06:00-22:00 the next day (16 h).
    day = ts(2026, 3, 28, 0, 0, zone=BERLIN)
    opened = hours.open_intervals(day, day + 3 * DAY, BERLIN)
    assert (ts(2026, 3, 28, 22, 0, zone=BERLIN), ts(2026, 3, 29, 6, 0, zone=BERLIN)) in opened
    assert ts(2026, 3, 29, 6, 0, zone=BERLIN) - ts(2026, 3, 28, 22, 0, zone=BERLIN) == 7 * H
    closed = hours.closed_intervals(day, day + DAY, BERLIN)
    assert closed == [(ts(2026, 3, 28, 6, 0, zone=BERLIN), ts(2026, 3, 28, 22, 0, zone=BERLIN))]


@pytest.mark.parametrize("text", ["6-22", "06:00-06:00", "25:00-26:00", "06:61-07:00", "x"])
def test_bad_operating_hours(text: str) -> None:
    with pytest.raises(ValueError, match=r"opening hours|HH:MM|invalid time"):
        OperatingHours.parse(text)


def test_round_the_clock_hours_exclude_nothing() -> None:
    hours = OperatingHours.parse("00:00-24:00")
    t0 = ts(2026, 1, 1)
    assert hours.closed_intervals(t0, t0 + 3 * DAY, UTC_ZONE) == []


# 15-minute reliability intervals ---------------------------------------------------------------


def test_fifteen_minute_intervals_at_the_edges() -> None:
    t0 = ts(2026, 8, 3, 10, 0)
    port = history(
        [outage(t0 + 7 * M, t0 + 40 * M), outage(t0 + 61 * M, t0 + 64 * M)],
        [exclusion(t0 + 60 * M, t0 + 75 * M, "utility_power")],
        until=t0 + DAY,
    )
    rows = port.intervals(t0 + 5 * M, t0 + 90 * M)
    assert [row.start for row in rows] == [t0 + i * 15 * M for i in range(6)]
    assert [row.status for row in rows] == [
        INTERVAL_DOWN,  # 10:07-10:15 down
        INTERVAL_DOWN,
        INTERVAL_DOWN,  # 10:30-10:40
        INTERVAL_UP,
        INTERVAL_EXCLUDED,  # 11:01-11:04 down, all excluded
        INTERVAL_UP,
    ]
    assert [row.outage_s for row in rows] == [8 * M, 15 * M, 10 * M, 0, 3 * M, 0]
    assert rows[4].excluded_s == 3 * M


def test_outage_rows_carry_duration_and_excluded_minutes() -> None:
    t0 = ts(2026, 8, 3)
    port = history(
        [outage(t0, t0 + 2 * H), outage(t0 + 5 * H, None, cause="offline")],
        [exclusion(t0 + H, t0 + 3 * H, "utility_power")],
        until=t0 + 6 * H,
    )
    rows = port.outage_rows(t0 + 30 * M, t0 + DAY)
    assert [(r["duration_min"], r["excluded_min"], r["cause"]) for r in rows] == [
        (90, 60, "faulted"),
        (60, 0, "offline"),
    ]
    assert rows[1]["end"] is None
    assert datetime.fromtimestamp(rows[0]["start"], UTC) == datetime(2026, 8, 3, tzinfo=UTC)


# Operating hours by weekday, on holidays, and as they changed ----------------------------------


def test_weekly_hours_and_holidays() -> None:
    hours = CONFIG_SCHEMA(
        {
            "holidays": ["2026-12-25"],
            "operating_hours": {
                "mon-fri": "06:00-22:00",
                "sat": "08:00-12:00",
                "sun": "closed",
                "holiday": "closed",
            },
        }
    )
    history = hours_for(hours, None, zone=BERLIN)
    assert history is not None
    week = ts(2026, 12, 21, zone=BERLIN)  # a Monday; Friday 25 December is a holiday
    closed = history.closed_intervals(week, week + 7 * DAY, BERLIN)
    open_time = 7 * DAY - total(closed)
    # Mon-Thu 16 h each, Friday closed (holiday), Saturday 4 h, Sunday closed.
    assert open_time == 4 * 16 * H + 4 * H
    assert (ts(2026, 12, 24, 22, zone=BERLIN), ts(2026, 12, 26, 8, zone=BERLIN)) in closed
    described = history.at(week)
    assert described is not None
    assert described.describe() == {
        "mon": "06:00-22:00",
        "tue": "06:00-22:00",
        "wed": "06:00-22:00",
        "thu": "06:00-22:00",
        "fri": "06:00-22:00",
        "sat": "08:00-12:00",
        "sun": "closed",
        "holiday": "closed",
    }


def test_hours_history_written_in_config_applies_each_from_its_date() -> None:
    config = CONFIG_SCHEMA(
        {
            "operating_hours": [
                {"hours": "06:00-22:00"},
                {"since": "2026-06-01", "hours": "open"},
            ]
        }
    )
    history = hours_for(config, None, zone=UTC_ZONE)
    assert history is not None
    may, june = ts(2026, 5, 31), ts(2026, 6, 1)
    assert total(history.closed_intervals(may, may + DAY, UTC_ZONE)) == 8 * H
    assert history.closed_intervals(june, june + DAY, UTC_ZONE) == []
    # Across the change: the night before it is closed, the one after not.
    port = PortHistory.build(
        "p1",
        "s1",
        [outage(may, june + DAY)],
        [],
        until=june + 2 * DAY,
        zone=UTC_ZONE,
        hours=history,
    ).figures(may, june + DAY, NEVI_RULES)
    assert port.excluded_s == 8 * H


def test_a_changed_statement_does_not_rewrite_the_past() -> None:
    """One statement edited in config: the engine's log keeps what applied before."""
    config = CONFIG_SCHEMA({"operating_hours": "00:00-24:00"})
    changed_at = ts(2026, 6, 1)
    logged = {"*": [(ts(2026, 1, 1), "06:00-22:00"), (changed_at, "open")]}
    history = hours_for(config, None, zone=UTC_ZONE, logged=logged)
    assert history is not None
    before = ts(2026, 5, 10)
    assert total(history.closed_intervals(before, before + DAY, UTC_ZONE)) == 8 * H
    assert history.closed_intervals(changed_at, changed_at + DAY, UTC_ZONE) == []
    # Without a log (never seen by an engine) the statement applies throughout.
    always = hours_for(config, None, zone=UTC_ZONE)
    assert always is not None
    assert always.closed_intervals(before, before + DAY, UTC_ZONE) == []


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ({"operating_hours": {"mon-fri": "06:00-22:00", "sundays": "closed"}}, "unknown day"),
        ({"operating_hours": {"fri-mon": "06:00-22:00"}}, "runs backwards"),
        ({"operating_hours": []}, "empty list"),
        (
            {"operating_hours": [{"hours": "open"}, {"hours": "closed"}]},
            "only the first may leave out since",
        ),
        (
            {
                "operating_hours": [
                    {"since": "2026-06-01", "hours": "open"},
                    {"since": "2026-05-01", "hours": "closed"},
                ]
            },
            "must increase",
        ),
        ({"operating_hours": [{"since": "soon", "hours": "open"}]}, "is not a date"),
        ({"holidays": ["Christmas"]}, "is not a date"),
    ],
)
def test_bad_hours_config(value: dict[str, object], message: str) -> None:
    with pytest.raises(vol.Invalid, match=message):
        CONFIG_SCHEMA(value)


def test_reasons_are_exactly_the_rules_causes() -> None:
    assert set(REASONS) == set(NEVI_RULES.reasons) | set(CEC_RULES.reasons)
    assert "other" not in REASONS
    assert CEC_RULES.reasons < NEVI_RULES.reasons
    assert NEVI_RULES.vandalism_cap_s is None
    assert NEVI_RULES.maintenance_cap_s is None
