"""The session ledger: history gets every transaction the transaction store holds.

The transaction store is written and fsync'd before a charger hears Accepted; the recorder
commits what it is told about a second later, so a crash can leave it without sessions the
store has, or with sessions open that the store closed. The ledger keeps a mark in the store:
every transaction changed before it is known to be in history too. At each start it
re-announces (``record_session``, history only) what changed since the mark; while the hub
runs it moves the mark forward after history confirmed it has written everything so far.

It wakes on the hub clock; the mark itself is in the store's time (``time.time()`` when a row
was written), which is what it is compared with. While no row changed after the mark (an idle
hub) it sleeps until one does: moving the mark would re-announce nothing less at the next
start, and cost a commit every round.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from typing import TYPE_CHECKING, Final

from hub.charger import history_flush, record_session
from hub.clock import clock
from integrations.ocpp.transactions import Transaction, TransactionStoreError

if TYPE_CHECKING:
    from integrations.ocpp.system import CentralSystem

_LOGGER = logging.getLogger(__name__)

MARK: Final = "history"
INTERVAL: Final = 10.0
# A store write is announced on the bus within this long (one loop turn, normally):
# changes younger than this are left for the next round.
MARGIN: Final = 5.0
PAGE: Final = 1000


class SessionLedger:
    """Re-announces stored sessions history may lack, and keeps its mark moving."""

    def __init__(self, system: CentralSystem) -> None:
        self.system = system
        self.store = system.transactions
        self.replayed = 0
        # The mark this run last wrote (None: none yet).
        self.mark: float | None = None
        # Set once the start's catch-up is done (history holds what the store held then).
        self.caught_up = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        """Catch history up, then keep the mark moving (once every integration listens)."""
        if self._task is None:
            self._task = self.system.hub.create_background_task(self._run(), "ocpp ledger")

    async def stop(self) -> None:
        """Stop moving the mark."""
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _run(self) -> None:
        try:
            await self.catch_up()
            self.caught_up.set()
            hub_clock = clock(self.system.hub)
            while True:
                if self.idle():
                    await self.store.next_change()
                    continue
                await hub_clock.sleep(INTERVAL)
                await self.advance()
        except TransactionStoreError as err:
            _LOGGER.warning("Session ledger stopped: %s", err)

    async def catch_up(self) -> int:
        """Re-announce every transaction changed since the mark; return how many."""
        since = await self.store.ledger_mark(MARK)
        cutoff = time.time()
        count = 0
        after = (since, 0)
        while True:
            page = await self.store.changed_since(after[0], after[1], PAGE)
            for updated_at, transaction in page:
                self._announce(transaction)
                after = (updated_at, transaction.id)
            count += len(page)
            if len(page) < PAGE:
                break
            await asyncio.sleep(0)
        self.replayed += count
        if count:
            _LOGGER.info("Session ledger: %d transaction(s) re-announced to history", count)
        if await history_flush(self.system.hub):
            await self._set_mark(cutoff - MARGIN)
        return count

    def idle(self) -> bool:
        """Whether the mark stands: no row changed after it (nor did the clock step back
        past it; then the mark is moved back, as it always was)."""
        return (
            self.mark is not None and self.store.changed_until < self.mark <= time.time() - MARGIN
        )

    async def advance(self) -> None:
        """Move the mark to a moment whose sessions history has written (unless it stands)."""
        if self.idle():
            return
        mark = time.time() - MARGIN
        if await history_flush(self.system.hub):
            await self._set_mark(mark)

    async def _set_mark(self, mark: float) -> None:
        await self.store.set_ledger_mark(MARK, mark)
        self.mark = mark

    def _announce(self, transaction: Transaction) -> None:
        station = self.system.stations.get(transaction.charge_point_id)
        number = (
            transaction.evse_id if transaction.evse_id is not None else transaction.connector_id
        )
        if station is None or not number or number > self.system.limits.max_ports:
            return
        port = station.port(number)
        record_session(
            self.system.hub,
            station_id=station.device_id,
            device_id=port.device_id,
            data={
                "charge_point_id": station.cp_id,
                "port": number,
                "transaction_id": transaction.ocpp_id,
                "id_tag": transaction.id_tag,
                "started_at": transaction.started_at,
                "stopped_at": transaction.stopped_at,
                "energy_wh": transaction.energy_wh,
                "stop_reason": transaction.stop_reason,
            },
        )
