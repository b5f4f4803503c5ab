"""The full path over real OCPP: a charger faults, an automation resets it, the charger gets
the Reset, the run is traced and the reset's context points back at the fault."""

from __future__ import annotations

import asyncio
from pathlib import Path

from hub.core import Event
from integrations.alerts import alert_manager
from integrations.automation import traces
from tests.integrations.ocpp.conftest import Connect, HubFactory, ws_url
from tests.integrations.test_notify_integrations import (  # noqa: F401 - the fixture
    PASSWORD,
    USER,
    Inbox,
    smtp_server,
)

OCPP = """
listeners:
  - port: 0
    host: 127.0.0.1
    security_profile: 0
chargers:
  - id: CP-1
    name: Bay 1
"""

AUTOMATIONS = """
automations:
  - id: reset_on_fault
    triggers:
      - trigger: charger
        event: fault
    actions:
      - action: charger.reset
        target:
          device_id: "{{ trigger.station_id }}"
        data:
          type: hard
"""


async def test_fault_triggers_a_reset_the_charger_receives(
    ocpp_hub: HubFactory, connect: Connect
) -> None:
    hub = await ocpp_hub(OCPP, extra=AUTOMATIONS)
    calls: list[Event] = []
    hub.bus.listen("call_service", calls.append)
    cp = await connect(ws_url(hub, "CP-1"))
    await cp.call("BootNotification", {"chargePointVendor": "ACME", "chargePointModel": "DC50"})
    await cp.call(
        "StatusNotification", {"connectorId": 1, "errorCode": "NoError", "status": "Available"}
    )
    await cp.call(
        "StatusNotification",
        {"connectorId": 1, "errorCode": "GroundFailure", "status": "Faulted"},
    )
    assert await cp.wait_for_call("Reset") == {"type": "Hard"}
    await hub.block_till_done()
    run = traces(hub, "reset_on_fault")[-1]
    assert run["outcome"] == "finished"
    assert run["trigger"]["kind"] == "fault"
    assert run["trigger"]["error_code"] == "GroundFailure"
    reset = next(e for e in calls if e.data["service"] == "reset")
    # Caused by the automation run, itself caused by the charger's StatusNotification.
    assert reset.context.parent_id is not None


async def test_full_path_fault_reset_alert_and_email(
    ocpp_hub: HubFactory,
    connect: Connect,
    smtp_server: tuple[Inbox, int, Path],  # noqa: F811
) -> None:
    """Faulted over OCPP → the automation resets the charger → the built-in rule raises an
    alert → the automation's email arrives at a real SMTP server (STARTTLS and login)."""
    inbox, port, cert = smtp_server
    extra = f"""
notify_email:
  - name: ops_mail
    host: 127.0.0.1
    port: {port}
    username: {USER}
    password: {PASSWORD}
    sender: evhub@example.com
    recipients: [ops@example.com]
    ca_file: {cert}
    retries: 0
automations:
  - id: reset_and_mail
    triggers:
      - trigger: charger
        event: fault
    actions:
      - action: charger.reset
        target: {{device_id: "{{{{ trigger.station_id }}}}"}}
      - action: notify.ops_mail
        data:
          title: "{{{{ trigger.charge_point_id }}}} faulted: {{{{ trigger.error_code }}}}"
          message: "Connector {{{{ trigger.port }}}} reset at {{{{ now().isoformat() }}}}"
"""
    hub = await ocpp_hub(OCPP, extra=extra)
    cp = await connect(ws_url(hub, "CP-1"))
    await cp.call("BootNotification", {"chargePointVendor": "ACME", "chargePointModel": "DC50"})
    await cp.call(
        "StatusNotification",
        {"connectorId": 1, "errorCode": "GroundFailure", "status": "Faulted"},
    )
    assert await cp.wait_for_call("Reset") == {"type": "Soft"}
    for _ in range(200):
        if inbox.envelopes:
            break
        await asyncio.sleep(0.02)
    await hub.block_till_done()
    alerts = alert_manager(hub).open()
    # The port has been faulted for all its (seconds-long) time in service, so the uptime
    # rule may raise its port's and station's alerts too (uptime counts from the in-service
    # start); the fault alert is the one this path is about.
    kinds = [alert.key.split(":")[0] for alert in alerts]
    assert kinds.count("fault") == 1
    assert set(kinds) <= {"fault", "uptime"}
    alerts = [alert for alert in alerts if alert.key.startswith("fault:")]
    assert alerts[0].severity == "warning"
    # Named as the operator named the charger, with its charge point id for the hardware.
    assert alerts[0].title == "Connector faulted: Bay 1 connector 1 (CP-1)"
    assert len(inbox.envelopes) == 1
    mail = inbox.envelopes[0].content.decode()
    assert "Subject: CP-1 faulted: GroundFailure" in mail
    assert inbox.envelopes[0].rcpt_tos == ["ops@example.com"]
