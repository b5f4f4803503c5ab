"""OCPP and vendor error codes mapped onto the ChargeX Minimum Required Error Codes (MRECs).

The mapping is data: ``mrec.yaml`` beside this module, extended by the user's
``charge_success: error_codes: {CODE: CX0nn}``. A vendor code wins over the OCPP code it came
with (OtherError says little; its vendorErrorCode says what happened).
"""

from __future__ import annotations

import functools
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

import yaml

DATA_FILE: Final = Path(__file__).with_name("mrec.yaml")
MREC_CODE: Final = re.compile(r"^CX0(0[1-9]|1[0-9]|2[0-6])$")
NO_ERROR: Final = frozenset({"", "NoError"})


def valid_mrec(value: Any) -> str:
    """Return an MREC code (CX001-CX026) or raise ValueError."""
    text = str(value).strip().upper() if isinstance(value, str) else ""
    if not MREC_CODE.match(text):
        raise ValueError(f"expected an MREC code CX001-CX026, got {value!r}")
    return text


@functools.cache
def _shipped() -> tuple[dict[str, str | None], dict[str, str | None], dict[str, str | None]]:
    """The shipped data file: MREC names, OCPP code mapping, vendor code mapping."""
    data = yaml.safe_load(DATA_FILE.read_text(encoding="utf-8"))
    codes = {valid_mrec(code): name for code, name in data["codes"].items()}
    ocpp = {str(k): (None if v is None else valid_mrec(v)) for k, v in data["ocpp"].items()}
    vendor = {
        str(k): (None if v is None else valid_mrec(v)) for k, v in (data["vendor"] or {}).items()
    }
    return codes, ocpp, vendor


def mrec_names() -> dict[str, str | None]:
    """Every MREC code and its name (None where the name is not verified)."""
    return dict(_shipped()[0])


@dataclass(frozen=True, slots=True)
class ErrorMapping:
    """OCPP and vendor codes to MREC codes: the shipped table plus the user's entries."""

    user: Mapping[str, str] = field(default_factory=dict)

    def mrec(self, code: str | None, vendor_code: str | None = None) -> str | None:
        """The MREC of an error (vendor code first, then the OCPP code); None if unmapped."""
        _, ocpp, vendor = _shipped()
        for candidate, table in ((vendor_code, vendor), (code, ocpp)):
            if not candidate or candidate in NO_ERROR:
                continue
            if candidate in self.user:
                return self.user[candidate]
            if MREC_CODE.match(candidate):
                return candidate
            found = table.get(candidate)
            if found is not None:
                return found
        return None

    def as_dict(self) -> dict[str, Any]:
        """The whole mapping, for the API and the dashboard."""
        names, ocpp, vendor = _shipped()
        return {
            "codes": names,
            "ocpp": ocpp,
            "vendor": vendor,
            "user": dict(self.user),
        }
