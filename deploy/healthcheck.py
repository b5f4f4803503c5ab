"""The container's health check: GET /api/health on the hub's own port.

Healthy (exit 0) while the hub runs, degraded included: a hub whose history database is
full still serves its chargers, and restarting it would drop them all (see /api/health).
Unhealthy (exit 1) when it does not answer or answers 503 (starting, stopping).
"""

from __future__ import annotations

import json
import os
import ssl
import sys
import urllib.request


def main() -> int:
    """Ask the hub how it is; print the answer for `docker inspect`."""
    port = os.environ.get("EVHUB_HTTP_PORT", "8300")
    url = os.environ.get("EVHUB_HEALTH_URL") or f"http://127.0.0.1:{port}/api/health"
    # The hub's own certificate names its public name, not 127.0.0.1.
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    try:
        with urllib.request.urlopen(url, timeout=5, context=context) as response:
            body = json.load(response)
    except (OSError, ValueError) as err:
        print(f"unhealthy: {url}: {err}")
        return 1
    problems = ", ".join(body.get("problems") or []) or "none"
    print(f"{body.get('status')} (problems: {problems})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
