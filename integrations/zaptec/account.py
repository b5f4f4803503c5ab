"""One Zaptec account: its chargers, polled on the hub clock, with backoff when the cloud is away.

Every ``scan_interval`` the account asks the cloud for each charger's state, one request
after the other (the cloud's rate limit is per account). A timeout, a 5xx or a 429 stops
the round and backs off: twice the interval per failure in a row, up to MAX_BACKOFF, and
never sooner than the cloud's Retry-After. After ``unknown_after`` failed rounds in a row
every charger's state is unknown (an ``unknown`` charger event: no outage in uptime) until
the cloud answers again.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Final

from hub.clock import clock
from hub.plugins import SetupContext, health_reporter
from integrations.zaptec.api import (
    AuthenticationError,
    BadResponseError,
    CloudUnreachableError,
    ZaptecApi,
    ZaptecApiError,
    ZaptecError,
)
from integrations.zaptec.charger import DOMAIN, ZaptecCharger

_LOGGER = logging.getLogger(__name__)

MAX_BACKOFF: Final = 900.0
# A refused login is not retried sooner than this (a wrong password locks accounts).
AUTH_BACKOFF: Final = 900.0


class Account:
    """The chargers of one account and the polling of their state."""

    def __init__(
        self, ctx: SetupContext, api: ZaptecApi, *, interval: float, unknown_after: int
    ) -> None:
        self.ctx = ctx
        self.hub = ctx.hub
        self.api = api
        self.interval = interval
        self.unknown_after = unknown_after
        self.chargers: dict[str, ZaptecCharger] = {}
        self.failures = 0
        self.retry_at = 0.0
        self.last_error: str | None = None
        self.health = health_reporter(ctx.hub, DOMAIN, "cloud")
        self._task: asyncio.Task[None] | None = None
        # Counters (the API and tests read them).
        self.rounds = 0
        self.late = 0
        self.skipped = 0

    def start(self) -> None:
        """Poll now and every interval."""

        def begin() -> None:
            self.tick()
            self.ctx.track_interval(self.interval, self.tick)

        self.ctx.call_later(0, begin)

    def tick(self) -> None:
        """One interval passed: poll, unless a round still runs or the account backs off."""
        if self._task is not None and not self._task.done():
            self.late += 1
            return
        if clock(self.hub).time() < self.retry_at:
            self.skipped += 1
            return
        self._task = self.ctx.create_task(self.poll(), "poll")
        # Short work bounded by the timeout: block_till_done waits for it (tests; the hub's
        # start waits for the first answer, at most one timeout, so states are known).
        self.hub.track_future(self._task)

    async def poll(self) -> None:
        """One round: every charger's state, stopped by the first cloud failure."""
        self.rounds += 1
        for charger in list(self.chargers.values()):
            try:
                await self._poll_one(charger)
            except (CloudUnreachableError, AuthenticationError, BadResponseError) as err:
                self._failed(err)
                return
            except ZaptecApiError as err:
                # This charger is refused (gone from the account?): the others go on.
                charger.set_unknown(str(err))
                _LOGGER.warning("Zaptec %s: %s", charger.name, err)
        self._answered()

    async def poll_charger(self, charger: ZaptecCharger) -> None:
        """Poll one charger now (trigger_status); the cloud's error when it fails."""
        now = clock(self.hub).time()
        if now < self.retry_at:
            raise CloudUnreachableError(
                f"the Zaptec cloud is backed off for {self.retry_at - now:.0f} s more"
                f" ({self.last_error})"
            )
        try:
            await self._poll_one(charger)
        except (CloudUnreachableError, AuthenticationError, BadResponseError) as err:
            self._failed(err)
            raise

    async def _poll_one(self, charger: ZaptecCharger) -> None:
        observations = await self.api.state(charger.key)
        charger.apply(observations)

    def _answered(self) -> None:
        if self.failures:
            _LOGGER.info("The Zaptec cloud answers again")
        self.failures = 0
        self.retry_at = 0.0
        self.last_error = None
        if self.health.health != "ok":
            self.health.ok()

    def _failed(self, err: ZaptecError) -> None:
        self.failures += 1
        reason = str(err)
        self.last_error = reason
        backoff = min(self.interval * 2 ** (self.failures - 1), MAX_BACKOFF)
        if isinstance(err, AuthenticationError):
            backoff = max(backoff, AUTH_BACKOFF)
        retry_after = getattr(err, "retry_after", None)
        if retry_after is not None:
            backoff = max(backoff, retry_after)
        # Ticks come every interval: the first at or after the backoff polls again.
        self.retry_at = clock(self.hub).time() + backoff - min(self.interval / 2, backoff)
        if self.failures in (1, self.unknown_after):
            _LOGGER.warning("Zaptec cloud: %s (next try in %.0f s)", reason, backoff)
        if self.failures >= self.unknown_after:
            for charger in self.chargers.values():
                charger.set_unknown(f"the Zaptec cloud cannot be reached: {reason}")
            self.health.failed(reason)
        else:
            self.health.degraded(reason)

    def as_dict(self) -> dict[str, object]:
        """What the API shows of the account (never its credentials)."""
        now = clock(self.hub).time()
        return {
            "base_url": self.api.base_url,
            "reachable": self.failures == 0,
            "failures": self.failures,
            "last_error": self.last_error,
            "retry_in": max(0.0, self.retry_at - now) if self.retry_at else 0.0,
            "rounds": self.rounds,
            "chargers": [charger.as_dict() for charger in self.chargers.values()],
        }
