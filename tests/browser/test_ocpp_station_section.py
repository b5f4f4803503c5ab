"""The OCPP section of the station page (integrations/ocpp/panels/station.js) in a real
browser, against a real hub and a raw OCPP 2.0.1 charge point answering the hub's calls."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

from playwright.async_api import Locator, Page, expect

from hub.registry import device_registry
from hub.testing import Connect, ErrorAnswer, RawChargePoint
from integrations.ocpp import DATA_SYSTEM
from tests.browser.conftest import (
    ADMIN,
    OPERATOR,
    VIEWER,
    Dashboard,
    DashboardFactory,
    NewPage,
    login,
    screenshot_path,
)
from tests.integrations.ocpp.conftest import ws_url

CP_ID = "CP-2"
HEX = "0123456789abcdef" * 4
ROOT_HASH = {
    "hashAlgorithm": "SHA256",
    "issuerNameHash": HEX,
    "issuerKeyHash": HEX[::-1],
    "serialNumber": "1a2b3c",
}
V2G_HASH = {**ROOT_HASH, "serialNumber": "4d5e6f"}


def now_iso(offset: float = 0) -> str:
    moment = datetime.now(UTC) + timedelta(seconds=offset)
    return moment.isoformat(timespec="seconds").replace("+00:00", "Z")


class Station:
    """A 2.0.1 charging station behind a raw charge point: it keeps installed certificates
    and display messages, answers the hub's calls with them, and sends what it is asked to."""

    def __init__(self, cp: RawChargePoint) -> None:
        self.cp = cp
        self.certificates = [
            {"certificateType": "CSMSRootCertificate", "certificateHashData": ROOT_HASH},
            {"certificateType": "V2GRootCertificate", "certificateHashData": V2G_HASH},
        ]
        self.messages: dict[int, dict[str, Any]] = {
            7: {
                "id": 7,
                "priority": "NormalCycle",
                "message": {"format": "UTF8", "content": "Welcome"},
            }
        }
        self.list_version = 3
        self.tasks: set[asyncio.Task[None]] = set()
        cp.handlers.update(
            {
                "GetInstalledCertificateIds": self.installed,
                "DeleteCertificate": self.delete,
                "GetLocalListVersion": lambda payload: {"versionNumber": self.list_version},
                "GetDisplayMessages": self.get_messages,
                "SetDisplayMessage": self.set_message,
                "GetBaseReport": self.base_report,
            }
        )

    def later(self, run: Any) -> None:
        task = asyncio.get_running_loop().create_task(run())
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    def installed(self, payload: dict[str, Any]) -> dict[str, Any]:
        if not self.certificates:
            return {"status": "NotFound"}
        return {"status": "Accepted", "certificateHashDataChain": list(self.certificates)}

    def delete(self, payload: dict[str, Any]) -> dict[str, Any]:
        wanted = payload["certificateHashData"]
        kept = [c for c in self.certificates if c["certificateHashData"] != wanted]
        found = len(kept) < len(self.certificates)
        self.certificates = kept
        return {"status": "Accepted" if found else "NotFound"}

    def get_messages(self, payload: dict[str, Any]) -> dict[str, Any]:
        if not self.messages:
            return {"status": "Unknown"}
        infos = list(self.messages.values())

        async def notify() -> None:
            await self.cp.call(
                "NotifyDisplayMessages",
                {"requestId": payload["requestId"], "messageInfo": infos, "tbc": False},
            )

        self.later(notify)
        return {"status": "Accepted"}

    def set_message(self, payload: dict[str, Any]) -> dict[str, Any]:
        info = payload["message"]
        self.messages[info["id"]] = info
        return {"status": "Accepted"}

    def base_report(self, payload: dict[str, Any]) -> dict[str, Any]:
        async def send() -> None:
            await report(self.cp, payload["requestId"], "FullReportValue")

        self.later(send)
        return {"status": "Accepted"}


async def report(cp: RawChargePoint, request_id: int, value: str) -> None:
    """The station's device-model report in one NotifyReport."""
    data = [
        {
            "component": {"name": "OCPPCommCtrlr"},
            "variable": {"name": "HeartbeatInterval"},
            "variableAttribute": [{"type": "Actual", "value": "300", "mutability": "ReadWrite"}],
        },
        {
            "component": {"name": "EVSE", "evse": {"id": 1}},
            "variable": {"name": "Power"},
            "variableAttribute": [{"type": "MaxSet", "value": "22000", "mutability": "ReadOnly"}],
        },
        {
            "component": {"name": "SecurityCtrlr"},
            "variable": {"name": "Identity"},
            "variableAttribute": [{"type": "Actual", "value": value, "mutability": "ReadOnly"}],
        },
    ]
    answer = await cp.call(
        "NotifyReport",
        {"requestId": request_id, "generatedAt": now_iso(), "seqNo": 0, "reportData": data},
    )
    assert answer == {}


async def boot_station(dashboard: Dashboard, connect: Connect) -> Station:
    """A booted 2.0.1 station with one EVSE, a stored report, a monitor, a reservation and a
    tracked firmware request."""
    cp = await connect(ws_url(dashboard.hub, CP_ID), protocol="ocpp2.0.1")
    station = Station(cp)
    boot = {"chargingStation": {"model": "W22", "vendorName": "ACME"}, "reason": "PowerUp"}
    assert (await cp.call("BootNotification", boot))["status"] == "Accepted"
    status = {"timestamp": now_iso(), "connectorStatus": "Available", "evseId": 1, "connectorId": 1}
    await cp.call("StatusNotification", status)
    await report(cp, 900, "CP-2")
    monitor = {
        "component": {"name": "EVSE", "evse": {"id": 1}},
        "variable": {"name": "Power"},
        "variableMonitoring": [
            {
                "id": 41,
                "transaction": False,
                "value": 23000.0,
                "type": "UpperThreshold",
                "severity": 4,
            }
        ],
    }
    notify = {"requestId": 901, "seqNo": 0, "generatedAt": now_iso(), "monitor": [monitor]}
    assert await cp.call("NotifyMonitoringReport", notify) == {}
    assert (
        await cp.call("FirmwareStatusNotification", {"status": "Downloading", "requestId": 77})
        == {}
    )
    await dashboard.hub.services.call(
        "ocpp",
        "reserve_now",
        {"charge_point_id": CP_ID, "evse_id": 1, "id_token": "TAG-RES", "reservation_id": 5},
    )
    await dashboard.hub.block_till_done()
    return station


async def open_section(page: Page, dashboard: Dashboard) -> Locator:
    """Open the station page; return the OCPP section once its parts have loaded."""
    device = device_registry(dashboard.hub).get_by_identifier(("ocpp", CP_ID))
    assert device is not None
    await page.goto(f"{dashboard.url}/#/chargers/{device.id}")
    section = page.locator("main ocpp-station-section")
    await expect(section).to_be_visible()
    await expect(section.locator(".loading")).to_have_count(0)
    return section


def part(section: Locator, key: str) -> Locator:
    return section.locator(f"[data-part='{key}']")


def sent(cp: RawChargePoint, action: str) -> list[dict[str, Any]]:
    return [payload for name, payload in cp.received if name == action]


async def next_call(cp: RawChargePoint, action: str, seen: int) -> dict[str, Any]:
    """The payload of the first call of action after the seen ones."""
    for _ in range(1000):
        found = sent(cp, action)
        if len(found) > seen:
            return found[seen]
        await asyncio.sleep(0.01)
    raise AssertionError(f"no {action} after the {seen} seen")


READS = {"GetInstalledCertificateIds", "GetLocalListVersion", "GetDisplayMessages"}


async def test_viewer_sees_every_part_and_no_action(
    start_dashboard: DashboardFactory, new_page: NewPage, connect: Connect
) -> None:
    dashboard = await start_dashboard()
    await dashboard.add_user(*VIEWER, "viewer")
    station = await boot_station(dashboard, connect)
    asked_before = len(station.cp.received)
    page = await new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    await login(page, dashboard.url, *VIEWER)
    section = await open_section(page, dashboard)
    await expect(section.locator("[data-ocpp-connection]")).to_have_text("connected")

    # The stored report: a filterable component / variable / value table.
    rows = part(section, "report").locator("[data-ocpp-table='report'] tbody tr")
    await expect(rows).to_have_count(3)
    await expect(rows.nth(0)).to_contain_text("OCPPCommCtrlr")
    await expect(rows.nth(0)).to_contain_text("HeartbeatInterval")
    await expect(rows.nth(1)).to_contain_text("EVSE @EVSE 1")
    await part(section, "report").get_by_label("Filter the report").fill("heartbeat")
    await expect(rows).to_have_count(1)
    await expect(rows.first).to_contain_text("300")
    await part(section, "report").get_by_label("Filter the report").fill("no such thing")
    await expect(rows).to_have_count(0)

    monitor = part(section, "monitors").locator("tr[data-monitor-id='41']")
    await expect(monitor).to_contain_text("UpperThreshold")
    await expect(monitor).to_contain_text("23000")
    certificates = part(section, "certificates")
    await expect(certificates.locator("tr[data-serial='1a2b3c']")).to_contain_text(
        "CSMSRootCertificate"
    )
    await expect(certificates.locator("tr[data-serial='4d5e6f']")).to_contain_text(
        "V2GRootCertificate"
    )
    await expect(part(section, "local-list").locator("[data-ocpp-list-version]")).to_have_text("3")
    await expect(
        part(section, "reservations").locator("tr[data-reservation-id='5']")
    ).to_contain_text("TAG-RES")
    await expect(
        part(section, "display-messages").locator("tr[data-message-id='7']")
    ).to_contain_text("Welcome")
    await expect(part(section, "firmware").locator("tr[data-request-id='77']")).to_contain_text(
        "Downloading"
    )

    # No action but reading again: no forms, no buttons that change the charger.
    await expect(section.locator("[data-ocpp-form]")).to_have_count(0)
    await expect(section.locator("[data-ocpp-action]")).to_have_count(1)
    await expect(section.locator("[data-ocpp-action='reload']")).to_be_visible()
    # The dashboard's own actions stay hidden from a viewer too.
    await expect(page.locator("[data-action]")).to_have_count(0)
    # The section's read view: role-checked, a malformed id refused, an unknown one said.
    answer = await page.request.get(f"{dashboard.url}/api/ocpp/stations/{'x' * 100}")
    assert answer.status == 400
    assert "longer than" in (await answer.json())["message"]
    answer = await page.request.get(f"{dashboard.url}/api/ocpp/stations/CP-404")
    assert answer.status == 200
    assert (await answer.json())["known"] is False
    roles = (await (await page.request.get(f"{dashboard.url}/api/ocpp/stations/{CP_ID}")).json())[
        "roles"
    ]
    assert roles["delete_certificate"] == "admin"
    assert roles["reserve_now"] == "operator"
    assert roles["get_stored_report"] == "viewer"
    # The charger was only asked, never told.
    asked = {name for name, _ in station.cp.received[asked_before:]}
    assert asked == READS
    assert not errors


async def test_operator_reserves_a_port_and_sets_a_display_message(
    start_dashboard: DashboardFactory, new_page: NewPage, connect: Connect
) -> None:
    dashboard = await start_dashboard()
    await dashboard.add_user(*OPERATOR, "operator")
    station = await boot_station(dashboard, connect)
    cp = station.cp
    page = await new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    await login(page, dashboard.url, *OPERATOR)
    section = await open_section(page, dashboard)

    # An operator's daily work only: no certificate, list, report or monitor changes.
    forms = section.locator("[data-ocpp-form]")
    await expect(forms).to_have_count(2)
    for admins_only in ("delete-certificate", "send-local-list", "clear-monitor"):
        await expect(section.locator(f"[data-ocpp-action='{admins_only}']")).to_have_count(0)
    for admins_only in ("install-certificate", "request-report", "set-monitor"):
        await expect(section.locator(f"[data-ocpp-form='{admins_only}']")).to_have_count(0)

    # Reserve EVSE 1 for half an hour.
    reservations = part(section, "reservations")
    form = reservations.locator("[data-ocpp-form='reserve']")
    await form.get_by_label("EVSE").select_option("1")
    await form.get_by_label("Id token").fill("TAG-42")
    await form.get_by_label("Minutes").fill("30")
    seen = len(sent(cp, "ReserveNow"))  # the one boot_station made
    await form.get_by_role("button", name="Reserve").click()
    request = await next_call(cp, "ReserveNow", seen)
    assert request["evseId"] == 1
    assert request["idToken"] == {"idToken": "TAG-42", "type": "Central"}
    expiry = datetime.fromisoformat(request["expiryDateTime"])
    assert abs((expiry - datetime.now(UTC)).total_seconds() - 1800) < 30
    await expect(reservations.locator(".ocpp-message")).to_contain_text(
        f"Reserve: Accepted (reservation {request['id']})"
    )
    row = reservations.locator(f"tr[data-reservation-id='{request['id']}']")
    await expect(row).to_contain_text("TAG-42")

    # Cancel it: asked first, then CancelReservation with its id.
    await row.locator("[data-ocpp-action='cancel-reservation']").click()
    dialog = page.locator("dialog.confirm-dialog")
    await expect(dialog).to_contain_text(f"Cancel reservation {request['id']} for TAG-42?")
    await dialog.locator("[data-confirm]").click()
    assert await cp.wait_for_call("CancelReservation") == {"reservationId": request["id"]}
    await expect(row).to_have_count(0)

    # "Out of order, use bay 2" in front while faulted.
    messages = part(section, "display-messages")
    form = messages.locator("[data-ocpp-form='set-display-message']")
    await form.get_by_label("Message").fill("Out of order, use bay 2")
    await form.get_by_label("Priority").select_option("InFront")
    await form.get_by_label("When").select_option("Faulted")
    await form.get_by_role("button", name="Set message").click()
    request = await cp.wait_for_call("SetDisplayMessage")
    message_id = request["message"]["id"]
    assert request == {
        "message": {
            "id": message_id,
            "priority": "InFront",
            "state": "Faulted",
            "message": {"format": "UTF8", "content": "Out of order, use bay 2"},
        }
    }
    await expect(messages.locator(".ocpp-message")).to_contain_text(
        f"Set message: Accepted (message {message_id})"
    )
    # Read again from the station: it lists the new message.
    shown = messages.locator(f"tr[data-message-id='{message_id}']")
    await expect(shown).to_contain_text("Out of order, use bay 2")
    await expect(shown).to_contain_text("Faulted")
    assert len(sent(cp, "GetDisplayMessages")) == 2
    assert not errors


async def test_admin_deletes_a_certificate_after_confirming(
    start_dashboard: DashboardFactory, new_page: NewPage, connect: Connect
) -> None:
    dashboard = await start_dashboard()
    await dashboard.add_user(*ADMIN, "admin")
    station = await boot_station(dashboard, connect)
    cp = station.cp
    page = await new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    await login(page, dashboard.url, *ADMIN)
    section = await open_section(page, dashboard)
    await page.screenshot(path=screenshot_path("ocpp-station-section-admin"), full_page=True)
    certificates = part(section, "certificates")
    row = certificates.locator("tr[data-serial='4d5e6f']")
    dialog = page.locator("dialog.confirm-dialog")

    # Cancelled: nothing is sent.
    await row.locator("[data-ocpp-action='delete-certificate']").click()
    await expect(dialog).to_contain_text("V2GRootCertificate with serial number 4d5e6f")
    await dialog.get_by_role("button", name="Cancel").click()
    await expect(dialog).to_have_count(0)
    assert sent(cp, "DeleteCertificate") == []

    # Confirmed: DeleteCertificate with the hash data the station listed.
    await row.locator("[data-ocpp-action='delete-certificate']").click()
    await dialog.locator("[data-confirm]").click()
    assert await cp.wait_for_call("DeleteCertificate") == {"certificateHashData": V2G_HASH}
    await expect(certificates.locator(".ocpp-message")).to_contain_text(
        "Delete certificate: Accepted"
    )
    await expect(row).to_have_count(0)
    await expect(certificates.locator("tr[data-serial='1a2b3c']")).to_be_visible()

    # A charger's refusal shows in its part; the page goes on.
    cp.handlers["SendLocalList"] = lambda payload: ErrorAnswer("InternalError", "disk full")
    local_list = part(section, "local-list")
    await local_list.locator("[data-ocpp-action='send-local-list']").click()
    await dialog.locator("[data-confirm]").click()
    await cp.wait_for_call("SendLocalList")
    await expect(local_list.locator(".ocpp-message.error-box")).to_contain_text("Send list failed")

    # Request a full report: GetBaseReport, and the station's report replaces the shown one.
    report_part = part(section, "report")
    await report_part.get_by_role("button", name="Request report").click()
    request = await cp.wait_for_call("GetBaseReport")
    assert request["reportBase"] == "FullInventory"
    await expect(report_part.locator(".ocpp-message")).to_contain_text(
        f"the station is sending report {request['requestId']}"
    )
    await expect(report_part.locator("[data-ocpp-table='report']")).to_contain_text(
        "FullReportValue", timeout=15_000
    )
    assert not errors


async def test_offline_station_shows_offline_parts(
    start_dashboard: DashboardFactory, new_page: NewPage, connect: Connect
) -> None:
    dashboard = await start_dashboard()
    await dashboard.add_user(*ADMIN, "admin")
    station = await boot_station(dashboard, connect)
    await station.cp.close()
    system = dashboard.hub.data[DATA_SYSTEM]
    for _ in range(500):
        if not system.stations[CP_ID].online:
            break
        await asyncio.sleep(0.01)
    assert not system.stations[CP_ID].online
    page = await new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    await login(page, dashboard.url, *ADMIN)
    section = await open_section(page, dashboard)

    await expect(section.locator("[data-ocpp-connection]")).to_have_text("offline")
    for key in ("certificates", "local-list", "display-messages"):
        await expect(part(section, key).locator("[data-offline]")).to_contain_text("Offline")
    # What the hub keeps still shows; the actions wait for the station.
    await expect(
        part(section, "report").locator("[data-ocpp-table='report'] tbody tr")
    ).to_have_count(3)
    await expect(
        part(section, "reservations").locator("tr[data-reservation-id='5']")
    ).to_be_visible()
    await expect(part(section, "firmware").locator("tr[data-request-id='77']")).to_be_visible()
    await expect(part(section, "reservations")).to_contain_text(
        "Actions need the station to be connected."
    )
    await expect(section.locator("[data-ocpp-form]")).to_have_count(0)
    await expect(section.locator(".error-box")).to_have_count(0)
    assert not errors


async def test_ocpp16_station_shows_what_16_has_and_a_bad_answer_in_its_part(
    start_dashboard: DashboardFactory, new_page: NewPage, connect: Connect
) -> None:
    """A 1.6 charge point: no device model, monitors or display messages (said so, nothing
    asked); certificates of both 1.6 types listed; reservations name a connector. An answer
    the hub cannot read shows as that part's error; the others and the page go on."""
    dashboard = await start_dashboard()
    await dashboard.add_user(*OPERATOR, "operator")
    cp = await connect(ws_url(dashboard.hub, "CP-1"))
    boot = {"chargePointVendor": "ACME", "chargePointModel": "DC50"}
    assert (await cp.call("BootNotification", boot))["status"] == "Accepted"
    await cp.call(
        "StatusNotification", {"connectorId": 1, "errorCode": "NoError", "status": "Available"}
    )
    hashes = {
        "CentralSystemRootCertificate": [ROOT_HASH],
        "ManufacturerRootCertificate": [V2G_HASH],
    }
    cp.handlers["GetInstalledCertificateIds"] = lambda payload: {
        "status": "Accepted",
        "certificateHashData": hashes[payload["certificateType"]],
    }
    cp.handlers["GetLocalListVersion"] = lambda payload: {"listVersion": -7}
    page = await new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    await login(page, dashboard.url, *OPERATOR)
    device = device_registry(dashboard.hub).get_by_identifier(("ocpp", "CP-1"))
    assert device is not None
    await page.goto(f"{dashboard.url}/#/chargers/{device.id}")
    section = page.locator("main ocpp-station-section")
    await expect(section.locator(".loading")).to_have_count(0)

    for key in ("report", "monitors", "display-messages"):
        await expect(part(section, key)).to_contain_text("OCPP 2.0.1; this station speaks 1.6")
    certificates = part(section, "certificates")
    await expect(certificates.locator("tr[data-serial='1a2b3c']")).to_contain_text(
        "CSMSRootCertificate"
    )
    await expect(certificates.locator("tr[data-serial='4d5e6f']")).to_contain_text(
        "ManufacturerRootCertificate"
    )
    assert sorted(p["certificateType"] for p in sent(cp, "GetInstalledCertificateIds")) == [
        "CentralSystemRootCertificate",
        "ManufacturerRootCertificate",
    ]
    await expect(part(section, "local-list").locator(".error-box")).to_contain_text(
        "unreadable list version"
    )
    form = part(section, "reservations").locator("[data-ocpp-form='reserve']")
    await expect(form.get_by_label("Connector").locator("option")).to_have_text(["1"])
    await form.get_by_label("Id token").fill("TAG-16")
    await form.get_by_role("button", name="Reserve").click()
    request = await cp.wait_for_call("ReserveNow")
    assert request["connectorId"] == 1
    assert request["idTag"] == "TAG-16"
    await expect(part(section, "reservations").locator("tbody tr")).to_contain_text("TAG-16")
    assert {name for name, _ in cp.received} == {
        "GetInstalledCertificateIds",
        "GetLocalListVersion",
        "ReserveNow",
    }
    assert not errors
