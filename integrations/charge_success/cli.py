"""``evhub report charge-success``: the figures from a config dir's recorder database.

It reads the database with the hub running or not, as ``evhub report uptime`` does.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
import zoneinfo
from collections.abc import Mapping
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from hub.commands import CliCommands, add_config_argument
from hub.core import Hub
from hub.exceptions import HubError
from hub.hookspecs import hookimpl
from integrations.charge_success.attempts import GROUPS, PERIODS, aggregate, to_csv


class ReportError(HubError):
    """The report cannot be made (no database, a bad date, the recorder turned off)."""


@hookimpl
def evhub_cli_commands(commands: CliCommands) -> None:
    """Add ``evhub report charge-success``."""
    parser = commands.add(
        "charge-success",
        "charge attempts, success and visit rates (ChargeX definition)",
        cmd_report_charge_success,
        group="report",
    )
    parser.add_argument(
        "--from", dest="start", help="YYYY-MM-DD or ISO time (default: the last full month)"
    )
    parser.add_argument("--to", dest="end", help="YYYY-MM-DD (inclusive) or time")
    parser.add_argument("--group", choices=GROUPS, default="station")
    parser.add_argument("--by", choices=PERIODS, default="day")
    parser.add_argument("--format", choices=["csv", "json"], default="csv")
    add_config_argument(parser)


def parse_time(text: str, zone: zoneinfo.ZoneInfo, *, end: bool) -> float:
    """A date (local midnight; for an end, the next one) or an ISO time (naive: local)."""
    raw = text.strip()
    try:
        if len(raw) == 10:
            day = date.fromisoformat(raw)
            if end:
                day += timedelta(days=1)
            return datetime(day.year, day.month, day.day, tzinfo=zone).timestamp()
        parsed = datetime.fromisoformat(raw.replace("Z", "+00:00"))
    except (ValueError, OverflowError):
        raise ReportError(f"expected YYYY-MM-DD or an ISO 8601 time, not {text!r}") from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=zone)
    return parsed.timestamp()


def _load_settings(config_dir: Path) -> tuple[str, str | None, Mapping[str, Any]]:
    """The hub's time zone, the recorder's db_url and the charge_success config (validated)."""
    import voluptuous as vol

    from hub.bootstrap import HUB_SCHEMA
    from hub.config import load_config_file
    from hub.const import CONFIG_FILE
    from integrations.charge_success import CONFIG_SCHEMA
    from integrations.recorder import CONF_DB_URL
    from integrations.recorder import CONFIG_SCHEMA as RECORDER_SCHEMA

    if not (config_dir / CONFIG_FILE).is_file():
        raise ReportError(f"no {CONFIG_FILE} in {config_dir}")
    raw = load_config_file(config_dir)
    try:
        core = HUB_SCHEMA(dict(raw.get("hub") or {}))
        if raw.get("recorder") is False:
            raise ReportError(f"{CONFIG_FILE}: the recorder is turned off: nothing to report")
        recorder = RECORDER_SCHEMA(raw.get("recorder"))
        section = raw.get("charge_success")
        config = CONFIG_SCHEMA(None if section is False else section)
    except vol.Invalid as err:
        raise ReportError(f"{CONFIG_FILE}: {err}") from err
    return str(core["time_zone"]), recorder.get(CONF_DB_URL), config


async def report_from_config_dir(
    config_dir: Path,
    start_text: str | None,
    end_text: str | None,
    group: str = "station",
    by: str = "day",
    now: float | None = None,
) -> tuple[dict[str, Any], zoneinfo.ZoneInfo]:
    """Open a config dir's recorder database (hub not running) and make the report.

    With neither start nor end, the report covers the last full calendar month.
    """
    from hub.commands import last_full_month
    from hub.registry import async_load_registries, device_registry
    from integrations.charge_success import gather, rules_from_config
    from integrations.recorder import make_backend
    from integrations.recorder.core import Recorder
    from integrations.recorder.schema import SCHEMA_VERSION

    loop = asyncio.get_running_loop()
    time_zone, db_url, config = await loop.run_in_executor(None, _load_settings, config_dir)
    zone = zoneinfo.ZoneInfo(time_zone)
    if start_text is None and end_text is None:
        start_text, end_text = last_full_month(zone, time.time() if now is None else now)
    if start_text is None or end_text is None:
        raise ReportError("give both --from and --to, or neither for the last full month")
    start = parse_time(start_text, zone, end=False)
    end = parse_time(end_text, zone, end=True)
    if end <= start:
        raise ReportError("--to must be after --from")
    hub = Hub(config_dir)
    backend = make_backend(hub, db_url)
    path = getattr(backend, "path", None)
    if isinstance(path, Path) and not path.is_file():
        raise ReportError(f"no recorder database at {path}")
    await async_load_registries(hub)
    await backend.open(SCHEMA_VERSION)
    try:
        rules = rules_from_config(config)
        found, ports = await gather(
            Recorder(hub, backend),
            device_registry(hub),
            rules,
            start,
            end,
            time.time() if now is None else now,
        )
    finally:
        await backend.close()
    return aggregate(found, ports, rules, start, end, group, by, zone), zone


def _iso(ts: float | None) -> str | None:
    return None if ts is None else datetime.fromtimestamp(ts, UTC).isoformat()


def cmd_report_charge_success(args: argparse.Namespace) -> int:
    """Print the charge success report; 1 with a message on error."""
    from hub.config import ConfigError
    from integrations.recorder import RecorderError

    try:
        found, _ = asyncio.run(
            report_from_config_dir(args.config, args.start, args.end, args.group, args.by)
        )
    except (ReportError, ConfigError, RecorderError, OSError) as err:
        print(f"evhub: {err}", file=sys.stderr)
        return 1
    if args.format == "json":
        rows = [
            {**row, "start": _iso(row["start"]), "end": _iso(row["end"])} for row in found["rows"]
        ]
        sys.stdout.write(json.dumps({**found, "rows": rows}, indent=2) + "\n")
    else:
        sys.stdout.write(to_csv(found, _iso))
    return 0
