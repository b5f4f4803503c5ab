"""What ``evhub check-config`` finds beyond the errors start-up reports: the services the
configuration calls (an automation's ``action: notify.ops``) that nothing would provide.

Which services exist is known without setting anything up: the core's own (``charger.*``,
the persistent notifications) and what each integration declares it registers for its
validated section (``Integration.services``; ``<domain>.*`` when it declares nothing).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

from hub.charger import DOMAIN as CHARGER_DOMAIN
from hub.charger import SERVICES as CHARGER_SERVICES
from hub.config import (
    ConfigError,
    HubConfig,
    ServiceCallSite,
    did_you_mean,
    dotted_key,
)
from hub.notify import DOMAIN as NOTIFY_DOMAIN
from hub.notify import RESERVED_NAMES
from hub.plugins import PluginLoader

_ANY: Final = "*"
_MAX_LISTED: Final = 12
_NOTIFY_INTEGRATIONS: Final = "notify_email, notify_ntfy or notify_webhook"


def provided_services(result: HubConfig, plugins: PluginLoader) -> set[str]:
    """The services a hub of this configuration would have ("domain.*": any of a domain)."""
    found = {f"{CHARGER_DOMAIN}.{service}" for service in CHARGER_SERVICES}
    found.update(f"{NOTIFY_DOMAIN}.{service}" for service in RESERVED_NAMES)
    for domain, section in result.integrations.items():
        integration = plugins.load(domain)
        if integration.services is None:
            found.add(f"{domain}.{_ANY}")
            continue
        try:
            found.update(integration.services(section))
        except Exception:  # a plugin's declaration must not stop the check
            found.add(f"{domain}.{_ANY}")
    return found


def unknown_services(
    raw: Mapping[str, Any], result: HubConfig, plugins: PluginLoader
) -> list[ConfigError]:
    """Report each service the configuration calls that no core part or integration provides."""
    provided = provided_services(result, plugins)
    absent = absent_integrations(raw, result, plugins)
    errors: list[ConfigError] = []
    for domain in result.integrations:
        integration = plugins.load(domain)
        if integration.service_calls is None or raw.get(domain) is None:
            continue
        for site in integration.service_calls(raw[domain]):
            problem = service_problem(site.service, provided, absent)
            if problem is not None:
                errors.append(_error(site, problem))
    return errors


def absent_integrations(
    raw: Mapping[str, Any], result: HubConfig, plugins: PluginLoader
) -> dict[str, str]:
    """The service domains of installed integrations that are not set up, and why not."""
    found: dict[str, str] = {}
    for domain in sorted(plugins.available()):
        if domain in result.integrations:
            continue
        if raw.get(domain) is False:
            why = f"the {domain} integration is turned off ({domain}: false)"
        elif domain in raw:
            why = f"the {domain} integration is not set up (see the errors in its section)"
        else:
            why = f"the {domain} integration is not set up (add a {domain}: section)"
        try:
            integration = plugins.load(domain)
            declared = [f"{domain}.*"] if integration.services is None else integration.services({})
            service_domains = {name.partition(".")[0] for name in declared}
        except Exception:  # not importable, or a declaration that needs a real section
            service_domains = {domain}
        for service_domain in sorted(service_domains):
            found.setdefault(service_domain, why)
    return found


def _error(site: ServiceCallSite, problem: str) -> ConfigError:
    return ConfigError(problem, site.file, site.line, dotted_key(site.path), path=site.path)


def service_problem(
    service: str, provided: set[str], absent: Mapping[str, str] | None = None
) -> str | None:
    """Say why service would not be found when called, None if it would be.

    absent: why the integration behind a service domain is not set up, by domain.
    """
    domain, _, name = service.partition(".")
    if service in provided or f"{domain}.{_ANY}" in provided:
        return None
    in_domain = sorted(
        known.partition(".")[2] for known in provided if known.partition(".")[0] == domain
    )
    if domain == NOTIFY_DOMAIN:
        message = f"unknown notify target '{name}' ({service})"
        close = did_you_mean(name, in_domain)
        if close is not None:
            return f"{message}; did you mean '{NOTIFY_DOMAIN}.{close}'?"
        targets = [target for target in in_domain if target not in RESERVED_NAMES]
        if targets:
            return f"{message}; the configured targets are: {', '.join(targets)}"
        return f"{message}; no notify target is configured ({_NOTIFY_INTEGRATIONS})"
    message = f"unknown service '{service}'"
    if in_domain:
        close = did_you_mean(name, in_domain)
        if close is not None:
            return f"{message}; did you mean '{domain}.{close}'?"
        if len(in_domain) <= _MAX_LISTED:
            return f"{message}; {domain} has: {', '.join(in_domain)}"
        return message
    if absent and domain in absent:
        return f"{message}: {absent[domain]}"
    domains = {known.partition(".")[0] for known in provided}
    close_domain = did_you_mean(domain, domains)
    if close_domain is not None:
        guess = f"{close_domain}.{name}"
        if guess in provided or f"{close_domain}.{_ANY}" in provided:
            return f"{message}; did you mean '{guess}'?"
        return f"{message}; did you mean a service of '{close_domain}'?"
    return f"{message}: nothing here provides {domain}.* services"
