"""check-config knows every ocpp.* service: the declared list is what set-up registers."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from integrations.ocpp.const import SERVICES
from tests.integrations.ocpp.conftest import HubFactory

OPEN = """
listeners:
  - port: 0
    host: 127.0.0.1
    security_profile: 0
"""


async def test_the_declared_services_are_the_registered_ones(ocpp_hub: HubFactory) -> None:
    hub = await ocpp_hub(OPEN)
    assert sorted(hub.services.services()["ocpp"]) == sorted(SERVICES)


def test_check_config_names_a_misspelled_ocpp_service(tmp_path: Path) -> None:
    (tmp_path / "configuration.yaml").write_text(
        "http:\n  server_host: 127.0.0.1\n  server_port: 0\n"
        "ocpp:\n  listeners:\n    - {port: 0, host: 127.0.0.1, security_profile: 0}\n"
        "automations:\n"
        "  - id: nightly\n"
        "    triggers:\n      - {trigger: time, at: '03:00:00'}\n"
        "    actions:\n"
        "      - action: ocpp.get_configration\n"
        "        target: {device_id: abc}\n"
    )
    done = subprocess.run(
        [sys.executable, "-m", "hub.cli", "check-config", "--config", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode != 0
    assert (
        "unknown service 'ocpp.get_configration'; did you mean 'ocpp.get_configuration'?"
        in done.stdout + done.stderr
    ), done.stdout + done.stderr
