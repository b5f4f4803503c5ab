"""The README's automation examples load as written, and the daily uptime email works."""

from __future__ import annotations

import asyncio
import email
import re
from pathlib import Path
from typing import Any

import yaml

from hub.automation import traces
from hub.core import Hub
from tests.integrations.test_notify_integrations import (  # noqa: F401 - the fixture
    Inbox,
    email_section,
    smtp_server,
)

ROOT = Path(__file__).resolve().parents[1]


def readme_automations() -> list[dict[str, Any]]:
    text = ROOT.joinpath("README.md").read_text()
    section = text[text.index("## Automations") : text.index("## Alerts")]
    (block,) = [b for b in re.findall(r"```yaml\n(.*?)```", section, re.S) if "automations:" in b]
    automations: list[dict[str, Any]] = yaml.safe_load(block)["automations"]
    return automations


async def test_readme_examples_load_and_the_daily_uptime_email_arrives(
    tmp_path: Path,
    smtp_server: tuple[Inbox, int, Path],  # noqa: F811
) -> None:
    inbox, port, cert = smtp_server
    automations = readme_automations()
    assert [a["id"] for a in automations] == [
        "reset_faulted_once",
        "lock_on_tamper",
        "daily_uptime_report",
    ]
    config = {
        "http": {"server_host": "127.0.0.1", "server_port": 0, "zeroconf": False},
        "automations": automations,
        **email_section(port, cert),
    }
    tmp_path.joinpath("configuration.yaml").write_text(yaml.safe_dump(config))
    hub = Hub(tmp_path)
    await hub.start()
    try:
        assert len(hub.data["automation.manager"].automations) == 3
        for number, (year, month) in enumerate([(99.5, 98.25), (96.1, 91.0), (100.0, 100.0)]):
            hub.states.set(
                f"sensor.bay_{number + 1}_uptime",
                str(year),
                {
                    "friendly_name": f"Bay {number + 1} uptime",
                    "month_to_date": month,
                    "month_t_outage_min": (100 - month) * 10,
                },
            )
        await hub.services.call("automation", "trigger", {"automation_id": "daily_uptime_report"})
        for _ in range(250):
            if inbox.envelopes:
                break
            await asyncio.sleep(0.02)
        await hub.block_till_done()
        assert traces(hub, "daily_uptime_report")[-1]["outcome"] == "finished"
        (mail,) = inbox.envelopes
        message = email.message_from_bytes(mail.content)
        payload = message.get_payload(decode=True)
        assert isinstance(payload, bytes)
        body = " ".join(payload.decode().split())
        assert "Bay 1 uptime: 99.5 % over 12 months, 98.25 % this month (18 min down)" in body
        assert "Bay 2 uptime: 96.1 % over 12 months, 91.0 % this month (90 min down)" in body
        assert "Below 97 %: sensor.bay_2_uptime" in body
    finally:
        await hub.stop()
