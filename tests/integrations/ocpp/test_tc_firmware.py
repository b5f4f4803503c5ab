"""Firmware management (L) as the OCA's CSMS test cases describe it, and the 1.6 security
whitepaper's signed update: the test plays the charging station over a real websocket and
checks the frames the hub sends and its answers."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from hub.core import Hub
from hub.exceptions import ServiceValidationError
from hub.registry import device_registry
from hub.security import security_log
from tests.integrations.ocpp.conftest import Connect, HubFactory, RawChargePoint, ws_url
from tests.integrations.ocpp.test_central_system import NOW, OPEN, boot16
from tests.integrations.ocpp.test_tc_device_management import calls, station201

TARGET = {"charge_point_id": "CP-2"}
CERTIFICATE = "-----BEGIN CERTIFICATE-----\nMIIBszCCAVmgAwIBAgIUJ\n-----END CERTIFICATE-----\n"
SIGNATURE = "MEUCIQDx2v3Yf5m0q0Zb7Yl8pQ=="
LOCATION = "https://fw.example.com/acme-2.0.bin"
SIGNED = {"location": LOCATION, "signing_certificate": CERTIFICATE, "signature": SIGNATURE}
CHECKSUM = "9e107d9d372bb6826bd81d3542a419d6"


async def ocpp(hub: Hub, service: str, data: dict[str, Any]) -> Any:
    return await hub.services.call("ocpp", service, {**TARGET, **data})


async def statuses(
    hub: Hub, cp: RawChargePoint, request_id: int | None, *steps: str, action: str = ""
) -> None:
    """The station reports each status of the update; the hub answers empty and shows it."""
    message = action or "FirmwareStatusNotification"
    for status in steps:
        payload: dict[str, Any] = {"status": status}
        if request_id is not None:
            payload["requestId"] = request_id
        assert await cp.call(message, payload) == {}
        state = hub.states.get("sensor.bay_2_firmware_status")
        assert state is not None
        assert state.state == status
        if request_id is not None:
            assert state.attributes["request_id"] == request_id


async def history(hub: Hub, request_id: int) -> list[str]:
    requests = (await ocpp(hub, "get_firmware_updates", {}))["requests"]
    return [status for status, _at in requests[str(request_id)]["history"]]


def firmware_events(hub: Hub) -> list[Any]:
    return [e for e in security_log(hub).query() if e.kind.startswith("ocpp_firmware")]


# L01 Secure firmware update ---------------------------------------------------------------


async def test_tc_l_01_csms_secure_firmware_update_installation_successful(
    ocpp_hub: HubFactory, connect: Connect
) -> None:
    hub = await ocpp_hub(OPEN)
    cp = await station201(hub, connect)
    answer = await ocpp(hub, "update_firmware", SIGNED)
    assert answer["status"] == "Accepted"
    (sent,) = calls(cp, "UpdateFirmware")
    assert sent["requestId"] == answer["requestId"]
    firmware = sent["firmware"]
    assert firmware["location"] == LOCATION
    assert firmware["signingCertificate"] == CERTIFICATE
    assert firmware["signature"] == SIGNATURE
    assert firmware["retrieveDateTime"].endswith("Z")
    request_id = answer["requestId"]
    steps = ("Downloading", "Downloaded", "SignatureVerified", "Installing", "InstallRebooting")
    await statuses(hub, cp, request_id, *steps)
    boot = await cp.call(
        "BootNotification",
        {"chargingStation": {"model": "W", "vendorName": "V"}, "reason": "FirmwareUpdate"},
    )
    assert boot["status"] == "Accepted"
    await cp.call(
        "StatusNotification",
        {"timestamp": NOW, "connectorStatus": "Available", "evseId": 1, "connectorId": 1},
    )
    await statuses(hub, cp, request_id, "Installed")
    assert await history(hub, request_id) == [*steps, "Installed"]
    assert firmware_events(hub) == []


async def test_tc_l_02_csms_secure_firmware_update_install_scheduled(
    ocpp_hub: HubFactory, connect: Connect
) -> None:
    hub = await ocpp_hub(OPEN)
    cp = await station201(hub, connect)
    install_at = datetime.now(UTC).replace(microsecond=0) + timedelta(hours=2)
    answer = await ocpp(hub, "update_firmware", {**SIGNED, "install_at": install_at.isoformat()})
    firmware = calls(cp, "UpdateFirmware")[0]["firmware"]
    assert firmware["installDateTime"] == install_at.isoformat().replace("+00:00", "Z")
    assert firmware["signingCertificate"] == CERTIFICATE
    steps = ("Downloading", "Downloaded", "SignatureVerified", "InstallScheduled", "Installing")
    await statuses(hub, cp, answer["requestId"], *steps, "Installed")
    assert await history(hub, answer["requestId"]) == [*steps, "Installed"]


async def test_tc_l_03_csms_secure_firmware_update_download_scheduled(
    ocpp_hub: HubFactory, connect: Connect
) -> None:
    hub = await ocpp_hub(OPEN)
    cp = await station201(hub, connect)
    retrieve_at = datetime.now(UTC).replace(microsecond=0) + timedelta(hours=1)
    answer = await ocpp(
        hub,
        "update_firmware",
        {**SIGNED, "retrieve_at": retrieve_at.isoformat(), "retries": 3, "retry_interval": 60},
    )
    sent = calls(cp, "UpdateFirmware")[0]
    assert sent["firmware"]["retrieveDateTime"] == retrieve_at.isoformat().replace("+00:00", "Z")
    assert (sent["retries"], sent["retryInterval"]) == (3, 60)
    await statuses(
        hub,
        cp,
        answer["requestId"],
        "DownloadScheduled",
        "Downloading",
        "Downloaded",
        "SignatureVerified",
        "Installing",
        "Installed",
    )


async def test_tc_l_05_csms_secure_firmware_update_invalid_certificate(
    ocpp_hub: HubFactory, connect: Connect
) -> None:
    hub = await ocpp_hub(OPEN)
    cp = await station201(hub, connect)
    cp.handlers["UpdateFirmware"] = lambda payload: {"status": "InvalidCertificate"}
    answer = await ocpp(hub, "update_firmware", SIGNED)
    assert answer["status"] == "InvalidCertificate"
    notification = {"type": "InvalidFirmwareSigningCertificate", "timestamp": NOW}
    assert await cp.call("SecurityEventNotification", notification) == {}
    (event,) = firmware_events(hub)
    assert event.kind == "ocpp_firmware_certificate"
    assert event.severity == "critical"
    assert event.data["request_id"] == answer["requestId"]


async def test_tc_l_06_csms_secure_firmware_update_invalid_signature(
    ocpp_hub: HubFactory, connect: Connect
) -> None:
    hub = await ocpp_hub(OPEN)
    cp = await station201(hub, connect)
    answer = await ocpp(hub, "update_firmware", SIGNED)
    await statuses(hub, cp, answer["requestId"], "Downloading", "Downloaded", "InvalidSignature")
    (event,) = firmware_events(hub)
    assert event.kind == "ocpp_firmware_signature"
    assert event.severity == "critical"
    assert event.charge_point_id == "CP-2"


async def test_tc_l_10_csms_secure_firmware_update_accepted_canceled(
    ocpp_hub: HubFactory, connect: Connect
) -> None:
    hub = await ocpp_hub(OPEN)
    cp = await station201(hub, connect)
    first = await ocpp(hub, "update_firmware", SIGNED)
    await statuses(hub, cp, first["requestId"], "Downloading")
    cp.handlers["UpdateFirmware"] = lambda payload: {"status": "AcceptedCanceled"}
    second = await ocpp(hub, "update_firmware", SIGNED)
    assert second["status"] == "AcceptedCanceled"
    assert second["requestId"] != first["requestId"]
    steps = ("Downloading", "Downloaded", "SignatureVerified", "Installing", "Installed")
    await statuses(hub, cp, second["requestId"], *steps)
    assert await history(hub, second["requestId"]) == list(steps)
    assert await history(hub, first["requestId"]) == ["Downloading"]


# L02 Non-secure firmware update ------------------------------------------------------------


async def test_l02_non_secure_firmware_update(ocpp_hub: HubFactory, connect: Connect) -> None:
    """L02: no signing certificate, no signature; the vendor-neutral charger.update_firmware
    goes the same tracked way."""
    hub = await ocpp_hub(OPEN)
    cp = await station201(hub, connect)
    answer = await ocpp(hub, "update_firmware", {"location": LOCATION})
    firmware = calls(cp, "UpdateFirmware")[0]["firmware"]
    assert "signingCertificate" not in firmware
    assert "signature" not in firmware
    await statuses(hub, cp, answer["requestId"], "Downloading", "Downloaded", "Installed")
    device = device_registry(hub).get_by_identifier(("ocpp", "CP-2"))
    assert device is not None
    target = {"device_id": device.id}
    await hub.services.call("charger", "update_firmware", {"location": LOCATION}, target)
    neutral = calls(cp, "UpdateFirmware")[1]
    assert neutral["requestId"] > answer["requestId"]
    assert str(neutral["requestId"]) in (await ocpp(hub, "get_firmware_updates", {}))["requests"]


async def test_update_firmware_input_is_checked(ocpp_hub: HubFactory, connect: Connect) -> None:
    hub = await ocpp_hub(OPEN)
    cp = await station201(hub, connect)
    bad = [
        {"location": "ftp:/nowhere"},
        {"location": LOCATION, "signature": SIGNATURE},  # a signature without its certificate
        {"location": LOCATION, "signing_certificate": "not a pem", "signature": SIGNATURE},
        {**SIGNED, "signature": "not base64 !"},
        {**SIGNED, "signature": "A" * 801},
        {**SIGNED, "retries": -1},
        {**SIGNED, "install_at": "tomorrow"},
        {"location": "https://fw.example.com/" + "a" * 600},
    ]
    for data in bad:
        with pytest.raises(ServiceValidationError):
            await ocpp(hub, "update_firmware", data)
    assert calls(cp, "UpdateFirmware") == []


# L03 Publish firmware, L04 Unpublish firmware ------------------------------------------------


async def _publish(hub: Hub, cp: RawChargePoint) -> int:
    answer = await ocpp(hub, "publish_firmware", {"location": LOCATION, "checksum": CHECKSUM})
    assert answer["status"] == "Accepted"
    (sent,) = calls(cp, "PublishFirmware")
    assert sent == {"location": LOCATION, "checksum": CHECKSUM, "requestId": answer["requestId"]}
    return int(answer["requestId"])


async def _publish_statuses(
    hub: Hub, cp: RawChargePoint, request_id: int, *steps: str, location: list[str] | None = None
) -> None:
    for status in steps:
        payload: dict[str, Any] = {"status": status, "requestId": request_id}
        if status == "Published":
            payload["location"] = location
        assert await cp.call("PublishFirmwareStatusNotification", payload) == {}
        state = hub.states.get("sensor.bay_2_publish_firmware_status")
        assert state is not None
        assert state.state == status


async def test_tc_l_17_csms_publish_firmware_published(
    ocpp_hub: HubFactory, connect: Connect
) -> None:
    hub = await ocpp_hub(OPEN)
    cp = await station201(hub, connect)
    request_id = await _publish(hub, cp)
    local = ["https://cp-2.local/firmware/acme-2.0.bin"]
    await _publish_statuses(
        hub,
        cp,
        request_id,
        "Downloading",
        "Downloaded",
        "ChecksumVerified",
        "Published",
        location=local,
    )
    state = hub.states.get("sensor.bay_2_publish_firmware_status")
    assert state is not None
    assert state.attributes["locations"] == local
    requests = (await ocpp(hub, "get_firmware_updates", {}))["requests"]
    assert requests[str(request_id)]["published_at"] == local


async def test_tc_l_19_csms_publish_firmware_invalid_checksum(
    ocpp_hub: HubFactory, connect: Connect
) -> None:
    hub = await ocpp_hub(OPEN)
    cp = await station201(hub, connect)
    request_id = await _publish(hub, cp)
    await _publish_statuses(hub, cp, request_id, "Downloading", "Downloaded", "InvalidChecksum")
    (event,) = firmware_events(hub)
    assert event.data["status"] == "InvalidChecksum"


async def test_tc_l_20_csms_publish_firmware_publish_failed(
    ocpp_hub: HubFactory, connect: Connect
) -> None:
    hub = await ocpp_hub(OPEN)
    cp = await station201(hub, connect)
    request_id = await _publish(hub, cp)
    steps = ("Downloading", "Downloaded", "ChecksumVerified", "PublishFailed")
    await _publish_statuses(hub, cp, request_id, *steps)
    assert await history(hub, request_id) == list(steps)


async def test_tc_l_21_csms_unpublish_firmware_unpublished(
    ocpp_hub: HubFactory, connect: Connect
) -> None:
    hub = await ocpp_hub(OPEN)
    cp = await station201(hub, connect)
    cp.handlers["UnpublishFirmware"] = lambda payload: {"status": "Unpublished"}
    answer = await ocpp(hub, "unpublish_firmware", {"checksum": CHECKSUM})
    assert answer["status"] == "Unpublished"
    assert calls(cp, "UnpublishFirmware") == [{"checksum": CHECKSUM}]


async def test_tc_l_22_csms_unpublish_firmware_no_firmware(
    ocpp_hub: HubFactory, connect: Connect
) -> None:
    hub = await ocpp_hub(OPEN)
    cp = await station201(hub, connect)
    cp.handlers["UnpublishFirmware"] = lambda payload: {"status": "NoFirmware"}
    answer = await ocpp(hub, "unpublish_firmware", {"checksum": CHECKSUM.upper()})
    assert answer["status"] == "NoFirmware"
    assert calls(cp, "UnpublishFirmware") == [{"checksum": CHECKSUM}]
    for checksum in ("abc", "z" * 32, CHECKSUM + "0"):
        with pytest.raises(ServiceValidationError):
            await ocpp(hub, "unpublish_firmware", {"checksum": checksum})


async def test_published_without_location_is_refused(
    ocpp_hub: HubFactory, connect: Connect
) -> None:
    from tests.integrations.ocpp.conftest import ChargerCallError

    hub = await ocpp_hub(OPEN)
    cp = await station201(hub, connect)
    with pytest.raises(ChargerCallError) as info:
        await cp.call("PublishFirmwareStatusNotification", {"status": "Published", "requestId": 1})
    assert info.value.code == "OccurrenceConstraintViolation"


# OCPP 1.6 ------------------------------------------------------------------------------------


async def station16(hub: Hub, connect: Connect) -> RawChargePoint:
    cp = await connect(ws_url(hub, "CP-2"))
    await boot16(cp)
    return cp


async def test_tc_080_csms_secure_firmware_update_16(
    ocpp_hub: HubFactory, connect: Connect
) -> None:
    """1.6 security whitepaper: SignedUpdateFirmware and SignedFirmwareStatusNotification."""
    hub = await ocpp_hub(OPEN)
    cp = await station16(hub, connect)
    answer = await ocpp(hub, "update_firmware", {**SIGNED, "retries": 2})
    assert answer["status"] == "Accepted"
    (sent,) = calls(cp, "SignedUpdateFirmware")
    assert sent["requestId"] == answer["requestId"]
    assert sent["retries"] == 2
    assert sent["firmware"]["signingCertificate"] == CERTIFICATE
    assert sent["firmware"]["signature"] == SIGNATURE
    assert sent["firmware"]["location"] == LOCATION
    assert calls(cp, "UpdateFirmware") == []
    steps = ("Downloading", "Downloaded", "SignatureVerified", "Installing", "Installed")
    await statuses(hub, cp, answer["requestId"], *steps, action="SignedFirmwareStatusNotification")
    assert await history(hub, answer["requestId"]) == list(steps)


async def test_tc_081_csms_secure_firmware_update_invalid_signature_16(
    ocpp_hub: HubFactory, connect: Connect
) -> None:
    hub = await ocpp_hub(OPEN)
    cp = await station16(hub, connect)
    answer = await ocpp(hub, "update_firmware", SIGNED)
    await statuses(
        hub,
        cp,
        answer["requestId"],
        "Downloading",
        "Downloaded",
        "InvalidSignature",
        action="SignedFirmwareStatusNotification",
    )
    (event,) = firmware_events(hub)
    assert event.kind == "ocpp_firmware_signature"


async def test_tc_044_1_csms_firmware_update_16(ocpp_hub: HubFactory, connect: Connect) -> None:
    """1.6 UpdateFirmware, unsigned: no requestId, the statuses in FirmwareStatusNotification."""
    hub = await ocpp_hub(OPEN)
    cp = await station16(hub, connect)
    cp.handlers["UpdateFirmware"] = lambda payload: {}
    await ocpp(hub, "update_firmware", {"location": LOCATION, "retries": 1, "retry_interval": 30})
    (sent,) = calls(cp, "UpdateFirmware")
    assert sent["location"] == LOCATION
    assert (sent["retries"], sent["retryInterval"]) == (1, 30)
    assert sent["retrieveDate"].endswith("Z")
    await statuses(hub, cp, None, "Downloading", "Downloaded", "Installing", "Installed")
    with pytest.raises(ServiceValidationError):
        await ocpp(hub, "update_firmware", {"location": LOCATION, "install_at": NOW})
    with pytest.raises(ServiceValidationError):
        await ocpp(hub, "publish_firmware", {"location": LOCATION, "checksum": CHECKSUM})


async def test_simulator_publishes_and_unpublishes_firmware(ocpp_hub: HubFactory) -> None:
    """The simulated 2.0.1 station, as a local controller, publishes a firmware and tells
    where; it unpublishes it once, then has none."""
    import asyncio

    from integrations.ocpp.simulator import SimulatedChargePoint

    hub = await ocpp_hub(OPEN)
    published = asyncio.Event()
    hub.bus.listen(
        "ocpp_publish_firmware_status",
        lambda event: published.set() if event.data["status"] == "Published" else None,
    )
    base = ws_url(hub, "CP-2").rsplit("/", 1)[0]
    async with SimulatedChargePoint("CP-2", base, version="2.0.1", speed=50) as sim:
        await asyncio.wait_for(sim.booted.wait(), 10)
        answer = await ocpp(hub, "publish_firmware", {"location": LOCATION, "checksum": CHECKSUM})
        assert answer["status"] == "Accepted"
        await asyncio.wait_for(published.wait(), 10)
        state = hub.states.get("sensor.bay_2_publish_firmware_status")
        assert state is not None
        assert state.attributes["locations"] == [f"http://cp-2.local/firmware/{CHECKSUM}.bin"]
        assert await history(hub, answer["requestId"]) == [
            "Downloading",
            "Downloaded",
            "ChecksumVerified",
            "Published",
        ]
        unpublish = {"checksum": CHECKSUM}
        assert (await ocpp(hub, "unpublish_firmware", unpublish))["status"] == "Unpublished"
        assert (await ocpp(hub, "unpublish_firmware", unpublish))["status"] == "NoFirmware"


async def test_simulator_takes_a_signed_update_16(ocpp_hub: HubFactory) -> None:
    import asyncio

    from integrations.ocpp.simulator import SimulatedChargePoint

    hub = await ocpp_hub(OPEN)
    installed = asyncio.Event()
    hub.bus.listen(
        "ocpp_firmware_status",
        lambda event: installed.set() if event.data["status"] == "Installed" else None,
    )
    base = ws_url(hub, "CP-2").rsplit("/", 1)[0]
    async with SimulatedChargePoint("CP-2", base, version="1.6", speed=50) as sim:
        await asyncio.wait_for(sim.booted.wait(), 10)
        answer = await ocpp(hub, "update_firmware", SIGNED)
        assert answer["status"] == "Accepted"
        await asyncio.wait_for(installed.wait(), 10)
        steps = await history(hub, answer["requestId"])
        assert steps == [
            "Downloading",
            "Downloaded",
            "SignatureVerified",
            "Installing",
            "Installed",
        ]


@pytest.mark.parametrize(
    ("update", "verified"),
    [(SIGNED, ["SignatureVerified"]), ({"location": LOCATION}, [])],
)
async def test_simulator_verifies_a_signed_update_201(
    ocpp_hub: HubFactory, update: dict[str, Any], verified: list[str]
) -> None:
    """L01.FR.04: the simulated 2.0.1 station reports SignatureVerified between Downloaded
    and Installing for a signed firmware, not for an unsigned one."""
    import asyncio

    from integrations.ocpp.simulator import SimulatedChargePoint

    hub = await ocpp_hub(OPEN)
    installed = asyncio.Event()
    hub.bus.listen(
        "ocpp_firmware_status",
        lambda event: installed.set() if event.data["status"] == "Installed" else None,
    )
    base = ws_url(hub, "CP-2").rsplit("/", 1)[0]
    async with SimulatedChargePoint("CP-2", base, version="2.0.1", speed=50) as sim:
        await asyncio.wait_for(sim.booted.wait(), 10)
        answer = await ocpp(hub, "update_firmware", update)
        assert answer["status"] == "Accepted"
        await asyncio.wait_for(installed.wait(), 10)
        steps = await history(hub, answer["requestId"])
        assert steps == ["Downloading", "Downloaded", *verified, "Installing", "Installed"]


async def test_tc_044_2_csms_firmware_update_download_failed_16(
    ocpp_hub: HubFactory, connect: Connect
) -> None:
    """TC_044_2: UpdateFirmware (retries 0), then Downloading and DownloadFailed, each
    answered; the failure is what the station's firmware status shows."""
    hub = await ocpp_hub(OPEN)
    cp = await station16(hub, connect)
    cp.handlers["UpdateFirmware"] = lambda payload: {}
    location = "https://fw.example.com/does_not_exist_acme-2.0.bin"
    await ocpp(hub, "update_firmware", {"location": location, "retries": 0})
    (sent,) = calls(cp, "UpdateFirmware")
    assert (sent["location"], sent["retries"]) == (location, 0)
    await statuses(hub, cp, None, "Downloading", "DownloadFailed")


async def test_tc_044_3_csms_firmware_update_installation_failed_16(
    ocpp_hub: HubFactory, connect: Connect
) -> None:
    hub = await ocpp_hub(OPEN)
    cp = await station16(hub, connect)
    cp.handlers["UpdateFirmware"] = lambda payload: {}
    await ocpp(hub, "update_firmware", {"location": LOCATION})
    assert calls(cp, "UpdateFirmware")[0]["location"] == LOCATION
    await statuses(hub, cp, None, "Downloading", "Downloaded")
    status = {"connectorId": 1, "errorCode": "NoError", "status": "Unavailable"}
    assert await cp.call("StatusNotification", status) == {}
    await statuses(hub, cp, None, "Installing")
    assert (await boot16(cp))["status"] == "Accepted"
    await statuses(hub, cp, None, "InstallationFailed")


async def test_tc_l_04_csms_secure_firmware_update_revoked_certificate(
    ocpp_hub: HubFactory, connect: Connect
) -> None:
    hub = await ocpp_hub(OPEN)
    cp = await station201(hub, connect)
    cp.handlers["UpdateFirmware"] = lambda payload: {"status": "RevokedCertificate"}
    answer = await ocpp(hub, "update_firmware", SIGNED)
    assert answer["status"] == "RevokedCertificate"
    assert calls(cp, "UpdateFirmware")[0]["firmware"]["signingCertificate"] == CERTIFICATE
    (event,) = firmware_events(hub)
    assert event.kind == "ocpp_firmware_certificate"
    assert event.data["status"] == "RevokedCertificate"


async def test_tc_l_07_csms_secure_firmware_update_download_failed(
    ocpp_hub: HubFactory, connect: Connect
) -> None:
    hub = await ocpp_hub(OPEN)
    cp = await station201(hub, connect)
    answer = await ocpp(hub, "update_firmware", SIGNED)
    await statuses(hub, cp, answer["requestId"], "Downloading", "DownloadFailed")
    assert await history(hub, answer["requestId"]) == ["Downloading", "DownloadFailed"]
    assert firmware_events(hub) == []


async def test_tc_l_08_csms_secure_firmware_update_install_verification_failed(
    ocpp_hub: HubFactory, connect: Connect
) -> None:
    hub = await ocpp_hub(OPEN)
    cp = await station201(hub, connect)
    answer = await ocpp(hub, "update_firmware", SIGNED)
    steps = ("Downloading", "Downloaded", "SignatureVerified", "Installing")
    await statuses(hub, cp, answer["requestId"], *steps, "InstallVerificationFailed")
    (event,) = firmware_events(hub)
    assert event.kind == "ocpp_firmware_verification"
    assert event.severity == "warning"


async def _reboot_after_install(cp: RawChargePoint) -> None:
    boot = await cp.call(
        "BootNotification",
        {"chargingStation": {"model": "W", "vendorName": "V"}, "reason": "FirmwareUpdate"},
    )
    assert boot["status"] == "Accepted"
    await cp.call(
        "StatusNotification",
        {"timestamp": NOW, "connectorStatus": "Available", "evseId": 1, "connectorId": 1},
    )


async def test_tc_l_09_csms_secure_firmware_update_installation_failed(
    ocpp_hub: HubFactory, connect: Connect
) -> None:
    hub = await ocpp_hub(OPEN)
    cp = await station201(hub, connect)
    answer = await ocpp(hub, "update_firmware", SIGNED)
    steps = ("Downloading", "Downloaded", "SignatureVerified", "Installing", "InstallRebooting")
    await statuses(hub, cp, answer["requestId"], *steps)
    await _reboot_after_install(cp)
    await statuses(hub, cp, answer["requestId"], "InstallationFailed")
    assert (await history(hub, answer["requestId"]))[-1] == "InstallationFailed"


async def test_tc_l_11_csms_secure_firmware_update_unable_to_cancel(
    ocpp_hub: HubFactory, connect: Connect
) -> None:
    hub = await ocpp_hub(OPEN)
    cp = await station201(hub, connect)
    first = await ocpp(hub, "update_firmware", SIGNED)
    await statuses(hub, cp, first["requestId"], "Downloading")
    cp.handlers["UpdateFirmware"] = lambda payload: {"status": "Rejected"}
    second = await ocpp(hub, "update_firmware", SIGNED)
    assert second["status"] == "Rejected"
    steps = ("Downloaded", "SignatureVerified", "Installing", "InstallRebooting")
    await statuses(hub, cp, first["requestId"], *steps)
    await _reboot_after_install(cp)
    await statuses(hub, cp, first["requestId"], "Installed")
    assert await history(hub, first["requestId"]) == ["Downloading", *steps, "Installed"]
    requests = (await ocpp(hub, "get_firmware_updates", {}))["requests"]
    assert requests[str(second["requestId"])]["answer"] == "Rejected"


async def test_tc_l_13_csms_secure_firmware_update_ongoing_transaction(
    ocpp_hub: HubFactory, connect: Connect
) -> None:
    hub = await ocpp_hub(OPEN)
    cp = await station201(hub, connect)

    async def transaction(event_type: str, seq_no: int, trigger: str) -> None:
        await cp.call(
            "TransactionEvent",
            {
                "eventType": event_type,
                "timestamp": NOW,
                "triggerReason": trigger,
                "seqNo": seq_no,
                "transactionInfo": {"transactionId": "tx-l13", "chargingState": "Charging"},
                "evse": {"id": 1, "connectorId": 1},
                "idToken": {"idToken": "TAG-OK", "type": "ISO14443"},
            },
        )

    await transaction("Started", 0, "Authorized")
    answer = await ocpp(hub, "update_firmware", SIGNED)
    assert "signingCertificate" in calls(cp, "UpdateFirmware")[0]["firmware"]
    await statuses(hub, cp, answer["requestId"], "DownloadScheduled")
    await cp.call(
        "StatusNotification",
        {"timestamp": NOW, "connectorStatus": "Unavailable", "evseId": 1, "connectorId": 1},
    )
    await transaction("Ended", 1, "StopAuthorized")
    steps = ("Downloading", "Downloaded", "SignatureVerified", "Installing", "InstallRebooting")
    await statuses(hub, cp, answer["requestId"], *steps)
    await _reboot_after_install(cp)
    await statuses(hub, cp, answer["requestId"], "Installed")
    assert await history(hub, answer["requestId"]) == [
        "DownloadScheduled",
        *steps,
        "Installed",
    ]


async def test_tc_l_23_csms_unpublish_firmware_download_ongoing(
    ocpp_hub: HubFactory, connect: Connect
) -> None:
    hub = await ocpp_hub(OPEN)
    cp = await station201(hub, connect)
    cp.handlers["UnpublishFirmware"] = lambda payload: {"status": "DownloadOngoing"}
    answer = await ocpp(hub, "unpublish_firmware", {"checksum": CHECKSUM})
    assert answer["status"] == "DownloadOngoing"
    assert calls(cp, "UnpublishFirmware") == [{"checksum": CHECKSUM}]


async def test_tc_l_24_csms_publish_firmware_download_failed(
    ocpp_hub: HubFactory, connect: Connect
) -> None:
    hub = await ocpp_hub(OPEN)
    cp = await station201(hub, connect)
    request_id = await _publish(hub, cp)
    await _publish_statuses(hub, cp, request_id, "Downloading", "DownloadFailed")
    assert await history(hub, request_id) == ["Downloading", "DownloadFailed"]
