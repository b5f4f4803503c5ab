"""The full path over real OCPP: a charger faults, an automation resets it, the charger gets
the Reset, the run is traced and the reset's context points back at the fault."""

from __future__ import annotations

from hub.automation import traces
from hub.core import Event
from tests.integrations.ocpp.conftest import Connect, HubFactory, ws_url

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
