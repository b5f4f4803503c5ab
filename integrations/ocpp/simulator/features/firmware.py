"""The simulated charger's side of the hub's firmware feature (features/firmware.py).

Mixins of the per-version links (v16.V16Link, v201.V201Link): their ``@on_call`` methods
answer the central system's calls; ``self.sim`` is the SimulatedChargePoint.

1.6 (security whitepaper): SignedUpdateFirmware runs the charger's update as UpdateFirmware
does. 2.0.1: as a local controller the charger publishes a firmware (PublishFirmware:
Downloading, Downloaded, ChecksumVerified, Published with its local URI) and unpublishes it.
UpdateFirmware itself is the links' own (v16.py, v201.py).
"""

from __future__ import annotations

import re
import weakref
from collections.abc import Callable, Coroutine
from typing import TYPE_CHECKING, Any, Final

from ocpp.v16 import call_result as v16_result  # type: ignore[import-untyped, unused-ignore]
from ocpp.v201 import call as v201_call  # type: ignore[import-untyped, unused-ignore]
from ocpp.v201 import call_result as v201_result  # type: ignore[import-untyped, unused-ignore]

from integrations.ocpp.simulator.link import on_call

if TYPE_CHECKING:
    from integrations.ocpp.simulator.charger import SimulatedChargePoint

_MD5: Final = re.compile(r"^[0-9a-fA-F]{32}$")
STEPS: Final = ("Downloading", "Downloaded", "ChecksumVerified")

# Each simulated charger's published firmware: checksum -> local URI.
_PUBLISHED: weakref.WeakKeyDictionary[SimulatedChargePoint, dict[str, str]] = (
    weakref.WeakKeyDictionary()
)


class Firmware16:
    """OCPP 1.6."""

    sim: SimulatedChargePoint

    @on_call("SignedUpdateFirmware")
    def on_signed_update_firmware(
        self, request_id: int, firmware: dict[str, Any], **kwargs: Any
    ) -> Any:
        if "BEGIN CERTIFICATE" not in str(firmware.get("signing_certificate", "")):
            return v16_result.SignedUpdateFirmware(status="InvalidCertificate")
        self.sim.update_firmware(request_id, firmware.get("retrieve_date_time"), signed=True)
        return v16_result.SignedUpdateFirmware(status="Accepted")


class Firmware201:
    """OCPP 2.0.1."""

    sim: SimulatedChargePoint
    call: Callable[..., Coroutine[Any, Any, Any]]  # the link's (ocpp ChargePoint.call)

    @on_call("PublishFirmware")
    def on_publish_firmware(
        self, location: str, checksum: str, request_id: int, **kwargs: Any
    ) -> Any:
        if not _MD5.match(checksum):
            return v201_result.PublishFirmware(status="Rejected")
        uri = f"http://{self.sim.id.lower()}.local/firmware/{checksum.lower()}.bin"
        self.sim.later(lambda: self._publish(request_id, checksum.lower(), uri))
        return v201_result.PublishFirmware(status="Accepted")

    async def _publish(self, request_id: int, checksum: str, uri: str) -> None:
        for status in STEPS:
            await self.call(
                v201_call.PublishFirmwareStatusNotification(status=status, request_id=request_id),
                suppress=False,
            )
        _PUBLISHED.setdefault(self.sim, {})[checksum] = uri
        await self.call(
            v201_call.PublishFirmwareStatusNotification(
                status="Published", location=[uri], request_id=request_id
            ),
            suppress=False,
        )

    @on_call("UnpublishFirmware")
    def on_unpublish_firmware(self, checksum: str, **kwargs: Any) -> Any:
        published = _PUBLISHED.setdefault(self.sim, {})
        if published.pop(checksum.lower(), None) is None:
            return v201_result.UnpublishFirmware(status="NoFirmware")
        return v201_result.UnpublishFirmware(status="Unpublished")
