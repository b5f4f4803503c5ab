"""The hub's clock: real time in production, a clock tests advance by hand.

Every timer of the hub goes through it (automations' ``for:`` deadlines, delays and time
triggers, delayed store writes, restore-state saves, notification retries, plugin retries,
OCPP's liveness sweep, call and probe timeouts and session ledger), so tests run them without
sleeping. Durations are measured with ``monotonic``, timestamps taken with ``time``.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, Final

from hub.core import Hub, HubKey

DATA_CLOCK: Final[HubKey[Clock]] = HubKey("clock")


class Timer:
    """A scheduled callback that can be cancelled."""

    __slots__ = ("_cancel", "cancelled", "when")

    def __init__(self, cancel: Callable[[], None], when: float) -> None:
        self._cancel = cancel
        self.cancelled = False
        # When the callback is due, in the clock's time (seconds since the epoch).
        self.when = when

    def cancel(self) -> None:
        """Do not run the callback."""
        if not self.cancelled:
            self.cancelled = True
            self._cancel()


class Clock:
    """Real time: wall clock for timestamps, the loop's timers for waiting."""

    def __init__(self, hub: Hub) -> None:
        self.hub = hub

    def time(self) -> float:
        """Seconds since the epoch."""
        return time.time()

    def now(self) -> datetime:
        """The current time, timezone-aware (UTC)."""
        return datetime.fromtimestamp(self.time(), UTC)

    def monotonic(self) -> float:
        """Seconds on a clock that never jumps, for measuring how long something took or
        has been silent (the wall clock of ``time`` may be stepped by NTP)."""
        return time.monotonic()

    def call_later(self, delay: float, callback: Callable[[], Any]) -> Timer:
        """Run callback after delay seconds."""
        delay = max(0.0, delay)
        handle = self.hub.loop.call_later(delay, callback)
        return Timer(handle.cancel, self.time() + delay)

    async def sleep(self, delay: float) -> None:
        """Wait delay seconds."""
        future: asyncio.Future[None] = self.hub.loop.create_future()

        def wake() -> None:
            if not future.done():
                future.set_result(None)

        timer = self.call_later(delay, wake)
        task = asyncio.current_task()
        if task is not None:
            self.hub.park(task)
        try:
            await future
        finally:
            timer.cancel()
            if task is not None:
                self.hub.unpark(task)


class ManualClock(Clock):
    """A clock that moves only when told to: for tests."""

    def __init__(self, hub: Hub, start: float = 1_800_000_000.0) -> None:
        super().__init__(hub)
        self._now = start
        self._queue: list[tuple[float, int, Callable[[], Any], Timer]] = []
        self._seq = itertools.count()

    def time(self) -> float:
        return self._now

    def monotonic(self) -> float:
        return self._now

    def call_later(self, delay: float, callback: Callable[[], Any]) -> Timer:
        when = self._now + max(0.0, delay)
        timer = Timer(_nothing, when)
        heapq.heappush(self._queue, (when, next(self._seq), callback, timer))
        return timer

    async def advance(self, seconds: float, *, stall: bool = False) -> None:
        """Move time forward, running what falls due in order, and let the loop settle.

        With stall, time jumps to the end first, as a loop that was stalled sees it: what
        fell due meanwhile runs late, in order, with the clock already at the end.
        """
        target = self._now + seconds
        if stall:
            self._now = target
        while self._queue and self._queue[0][0] <= target:
            due, _, callback, timer = heapq.heappop(self._queue)
            self._now = max(self._now, due)
            if not timer.cancelled:
                timer.cancelled = True
                callback()
            await self.hub.block_till_done()
        self._now = target
        await self.hub.block_till_done()


def _nothing() -> None:
    """Cancel nothing: a cancelled manual timer stays queued, marked, and is skipped."""


def clock(hub: Hub) -> Clock:
    """Return the hub's clock (real unless a test installed a ManualClock)."""
    found = hub.data.get(DATA_CLOCK)
    if found is None:
        found = hub.data[DATA_CLOCK] = Clock(hub)
    return found


def use_manual_clock(hub: Hub, start: float = 1_800_000_000.0) -> ManualClock:
    """Install a ManualClock on a hub (tests)."""
    manual = ManualClock(hub, start)
    hub.data[DATA_CLOCK] = manual
    return manual
