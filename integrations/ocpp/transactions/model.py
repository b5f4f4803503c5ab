"""What the OCPP transaction store keeps: transactions, 2.0.1 events, limits, errors."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Final

from hub.exceptions import StorageError

DB_FILENAME: Final = "ocpp_transactions.db"

OCPP_16: Final = "1.6"
OCPP_201: Final = "2.0.1"

EVENT_STARTED: Final = "Started"
EVENT_UPDATED: Final = "Updated"
EVENT_ENDED: Final = "Ended"
EVENT_TYPES: Final = frozenset({EVENT_STARTED, EVENT_UPDATED, EVENT_ENDED})

# OCPP 1.6 transactionId is a signed 32-bit integer; ids handed out are positive.
MAX_TRANSACTION_ID: Final = 2**31 - 1
DEFAULT_MAX_BATCH: Final = 1024
DEFAULT_LIMIT: Final = 1000


class TransactionStoreError(StorageError):
    """The transaction store could not carry out a request."""


class TransactionStoreClosedError(TransactionStoreError):
    """The transaction store is not open (not yet, or no longer)."""


@dataclass(frozen=True, slots=True)
class Transaction:
    """A charging transaction as stored; replayed tells a resent message found it."""

    id: int
    ocpp_id: str
    charge_point_id: str
    connector_id: int | None
    evse_id: int | None
    id_tag: str | None
    started_at: float
    stopped_at: float | None
    meter_start_wh: float | None
    meter_stop_wh: float | None
    energy_wh: float | None
    stop_reason: str | None
    ocpp_version: str
    remote_id: int | None = None
    stop_id_tag: str | None = None
    replayed: bool = False

    @property
    def is_open(self) -> bool:
        """Tell whether the transaction has not ended yet."""
        return self.stopped_at is None


@dataclass(frozen=True, slots=True)
class TransactionEvent:
    """One OCPP 2.0.1 TransactionEvent as received."""

    charge_point_id: str
    transaction_id: str
    seq_no: int
    event_type: str
    timestamp: float
    offline: bool
    meter_wh: float | None
    data: dict[str, Any]
    received_at: float


# The columns both backends read a transaction and an event from, in this order.
TX_COLUMNS: Final = (
    "id, charger_tx_id, charge_point_id, connector_id, evse_id, id_tag, started_at, stopped_at,"
    " meter_start_wh, meter_stop_wh, energy_wh, stop_reason, ocpp_version, remote_id, stop_id_tag"
)
EVENT_COLUMNS: Final = "seq_no, event_type, timestamp, offline, meter_wh, data, received_at"


def row_to_transaction(row: tuple[Any, ...], replayed: bool = False) -> Transaction:
    """Build a Transaction from a row of TX_COLUMNS."""
    (
        row_id,
        charger_tx_id,
        charge_point_id,
        connector_id,
        evse_id,
        id_tag,
        started_at,
        stopped_at,
        meter_start_wh,
        meter_stop_wh,
        energy_wh,
        stop_reason,
        ocpp_version,
        remote_id,
        stop_id_tag,
    ) = row
    return Transaction(
        id=row_id,
        ocpp_id=charger_tx_id if charger_tx_id is not None else str(row_id),
        charge_point_id=charge_point_id,
        connector_id=connector_id,
        evse_id=evse_id,
        id_tag=id_tag,
        started_at=started_at,
        stopped_at=stopped_at,
        meter_start_wh=meter_start_wh,
        meter_stop_wh=meter_stop_wh,
        energy_wh=energy_wh,
        stop_reason=stop_reason,
        ocpp_version=ocpp_version,
        remote_id=remote_id,
        stop_id_tag=stop_id_tag,
        replayed=replayed,
    )
