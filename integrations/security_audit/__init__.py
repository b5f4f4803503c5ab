"""The hub's own security audit: ``evhub audit``, a dashboard page, and a daily run as alerts.

The findings are a pure function of the config dir (``checks.run_audit``): the command reads
a stopped or running hub's dir alike; the integration runs the same checks at start and
every day on the hub clock, raises an alert (``alert.raise``) for each high finding and
resolves it (``alert.resolve``) once a later run no longer finds it.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
import time
from pathlib import Path
from typing import Any, Final

import orjson
import voluptuous as vol
from aiohttp import web

from hub.auth import Role
from hub.clock import clock
from hub.commands import CliCommands, add_config_argument
from hub.config import ConfigError
from hub.core import Context
from hub.hookspecs import hookimpl
from hub.http.schemas import (
    INTEGER,
    OPT_NUMBER,
    OPT_STRING,
    STRING,
    array,
    json_ok,
    obj,
    one_of,
)
from hub.http.view import json_response
from hub.plugins import Integration, SetupContext
from hub.storage import Store
from integrations.security_audit.checks import (
    CONF_CERTIFICATE_WARN_DAYS,
    CONF_PASSWORD_MAX_AGE_DAYS,
    CONF_TOKEN_UNUSED_DAYS,
    DEFAULT_CERTIFICATE_WARN_DAYS,
    DEFAULT_PASSWORD_MAX_AGE_DAYS,
    DEFAULT_TOKEN_UNUSED_DAYS,
    Finding,
    Severity,
    run_audit,
)

_LOGGER = logging.getLogger(__name__)

DOMAIN: Final = "security_audit"
CONF_INTERVAL_HOURS: Final = "interval_hours"
DEFAULT_INTERVAL_HOURS: Final = 24.0
STORE_KEY: Final = "security_audit"
ALERT_PREFIX: Final = "security_audit:"
PANEL_MODULE: Final = Path(__file__).parent / "panels" / "audit.js"
PANEL_ELEMENT: Final = "evhub-security-audit-panel"

# Exit statuses of `evhub audit`.
EXIT_CLEAN: Final = 0
EXIT_HIGH: Final = 1
EXIT_ERROR: Final = 2

CONFIG_SCHEMA: Final = vol.Schema(
    {
        vol.Optional(CONF_INTERVAL_HOURS, default=DEFAULT_INTERVAL_HOURS): vol.All(
            vol.Coerce(float), vol.Range(min=1, max=24 * 31)
        ),
        vol.Optional(CONF_PASSWORD_MAX_AGE_DAYS, default=DEFAULT_PASSWORD_MAX_AGE_DAYS): vol.All(
            vol.Coerce(int), vol.Range(min=1, max=3650)
        ),
        vol.Optional(CONF_TOKEN_UNUSED_DAYS, default=DEFAULT_TOKEN_UNUSED_DAYS): vol.All(
            vol.Coerce(int), vol.Range(min=1, max=3650)
        ),
        vol.Optional(CONF_CERTIFICATE_WARN_DAYS, default=DEFAULT_CERTIFICATE_WARN_DAYS): vol.All(
            vol.Coerce(int), vol.Range(min=1, max=365)
        ),
    }
)

# What the views answer: the last run (never run yet: ran_at None and no findings).
FINDINGS_ANSWER: Final = obj(
    {
        "ran_at": OPT_NUMBER,  # POSIX seconds
        "error": OPT_STRING,  # why the last run could not read the configuration
        "counts": obj({str(severity): INTEGER for severity in Severity}),
        "findings": array(
            obj(
                {
                    "check": STRING,
                    "severity": one_of(*Severity),
                    "subject": STRING,
                    "message": STRING,
                    "fix": STRING,
                    "where": OPT_STRING,  # file:line
                    "key": STRING,  # stable from one run to the next: check:subject
                }
            )
        ),
    }
)


def summary(findings: list[Finding]) -> dict[str, int]:
    """How many findings of each severity."""
    counts = {str(severity): 0 for severity in Severity}
    for finding in findings:
        counts[str(finding.severity)] += 1
    return counts


class AuditRunner:
    """Runs the audit in the executor and turns high findings into alerts."""

    def __init__(self, ctx: SetupContext) -> None:
        self.hub = ctx.hub
        self.options = dict(ctx.config)
        self.findings: list[Finding] = []
        self.ran_at: float | None = None
        self.error: str | None = None
        self._lock = asyncio.Lock()
        self._store: Store[dict[str, Any]] = Store(ctx.hub, 1, STORE_KEY, private=True)
        self._alerted: set[str] = set()

    async def load(self) -> None:
        """Read the alert keys raised by earlier runs (to resolve them once fixed)."""
        stored = await self._store.load() or {}
        self._alerted = {k for k in stored.get("alerted", []) if isinstance(k, str)}

    def as_dict(self) -> dict[str, Any]:
        """The last run, as the API and the panel show it."""
        return {
            "ran_at": self.ran_at,
            "error": self.error,
            "counts": summary(self.findings),
            "findings": [finding.as_dict() for finding in self.findings],
        }

    async def run(self) -> dict[str, Any]:
        """Audit the config dir now (one run at a time) and update the alerts."""
        async with self._lock:
            now = clock(self.hub).time()
            try:
                findings = await self.hub.run_in_executor(
                    run_audit, self.hub.config_dir, now, self.options
                )
            except ConfigError as err:
                self.error = str(err)
                self.ran_at = now
                return self.as_dict()
            self.findings, self.error, self.ran_at = findings, None, now
            await self._update_alerts(findings)
            return self.as_dict()

    async def _update_alerts(self, findings: list[Finding]) -> None:
        if not self.hub.services.has_service("alert", "raise"):
            return
        context = Context()
        high = {ALERT_PREFIX + f.key: f for f in findings if f.severity is Severity.HIGH}
        for key, finding in high.items():
            try:
                await self.hub.services.call(
                    "alert",
                    "raise",
                    {
                        "key": key[:255],
                        "title": f"Security audit: {finding.check}"[:255],
                        "message": f"{finding.message}. Fix: {finding.fix}",
                        "severity": "critical",
                    },
                    context=context,
                )
            except Exception:
                _LOGGER.exception("Cannot raise the alert of audit finding %s", key)
        for key in sorted(self._alerted - set(high)):
            try:
                await self.hub.services.call(
                    "alert",
                    "resolve",
                    {"alert": key[:255], "note": "the security audit no longer finds it"},
                    context=context,
                )
            except Exception as err:  # resolved by hand meanwhile: nothing to do
                _LOGGER.debug("Audit alert %s not resolved: %s", key, err)
        self._alerted = set(high)
        await self._store.save({"alerted": sorted(self._alerted)})


async def async_setup(ctx: SetupContext) -> bool:
    """Run the audit at start and on its interval; serve its findings to admins."""
    runner = AuditRunner(ctx)
    await runner.load()

    async def get_findings(request: web.Request) -> web.Response:
        """The last audit's findings."""
        return json_response(runner.as_dict())

    async def post_run(request: web.Request) -> web.Response:
        """Run the audit now and answer its findings."""
        return json_response(await runner.run())

    async def ws_findings(hub: Any, user: Any, msg: dict[str, Any]) -> Any:
        return runner.as_dict()

    ctx.register_view(
        "GET",
        "/api/security_audit/findings",
        get_findings,
        role=Role.ADMIN,
        summary="The findings of the hub's last security audit",
        responses=json_ok(FINDINGS_ANSWER),
    )
    ctx.register_view(
        "POST",
        "/api/security_audit/run",
        post_run,
        role=Role.ADMIN,
        summary="Run the hub's security audit now",
        responses=json_ok(FINDINGS_ANSWER),
    )
    ctx.register_ws_command("security_audit/findings", ws_findings, role=Role.ADMIN)
    ctx.register_panel(
        "audit",
        "Security audit",
        PANEL_MODULE,
        PANEL_ELEMENT,
        role=Role.ADMIN,
        icon="shield",
        placement="page",
    )

    def scheduled() -> None:
        ctx.create_task(runner.run(), "audit")

    ctx.track_interval(ctx.config[CONF_INTERVAL_HOURS] * 3600.0, scheduled)
    ctx.create_task(runner.run(), "first audit")
    ctx.data = runner
    return True


# The command ---------------------------------------------------------------------------


def format_text(findings: list[Finding]) -> str:
    """The findings as text, worst first, each with where and the fix."""
    if not findings:
        return "no findings: nothing the audit checks is wrong\n"
    lines: list[str] = []
    for finding in findings:
        where = f" ({finding.where})" if finding.where else ""
        lines.append(f"{finding.severity.upper():6} {finding.check}: {finding.subject}{where}")
        lines.append(f"       {finding.message}")
        lines.append(f"       fix: {finding.fix}")
    counts = summary(findings)
    lines.append(
        f"{len(findings)} finding(s): {counts['high']} high, {counts['medium']} medium,"
        f" {counts['low']} low"
    )
    return "\n".join(lines) + "\n"


def cmd_audit(config_dir: Path, output_format: str) -> int:
    """``evhub audit``: print the findings; exit 1 if one is high, 2 if it cannot audit."""
    if not config_dir.is_dir():
        print(f"evhub: config dir {config_dir} does not exist", file=sys.stderr)
        return EXIT_ERROR
    try:
        findings = run_audit(config_dir, time.time())
    except ConfigError as err:
        print(f"evhub: cannot audit: {err}", file=sys.stderr)
        return EXIT_ERROR
    if output_format == "json":
        document = {
            "config_dir": str(config_dir),
            "counts": summary(findings),
            "findings": [finding.as_dict() for finding in findings],
        }
        sys.stdout.write(orjson.dumps(document, option=orjson.OPT_INDENT_2).decode() + "\n")
    else:
        sys.stdout.write(format_text(findings))
    return EXIT_HIGH if any(f.severity is Severity.HIGH for f in findings) else EXIT_CLEAN


def _run_command(args: argparse.Namespace) -> int:
    return cmd_audit(args.config, args.format)


@hookimpl
def evhub_cli_commands(commands: CliCommands) -> None:
    """Add ``evhub audit``."""
    parser = commands.add("audit", "check the hub's own set-up for security problems", _run_command)
    add_config_argument(parser)
    parser.add_argument("--format", choices=["text", "json"], default="text")


@hookimpl
def evhub_integration() -> Integration:
    """Describe the security audit integration."""
    from hub import __version__

    return Integration(
        domain=DOMAIN,
        name="Security audit",
        version=__version__,
        setup=async_setup,
        config_schema=CONFIG_SCHEMA,
        dependencies=("alerts",),
        documentation="README.md#security",
    )
