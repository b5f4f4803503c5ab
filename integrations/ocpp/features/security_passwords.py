"""Password rotation (OCPP 2.0.1 A01; 1.6 security whitepaper: AuthorizationKey).

The hub makes a new password with ``secrets``, sends it (2.0.1: SetVariables
SecurityCtrlr.BasicAuthPassword; 1.6: ChangeConfiguration AuthorizationKey, hex-encoded as
the whitepaper asks) and keeps only salted hashes. Once sent, the new password and the old
one are both accepted: a charger applies the new one when it reconnects, and until it does
(or if its answer was lost) only the old one may work. The first connection with the new
password retires the old one. A refused change leaves the old password alone.

What is stored (private, in ``.storage``), per charge point: ``accepted``, the hashes a
connection may present, and ``new``, the hashes that retire every other once used.
Rotated passwords take precedence over the ``password`` / ``password_hash`` in the
configuration, which stays the charger's first password.
"""

from __future__ import annotations

import secrets
import string
from typing import TYPE_CHECKING, Any, Final

from hub.storage import Store

if TYPE_CHECKING:
    from hub.core import Hub

STORE_KEY: Final = "ocpp.passwords"
# OCPP: 16 to 40 characters (2.0.1 passwordString[40]); the 1.6 whitepaper's AuthorizationKey
# is the hex encoding of 16 to 20 bytes, so 1.6 passwords are 20 characters (40 hex digits).
PASSWORD_LENGTH_201: Final = 32
PASSWORD_LENGTH_16: Final = 20
# Letters and digits: printable in every charger UI, safe in Basic auth (no ':'), and in hex.
_ALPHABET: Final = string.ascii_letters + string.digits


def new_password(length: int) -> str:
    """A random password of letters and digits (about 5.95 bits a character)."""
    if not 16 <= length <= 40:
        raise ValueError("OCPP passwords have 16 to 40 characters")
    return "".join(secrets.choice(_ALPHABET) for _ in range(length))


class PasswordRotation:
    """The rotated passwords of every charger, as hashes."""

    def __init__(self, hub: Hub) -> None:
        from integrations.ocpp.system import hash_password, verify_password

        self._hash = hash_password
        self._verify = verify_password
        self._store: Store[dict[str, Any]] = Store(hub, 1, STORE_KEY, private=True)
        self.entries: dict[str, dict[str, list[str]]] = {}

    async def load(self) -> None:
        """Read what was rotated before."""
        stored = await self._store.load() or {}
        for cp_id, entry in stored.get("chargers", {}).items():
            accepted = [h for h in entry.get("accepted", []) if isinstance(h, str)]
            new = [h for h in entry.get("new", []) if h in accepted]
            if accepted:
                self.entries[str(cp_id)] = {"accepted": accepted, "new": new}

    def _save(self) -> None:
        self._store.delay_save(lambda: {"chargers": self.entries}, 0.1)

    async def flush(self) -> None:
        """Write pending changes now."""
        await self._store.flush()

    def offer(self, cp_id: str, current: str | None, forms: list[str]) -> list[str]:
        """Accept a password (in each of its forms) from now on, besides the current ones;
        return its hashes (for ``withdraw``)."""
        entry = self.entries.get(cp_id)
        if entry is None:
            entry = {"accepted": [current] if current is not None else [], "new": []}
            self.entries[cp_id] = entry
        hashes = [self._hash(form) for form in forms]
        # An older offer that was never used is superseded: at most two passwords live.
        stale = set(entry["new"])
        entry["accepted"] = [h for h in entry["accepted"] if h not in stale] + hashes
        entry["new"] = hashes
        self._save()
        return hashes

    def withdraw(self, cp_id: str, hashes: list[str]) -> None:
        """The charger refused the password: forget it."""
        entry = self.entries.get(cp_id)
        if entry is None:
            return
        entry["accepted"] = [h for h in entry["accepted"] if h not in hashes]
        entry["new"] = [h for h in entry["new"] if h not in hashes]
        if not entry["accepted"]:
            del self.entries[cp_id]
        self._save()

    def check(self, cp_id: str, password: str) -> bool | None:
        """Whether password opens cp_id (None: no rotation, the configured one decides).

        A new password's first use retires all others.
        """
        entry = self.entries.get(cp_id)
        if entry is None:
            return None
        matched = next((h for h in entry["accepted"] if self._verify(password, h)), None)
        if matched is None:
            return False
        if matched in entry["new"]:
            entry["accepted"] = list(entry["new"])
            entry["new"] = []
            self._save()
        return True

    def rotating(self, cp_id: str) -> bool:
        """Whether a new password waits for its first use."""
        entry = self.entries.get(cp_id)
        return bool(entry and entry["new"])
